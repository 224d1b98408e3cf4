//! Issue 15, "wrong data in Xero": each test reproduces a way a platform customer got a wrong
//! result in Xero, against moto and the emulator.

use invoice_push::push::{Outcome, PushPolicy, push};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::model::{PlatformInvoiceId, SyncStatus, TenantId};
use xero_sync_domain::settings::NewInvoiceStatus;

use crate::helpers::*;

fn contact(w: &World, id: &Value) -> Value {
    w.emu.contacts(demo::NZ_TENANT_ID).into_iter().find(|c| &c["ContactID"] == id).expect("the invoice's contact")
}

fn contacts_named(w: &World, prefix: &str) -> Vec<Value> {
    w.emu
        .contacts(demo::NZ_TENANT_ID)
        .into_iter()
        .filter(|c| c["Name"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .collect()
}

async fn record(w: &World, account: &str, invoice: &str) -> xero_sync_domain::model::SyncRecord {
    w.aws.store().get_sync_record(&key(account), &PlatformInvoiceId::parse(invoice).unwrap()).await.unwrap().unwrap()
}

fn later(body: &Value, delivery: &str, occurred_at: &str) -> Value {
    let mut next = body.clone();
    next["delivery_id"] = json!(delivery);
    next["event"] = json!("invoice.updated");
    next["occurred_at"] = json!(occurred_at);
    next
}

#[tokio::test]
async fn a_customer_corrected_on_an_update_moves_the_xero_invoice_to_the_new_customers_contact() {
    let w = ready("acct-recontact", NewInvoiceStatus::Draft).await;
    let created = event("acct-recontact", "dlv-recon-0001", "inv-r", "INV-R1", new_customer("cust-alpha", "Alpha Ltd"));
    deliver(&w, &created).await;
    w.work_push_queue().await;
    let first = in_xero(&w, "INV-R1").remove(0);
    assert_eq!(contact(&w, &first["Contact"]["ContactID"])["Name"], "Alpha Ltd");

    let mut corrected = later(&created, "dlv-recon-0002", "2026-11-21T07:00:00Z");
    corrected["customer"] = new_customer("cust-beta", "Beta Ltd");
    deliver(&w, &corrected).await;
    w.work_push_queue().await;

    let invoices = in_xero(&w, "INV-R1");
    assert_eq!(invoices.len(), 1, "the same Xero invoice, changed");
    assert_eq!(invoices[0]["InvoiceID"], first["InvoiceID"]);
    let now_for = contact(&w, &invoices[0]["Contact"]["ContactID"]);
    assert_eq!((now_for["Name"].as_str(), now_for["ContactNumber"].as_str()), (Some("Beta Ltd"), Some("cust-beta")));
    assert_eq!(record(&w, "acct-recontact", "inv-r").await.status, SyncStatus::Synced);
    let actions: Vec<Value> =
        events_of(&w.inbox, "invoice.synced").await.iter().map(|e| e["detail"]["data"]["action"].clone()).collect();
    assert_eq!(actions, [json!("created"), json!("updated")]);
}

#[tokio::test]
async fn two_customers_with_one_name_get_two_contacts_and_neither_gets_the_others_invoices() {
    let w = ready("acct-smiths", NewInvoiceStatus::Draft).await;
    let smith = |id: &str, email: &str| json!({ "id": id, "name": "John Smith", "email": email });
    for (n, (invoice, customer)) in [
        ("J1", smith("cust-1", "john@smith-one.example")),
        ("J2", smith("cust-2", "john@smith-two.example")),
        ("J3", smith("cust-1", "john@smith-one.example")),
    ]
    .into_iter()
    .enumerate()
    {
        let body = event("acct-smiths", &format!("dlv-smith-{n:04}"), &format!("inv-{invoice}"), invoice, customer);
        deliver(&w, &body).await;
        w.work_push_queue().await;
    }
    let of = |number: &str| contact(&w, &in_xero(&w, number)[0]["Contact"]["ContactID"]);
    let (one, two, again) = (of("J1"), of("J2"), of("J3"));
    assert_eq!((one["Name"].as_str(), one["ContactNumber"].as_str()), (Some("John Smith"), Some("cust-1")));
    assert_eq!(
        (two["Name"].as_str(), two["ContactNumber"].as_str()),
        (Some("John Smith (cust-2)"), Some("cust-2")),
        "a second John Smith gets a name of its own, which Xero requires of active contacts"
    );
    assert_eq!(again["ContactID"], one["ContactID"], "cust-1 keeps its own contact");
    assert_eq!(contacts_named(&w, "John Smith").len(), 2);
}

#[tokio::test]
async fn a_shared_email_never_hands_one_customers_invoices_to_another_customers_contact() {
    let w = ready("acct-shared", NewInvoiceStatus::Draft).await;
    let office = "office@family-business.example";
    let first = event(
        "acct-shared",
        "dlv-shared-0001",
        "inv-m1",
        "M1",
        json!({ "id": "cust-mum", "name": "Mary Hill", "email": office }),
    );
    deliver(&w, &first).await;
    w.work_push_queue().await;
    let second = event(
        "acct-shared",
        "dlv-shared-0002",
        "inv-m2",
        "M2",
        json!({ "id": "cust-son", "name": "Tom Hill", "email": office }),
    );
    deliver(&w, &second).await;
    w.work_push_queue().await;

    let mum = contact(&w, &in_xero(&w, "M1")[0]["Contact"]["ContactID"]);
    let son = contact(&w, &in_xero(&w, "M2")[0]["Contact"]["ContactID"]);
    assert_ne!(mum["ContactID"], son["ContactID"], "Tom's invoice must not go to Mary, and Xero must not email her");
    assert_eq!((son["Name"].as_str(), son["ContactNumber"].as_str()), (Some("Tom Hill"), Some("cust-son")));
}

#[tokio::test]
async fn a_customer_id_longer_than_xeros_contact_number_gets_a_stable_number_that_finds_it_again() {
    let w = ready("acct-long-a", NewInvoiceStatus::Draft).await;
    let long_id = format!("crm:customer:{}", "7".repeat(100));
    let customer = json!({ "id": long_id, "name": "Long Id Ltd" });
    deliver(&w, &event("acct-long-a", "dlv-long-0001", "inv-l1", "L1", customer.clone())).await;
    w.work_push_queue().await;
    let invoices = in_xero(&w, "L1");
    assert_eq!(invoices.len(), 1, "{:?}", record(&w, "acct-long-a", "inv-l1").await.last_error);
    let made = contact(&w, &invoices[0]["Contact"]["ContactID"]);
    let number = made["ContactNumber"].as_str().unwrap().to_owned();
    assert!(number.chars().count() <= 50, "Xero's ContactNumber holds 50 characters: {number}");
    assert!(number.starts_with("crm:customer:777"), "readable: {number}");

    // Another platform account on the same organisation has no mapping yet: it finds the
    // contact by that number, in one query, rather than making a second one.
    w.connect_account("acct-long-b").await;
    w.aws.store().put_settings(&key("acct-long-b"), 0, &settings(NewInvoiceStatus::Draft)).await.unwrap();
    deliver(&w, &event("acct-long-b", "dlv-long-0002", "inv-l2", "L2", customer)).await;
    w.work_push_queue().await;
    assert_eq!(in_xero(&w, "L2")[0]["Contact"]["ContactID"], made["ContactID"]);
    assert_eq!(contacts_named(&w, "Long Id Ltd").len(), 1);
}

#[tokio::test]
async fn a_customer_field_longer_than_xero_takes_is_refused_at_the_webhook_naming_it() {
    let w = ready("acct-fields", NewInvoiceStatus::Draft).await;
    let mut body = example_event("acct-fields", "dlv-fields-0001");
    body["customer"]["addresses"][0]["postal_code"] = json!("9".repeat(51));
    body["customer"]["addresses"][0]["line1"] = json!("x".repeat(501));
    let response = w.post_webhook(&body.to_string(), None).await;
    assert_eq!(response.status(), 400, "{}", crate::helpers::body(&response));
    let fields: Vec<String> = json(&response)["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["customer.addresses[0].line1", "customer.addresses[0].postal_code"]);
    assert!(w.queued_pushes().await.is_empty());
}

#[tokio::test]
async fn json_numbers_are_read_digit_for_digit_or_refused_naming_the_field() {
    let w = ready("acct-digits", NewInvoiceStatus::Draft).await;
    let mut exact = example_event("acct-digits", "dlv-digits-0001");
    let text = exact.to_string().replace("\"quantity\":\"3.5\"", "\"quantity\":12345678901234.5678");
    assert_ne!(text, exact.to_string());
    let accepted = w.post_webhook(&text, None).await;
    assert_eq!(accepted.status(), 202, "{}", body(&accepted));
    let queued = w.queued_pushes().await;
    assert_eq!(queued[0].event.invoice.lines[1].quantity.to_string(), "12345678901234.5678", "not rounded by a float");

    exact["delivery_id"] = json!("dlv-digits-0002");
    let text = exact.to_string().replace("\"unit_price\":\"12.40\"", "\"unit_price\":12.4000000000000000000001");
    let refused = w.post_webhook(&text, None).await;
    assert_eq!(refused.status(), 400, "{}", body(&refused));
    assert_eq!(json(&refused)["problems"][0]["field"], "invoice.lines[1].unit_price");
    assert!(w.queued_pushes().await.is_empty());
}

#[tokio::test]
async fn events_for_one_invoice_in_the_same_second_apply_in_sequence_order() {
    let w = ready("acct-seq", NewInvoiceStatus::Draft).await;
    let mut newer = event("acct-seq", "dlv-seq-0002", "inv-s", "S1", new_customer("cust-s", "Seq Ltd"));
    newer["event"] = json!("invoice.updated");
    newer["occurred_at"] = json!("2026-11-21T06:00:00Z");
    newer["sequence"] = json!(2);
    newer["invoice"]["lines"][0]["quantity"] = json!("2");
    deliver(&w, &newer).await;
    w.work_push_queue().await;

    let mut older = newer.clone();
    older["delivery_id"] = json!("dlv-seq-0001");
    older["event"] = json!("invoice.created");
    older["sequence"] = json!(1);
    older["invoice"]["lines"][0]["quantity"] = json!("7");
    deliver(&w, &older).await;
    w.emu.reset_counters();
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0, "the older version is dropped");
    let quantity = in_xero(&w, "S1")[0]["LineItems"][0]["Quantity"].clone();
    assert_eq!(quantity.as_f64(), Some(2.0), "Xero keeps the newer version: {quantity}");

    // Without a sequence, a time to the millisecond orders them.
    let mut fine = newer.clone();
    fine.as_object_mut().unwrap().remove("sequence");
    fine["delivery_id"] = json!("dlv-seq-0003");
    fine["occurred_at"] = json!("2026-11-21T08:00:00.250Z");
    fine["invoice"]["lines"][0]["quantity"] = json!("3");
    deliver(&w, &fine).await;
    let mut coarse = fine.clone();
    coarse["delivery_id"] = json!("dlv-seq-0004");
    coarse["occurred_at"] = json!("2026-11-21T08:00:00.100Z");
    coarse["invoice"]["lines"][0]["quantity"] = json!("9");
    deliver(&w, &coarse).await;
    w.work_push_queue().await;
    let quantity = in_xero(&w, "S1")[0]["LineItems"][0]["Quantity"].clone();
    assert_eq!(quantity.as_f64(), Some(3.0), "the later millisecond wins: {quantity}");
}

#[tokio::test]
async fn an_invoice_number_with_a_comma_is_found_after_a_lost_answer_and_never_created_twice() {
    let w = ready("acct-comma", NewInvoiceStatus::Draft).await;
    let tenant = TenantId(demo::NZ_TENANT_ID);
    let first = event("acct-comma", "dlv-comma-0001", "inv-c", "INV-7,1", new_customer("cust-comma", "Comma Ltd"));
    let first: invoice_push::event::InvoiceEvent = serde_json::from_value(first).unwrap();
    // Xero applies the write, the answer never arrives, and this push gives up at once.
    w.emu.faults().timeout_after_write(Some("PUT"), "/api.xro/2.0/invoices", Some(3_000));
    let once = PushPolicy { attempts: 1, ..w.worker.policy };
    assert!(push(&w.worker.app, &once, tenant, vec![first.clone()]).await.remove(0).is_err());
    w.emu.faults().clear();
    assert!(record(&w, "acct-comma", "inv-c").await.uncertain);

    // The platform saves the invoice again: a new delivery, so a new Idempotency-Key.
    let mut again = first.clone();
    again.delivery_id = "dlv-comma-0002".into();
    let outcome = push(&w.worker.app, &w.worker.policy, tenant, vec![again]).await.remove(0);
    assert!(matches!(outcome, Ok(Outcome::Updated { .. } | Outcome::Unchanged)), "{outcome:?}");
    assert_eq!(in_xero(&w, "INV-7,1").len(), 1);
    assert_eq!(record(&w, "acct-comma", "inv-c").await.status, SyncStatus::Synced);
}

#[tokio::test]
async fn a_write_xero_applied_but_answered_unreadably_is_looked_up_before_it_is_created_again() {
    let w = ready("acct-garbled", NewInvoiceStatus::Draft).await;
    let tenant = TenantId(demo::NZ_TENANT_ID);
    let first = event("acct-garbled", "dlv-garbled-0001", "inv-g", "INV-G1", new_customer("cust-g", "Garbled Ltd"));
    let first: invoice_push::event::InvoiceEvent = serde_json::from_value(first).unwrap();
    // Xero applies the write; its 200 arrives cut short.
    w.emu.faults().garbled_after_write(Some("PUT"), "/api.xro/2.0/invoices");
    let once = PushPolicy { attempts: 1, ..w.worker.policy };
    assert!(push(&w.worker.app, &once, tenant, vec![first.clone()]).await.remove(0).is_err());
    w.emu.faults().clear();
    assert!(record(&w, "acct-garbled", "inv-g").await.uncertain, "a 2xx means it may well be in Xero");

    let mut again = first.clone();
    again.delivery_id = "dlv-garbled-0002".into();
    let outcome = push(&w.worker.app, &w.worker.policy, tenant, vec![again]).await.remove(0);
    assert!(matches!(outcome, Ok(Outcome::Updated { .. } | Outcome::Unchanged)), "{outcome:?}");
    assert_eq!(in_xero(&w, "INV-G1").len(), 1);
    assert_eq!(record(&w, "acct-garbled", "inv-g").await.status, SyncStatus::Synced);
}

async fn put_contact(w: &World, account: &str, contact: Value) -> String {
    let connection = w.connections(account).await.remove(0);
    let request = xero_sync_xero::ApiRequest::new("/Contacts");
    let answer: Value =
        w.worker.app.tokens.put(&connection, &request, &json!({ "Contacts": [contact] })).await.unwrap().body;
    answer["Contacts"][0]["ContactID"].as_str().unwrap().to_owned()
}

async fn import(w: &World, account: &str) -> scheduled_import::import::ImportSummary {
    scheduled_import::import::import(&w.importer.app, &w.importer.policy, &key(account)).await.unwrap()
}

fn upserted(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["detail"]["data"]["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_record_the_import_cannot_read_is_reported_kept_and_delivered_once_it_reads() {
    let w = World::new().await;
    w.connect_account("acct-unread").await;
    w.work_import_queue().await;
    w.inbox.drain().await.unwrap();
    for name in ["Unread One", "Unread Two", "Unread Three"] {
        put_contact(&w, "acct-unread", json!({ "Name": name })).await;
        w.emu.clock().advance(std::time::Duration::from_secs(1));
    }
    // Xero sends the first of them in a shape we cannot read. The list holds, oldest first,
    // the demo contacts (read again: they changed just before the last read) and then these.
    let demo_contacts = w.emu.contacts(demo::NZ_TENANT_ID).len() - 3;
    let fault = w.emu.faults().rewrite_response(
        Some("GET"),
        "/api.xro/2.0/contacts",
        &format!("/Contacts/{demo_contacts}/UpdatedDateUTC"),
        json!("not a date"),
    );
    let first = import(&w, "acct-unread").await;
    w.emu.faults().remove(fault);
    assert_eq!(serde_json::to_value(&first).unwrap()["unreadable"], 1, "{first:?}");
    assert_eq!(upserted(&events_of(&w.inbox, "contact.upserted").await), ["Unread Two", "Unread Three"]);

    let second = import(&w, "acct-unread").await;
    assert_eq!(serde_json::to_value(&second).unwrap()["unreadable"], 0, "{second:?}");
    assert_eq!(upserted(&events_of(&w.inbox, "contact.upserted").await), ["Unread One"], "not lost");
    import(&w, "acct-unread").await;
    assert!(events_of(&w.inbox, "contact.upserted").await.is_empty(), "and delivered once");
}

#[tokio::test]
async fn a_record_xero_makes_visible_after_a_newer_one_is_still_imported() {
    let w = World::new().await;
    w.connect_account("acct-late").await;
    w.work_import_queue().await;
    w.inbox.drain().await.unwrap();
    let late = put_contact(&w, "acct-late", json!({ "Name": "Late Visible" })).await;
    let hidden_until = w.now() + chrono::Duration::seconds(3);
    w.emu.delay_visibility(demo::NZ_TENANT_ID, "contacts", late.parse().unwrap(), hidden_until).unwrap();
    w.emu.clock().advance(std::time::Duration::from_secs(1));
    put_contact(&w, "acct-late", json!({ "Name": "Seen At Once" })).await;
    w.emu.clock().advance(std::time::Duration::from_secs(1));
    import(&w, "acct-late").await;
    assert_eq!(upserted(&events_of(&w.inbox, "contact.upserted").await), ["Seen At Once"]);

    w.emu.clock().advance(std::time::Duration::from_secs(2));
    import(&w, "acct-late").await;
    assert_eq!(upserted(&events_of(&w.inbox, "contact.upserted").await), ["Late Visible"], "not skipped for good");
}

#[tokio::test]
async fn two_new_customers_of_one_name_in_one_batch_get_a_contact_each() {
    let w = ready("acct-twins", NewInvoiceStatus::Draft).await;
    for (n, customer) in ["cust-t1", "cust-t2"].into_iter().enumerate() {
        let body = event(
            "acct-twins",
            &format!("dlv-twin-{n:04}"),
            &format!("inv-t{n}"),
            &format!("T{n}"),
            json!({ "id": customer, "name": "Pat Twin" }),
        );
        deliver(&w, &body).await;
    }
    // Both go to Xero in one request.
    w.work_push_queue().await;
    let first = contact(&w, &in_xero(&w, "T0")[0]["Contact"]["ContactID"]);
    let second = contact(&w, &in_xero(&w, "T1")[0]["Contact"]["ContactID"]);
    assert_ne!(first["ContactID"], second["ContactID"]);
    let numbers = [first["ContactNumber"].as_str(), second["ContactNumber"].as_str()];
    assert_eq!(numbers, [Some("cust-t1"), Some("cust-t2")]);
    assert_eq!(contacts_named(&w, "Pat Twin").len(), 2, "one under its own name, one distinct");
}
