//! The changes worker: one message per organisation and delivery from the changes queue (the
//! Xero webhook's), each announced for every connection that holds the organisation.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use xero_sync_aws::Queue;
use xero_sync_runtime::queue::{Incoming, Retry, not_yet_due, read, respond};
use xero_sync_runtime::{App, ConfigError, Env};

use crate::import::changes::apply;
use crate::import::{ImportError, ImportPolicy};
use crate::webhook::ChangeBatch;

pub struct ChangesWorker {
    pub app: App,
    pub policy: ImportPolicy,
    pub queue: Queue,
}

impl ChangesWorker {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let queue = Queue::new(aws_sdk_sqs::Client::new(&app.sdk), env.required("CHANGES_QUEUE_URL")?);
        Ok(Self { queue, policy: ImportPolicy::default(), app })
    }
}

pub async fn handle(worker: &ChangesWorker, event: SqsEvent) -> SqsBatchResponse {
    let mut results = Vec::with_capacity(event.records.len());
    for message in &event.records {
        results.push(process(worker, message).await);
    }
    xero_sync_runtime::meter::flush(&worker.app, "xero-changes-worker").await;
    respond(&worker.queue, &event.records, results, worker.app.now()).await
}

async fn process(worker: &ChangesWorker, message: &SqsMessage) -> Result<(), Retry> {
    if let Some(wait) = not_yet_due(message, worker.app.now()) {
        return Err(Retry::held(wait));
    }
    let body = message.body.as_deref().unwrap_or_default();
    let batch = match read::<ChangeBatch>(body, &[])? {
        Incoming::Ours(batch) => batch,
        Incoming::Event(_) | Incoming::Other(_) => return Ok(()),
    };
    let store = &worker.app.services.store;
    let holders = store.holding_tenant(batch.tenant_id).await.map_err(|e| {
        tracing::warn!(tenant = %batch.tenant_id, error = %e, "changes deferred");
        Retry::later(Some(Duration::from_secs(30)))
    })?;
    if holders.is_empty() {
        // Xero tells every app of every organisation it was ever connected to until it is not.
        tracing::info!(tenant = %batch.tenant_id, changes = batch.changes.len(), "Xero changes for an organisation no account holds; dropped");
        return Ok(());
    }
    let mut outcome = Ok(());
    for key in holders {
        match apply(&worker.app, &worker.policy, &key, &batch.changes).await {
            Ok(_) => {}
            Err(e @ ImportError::Refused(_)) => {
                // Another go would be refused the same way; the safety-net import tries again.
                tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, error = %e, "Xero refused reading changes");
            }
            Err(e) => {
                tracing::info!(account = %key.account_id, tenant = %key.tenant_id, error = %e, "changes deferred");
                let retry = e.retry(Duration::from_secs(30));
                outcome = Err(outcome.err().map_or(retry, |r: Retry| r.max(retry)));
            }
        }
    }
    outcome
}
