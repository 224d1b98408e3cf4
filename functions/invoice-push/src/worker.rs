//! The push worker: messages from the push queue (SQS, partial batch failures).
//!
//! A message is an invoice event from the webhook, a backfill chunk, or `connection.connected`
//! from our own bus (a rule routes it here), which sends the connection's parked pushes again.
//! A message that must be tried later is reported as a batch item failure after its visibility
//! is set to the wait Xero asked for; after the queue's receive limit it lands in the
//! dead-letter queue, so nothing is lost.

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use xero_sync_core::events::{EventKind, PlatformEvent};
use xero_sync_core::model::{AccountId, ConnectionKey, TenantId};
use xero_sync_core::{App, ConfigError, Env};

use crate::PushMessage;
use crate::event::InvoiceEvent;
use crate::push::{PushPolicy, PushResult, push, redrive_parked};

/// Messages worked on at once. Xero allows five concurrent calls per organisation; leave one
/// for the import.
const CONCURRENCY: usize = 4;
/// SQS holds a message back for at most twelve hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// What we put on the push queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    /// One event from the webhook.
    Event(Box<PushMessage>),
    /// Up to fifty invoices of a backfill, pushed in one Xero request.
    Backfill(BackfillChunk),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillChunk {
    pub backfill_id: String,
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub events: Vec<InvoiceEvent>,
}

pub struct Worker {
    pub app: App,
    pub policy: PushPolicy,
    pub sqs: aws_sdk_sqs::Client,
    pub push_queue_url: String,
}

impl Worker {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let sqs = aws_sdk_sqs::Client::new(&app.sdk);
        Ok(Self { push_queue_url: env.required("PUSH_QUEUE_URL")?, sqs, policy: PushPolicy::default(), app })
    }
}

/// Why a message is handed back to the queue.
#[derive(Debug)]
pub struct Retry {
    /// How long to hold it back; the queue's own visibility timeout when `None`.
    pub after: Option<Duration>,
}

pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let outcomes: Vec<(SqsMessage, Result<(), Retry>)> = futures::stream::iter(event.records)
        .map(|message| async move {
            let result = process(worker, message.body.as_deref().unwrap_or_default()).await;
            (message, result)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for (message, result) in outcomes {
        let Err(retry) = result else { continue };
        let id = message.message_id.clone().unwrap_or_default();
        if let (Some(after), Some(handle)) = (retry.after, message.receipt_handle.as_deref()) {
            let seconds = after.min(MAX_VISIBILITY).as_secs().max(1) as i32;
            let changed = worker
                .sqs
                .change_message_visibility()
                .queue_url(&worker.push_queue_url)
                .receipt_handle(handle)
                .visibility_timeout(seconds)
                .send()
                .await;
            if let Err(e) = changed {
                // The queue's own visibility timeout applies instead: sooner, not lost.
                tracing::warn!(message = %id, error = %xero_sync_core::AwsError::new("SQS", "ChangeMessageVisibility", &e), "could not delay the retry");
            }
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Works one message off the queue.
pub async fn process(worker: &Worker, body: &str) -> Result<(), Retry> {
    let value: Value = serde_json::from_str(body).map_err(|e| unreadable(&e.to_string()))?;
    if value.get("detail-type").is_some() {
        return bus_event(worker, value).await;
    }
    let message: QueueMessage = serde_json::from_value(value).map_err(|e| unreadable(&e.to_string()))?;
    let (tenant, events) = match message {
        QueueMessage::Event(m) => (m.tenant_id, vec![m.event]),
        QueueMessage::Backfill(chunk) => {
            if chunk.events.iter().any(|e| e.account_id != chunk.account_id) {
                return Err(unreadable("a backfill chunk mixes accounts"));
            }
            (chunk.tenant_id, chunk.events)
        }
    };
    let results = push(&worker.app, &worker.policy, tenant, events).await;
    verdict(&results)
}

/// The message is done when every event in it is; otherwise it comes back after the longest
/// wait any of them asked for (the done ones are then unchanged and cost nothing).
pub fn verdict(results: &[PushResult]) -> Result<(), Retry> {
    let mut retry: Option<Retry> = None;
    for result in results {
        if let Err(e) = result {
            let after = e.retry_after();
            retry = Some(match retry {
                None => Retry { after },
                Some(r) => Retry { after: r.after.max(after) },
            });
        }
    }
    retry.map_or(Ok(()), Err)
}

fn unreadable(reason: &str) -> Retry {
    // It cannot succeed; after the receive limit it waits in the dead-letter queue for a person.
    tracing::error!(reason, "unreadable push message");
    Retry { after: None }
}

async fn bus_event(worker: &Worker, value: Value) -> Result<(), Retry> {
    let kind = value.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    if kind != EventKind::ConnectionConnected.as_str() {
        tracing::info!(kind, "bus event ignored");
        return Ok(());
    }
    // EventBridge sends `detail` as an object; tools that relay it sometimes as a string.
    let detail = match value.get("detail") {
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| unreadable(&e.to_string()))?,
        Some(other) => other.clone(),
        None => return Err(unreadable("a bus event without detail")),
    };
    let event: PlatformEvent = serde_json::from_value(detail).map_err(|e| unreadable(&e.to_string()))?;
    let Some(tenant_id) = event.tenant_id else { return Ok(()) };
    let key = ConnectionKey { account_id: event.account_id, tenant_id };
    redrive_parked(&worker.app, &worker.sqs, &worker.push_queue_url, &key).await.map(|_| ()).map_err(|e| {
        tracing::warn!(error = %e, "parked pushes not yet sent again");
        Retry { after: Some(Duration::from_secs(30)) }
    })
}
