//! The push: platform invoice events become Xero invoices, each exactly once.
//!
//! One call handles the events of one connection: a webhook's single event, or a backfill's
//! chunk of up to fifty. For each invoice:
//!
//! 1. **Decide** from the sync record, without Xero: an event older than the one applied is
//!    dropped; content whose hash equals the last written (or refused) content is unchanged; an
//!    invoice the settings cannot map fails with the problems named.
//! 2. **Claim** the sync record (a conditional write that also marks the write as in flight).
//!    A claim still set when the next pusher arrives means the last one died midway, so its
//!    write may have reached Xero: the record becomes *uncertain*.
//! 3. **Find contacts** ([`crate::contact::find_many`]); a customer Xero does not know travels
//!    with the invoice and Xero creates the contact.
//! 4. **Look before creating again**: uncertain creates are looked up by InvoiceNumber first,
//!    and any found are updated instead.
//! 5. **Write**: creates in one `PUT /Invoices`, updates and voids in one `POST /Invoices`,
//!    `summarizeErrors=false` so one bad invoice does not sink the rest, each with an
//!    Idempotency-Key derived from the request, so a repeat is replayed by Xero, not applied.
//!    429s, 5xx and timeouts are retried in-process (honouring Retry-After) a few times, then
//!    handed back to the queue with the wait.
//! 6. **Record and tell**: the sync record, `invoice.synced` or `invoice.sync_failed` (ids
//!    derived from the content, so a repeat is recognisable), one email per failure, and the
//!    activity that keeps the connection from the inactivity sweep.

mod gate;
mod job;
mod notice;
mod park;
mod plan;
mod rounds;
mod settle;
mod write;

pub(crate) use gate::{Gate, blocked_without, gate, per_event};
pub(crate) use job::{clone_error, later_for, maybe_applied};
pub(crate) use notice::{REMEMBER_NOTICES, tell_once};
pub use park::redrive_parked;
pub(crate) use park::{ParkedUnder, park_items, parked, reconnected_meanwhile};
pub use plan::{Outcome, PushError, PushPolicy, PushResult};
pub(crate) use rounds::{RoundJob, Rounds};
pub use write::XERO_BATCH;
pub(crate) use write::idempotency_key;

use xero_sync_domain::Error;
use xero_sync_domain::model::{Connection, ConnectionKey, ConnectionStatus, SyncRecord, TenantId};
use xero_sync_domain::xero::TrackingCategory;
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;

use crate::event::InvoiceEvent;
use job::Job;
use park::park;
use plan::{Plan, decide};
use settle::finish;
use write::{Mapping, write_to_xero};

/// Pushes the events of one connection. Every event gets a result, in order.
pub async fn push(app: &App, policy: &PushPolicy, tenant: TenantId, events: Vec<InvoiceEvent>) -> Vec<PushResult> {
    let Some(first) = events.first() else { return Vec::new() };
    let key = ConnectionKey { account_id: first.account_id.clone(), tenant_id: tenant };
    per_event("invoice", &key, events.len(), push_inner(app, policy, &key, events)).await
}

async fn push_inner(
    app: &App,
    policy: &PushPolicy,
    key: &ConnectionKey,
    events: Vec<InvoiceEvent>,
) -> Result<Vec<PushResult>, PushError> {
    let store = &app.services.store;
    let Some(connection) = store.get_connection(key).await? else {
        return Ok(events.iter().map(|_| Ok(Outcome::NotConnected)).collect());
    };
    match connection.status {
        ConnectionStatus::Connected => {}
        ConnectionStatus::NeedsReconnect => return park(&*app.services.store, key, &events).await,
        _ => return Ok(events.iter().map(|_| Ok(Outcome::NotConnected)).collect()),
    }
    let settings = store.get_settings(key).await?.settings;
    let tracking = tracking_categories(app, &connection, !settings.tracking_mapping.is_empty()).await;
    let tracking = match tracking {
        Ok(t) => t,
        Err(TokenError::Reconnect) => return park(&*app.services.store, key, &events).await,
        Err(e) => return Err(later_for(&e)),
    };

    let records =
        futures::future::try_join_all(events.iter().map(|e| store.get_sync_record(key, &e.invoice.id))).await?;
    let codes: Vec<String> =
        events.iter().flat_map(|e| e.invoice.lines.iter().filter_map(|l| l.item_code.clone())).collect();
    let items =
        if settings.match_items_by_code { Default::default() } else { store.live_item_codes(key, &codes).await? };
    let mapping = Mapping { settings: &settings, tracking: &tracking, items: &items };
    let now = app.now();
    let mut jobs: Vec<Job> = events
        .into_iter()
        .zip(records)
        .map(|(event, record)| {
            let record =
                record.unwrap_or_else(|| SyncRecord::new(key, event.invoice.id.clone(), &event.invoice.number, now));
            let plan = decide(&event, &record, &mapping, now, policy);
            Job { event, record, plan, contact: None, result: None, written: None, claimed: false }
        })
        .collect();

    // Claim what needs Xero, and record refusals.
    for job in &mut jobs {
        match &job.plan {
            Plan::Done(_) | Plan::Fail { .. } | Plan::Retell => {}
            Plan::Write { .. } | Plan::Void => {
                let mut claimed = job.record.clone();
                // A claim nobody released: its holder died, perhaps after writing to Xero.
                claimed.uncertain |= claimed.claimed_until.is_some();
                claimed.claimed_until = Some(now + policy.claim_for);
                claimed.attempts += 1;
                claimed.updated_at = now;
                match store.save_sync_record(&claimed).await {
                    Ok(saved) => {
                        job.record = saved;
                        job.claimed = true;
                    }
                    Err(Error::Conflict(_)) => {
                        job.plan = Plan::Done(Err(PushError::later("another push has this invoice", policy.busy_retry)))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    write_to_xero(app, policy, &connection, mapping, &mut jobs).await;
    // Xero refused the grant midway: what was written is recorded, the rest waits.
    let waiting: Vec<InvoiceEvent> =
        jobs.iter().filter(|j| matches!(j.result, Some(Ok(Outcome::Parked)))).map(|j| j.event.clone()).collect();
    let mut results = finish(app, &connection, jobs).await?;
    if !waiting.is_empty() {
        let parked = park(&*app.services.store, key, &waiting).await?;
        let mut parked = parked.into_iter();
        for result in results.iter_mut().filter(|r| matches!(r, Ok(Outcome::Parked))) {
            *result = parked.next().unwrap_or(Ok(Outcome::Parked));
        }
    }
    Ok(results)
}

/// The tracking categories the mapping checks options against: the stored snapshot when there
/// is one (settings were checked against Xero when saved; Xero refuses a line whose option has
/// since gone), read from Xero only when none is stored.
pub(crate) async fn tracking_categories(
    app: &App,
    connection: &Connection,
    needed: bool,
) -> Result<Vec<TrackingCategory>, TokenError> {
    if !needed {
        return Ok(Vec::new());
    }
    let key = connection.key();
    if let Some(data) = app.services.store.get_reference_data(&key).await? {
        return Ok(data.tracking_categories);
    }
    let data = xero_sync_runtime::reference::read_from_xero(&app.tokens, connection, app.now()).await?;
    app.services.store.put_reference_data(&key, &data).await?;
    Ok(data.tracking_categories)
}
