//! Issue 7: what changes in Xero reaches the platform, incrementally, against moto and the
//! emulator. Every event drained here is checked against its schema (see `events_of`).

use std::collections::HashSet;
use std::time::Duration;

use scheduled_import::import::{ImportPolicy, ImportSummary, import};
use serde_json::{Value, json};
use xero_emulator::{FaultAction, FaultRule, LimitsConfig, Trigger, demo};
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_xero::ApiRequest;

use crate::helpers::*;

const GET_CONTACTS: (&str, &str) = ("GET", "/api.xro/2.0/contacts");

fn policy(page_size: u32) -> ImportPolicy {
    ImportPolicy { page_size, day_reserve: 3, max_wait: Duration::from_millis(50), ..Default::default() }
}

async fn run(w: &World, account: &str, policy: &ImportPolicy) -> Result<ImportSummary, String> {
    import(&w.importer.app, policy, &key(account)).await.map_err(|e| e.to_string())
}

fn ids(events: &[Value]) -> HashSet<String> {
    events.iter().map(|e| e["detail"]["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_new_connection_is_imported_at_once_and_a_run_with_nothing_changed_publishes_nothing() {
    let w = World::new().await;
    w.connect_account("acct-first").await;
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    w.work_import_queue().await; // connection.connected → the first import

    let contacts = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(contacts.len(), w.emu.contacts(demo::NZ_TENANT_ID).len());
    let jane = contacts.iter().find(|e| e["detail"]["data"]["name"] == "Jane Citizen").unwrap();
    assert_eq!(jane["detail"]["data"]["first_name"], "Jane");
    let acme = contacts.iter().find(|e| e["detail"]["data"]["name"] == "Acme Plumbing Ltd").unwrap();
    assert_eq!(
        (&acme["detail"]["data"]["first_name"], &acme["detail"]["data"]["last_name"]),
        (&json!("Acme"), &json!("Plumbing Ltd")),
        "a name alone is split"
    );
    assert!(w.connections("acct-first").await[0].last_sync_at.is_some());

    // The reference data went out once with the contacts; nothing changed since.
    w.emu.reset_counters();
    let quiet = run(&w, "acct-first", &ImportPolicy::default()).await.unwrap();
    assert_eq!(quiet.events, 0);
    assert_eq!(w.emu.counters().total_calls(), 8, "one call per resource: {:?}", w.emu.counters());
    assert!(w.inbox.drain().await.unwrap().is_empty(), "nothing published");
}

#[tokio::test]
async fn the_first_import_of_2500_contacts_takes_three_pages_and_the_next_run_none() {
    let w = World::new().await;
    w.connect_account("acct-many").await;
    w.add_contacts("acct-many", 2500, 100).await;
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    // Thousands of events are counted from the summary; the exact events (every contact once,
    // their shape) are checked at a smaller scale by the other tests.
    w.inbox.set_collecting(false).await.unwrap();

    let summary = run(&w, "acct-many", &ImportPolicy::default()).await.unwrap();
    let (method, endpoint) = GET_CONTACTS;
    assert_eq!(w.emu.counters().calls_to(method, endpoint), 3, "pages of 1000");
    assert_eq!(summary.events, 2503 + 5, "2500 added, the 3 demo contacts, and the 5 reference lists");
    assert_eq!(summary.stopped, None);

    w.inbox.set_collecting(true).await.unwrap();
    w.emu.reset_counters();
    let again = run(&w, "acct-many", &ImportPolicy::default()).await.unwrap();
    assert_eq!(again.events, 0);
    assert_eq!(w.emu.counters().calls_to(method, endpoint), 1, "the boundary second only");
    assert!(w.inbox.drain().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_import_that_dies_after_page_two_resumes_at_page_three_with_no_gap_and_no_repeat() {
    let w = World::new().await;
    w.connect_account("acct-crash").await;
    // 250 with the demo contacts, 50 changed each second: pages of 100 at 100, 53, 50 and 47
    // new (each page after the first starts with the instant the last one ended at).
    w.add_contacts("acct-crash", 247, 50).await;
    w.inbox.drain().await.unwrap();
    w.emu.faults().add(
        FaultRule::new(
            Some("GET"),
            "/api.xro/2.0/contacts",
            FaultAction::Status { status: 503, body: None, retry_after: None },
        )
        .trigger(Trigger::NthCall { n: 3 }),
    );
    w.emu.reset_counters();
    let died = run(&w, "acct-crash", &policy(100)).await;
    assert!(died.is_err(), "{died:?}");
    let first = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(first.len(), 153, "pages 1 and 2 were delivered");

    let resumed = run(&w, "acct-crash", &policy(100)).await.unwrap();
    assert_eq!(resumed.stopped, None);
    let (method, endpoint) = GET_CONTACTS;
    assert_eq!(w.emu.counters().calls_to(method, endpoint), 5, "pages 1, 2, 3 (failed), 3, 4");
    let second = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(second.len(), 97);
    let all: Vec<Value> = first.into_iter().chain(second).collect();
    assert_eq!(ids(&all).len(), 250, "every contact exactly once");
    let solo = all.iter().find(|e| e["detail"]["data"]["name"] == "Solo0002").unwrap();
    assert_eq!(solo["detail"]["data"]["phones"][0], json!({ "type": "MOBILE", "number": "555 0101" }));
    assert_eq!(solo["detail"]["data"]["first_name"], "Solo0002", "a one-word name is a first name");
}

#[tokio::test]
async fn a_long_rate_limit_mid_run_hands_back_and_the_next_attempt_finishes() {
    let w = World::new().await;
    w.connect_account("acct-429").await;
    w.add_contacts("acct-429", 147, 50).await;
    w.inbox.drain().await.unwrap();
    w.emu.faults().add(
        FaultRule::new(
            Some("GET"),
            "/api.xro/2.0/contacts",
            FaultAction::Status { status: 429, body: None, retry_after: Some(45) },
        )
        .trigger(Trigger::NthCall { n: 2 }),
    );
    let limited = import(&w.importer.app, &policy(100), &key("acct-429")).await;
    match limited {
        Err(e) => assert_eq!(e.retry_after(), Some(Duration::from_secs(45)), "Xero's Retry-After is kept"),
        Ok(s) => panic!("a 45 s Retry-After is not waited out in-process: {s:?}"),
    }
    w.emu.clock().advance(Duration::from_secs(45));
    run(&w, "acct-429", &policy(100)).await.unwrap();
    let contacts = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(contacts.len(), 150);
    assert_eq!(ids(&contacts).len(), 150);
}

#[tokio::test]
async fn an_import_stops_before_the_day_budget_runs_out_and_resumes_the_next_day() {
    let w = World::new().await;
    w.connect_account("acct-budget").await;
    w.add_contacts("acct-budget", 247, 50).await;
    w.inbox.drain().await.unwrap();
    // The organisation has used all but 5 of today's calls.
    let connection = w.connections("acct-budget").await.remove(0);
    let probe = w.worker.app.tokens.get::<Value>(&connection, &ApiRequest::new("/Organisation")).await.unwrap();
    let used = LimitsConfig::default().per_day - probe.limits.day_remaining.unwrap();
    w.emu.set_limits(LimitsConfig { per_day: used + 5, ..LimitsConfig::default() });
    w.emu.reset_counters();

    let today = run(&w, "acct-budget", &policy(100)).await.unwrap();
    assert!(today.stopped.is_some(), "{today:?}");
    assert!(w.emu.counters().rate_limited() == 0, "it stopped before Xero had to refuse");
    let first = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(first.len(), 153, "two pages, then 3 calls were left: the reserve");

    w.emu.clock().advance(Duration::from_secs(24 * 3600));
    w.emu.set_limits(LimitsConfig::default());
    let tomorrow = run(&w, "acct-budget", &policy(100)).await.unwrap();
    assert_eq!(tomorrow.stopped, None);
    let second = events_of(&w.inbox, "contact.upserted").await;
    let all: Vec<Value> = first.into_iter().chain(second).collect();
    assert_eq!(all.len(), 250);
    assert_eq!(ids(&all).len(), 250);
}

#[tokio::test]
async fn a_payment_in_xero_becomes_a_payment_event_and_a_status_change_and_its_deletion_a_reversal() {
    let w = ready("acct-paid", NewInvoiceStatus::Authorised).await;
    let body = event("acct-paid", "dlv-paid-0001", "inv-pay", "INV-PAY1", new_customer("cust-pay", "Harakeke Ltd"));
    deliver(&w, &body).await;
    w.work_push_queue().await;
    let invoice = in_xero(&w, "INV-PAY1").remove(0);
    run(&w, "acct-paid", &ImportPolicy::default()).await.unwrap();
    w.inbox.drain().await.unwrap();

    let connection = w.connections("acct-paid").await.remove(0);
    w.emu.clock().advance(Duration::from_secs(60));
    let payment = json!({ "Payments": [{
        "Invoice": { "InvoiceID": invoice["InvoiceID"] },
        "Account": { "Code": "090" },
        "Date": "2026-11-21",
        "Amount": invoice["AmountDue"],
        "Reference": "Bank transfer",
    }]});
    let made: Value = w.worker.app.tokens.put(&connection, &ApiRequest::new("/Payments"), &payment).await.unwrap().body;
    let payment_id = made["Payments"][0]["PaymentID"].as_str().unwrap().to_owned();
    w.emu.clock().advance(Duration::from_secs(5));

    run(&w, "acct-paid", &ImportPolicy::default()).await.unwrap();
    let drained = w.inbox.drain().await.unwrap();
    for e in &drained {
        xero_sync_testkit::event_schemas::assert_valid(&e["detail"]);
    }
    let recorded: Vec<&Value> = drained.iter().filter(|e| e["detail-type"] == "payment.recorded").collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["detail"]["data"]["invoice_id"], "inv-pay");
    assert_eq!(recorded[0]["detail"]["data"]["xero_payment_id"], payment_id.as_str());
    assert_eq!(recorded[0]["detail"]["data"]["reference"], "Bank transfer");
    let status: Vec<&Value> = drained.iter().filter(|e| e["detail-type"] == "invoice.payment_status_changed").collect();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0]["detail"]["data"]["status"], "PAID");
    assert_eq!(status[0]["detail"]["data"]["amount_due"], "0");
    assert!(status[0]["detail"]["data"]["fully_paid_on"].is_string());

    // An update to a paid invoice is refused before Xero is asked.
    let mut late_edit = body.clone();
    late_edit["delivery_id"] = json!("dlv-paid-0002");
    late_edit["occurred_at"] = json!("2026-11-21T07:00:00Z");
    late_edit["invoice"]["lines"][0]["quantity"] = json!("2");
    w.emu.reset_counters();
    deliver(&w, &late_edit).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0);
    w.inbox.drain().await.unwrap();

    let delete = json!({ "Payments": [{ "PaymentID": payment_id, "Status": "DELETED" }] });
    let path = format!("/Payments/{payment_id}");
    w.worker.app.tokens.post::<_, Value>(&connection, &ApiRequest::new(&path), &delete).await.unwrap();
    w.emu.clock().advance(Duration::from_secs(5));
    run(&w, "acct-paid", &ImportPolicy::default()).await.unwrap();
    let reversed = events_of(&w.inbox, "payment.reversed").await;
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0]["detail"]["data"]["xero_payment_id"], payment_id.as_str());
}

#[tokio::test]
async fn a_credit_note_allocated_in_xero_reaches_the_platform_as_the_invoice_credited() {
    let w = ready("acct-credit", NewInvoiceStatus::Authorised).await;
    let body = event("acct-credit", "dlv-credit-0001", "inv-cr", "INV-CR1", new_customer("cust-cr", "Kahikatea Ltd"));
    deliver(&w, &body).await;
    w.work_push_queue().await;
    let invoice = in_xero(&w, "INV-CR1").remove(0);
    run(&w, "acct-credit", &ImportPolicy::default()).await.unwrap();
    w.inbox.drain().await.unwrap();
    w.emu.clock().advance(Duration::from_secs(60));

    let connection = w.connections("acct-credit").await.remove(0);
    let credit = json!({ "CreditNotes": [{
        "Type": "ACCRECCREDIT",
        "Contact": { "ContactID": invoice["Contact"]["ContactID"] },
        "Date": "2026-11-21",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [{ "Description": "Goodwill", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200", "TaxType": "OUTPUT2" }],
    }]});
    let made: Value =
        w.worker.app.tokens.put(&connection, &ApiRequest::new("/CreditNotes"), &credit).await.unwrap().body;
    let credit_id = made["CreditNotes"][0]["CreditNoteID"].as_str().unwrap().to_owned();
    let path = format!("/CreditNotes/{credit_id}/Allocations");
    let allocation = json!({ "Allocations": [{ "Invoice": { "InvoiceID": invoice["InvoiceID"] }, "Amount": 23, "Date": "2026-11-21" }] });
    w.worker.app.tokens.put::<_, Value>(&connection, &ApiRequest::new(&path), &allocation).await.unwrap();
    w.emu.clock().advance(Duration::from_secs(5));

    run(&w, "acct-credit", &ImportPolicy::default()).await.unwrap();
    let changed = events_of(&w.inbox, "invoice.payment_status_changed").await;
    assert_eq!(changed.len(), 1);
    let data = &changed[0]["detail"]["data"];
    assert_eq!(data["invoice_id"], "inv-cr");
    assert_eq!(data["amount_credited"], "23");
    assert_eq!(data["amount_due"], "131.17", "154.17 less the 23 credited");
    assert_eq!(data["status"], "AUTHORISED");
}
