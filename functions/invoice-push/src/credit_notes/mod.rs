//! Credit notes from the platform to Xero (a job's sales credits), each exactly once, as
//! invoices and payments are:
//!
//! 1. **Decide** from the credit note's record and its invoice's, without Xero: an older event
//!    is dropped, the same content again is unchanged; one whose invoice is not in Xero yet is
//!    held back on the queue; lines the settings cannot map fail, named.
//! 2. **Claim** the record before any Xero call; a claim left behind makes it *uncertain*.
//! 3. **Write** (`write`): uncertain creates looked up by CreditNoteNumber; before an update or
//!    a void, its allocations and refund payments in Xero are removed, as Xero requires;
//!    creates in one `PUT /CreditNotes`, updates and voids in one `POST /CreditNotes`
//!    (`summarizeErrors=false`); then each is allocated to its invoice for as much as the
//!    invoice still has due (`PUT /CreditNotes/{id}/Allocations`). Every write has an
//!    Idempotency-Key.
//! 4. **Record and tell** (`settle`): `credit_note.synced` (saying what was removed and what
//!    was allocated) or `credit_note.sync_failed` with one email; the invoice's record takes the
//!    state our allocation left it in, so Xero showing it back is no news.

mod allocate;
mod plan;
mod settle;
mod write;

pub use plan::{CreditNoteOutcome, CreditNoteResult};

use serde_json::Value;
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::credit_note::CreditNoteRecord;
use xero_sync_domain::model::{Connection, ConnectionKey, ConnectionStatus, SyncRecord, TenantId};
use xero_sync_domain::xero::CreditNotes;
use xero_sync_domain::xero::PaymentState;
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use crate::credit_note_event::CreditNoteEvent;
use crate::message::{CreditNoteMessage, QueueMessage};
use crate::push::{
    ParkedUnder, PushError, PushPolicy, idempotency_key, later_for, park_items, parked, per_event,
    reconnected_meanwhile, tracking_categories,
};
use plan::{Inputs, Plan, decide};

struct Job {
    event: CreditNoteEvent,
    record: CreditNoteRecord,
    /// The credited invoice's sync record, as read before the push.
    invoice: Option<SyncRecord>,
    plan: Plan,
    claimed: bool,
    /// The credit note's `Contact`, once known.
    contact: Option<Value>,
    /// Its allocations and refunds in Xero were read and removed (before an update or void).
    cleared: bool,
    /// Created or updated in Xero by this push (`created` or `updated`).
    written: Option<&'static str>,
    removed: Removed,
    /// The payment state this push left its invoice in, for the invoice's record.
    invoice_state: Option<PaymentState>,
    /// Found in Xero after a create whose answer was lost: it was created, not updated.
    created_unseen: bool,
    /// The contact Xero created for it, to remember for the customer.
    created_contact: Option<Uuid>,
    result: Option<CreditNoteResult>,
}

/// What an update or a void took off the credit note first.
#[derive(Debug, Default, Clone, Copy)]
struct Removed {
    allocations: usize,
    refunds: usize,
}

impl Job {
    fn xero_invoice(&self) -> Option<Uuid> {
        self.invoice.as_ref().and_then(|i| i.xero_invoice_id)
    }
}

/// Pushes the credit note events of one connection. Every event gets a result, in order.
pub async fn push_credit_notes(
    app: &App,
    policy: &PushPolicy,
    tenant: TenantId,
    events: Vec<CreditNoteEvent>,
) -> Vec<CreditNoteResult> {
    let Some(first) = events.first() else { return Vec::new() };
    let key = ConnectionKey { account_id: first.account_id.clone(), tenant_id: tenant };
    per_event("credit note", &key, events.len(), inner(app, policy, &key, events)).await
}

async fn inner(
    app: &App,
    policy: &PushPolicy,
    key: &ConnectionKey,
    events: Vec<CreditNoteEvent>,
) -> Result<Vec<CreditNoteResult>, PushError> {
    let store = &app.services.store;
    let Some(connection) = store.get_connection(key).await? else {
        return Ok(events.iter().map(|_| Ok(CreditNoteOutcome::NotConnected)).collect());
    };
    match connection.status {
        ConnectionStatus::Connected => {}
        ConnectionStatus::NeedsReconnect => return park(app, key, &events).await,
        _ => return Ok(events.iter().map(|_| Ok(CreditNoteOutcome::NotConnected)).collect()),
    }
    let settings = store.get_settings(key).await?.settings;
    let tracking = match tracking_categories(app, &connection, !settings.tracking_mapping.is_empty()).await {
        Ok(t) => t,
        Err(TokenError::Reconnect) => return park(app, key, &events).await,
        Err(e) => return Err(later_for(&e)),
    };
    let now = app.now();
    let inputs = Inputs { settings: &settings, tracking: &tracking, now, policy };
    let mut jobs = Vec::with_capacity(events.len());
    for event in events {
        let note = &event.credit_note;
        let record = store
            .get_credit_note_record(key, &note.id)
            .await?
            .unwrap_or_else(|| CreditNoteRecord::new(key, note.id.clone(), &note.number, now));
        let invoice = match &note.invoice_id {
            Some(id) => store.get_sync_record(key, id).await?,
            None => None,
        };
        let plan = decide(&event, &record, invoice.as_ref(), &inputs);
        jobs.push(Job {
            event,
            record,
            invoice,
            plan,
            claimed: false,
            contact: None,
            cleared: false,
            written: None,
            removed: Removed::default(),
            invoice_state: None,
            created_unseen: false,
            created_contact: None,
            result: None,
        });
    }
    for job in jobs.iter_mut().filter(|j| j.plan.writes()) {
        let mut claimed = job.record.clone();
        claimed.uncertain |= claimed.claimed_until.is_some();
        claimed.claimed_until = Some(now + policy.claim_for);
        claimed.updated_at = now;
        match store.save_credit_note_record(&claimed).await {
            Ok(saved) => {
                job.record = saved;
                job.claimed = true;
            }
            Err(Error::Conflict(_)) => {
                job.plan = Plan::Done(Err(PushError::later("another push has this credit note", policy.busy_retry)))
            }
            Err(e) => return Err(e.into()),
        }
    }
    write::to_xero(app, policy, &connection, &mut jobs).await;
    let waiting: Vec<CreditNoteEvent> = jobs
        .iter()
        .filter(|j| matches!(j.result, Some(Ok(CreditNoteOutcome::Parked))))
        .map(|j| j.event.clone())
        .collect();
    let mut results = settle::finish(app, &connection, jobs).await?;
    if !waiting.is_empty() {
        let mut parked = park(app, key, &waiting).await?.into_iter();
        for result in results.iter_mut().filter(|r| matches!(r, Ok(CreditNoteOutcome::Parked))) {
            *result = parked.next().unwrap_or(Ok(CreditNoteOutcome::Parked));
        }
    }
    Ok(results)
}

/// Parks credit note events until the organisation is reconnected, each under its own id.
async fn park(app: &App, key: &ConnectionKey, events: &[CreditNoteEvent]) -> Result<Vec<CreditNoteResult>, PushError> {
    let mut items = Vec::with_capacity(events.len());
    for event in events {
        let message =
            QueueMessage::CreditNote(Box::new(CreditNoteMessage { tenant_id: key.tenant_id, event: event.clone() }));
        items.push(parked(ParkedUnder::CreditNote(event.credit_note.id.clone()), event.order(), &message)?);
    }
    let parked = park_items(&*app.services.store, key, &items, |c| c.status != ConnectionStatus::Connected).await?;
    Ok(events
        .iter()
        .map(|_| if parked { Ok(CreditNoteOutcome::Parked) } else { Err(reconnected_meanwhile()) })
        .collect())
}

/// Writes credit notes to Xero fifty at most to a call (`PUT` creates, `POST` updates and
/// voids), answered element by element, with an Idempotency-Key for these deliveries. An answer
/// that does not name each element is unreadable, and may have been applied.
pub(crate) async fn send(
    app: &App,
    connection: &Connection,
    method: &str,
    elements: Vec<Value>,
    deliveries: &[&str],
) -> Result<Vec<xero_sync_domain::xero::CreditNote>, TokenError> {
    let count = elements.len();
    let body = serde_json::json!({ "CreditNotes": elements });
    let mut request = ApiRequest::new("/CreditNotes");
    request.query = vec![("summarizeErrors", "false".into())];
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, method, &body, deliveries));
    let answer: CreditNotes = if method == "PUT" {
        app.tokens.put(connection, &request, &body).await?.body
    } else {
        app.tokens.post(connection, &request, &body).await?.body
    };
    if answer.credit_notes.len() != count {
        return Err(TokenError::Xero(XeroError::Unreadable {
            what: "/CreditNotes".into(),
            reason: format!("{count} credit notes sent, {} answered", answer.credit_notes.len()),
            maybe_applied: true,
        }));
    }
    Ok(answer.credit_notes)
}
