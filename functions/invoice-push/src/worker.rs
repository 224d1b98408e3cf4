//! The push worker: messages from the push queue (SQS, partial batch failures).
//!
//! A message is an invoice event from the webhook, a backfill chunk, or `connection.connected`
//! from our own bus (a rule routes it here), which sends the connection's parked pushes again.
//! A message that must be tried later is reported as a batch item failure after its visibility
//! is set to the wait Xero asked for; after the queue's receive limit it lands in the
//! dead-letter queue, so nothing is lost.

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use xero_sync_core::events::{EventKind, PlatformEvent};
use xero_sync_core::model::{AccountId, ConnectionKey, TenantId};
use xero_sync_core::{App, ConfigError, Env};

use crate::PushMessage;
use crate::event::InvoiceEvent;
use crate::push::{PushError, PushPolicy, PushResult, XERO_BATCH, push, redrive_parked};

/// Lots (or bus events) worked on at once. Xero allows five concurrent calls per organisation;
/// leave one for the import.
const CONCURRENCY: usize = 4;
/// The function's timeout is 120 s; a wave started before this finishes well within it.
const DEFAULT_BUDGET: Duration = Duration::from_secs(45);
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
    /// Waves of a batch are started only within this time, so a large batch ends well inside
    /// the function's timeout; what was not started goes back to the queue at once.
    pub budget: Duration,
}

impl Worker {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let sqs = aws_sdk_sqs::Client::new(&app.sdk);
        Ok(Self {
            push_queue_url: env.required("PUSH_QUEUE_URL")?,
            sqs,
            policy: PushPolicy::default(),
            budget: DEFAULT_BUDGET,
            app,
        })
    }
}

/// Why a message is handed back to the queue.
#[derive(Debug)]
pub struct Retry {
    /// How long to hold it back; the queue's own visibility timeout when `None`.
    pub after: Option<Duration>,
}

pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let started = std::time::Instant::now();
    let messages = event.records;
    let mut results: Vec<Result<(), Retry>> = Vec::with_capacity(messages.len());
    let mut plan = Lots::default();
    let mut bus: Vec<(usize, Value)> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        results.push(Ok(()));
        match read(message.body.as_deref().unwrap_or_default()) {
            Ok(Read::Bus(value)) => bus.push((index, value)),
            Ok(Read::Events(tenant, events)) => plan.add(index, tenant, events),
            Err(retry) => results[index] = Err(retry),
        }
    }
    let told: Vec<(usize, Result<(), Retry>)> = futures::stream::iter(bus)
        .map(|(index, value)| async move { (index, bus_event(worker, value).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (index, result) in told {
        results[index] = result;
    }
    // Waves run one after another, so two events for one invoice are never pushed at once;
    // the lots of a wave run side by side. A lot not started within the budget goes back to
    // the queue at once, for a fresh invocation to take.
    for wave in plan.waves {
        let done: Vec<(Vec<usize>, Vec<PushResult>)> = futures::stream::iter(wave)
            .map(|lot| async move {
                let (indices, events): (Vec<usize>, Vec<InvoiceEvent>) = lot.events.into_iter().unzip();
                if started.elapsed() > worker.budget {
                    let later =
                        || Err(PushError::Later { reason: "out of time".into(), after: Duration::from_secs(1) });
                    return (indices, events.iter().map(|_| later()).collect());
                }
                (indices, push(&worker.app, &worker.policy, lot.key.tenant_id, events).await)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (indices, pushed) in done {
            for (index, result) in indices.into_iter().zip(pushed) {
                if let Err(retry) = verdict(std::slice::from_ref(&result)) {
                    merge(&mut results[index], retry);
                }
            }
        }
    }

    let mut response = SqsBatchResponse::default();
    for (message, result) in messages.iter().zip(results) {
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

/// A message fails when any of its events does, and comes back after the longest wait asked.
fn merge(result: &mut Result<(), Retry>, retry: Retry) {
    *result = Err(match std::mem::replace(result, Ok(())) {
        Ok(()) => retry,
        Err(r) => Retry { after: r.after.max(retry.after) },
    });
}

/// Up to fifty events of one connection, pushed together: one Xero call writes them all.
struct Lot {
    key: ConnectionKey,
    /// The message each event came in, and the event.
    events: Vec<(usize, InvoiceEvent)>,
}

/// A batch's events, grouped so that a burst of webhooks costs one Xero write per fifty
/// invoices. An invoice appears at most once per wave; a later event for it waits a wave.
#[derive(Default)]
struct Lots {
    waves: Vec<Vec<Lot>>,
}

impl Lots {
    fn add(&mut self, index: usize, tenant: TenantId, events: Vec<InvoiceEvent>) {
        for event in events {
            let key = ConnectionKey { account_id: event.account_id.clone(), tenant_id: tenant };
            let wave = self
                .waves
                .iter()
                .position(|wave| {
                    !wave
                        .iter()
                        .any(|lot| lot.key == key && lot.events.iter().any(|(_, e)| e.invoice.id == event.invoice.id))
                })
                .unwrap_or_else(|| {
                    self.waves.push(Vec::new());
                    self.waves.len() - 1
                });
            let lots = &mut self.waves[wave];
            match lots.iter_mut().find(|lot| lot.key == key && lot.events.len() < XERO_BATCH) {
                Some(lot) => lot.events.push((index, event)),
                None => lots.push(Lot { key, events: vec![(index, event)] }),
            }
        }
    }
}

enum Read {
    /// From our own bus (`connection.connected`).
    Bus(Value),
    /// Invoice events of one organisation.
    Events(TenantId, Vec<InvoiceEvent>),
}

fn read(body: &str) -> Result<Read, Retry> {
    let value: Value = serde_json::from_str(body).map_err(|e| unreadable(&e.to_string()))?;
    if value.get("detail-type").is_some() {
        return Ok(Read::Bus(value));
    }
    let message: QueueMessage = serde_json::from_value(value).map_err(|e| unreadable(&e.to_string()))?;
    match message {
        QueueMessage::Event(m) => Ok(Read::Events(m.tenant_id, vec![m.event])),
        QueueMessage::Backfill(chunk) => {
            if chunk.events.iter().any(|e| e.account_id != chunk.account_id) {
                return Err(unreadable("a backfill chunk mixes accounts"));
            }
            Ok(Read::Events(chunk.tenant_id, chunk.events))
        }
    }
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
    // The parser's words, without the values it quotes (customers' details).
    let reason = xero_sync_core::error::without_values(reason);
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
