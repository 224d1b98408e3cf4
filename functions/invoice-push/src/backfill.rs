//! `POST /accounts/{account}/connections/{tenant}/backfill`: copy many existing invoices to
//! Xero (the platform's "select the dates, select the invoices, copy"). Each item is an
//! invoice and its customer as in the webhook, plus the platform's `updated_at` for it.
//!
//! The call checks every invoice at once and answers 202 with what it accepted and what it
//! refused (and why). Accepted invoices go onto the push queue in chunks of up to fifty, and
//! each chunk becomes one Xero request (`summarizeErrors=false`), so 500 invoices cost ten
//! invoice calls. Each invoice's outcome reaches the platform as `invoice.synced` or
//! `invoice.sync_failed`, and `GET .../invoices/{id}` answers for one invoice at any time.
//!
//! Repeating a request is harmless: its id is derived from its body, and invoices already in
//! Xero with the same content are left alone.

use std::collections::HashSet;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use xero_sync_domain::Error;
use xero_sync_domain::attachment::DocumentKind;
use xero_sync_domain::digest::hex;
use xero_sync_domain::links::XeroDocument;
use xero_sync_domain::model::{ConnectionKey, PlatformInvoiceId};
use xero_sync_http::{ApiError, Problem, json, parse_json};

use crate::event::{Customer, EventType, Invoice, InvoiceEvent};
use crate::message::{BackfillChunk, QueueMessage};
use crate::push::XERO_BATCH;
use crate::webhook::Webhook;

/// Invoices per request: 20 Xero calls' worth, well inside a Lambda's payload limit.
pub const MAX_INVOICES: usize = 1000;
/// Lambda takes request bodies up to 6 MB.
pub const MAX_BODY: usize = 6 * 1024 * 1024 - 64 * 1024;
/// An SQS message holds 256 KiB; leave room for the envelope.
const MAX_MESSAGE: usize = 240 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillRequest {
    invoices: Vec<BackfillItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillItem {
    invoice: Invoice,
    customer: Customer,
    /// When the invoice last changed in the platform: orders this copy against the webhook's
    /// events, so a backfill sent late never puts an older version back into Xero.
    updated_at: chrono::DateTime<chrono::Utc>,
    /// The invoice's version in the platform, as in the webhook's `sequence`.
    #[serde(default)]
    sequence: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Refused {
    index: usize,
    invoice_id: PlatformInvoiceId,
    problems: Vec<Problem>,
}

pub async fn start(webhook: &Webhook, key: &ConnectionKey, body: &[u8]) -> Result<Response<Body>, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let request: BackfillRequest = parse_json(body).map_err(|p| ApiError::BadRequest(vec![p]))?;
    if request.invoices.is_empty() || request.invoices.len() > MAX_INVOICES {
        return Err(ApiError::BadRequest(vec![Problem::new(
            "invoices",
            format!("must hold 1 to {MAX_INVOICES} invoices (this has {})", request.invoices.len()),
        )]));
    }
    let app = &webhook.app;
    let connection = app.services.store.get_connection(key).await?.ok_or_else(|| {
        ApiError::NotFound(format!("account {} has no connection to tenant {}", key.account_id, key.tenant_id))
    })?;
    if !connection.status.is_live() {
        return Err(ApiError::Conflict(format!("the connection is {:?}; connect it again first", connection.status)));
    }
    let backfill_id = format!("bf-{}", &hex(&Sha256::digest(body))[..24]);
    let mut seen = HashSet::new();
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (index, item) in request.invoices.into_iter().enumerate() {
        let event = InvoiceEvent {
            delivery_id: format!("{backfill_id}:{index}"),
            event: EventType::Created,
            occurred_at: chrono::SubsecRound::trunc_subsecs(item.updated_at, 6),
            sequence: item.sequence,
            account_id: key.account_id.clone(),
            xero_tenant_id: Some(key.tenant_id),
            invoice: item.invoice,
            customer: item.customer,
        };
        let mut problems: Vec<Problem> = event
            .problems()
            .into_iter()
            .map(|p| Problem::new(format!("invoices[{index}].{}", p.field), p.message))
            .collect();
        if !seen.insert(event.invoice.id.clone()) {
            problems.push(Problem::new(format!("invoices[{index}].invoice.id"), "appears earlier in this backfill"));
        }
        if problems.is_empty() {
            accepted.push(event);
        } else {
            refused.push(Refused { index, invoice_id: event.invoice.id.clone(), problems });
        }
    }
    if accepted.is_empty() {
        return Err(ApiError::Unprocessable(refused.into_iter().flat_map(|r| r.problems).collect()));
    }
    let count = accepted.len();
    let chunks = chunk(&backfill_id, key, accepted)?;
    enqueue(webhook, &chunks).await?;
    tracing::info!(account = %key.account_id, tenant = %key.tenant_id, backfill = %backfill_id, invoices = count, chunks = chunks.len(), refused = refused.len(), "backfill accepted");
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({ "backfill_id": backfill_id, "accepted": count, "chunks": chunks.len(), "refused": refused }),
    ))
}

/// Queue messages of up to fifty invoices each, smaller when the invoices are large.
fn chunk(backfill_id: &str, key: &ConnectionKey, events: Vec<InvoiceEvent>) -> Result<Vec<String>, ApiError> {
    let corrupt =
        |e: serde_json::Error| ApiError::Internal(Error::Corrupt { what: "backfill chunk", reason: e.to_string() });
    let message = |events: Vec<InvoiceEvent>| {
        serde_json::to_string(&QueueMessage::Backfill(BackfillChunk {
            backfill_id: backfill_id.to_owned(),
            account_id: key.account_id.clone(),
            tenant_id: key.tenant_id,
            events,
        }))
    };
    let mut out = Vec::new();
    let mut current: Vec<InvoiceEvent> = Vec::new();
    let mut size = 0;
    for event in events {
        let event_size = serde_json::to_string(&event).map_err(corrupt)?.len();
        if event_size > MAX_MESSAGE {
            return Err(ApiError::PayloadTooLarge { limit: MAX_MESSAGE });
        }
        if current.len() == XERO_BATCH || size + event_size > MAX_MESSAGE {
            out.push(message(std::mem::take(&mut current)).map_err(corrupt)?);
            size = 0;
        }
        size += event_size + 1;
        current.push(event);
    }
    if !current.is_empty() {
        out.push(message(current).map_err(corrupt)?);
    }
    Ok(out)
}

async fn enqueue(webhook: &Webhook, messages: &[String]) -> Result<(), ApiError> {
    let refused = webhook.queue.send_all(messages).await?;
    if !refused.is_empty() {
        // Chunks already queued are harmless to send again: the platform retries the call.
        return Err(ApiError::Upstream {
            message: format!("{} chunks could not be queued; send the backfill again", refused.len()),
            retryable: true,
        });
    }
    Ok(())
}

/// `GET .../invoices/{id}`: what became of one invoice.
pub async fn invoice_status(webhook: &Webhook, key: &ConnectionKey, invoice: &str) -> Result<Response<Body>, ApiError> {
    let id = PlatformInvoiceId::parse(invoice)
        .map_err(|e| ApiError::BadRequest(vec![Problem::new("invoice", e.to_string())]))?;
    Ok(json(StatusCode::OK, &invoice_view(webhook, key, &id).await?))
}

/// What `GET .../invoices/{id}` answers (a retry answers with it too).
pub(crate) async fn invoice_view(
    webhook: &Webhook,
    key: &ConnectionKey,
    id: &PlatformInvoiceId,
) -> Result<serde_json::Value, ApiError> {
    let store = &webhook.app.services.store;
    let record = store.get_sync_record(key, id).await?;
    // Payments taken before their invoice reached us are shown too: they wait for it.
    let payments = store.invoice_payments(key, id).await?;
    if record.is_none() && payments.is_empty() {
        return Err(ApiError::NotFound(format!("invoice {id} has not been sent to this Xero organisation")));
    }
    let connection = store.get_connection(key).await?;
    let files = store.get_attachments(key, DocumentKind::Invoice, id.as_str()).await?;
    let link = |document| connection.as_ref().and_then(|c| c.xero_link(document));
    let payments: Vec<_> = payments
        .iter()
        .map(|p| {
            json!({
                "payment_id": p.payment_id,
                "refund": p.refund,
                "status": p.status,
                "xero_payment_id": p.xero_payment_id,
                "xero_url": p.xero_payment_id.and_then(|id| link(XeroDocument::Payment(id))),
                "amount": p.amount.map(|a| a.normalize().to_string()),
                "date": p.date.map(|d| d.format("%Y-%m-%d").to_string()),
                "reason": p.reason,
                "xero_credit_note_id": p.xero_credit_note_id,
                "xero_credit_note_url": p.xero_credit_note_id.and_then(|id| link(XeroDocument::CreditNote(id))),
                "updated_at": xero_sync_domain::time::format(p.updated_at),
            })
        })
        .collect();
    Ok(json!({
            "invoice_id": id,
            "invoice_number": record.as_ref().map(|r| &r.invoice_number),
            "status": record.as_ref().map(|r| r.status),
            "xero_invoice_id": record.as_ref().and_then(|r| r.xero_invoice_id),
            "xero_status": record.as_ref().and_then(|r| r.xero_status),
            "xero_url": record.as_ref().and_then(|r| r.xero_invoice_id).and_then(|id| link(XeroDocument::Invoice(id))),
            "last_error": record.as_ref().and_then(|r| r.last_error.as_deref()),
            "attempts": record.as_ref().map_or(0, |r| r.attempts),
            "updated_at": record.as_ref().map(|r| xero_sync_domain::time::format(r.updated_at)),
            "payments": payments,
            "attachments": crate::attachments::listed(files.as_ref(), webhook.app.now()),
    }))
}
