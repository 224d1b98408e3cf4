//! Issue 17: with Xero's webhooks on, the scheduled import is a safety net. An idle
//! organisation is read a few times a day, its reference data daily (Accounts and Items by
//! `If-Modified-Since`), and whole once a week, for the deletions `If-Modified-Since` never shows.

use std::time::Duration;

use scheduled_import::Cadence;
use scheduled_import::import::{ImportPolicy, import};
use xero_emulator::demo;

use crate::helpers::*;

fn safety_net() -> ImportPolicy {
    ImportPolicy { cadence: Cadence::with_webhooks(), max_wait: Duration::from_millis(50), ..Default::default() }
}

async fn run(w: &World, account: &str) {
    import(&w.importer.app, &safety_net(), &key(account)).await.unwrap();
}

const HOUR: Duration = Duration::from_secs(3600);

/// `count` items like the organisation's first, coded `{code}-00000` on and named `{name} 0` on.
fn add_items(org: &mut xero_emulator::OrgSeed, code: &str, name: &str, count: usize) {
    let item = org.items[0].clone();
    for n in 0..count {
        org.items.push(xero_emulator::Item {
            item_id: uuid::Uuid::new_v4(),
            code: format!("{code}-{n:05}"),
            name: format!("{name} {n}"),
            ..item.clone()
        });
    }
}

#[tokio::test]
async fn an_idle_organisation_costs_under_30_calls_a_day_and_its_reference_data_is_read_daily() {
    let w = World::new().await;
    w.connect_account("acct-idle").await;
    w.work_import_queue().await; // the first import reads everything
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();

    for _ in 0..4 {
        w.emu.clock().advance(6 * HOUR);
        run(&w, "acct-idle").await;
    }
    let counters = w.emu.counters();
    for (endpoint, calls) in [
        ("contacts", 4),
        ("invoices", 4),
        ("payments", 4),
        ("accounts", 1),
        ("items", 1),
        ("taxrates", 1),
        ("currencies", 1),
        ("trackingcategories", 1),
    ] {
        assert_eq!(counters.calls_to("GET", &format!("/api.xro/2.0/{endpoint}")), calls, "{endpoint}: {counters:?}");
    }
    assert!(counters.total_calls() <= 30, "a day's calls, token refreshes included: {counters:?}");
    assert!(w.inbox.drain().await.unwrap().is_empty(), "nothing changed, nothing published");

    // In Xero, account 200 is archived and an item deleted.
    let mut nz = demo::seed().organisations.into_iter().find(|o| o.tenant_id == demo::NZ_TENANT_ID).unwrap();
    nz.accounts.iter_mut().filter(|a| a.code == "200").for_each(|a| a.status = "ARCHIVED".into());
    let removed = nz.items.pop().expect("the demo organisation has items").code;
    w.emu.seed_org(nz).unwrap();

    // The next daily read sees the archived account (If-Modified-Since shows changes) ...
    w.emu.clock().advance(24 * HOUR);
    run(&w, "acct-idle").await;
    let accounts = events_of(&w.inbox, "accounts.changed").await;
    assert_eq!(accounts.len(), 1);
    let archived =
        accounts[0]["detail"]["data"]["accounts"].as_array().unwrap().iter().find(|a| a["code"] == "200").cloned();
    assert_eq!(archived.unwrap()["status"], "ARCHIVED");
    assert!(events_of(&w.inbox, "items.changed").await.is_empty(), "a deletion does not show by If-Modified-Since");

    // ... and the weekly whole read the deletion.
    w.emu.clock().advance(7 * 24 * HOUR);
    run(&w, "acct-idle").await;
    let items = events_of(&w.inbox, "items.changed").await;
    assert_eq!(items.len(), 1);
    let codes: Vec<&str> =
        items[0]["detail"]["data"]["items"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert!(!codes.contains(&removed.as_str()), "{removed} is gone: {codes:?}");
}

#[tokio::test]
async fn each_connection_shows_the_calls_and_bytes_it_received_from_xero_today() {
    let w = World::new().await;
    w.connect_account("acct-meter").await;
    w.emu.reset_counters();
    w.work_import_queue().await; // the first import; the worker adds up what it received

    let counters = w.emu.counters();
    let calls: u64 = counters.calls.iter().filter(|c| c.tenant_id == Some(demo::NZ_TENANT_ID)).map(|c| c.calls).sum();
    let bytes = counters.bytes_for_tenant(demo::NZ_TENANT_ID);
    assert!(calls >= 8 && bytes > 1000, "{counters:?}");
    let listed = json(&w.api("GET", "/accounts/acct-meter/connections").await);
    let usage = &listed["connections"][0]["xero_usage"];
    assert_eq!(
        (&usage["today"]["calls"], &usage["today"]["bytes"]),
        (&serde_json::json!(calls), &serde_json::json!(bytes)),
        "{listed}"
    );
    assert_eq!(
        (&usage["yesterday"]["calls"], &usage["yesterday"]["bytes"]),
        (&serde_json::json!(0), &serde_json::json!(0))
    );
}

#[tokio::test]
async fn an_organisation_too_large_to_keep_a_snapshot_of_is_still_read_by_what_changed() {
    let w = World::new().await;
    // 3,000 items: the snapshot is larger than a DynamoDB item may be, so none is kept.
    let mut nz = demo::seed().organisations.into_iter().find(|o| o.tenant_id == demo::NZ_TENANT_ID).unwrap();
    add_items(&mut nz, "PART", "Part number", 3000);
    w.emu.seed_org(nz.clone()).unwrap();
    w.emu.clock().advance(Duration::from_secs(60)); // the records are older than the first read
    w.connect_account("acct-large").await;
    w.work_import_queue().await;
    w.inbox.drain().await.unwrap();

    w.emu.reset_counters();
    w.emu.clock().advance(24 * HOUR);
    run(&w, "acct-large").await;
    let counters = w.emu.counters();
    let items_bytes: u64 = counters.calls.iter().filter(|c| c.endpoint.ends_with("/items")).map(|c| c.bytes).sum();
    assert!(items_bytes < 2_000, "a quiet day asks Items for what changed only: {counters:?}");
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/items"), 1);
    let published = w.inbox.drain().await.unwrap();
    assert!(published.is_empty(), "nothing changed, nothing published (no list read as emptied): {published:?}");

    // One item changes: the list is read again whole and published whole, the change in it.
    nz.items.iter_mut().find(|i| i.code == "PART-00007").unwrap().name = "Part number seven".into();
    w.emu.seed_org(nz).unwrap();
    w.emu.clock().advance(24 * HOUR);
    run(&w, "acct-large").await;
    assert_eq!(w.emu.counters().calls_to("GET", "/api.xro/2.0/items"), 3, "asked what changed, then whole");
    let published = w.inbox.drain().await.unwrap();
    let of = |kind: &str| published.iter().filter(|e| e["detail-type"] == kind).collect::<Vec<_>>();
    let listed: Vec<&serde_json::Value> =
        of("items.changed").iter().flat_map(|e| e["detail"]["data"]["items"].as_array().unwrap().iter()).collect();
    assert!(listed.len() > 3000, "the whole list, in parts: {}", listed.len());
    assert!(listed.iter().any(|i| i["code"] == "PART-00007" && i["name"] == "Part number seven"));
    assert!(of("accounts.changed").is_empty(), "accounts did not change");
}

#[tokio::test]
async fn a_snapshot_left_from_before_the_lists_grew_too_large_is_not_built_upon() {
    let w = World::new().await;
    let mut nz = demo::seed().organisations.into_iter().find(|o| o.tenant_id == demo::NZ_TENANT_ID).unwrap();
    w.emu.clock().advance(Duration::from_secs(60));
    w.connect_account("acct-grows").await;
    w.work_import_queue().await; // small: the snapshot is kept
    w.emu.clock().advance(24 * HOUR);
    run(&w, "acct-grows").await;

    // The organisation takes on 3,000 items: the next read publishes them, and its snapshot is
    // now too large to keep.
    add_items(&mut nz, "NEW", "New part", 3000);
    w.emu.seed_org(nz).unwrap();
    w.emu.clock().advance(24 * HOUR);
    w.inbox.drain().await.unwrap();
    run(&w, "acct-grows").await;
    let items = events_of(&w.inbox, "items.changed").await;
    let listed: usize = items.iter().map(|e| e["detail"]["data"]["items"].as_array().unwrap().len()).sum();
    assert!(listed > 3000, "{listed}");

    // A quiet day after: the old, small snapshot must not stand in for the list.
    w.emu.clock().advance(24 * HOUR);
    run(&w, "acct-grows").await;
    assert!(events_of(&w.inbox, "items.changed").await.is_empty(), "nothing changed; no list may read as shrunk");
}
