use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
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
        let payload: Value = serde_json::from_slice(body).expect("json");
        assert_valid(SpecFile::Webhooks, "WebhookEvent", &payload);
        assert_eq!(payload["events"], serde_json::json!([]));
    }
    let (naive, _) = receiver(false).await;
    let report = emu.intent_to_receive(&naive, KEY).await.expect("ran");
    assert!(!report.passed);
    assert_eq!(report.bad_signature_status, 200);
}
