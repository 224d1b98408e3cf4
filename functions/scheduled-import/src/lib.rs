//! What changes in Xero, brought to the platform: Xero's webhooks ([`webhook`], [`changes`])
//! within a minute, and the scheduled import ([`import`], [`worker`]) as the safety net.
//!
//! The scheduled import's fan-out (below) sends one queue message per CONNECTED connection, so
//! the per-connection imports run in parallel without one run having to reach every organisation.

pub mod changes;
pub mod cursor;
pub mod import;
pub mod webhook;
pub mod worker;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::{AccountId, TenantId};
use xero_sync_domain::store::{ConnectedQuery, ConnectionStore};
use xero_sync_runtime::{ConfigError, Env};

#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub import_queue_url: String,
    /// Connections read per Query.
    pub page_size: i32,
}

impl FanoutConfig {
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            import_queue_url: env.required("IMPORT_QUEUE_URL")?,
            page_size: env.parse_or("FANOUT_PAGE_SIZE", 500)?,
        })
    }
}

/// The body of one import-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    #[serde(with = "xero_sync_domain::time::fixed")]
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FanoutSummary {
    pub connections: usize,
    pub pages: usize,
}

pub async fn fan_out(
    store: &dyn ConnectionStore,
    sqs: &aws_sdk_sqs::Client,
    config: &FanoutConfig,
    now: DateTime<Utc>,
) -> Result<FanoutSummary, Error> {
    let queue = Queue::new(sqs.clone(), &config.import_queue_url);
    let mut summary = FanoutSummary::default();
    let mut token = None;
    loop {
        let page = store
            .connected_page(ConnectedQuery { idle_before: None, page_size: config.page_size }, token.as_ref())
            .await?;
        summary.pages += 1;
        let requests: Vec<_> = page
            .items
            .iter()
            .map(|c| ImportRequest { account_id: c.account_id.clone(), tenant_id: c.tenant_id, requested_at: now })
            .collect();
        let bodies = requests
            .iter()
            .map(|r| {
                serde_json::to_string(r).map_err(|e| Error::Corrupt { what: "import request", reason: e.to_string() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        queue.send_every(&bodies).await?;
        summary.connections += requests.len();
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    tracing::info!(connections = summary.connections, pages = summary.pages, "import fan-out done");
    Ok(summary)
}
