//! Issue 20: a failed invoice retried from what was stored (`POST .../invoices/{id}/retry`),
//! and the sync log the integration page lists, newest first, with its failures.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::json;
use xero_sync_domain::links::XeroDocument;
use xero_sync_domain::model::{PlatformInvoiceId, SyncRecord, SyncStatus};
use xero_sync_domain::settings::{NewInvoiceStatus, TaxMapping};
use xero_sync_domain::store::PageToken;
use xero_sync_domain::sync_log::{LogEntry, LogFilter, LogKind, LogStatus};
use xero_sync_testkit::apigw;

use crate::helpers::*;
use crate::payments::{payment, with_invoice};

fn retry_path(account: &str, invoice: &str) -> String {
    format!("/accounts/{account}/connections/{}/invoices/{invoice}/retry", key(account).tenant_id)
}

async fn record(w: &World, account: &str, invoice: &str) -> SyncRecord {
    w.aws.store().get_sync_record(&key(account), &PlatformInvoiceId::parse(invoice).unwrap()).await.unwrap().unwrap()
}

/// An invoice whose line names a platform tax rate the settings do not map: failed before Xero.
fn unmapped(account: &str, delivery: &str, id: &str, number: &str) -> serde_json::Value {
    let mut body = event(account, delivery, id, number, new_customer(&format!("cust-{id}"), "Rimu Electrical"));
    body["invoice"]["lines"][0]["tax_rate_id"] = json!("zero-rated");
    body
}

/// The account's fix: the platform's zero rate mapped to Xero's NONE.
async fn map_zero_rate(w: &World, account: &str, version: u64) {
    let mut fixed = settings(NewInvoiceStatus::Draft);
    fixed.tax_mapping.push(TaxMapping {
        platform_tax_rate_id: "zero-rated".into(),
        rate: Decimal::ZERO,
        components: vec![],
        xero_tax_type: "NONE".into(),
    });
    w.aws.store().put_settings(&key(account), version, &fixed).await.unwrap();
}

/// Every row of the log, page after page, and how many pages it took.
async fn whole_log(w: &World, account: &str, filter: LogFilter, page_size: i32) -> (Vec<LogEntry>, usize) {
    let store = w.aws.store();
    let (mut rows, mut pages, mut from): (Vec<LogEntry>, usize, Option<PageToken>) = (Vec::new(), 0, None);
    loop {
        let page = store.sync_log(&key(account), filter, page_size, from.as_ref()).await.unwrap();
        assert!(page.items.len() <= page_size as usize);
        rows.extend(page.items);
        pages += 1;
        match page.next {
            Some(next) => from = Some(next),
            None => return (rows, pages),
        }
    }
}

fn ids(rows: &[LogEntry]) -> Vec<&str> {
    rows.iter().map(|r| r.platform_id.as_str()).collect()
}

#[tokio::test]
async fn a_failed_invoice_retried_after_the_fix_reaches_xero_exactly_once() {
    let w = ready("acct-retry", NewInvoiceStatus::Draft).await;
    deliver(&w, &unmapped("acct-retry", "dlv-retry-0001", "inv-r", "INV-R1")).await;
    w.work_push_queue().await;
    let failed = record(&w, "acct-retry", "inv-r").await;
    assert_eq!(failed.status, SyncStatus::Failed);
    assert!(failed.failed_message.is_some(), "the event is kept for a retry");

    map_zero_rate(&w, "acct-retry", 1).await;
    // Pressed twice before the queue is worked: still one invoice in Xero.
    for _ in 0..2 {
        let response = w.invoice_api("POST", &retry_path("acct-retry", "inv-r"), "").await;
        assert_eq!(response.status(), 202, "{}", body(&response));
        let answer = json(&response);
        assert_eq!(answer["invoice_id"], "inv-r");
        assert_eq!(answer["status"], "FAILED", "queued, not yet pushed");
        assert!(answer["retry_delivery_id"].as_str().unwrap().starts_with("retry-"));
    }
    w.work_push_queue().await;

    let synced = record(&w, "acct-retry", "inv-r").await;
    assert_eq!(synced.status, SyncStatus::Synced);
    assert_eq!(synced.failed_message, None, "nothing left to retry");
    let invoices = in_xero(&w, "INV-R1");
    assert_eq!(invoices.len(), 1, "exactly once");
    assert_eq!(invoices[0]["LineItems"][0]["TaxType"], "NONE");
    assert_eq!(events_of(&w.inbox, "invoice.synced").await.len(), 1);

    let again = w.invoice_api("POST", &retry_path("acct-retry", "inv-r"), "").await;
    assert_eq!(again.status(), 409);
    assert!(body(&again).contains("only a failed invoice can be retried; invoice inv-r is SYNCED"), "{}", body(&again));
}

#[tokio::test]
async fn a_retry_is_refused_for_an_unknown_an_unkept_a_malformed_or_an_unsigned_invoice() {
    let w = ready("acct-retry-no", NewInvoiceStatus::Draft).await;
    let unknown = w.invoice_api("POST", &retry_path("acct-retry-no", "inv-nope"), "").await;
    assert_eq!(unknown.status(), 404);
    assert!(body(&unknown).contains("inv-nope"), "{}", body(&unknown));

    // Failed before events were kept: only the platform has it.
    let key = key("acct-retry-no");
    let old = SyncRecord {
        status: SyncStatus::Failed,
        last_error: Some("Account code '999' is not a valid code for this document.".into()),
        ..SyncRecord::new(&key, PlatformInvoiceId::parse("inv-old").unwrap(), "INV-OLD", w.now())
    };
    w.aws.store().save_sync_record(&old).await.unwrap();
    let unkept = w.invoice_api("POST", &retry_path("acct-retry-no", "inv-old"), "").await;
    assert_eq!(unkept.status(), 409);
    assert!(body(&unkept).contains("send the invoice again from the platform"), "{}", body(&unkept));

    let malformed = w.invoice_api("POST", &retry_path("acct-retry-no", &"x".repeat(200)), "").await;
    assert_eq!(malformed.status(), 400, "{}", body(&malformed));

    let path = retry_path("acct-retry-no", "inv-old");
    let unsigned = invoice_push::handle_webhook(&w.webhook, apigw::request("POST", &path, &[], None)).await;
    assert_eq!(unsigned.status(), 401);
    assert!(w.queued_pushes().await.is_empty(), "nothing was queued");
}

#[tokio::test]
async fn the_sync_log_lists_invoices_and_payments_newest_first_and_its_failures_apart() {
    let account = "acct-log";
    let minute = Duration::from_secs(60);
    // inv-1 synced, then: inv-2 refused by Xero, pay-1 synced, pay-2 refused by Xero, inv-3
    // refused before Xero; a minute apart.
    let w = with_invoice(account, NewInvoiceStatus::Authorised, Options::default()).await;
    w.emu.clock().advance(minute);
    let mut refused = event(account, "dlv-log-inv-2", "inv-2", "INV-2", new_customer("cust-2", "Matai Roofing"));
    refused["invoice"]["lines"][1]["account_code"] = json!("999");
    deliver(&w, &refused).await;
    w.work_push_queue().await;
    w.emu.clock().advance(minute);
    deliver(&w, &payment(account, "dlv-log-pay-1", "pay-1", "10.00")).await;
    w.work_push_queue().await;
    w.emu.clock().advance(minute);
    deliver(&w, &payment(account, "dlv-log-pay-2", "pay-2", "500.00")).await;
    w.work_push_queue().await;
    w.emu.clock().advance(minute);
    deliver(&w, &unmapped(account, "dlv-log-inv-3", "inv-3", "INV-3")).await;
    w.work_push_queue().await;

    let (rows, pages) = whole_log(&w, account, LogFilter::All, 2).await;
    assert_eq!(ids(&rows), ["inv-3", "pay-2", "pay-1", "inv-2", "inv-1"]);
    assert!((3..=4).contains(&pages), "{pages} pages of two");
    assert!(rows.windows(2).all(|p| p[0].updated_at > p[1].updated_at), "newest first");
    let kinds: Vec<_> = rows.iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(
        kinds,
        [
            (LogKind::Invoice, LogStatus::Failed),
            (LogKind::Payment, LogStatus::Failed),
            (LogKind::Payment, LogStatus::Synced),
            (LogKind::Invoice, LogStatus::Failed),
            (LogKind::Invoice, LogStatus::Synced),
        ]
    );
    assert!(rows[3].error.as_deref().unwrap().contains("999"), "Xero's own words: {:?}", rows[3].error);
    assert!(rows[1].error.as_deref().unwrap().contains("exceeds the amount outstanding"), "{:?}", rows[1].error);
    let inv_1 = in_xero(&w, "INV-1001").remove(0)["InvoiceID"].as_str().unwrap().parse().unwrap();
    assert_eq!(rows[4].xero_document(), Some(XeroDocument::Invoice(inv_1)));
    assert_eq!(rows[0].xero_document(), None, "not in Xero: nothing to link to");

    let (failures, _) = whole_log(&w, account, LogFilter::Failures, 2).await;
    assert_eq!(ids(&failures), ["inv-3", "pay-2", "inv-2"]);

    // Fixed and retried: out of the failures, at the top of the log as synced.
    map_zero_rate(&w, account, 2).await;
    w.emu.clock().advance(minute);
    let response = w.invoice_api("POST", &retry_path(account, "inv-3"), "").await;
    assert_eq!(response.status(), 202, "{}", body(&response));
    w.work_push_queue().await;
    let (failures, _) = whole_log(&w, account, LogFilter::Failures, 10).await;
    assert_eq!(ids(&failures), ["pay-2", "inv-2"]);
    let (rows, _) = whole_log(&w, account, LogFilter::All, 10).await;
    assert_eq!((rows[0].platform_id.as_str(), rows[0].status), ("inv-3", LogStatus::Synced));
    assert_eq!(rows.len(), 5, "moved, not repeated");

    // A page token is this log's alone.
    let page = w.aws.store().sync_log(&key(account), LogFilter::All, 1, None).await.unwrap();
    let other = w.aws.store().sync_log(&key("acct-other"), LogFilter::All, 1, page.next.as_ref()).await;
    assert!(other.is_err());
}
