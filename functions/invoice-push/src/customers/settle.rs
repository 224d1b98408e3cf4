//! After Xero: each customer's mapping, and the platform's events.

use serde_json::json;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::links::XeroDocument;
use xero_sync_domain::model::{Connection, ContactMapping};

use super::{CustomerOutcome, Job};
use crate::push::PushError;
use xero_sync_runtime::App;

/// Keeps what each job learnt and tells the platform. A store failure fails the lot, which is
/// then pushed again: every write it repeats leaves Xero as it is.
pub(super) async fn finish(app: &App, connection: &Connection, jobs: &mut [Job]) -> Result<(), PushError> {
    let store = &app.services.store;
    let key = connection.key();
    let now = app.now();
    let mut events = Vec::new();
    for job in jobs.iter_mut() {
        let Some(Ok(outcome)) = &job.result else { continue };
        let event = &job.event;
        let mapping = match (outcome, &job.written) {
            (CustomerOutcome::Created { .. } | CustomerOutcome::Updated { .. }, Some(w)) => {
                let mut m = match &job.mapping {
                    Some(m) if m.xero_contact_id == w.contact_id => m.clone(),
                    _ => ContactMapping::new(event.customer.id.clone(), w.contact_id, w.matched_by, now),
                };
                m.details_hash = Some(job.hash.clone());
                m.pushed_updated_at = w.updated_at;
                Some(m)
            }
            // The edit in Xero stands: what we wrote last stays on record, so the next change in
            // the platform meets the same rule; the event is applied all the same.
            (CustomerOutcome::KeptXero { .. }, Some(w)) => Some(match &job.mapping {
                Some(m) if m.xero_contact_id == w.contact_id => m.clone(),
                _ => ContactMapping::new(event.customer.id.clone(), w.contact_id, w.matched_by, now),
            }),
            _ => None,
        };
        if let Some(mut m) = mapping {
            m.event_at = Some(event.occurred_at);
            m.event_sequence = event.sequence;
            store.put_contact_mapping(&key, &m).await?;
            job.mapping = Some(m);
        }
        if let Some(told) = announcement(connection, job, outcome) {
            events.push(told);
        }
        log(connection, job, outcome);
    }
    if !events.is_empty() {
        app.services.events.publish(&events).await?;
    }
    Ok(())
}

fn announcement(connection: &Connection, job: &Job, outcome: &CustomerOutcome) -> Option<PlatformEvent> {
    let event = &job.event;
    let (kind, data) = match outcome {
        CustomerOutcome::Created { xero_contact_id } | CustomerOutcome::Updated { xero_contact_id } => {
            let action = if matches!(outcome, CustomerOutcome::Created { .. }) { "created" } else { "updated" };
            (
                EventKind::CustomerSynced,
                json!({
                    "customer_id": event.customer.id,
                    "xero_contact_id": xero_contact_id,
                    "action": action,
                    "reason": null,
                    "xero_url": connection.xero_link(XeroDocument::Contact(*xero_contact_id)),
                }),
            )
        }
        CustomerOutcome::KeptXero { xero_contact_id, reason } => (
            EventKind::CustomerSynced,
            json!({
                "customer_id": event.customer.id,
                "xero_contact_id": xero_contact_id,
                "action": "kept_xero",
                "reason": reason,
                "xero_url": connection.xero_link(XeroDocument::Contact(*xero_contact_id)),
            }),
        ),
        CustomerOutcome::Failed { reasons } => {
            (EventKind::CustomerSyncFailed, json!({ "customer_id": event.customer.id, "reasons": reasons }))
        }
        _ => return None,
    };
    // One delivery's outcome, however often it is pushed again.
    let dedup = format!("{}|{}", event.customer.id, event.delivery_id);
    Some(PlatformEvent::new(
        kind,
        connection.account_id.clone(),
        Some(connection.tenant_id),
        &dedup,
        event.occurred_at,
        data,
    ))
}

fn log(connection: &Connection, job: &Job, outcome: &CustomerOutcome) {
    let kind = match outcome {
        CustomerOutcome::Created { .. } => "created",
        CustomerOutcome::Updated { .. } => "updated",
        CustomerOutcome::Unchanged => "unchanged",
        CustomerOutcome::Stale => "stale",
        CustomerOutcome::KeptXero { .. } => "kept_xero",
        CustomerOutcome::Failed { .. } => "failed",
        CustomerOutcome::Parked => "parked",
        CustomerOutcome::NotConnected => "not_connected",
    };
    tracing::info!(
        account = %connection.account_id, tenant = %connection.tenant_id, customer = %job.event.customer.id,
        delivery = %job.event.delivery_id, outcome = kind, "customer pushed"
    );
}
