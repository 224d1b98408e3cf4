//! The scheduled import's fan-out: one queue message per CONNECTED connection, so the
//! per-connection imports run in parallel without one run having to reach every organisation.

pub mod cursor;
pub mod import;
pub mod worker;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use xero_sync_core::model::{AccountId, TenantId};
use xero_sync_core::store::{ConnectedQuery, Store};
use xero_sync_core::{AwsError, ConfigError, Env, Error};

/// SendMessageBatch takes at most 10 entries.
const SQS_BATCH: usize = 10;
const SEND_ATTEMPTS: u32 = 4;

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
    #[serde(with = "xero_sync_core::time::fixed")]
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FanoutSummary {
    pub connections: usize,
    pub pages: usize,
}

pub async fn fan_out(
    store: &dyn Store,
    sqs: &aws_sdk_sqs::Client,
    config: &FanoutConfig,
    now: DateTime<Utc>,
) -> Result<FanoutSummary, Error> {
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
        for batch in requests.chunks(SQS_BATCH) {
            send_batch(sqs, &config.import_queue_url, batch).await?;
        }
        summary.connections += requests.len();
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    tracing::info!(connections = summary.connections, pages = summary.pages, "import fan-out done");
    Ok(summary)
}

async fn send_batch(sqs: &aws_sdk_sqs::Client, queue_url: &str, batch: &[ImportRequest]) -> Result<(), Error> {
    let mut pending: Vec<SendMessageBatchRequestEntry> = batch
        .iter()
        .enumerate()
        .map(|(i, request)| {
            let body = serde_json::to_string(request)
                .map_err(|e| Error::Corrupt { what: "import request", reason: e.to_string() })?;
            SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(body)
                .build()
                .map_err(|e| Error::Corrupt { what: "import request", reason: e.to_string() })
        })
        .collect::<Result<_, _>>()?;
    for attempt in 0..SEND_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
        }
        let out = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(pending.clone()))
            .send()
            .await
            .map_err(|e| Error::Aws(AwsError::new("SQS", "SendMessageBatch", &e)))?;
        let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
        if failed.is_empty() {
            return Ok(());
        }
        pending.retain(|entry| failed.contains(&entry.id.as_str()));
    }
    Err(Error::Aws(AwsError {
        service: "SQS",
        operation: "SendMessageBatch",
        code: Some("BatchEntryFailed".into()),
        message: Some(format!("{} message(s) not accepted", pending.len())),
        retryable: true,
    }))
}
