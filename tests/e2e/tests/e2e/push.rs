//! Issue 6, the push: webhook → queue → worker → exactly one correct Xero invoice, against
//! moto and the emulator's demo organisation (Acme Plumbing Ltd C-1001, Jane Citizen ...).

use std::str::FromStr;
use std::sync::Arc;

use invoice_push::push::{Outcome, push};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::model::{
    ConnectionStatus, ContactMatch, PlatformCustomerId, PlatformInvoiceId, SyncStatus, TenantId,
};
use xero_sync_domain::settings::{NewInvoiceStatus, TrackingMapping};
use xero_sync_testkit::{Moto, sent_emails};

use crate::helpers::*;

const PUT_INVOICES: (&str, &str) = ("PUT", "/api.xro/2.0/invoices");
const POST_INVOICES: (&str, &str) = ("POST", "/api.xro/2.0/invoices");
const GET_CONTACTS: (&str, &str) = ("GET", "/api.xro/2.0/contacts");

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.to_string().trim_matches('"')).unwrap()
}

fn calls(w: &World, (method, endpoint): (&str, &str)) -> u64 {
    w.emu.counters().calls_to(method, endpoint)
}

async fn record(w: &World, account: &str, invoice: &str) -> xero_sync_domain::model::SyncRecord {
    w.aws.store().get_sync_record(&key(account), &PlatformInvoiceId::parse(invoice).unwrap()).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_new_customer_invoice_reaches_xero_in_two_calls_and_a_redelivery_costs_none() {
    let w = ready("acct-happy", NewInvoiceStatus::Draft).await;
    let body = event("acct-happy", "dlv-happy-0001", "inv-1", "INV-1001", new_customer("cust-kauri", "Kauri Builders"));
    deliver(&w, &body).await;
    w.work_push_queue().await;

    assert_eq!(w.emu.counters().total_calls(), 2, "{:?}", w.emu.counters());
    assert_eq!((calls(&w, GET_CONTACTS), calls(&w, PUT_INVOICES)), (1, 1));
    let invoices = in_xero(&w, "INV-1001");
    assert_eq!(invoices.len(), 1);
    let invoice = &invoices[0];
    assert_eq!(invoice["Type"], "ACCREC");
    assert_eq!(invoice["Status"], "DRAFT");
    assert_eq!(invoice["Reference"], "Job 5521");
    assert_eq!(invoice["CurrencyCode"], "NZD");
    assert_eq!(invoice["LineAmountTypes"], "Exclusive");
    let lines = invoice["LineItems"].as_array().unwrap();
    assert_eq!(lines[0]["AccountCode"], "200", "the default account");
    assert_eq!(lines[1]["AccountCode"], "260", "the line's own account");
    assert!(lines.iter().all(|l| l["TaxType"] == "OUTPUT2"));
    assert_eq!(dec(&lines[1]["Quantity"]), Decimal::from_str("3.5").unwrap());
    assert_eq!(dec(&lines[1]["UnitAmount"]), Decimal::from_str("12.40").unwrap());
    assert_eq!(dec(&lines[1]["DiscountRate"]), Decimal::from(10));
    // 95 + 3.5 × 12.40 less 10 % = 134.06; GST per line 14.25 + 5.86.
    assert_eq!(dec(&invoice["SubTotal"]), Decimal::from_str("134.06").unwrap());
    assert_eq!(dec(&invoice["Total"]), Decimal::from_str("154.17").unwrap());

    let contact_id = invoice["Contact"]["ContactID"].as_str().unwrap().to_owned();
    let contact = w.emu.contacts(demo::NZ_TENANT_ID).into_iter().find(|c| c["ContactID"] == contact_id).unwrap();
    assert_eq!(contact["Name"], "Kauri Builders");
    assert_eq!(contact["ContactNumber"], "cust-kauri", "the platform's id, so it is found by number next time");
    let store = w.aws.store();
    let mapping =
        store.get_contact_mapping(&key("acct-happy"), &PlatformCustomerId::parse("cust-kauri").unwrap()).await.unwrap();
    assert_eq!(
        mapping.map(|m| (m.xero_contact_id.to_string(), m.matched_by)),
        Some((contact_id, ContactMatch::Created))
    );

    let synced = record(&w, "acct-happy", "inv-1").await;
    assert_eq!(synced.status, SyncStatus::Synced);
    assert_eq!(synced.xero_invoice_id.unwrap().to_string(), invoice["InvoiceID"].as_str().unwrap());
    let events = events_of(&w.inbox, "invoice.synced").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["data"]["xero_invoice_id"], invoice["InvoiceID"]);
    assert_eq!(events[0]["detail"]["data"]["action"], "created");
    let connection = w.connections("acct-happy").await.remove(0);
    assert_eq!(connection.last_activity_at, w.now(), "a push counts as activity");

    w.emu.reset_counters();
    let again = w.post_webhook(&body.to_string(), None).await;
    assert_eq!(json(&again)["status"], "duplicate");
    let mut resent = body.clone();
    resent["delivery_id"] = json!("dlv-happy-0002");
    deliver(&w, &resent).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0, "the same content again costs no Xero call");
    assert_eq!(in_xero(&w, "INV-1001").len(), 1);
}

#[tokio::test]
async fn customers_xero_knows_are_invoiced_as_themselves_and_a_mapped_one_costs_one_call() {
    let w = ready("acct-known", NewInvoiceStatus::Draft).await;
    let contacts = w.emu.contacts(demo::NZ_TENANT_ID);
    let id_of = |name: &str| contacts.iter().find(|c| c["Name"] == name).unwrap()["ContactID"].clone();
    let before = contacts.len();
    let cases = [
        ("inv-n", "INV-N1", json!({ "id": "C-1001", "name": "Acme (as the platform spells it)" }), "Acme Plumbing Ltd"),
        (
            "inv-e",
            "INV-E1",
            json!({ "id": "cust-j", "name": "J Citizen", "email": "jane@citizen.example" }),
            "Jane Citizen",
        ),
        (
            "inv-m",
            "INV-M1",
            json!({ "id": "cust-b", "name": "Bayside Property Management" }),
            "Bayside Property Management",
        ),
    ];
    for (n, (id, number, customer, expected)) in cases.iter().enumerate() {
        w.emu.reset_counters();
        deliver(&w, &event("acct-known", &format!("dlv-known-{n:04}"), id, number, customer.clone())).await;
        w.work_push_queue().await;
        assert_eq!((calls(&w, GET_CONTACTS), calls(&w, PUT_INVOICES)), (1, 1), "{expected}");
        assert_eq!(in_xero(&w, number)[0]["Contact"]["ContactID"], id_of(expected), "{expected}");
    }
    assert_eq!(w.emu.contacts(demo::NZ_TENANT_ID).len(), before, "no contact created twice");

    w.emu.reset_counters();
    let customer = json!({ "id": "C-1001", "name": "Acme" });
    deliver(&w, &event("acct-known", "dlv-known-0100", "inv-n2", "INV-N2", customer)).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 1, "a mapped customer: the invoice call only");
}

#[tokio::test]
async fn approved_invoices_carry_mapped_tax_and_tracking() {
    let w = ready("acct-track", NewInvoiceStatus::Authorised).await;
    let region = uuid::Uuid::new_v5(&demo::NZ_TENANT_ID, b"tracking:Region");
    let mut s = settings(NewInvoiceStatus::Authorised);
    s.tracking_mapping = vec![TrackingMapping {
        xero_category_id: region,
        job_attribute: "zone".into(),
        options: [("N".to_owned(), "North".to_owned())].into(),
    }];
    w.aws.store().put_settings(&key("acct-track"), 1, &s).await.unwrap();
    deliver(&w, &event("acct-track", "dlv-track-0001", "inv-t", "INV-T1", new_customer("cust-t", "Totara Ltd"))).await;
    w.work_push_queue().await;

    let invoice = &in_xero(&w, "INV-T1")[0];
    assert_eq!(invoice["Status"], "AUTHORISED");
    let lines = invoice["LineItems"].as_array().unwrap();
    assert_eq!(lines[0]["Tracking"][0]["Name"], "Region");
    assert_eq!(lines[0]["Tracking"][0]["Option"], "North");
    assert!(lines[1].get("Tracking").is_none_or(|t| t.as_array().is_none_or(|a| a.is_empty())), "no zone, no tracking");
    assert!(lines.iter().all(|l| l["TaxType"] == "OUTPUT2"));
}

#[tokio::test]
async fn updates_change_the_same_invoice_and_voids_delete_drafts_and_void_approved_ones() {
    let w = ready("acct-change", NewInvoiceStatus::Draft).await;
    let customer = new_customer("cust-c", "Rimu Homes");
    let created = event("acct-change", "dlv-change-0001", "inv-c", "INV-C1", customer.clone());
    deliver(&w, &created).await;
    w.work_push_queue().await;
    let xero_id = in_xero(&w, "INV-C1")[0]["InvoiceID"].clone();

    let mut updated = created.clone();
    updated["delivery_id"] = json!("dlv-change-0002");
    updated["event"] = json!("invoice.updated");
    updated["occurred_at"] = json!("2026-11-21T07:00:00Z");
    updated["invoice"]["lines"][0]["quantity"] = json!("2");
    w.emu.reset_counters();
    deliver(&w, &updated).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 1, "{:?}", w.emu.counters());
    assert_eq!(calls(&w, POST_INVOICES), 1);
    let invoices = in_xero(&w, "INV-C1");
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["InvoiceID"], xero_id);
    assert_eq!(dec(&invoices[0]["SubTotal"]), Decimal::from_str("229.06").unwrap(), "2 × 95 + 39.06");

    // The original event, late: dropped, since a newer one has been applied.
    let mut late = created.clone();
    late["delivery_id"] = json!("dlv-change-0003");
    late["invoice"]["lines"][0]["quantity"] = json!("7");
    w.emu.reset_counters();
    deliver(&w, &late).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0);

    let mut voided = updated.clone();
    voided["delivery_id"] = json!("dlv-change-0004");
    voided["event"] = json!("invoice.voided");
    voided["occurred_at"] = json!("2026-11-21T08:00:00Z");
    deliver(&w, &voided).await;
    w.work_push_queue().await;
    assert_eq!(in_xero(&w, "INV-C1")[0]["Status"], "DELETED", "a draft is deleted");
    let events = events_of(&w.inbox, "invoice.synced").await;
    let actions: Vec<&Value> = events.iter().map(|e| &e["detail"]["data"]["action"]).collect();
    assert_eq!(actions, [&json!("created"), &json!("updated"), &json!("voided")]);

    // An approved invoice is voided.
    w.aws.store().put_settings(&key("acct-change"), 1, &settings(NewInvoiceStatus::Authorised)).await.unwrap();
    deliver(&w, &event("acct-change", "dlv-change-0005", "inv-a", "INV-A1", customer)).await;
    w.work_push_queue().await;
    assert_eq!(in_xero(&w, "INV-A1")[0]["Status"], "AUTHORISED");
    let mut void_approved =
        event("acct-change", "dlv-change-0006", "inv-a", "INV-A1", new_customer("cust-c", "Rimu Homes"));
    void_approved["event"] = json!("invoice.voided");
    void_approved["occurred_at"] = json!("2026-11-21T09:00:00Z");
    deliver(&w, &void_approved).await;
    w.work_push_queue().await;
    assert_eq!(in_xero(&w, "INV-A1")[0]["Status"], "VOIDED");
    assert_eq!(record(&w, "acct-change", "inv-a").await.xero_status.map(|s| s.as_str()), Some("VOIDED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_pushes_of_one_invoice_make_one_xero_invoice() {
    let w = Arc::new(ready("acct-race", NewInvoiceStatus::Draft).await);
    // A slow answer on a loaded machine must not pass for a lost write: this is about claims.
    let app = Arc::new(w.new_app_waiting_for_xero(10));
    let body = event("acct-race", "dlv-race-0001", "inv-r", "INV-R1", new_customer("cust-r", "Matai Ltd"));
    let parsed: invoice_push::event::InvoiceEvent = serde_json::from_value(body).unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (w, app, e) = (w.clone(), app.clone(), parsed.clone());
            tokio::spawn(
                async move { push(&app, &w.worker.policy, TenantId(demo::NZ_TENANT_ID), vec![e]).await.remove(0) },
            )
        })
        .collect();
    let results: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let created = results.iter().filter(|r| matches!(r, Ok(Outcome::Created { .. }))).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(
        results.iter().all(|r| matches!(r, Ok(Outcome::Created { .. } | Outcome::Unchanged) | Err(_))),
        "{results:?}"
    );
    assert_eq!(in_xero(&w, "INV-R1").len(), 1);
    assert_eq!(calls(&w, PUT_INVOICES), 1, "the others never reached Xero");
}

/// Delivers `count` invoice events for `account`, eight at a time, cycling over `customers`.
async fn deliver_many(w: &World, account: &str, prefix: &str, count: usize, customers: &[Value]) {
    use futures::StreamExt;
    futures::stream::iter(0..count)
        .for_each_concurrent(8, |n| {
            let body = event(
                account,
                &format!("dlv-{prefix}-{n:04}"),
                &format!("inv-{prefix}{n}"),
                &format!("{}-{n:04}", prefix.to_uppercase()),
                customers[n % customers.len()].clone(),
            );
            async move { deliver(w, &body).await }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_invoices_goes_to_xero_fifty_to_a_call() {
    let w = ready_with("acct-burst", NewInvoiceStatus::Draft, Options { own_moto: true, ..Default::default() }).await;
    let customers: Vec<Value> = (0..10).map(|c| new_customer(&format!("cust-b{c}"), &format!("Burst {c}"))).collect();
    deliver_many(&w, "acct-burst", "b", 500, &customers).await;
    w.work_push_queue().await;

    let invoices = w.emu.invoices(demo::NZ_TENANT_ID);
    assert_eq!(invoices.iter().filter(|i| i["InvoiceNumber"].as_str().unwrap_or("").starts_with("B-")).count(), 500);
    assert_eq!(calls(&w, PUT_INVOICES), 10, "fifty invoices to a PUT");
    let total = w.emu.counters().total_calls();
    assert!(total <= 25, "at most 0.05 Xero calls an invoice, contact lookups included: {total}");
    assert_eq!(events_of(&w.inbox, "invoice.synced").await.len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_invoices_through_errors_timeouts_and_429_storms_each_reach_xero_exactly_once() {
    let w = ready_with("acct-faults", NewInvoiceStatus::Draft, Options { own_moto: true, ..Default::default() }).await;
    let faults = w.emu.faults();
    faults.reseed(6);
    faults.error_rate(None, "/api.xro/2.0/invoices*", 503, 0.2);
    faults.add(
        xero_emulator::FaultRule::new(
            Some("PUT"),
            "/api.xro/2.0/invoices",
            xero_emulator::FaultAction::TimeoutAfterWrite { hang_millis: Some(1500) },
        )
        .trigger(xero_emulator::Trigger::Rate { probability: 0.1 }),
    );
    // A storm: every call refused for a while, then one in ten at random; Xero's own minute
    // limit adds its 429s on top.
    let storm = xero_emulator::FaultAction::Status { status: 429, body: None, retry_after: Some(30) };
    let first_storm = faults.add(
        xero_emulator::FaultRule::new(None, "/api.xro/2.0/*", storm.clone())
            .trigger(xero_emulator::Trigger::FirstCalls { n: 12 }),
    );
    let scattered = faults.add(
        xero_emulator::FaultRule::new(None, "/api.xro/2.0/*", storm)
            .trigger(xero_emulator::Trigger::Rate { probability: 0.1 }),
    );
    let customers: Vec<Value> =
        (0..40).map(|c| new_customer(&format!("cust-f{c}"), &format!("Customer {c}"))).collect();
    deliver_many(&w, "acct-faults", "f", 1000, &customers).await;
    let run = w.work_push_queue().await;

    let invoices = w.emu.invoices(demo::NZ_TENANT_ID);
    let mut per_number = std::collections::HashMap::<&str, usize>::new();
    for invoice in &invoices {
        *per_number.entry(invoice["InvoiceNumber"].as_str().unwrap_or("")).or_default() += 1;
    }
    for n in 0..1000 {
        let number = format!("F-{n:04}");
        assert_eq!(per_number.get(number.as_str()), Some(&1), "{number} is in Xero exactly once");
    }
    for n in 0..1000 {
        assert_eq!(record(&w, "acct-faults", &format!("inv-f{n}")).await.status, SyncStatus::Synced);
    }
    let contacts = w.emu.contacts(demo::NZ_TENANT_ID);
    for c in 0..40 {
        let name = format!("Customer {c}");
        assert_eq!(contacts.iter().filter(|x| x["Name"] == name.as_str()).count(), 1, "{name} once");
    }
    let counters = w.emu.counters();
    // Xero's 429s hold pushes back as new messages, which use up no receive: the queue then
    // sends nothing to its dead-letter queue for Xero's limits.
    assert!(run.held > 0, "some pushes were held back for Xero's limits: {run:?}");
    assert_eq!(faults.fired(first_storm), 12, "the storm's 429s were met");
    assert!(faults.fired(scattered) > 0, "and the scattered ones");
    // The governor kept every call inside Xero's own limits (the emulator's limiter).
    assert_eq!(counters.rate_limited(), 0, "no 429 of Xero's own: {counters:?}");
    assert_eq!(events_of(&w.inbox, "invoice.synced").await.len(), 1000, "one invoice.synced each");
}

#[tokio::test]
async fn an_invoice_xero_refuses_is_failed_with_one_email_and_one_event_and_not_retried() {
    let w = ready("acct-refused", NewInvoiceStatus::Draft).await;
    let mut body = event("acct-refused", "dlv-refused-0001", "inv-x", "INV-X1", new_customer("cust-x", "Puriri Ltd"));
    body["invoice"]["lines"][1]["account_code"] = json!("999");
    deliver(&w, &body).await;
    w.work_push_queue().await;

    let failed = record(&w, "acct-refused", "inv-x").await;
    assert_eq!(failed.status, SyncStatus::Failed);
    let error = failed.last_error.unwrap();
    assert!(error.contains("999"), "Xero's own words: {error}");
    assert!(in_xero(&w, "INV-X1").is_empty());
    let events = events_of(&w.inbox, "invoice.sync_failed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["data"]["invoice_number"], "INV-X1");
    let emails = sent_emails(Moto::shared().endpoint(), OWNER).await.unwrap();
    let about: Vec<_> = emails.iter().filter(|e| e.subject.contains("INV-X1")).collect();
    assert_eq!(about.len(), 1, "one email");
    assert_eq!(about[0].subject, "Invoice INV-X1 did not reach Xero");
    assert!(about[0].body.contains("999") && about[0].body.contains("What to do next"), "{}", about[0].body);

    // The queue delivering the same message again (SQS is at least once) changes nothing.
    w.emu.reset_counters();
    let again: invoice_push::event::InvoiceEvent = serde_json::from_value(body.clone()).unwrap();
    let result = push(&w.worker.app, &w.worker.policy, TenantId(demo::NZ_TENANT_ID), vec![again]).await.remove(0);
    assert!(matches!(result, Ok(Outcome::Failed { .. })), "{result:?}");
    assert_eq!(w.emu.counters().total_calls(), 0, "the same delivery is not sent again");
    let emails = sent_emails(Moto::shared().endpoint(), OWNER).await.unwrap();
    assert_eq!(emails.iter().filter(|e| e.subject.contains("INV-X1")).count(), 1, "still one email");
    assert!(events_of(&w.inbox, "invoice.sync_failed").await.is_empty(), "and no second event");

    // Corrected in the platform and saved again: sent.
    w.emu.reset_counters();
    body["delivery_id"] = json!("dlv-refused-0002");
    body["invoice"]["lines"][1]["account_code"] = json!("260");
    deliver(&w, &body).await;
    w.work_push_queue().await;
    assert_eq!(record(&w, "acct-refused", "inv-x").await.status, SyncStatus::Synced);
    assert_eq!(in_xero(&w, "INV-X1").len(), 1);
}

#[tokio::test]
async fn an_unmapped_tax_rate_fails_before_xero_naming_the_line() {
    let w = ready("acct-unmapped", NewInvoiceStatus::Draft).await;
    let mut body = event("acct-unmapped", "dlv-unmapped-01", "inv-u", "INV-U1", new_customer("cust-u", "Kowhai Ltd"));
    body["invoice"]["lines"][0]["tax_rate_id"] = json!("zero-rated");
    deliver(&w, &body).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0);
    let failed = record(&w, "acct-unmapped", "inv-u").await;
    assert_eq!(failed.status, SyncStatus::Failed);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("invoice.lines[0].tax_rate_id: tax rate zero-rated is not mapped to a Xero tax rate")
    );
}

#[tokio::test]
async fn invoices_wait_for_a_reconnection_and_are_pushed_after_it() {
    let w = ready("acct-parked", NewInvoiceStatus::Draft).await;
    let connection = w.connections("acct-parked").await.remove(0);
    xero_sync_runtime::reconnect::needs_reconnect(
        &w.worker.app.services,
        &connection.account_id,
        connection.grant_id,
        w.now(),
    )
    .await
    .unwrap();
    deliver(&w, &event("acct-parked", "dlv-parked-0001", "inv-p", "INV-P1", new_customer("cust-p", "Nikau Ltd"))).await;
    w.work_push_queue().await;
    assert!(in_xero(&w, "INV-P1").is_empty());
    assert_eq!(w.emu.counters().total_calls(), 0, "a connection waiting for reconnection is not called");
    assert_eq!(w.aws.store().parked_pushes(&key("acct-parked")).await.unwrap().len(), 1);

    w.connect_account("acct-parked").await;
    assert_eq!(w.connections("acct-parked").await[0].status, ConnectionStatus::Connected);
    w.work_push_queue().await; // connection.connected → the parked push, back on the queue
    w.work_push_queue().await;
    assert_eq!(in_xero(&w, "INV-P1").len(), 1);
    assert!(w.aws.store().parked_pushes(&key("acct-parked")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_long_retry_after_holds_the_push_for_that_long_without_using_up_a_receive() {
    let mut w = ready("acct-slow", NewInvoiceStatus::Draft).await;
    // As in AWS: SQS itself delays the held message (the world's queues deliver held messages
    // at once and let the clock move instead).
    w.worker.queue = w.worker.queue.clone().with_max_delay(xero_sync_aws::sqs::MAX_DELAY);
    w.emu.faults().add(
        xero_emulator::FaultRule::new(
            None,
            "/api.xro/2.0/*",
            xero_emulator::FaultAction::Status { status: 429, body: None, retry_after: Some(120) },
        )
        .trigger(xero_emulator::Trigger::FirstCalls { n: 1 }),
    );
    deliver(&w, &event("acct-slow", "dlv-slow-0001", "inv-s", "INV-S1", json!({ "id": "C-1001", "name": "Acme" })))
        .await;
    let sqs = aws_sdk_sqs::Client::new(&w.aws.sdk);
    let url = w.aws.stack.reference("PushQueue");
    let received = sqs.receive_message().queue_url(url).send().await.unwrap().messages.unwrap();
    let response = invoice_push::handle_queue(&w.worker, xero_sync_testkit::lambda::sqs_event(&received[..1])).await;
    assert!(response.batch_item_failures.is_empty(), "not failed: sent again, so no receive is used up");
    let visible = sqs.receive_message().queue_url(url).send().await.unwrap().messages.unwrap_or_default();
    assert!(visible.is_empty(), "held back for Xero's two minutes");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed],
        "1",
        "still on the queue, delayed"
    );
    assert_eq!(record(&w, "acct-slow", "inv-s").await.claimed_until, None, "the claim is released for the retry");
}

#[tokio::test]
async fn a_backfill_of_five_hundred_invoices_takes_ten_invoice_calls_and_reports_each() {
    let w = ready("acct-backfill", NewInvoiceStatus::Draft).await;
    let example = event("acct-backfill", "unused-0001", "x", "x", json!({}));
    let mut items: Vec<Value> = (0..500)
        .map(|n| {
            let mut invoice = example["invoice"].clone();
            invoice["id"] = json!(format!("inv-b{n}"));
            invoice["number"] = json!(format!("B-{n:04}"));
            let customer = new_customer(&format!("cust-b{}", n % 25), &format!("Backfill {}", n % 25));
            json!({ "invoice": invoice, "customer": customer, "updated_at": "2026-11-20T10:00:00Z" })
        })
        .collect();
    let mut broken = items[0].clone();
    broken["invoice"]["id"] = json!("inv-broken");
    broken["invoice"]["currency"] = json!("nzd");
    items.push(broken);
    let body = json!({ "invoices": items }).to_string();
    let path = format!("/accounts/acct-backfill/connections/{}/backfill", demo::NZ_TENANT_ID);
    let response = w.invoice_api("POST", &path, &body).await;
    assert_eq!(response.status(), 202, "{}", crate::helpers::body(&response));
    let answer = json(&response);
    assert_eq!(answer["accepted"], 500);
    assert_eq!(answer["chunks"], 10);
    assert_eq!(answer["refused"][0]["index"], 500);
    assert_eq!(answer["refused"][0]["problems"][0]["field"], "invoices[500].invoice.currency");

    w.work_push_queue().await;
    assert!(calls(&w, PUT_INVOICES) + calls(&w, POST_INVOICES) <= 11, "{:?}", w.emu.counters());
    assert_eq!(calls(&w, PUT_INVOICES), 10);
    let invoices = w.emu.invoices(demo::NZ_TENANT_ID);
    assert_eq!(
        invoices.iter().filter(|i| i["InvoiceNumber"].as_str().is_some_and(|n| n.starts_with("B-"))).count(),
        500
    );
    assert_eq!(events_of(&w.inbox, "invoice.synced").await.len(), 500, "each invoice's outcome is reported");
    let status = w
        .invoice_api("GET", &format!("/accounts/acct-backfill/connections/{}/invoices/inv-b42", demo::NZ_TENANT_ID), "")
        .await;
    assert_eq!(json(&status)["status"], "SYNCED");

    w.emu.reset_counters();
    let again = w.invoice_api("POST", &path, &body).await;
    assert_eq!(json(&again)["backfill_id"], answer["backfill_id"], "the same request is the same backfill");
    w.work_push_queue().await;
    assert_eq!(calls(&w, PUT_INVOICES) + calls(&w, POST_INVOICES), 0, "nothing is copied twice");
}

#[tokio::test]
async fn the_invoice_api_refuses_unsigned_calls_and_names_bad_input() {
    let w = ready("acct-badfill", NewInvoiceStatus::Draft).await;
    let path = format!("/accounts/acct-badfill/connections/{}/backfill", demo::NZ_TENANT_ID);
    let unsigned = invoice_push::handle_webhook(
        &w.webhook,
        xero_sync_testkit::apigw::request("POST", &path, &[], Some(r#"{"invoices":[]}"#)),
    )
    .await;
    assert_eq!(unsigned.status(), 401);
    let empty = w.invoice_api("POST", &path, r#"{"invoices":[]}"#).await;
    assert_eq!(empty.status(), 400);
    assert_eq!(json(&empty)["problems"][0]["field"], "invoices");
    let wrong = w.invoice_api("POST", &path, r#"{"invoices":[{"invoice":{"id":"a"},"customer":{}}]}"#).await;
    assert_eq!(wrong.status(), 400);
    assert!(json(&wrong)["problems"][0]["field"].as_str().unwrap().starts_with("invoices[0].invoice"));
    let unknown = w
        .invoice_api("GET", &format!("/accounts/acct-badfill/connections/{}/invoices/inv-none", demo::NZ_TENANT_ID), "")
        .await;
    assert_eq!(unknown.status(), 404);
    let not_ours = w.invoice_api("POST", "/accounts/acct-other/connections/not-a-uuid/backfill", "{}").await;
    assert_eq!(not_ours.status(), 400);
}

#[tokio::test]
async fn a_failure_email_that_could_not_be_sent_is_sent_by_the_redelivery() {
    let w = ready("acct-untold", NewInvoiceStatus::Draft).await;
    let mut body = event("acct-untold", "dlv-untold-0001", "inv-z", "INV-Z1", new_customer("cust-z", "Tawa Ltd"));
    body["invoice"]["lines"][1]["account_code"] = json!("999");
    let event: invoice_push::event::InvoiceEvent = serde_json::from_value(body).unwrap();
    let tenant = TenantId(demo::NZ_TENANT_ID);

    let (mail_down, _proxy) = w.new_app_with_mail_down().await;
    let first = push(&mail_down, &w.worker.policy, tenant, vec![event.clone()]).await.remove(0);
    assert!(first.is_err(), "SES could not be reached, so the message must come back: {first:?}");
    let recorded = record(&w, "acct-untold", "inv-z").await;
    assert_eq!((recorded.status, recorded.untold, recorded.claimed_until), (SyncStatus::Failed, true, None));
    assert!(sent_emails(Moto::shared().endpoint(), OWNER).await.unwrap().iter().all(|e| !e.subject.contains("INV-Z1")));

    w.emu.reset_counters();
    let second = push(&w.worker.app, &w.worker.policy, tenant, vec![event]).await.remove(0);
    assert!(matches!(second, Ok(Outcome::Failed { .. })), "{second:?}");
    assert_eq!(w.emu.counters().total_calls(), 0, "told again, not sent again");
    let emails = sent_emails(Moto::shared().endpoint(), OWNER).await.unwrap();
    assert_eq!(emails.iter().filter(|e| e.subject.contains("INV-Z1")).count(), 1);
    assert!(!record(&w, "acct-untold", "inv-z").await.untold);
    let ids: std::collections::HashSet<String> = events_of(&w.inbox, "invoice.sync_failed")
        .await
        .iter()
        .map(|e| e["detail"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "the platform sees one event (a repeat carries the same id)");
}
