//! The platform's products and services as Xero items (`item.upserted`, `item.deleted`):
//!
//! 1. **Decide** from the item's record, without Xero: an older event is dropped; the same
//!    content as last written is unchanged; what the settings cannot map (a tax rate) fails,
//!    named; a deletion of an item Xero never had, or has no more, is done.
//! 2. **Write** (`write`): upserts of a lot in one `POST /Items?summarizeErrors=false` with an
//!    Idempotency-Key, each by its ItemID once known (so a new code renames it), else by its
//!    Code, which Xero's POST matches: writing one twice leaves one item, so no claim is needed.
//!    Deletions are one `DELETE /Items/{ItemID}` each (Xero has no batch delete), after reading
//!    the item by its code when its id was never learnt.
//! 3. **Record and tell**: the record keeps the code, the ItemID and the hash, and the
//!    reference from the code to the item, so invoice lines naming the code carry it
//!    (`ItemCode`) and Xero's item reports work; `item.synced` or `item.sync_failed`.

mod write;

use serde_json::{Map, Value, json};
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::digest::sha256_hex;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::item::ItemRecord;
use xero_sync_domain::model::{Connection, ConnectionKey, TenantId};
use xero_sync_domain::problem::Problem;
use xero_sync_domain::scopes::Feature;
use xero_sync_domain::settings::ConnectionSettings;
use xero_sync_runtime::App;

use crate::event::EventOrder;
use crate::item_event::{Item, ItemEvent, ItemEventType};
use crate::mapping::number;
use crate::message::{ItemMessage, QueueMessage};
use crate::push::{
    Gate, ParkedUnder, PushError, PushPolicy, blocked_without, gate, park_items, parked, per_event,
    reconnected_meanwhile,
};

/// What became of one item event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    Created { xero_item_id: Uuid },
    Updated { xero_item_id: Uuid },
    Deleted { xero_item_id: Option<Uuid> },
    Unchanged,
    Stale,
    Failed { reasons: Vec<String> },
    Parked,
    NotConnected,
}

pub type ItemResult = Result<ItemOutcome, PushError>;

/// What one event needs from Xero.
#[derive(Debug)]
enum Plan {
    Done(ItemResult),
    Fail(Vec<String>),
    Upsert { body: Value, hash: String },
    Delete,
}

struct Job {
    event: ItemEvent,
    record: ItemRecord,
    plan: Plan,
    /// The hash of what an upsert writes.
    hash: Option<String>,
    /// The item as Xero answered our write.
    in_xero: Option<xero_sync_domain::xero::Item>,
    result: Option<ItemResult>,
}

/// Pushes the item events of one connection. Every event gets a result, in order.
pub async fn push_items(app: &App, policy: &PushPolicy, tenant: TenantId, events: Vec<ItemEvent>) -> Vec<ItemResult> {
    let Some(first) = events.first() else { return Vec::new() };
    let key = ConnectionKey { account_id: first.account_id.clone(), tenant_id: tenant };
    per_event("item", &key, events.len(), inner(app, policy, &key, events)).await
}

async fn inner(
    app: &App,
    policy: &PushPolicy,
    key: &ConnectionKey,
    events: Vec<ItemEvent>,
) -> Result<Vec<ItemResult>, PushError> {
    let connection = match gate(app, key, Feature::Items).await? {
        Gate::Go(connection) => *connection,
        Gate::Park => return park(app, key, &events).await,
        Gate::NotConnected => return Ok(events.iter().map(|_| Ok(ItemOutcome::NotConnected)).collect()),
    };
    let store = &app.services.store;
    let settings = store.get_settings(key).await?.settings;
    let now = app.now();
    let records = futures::future::try_join_all(events.iter().map(|e| store.get_item_record(key, &e.item.id))).await?;
    let mut jobs: Vec<Job> = events
        .into_iter()
        .zip(records)
        .map(|(event, record)| {
            let record = record.unwrap_or_else(|| ItemRecord::new(key, event.item.id.clone(), now));
            let plan = decide(&event, &record, &settings);
            let hash = match &plan {
                Plan::Upsert { hash, .. } => Some(hash.clone()),
                _ => None,
            };
            Job { event, record, plan, hash, in_xero: None, result: None }
        })
        .collect();
    write::to_xero(app, policy, &connection, &mut jobs).await;
    finish(app, &connection, &mut jobs, policy).await?;
    let waiting: Vec<ItemEvent> =
        jobs.iter().filter(|j| matches!(j.result, Some(Ok(ItemOutcome::Parked)))).map(|j| j.event.clone()).collect();
    let mut results: Vec<ItemResult> =
        jobs.into_iter().map(|j| j.result.unwrap_or(Ok(ItemOutcome::Unchanged))).collect();
    if !waiting.is_empty() {
        let mut again = park(app, key, &waiting).await?.into_iter();
        for result in results.iter_mut().filter(|r| matches!(r, Ok(ItemOutcome::Parked))) {
            *result = again.next().unwrap_or(Ok(ItemOutcome::Parked));
        }
    }
    Ok(results)
}

fn decide(event: &ItemEvent, record: &ItemRecord, settings: &ConnectionSettings) -> Plan {
    let applied = record.last_event_at.map(|at| EventOrder { occurred_at: at, sequence: record.last_sequence });
    if applied.is_some_and(|applied| event.order().is_older_than(&applied)) {
        return Plan::Done(Ok(ItemOutcome::Stale));
    }
    match event.event {
        ItemEventType::Deleted if record.deleted => Plan::Done(Ok(ItemOutcome::Unchanged)),
        ItemEventType::Deleted => Plan::Delete,
        ItemEventType::Upserted => match to_xero(&event.item, settings) {
            Err(problems) => Plan::Fail(problems.into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect()),
            Ok(body) => {
                let hash = sha256_hex(body.to_string());
                if record.content_hash.as_deref() == Some(hash.as_str()) && !record.deleted {
                    Plan::Done(Ok(ItemOutcome::Unchanged))
                } else {
                    Plan::Upsert { body, hash }
                }
            }
        },
    }
}

/// The Xero item for a platform item: Code, Name, Description and the sales details, the
/// account and tax rate mapped as an invoice line's are. Or every problem that stops it.
pub fn to_xero(item: &Item, settings: &ConnectionSettings) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut m = Map::new();
    m.insert("Code".into(), json!(item.code));
    if let Some(name) = &item.name {
        m.insert("Name".into(), json!(name));
    }
    if let Some(description) = &item.description {
        m.insert("Description".into(), json!(description));
    }
    m.insert("IsSold".into(), json!(true));
    let mut sales = Map::new();
    if let Some(price) = item.unit_price {
        sales.insert("UnitPrice".into(), number(price));
    }
    if let Some(code) = item.account_code.as_ref().or(settings.default_sales_account_code.as_ref()) {
        sales.insert("AccountCode".into(), json!(code));
    }
    let tax_type = match &item.tax_rate_id {
        Some(id) => match settings.tax_mapping.iter().find(|t| &t.platform_tax_rate_id == id) {
            Some(t) => Some(t.xero_tax_type.clone()),
            None => {
                problems
                    .push(Problem::new("item.tax_rate_id", format!("tax rate {id} is not mapped to a Xero tax rate")));
                None
            }
        },
        None => settings.default_tax_type.clone(),
    };
    if let Some(tax_type) = tax_type {
        sales.insert("TaxType".into(), json!(tax_type));
    }
    m.insert("SalesDetails".into(), Value::Object(sales));
    if problems.is_empty() { Ok(Value::Object(m)) } else { Err(problems) }
}

/// Records each outcome and tells the platform.
async fn finish(app: &App, connection: &Connection, jobs: &mut [Job], policy: &PushPolicy) -> Result<(), PushError> {
    let store = &app.services.store;
    let now = app.now();
    let mut events = Vec::new();
    for job in jobs.iter_mut() {
        let plan = std::mem::replace(&mut job.plan, Plan::Done(Ok(ItemOutcome::Unchanged)));
        let result = match (plan, job.result.take()) {
            (Plan::Done(result), None) => result,
            (Plan::Fail(reasons), None) => Ok(ItemOutcome::Failed { reasons }),
            (_, Some(result)) => result,
            (Plan::Upsert { .. } | Plan::Delete, None) => Ok(ItemOutcome::Unchanged),
        };
        let Ok(outcome) = &result else {
            job.result = Some(result);
            continue;
        };
        let previous = job.record.live_code().map(str::to_owned);
        let mut next = job.record.clone();
        next.updated_at = now;
        match outcome {
            ItemOutcome::Created { xero_item_id } | ItemOutcome::Updated { xero_item_id } => {
                next.code = Some(job.event.item.code.clone());
                next.xero_item_id = Some(*xero_item_id);
                next.deleted = false;
                next.reason = None;
                next.content_hash = job.hash.clone();
            }
            ItemOutcome::Deleted { .. } => {
                next.deleted = true;
                next.reason = None;
                next.content_hash = None;
            }
            ItemOutcome::Failed { reasons } => next.reason = Some(reasons.join("; ")),
            _ => {
                job.result = Some(result);
                continue;
            }
        }
        next.last_event_at = Some(job.event.occurred_at);
        next.last_sequence = job.event.sequence;
        match store.save_item_record(&next, previous.as_deref()).await {
            Ok(saved) => job.record = saved,
            // Another push of this item saved first: this one is tried again, and finds its work
            // done or newer work in its place.
            Err(Error::Conflict(_)) => {
                job.result = Some(Err(PushError::later("another push has this item", policy.busy_retry)));
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        events.push(announcement(connection, job, outcome));
        tracing::info!(
            account = %connection.account_id, tenant = %connection.tenant_id, item = %job.event.item.id,
            delivery = %job.event.delivery_id, outcome = ?std::mem::discriminant(outcome), "item pushed"
        );
        job.result = Some(result);
    }
    let changes: Vec<Change> = jobs
        .iter()
        .filter_map(|j| match (&j.result, &j.in_xero) {
            (Some(Ok(ItemOutcome::Created { .. } | ItemOutcome::Updated { .. })), Some(item)) => {
                Some(Change::Put(item.clone()))
            }
            (Some(Ok(ItemOutcome::Deleted { xero_item_id: Some(id) })), _) => Some(Change::Remove(*id)),
            _ => None,
        })
        .collect();
    remember_in_snapshot(app, &connection.key(), changes).await;
    if !events.is_empty() {
        app.services.events.publish(&events).await?;
    }
    Ok(())
}

/// One of our writes, as the reference snapshot takes it.
enum Change {
    Put(xero_sync_domain::xero::Item),
    Remove(Uuid),
}

/// Lays our own writes onto the reference snapshot (settings choose items from it at once), and,
/// when the platform was told the list as the snapshot held it, onto the list it was told: the
/// import reading our writes back then finds nothing new to announce as `items.changed`. A
/// cache: failing to keep it loses nothing but an announcement of our own change.
async fn remember_in_snapshot(app: &App, key: &ConnectionKey, changes: Vec<Change>) {
    use xero_sync_domain::reference::{ITEMS_CURSOR, items_payload};
    if changes.is_empty() {
        return;
    }
    let store = &app.services.store;
    let Ok(Some(mut data)) = store.get_reference_data(key).await else { return };
    let Ok(cursor) = store.get_cursor(key, ITEMS_CURSOR).await else { return };
    let hash = |items: &[xero_sync_domain::xero::Item]| sha256_hex(items_payload(items).to_string());
    let told = cursor.as_ref().is_some_and(|c| c.content_hash.as_deref() == Some(hash(&data.items).as_str()));
    for change in changes {
        match change {
            Change::Put(item) => match data.items.iter_mut().find(|i| i.item_id == item.item_id) {
                Some(slot) => *slot = item,
                None => data.items.push(item),
            },
            Change::Remove(id) => data.items.retain(|i| i.item_id != id),
        }
    }
    if let Err(e) = store.put_reference_data(key, &data).await {
        tracing::warn!(error = %e, "reference snapshot not told of our items");
        return;
    }
    if let (true, Some(cursor)) = (told, cursor) {
        let next = xero_sync_domain::model::ImportCursor { content_hash: Some(hash(&data.items)), ..cursor };
        if let Err(e) = store.save_cursor(key, &next).await {
            tracing::warn!(error = %e, "the items the platform was told of not updated");
        }
    }
}

fn announcement(connection: &Connection, job: &Job, outcome: &ItemOutcome) -> PlatformEvent {
    let item = &job.event.item;
    let (kind, data) = match outcome {
        ItemOutcome::Failed { reasons } => {
            (EventKind::ItemSyncFailed, json!({ "item_id": item.id, "code": item.code, "reasons": reasons }))
        }
        _ => {
            let (action, id) = match outcome {
                ItemOutcome::Created { xero_item_id } => ("created", Some(*xero_item_id)),
                ItemOutcome::Updated { xero_item_id } => ("updated", Some(*xero_item_id)),
                ItemOutcome::Deleted { xero_item_id } => ("deleted", *xero_item_id),
                _ => ("updated", None),
            };
            (
                EventKind::ItemSynced,
                json!({ "item_id": item.id, "code": item.code, "xero_item_id": id, "action": action }),
            )
        }
    };
    let dedup = format!("{}|{}", item.id, job.event.delivery_id);
    PlatformEvent::new(
        kind,
        connection.account_id.clone(),
        Some(connection.tenant_id),
        &dedup,
        job.event.occurred_at,
        data,
    )
}

/// Parks item events until the organisation is reconnected with a consent that allows items.
async fn park(app: &App, key: &ConnectionKey, events: &[ItemEvent]) -> Result<Vec<ItemResult>, PushError> {
    let mut items = Vec::with_capacity(events.len());
    for event in events {
        let message = QueueMessage::Item(Box::new(ItemMessage { tenant_id: key.tenant_id, event: event.clone() }));
        items.push(parked(ParkedUnder::Item(event.item.id.clone()), event.order(), &message)?);
    }
    let parked = park_items(&*app.services.store, key, &items, blocked_without(Feature::Items)).await?;
    Ok(events.iter().map(|_| if parked { Ok(ItemOutcome::Parked) } else { Err(reconnected_meanwhile()) }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use xero_sync_domain::settings::TaxMapping;

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            default_sales_account_code: Some("200".into()),
            tax_mapping: vec![TaxMapping {
                platform_tax_rate_id: "gst".into(),
                rate: Decimal::from(15),
                components: vec![],
                xero_tax_type: "OUTPUT2".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn an_item_carries_its_sales_details_mapped_as_an_invoice_line() {
        let event = crate::item_event::example();
        let body = to_xero(&event.item, &settings()).unwrap();
        assert_eq!(body["Code"], "PIPE-CU-15");
        assert_eq!(body["IsSold"], true);
        assert_eq!(body["SalesDetails"], json!({ "UnitPrice": 12.4, "AccountCode": "200", "TaxType": "OUTPUT2" }));
        let mut unmapped = event.item.clone();
        unmapped.tax_rate_id = Some("vat".into());
        let problems = to_xero(&unmapped, &settings()).unwrap_err();
        assert_eq!(problems[0].field, "item.tax_rate_id");
    }

    #[test]
    fn the_same_item_again_is_unchanged_and_an_older_event_or_a_second_deletion_is_nothing() {
        let event = crate::item_event::example();
        let key = ConnectionKey { account_id: event.account_id.clone(), tenant_id: TenantId(Uuid::nil()) };
        let mut record = ItemRecord::new(&key, event.item.id.clone(), event.occurred_at);
        let Plan::Upsert { hash, .. } = decide(&event, &record, &settings()) else { panic!("a new item is written") };
        record.content_hash = Some(hash);
        assert!(matches!(decide(&event, &record, &settings()), Plan::Done(Ok(ItemOutcome::Unchanged))));
        record.last_event_at = Some(event.occurred_at);
        record.last_sequence = Some(3);
        assert!(matches!(decide(&event, &record, &settings()), Plan::Done(Ok(ItemOutcome::Stale))), "sequence 2 < 3");
        record.last_sequence = Some(2);
        let mut deleted = event.clone();
        deleted.event = ItemEventType::Deleted;
        assert!(matches!(decide(&deleted, &record, &settings()), Plan::Delete));
        record.deleted = true;
        assert!(matches!(decide(&deleted, &record, &settings()), Plan::Done(Ok(ItemOutcome::Unchanged))));
    }
}
