//! Issue 6, the HTTP side: the invoice webhook verifies, validates and durably accepts.

use std::sync::Arc;

use serde_json::{Value, json};
use xero_emulator::demo;

use crate::helpers::*;

fn event(account: &str, delivery: &str) -> Value {
    example_event(account, delivery)
}

#[tokio::test]
async fn a_signed_invoice_event_is_queued_once_and_a_redelivery_is_only_acknowledged() {
    let w = World::new().await;
    w.connect_account("acct-push").await;
    let body = event("acct-push", "dlv-00000001").to_string();

    let accepted = w.post_webhook(&body, None).await;
    assert_eq!(accepted.status(), 202, "{}", crate::helpers::body(&accepted));
    assert_eq!(json(&accepted)["status"], "accepted");
    let queued = w.queued_pushes().await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].tenant_id.0, demo::NZ_TENANT_ID);
    assert_eq!(queued[0].event.invoice.number, "INV-1001");
    assert_eq!(queued[0].event.invoice.lines[1].unit_price.to_string(), "12.40", "decimals as sent");

    let again = w.post_webhook(&body, None).await;
    assert_eq!(again.status(), 200);
    assert_eq!(json(&again)["status"], "duplicate");
    assert!(w.queued_pushes().await.is_empty(), "nothing queued twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_deliveries_of_one_event_make_one_xero_invoice() {
    let w = Arc::new(World::new().await);
    w.connect_account("acct-burst").await;
    let drafts = settings(xero_sync_domain::settings::NewInvoiceStatus::Draft);
    w.aws.store().put_settings(&key("acct-burst"), 0, &drafts).await.unwrap();
    w.work_push_queue().await;
    let body = event("acct-burst", "dlv-burst-0001").to_string();
    let attempts: Vec<_> = (0..10)
        .map(|_| {
            let (w, body) = (w.clone(), body.clone());
            tokio::spawn(async move { w.post_webhook(&body, None).await.status().as_u16() })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 202, 503].contains(s)),
        "others are duplicates or told to retry: {statuses:?}"
    );
    w.work_push_queue().await;
    let invoices = w.emu.invoices(demo::NZ_TENANT_ID);
    assert_eq!(invoices.iter().filter(|i| i["InvoiceNumber"] == "INV-1001").count(), 1);
}

#[tokio::test]
async fn bad_deliveries_get_a_4xx_naming_the_problem_and_store_and_queue_nothing() {
    let w = World::new().await;
    w.connect_account("acct-bad").await;
    let stored_before = w.aws.item_count().await;
    let good = event("acct-bad", "dlv-bad-000001");
    let mut missing = good.clone();
    missing["invoice"].as_object_mut().unwrap().remove("number");
    let mut mistyped = good.clone();
    mistyped["invoice"]["lines"][0]["quantity"] = json!(["two"]);
    let mut semantic = good.clone();
    semantic["invoice"]["currency"] = json!("Dollars");
    semantic["invoice"]["lines"][0]["discount_rate"] = json!("150");
    let unknown_account = event("acct-nobody", "dlv-bad-000002");
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(invoice_push::webhook::MAX_BODY));

    let cases: Vec<(String, Option<chrono::DateTime<chrono::Utc>>, u16, &str)> = vec![
        (good.to_string(), Some(w.now() - chrono::Duration::minutes(6)), 401, "more than 5 minutes"),
        ("{not json".to_owned(), None, 400, "body"),
        (missing.to_string(), None, 400, "missing field `number`"),
        (mistyped.to_string(), None, 400, "invoice.lines[0].quantity"),
        (semantic.to_string(), None, 400, "invoice.currency: must be a three-letter"),
        (unknown_account.to_string(), None, 404, "acct-nobody is not connected to Xero"),
        (huge, None, 413, "larger than"),
    ];
    for (body, at, status, says) in cases {
        let response = w.post_webhook(&body, at).await;
        assert_eq!(response.status(), status, "{says}: {}", crate::helpers::body(&response));
        assert!(crate::helpers::body(&response).contains(says), "{says}: {}", crate::helpers::body(&response));
    }
    let semantic_problems =
        json(&w.post_webhook(&semantic.to_string(), None).await)["problems"].as_array().unwrap().len();
    assert_eq!(semantic_problems, 2, "every problem at once");

    let forged = invoice_push::handle_webhook(
        &w.webhook,
        xero_sync_testkit::apigw::request(
            "POST",
            "/webhooks/invoices",
            &[("x-xerosync-signature", "t=1,v1=00")],
            Some(&good.to_string()),
        ),
    )
    .await;
    assert_eq!(forged.status(), 401);
    assert_eq!(w.aws.item_count().await, stored_before, "nothing stored");
    assert!(w.queued_pushes().await.is_empty(), "nothing queued");
}

#[tokio::test]
async fn an_account_with_several_organisations_must_say_which() {
    let w = World::with(Options { multi_org: true, ..Options::default() }).await;
    w.emu.set_auto_approve(true, Some(vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID]));
    w.connect_account("acct-two-orgs").await;
    let mut body = event("acct-two-orgs", "dlv-multi-0001");
    let ambiguous = w.post_webhook(&body.to_string(), None).await;
    assert_eq!(ambiguous.status(), 400);
    assert_eq!(json(&ambiguous)["problems"][0]["field"], "xero_tenant_id");
    body["xero_tenant_id"] = json!(demo::AU_TENANT_ID.to_string());
    assert_eq!(w.post_webhook(&body.to_string(), None).await.status(), 202);
    assert_eq!(w.queued_pushes().await[0].tenant_id.0, demo::AU_TENANT_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_100_redeliveries_makes_one_xero_invoice() {
    let w = Arc::new(World::new().await);
    w.connect_account("acct-storm").await;
    let drafts = settings(xero_sync_domain::settings::NewInvoiceStatus::Draft);
    w.aws.store().put_settings(&key("acct-storm"), 0, &drafts).await.unwrap();
    w.work_push_queue().await;
    // Half repeat one delivery id (the platform retrying); half are new deliveries of the same
    // invoice (the platform sending it again).
    let attempts: Vec<_> = (0..100)
        .map(|n| {
            let w = w.clone();
            let delivery = if n % 2 == 0 { "dlv-storm-0000".to_owned() } else { format!("dlv-storm-{n:04}") };
            let body = event("acct-storm", &delivery).to_string();
            tokio::spawn(async move {
                loop {
                    let status = w.post_webhook(&body, None).await.status().as_u16();
                    // 503: the same delivery is being accepted right now; the platform retries.
                    if status != 503 {
                        return status;
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let statuses: Vec<u16> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    assert!(statuses.iter().all(|s| [200, 202].contains(s)), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 51, "one per delivery id: {statuses:?}");
    w.emu.reset_counters();
    w.work_push_queue().await;
    let invoices = w.emu.invoices(demo::NZ_TENANT_ID);
    assert_eq!(invoices.iter().filter(|i| i["InvoiceNumber"] == "INV-1001").count(), 1);
    assert_eq!(w.emu.counters().calls_to("PUT", "/api.xro/2.0/invoices"), 1, "one write reached Xero");
}
