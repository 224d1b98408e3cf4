//! After Xero: each credit note's record, the platform's events, the account's email, and the
//! invoice's record told of our allocation.

use std::time::Duration as StdDuration;

use serde_json::json;
use xero_sync_domain::Error;
use xero_sync_domain::credit_note::{CreditNoteRecord, CreditNoteSyncStatus};
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::links::XeroDocument;
use xero_sync_domain::model::{Connection, ContactMapping, ContactMatch};
use xero_sync_domain::notify::Notice;
use xero_sync_runtime::App;

use super::Job;
use super::plan::{CreditNoteOutcome, CreditNoteResult, Plan};
use crate::push::{PushError, clone_error, tell_once};

enum Announce {
    /// What this push did (`created`, `updated`, `voided`), or `None` to repeat a recorded outcome.
    Synced(Option<&'static str>),
    Failed(Vec<String>),
}

struct Settled {
    record: Option<CreditNoteRecord>,
    announce: Option<Announce>,
}

fn settle(job: &mut Job, now: chrono::DateTime<chrono::Utc>) -> (CreditNoteResult, Settled) {
    let plan = std::mem::replace(&mut job.plan, Plan::Done(Ok(CreditNoteOutcome::Unchanged)));
    let event = &job.event;
    let mut next = job.record.clone();
    next.updated_at = now;
    if job.claimed {
        next.claimed_until = None;
    }
    let applied = |mut next: CreditNoteRecord| {
        next.last_event_at = Some(next.last_event_at.map_or(event.occurred_at, |at| at.max(event.occurred_at)));
        next.last_sequence = next.last_sequence.max(event.sequence);
        next.last_delivery_id = Some(event.delivery_id.clone());
        next.number = event.credit_note.number.clone();
        next.invoice_id = event.credit_note.invoice_id.clone();
        next
    };
    let failed = |mut next: CreditNoteRecord, reasons: Vec<String>| {
        next.status = CreditNoteSyncStatus::Failed;
        next.reason = Some(reasons.join("; "));
        (
            Ok(CreditNoteOutcome::Failed { reasons: reasons.clone() }),
            Settled { record: Some(applied(next)), announce: Some(Announce::Failed(reasons)) },
        )
    };
    match plan {
        Plan::Done(Ok(outcome @ CreditNoteOutcome::Voided { xero_credit_note_id: None })) => {
            next.status = CreditNoteSyncStatus::Voided;
            next.reason = None;
            (Ok(outcome), Settled { record: Some(applied(next)), announce: Some(Announce::Synced(Some("voided"))) })
        }
        Plan::Done(result) => (result, Settled { record: None, announce: None }),
        Plan::Hold { reason, after } => {
            let record =
                (job.record.reason.as_deref() != Some(reason.as_str()) || job.record.version == 0).then(|| {
                    next.status = CreditNoteSyncStatus::Held;
                    next.reason = Some(reason.clone());
                    applied(next)
                });
            (Err(PushError::Held { reason, after }), Settled { record, announce: None })
        }
        Plan::Fail { reasons } => failed(next, reasons),
        plan @ (Plan::Write { .. } | Plan::Void) => {
            let result =
                job.result.take().unwrap_or_else(|| Err(PushError::later("not attempted", StdDuration::from_secs(5))));
            match result {
                Ok(CreditNoteOutcome::Failed { reasons }) => {
                    if let Plan::Write { hash, .. } = plan {
                        next.content_hash = Some(hash);
                    }
                    failed(next, reasons)
                }
                Ok(outcome @ CreditNoteOutcome::Synced { .. }) => {
                    next.status = CreditNoteSyncStatus::Synced;
                    next.uncertain = false;
                    if let Plan::Write { hash, .. } = plan {
                        next.content_hash = Some(hash);
                    }
                    let action = job.written;
                    (Ok(outcome), Settled { record: Some(applied(next)), announce: Some(Announce::Synced(action)) })
                }
                Ok(outcome @ CreditNoteOutcome::Voided { .. }) => {
                    next.status = CreditNoteSyncStatus::Voided;
                    next.reason = None;
                    next.uncertain = false;
                    next.allocated = None;
                    (
                        Ok(outcome),
                        Settled { record: Some(applied(next)), announce: Some(Announce::Synced(Some("voided"))) },
                    )
                }
                // Waits (a reconnection, or a retry); the claim is released, what was learnt kept.
                other => (other, Settled { record: job.claimed.then_some(next), announce: None }),
            }
        }
    }
}

/// Tells the platform and the account, then records each credit note, so a record never says
/// done before it was announced; a failure to tell is recorded as untold and told later.
pub(super) async fn finish(
    app: &App,
    connection: &Connection,
    mut jobs: Vec<Job>,
) -> Result<Vec<CreditNoteResult>, PushError> {
    let now = app.now();
    let mut settled = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        if job.record.untold && matches!(job.plan, Plan::Done(Ok(CreditNoteOutcome::Unchanged))) {
            let announce = match job.record.status {
                CreditNoteSyncStatus::Failed => Announce::Failed(job.record.reason.iter().cloned().collect()),
                _ => Announce::Synced(None),
            };
            let mut next = job.record.clone();
            next.untold = false;
            job.result = Some(Ok(CreditNoteOutcome::Unchanged));
            settled.push(Settled { record: Some(next), announce: Some(announce) });
            continue;
        }
        let (result, s) = settle(job, now);
        // The outcome's kind only: Xero's words may name the customer.
        tracing::info!(
            account = %connection.account_id, credit_note = %job.event.credit_note.id,
            outcome = result.as_ref().map_or("retry", CreditNoteOutcome::kind),
            removed_allocations = job.removed.allocations, removed_refunds = job.removed.refunds, "credit note pushed"
        );
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
        match app.services.store.save_credit_note_record(&record).await {
            Ok(_) => remember(app, connection, job).await,
            Err(Error::Conflict(_)) => {
                job.result =
                    Some(Err(PushError::later("the credit note record changed under us", StdDuration::from_secs(5))))
            }
            Err(e) => job.result = Some(Err(e.into())),
        }
        if let (Err(e), Some(_)) = (&told, &s.announce) {
            job.result = Some(Err(clone_error(e)));
        }
    }
    let wrote = jobs
        .iter()
        .any(|j| matches!(j.result, Some(Ok(CreditNoteOutcome::Synced { .. } | CreditNoteOutcome::Voided { .. }))));
    if told.is_ok() && wrote {
        if let Err(e) = app.services.store.record_activity(&connection.key(), now).await {
            tracing::warn!(account = %connection.account_id, error = %e, "activity not recorded");
        }
    }
    Ok(jobs.into_iter().map(|j| j.result.unwrap_or(Ok(CreditNoteOutcome::Unchanged))).collect())
}

/// What this push taught us, kept where the next push and the import look (best effort: a lost
/// race costs a lookup or one repeated event, never a document): the contact Xero created for
/// the customer, and the payment state our allocation left the invoice in, so Xero showing it
/// back is no news.
async fn remember(app: &App, connection: &Connection, job: &Job) {
    let store = &app.services.store;
    let key = connection.key();
    if let Some(contact) = job.created_contact {
        let mut mapping = ContactMapping::new(job.event.customer.id.clone(), contact, ContactMatch::Created, app.now());
        mapping.details_hash = Some(crate::customers::details_hash(&job.event.customer));
        if let Err(e) = store.put_contact_mapping(&key, &mapping).await {
            tracing::warn!(customer = %job.event.customer.id, error = %e, "contact mapping not kept");
        }
    }
    let Some(state) = job.invoice_state else { return };
    let mut record = job.invoice.clone();
    for _ in 0..3 {
        let Some(mut next) = record.take() else { return };
        next.payment_state = Some(state.text());
        next.xero_status = Some(state.status);
        match store.save_sync_record(&next).await {
            Ok(_) => return,
            Err(Error::Conflict(_)) => record = store.get_sync_record(&key, &next.invoice_id).await.ok().flatten(),
            Err(e) => {
                tracing::warn!(credit_note = %job.event.credit_note.id, error = %e, "the invoice's record was not told of the allocation");
                return;
            }
        }
    }
}

fn event_key(record: &CreditNoteRecord) -> String {
    format!("{}|{}|{:?}", record.credit_note_id, record.last_delivery_id.as_deref().unwrap_or_default(), record.status)
}

fn money(d: Option<rust_decimal::Decimal>) -> Option<String> {
    d.map(|d| d.normalize().to_string())
}

fn synced_event(record: &CreditNoteRecord, connection: &Connection, job: &Job, action: Option<&str>) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::CreditNoteSynced,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "credit_note_id": record.credit_note_id,
            "credit_note_number": record.number,
            "invoice_id": record.invoice_id,
            "xero_credit_note_id": record.xero_credit_note_id,
            "xero_invoice_id": job.xero_invoice().filter(|_| record.invoice_id.is_some()),
            "status": if record.status == CreditNoteSyncStatus::Voided { "VOIDED" } else { "SYNCED" },
            "total": money(record.total),
            "allocated": money(record.allocated),
            "unallocated_reason": record.reason,
            "removed": { "allocations": job.removed.allocations, "refunds": job.removed.refunds },
            "xero_url": record.xero_credit_note_id.and_then(|id| connection.xero_link(XeroDocument::CreditNote(id))),
            "action": action,
        }),
    )
}

fn failed_event(record: &CreditNoteRecord, reasons: &[String]) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::CreditNoteSyncFailed,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "credit_note_id": record.credit_note_id,
            "credit_note_number": record.number,
            "invoice_id": record.invoice_id,
            "reasons": reasons,
        }),
    )
}

/// One email for the failures of this push, sent once however often it is retried.
async fn tell_the_account(
    app: &App,
    connection: &Connection,
    failures: &[(CreditNoteRecord, Vec<String>)],
) -> Result<(), Error> {
    if failures.is_empty() || connection.notify_email.is_none() {
        return Ok(());
    }
    let subject = match failures {
        [(r, _)] => format!("Credit note {} did not reach Xero", r.number),
        many => format!("{} credit notes did not reach Xero", many.len()),
    };
    let details =
        failures.iter().map(|(r, reasons)| (format!("Credit note {}", r.number), reasons.join("; "))).collect();
    let notice = Notice {
        subject,
        organisation: connection.organisation_name.clone(),
        what_happened: "Xero did not record the credit note, so the customer's credit is missing there.".into(),
        details,
        what_to_do: "Fix what is named above (the settings' account and tax mappings, or the credit note in the \
            platform), then send the credit note again from the platform."
            .into(),
    };
    let keys = failures.iter().map(|(record, _)| event_key(record));
    tell_once(app, connection, "credit-note-failed", keys, notice).await
}
