//! Payments from the platform to Xero, each exactly once, as invoices are (see [`crate::push`]):
//!
//! 1. **Decide** from the payment's record and its invoice's, without Xero: an older event is
//!    dropped; a payment whose invoice is not in Xero yet (or is a draft there) is held back on
//!    the queue, its reason kept for the invoice API; one the consent does not allow is parked
//!    until a reconnection that does; one whose method maps to no account fails.
//! 2. **Claim** the payment record before any Xero call; a claim left behind by a pusher that
//!    died makes the record *uncertain*.
//! 3. **Write**: approve draft invoices first when the settings say so; look up uncertain
//!    creates on their invoice (Xero forgets an Idempotency-Key after about six minutes);
//!    create the rest in one `PUT /Payments` (`summarizeErrors=false`), delete voided ones one
//!    `POST /Payments/{id}` each, every write with an Idempotency-Key.
//! 4. **Record and tell**: `payment.synced` or `payment.sync_failed`, one email per failure,
//!    and the invoice's record told of the payment, so Xero showing it back is no news.

mod plan;
mod refund;
mod settle;
mod write;

pub use plan::{PaymentOutcome, PaymentResult, RECONNECT_FOR_PAYMENTS};

use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::model::{ConnectionKey, ConnectionStatus, SyncRecord, TenantId};
use xero_sync_domain::payment::PaymentRecord;
use xero_sync_domain::scopes::Feature;
use xero_sync_domain::xero::Invoice;
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;

use crate::message::{PaymentMessage, QueueMessage};
use crate::payment_event::{PaymentEvent, PaymentEventType};
use crate::push::{
    ParkedUnder, PushError, PushPolicy, blocked_without, later_for, park_items, parked, per_event,
    reconnected_meanwhile,
};
use plan::{Plan, decide};

struct Job {
    event: PaymentEvent,
    record: PaymentRecord,
    /// The invoice's sync record, as read before the push.
    invoice: Option<SyncRecord>,
    plan: Plan,
    claimed: bool,
    /// A draft invoice approved by this push.
    approved: bool,
    /// The Xero contact of the invoice, for a refund's credit note: from the invoice's record,
    /// or read from Xero for records made before it was kept.
    contact: Option<Uuid>,
    result: Option<PaymentResult>,
    /// The invoice as Xero answered the payment's write: its payment state now.
    invoice_after: Option<Invoice>,
}

/// Pushes the payment events of one connection. Every event gets a result, in order.
pub async fn push_payments(
    app: &App,
    policy: &PushPolicy,
    tenant: TenantId,
    events: Vec<PaymentEvent>,
) -> Vec<PaymentResult> {
    let Some(first) = events.first() else { return Vec::new() };
    let key = ConnectionKey { account_id: first.account_id.clone(), tenant_id: tenant };
    per_event("payment", &key, events.len(), inner(app, policy, &key, events)).await
}

async fn inner(
    app: &App,
    policy: &PushPolicy,
    key: &ConnectionKey,
    events: Vec<PaymentEvent>,
) -> Result<Vec<PaymentResult>, PushError> {
    let store = &app.services.store;
    let Some(connection) = store.get_connection(key).await? else {
        return Ok(events.iter().map(|_| Ok(PaymentOutcome::NotConnected)).collect());
    };
    match connection.status {
        ConnectionStatus::Connected => {}
        ConnectionStatus::NeedsReconnect => return park(app, key, &events).await,
        _ => return Ok(events.iter().map(|_| Ok(PaymentOutcome::NotConnected)).collect()),
    }
    let allowed = match app.tokens.granted_scopes(&connection).await {
        Ok(scopes) => Feature::PushPayments.allowed_by(&scopes),
        Err(TokenError::Reconnect) => return park(app, key, &events).await,
        Err(e) => return Err(later_for(&e)),
    };
    let settings = store.get_settings(key).await?.settings;
    let now = app.now();
    let mut jobs = Vec::with_capacity(events.len());
    for event in events {
        let (invoice_id, payment_id) = (&event.payment.invoice_id, &event.payment.id);
        let record = store
            .get_payment_record(key, invoice_id, payment_id)
            .await?
            .unwrap_or_else(|| PaymentRecord::new(key, payment_id.clone(), invoice_id.clone(), now));
        let invoice = store.get_sync_record(key, invoice_id).await?;
        let plan = decide(&event, &record, invoice.as_ref(), &settings, allowed, now, policy);
        jobs.push(Job {
            event,
            record,
            contact: invoice.as_ref().and_then(|i| i.xero_contact_id),
            invoice,
            plan,
            claimed: false,
            approved: false,
            result: None,
            invoice_after: None,
        });
    }
    for job in jobs.iter_mut().filter(|j| j.plan.writes()) {
        let mut claimed = job.record.clone();
        claimed.refund |= job.event.event == PaymentEventType::Refunded;
        claimed.uncertain |= claimed.claimed_until.is_some();
        claimed.claimed_until = Some(now + policy.claim_for);
        claimed.amount = job.event.payment.amount.or(claimed.amount);
        claimed.date = job.event.payment.date.or(claimed.date);
        claimed.updated_at = now;
        match store.save_payment_record(&claimed).await {
            Ok(saved) => {
                job.record = saved;
                job.claimed = true;
            }
            Err(Error::Conflict(_)) => {
                job.plan = Plan::Done(Err(PushError::later("another push has this payment", policy.busy_retry)))
            }
            Err(e) => return Err(e.into()),
        }
    }
    write::to_xero(app, policy, &connection, &settings, &mut jobs).await;
    let not_allowed: Vec<PaymentEvent> = jobs
        .iter()
        .filter(|j| matches!(j.plan, Plan::NotAllowed) || matches!(j.result, Some(Ok(PaymentOutcome::Parked))))
        .map(|j| j.event.clone())
        .collect();
    let scope_missing = jobs.iter().any(|j| matches!(j.plan, Plan::NotAllowed));
    let mut results = settle::finish(app, &connection, jobs).await?;
    if scope_missing {
        settle::tell_scope_missing(app, &connection).await;
    }
    if !not_allowed.is_empty() {
        let parked = park(app, key, &not_allowed).await?;
        let mut parked = parked.into_iter();
        for result in results.iter_mut().filter(|r| matches!(r, Ok(PaymentOutcome::Parked))) {
            *result = parked.next().unwrap_or(Ok(PaymentOutcome::Parked));
        }
    }
    Ok(results)
}

/// Parks payment events until the organisation is reconnected, beside its invoices' events.
async fn park(app: &App, key: &ConnectionKey, events: &[PaymentEvent]) -> Result<Vec<PaymentResult>, PushError> {
    let mut items = Vec::with_capacity(events.len());
    for event in events {
        let message =
            QueueMessage::Payment(Box::new(PaymentMessage { tenant_id: key.tenant_id, event: event.clone() }));
        items.push(parked(ParkedUnder::Payment(event.payment.id.clone()), event.order(), &message)?);
    }
    // Held for the consent as much as for the connection: released only by one that allows payments.
    let parked = park_items(&*app.services.store, key, &items, blocked_without(Feature::PushPayments)).await?;
    Ok(events.iter().map(|_| if parked { Ok(PaymentOutcome::Parked) } else { Err(reconnected_meanwhile()) }).collect())
}

/// The Xero id of the invoice a job pays, when it is in Xero.
fn xero_invoice(job: &Job) -> Option<Uuid> {
    job.invoice.as_ref().and_then(|i| i.xero_invoice_id)
}
