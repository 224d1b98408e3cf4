//! Customers from the platform to Xero (`customer.upserted`): the contact that stands for the
//! customer holds its details, before and without any invoice.
//!
//! 1. **Decide** from the customer's mapping, without Xero: an older event than the one applied
//!    is dropped; details whose hash equals the last written are unchanged and cost nothing.
//! 2. **Look** (`write`): one `where` query per ten customers finds the mapped contact (its
//!    UpdatedDateUTC tells whether someone edited it in Xero since our last write), else a
//!    contact by ContactNumber, email or name as the invoice push finds one, and any active
//!    namesake (Xero keeps active names unique, so a new or renamed contact beside one is
//!    named `John Smith (cust-2)`).
//! 3. **Conflicts**: a contact edited in Xero after our last write keeps its edit or takes the
//!    platform's as the connection's `customer_conflicts` says (newest wins by default).
//! 4. **Write**: creates and updates in one `POST /Contacts?summarizeErrors=false` with an
//!    Idempotency-Key. No claim is needed: an update written twice leaves the same contact,
//!    and a create is always preceded by the lookup that would find it by ContactNumber.
//! 5. **Record and tell** (`settle`): the mapping keeps the details' hash and the contact's
//!    UpdatedDateUTC after our write, so the import and Xero's webhooks recognise our own write
//!    coming back and announce nothing; `customer.synced` or `customer.sync_failed`.

mod settle;
mod write;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use xero_sync_domain::digest::hex;
use xero_sync_domain::model::{ConnectionKey, ContactMapping, TenantId};
use xero_sync_domain::scopes::Feature;
use xero_sync_runtime::App;

use crate::customer_event::CustomerEvent;
use crate::event::{Customer, EventOrder};
use crate::message::{CustomerMessage, QueueMessage};
use crate::push::{
    Gate, ParkedUnder, PushError, PushPolicy, blocked_without, gate, park_items, parked, per_event,
    reconnected_meanwhile,
};

/// What became of one customer event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerOutcome {
    Created {
        xero_contact_id: Uuid,
    },
    Updated {
        xero_contact_id: Uuid,
    },
    /// The details are those last written: no Xero call.
    Unchanged,
    /// An event older than the one applied.
    Stale,
    /// The contact was edited in Xero after our last write, and the conflict rule keeps that
    /// edit (or it was archived there).
    KeptXero {
        xero_contact_id: Uuid,
        reason: String,
    },
    /// Refused by Xero for good, in its words.
    Failed {
        reasons: Vec<String>,
    },
    /// Held until the organisation is reconnected (with the contacts scope).
    Parked,
    NotConnected,
}

pub type CustomerResult = Result<CustomerOutcome, PushError>;

/// The hash of a customer's details as they are written to its contact.
pub fn details_hash(customer: &Customer) -> String {
    let text = serde_json::to_string(customer).unwrap_or_default();
    hex(&Sha256::digest(text.as_bytes()))
}

/// One customer event on its way through the push.
struct Job {
    event: CustomerEvent,
    mapping: Option<ContactMapping>,
    hash: String,
    result: Option<CustomerResult>,
    /// Set by the write: the contact, how it was found, and its UpdatedDateUTC after our write.
    written: Option<write::Written>,
}

impl Job {
    fn order_applied(&self) -> Option<EventOrder> {
        let m = self.mapping.as_ref()?;
        Some(EventOrder { occurred_at: m.event_at?, sequence: m.event_sequence })
    }
}

/// Pushes the customer events of one connection. Every event gets a result, in order.
pub async fn push_customers(
    app: &App,
    policy: &PushPolicy,
    tenant: TenantId,
    events: Vec<CustomerEvent>,
) -> Vec<CustomerResult> {
    let Some(first) = events.first() else { return Vec::new() };
    let key = ConnectionKey { account_id: first.account_id.clone(), tenant_id: tenant };
    per_event("customer", &key, events.len(), inner(app, policy, &key, events)).await
}

async fn inner(
    app: &App,
    _policy: &PushPolicy,
    key: &ConnectionKey,
    events: Vec<CustomerEvent>,
) -> Result<Vec<CustomerResult>, PushError> {
    let connection = match gate(app, key, Feature::Contacts).await? {
        Gate::Go(connection) => *connection,
        Gate::Park => return park(app, key, &events).await,
        Gate::NotConnected => return Ok(events.iter().map(|_| Ok(CustomerOutcome::NotConnected)).collect()),
    };
    let store = &app.services.store;
    let settings = store.get_settings(key).await?.settings;
    let mappings =
        futures::future::try_join_all(events.iter().map(|e| store.get_contact_mapping(key, &e.customer.id))).await?;
    let mut jobs: Vec<Job> = events
        .into_iter()
        .zip(mappings)
        .map(|(event, mapping)| {
            let hash = details_hash(&event.customer);
            let mut job = Job { event, mapping, hash, result: None, written: None };
            job.result = decide(&job).map(Ok);
            job
        })
        .collect();
    write::to_xero(app, &connection, settings.customer_conflicts, &mut jobs).await;
    settle::finish(app, &connection, &mut jobs).await?;
    let parked: Vec<CustomerEvent> = jobs
        .iter()
        .filter(|j| matches!(j.result, Some(Ok(CustomerOutcome::Parked))))
        .map(|j| j.event.clone())
        .collect();
    let mut results: Vec<CustomerResult> =
        jobs.into_iter().map(|j| j.result.unwrap_or(Ok(CustomerOutcome::Unchanged))).collect();
    if !parked.is_empty() {
        let mut again = park(app, key, &parked).await?.into_iter();
        for result in results.iter_mut().filter(|r| matches!(r, Ok(CustomerOutcome::Parked))) {
            *result = again.next().unwrap_or(Ok(CustomerOutcome::Parked));
        }
    }
    Ok(results)
}

/// What is known without Xero: `None` when Xero must be asked.
fn decide(job: &Job) -> Option<CustomerOutcome> {
    let order = job.event.order();
    if job.order_applied().is_some_and(|applied| order.is_older_than(&applied)) {
        return Some(CustomerOutcome::Stale);
    }
    let mapping = job.mapping.as_ref()?;
    (mapping.details_hash.as_deref() == Some(job.hash.as_str())).then_some(CustomerOutcome::Unchanged)
}

/// The time our last write left the contact at: what an edit in Xero must be later than. A
/// contact we created with an invoice was written when it was mapped; one we only found was
/// never written by us.
fn last_written(mapping: &ContactMapping) -> Option<DateTime<Utc>> {
    use xero_sync_domain::model::ContactMatch;
    mapping.pushed_updated_at.or((mapping.matched_by == ContactMatch::Created).then_some(mapping.mapped_at))
}

/// Parks customer events until the organisation is reconnected with the contacts scope.
async fn park(app: &App, key: &ConnectionKey, events: &[CustomerEvent]) -> Result<Vec<CustomerResult>, PushError> {
    let mut items = Vec::with_capacity(events.len());
    for event in events {
        let message =
            QueueMessage::Customer(Box::new(CustomerMessage { tenant_id: key.tenant_id, event: event.clone() }));
        items.push(parked(ParkedUnder::Customer(event.customer.id.clone()), event.order(), &message)?);
    }
    let parked = park_items(&*app.services.store, key, &items, blocked_without(Feature::Contacts)).await?;
    Ok(events.iter().map(|_| if parked { Ok(CustomerOutcome::Parked) } else { Err(reconnected_meanwhile()) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xero_sync_domain::model::ContactMatch;

    fn job(mapping: Option<ContactMapping>) -> Job {
        let event = crate::customer_event::example();
        let hash = details_hash(&event.customer);
        Job { event, mapping, hash, result: None, written: None }
    }

    fn mapping(hash: Option<String>, event_at: Option<DateTime<Utc>>, sequence: Option<u64>) -> ContactMapping {
        let event = crate::customer_event::example();
        let mut m = ContactMapping::new(event.customer.id, Uuid::new_v4(), ContactMatch::Created, event.occurred_at);
        m.details_hash = hash;
        m.event_at = event_at;
        m.event_sequence = sequence;
        m
    }

    #[test]
    fn the_same_details_again_need_no_xero_call_and_an_older_event_is_dropped() {
        let new = job(None);
        assert_eq!(decide(&new), None, "a customer never seen is looked up in Xero");
        let same = job(Some(mapping(Some(new.hash.clone()), None, None)));
        assert_eq!(decide(&same), Some(CustomerOutcome::Unchanged));
        let changed = job(Some(mapping(Some("another".into()), None, None)));
        assert_eq!(decide(&changed), None);
        let at = crate::customer_event::example().occurred_at;
        let newer_applied = job(Some(mapping(Some("another".into()), Some(at), Some(4))));
        assert_eq!(decide(&newer_applied), Some(CustomerOutcome::Stale), "the example is sequence 3");
    }

    #[test]
    fn the_hash_sees_every_detail_written_to_the_contact() {
        let a = crate::customer_event::example().customer;
        let mut b = a.clone();
        b.addresses[1].line1 = Some("14 Queen Street".into());
        let mut c = a.clone();
        c.tax_number = None;
        assert_ne!(details_hash(&a), details_hash(&b));
        assert_ne!(details_hash(&a), details_hash(&c));
        assert_eq!(details_hash(&a), details_hash(&a.clone()));
    }
}
