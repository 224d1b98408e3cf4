//! A failed invoice sent again from what was stored: `POST .../invoices/{invoice}/retry`, and
//! the integration page's Retry button, which calls [`retry_invoice`] directly.
//!
//! The push keeps the event that left an invoice FAILED on its sync record
//! ([`keep_for_retry`]). A retry queues that event again under a new delivery id, and the
//! worker does what it does with any new delivery of content that failed: it tries again (the
//! account may have fixed the cause meanwhile). Two retries in a row cost nothing extra: the
//! second finds the invoice synced with the same content and leaves Xero alone.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::{ConnectionKey, PlatformInvoiceId, SyncRecord, SyncStatus};
use xero_sync_http::{ApiError, Problem, json};
use xero_sync_runtime::App;

use crate::event::{EventOrder, InvoiceEvent};
use crate::message::{PushMessage, QueueMessage};
use crate::webhook::Webhook;

/// What a retry queued.
#[derive(Debug, Clone)]
pub struct Retried {
    /// The new delivery the event was queued as.
    pub delivery_id: String,
    /// The record as it was when the retry was queued (still FAILED until the worker runs).
    pub record: SyncRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("invoice {0} has not been sent to this Xero organisation")]
    UnknownInvoice(PlatformInvoiceId),
    #[error("account {} has no connection to tenant {}", .0.account_id, .0.tenant_id)]
    NoConnection(ConnectionKey),
    #[error("the connection is {0}; connect it again first")]
    NotConnected(&'static str),
    #[error("only a failed invoice can be retried; invoice {invoice} is {}", status_name(*.status))]
    NotFailed { invoice: PlatformInvoiceId, status: SyncStatus },
    /// Failed before events were kept for a retry.
    #[error("invoice {0} failed before its event was kept for a retry; send the invoice again from the platform")]
    NothingKept(PlatformInvoiceId),
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<RetryError> for ApiError {
    fn from(e: RetryError) -> Self {
        match e {
            RetryError::UnknownInvoice(_) | RetryError::NoConnection(_) => Self::NotFound(e.to_string()),
            RetryError::NotConnected(_) | RetryError::NotFailed { .. } | RetryError::NothingKept(_) => {
                Self::Conflict(e.to_string())
            }
            RetryError::Store(e) => Self::Internal(e),
        }
    }
}

fn status_name(status: SyncStatus) -> &'static str {
    match status {
        SyncStatus::Pending => "PENDING",
        SyncStatus::Synced => "SYNCED",
        SyncStatus::Failed => "FAILED",
    }
}

/// Queues the failed `invoice`'s kept event again, as a new delivery, onto the push `queue`.
pub async fn retry_invoice(
    app: &App,
    queue: &Queue,
    key: &ConnectionKey,
    invoice: &PlatformInvoiceId,
) -> Result<Retried, RetryError> {
    let store = &app.services.store;
    let record =
        store.get_sync_record(key, invoice).await?.ok_or_else(|| RetryError::UnknownInvoice(invoice.clone()))?;
    if record.status != SyncStatus::Failed {
        return Err(RetryError::NotFailed { invoice: invoice.clone(), status: record.status });
    }
    let connection = store.get_connection(key).await?.ok_or_else(|| RetryError::NoConnection(key.clone()))?;
    // One waiting for a reconnection takes it: the push parks it until then.
    if !connection.status.is_live() {
        return Err(RetryError::NotConnected(connection.status.as_str()));
    }
    let kept = record.failed_message.as_deref().ok_or_else(|| RetryError::NothingKept(invoice.clone()))?;
    let corrupt = |e: serde_json::Error| Error::Corrupt { what: "event kept for a retry", reason: e.to_string() };
    let mut message: PushMessage = match serde_json::from_str(kept).map_err(corrupt)? {
        QueueMessage::Event(message) => *message,
        _ => {
            return Err(Error::Corrupt { what: "event kept for a retry", reason: "not an invoice event".into() }.into());
        }
    };
    let delivery_id = format!("retry-{}", uuid::Uuid::new_v4());
    message.event.delivery_id = delivery_id.clone();
    queue.send(&serde_json::to_string(&QueueMessage::Event(Box::new(message))).map_err(corrupt)?).await?;
    tracing::info!(account = %key.account_id, invoice = %invoice, delivery = %delivery_id, "failed invoice queued again");
    Ok(Retried { delivery_id, record })
}

/// Keeps `event` on a record the push is about to save FAILED, when it is the newest event the
/// record applied (so a retry never sends an older version); drops it once the record is not
/// failed. An event too large for the record is not kept: the platform sends it again instead.
pub(crate) fn keep_for_retry(record: &mut SyncRecord, event: &InvoiceEvent) {
    if record.status != SyncStatus::Failed {
        record.failed_message = None;
        return;
    }
    let applied = record.last_event_at.map(|occurred_at| EventOrder { occurred_at, sequence: record.last_sequence });
    if applied.is_some_and(|applied| event.order().is_older_than(&applied)) {
        return;
    }
    let message = QueueMessage::Event(Box::new(PushMessage { tenant_id: record.tenant_id, event: event.clone() }));
    record.failed_message =
        serde_json::to_string(&message).ok().filter(|m| m.len() <= MAX_KEPT).or(record.failed_message.take());
}

/// A queue message is at most 256 KiB, the rest of a sync record a few KB: with this cap the
/// record stays well inside DynamoDB's 400 KB item.
const MAX_KEPT: usize = 256 * 1024;

/// `POST .../invoices/{invoice}/retry`: 202 with the invoice's status, as `GET` shows it.
pub async fn route(webhook: &Webhook, key: &ConnectionKey, invoice: &str) -> Result<Response<Body>, ApiError> {
    let id = PlatformInvoiceId::parse(invoice)
        .map_err(|e| ApiError::BadRequest(vec![Problem::new("invoice", e.to_string())]))?;
    let retried = retry_invoice(&webhook.app, &webhook.queue, key, &id).await?;
    let mut view = crate::backfill::invoice_view(webhook, key, &id).await?;
    view["retry_delivery_id"] = serde_json::Value::String(retried.delivery_id);
    Ok(json(StatusCode::ACCEPTED, &view))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::event::example;

    #[test]
    fn a_failed_record_keeps_its_newest_event_and_a_synced_one_none() {
        let event = example();
        let key = ConnectionKey {
            account_id: event.account_id.clone(),
            tenant_id: xero_sync_domain::model::TenantId(uuid::Uuid::from_u128(9)),
        };
        let mut record = SyncRecord::new(&key, event.invoice.id.clone(), &event.invoice.number, event.occurred_at);
        record.status = SyncStatus::Failed;
        record.last_event_at = Some(event.occurred_at);
        keep_for_retry(&mut record, &event);
        let kept: QueueMessage = serde_json::from_str(record.failed_message.as_deref().unwrap()).unwrap();
        assert_eq!(kept, QueueMessage::Event(Box::new(PushMessage { tenant_id: key.tenant_id, event: event.clone() })));

        let mut older = event.clone();
        older.occurred_at -= Duration::minutes(5);
        older.delivery_id = "dlv-older".into();
        keep_for_retry(&mut record, &older);
        assert!(record.failed_message.as_deref().unwrap().contains(&event.delivery_id), "an older event is not kept");

        record.status = SyncStatus::Synced;
        keep_for_retry(&mut record, &event);
        assert_eq!(record.failed_message, None);
    }
}
