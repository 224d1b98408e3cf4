//! The import worker: one message per connection from the import queue (the fan-out's, or
//! `connection.connected` from our bus for a first import right after connecting).

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use xero_sync_aws::Queue;
use xero_sync_domain::events::EventKind;
use xero_sync_domain::model::ConnectionKey;
use xero_sync_runtime::queue::{Incoming, Retry, not_yet_due, read, respond};
use xero_sync_runtime::{App, ConfigError, Env};

use crate::ImportRequest;
use crate::import::{ImportError, ImportPolicy, import};

pub struct Worker {
    pub app: App,
    pub policy: ImportPolicy,
    pub queue: Queue,
}

impl Worker {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let queue = Queue::new(aws_sdk_sqs::Client::new(&app.sdk), env.required("IMPORT_QUEUE_URL")?);
        Ok(Self { queue, policy: ImportPolicy { cadence: crate::Cadence::from(env)?, ..ImportPolicy::default() }, app })
    }
}

/// Connections are imported one after another: each import already keeps its organisation
/// busy up to Xero's limits, and the queue's concurrency spreads organisations over Lambdas.
pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let mut results = Vec::with_capacity(event.records.len());
    for message in &event.records {
        results.push(process(worker, message).await);
    }
    xero_sync_runtime::meter::flush(&worker.app, "import-worker").await;
    respond(&worker.queue, &event.records, results, worker.app.now()).await
}

async fn process(worker: &Worker, message: &SqsMessage) -> Result<(), Retry> {
    if let Some(wait) = not_yet_due(message, worker.app.now()) {
        return Err(Retry::held(wait));
    }
    let body = message.body.as_deref().unwrap_or_default();
    let key = match read::<ImportRequest>(body, &[EventKind::ConnectionConnected.as_str()])? {
        Incoming::Ours(request) => ConnectionKey { account_id: request.account_id, tenant_id: request.tenant_id },
        Incoming::Event(event) => match event.tenant_id {
            Some(tenant_id) => ConnectionKey { account_id: event.account_id, tenant_id },
            None => return Ok(()),
        },
        Incoming::Other(_) => return Ok(()),
    };
    match import(&worker.app, &worker.policy, &key).await {
        Ok(_) => Ok(()),
        // Another go at once would be refused the same way; the next scheduled run tries again.
        Err(e @ ImportError::Refused(_)) => {
            tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, error = %e, "import refused by Xero");
            Ok(())
        }
        Err(e) => {
            tracing::info!(account = %key.account_id, tenant = %key.tenant_id, error = %e, "import deferred");
            Err(e.retry(Duration::from_secs(60)))
        }
    }
}
