use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::*;
use crate::spec::{SpecFile, assert_valid};

const KEY: &str = "webhook-key-from-the-developer-portal";

type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A receiver on a free local port; `checks` decides whether it verifies signatures.
async fn receiver(checks: bool) -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let store = store.clone();
        async move {
            let sig = headers.get("x-xero-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let ok = !checks || sig == signature(KEY, &body);
            store.lock().expect("lock").push((sig, body.to_vec()));
            if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/webhooks/xero", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn webhooks_are_signed_with_the_key_and_shaped_like_the_spec() {
    let emu = start().await;
    let (url, received) = receiver(true).await;
    let invoice_id = Uuid::new_v4();
    let event = emu.webhook_event(NZ, "INVOICE", "UPDATE", invoice_id);
    let delivery = emu.send_webhook(&url, KEY, vec![event]).await.expect("delivered");
    assert_eq!(delivery.status, 200);
    let (sig, body) = received.lock().expect("lock")[0].clone();
    assert_eq!(sig, signature(KEY, &body));
    let payload: Value = serde_json::from_slice(&body).expect("json");
    assert_valid(SpecFile::Webhooks, "WebhookEvent", &payload);
    let e = &payload["events"][0];
    assert_eq!(e["resourceId"], invoice_id.to_string());
    assert_eq!(e["tenantId"], NZ.to_string());
    assert_eq!(e["eventCategory"], "INVOICE");
    assert_eq!(e["resourceUrl"], format!("{}/api.xro/2.0/Invoices/{invoice_id}", emu.base_url()));
    assert_eq!(payload["firstEventSequence"], 1);
}

#[tokio::test]
async fn intent_to_receive_passes_only_a_receiver_that_checks_signatures() {
    let emu = start().await;
    let (good, received) = receiver(true).await;
    let report = emu.intent_to_receive(&good, KEY).await.expect("ran");
    assert!(report.passed, "{report:?}");
    assert_eq!((report.bad_signature_status, report.good_signature_status), (401, 200));
    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2);
    for (_, body) in &bodies {
        // As Xero sends it: no events and sequences of 0, which the schema's minimum of 1
        // refuses, so a receiver must not validate this payload against the schema.
        let payload: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(payload["events"], serde_json::json!([]));
        assert_eq!((&payload["firstEventSequence"], &payload["lastEventSequence"]), (&json!(0), &json!(0)));
        assert!(payload["entropy"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (naive, _) = receiver(false).await;
    let report = emu.intent_to_receive(&naive, KEY).await.expect("ran");
    assert!(!report.passed);
    assert_eq!(report.bad_signature_status, 200);
}

/// A receiver that answers 500 to the first `failures` deliveries, then checks signatures.
async fn flaky_receiver(failures: usize) -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(failures));
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (store, left) = (store.clone(), left.clone());
        async move {
            let sig = headers.get("x-xero-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let ok = sig == signature(KEY, &body);
            store.lock().expect("lock").push((sig, body.to_vec()));
            let failing = left
                .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                    n.checked_sub(1)
                })
                .is_ok();
            if failing {
                StatusCode::INTERNAL_SERVER_ERROR
            } else if ok {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/xero/webhooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn changes_made_through_the_api_are_delivered_batched_signed_and_again_after_a_refusal() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let (url, received) = flaky_receiver(1).await;
    assert_eq!(emu.deliver_webhooks().await.expect("nothing to do"), None, "no subscription, no webhooks");
    emu.update_settings(|s| s.webhooks = Some(xero_emulator::WebhookSubscription { url, key: KEY.into() }));

    let contact = api.put("/Contacts", &json!({ "Contacts": [{ "Name": "Kowhai Joinery" }] })).await;
    let contact_id = contact.body["Contacts"][0]["ContactID"].as_str().expect("id").to_owned();
    let made = create_invoice(&api, invoice("WH-1", "40.00")).await;
    let invoice_id = made["InvoiceID"].as_str().expect("id").to_owned();
    emu.clock().advance(std::time::Duration::from_secs(1));
    api.post(&format!("/Contacts/{contact_id}"), &json!({ "Contacts": [{ "EmailAddress": "k@kowhai.example" }] }))
        .await;
    // A read changes nothing.
    api.get("/Invoices").await;
    let pending = emu.pending_webhooks();

    let refused = emu.deliver_webhooks().await.expect("delivered").expect("a delivery");
    assert_eq!(refused.status, 500);
    assert_eq!(emu.pending_webhooks(), pending, "kept for the next attempt");
    let delivered = emu.deliver_webhooks().await.expect("delivered").expect("a delivery");
    assert_eq!(delivered.status, 200);
    assert_eq!(emu.pending_webhooks(), 0);
    assert_eq!(emu.deliver_webhooks().await.expect("nothing to do"), None);

    let bodies = received.lock().expect("lock").clone();
    assert_eq!(bodies.len(), 2);
    let first: Value = serde_json::from_slice(&bodies[0].1).expect("json");
    let payload: Value = serde_json::from_slice(&bodies[1].1).expect("json");
    assert_eq!(first["events"], payload["events"], "the same events again");
    assert_valid(SpecFile::Webhooks, "WebhookEvent", &payload);
    let events = payload["events"].as_array().expect("events");
    let about = |id: &str| {
        events
            .iter()
            .filter(|e| e["resourceId"] == id)
            .map(|e| e["eventType"].as_str().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(about(&contact_id), ["CREATE", "UPDATE"]);
    assert_eq!(about(&invoice_id), ["CREATE"]);
    let invoice_event = events.iter().find(|e| e["resourceId"] == invoice_id.as_str()).expect("the invoice");
    assert_eq!(invoice_event["data"]["Type"], "ACCREC");
    assert!(events.iter().all(|e| e["tenantId"] == NZ.to_string()));
}

#[tokio::test]
async fn credit_notes_take_no_ids_parameter_and_list_in_full() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let credit = json!({ "CreditNotes": [{
        "Type": "ACCRECCREDIT", "Contact": { "ContactNumber": "C-1001" }, "Date": "2026-11-21", "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [{ "Description": "Goodwill", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200", "TaxType": "OUTPUT2" }],
    }]});
    assert_eq!(api.put("/CreditNotes", &credit).await.status, 200);
    let all = api.get("/CreditNotes").await;
    let count = all.body["CreditNotes"].as_array().map_or(0, Vec::len);
    assert!(count >= 1);
    let filtered = api.get(&format!("/CreditNotes?IDs={}", Uuid::new_v4())).await;
    assert_eq!(filtered.body["CreditNotes"].as_array().map_or(0, Vec::len), count, "Xero ignores IDs= here");
}
