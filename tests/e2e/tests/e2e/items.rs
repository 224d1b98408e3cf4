//! Issue 19, items: the platform's products become Xero items found by their code, repriced in
//! place, deleted when the platform removes them; invoice lines naming one carry its code.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::model::PlatformItemId;
use xero_sync_domain::settings::NewInvoiceStatus;

use crate::helpers::*;

const POST_ITEMS: (&str, &str) = ("POST", "/api.xro/2.0/items");

fn calls(w: &World, (method, endpoint): (&str, &str)) -> u64 {
    w.emu.counters().calls_to(method, endpoint)
}

fn deletes(w: &World) -> u64 {
    w.emu.counters().calls_to("DELETE", "/api.xro/2.0/items/{id}")
}

/// `item.upserted` (or `kind`) for the example item as `id` / `code`, changed at `at`.
fn item_event(account: &str, delivery: &str, kind: &str, id: &str, code: &str, at: DateTime<Utc>) -> Value {
    let mut e = contract_example("item-upserted.json", account, delivery);
    e.as_object_mut().unwrap().remove("sequence");
    e["event"] = json!(kind);
    e["item"]["id"] = json!(id);
    e["item"]["code"] = json!(code);
    e["occurred_at"] = json!(at.to_rfc3339());
    e
}

fn xero_item(w: &World, code: &str) -> Option<Value> {
    w.emu.objects(demo::NZ_TENANT_ID, "Items").unwrap().into_iter().find(|i| i["Code"] == code)
}

async fn push(w: &World, body: &Value) {
    deliver(w, body).await;
    w.work_push_queue().await;
}

#[tokio::test]
async fn an_item_is_created_repriced_renamed_and_deleted_one_xero_call_each() {
    let account = "acct-items";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    push(&w, &item_event(account, "dlv-item-1", "item.upserted", "prod-15", "PIPE-CU-15", w.now())).await;
    assert_eq!((w.emu.counters().total_calls(), calls(&w, POST_ITEMS)), (1, 1), "{:?}", w.emu.counters());
    let item = xero_item(&w, "PIPE-CU-15").expect("the item is in Xero");
    assert_eq!(item["Name"], "Copper pipe 15mm");
    assert_eq!(item["SalesDetails"], json!({ "UnitPrice": 12.4, "AccountCode": "200", "TaxType": "OUTPUT2" }));
    let synced = events_of(&w.inbox, "item.synced").await;
    assert_eq!((synced.len(), &synced[0]["detail"]["data"]["action"]), (1, &json!("created")));
    assert_eq!(synced[0]["detail"]["data"]["xero_item_id"], item["ItemID"]);

    w.emu.clock().advance(Duration::from_secs(60));
    w.emu.reset_counters();
    let mut repriced = item_event(account, "dlv-item-2", "item.upserted", "prod-15", "PIPE-CU-15", w.now());
    repriced["item"]["unit_price"] = json!("13.10");
    push(&w, &repriced).await;
    assert_eq!((w.emu.counters().total_calls(), calls(&w, POST_ITEMS)), (1, 1));
    let now = xero_item(&w, "PIPE-CU-15").unwrap();
    assert_eq!((&now["ItemID"], &now["SalesDetails"]["UnitPrice"]), (&item["ItemID"], &json!(13.1)));
    assert_eq!(events_of(&w.inbox, "item.synced").await[0]["detail"]["data"]["action"], "updated");

    w.emu.reset_counters();
    repriced["delivery_id"] = json!("dlv-item-3");
    push(&w, &repriced).await;
    assert_eq!(w.emu.counters().total_calls(), 0, "the same item again costs no call");

    // A new code in the platform renames the same Xero item.
    w.emu.clock().advance(Duration::from_secs(60));
    let mut renamed = item_event(account, "dlv-item-4", "item.upserted", "prod-15", "PIPE-CU-15MM", w.now());
    renamed["item"]["unit_price"] = json!("13.10");
    push(&w, &renamed).await;
    assert!(xero_item(&w, "PIPE-CU-15").is_none());
    assert_eq!(xero_item(&w, "PIPE-CU-15MM").unwrap()["ItemID"], item["ItemID"]);

    w.emu.clock().advance(Duration::from_secs(60));
    w.emu.reset_counters();
    push(&w, &item_event(account, "dlv-item-5", "item.deleted", "prod-15", "PIPE-CU-15MM", w.now())).await;
    assert_eq!((w.emu.counters().total_calls(), deletes(&w)), (1, 1), "{:?}", w.emu.counters());
    assert!(xero_item(&w, "PIPE-CU-15MM").is_none(), "Xero's items have no archive: it is deleted");
    let synced = events_of(&w.inbox, "item.synced").await;
    assert_eq!(synced.last().unwrap()["detail"]["data"]["action"], "deleted");
    let record = w
        .aws
        .store()
        .get_item_record(&key(account), &PlatformItemId::parse("prod-15").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(record.deleted);
}

#[tokio::test]
async fn an_invoice_line_naming_a_pushed_item_carries_its_code_and_one_naming_a_deleted_item_does_not() {
    let account = "acct-items-inv";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    push(&w, &item_event(account, "dlv-ii-1", "item.upserted", "prod-15", "PIPE-CU-15", w.now())).await;
    let mut invoice = example_event(account, "dlv-ii-inv-1");
    invoice["invoice"]["lines"][1]["item_code"] = json!("PIPE-CU-15");
    push(&w, &invoice).await;
    let lines = in_xero(&w, "INV-1001").remove(0)["LineItems"].clone();
    assert_eq!(lines[1]["ItemCode"], "PIPE-CU-15", "Xero's item reports see the line");
    assert_eq!(lines[0].get("ItemCode"), None, "CALLOUT was not pushed, and items are not matched by code");

    w.emu.clock().advance(Duration::from_secs(60));
    push(&w, &item_event(account, "dlv-ii-2", "item.deleted", "prod-15", "PIPE-CU-15", w.now())).await;
    let mut second = example_event(account, "dlv-ii-inv-2");
    second["invoice"]["id"] = json!("inv-1002");
    second["invoice"]["number"] = json!("INV-1002");
    second["invoice"]["lines"][1]["item_code"] = json!("PIPE-CU-15");
    push(&w, &second).await;
    let lines = in_xero(&w, "INV-1002").remove(0)["LineItems"].clone();
    assert_eq!(lines[1].get("ItemCode"), None, "Xero would refuse a code it no longer has");
}

#[tokio::test]
async fn an_item_code_or_name_longer_than_xero_holds_is_refused_naming_the_field() {
    let account = "acct-items-long";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let mut long = item_event(account, "dlv-long-1", "item.upserted", "prod-1", &"C".repeat(31), w.now());
    long["item"]["name"] = json!("N".repeat(51));
    let response = w.post_webhook(&long.to_string(), None).await;
    assert_eq!(response.status(), 400);
    let problems = json(&response)["problems"].clone();
    let fields: Vec<&str> = problems.as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["item.code", "item.name"]);
    assert!(problems[0]["message"].as_str().unwrap().contains("30"), "{problems}");
    assert!(w.queued_pushes().await.is_empty(), "nothing queued, nothing cut short");
}

#[tokio::test]
async fn ten_deliveries_of_each_item_event_write_to_xero_once_and_a_burst_is_batched() {
    let account = "acct-items-again";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let at = w.now();
    let upsert = item_event(account, "dlv-again-up", "item.upserted", "prod-1", "WIDGET", at);
    for n in 0..10 {
        let response = w.post_webhook(&upsert.to_string(), None).await;
        assert_eq!(response.status(), if n == 0 { 202 } else { 200 });
    }
    for n in 1..10 {
        deliver(&w, &item_event(account, &format!("dlv-again-up-{n}"), "item.upserted", "prod-1", "WIDGET", at)).await;
    }
    w.work_push_queue().await;
    w.work_push_queue().await;
    assert_eq!(calls(&w, POST_ITEMS), 1, "{:?}", w.emu.counters());

    let later = at + chrono::Duration::minutes(1);
    for n in 0..10 {
        deliver(&w, &item_event(account, &format!("dlv-again-del-{n}"), "item.deleted", "prod-1", "WIDGET", later))
            .await;
    }
    w.work_push_queue().await;
    w.work_push_queue().await;
    assert_eq!(deletes(&w), 1, "{:?}", w.emu.counters());

    w.emu.reset_counters();
    for n in 0..60 {
        let id = format!("prod-burst-{n}");
        deliver(&w, &item_event(account, &format!("dlv-burst-{n}"), "item.upserted", &id, &format!("B-{n}"), later))
            .await;
    }
    w.work_push_queue().await;
    assert_eq!(calls(&w, POST_ITEMS), 2, "sixty items in two writes: {:?}", w.emu.counters());
    assert_eq!(
        w.emu
            .objects(demo::NZ_TENANT_ID, "Items")
            .unwrap()
            .iter()
            .filter(|i| i["Code"].as_str().unwrap().starts_with("B-"))
            .count(),
        60
    );
}

#[tokio::test]
async fn an_item_for_a_connection_whose_consent_does_not_allow_items_waits_and_a_reconnect_releases_it() {
    let old =
        "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings.read";
    let account = "acct-items-scope";
    let mut w =
        ready_with(account, NewInvoiceStatus::Authorised, Options { scopes: Some(old), ..Default::default() }).await;
    let listed = json(&w.api("GET", &format!("/accounts/{account}/connections")).await);
    let missing = listed["connections"][0]["features_not_allowed"].as_array().unwrap().clone();
    assert!(missing.contains(&json!({ "feature": "items", "needs_scope": "accounting.invoices" })), "{listed}");

    push(&w, &item_event(account, "dlv-scope-1", "item.upserted", "prod-1", "WIDGET", w.now())).await;
    assert!(xero_item(&w, "WIDGET").is_none(), "held, not failed");
    assert_eq!(calls(&w, POST_ITEMS), 0);

    w.connect.oauth.scopes =
        xero_sync_runtime::config::DEFAULT_XERO_SCOPES.split_whitespace().map(str::to_owned).collect();
    w.connect_account(account).await;
    w.work_push_queue().await;
    w.work_push_queue().await;
    assert!(xero_item(&w, "WIDGET").is_some(), "released by the reconnection");
}

#[tokio::test]
async fn our_own_items_are_not_announced_back_as_changed_but_an_edit_in_xero_is() {
    use scheduled_import::import::{ImportPolicy, import};
    let account = "acct-items-echo";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap(); // the first: everything
    w.inbox.drain().await.unwrap();

    push(&w, &item_event(account, "dlv-echo-1", "item.upserted", "prod-15", "PIPE-CU-15", w.now())).await;
    w.emu.clock().advance(Duration::from_secs(60));
    let mut repriced = item_event(account, "dlv-echo-2", "item.upserted", "prod-15", "PIPE-CU-15", w.now());
    repriced["item"]["unit_price"] = json!("13.10");
    push(&w, &repriced).await;
    w.inbox.drain().await.unwrap();

    w.emu.clock().advance(Duration::from_secs(25 * 3600));
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap();
    assert!(events_of(&w.inbox, "items.changed").await.is_empty(), "our own items are no news");

    let connection = w.connections(account).await.remove(0);
    let edit = json!({ "Items": [{ "Code": "PIPE-CU-15", "Name": "Copper pipe (edited in Xero)" }] });
    w.worker.app.tokens.post::<_, Value>(&connection, &xero_sync_xero::ApiRequest::new("/Items"), &edit).await.unwrap();
    w.emu.clock().advance(Duration::from_secs(25 * 3600));
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap();
    let changed = events_of(&w.inbox, "items.changed").await;
    assert_eq!(changed.len(), 1, "the bookkeeper's edit is");
    let items = changed[0]["detail"]["data"]["items"].as_array().unwrap().clone();
    assert!(items.iter().any(|i| i["name"] == "Copper pipe (edited in Xero)"), "{items:?}");
}
