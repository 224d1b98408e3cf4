//! After Xero: each job's record, the platform's events and the account's email, in that order.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::json;
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::links::XeroDocument;
use xero_sync_domain::model::{Connection, ConnectionKey, ContactMapping, ContactMatch, SyncRecord, SyncStatus};
use xero_sync_domain::notify::Notice;
use xero_sync_domain::store::SyncRecordStore;
use xero_sync_domain::xero::InvoiceStatus;
use xero_sync_runtime::App;

use super::job::{ContactTarget, Job, Written, clone_error};
use super::plan::{Outcome, Plan, PushError, PushResult, VOID};
use crate::event::{EventOrder, InvoiceEvent};
use crate::push::tell_once;

/// What one job leaves behind: the record to save and what to announce.
pub(super) struct Settled {
    pub(super) record: Option<SyncRecord>,
    pub(super) announce: Option<Announcement>,
}

pub(super) enum Announcement {
    /// With what was done (`created`, `updated`, `voided`), when this push did it.
    Synced(Option<&'static str>),
    Failed(Vec<String>),
}

pub(super) fn action(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Created { .. } => Some("created"),
        Outcome::Updated { .. } => Some("updated"),
        Outcome::Voided { .. } => Some("voided"),
        _ => None,
    }
}

pub(super) fn settle(job: &mut Job, now: DateTime<Utc>) -> (PushResult, Settled) {
    let plan = std::mem::replace(&mut job.plan, Plan::Done(Ok(Outcome::Unchanged)));
    let event = &job.event;
    let mut next = job.record.clone();
    next.updated_at = now;
    if job.claimed {
        next.claimed_until = None;
    }
    let told = |mut next: SyncRecord, outcome: &Outcome| {
        next.last_event_at = Some(latest(&next, event));
        next.last_sequence = latest_sequence(&next, event);
        next.last_delivery_id = Some(event.delivery_id.clone());
        next.invoice_number = event.invoice.number.clone();
        let announce = match outcome {
            Outcome::Failed { reasons } => Announcement::Failed(reasons.clone()),
            other => Announcement::Synced(action(other)),
        };
        (next, Some(announce))
    };
    match plan {
        Plan::Done(result) => {
            // Nothing changed, but a newer event was seen: an older one arriving later must
            // not win over it.
            let applied =
                job.record.last_event_at.map(|at| EventOrder { occurred_at: at, sequence: job.record.last_sequence });
            let newer = applied.is_none_or(|applied| applied.is_older_than(&event.order()));
            let record = match &result {
                Ok(Outcome::Unchanged | Outcome::Failed { .. }) if newer && job.record.version > 0 => {
                    next.last_event_at = Some(latest(&next, event));
                    next.last_sequence = latest_sequence(&next, event);
                    Some(next)
                }
                _ => None,
            };
            (result, Settled { record, announce: None })
        }
        Plan::Retell => {
            let outcome = match job.record.status {
                SyncStatus::Failed => Outcome::Failed { reasons: job.record.last_error.iter().cloned().collect() },
                _ => Outcome::Unchanged,
            };
            let announce = match &outcome {
                Outcome::Failed { reasons } => Announcement::Failed(reasons.clone()),
                _ => Announcement::Synced(None),
            };
            next.untold = false;
            next.last_event_at = Some(latest(&next, event));
            next.last_sequence = latest_sequence(&next, event);
            (Ok(outcome), Settled { record: Some(next), announce: Some(announce) })
        }
        Plan::Fail { reasons, hash } => {
            next.status = SyncStatus::Failed;
            next.content_hash = Some(hash);
            next.last_error = Some(reasons.join("; "));
            let outcome = Outcome::Failed { reasons };
            let (next, announce) = told(next, &outcome);
            (Ok(outcome), Settled { record: Some(next), announce })
        }
        plan => {
            let result =
                job.result.take().unwrap_or_else(|| Err(PushError::later("not attempted", StdDuration::from_secs(5))));
            match &result {
                Ok(outcome @ Outcome::Failed { reasons }) => {
                    next.status = SyncStatus::Failed;
                    next.last_error = Some(reasons.join("; "));
                    next.content_hash = Some(plan_hash(&plan));
                    let (next, announce) = told(next, outcome);
                    (result, Settled { record: Some(next), announce })
                }
                // Waits for the reconnection; the claim is released, nothing else changes.
                Ok(Outcome::Parked) | Err(_) => {
                    let record = job.claimed.then_some(next);
                    (result, Settled { record, announce: None })
                }
                Ok(outcome) => {
                    next.status = SyncStatus::Synced;
                    next.last_error = None;
                    next.uncertain = false;
                    next.content_hash = Some(plan_hash(&plan));
                    if let Some(w) = &job.written {
                        next.xero_invoice_id = Some(w.xero_invoice_id);
                        next.xero_contact_id = w.contact_id.or(next.xero_contact_id);
                        next.xero_status = w.xero_status;
                        if w.payment_state.is_some() {
                            next.payment_state = w.payment_state.clone();
                        }
                    } else if matches!(plan, Plan::Void) {
                        next.xero_status = Some(InvoiceStatus::Voided);
                    }
                    let (next, announce) = told(next, outcome);
                    (result, Settled { record: Some(next), announce })
                }
            }
        }
    }
}

/// Tells the platform and the account, then records every job's result. In that order, so a
/// record never says "done" before it was announced; if telling fails, the outcome is recorded
/// as untold (and the claims released) and the redelivery tells it.
pub(super) async fn finish(
    app: &App,
    connection: &Connection,
    mut jobs: Vec<Job>,
) -> Result<Vec<PushResult>, PushError> {
    let now = app.now();
    let key = connection.key();
    let store = &app.services.store;
    let mut settled = Vec::with_capacity(jobs.len());
    let mut mappings = Vec::new();
    for job in jobs.iter_mut() {
        if let (Some(ContactTarget::New { .. }), Some(Written { contact_id: Some(id), .. })) =
            (job.contact, &job.written)
        {
            let mut mapping = ContactMapping::new(job.event.customer.id.clone(), *id, ContactMatch::Created, now);
            // Created with the customer's details: the same details again are no news for Xero.
            mapping.details_hash = Some(crate::customers::details_hash(&job.event.customer));
            mappings.push(mapping);
        }
        let (result, mut s) = settle(job, now);
        if let Some(record) = s.record.as_mut() {
            crate::retry::keep_for_retry(record, &job.event);
        }
        log_result(&key, &job.event, &result);
        job.result = Some(result);
        settled.push(s);
    }
    let mut events = Vec::new();
    let mut failures: Vec<(String, String, Vec<String>)> = Vec::new();
    for s in &settled {
        let (Some(record), Some(announce)) = (&s.record, &s.announce) else { continue };
        match announce {
            Announcement::Synced(action) => events.push(synced_event(record, connection, *action)),
            Announcement::Failed(reasons) => {
                events.push(failed_event(record, reasons));
                let tag = format!(
                    "{}#{}",
                    record.last_delivery_id.as_deref().unwrap_or_default(),
                    record.content_hash.as_deref().unwrap_or_default()
                );
                failures.push((record.invoice_number.clone(), tag, reasons.clone()));
            }
        }
    }
    let told = match app.services.events.publish(&events).await {
        Err(e) => Err(PushError::later(format!("publishing events: {e}"), StdDuration::from_secs(10))),
        Ok(()) if failures.is_empty() => Ok(()),
        Ok(()) => tell_the_account(app, connection, &failures)
            .await
            .map_err(|e| PushError::later(format!("emailing the account: {e}"), StdDuration::from_secs(30))),
    };
    let synced_any = settled.iter().any(|s| matches!(s.announce, Some(Announcement::Synced(_))));
    for (job, s) in jobs.iter_mut().zip(settled) {
        let Some(mut record) = s.record else { continue };
        if told.is_err() && s.announce.is_some() {
            record.untold = true;
        }
        if let Err(e) = save_or_later(&*app.services.store, &record).await {
            job.result = Some(Err(e));
        } else if let (Err(e), Some(_)) = (&told, &s.announce) {
            job.result = Some(Err(clone_error(e)));
        }
    }
    // Neither is worth a retry of the push: a missing mapping costs one lookup next time (the
    // contact is found by its number), missed activity is made up by the next push.
    for mapping in &mappings {
        if let Err(e) = store.put_contact_mapping(&key, mapping).await {
            tracing::warn!(account = %key.account_id, customer = %mapping.customer_id, error = %e, "contact mapping not kept");
        }
    }
    if synced_any && told.is_ok() {
        if let Err(e) = store.record_activity(&key, now).await {
            tracing::warn!(account = %key.account_id, error = %e, "activity not recorded");
        }
    }
    Ok(jobs.into_iter().map(|j| j.result.unwrap_or(Ok(Outcome::Unchanged))).collect())
}

pub(super) fn latest(record: &SyncRecord, event: &InvoiceEvent) -> DateTime<Utc> {
    record.last_event_at.map_or(event.occurred_at, |last| last.max(event.occurred_at))
}

pub(super) fn latest_sequence(record: &SyncRecord, event: &InvoiceEvent) -> Option<u64> {
    record.last_sequence.max(event.sequence)
}

pub(super) fn plan_hash(plan: &Plan) -> String {
    match plan {
        Plan::Write { hash, .. } | Plan::Fail { hash, .. } => hash.clone(),
        Plan::Void => VOID.into(),
        Plan::Done(_) | Plan::Retell => String::new(),
    }
}

pub(super) async fn save_or_later(records: &dyn SyncRecordStore, record: &SyncRecord) -> Result<SyncRecord, PushError> {
    match records.save_sync_record(record).await {
        Ok(saved) => Ok(saved),
        // Someone took over after our claim ran out; they will record what Xero has.
        Err(Error::Conflict(_)) => Err(PushError::later("the sync record changed under us", StdDuration::from_secs(5))),
        Err(e) => Err(e.into()),
    }
}

/// The event's id names the delivery and the content, so a redelivery repeats it exactly and
/// a later change back to earlier content is a new event.
pub(super) fn event_key(record: &SyncRecord) -> String {
    format!(
        "{}|{}|{}",
        record.invoice_id,
        record.last_delivery_id.as_deref().unwrap_or_default(),
        record.content_hash.as_deref().unwrap_or_default()
    )
}

pub(super) fn synced_event(record: &SyncRecord, connection: &Connection, action: Option<&str>) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::InvoiceSynced,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "invoice_id": record.invoice_id,
            "invoice_number": record.invoice_number,
            "xero_invoice_id": record.xero_invoice_id,
            "xero_status": record.xero_status,
            "xero_url": record.xero_invoice_id.and_then(|id| connection.xero_link(XeroDocument::Invoice(id))),
            "action": action,
        }),
    )
}

pub(super) fn failed_event(record: &SyncRecord, reasons: &[String]) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::InvoiceSyncFailed,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "invoice_id": record.invoice_id,
            "invoice_number": record.invoice_number,
            "xero_invoice_id": record.xero_invoice_id,
            "reasons": reasons,
        }),
    )
}

/// One email for all the failures of this push (a backfill chunk can have several), sent once.
pub(super) async fn tell_the_account(
    app: &App,
    connection: &Connection,
    failures: &[(String, String, Vec<String>)],
) -> Result<(), Error> {
    if connection.notify_email.is_none() {
        return Ok(());
    }
    let subject = match failures {
        [(number, _, _)] => format!("Invoice {number} did not reach Xero"),
        many => format!("{} invoices did not reach Xero", many.len()),
    };
    let mut details = Vec::new();
    for (number, _, reasons) in failures {
        details.push((format!("Invoice {number}"), reasons.join("; ")));
    }
    let notice = Notice {
        subject,
        organisation: connection.organisation_name.clone(),
        what_happened: match failures {
            [(number, _, _)] => {
                format!("Invoice {number} was not sent to Xero because Xero cannot accept it as it is.")
            }
            many => {
                format!("{} invoices were not sent to Xero because Xero cannot accept them as they are.", many.len())
            }
        },
        details,
        what_to_do: "Fix what is named above: in the invoice itself, or in the Xero settings (account codes, tax rate \
            mapping, tracking) when it names one of those. Then save the invoice again in the platform and it is sent \
            to Xero. Nothing else is held up: other invoices keep flowing."
            .into(),
    };
    let keys = failures.iter().map(|(number, hash, _)| format!("{number}#{hash}"));
    tell_once(app, connection, "sync-failed", keys, notice).await
}

pub(super) fn log_result(key: &ConnectionKey, event: &InvoiceEvent, result: &PushResult) {
    match result {
        Ok(outcome) => {
            let kind = match outcome {
                Outcome::Created { .. } => "created",
                Outcome::Updated { .. } => "updated",
                Outcome::Voided { .. } => "voided",
                Outcome::Unchanged => "unchanged",
                Outcome::Superseded => "superseded",
                Outcome::Failed { .. } => "failed",
                Outcome::Parked => "parked",
                Outcome::NotConnected => "not_connected",
            };
            tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoice = %event.invoice.id, outcome = kind, "invoice pushed");
        }
        Err(e) => {
            tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoice = %event.invoice.id, error = %e, "invoice push deferred");
        }
    }
}
