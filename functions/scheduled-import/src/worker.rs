//! The import worker: one message per connection from the import queue (the fan-out's, or
//! `connection.connected` from our bus for a first import right after connecting).

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::Value;
use xero_sync_core::events::{EventKind, PlatformEvent};
use xero_sync_core::model::ConnectionKey;
use xero_sync_core::{App, ConfigError, Env};

use crate::ImportRequest;
use crate::import::{ImportError, ImportPolicy, import};

/// SQS holds a message back for at most twelve hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

pub struct Worker {
    pub app: App,
    pub policy: ImportPolicy,
    pub sqs: aws_sdk_sqs::Client,
    pub import_queue_url: String,
}

impl Worker {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let sqs = aws_sdk_sqs::Client::new(&app.sdk);
        Ok(Self { import_queue_url: env.required("IMPORT_QUEUE_URL")?, sqs, policy: ImportPolicy::default(), app })
    }
}

/// Connections are imported one after another: each import already keeps its organisation
/// busy up to Xero's limits, and the queue's concurrency spreads organisations over Lambdas.
pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in event.records {
        if let Err(after) = process(worker, &message).await {
            fail(worker, &message, after, &mut response).await;
        }
    }
    response
}

async fn fail(worker: &Worker, message: &SqsMessage, after: Option<Duration>, response: &mut SqsBatchResponse) {
    if let (Some(after), Some(handle)) = (after, message.receipt_handle.as_deref()) {
        let seconds = after.min(MAX_VISIBILITY).as_secs().max(1) as i32;
        let changed = worker
            .sqs
            .change_message_visibility()
            .queue_url(&worker.import_queue_url)
            .receipt_handle(handle)
            .visibility_timeout(seconds)
            .send()
            .await;
        if let Err(e) = changed {
            tracing::warn!(error = %xero_sync_core::AwsError::new("SQS", "ChangeMessageVisibility", &e), "could not delay the retry");
        }
    }
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message.message_id.clone().unwrap_or_default();
    response.batch_item_failures.push(failure);
}

/// `Err` carries how long to hold the message back (the queue's own timeout when `None`).
async fn process(worker: &Worker, message: &SqsMessage) -> Result<(), Option<Duration>> {
    let Some(key) = connection_of(message.body.as_deref().unwrap_or_default()).map_err(|reason| {
        // It cannot succeed; after the receive limit it waits in the dead-letter queue.
        let reason = xero_sync_core::error::without_values(&reason);
        tracing::error!(reason, "unreadable import message");
        None
    })?
    else {
        return Ok(());
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
            Err(e.retry_after().or(Some(Duration::from_secs(60))))
        }
    }
}

/// The connection a message names; `None` for a bus event that needs no import.
fn connection_of(body: &str) -> Result<Option<ConnectionKey>, String> {
    let value: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if let Some(kind) = value.get("detail-type").and_then(Value::as_str) {
        if kind != EventKind::ConnectionConnected.as_str() {
            return Ok(None);
        }
        let detail = match value.get("detail") {
            Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| e.to_string())?,
            Some(other) => other.clone(),
            None => return Err("a bus event without detail".into()),
        };
        let event: PlatformEvent = serde_json::from_value(detail).map_err(|e| e.to_string())?;
        return Ok(event.tenant_id.map(|tenant_id| ConnectionKey { account_id: event.account_id, tenant_id }));
    }
    let request: ImportRequest = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok(Some(ConnectionKey { account_id: request.account_id, tenant_id: request.tenant_id }))
}
