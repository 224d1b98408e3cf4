//! An Idempotency-Key is remembered for Xero's window only; then the same request is new.

use std::time::Duration;

use serde_json::json;
use xero_emulator::IDEMPOTENCY_WINDOW;

use crate::helpers::*;

#[tokio::test]
async fn a_key_replays_within_the_window_and_is_forgotten_after_it() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    assert_eq!(IDEMPOTENCY_WINDOW, Duration::from_secs(360));
    // No InvoiceNumber: Xero numbers it, so applying the same body twice makes two invoices.
    let mut unnumbered = invoice("", "10");
    unnumbered.as_object_mut().expect("object").remove("InvoiceNumber");
    let body = json!({"Invoices": [unnumbered]});
    let key = [("Idempotency-Key", "six-minutes")];
    let first = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["Invoices"][0]["InvoiceNumber"], "INV-0001");

    emu.clock().advance(IDEMPOTENCY_WINDOW - Duration::from_secs(1));
    let replay = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(replay.text, first.text, "within the window the first answer comes back");
    assert_eq!(emu.invoices(NZ).len(), 1, "and nothing is applied twice");

    emu.clock().advance(Duration::from_secs(2));
    let again = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["Invoices"][0]["InvoiceNumber"], "INV-0002", "applied as a new request");
    assert_eq!(emu.invoices(NZ).len(), 2);

    // The new answer is remembered for its own window; another body under the key is refused.
    let other = json!({"Invoices": [invoice("IDEM-OTHER", "10")]});
    assert_eq!(api.send("PUT", "/Invoices", Some(&other), &key).await.status, 400);
    emu.clock().advance(IDEMPOTENCY_WINDOW + Duration::from_secs(1));
    let reused = api.send("PUT", "/Invoices", Some(&other), &key).await;
    assert_eq!(reused.status, 200, "an expired key can name a different request: {}", reused.text);
    assert_eq!(emu.invoices(NZ).len(), 3);
}
