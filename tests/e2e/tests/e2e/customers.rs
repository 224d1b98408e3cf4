//! Issue 19, customers: `customer.upserted` keeps the customer's Xero contact in step before and
//! without invoices; an edit made in Xero meets the connection's conflict rule; our own write
//! coming back through the import is no news.

use std::time::Duration;

use chrono::{DateTime, Utc};
use scheduled_import::import::{ImportPolicy, import};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::settings::{CustomerConflicts, NewInvoiceStatus};
use xero_sync_xero::ApiRequest;

use crate::helpers::*;

const POST_CONTACTS: (&str, &str) = ("POST", "/api.xro/2.0/contacts");

fn calls(w: &World, (method, endpoint): (&str, &str)) -> u64 {
    w.emu.counters().calls_to(method, endpoint)
}

/// `customer.upserted` for `customer`, changed in the platform at `at`.
fn upserted(account: &str, delivery: &str, customer: Value, at: DateTime<Utc>) -> Value {
    let mut e = contract_example("customer-upserted.json", account, delivery);
    e.as_object_mut().unwrap().remove("sequence");
    e["customer"] = customer;
    e["occurred_at"] = json!(at.to_rfc3339());
    e
}

fn contacts_numbered(w: &World, number: &str) -> Vec<Value> {
    w.emu.contacts(demo::NZ_TENANT_ID).into_iter().filter(|c| c["ContactNumber"] == number).collect()
}

fn one_contact(w: &World, number: &str) -> Value {
    let found = contacts_numbered(w, number);
    assert_eq!(found.len(), 1, "one contact numbered {number}: {found:?}");
    found.into_iter().next().unwrap()
}

async fn push(w: &World, body: &Value) {
    deliver(w, body).await;
    w.work_push_queue().await;
}

/// The bookkeeper changes the contact's email in Xero.
async fn edit_in_xero(w: &World, account: &str, contact_id: &Value, email: &str) {
    let connection = w.connections(account).await.remove(0);
    let edit = json!({ "Contacts": [{ "ContactID": contact_id, "EmailAddress": email }] });
    w.worker.app.tokens.post::<_, Value>(&connection, &ApiRequest::new("/Contacts"), &edit).await.unwrap();
}

async fn set_conflict_rule(w: &World, account: &str, rule: CustomerConflicts) {
    let store = w.aws.store();
    let current = store.get_settings(&key(account)).await.unwrap();
    let mut settings = current.settings;
    settings.customer_conflicts = rule;
    store.put_settings(&key(account), current.version, &settings).await.unwrap();
}

#[tokio::test]
async fn a_customer_pushed_on_its_own_and_then_invoiced_has_one_contact_with_every_detail() {
    let w = ready("acct-cust", NewInvoiceStatus::Authorised).await;
    let mut customer = new_customer("cust-1", "Totara Homes");
    customer["tax_number"] = json!("123-456-789");
    customer["addresses"] = json!([
        { "type": "billing", "line1": "PO Box 77", "city": "Whangarei", "postal_code": "0140", "country": "NZ" },
        { "type": "street", "line1": "9 Kauri Rd", "city": "Whangarei", "country": "NZ" },
    ]);
    push(&w, &upserted("acct-cust", "dlv-cust-1", customer.clone(), w.now())).await;

    assert_eq!(w.emu.counters().total_calls(), 2, "one lookup, one write: {:?}", w.emu.counters());
    let contact = one_contact(&w, "cust-1");
    assert_eq!(contact["Name"], "Totara Homes");
    assert_eq!(contact["EmailAddress"], "cust-1@customers.example");
    assert_eq!(contact["TaxNumber"], "123-456-789");
    assert_eq!(contact["Phones"][0]["PhoneNumber"], "+64 21 555 0101");
    let kinds: Vec<&str> =
        contact["Addresses"].as_array().unwrap().iter().filter_map(|a| a["AddressType"].as_str()).collect();
    assert_eq!(kinds, ["POBOX", "STREET"], "billing is Xero's postal address");
    let synced = events_of(&w.inbox, "customer.synced").await;
    assert_eq!(synced.len(), 1);
    let data = &synced[0]["detail"]["data"];
    assert_eq!((data["action"].as_str(), &data["xero_contact_id"]), (Some("created"), &contact["ContactID"]));

    push(&w, &event("acct-cust", "dlv-cust-inv", "inv-1", "INV-1", customer)).await;
    let invoice = in_xero(&w, "INV-1").remove(0);
    assert_eq!(invoice["Contact"]["ContactID"], contact["ContactID"], "invoiced to the contact pushed before");
    assert_eq!(contacts_numbered(&w, "cust-1").len(), 1, "no second contact");
}

#[tokio::test]
async fn a_changed_address_updates_the_same_contact_and_the_same_details_again_cost_no_call() {
    let w = ready("acct-cust-move", NewInvoiceStatus::Authorised).await;
    let mut customer = new_customer("cust-1", "Totara Homes");
    push(&w, &upserted("acct-cust-move", "dlv-move-1", customer.clone(), w.now())).await;
    let before = one_contact(&w, "cust-1");

    w.emu.clock().advance(Duration::from_secs(60));
    w.emu.reset_counters();
    customer["addresses"][0]["line1"] = json!("21 Rimu St");
    push(&w, &upserted("acct-cust-move", "dlv-move-2", customer.clone(), w.now())).await;
    assert_eq!((w.emu.counters().total_calls(), calls(&w, POST_CONTACTS)), (2, 1), "{:?}", w.emu.counters());
    let after = one_contact(&w, "cust-1");
    assert_eq!(after["ContactID"], before["ContactID"], "the same contact");
    assert_eq!(after["Addresses"][0]["AddressLine1"], "21 Rimu St");
    let synced = events_of(&w.inbox, "customer.synced").await;
    assert_eq!(synced.last().unwrap()["detail"]["data"]["action"], "updated");

    w.emu.clock().advance(Duration::from_secs(60));
    w.emu.reset_counters();
    push(&w, &upserted("acct-cust-move", "dlv-move-3", customer, w.now())).await;
    assert_eq!(w.emu.counters().total_calls(), 0, "unchanged details cost no Xero call");
    assert!(events_of(&w.inbox, "customer.synced").await.is_empty(), "and are no news");
}

#[tokio::test]
async fn two_customers_with_one_name_get_two_contacts_told_apart_by_number() {
    let w = ready("acct-cust-twins", NewInvoiceStatus::Authorised).await;
    let at = w.now();
    deliver(&w, &upserted("acct-cust-twins", "dlv-twin-a", new_customer("cust-a", "John Smith"), at)).await;
    deliver(&w, &upserted("acct-cust-twins", "dlv-twin-b", new_customer("cust-b", "John Smith"), at)).await;
    w.work_push_queue().await;
    assert_eq!(calls(&w, POST_CONTACTS), 1, "both in one write");
    let (a, b) = (one_contact(&w, "cust-a"), one_contact(&w, "cust-b"));
    assert_ne!(a["ContactID"], b["ContactID"]);
    let mut names = [a["Name"].as_str().unwrap().to_owned(), b["Name"].as_str().unwrap().to_owned()];
    names.sort();
    assert_eq!(names, ["John Smith", "John Smith (cust-b)"], "Xero keeps active names unique");

    // A third namesake later: found by nobody's email or name, created beside them.
    push(&w, &upserted("acct-cust-twins", "dlv-twin-c", new_customer("cust-c", "John Smith"), w.now())).await;
    assert_eq!(one_contact(&w, "cust-c")["Name"], "John Smith (cust-c)");
}

#[tokio::test]
async fn a_contact_edited_in_xero_then_in_the_platform_follows_each_conflict_rule() {
    let account = "acct-cust-conflict";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    // (rule, the platform's change after the edit in Xero?, the platform's change written?)
    let cases = [
        (CustomerConflicts::NewestWins, true, true),
        (CustomerConflicts::NewestWins, false, false),
        (CustomerConflicts::PlatformWins, false, true),
        (CustomerConflicts::XeroWins, true, false),
    ];
    for (n, (rule, platform_later, written)) in cases.into_iter().enumerate() {
        set_conflict_rule(&w, account, rule).await;
        let id = format!("cust-rule-{n}");
        let mut customer = new_customer(&id, &format!("Customer {n}"));
        push(&w, &upserted(account, &format!("dlv-rule-{n}-1"), customer.clone(), w.now())).await;
        let contact = one_contact(&w, &id);
        w.emu.clock().advance(Duration::from_secs(60));
        edit_in_xero(&w, account, &contact["ContactID"], "books@edited.example").await;
        let edited_at = w.now();
        w.emu.clock().advance(Duration::from_secs(60));
        w.inbox.drain().await.unwrap();

        customer["phone"] = json!("+64 21 555 0199");
        customer["email"] = json!(format!("{id}@platform.example"));
        let changed_at = if platform_later {
            edited_at + chrono::Duration::seconds(30)
        } else {
            edited_at - chrono::Duration::seconds(30)
        };
        push(&w, &upserted(account, &format!("dlv-rule-{n}-2"), customer, changed_at)).await;

        let now = one_contact(&w, &id);
        let what = format!("{rule:?}, platform later: {platform_later}");
        let expected_email = if written { format!("{id}@platform.example") } else { "books@edited.example".into() };
        assert_eq!(now["EmailAddress"], expected_email.as_str(), "{what}");
        let synced = events_of(&w.inbox, "customer.synced").await;
        let data = &synced.last().unwrap_or_else(|| panic!("customer.synced for {what}"))["detail"]["data"];
        assert_eq!(data["action"], if written { "updated" } else { "kept_xero" }, "{what}: {data}");
        if !written {
            assert!(data["reason"].as_str().unwrap().contains("edited in Xero"), "{data}");
        }
    }
}

#[tokio::test]
async fn our_own_customer_write_is_not_announced_back_but_an_edit_in_xero_is() {
    let account = "acct-cust-echo";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap();
    w.emu.clock().advance(Duration::from_secs(120));
    push(&w, &upserted(account, "dlv-echo-1", new_customer("cust-1", "Totara Homes"), w.now())).await;
    let contact = one_contact(&w, "cust-1");
    w.inbox.drain().await.unwrap();

    w.emu.clock().advance(Duration::from_secs(120));
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap();
    let ours = |events: &[Value]| {
        events.iter().filter(|e| e["detail"]["data"]["xero_contact_id"] == contact["ContactID"]).count()
    };
    assert_eq!(ours(&events_of(&w.inbox, "contact.upserted").await), 0, "our own write is no news");

    edit_in_xero(&w, account, &contact["ContactID"], "books@edited.example").await;
    w.emu.clock().advance(Duration::from_secs(120));
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap();
    let upserted = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(ours(&upserted), 1, "the bookkeeper's edit is");
    assert_eq!(upserted[0]["detail"]["data"]["customer_id"], "cust-1");
}

#[tokio::test]
async fn ten_deliveries_of_one_customer_event_write_to_xero_once() {
    let account = "acct-cust-again";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let at = w.now();
    let body = upserted(account, "dlv-again-1", new_customer("cust-1", "Totara Homes"), at);
    for n in 0..10 {
        let response = w.post_webhook(&body.to_string(), None).await;
        assert_eq!(response.status(), if n == 0 { 202 } else { 200 }, "delivery {n}");
    }
    for n in 2..=10 {
        // The platform sending the same change again under new delivery ids.
        deliver(&w, &upserted(account, &format!("dlv-again-{n}"), new_customer("cust-1", "Totara Homes"), at)).await;
    }
    w.work_push_queue().await;
    w.work_push_queue().await;
    assert_eq!(calls(&w, POST_CONTACTS), 1, "{:?}", w.emu.counters());
    assert_eq!(contacts_numbered(&w, "cust-1").len(), 1);
}

#[tokio::test]
async fn a_customer_event_xero_could_not_hold_is_refused_naming_each_field() {
    let w = ready("acct-cust-bad", NewInvoiceStatus::Authorised).await;
    let mut customer = new_customer("cust-1", "Totara Homes");
    customer["tax_number"] = json!("9".repeat(51));
    customer["email"] = json!("not an address");
    let response = w.post_webhook(&upserted("acct-cust-bad", "dlv-bad-1", customer, w.now()).to_string(), None).await;
    assert_eq!(response.status(), 400);
    let fields: Vec<String> = json(&response)["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["customer.tax_number", "customer.email"]);
    assert!(w.queued_pushes().await.is_empty(), "nothing queued");
}
