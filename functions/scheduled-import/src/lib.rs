//! What changes in Xero, brought to the platform: Xero's webhooks ([`webhook`], [`changes`])
//! within a minute, and the scheduled import ([`import`], [`worker`]) as the safety net.
//!
//! The scheduled import's fan-out (below) sends one queue message per CONNECTED connection
//! and period, each at its own moment ([`schedule`]), so the per-connection imports run in
//! parallel and spread out, without one run having to reach every organisation.

pub mod changes;
pub mod cursor;
pub mod import;
pub mod schedule;
pub mod webhook;
pub mod worker;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::{AccountId, TenantId};
use xero_sync_domain::store::{ConnectedQuery, ConnectionStore, JobStateStore};
use xero_sync_runtime::{ConfigError, Env};

pub use schedule::Cadence;

/// The job state item where the fan-out keeps the end of the window it last covered.
const WINDOW_STATE: &str = "import-fanout-window";

#[derive(Debug, Clone)]
pub struct FanoutConfig {
    pub import_queue_url: String,
    /// Connections read per Query.
    pub page_size: i32,
    /// How often the schedule runs the fan-out (`FANOUT_EVERY_MINUTES`, 15; at most 15, what
    /// SQS can hold a message back): the window each run covers.
    pub every: Duration,
    pub cadence: Cadence,
}

impl FanoutConfig {
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let every: i64 = env.parse_or("FANOUT_EVERY_MINUTES", 15)?;
        if !(1..=15).contains(&every) {
            return Err(ConfigError::Invalid {
                name: "FANOUT_EVERY_MINUTES",
                reason: "must be 1 to 15 (SQS holds a message back at most 15 minutes)".into(),
            });
        }
        Ok(Self {
            import_queue_url: env.required("IMPORT_QUEUE_URL")?,
            page_size: env.parse_or("FANOUT_PAGE_SIZE", 500)?,
            every: Duration::minutes(every),
            cadence: Cadence::from(env)?,
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
    /// Connected connections read.
    pub connections: usize,
    /// Those due in this run's window, sent to the import queue.
    pub sent: usize,
    pub pages: usize,
}

/// Sends an import for each connected connection due in this run's window (see
/// [`schedule`]), each held back until its moment. The window's end is kept only once all are
/// sent: a run that fails is covered again by the next, and an import sent twice finds nothing
/// new the second time (its lease and cursors).
pub async fn fan_out(
    store: &(impl ConnectionStore + JobStateStore + ?Sized),
    sqs: &aws_sdk_sqs::Client,
    config: &FanoutConfig,
    now: DateTime<Utc>,
) -> Result<FanoutSummary, Error> {
    let queue = Queue::new(sqs.clone(), &config.import_queue_url);
    let period = config.cadence.period;
    let last_end = store.get_job_state(WINDOW_STATE).await?.and_then(|s| xero_sync_domain::time::parse(&s).ok());
    let (from, to) = schedule::window(last_end, now, config.every, period);
    let mut summary = FanoutSummary::default();
    let mut token = None;
    loop {
        let page = store
            .connected_page(ConnectedQuery { idle_before: None, page_size: config.page_size }, token.as_ref())
            .await?;
        summary.pages += 1;
        summary.connections += page.items.len();
        let mut bodies = Vec::new();
        let mut delays = Vec::new();
        for c in &page.items {
            let Some(due) = schedule::due_in(schedule::offset(c.tenant_id, period), period, from, to) else { continue };
            let request = ImportRequest { account_id: c.account_id.clone(), tenant_id: c.tenant_id, requested_at: now };
            bodies.push(
                serde_json::to_string(&request)
                    .map_err(|e| Error::Corrupt { what: "import request", reason: e.to_string() })?,
            );
            delays.push((due - now).to_std().unwrap_or_default());
        }
        queue.send_every_delayed(&bodies, &delays).await?;
        summary.sent += bodies.len();
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    store.put_job_state(WINDOW_STATE, Some(&xero_sync_domain::time::format(to))).await?;
    tracing::info!(
        connections = summary.connections,
        sent = summary.sent,
        pages = summary.pages,
        "import fan-out done"
    );
    Ok(summary)
}
