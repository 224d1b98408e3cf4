//! After Xero: each payment's record, the platform's events, the account's email, and the
//! invoice's record told of the payment.

use std::time::Duration as StdDuration;

use serde_json::json;
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::links::XeroDocument;
use xero_sync_domain::model::{Connection, SyncRecord};
use xero_sync_domain::notify::Notice;
use xero_sync_domain::payment::{PaymentRecord, PaymentSyncStatus};
use xero_sync_domain::store::at_most_once;
use xero_sync_domain::xero::{Invoice, InvoiceStatus};
use xero_sync_runtime::{App, mail};

use super::Job;
use super::plan::{PaymentOutcome, PaymentResult, Plan, RECONNECT_FOR_PAYMENTS};
use crate::push::{PushError, REMEMBER_NOTICES, clone_error, tell_once};

enum Announce {
    Synced(Option<&'static str>),
    Failed(Vec<String>),
}

struct Settled {
    record: Option<PaymentRecord>,
    announce: Option<Announce>,
}

fn settle(job: &mut Job, now: chrono::DateTime<chrono::Utc>) -> (PaymentResult, Settled) {
    let plan = std::mem::replace(&mut job.plan, Plan::Done(Ok(PaymentOutcome::Unchanged)));
    let event = &job.event;
    let mut next = job.record.clone();
    next.updated_at = now;
    if job.claimed {
        next.claimed_until = None;
    }
    let applied = |mut next: PaymentRecord| {
        next.last_event_at = Some(next.last_event_at.map_or(event.occurred_at, |at| at.max(event.occurred_at)));
        next.last_sequence = next.last_sequence.max(event.sequence);
        next.last_delivery_id = Some(event.delivery_id.clone());
        next.amount = event.payment.amount.or(next.amount);
        next.date = event.payment.date.or(next.date);
        next
    };
    let failed = |mut next: PaymentRecord, reasons: Vec<String>| {
        next.status = PaymentSyncStatus::Failed;
        next.reason = Some(reasons.join("; "));
        (
            Ok(PaymentOutcome::Failed { reasons: reasons.clone() }),
            Settled { record: Some(applied(next)), announce: Some(Announce::Failed(reasons)) },
        )
    };
    let held = |mut next: PaymentRecord, reason: &str| {
        next.status = PaymentSyncStatus::Held;
        next.reason = Some(reason.to_owned());
        applied(next)
    };
    match plan {
        Plan::Done(Ok(PaymentOutcome::Voided { xero_payment_id: None })) => {
            next.status = PaymentSyncStatus::Voided;
            next.reason = None;
            let record = Some(applied(next));
            (
                Ok(PaymentOutcome::Voided { xero_payment_id: None }),
                Settled { record, announce: Some(Announce::Synced(Some("voided"))) },
            )
        }
        Plan::Done(result) => (result, Settled { record: None, announce: None }),
        Plan::Hold { reason, after } => {
            let record = (job.record.reason.as_deref() != Some(reason.as_str()) || job.record.version == 0)
                .then(|| held(next, &reason));
            (Err(PushError::Held { reason, after }), Settled { record, announce: None })
        }
        Plan::NotAllowed => {
            (Ok(PaymentOutcome::Parked), Settled { record: Some(held(next, RECONNECT_FOR_PAYMENTS)), announce: None })
        }
        Plan::Fail { reason } => failed(next, vec![reason]),
        plan @ (Plan::Create { .. } | Plan::Delete | Plan::Refund { .. }) => {
            let result =
                job.result.take().unwrap_or_else(|| Err(PushError::later("not attempted", StdDuration::from_secs(5))));
            match result {
                Ok(PaymentOutcome::Failed { reasons }) => failed(next, reasons),
                Ok(PaymentOutcome::Parked) => (
                    Ok(PaymentOutcome::Parked),
                    Settled { record: Some(held(next, RECONNECT_FOR_PAYMENTS)), announce: None },
                ),
                Ok(outcome @ (PaymentOutcome::Synced { .. } | PaymentOutcome::Voided { .. })) => {
                    let (action, status) = match (&outcome, plan) {
                        (PaymentOutcome::Synced { .. }, Plan::Refund { .. }) => ("refunded", PaymentSyncStatus::Synced),
                        (PaymentOutcome::Synced { .. }, _) => ("created", PaymentSyncStatus::Synced),
                        _ => ("voided", PaymentSyncStatus::Voided),
                    };
                    next.status = status;
                    next.reason = None;
                    next.uncertain = false;
                    (
                        Ok(outcome),
                        Settled { record: Some(applied(next)), announce: Some(Announce::Synced(Some(action))) },
                    )
                }
                // Waits; the claim is released, and what the write learnt (uncertain) is kept.
                other => (other, Settled { record: job.claimed.then_some(next), announce: None }),
            }
        }
    }
}

/// Tells the platform and the account, then records each payment, so a record never says done
/// before it was announced; a failure to tell is recorded as untold and told by the redelivery.
pub(super) async fn finish(
    app: &App,
    connection: &Connection,
    mut jobs: Vec<Job>,
) -> Result<Vec<PaymentResult>, PushError> {
    let now = app.now();
    let mut settled = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        // A record left untold by an earlier delivery is told now.
        if job.record.untold && matches!(job.plan, Plan::Done(Ok(PaymentOutcome::Unchanged))) {
            let reasons: Vec<String> = job.record.reason.iter().cloned().collect();
            let announce = match job.record.status {
                PaymentSyncStatus::Failed => Announce::Failed(reasons),
                _ => Announce::Synced(None),
            };
            let mut next = job.record.clone();
            next.untold = false;
            job.result = Some(Ok(PaymentOutcome::Unchanged));
            settled.push(Settled { record: Some(next), announce: Some(announce) });
            continue;
        }
        let (result, s) = settle(job, now);
        // The outcome's kind only: Xero's words may name the customer.
        let outcome = result.as_ref().map_or("retry", PaymentOutcome::kind);
        tracing::info!(account = %connection.account_id, payment = %job.event.payment.id, outcome, "payment pushed");
        job.result = Some(result);
        settled.push(s);
    }
    let mut events = Vec::new();
    let mut failures = Vec::new();
    for (job, s) in jobs.iter().zip(&settled) {
        let (Some(record), Some(announce)) = (&s.record, &s.announce) else { continue };
        match announce {
            Announce::Synced(action) => events.push(synced_event(record, connection, job, *action)),
            Announce::Failed(reasons) => {
                events.push(failed_event(record, reasons));
                failures.push((record.clone(), reasons.clone()));
            }
        }
    }
    let told = match app.services.events.publish(&events).await {
        Err(e) => Err(PushError::later(format!("publishing events: {e}"), StdDuration::from_secs(10))),
        Ok(()) => tell_the_account(app, connection, &failures)
            .await
            .map_err(|e| PushError::later(format!("emailing the account: {e}"), StdDuration::from_secs(30))),
    };
    for (job, s) in jobs.iter_mut().zip(settled) {
        let Some(mut record) = s.record else { continue };
        record.untold = told.is_err() && s.announce.is_some();
        match app.services.store.save_payment_record(&record).await {
            Ok(saved) => {
                if s.announce.is_some() {
                    note_on_invoice(app, job, &saved).await;
                }
            }
            Err(Error::Conflict(_)) => {
                job.result =
                    Some(Err(PushError::later("the payment record changed under us", StdDuration::from_secs(5))))
            }
            Err(e) => job.result = Some(Err(e.into())),
        }
        if let (Err(e), Some(_)) = (&told, &s.announce) {
            job.result = Some(Err(clone_error(e)));
        }
    }
    if told.is_ok()
        && jobs
            .iter()
            .any(|j| matches!(j.result, Some(Ok(PaymentOutcome::Synced { .. } | PaymentOutcome::Voided { .. }))))
    {
        if let Err(e) = app.services.store.record_activity(&connection.key(), now).await {
            tracing::warn!(account = %connection.account_id, error = %e, "activity not recorded");
        }
    }
    Ok(jobs.into_iter().map(|j| j.result.unwrap_or(Ok(PaymentOutcome::Unchanged))).collect())
}

/// Our own payment is no news to the platform when Xero shows it back: it joins the invoice's
/// announced payments (or leaves them, once deleted), and the invoice's payment state is the
/// one Xero answered with. Best effort: a lost race costs one repeated event, never a payment.
async fn note_on_invoice(app: &App, job: &Job, saved: &PaymentRecord) {
    // A refund is paid out of its own credit note: the invoice neither lists it nor changes.
    let Some(xero_payment) = saved.xero_payment_id.filter(|_| !saved.refund) else { return };
    let store = &app.services.store;
    let mut record: Option<SyncRecord> = job.invoice.clone();
    for _ in 0..3 {
        let Some(mut next) = record.take() else { return };
        match saved.status {
            PaymentSyncStatus::Synced if !next.announced_payments.contains(&xero_payment) => {
                next.announced_payments.push(xero_payment)
            }
            PaymentSyncStatus::Voided => next.announced_payments.retain(|id| *id != xero_payment),
            _ => {}
        }
        if let Some(state) = job.invoice_after.as_ref().and_then(Invoice::payment_state) {
            next.payment_state = Some(state);
            next.xero_status = job.invoice_after.as_ref().and_then(|i| i.status).or(next.xero_status);
        } else if job.approved {
            next.xero_status = Some(InvoiceStatus::Authorised);
        }
        match store.save_sync_record(&next).await {
            Ok(_) => return,
            Err(Error::Conflict(_)) => {
                record = store.get_sync_record(&saved.key(), &saved.invoice_id).await.ok().flatten();
            }
            Err(e) => {
                tracing::warn!(payment = %saved.payment_id, error = %e, "the invoice's record was not told of the payment");
                return;
            }
        }
    }
}

fn event_key(record: &PaymentRecord) -> String {
    format!("{}|{}|{:?}", record.payment_id, record.last_delivery_id.as_deref().unwrap_or_default(), record.status)
}

fn synced_event(record: &PaymentRecord, connection: &Connection, job: &Job, action: Option<&str>) -> PlatformEvent {
    let mut data = json!({
        "payment_id": record.payment_id,
        "invoice_id": record.invoice_id,
        "xero_payment_id": record.xero_payment_id,
        "xero_invoice_id": super::xero_invoice(job),
        "amount": record.amount.map(|a| a.normalize().to_string()),
        "status": if record.status == PaymentSyncStatus::Voided { "VOIDED" } else { "SYNCED" },
        "xero_url": record.xero_payment_id.and_then(|id| connection.xero_link(XeroDocument::Payment(id))),
        "action": action,
    });
    if record.refund {
        data["refund"] = json!(true);
        data["xero_credit_note_id"] = json!(record.xero_credit_note_id);
        data["xero_credit_note_url"] =
            json!(record.xero_credit_note_id.and_then(|id| connection.xero_link(XeroDocument::CreditNote(id))));
    }
    PlatformEvent::new(
        EventKind::PaymentSynced,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        data,
    )
}

fn failed_event(record: &PaymentRecord, reasons: &[String]) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::PaymentSyncFailed,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "payment_id": record.payment_id,
            "invoice_id": record.invoice_id,
            "reasons": reasons,
        }),
    )
}

/// One email for the failures of this push, sent once however often it is retried.
async fn tell_the_account(
    app: &App,
    connection: &Connection,
    failures: &[(PaymentRecord, Vec<String>)],
) -> Result<(), Error> {
    if failures.is_empty() || connection.notify_email.is_none() {
        return Ok(());
    }
    let subject = match failures {
        [(r, _)] => format!("A payment for invoice {} did not reach Xero", r.invoice_id),
        many => format!("{} payments did not reach Xero", many.len()),
    };
    let details = failures
        .iter()
        .map(|(r, reasons)| (format!("Payment {} for invoice {}", r.payment_id, r.invoice_id), reasons.join("; ")))
        .collect();
    let notice = Notice {
        subject,
        organisation: connection.organisation_name.clone(),
        what_happened: "Xero did not record the payment, so the invoice still shows it as due there.".into(),
        details,
        what_to_do: "Fix what is named above (the payment account mapping in the Xero settings, or the invoice in \
            Xero), then record the payment in Xero by hand or take it again in the platform."
            .into(),
    };
    let keys = failures.iter().map(|(record, _)| event_key(record));
    tell_once(app, connection, "payment-failed", keys, notice).await
}

/// Once per consent: payments wait because it did not grant `accounting.payments`. Best effort:
/// the held payments say so in the invoice API whatever becomes of the email, and a failed one
/// is tried again with the next payment.
pub(super) async fn tell_scope_missing(app: &App, connection: &Connection) {
    if connection.notify_email.is_none() {
        return;
    }
    let once =
        format!("payments-not-allowed#{}#{}#{}", connection.account_id, connection.tenant_id, connection.grant_id);
    let notice = Notice {
        subject: "Reconnect Xero to send payments".into(),
        organisation: connection.organisation_name.clone(),
        what_happened: "Payments taken in the platform are waiting: this organisation was connected before \
            payments were sent to Xero, and its connection does not allow recording them."
            .into(),
        details: vec![("Permission needed".into(), "accounting.payments".into())],
        what_to_do: "Connect the organisation again from the platform's Xero settings and approve the new \
            permission. The waiting payments are then recorded in Xero; invoices keep flowing meanwhile."
            .into(),
    };
    let now = app.now();
    let sent = at_most_once(app.services.store.as_ref(), &once, now, REMEMBER_NOTICES, || async {
        mail::tell(&app.services, std::slice::from_ref(connection), notice, now).await.map(|_| ())
    })
    .await;
    if let Err(e) = sent {
        tracing::warn!(account = %connection.account_id, error = %e, "the account was not told that payments need a reconnection");
    }
}
