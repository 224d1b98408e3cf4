//! Issue 17: Xero's webhooks in. Deliveries are verified over their raw bytes, queued, and
//! the changes they name are read by id and announced as the import's events, once.

use std::time::Duration;

use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_domain::xero::webhooks::WebhookKey;
use xero_sync_xero::ApiRequest;

use crate::helpers::*;

const GET_INVOICES: (&str, &str) = ("GET", "/api.xro/2.0/invoices");
const GET_CONTACTS: (&str, &str) = ("GET", "/api.xro/2.0/contacts");

fn sign(body: &str) -> String {
    WebhookKey::new(XERO_WEBHOOK_KEY).sign(body.as_bytes())
}

/// Xero's payload around `events`, as Xero writes it.
fn payload(events: &[Value]) -> String {
    json!({ "events": events, "firstEventSequence": 1, "lastEventSequence": events.len().max(1), "entropy": "QWERTYUIOPASDFGHJKLZ" })
        .to_string()
}

fn event(tenant: uuid::Uuid, category: &str, id: uuid::Uuid, at: &str, data: Value) -> Value {
    let collection = match category {
        "CONTACT" => "Contacts",
        "INVOICE" => "Invoices",
        _ => "CreditNotes",
    };
    let mut e = json!({
        "resourceUrl": format!("https://api.xero.com/api.xro/2.0/{collection}/{id}"),
        "resourceId": id, "eventDateUtc": at, "eventType": "UPDATE", "eventCategory": category,
        "tenantId": tenant, "tenantType": "ORGANISATION",
    });
    if !data.is_null() {
        e["data"] = data;
    }
    e
}

/// Messages waiting on the changes queue, left there.
async fn queued_changes(w: &World) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&w.aws.sdk);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(w.aws.stack.reference("ChangesQueue"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let count = attributes.attributes.unwrap_or_default();
    count.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).unwrap().parse().unwrap()
}

fn assert_empty_answer(response: &lambda_http::Response<lambda_http::Body>, status: u16) {
    assert_eq!(response.status(), status, "{}", body(response));
    assert_eq!(body(response), "", "Xero asks for an empty body");
    assert!(response.headers().get("set-cookie").is_none(), "Xero asks for no cookies");
}

/// Connected, an invoice INV-{n} pushed, the push's own echo delivered and worked off, and the
/// emulator's app subscribed to our endpoint.
async fn pushed(account: &str, number: &str) -> (World, xero_sync_testkit::LocalApi, Value) {
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let api = w.subscribe_to_xero_webhooks().await;
    let body = crate::helpers::event(
        account,
        &format!("dlv-{number}"),
        &format!("inv-{number}"),
        number,
        new_customer(&format!("cust-{number}"), "Rimu Builders"),
    );
    deliver(&w, &body).await;
    w.work_push_queue().await;
    assert_eq!(events_of(&w.inbox, "invoice.synced").await.len(), 1);
    let invoice = in_xero(&w, number).remove(0);
    (w, api, invoice)
}

#[tokio::test]
async fn xeros_intent_to_receive_check_passes_with_empty_answers_and_queues_nothing() {
    let w = World::new().await;
    let api = w.subscribe_to_xero_webhooks().await;
    let report = w.emu.intent_to_receive(&format!("{}/xero/webhooks", api.base_url()), XERO_WEBHOOK_KEY).await.unwrap();
    assert!(report.passed, "{report:?}");
    assert_eq!((report.bad_signature_status, report.good_signature_status), (401, 200));

    // The check's own payload: no events, sequences of 0 (under the schema's minimum).
    let itr = r#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}"#;
    assert_empty_answer(&w.post_xero_webhook(itr, Some(&sign(itr))).await, 200);
    assert_empty_answer(
        &w.post_xero_webhook(itr, Some(&WebhookKey::new("another key").sign(itr.as_bytes()))).await,
        401,
    );
    assert_eq!(queued_changes(&w).await, 0);
}

#[tokio::test]
async fn a_forged_unsigned_or_reserialised_delivery_is_refused_and_nothing_is_queued() {
    let w = World::new().await;
    let change = event(demo::NZ_TENANT_ID, "CONTACT", uuid::Uuid::new_v4(), "2026-11-21T03:04:05.678", Value::Null);
    let text = payload(&[change]);
    let signature = sign(&text);

    let forged = WebhookKey::new("not-the-key").sign(text.as_bytes());
    assert_empty_answer(&w.post_xero_webhook(&text, Some(&forged)).await, 401);
    assert_empty_answer(&w.post_xero_webhook(&text, None).await, 401);
    assert_empty_answer(&w.post_xero_webhook(&text, Some("")).await, 401);
    // The same JSON, written out again: other bytes, so the signature no longer holds.
    let reserialised = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    assert_empty_answer(&w.post_xero_webhook(&reserialised, Some(&signature)).await, 401);
    assert_eq!(queued_changes(&w).await, 0, "nothing refused is queued");

    assert_empty_answer(&w.post_xero_webhook(&text, Some(&signature)).await, 200);
    assert_eq!(queued_changes(&w).await, 1);

    // Signed but not Xero's payload: a 400 that names the body.
    let garbage = r#"{"events": "many"}"#;
    let refused = w.post_xero_webhook(garbage, Some(&sign(garbage))).await;
    assert_eq!(refused.status(), 400);
    assert!(body(&refused).contains("body"), "{}", body(&refused));
}

#[tokio::test]
async fn a_payment_made_in_xero_reaches_the_platform_from_its_webhook_with_no_poll() {
    let (w, _api, invoice) = pushed("acct-hook-pay", "INV-HP1").await;
    // The push's own writes come back from Xero as webhooks: no news for the platform.
    assert!(w.emu.deliver_webhooks().await.unwrap().is_some_and(|d| d.status == 200));
    w.work_changes_queue().await;
    let echoed: Vec<Value> = w.inbox.drain().await.unwrap();
    // The invoice as we wrote it is no news. The contact we created comes back as the
    // platform's own customer, never as a new one.
    assert!(echoed.iter().all(|e| e["detail-type"] == "contact.upserted"), "our own push echoed: {echoed:?}");
    assert!(echoed.iter().all(|e| e["detail"]["data"]["customer_id"] == "cust-INV-HP1"), "{echoed:?}");

    let connection = w.connections("acct-hook-pay").await.remove(0);
    w.emu.clock().advance(Duration::from_secs(60));
    let payment = json!({ "Payments": [{
        "Invoice": { "InvoiceID": invoice["InvoiceID"] }, "Account": { "Code": "090" },
        "Date": "2026-11-21", "Amount": invoice["AmountDue"], "Reference": "Card",
    }]});
    let made: Value = w.worker.app.tokens.put(&connection, &ApiRequest::new("/Payments"), &payment).await.unwrap().body;
    let payment_id = made["Payments"][0]["PaymentID"].as_str().unwrap().to_owned();
    w.emu.reset_counters();

    let delivered = w.emu.deliver_webhooks().await.unwrap().expect("a delivery");
    assert_eq!(delivered.status, 200);
    w.work_changes_queue().await;
    let drained = w.inbox.drain().await.unwrap();
    for e in &drained {
        xero_sync_testkit::event_schemas::assert_valid(&e["detail"]);
    }
    let of = |kind: &str| drained.iter().filter(|e| e["detail-type"] == kind).collect::<Vec<_>>();
    let recorded = of("payment.recorded");
    assert_eq!(recorded.len(), 1, "{drained:?}");
    assert_eq!(recorded[0]["detail"]["data"]["xero_payment_id"], payment_id.as_str());
    assert_eq!(recorded[0]["detail"]["data"]["invoice_id"], "inv-INV-HP1");
    assert_eq!(recorded[0]["detail"]["data"]["amount"], invoice["AmountDue"].to_string().trim_matches('"'));
    assert_eq!(recorded[0]["detail"]["data"]["reference"], "Card");
    let paid = of("invoice.payment_status_changed");
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["detail"]["data"]["status"], "PAID");
    let counters = w.emu.counters();
    assert_eq!(counters.calls_to(GET_INVOICES.0, GET_INVOICES.1), 1, "the invoice by id: {counters:?}");
    assert_eq!(counters.total_calls(), 1, "no poll, no payments list: {counters:?}");

    // Deleted in Xero: the invoice changes again, and the payment that left it is read.
    w.emu.clock().advance(Duration::from_secs(60));
    let delete = json!({ "Payments": [{ "PaymentID": payment_id, "Status": "DELETED" }] });
    let path = format!("/Payments/{payment_id}");
    w.worker.app.tokens.post::<_, Value>(&connection, &ApiRequest::new(&path), &delete).await.unwrap();
    w.emu.deliver_webhooks().await.unwrap();
    w.work_changes_queue().await;
    let reversed = events_of(&w.inbox, "payment.reversed").await;
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0]["detail"]["data"]["xero_payment_id"], payment_id.as_str());
}

#[tokio::test]
async fn a_delivery_of_100_events_for_one_organisation_costs_at_most_two_calls_a_resource() {
    let w = ready("acct-hook-many", NewInvoiceStatus::Authorised).await;
    w.add_contacts("acct-hook-many", 60, 30).await;
    let contacts: Vec<uuid::Uuid> =
        w.emu.contacts(demo::NZ_TENANT_ID).iter().map(|c| c["ContactID"].as_str().unwrap().parse().unwrap()).collect();
    assert!(contacts.len() >= 60);
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    // 60 contacts changed, each twice; 20 invoices that are not ours, twice; supplier
    // documents, which cost nothing.
    let mut events = Vec::new();
    for (n, id) in contacts.iter().take(60).enumerate() {
        events.push(event(
            demo::NZ_TENANT_ID,
            "CONTACT",
            *id,
            &format!("2026-11-21T03:04:{:02}.000", n % 60),
            Value::Null,
        ));
    }
    for id in contacts.iter().take(20) {
        events.push(event(demo::NZ_TENANT_ID, "CONTACT", *id, "2026-11-21T03:05:00.000", Value::Null));
    }
    for _ in 0..10 {
        let id = uuid::Uuid::new_v4();
        for _ in 0..2 {
            events.push(event(
                demo::NZ_TENANT_ID,
                "INVOICE",
                id,
                "2026-11-21T03:05:00.000",
                json!({ "Type": "ACCREC", "Status": "AUTHORISED" }),
            ));
        }
    }
    while events.len() < 100 {
        events.push(event(
            demo::NZ_TENANT_ID,
            "INVOICE",
            uuid::Uuid::new_v4(),
            "2026-11-21T03:05:00.000",
            json!({ "Type": "ACCPAY", "Status": "PAID" }),
        ));
    }
    let text = payload(&events);
    assert_empty_answer(&w.post_xero_webhook(&text, Some(&sign(&text))).await, 200);
    w.work_changes_queue().await;

    let counters = w.emu.counters();
    assert_eq!(counters.calls_to(GET_CONTACTS.0, GET_CONTACTS.1), 2, "60 contacts, 50 a call: {counters:?}");
    assert_eq!(counters.calls_to(GET_INVOICES.0, GET_INVOICES.1), 1, "10 invoices in one call: {counters:?}");
    assert_eq!(counters.total_calls(), 3, "{counters:?}");
    let upserted = events_of(&w.inbox, "contact.upserted").await;
    assert_eq!(upserted.len(), 60, "each contact once");
}

#[tokio::test]
async fn ten_concurrent_redeliveries_publish_each_event_once() {
    let (w, _api, invoice) = pushed("acct-hook-again", "INV-HA1").await;
    w.emu.deliver_webhooks().await.unwrap();
    w.work_changes_queue().await;
    w.inbox.drain().await.unwrap();
    let connection = w.connections("acct-hook-again").await.remove(0);
    let payment = json!({ "Payments": [{
        "Invoice": { "InvoiceID": invoice["InvoiceID"] }, "Account": { "Code": "090" },
        "Date": "2026-11-21", "Amount": 10,
    }]});
    w.worker.app.tokens.put::<_, Value>(&connection, &ApiRequest::new("/Payments"), &payment).await.unwrap();
    let contact: uuid::Uuid = invoice["Contact"]["ContactID"].as_str().unwrap().parse().unwrap();
    w.emu.clock().advance(Duration::from_secs(2));
    let edit = json!({ "Contacts": [{ "ContactID": contact, "EmailAddress": "accounts@rimu.example" }] });
    w.worker
        .app
        .tokens
        .post::<_, Value>(&connection, &ApiRequest::new(&format!("/Contacts/{contact}")), &edit)
        .await
        .unwrap();
    let invoice_id = invoice["InvoiceID"].as_str().unwrap().parse().unwrap();
    let text = payload(&[
        event(
            demo::NZ_TENANT_ID,
            "INVOICE",
            invoice_id,
            "2026-11-21T03:05:00.000",
            json!({ "Type": "ACCREC", "Status": "AUTHORISED" }),
        ),
        event(demo::NZ_TENANT_ID, "CONTACT", contact, "2026-11-21T03:05:00.000", Value::Null),
    ]);
    let signature = sign(&text);
    let posts = (0..10).map(|_| w.post_xero_webhook(&text, Some(&signature)));
    for response in futures::future::join_all(posts).await {
        assert_empty_answer(&response, 200);
    }
    assert_eq!(queued_changes(&w).await, 10);
    // Ten workers at once, each with one of the deliveries, as Lambda would scale out.
    let sqs = aws_sdk_sqs::Client::new(&w.aws.sdk);
    let url = w.aws.stack.reference("ChangesQueue");
    let mut batches = Vec::new();
    while batches.len() < 10 {
        let got = xero_sync_testkit::lambda::receive_batch(&sqs, url, 1).await.unwrap();
        batches.extend(got.into_iter().map(|m| vec![m]));
    }
    let runs =
        batches.iter().map(|b| scheduled_import::changes::handle(&w.changes, xero_sync_testkit::lambda::sqs_event(b)));
    let answers = futures::future::join_all(runs).await;
    let failed: usize = answers.iter().map(|a| a.batch_item_failures.len()).sum();
    assert_eq!(failed, 0, "every delivery settles: {answers:?}");

    let drained = w.inbox.drain().await.unwrap();
    let count = |kind: &str| drained.iter().filter(|e| e["detail-type"] == kind).count();
    assert_eq!(
        (count("payment.recorded"), count("invoice.payment_status_changed"), count("contact.upserted")),
        (1, 1, 1),
        "{drained:?}"
    );
    let ids: std::collections::HashSet<&str> = drained.iter().map(|e| e["detail"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), drained.len());
}

#[tokio::test]
async fn events_for_an_organisation_no_account_holds_are_acknowledged_and_dropped() {
    let w = World::new().await;
    let stranger = uuid::Uuid::new_v4();
    let text = payload(&[event(stranger, "CONTACT", uuid::Uuid::new_v4(), "2026-11-21T03:05:00.000", Value::Null)]);
    assert_empty_answer(&w.post_xero_webhook(&text, Some(&sign(&text))).await, 200);
    w.emu.reset_counters();
    let run = w.work_changes_queue().await;
    assert_eq!((run.received, run.handed_back), (1, 0), "taken once, not retried");
    assert_eq!(w.emu.counters().total_calls(), 0);
    assert!(w.inbox.drain().await.unwrap().is_empty());
}
