//! Issue 18, payments: `payment.created` and `payment.voided` from the platform become Xero
//! payments against the synced invoice, exactly once, into the account mapped for the method.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use scheduled_import::import::{ImportPolicy, import};
use serde_json::{Value, json};
use uuid::Uuid;
use xero_emulator::demo;
use xero_sync_domain::model::{PlatformInvoiceId, PlatformPaymentId};
use xero_sync_domain::payment::{PaymentMethod, PaymentRecord, PaymentSyncStatus};
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_testkit::sent_emails;
use xero_sync_xero::ApiRequest;

use crate::helpers::*;

pub(crate) const PUT_PAYMENTS: (&str, &str) = ("PUT", "/api.xro/2.0/payments");
/// The example invoice's total: 95 + 3.5 × 12.40 less 10 %, plus GST.
pub(crate) const TOTAL: &str = "154.17";

pub(crate) fn calls(w: &World, (method, endpoint): (&str, &str)) -> u64 {
    w.emu.counters().calls_to(method, endpoint)
}

pub(crate) fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.to_string().trim_matches('"')).unwrap()
}

pub(crate) fn account_id(w: &World, code: &str) -> Uuid {
    let accounts = w.emu.objects(demo::NZ_TENANT_ID, "Accounts").unwrap();
    let account = accounts.iter().find(|a| a["Code"] == code).unwrap();
    Uuid::parse_str(account["AccountID"].as_str().unwrap()).unwrap()
}

/// Connected, card payments mapped to the bank account 090, and invoice `inv-1` (INV-1001) in
/// Xero with `status`.
pub(crate) async fn with_invoice(account: &str, status: NewInvoiceStatus, options: Options) -> World {
    let w = ready_with(account, status, options).await;
    let mut s = settings(status);
    s.payment_accounts = [(PaymentMethod::Card, account_id(&w, "090"))].into();
    w.aws.store().put_settings(&key(account), 1, &s).await.unwrap();
    deliver(
        &w,
        &event(account, &format!("dlv-{account}-inv"), "inv-1", "INV-1001", new_customer("cust-1", "Totara Homes")),
    )
    .await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    w
}

pub(crate) fn payment(account: &str, delivery: &str, id: &str, amount: &str) -> Value {
    let mut e = contract_example("payment-created.json", account, delivery);
    e["payment"]["id"] = json!(id);
    e["payment"]["invoice_id"] = json!("inv-1");
    e["payment"]["amount"] = json!(amount);
    e
}

pub(crate) fn void(account: &str, delivery: &str, id: &str) -> Value {
    json!({ "delivery_id": delivery, "event": "payment.voided", "occurred_at": "2026-11-21T08:00:00Z",
            "account_id": account, "payment": { "id": id, "invoice_id": "inv-1" } })
}

pub(crate) fn invoice(w: &World) -> Value {
    in_xero(w, "INV-1001").remove(0)
}

pub(crate) fn xero_payments(w: &World) -> Vec<Value> {
    w.emu.payments(demo::NZ_TENANT_ID)
}

pub(crate) async fn record(w: &World, account: &str, id: &str) -> PaymentRecord {
    let (invoice, payment) = (PlatformInvoiceId::parse("inv-1").unwrap(), PlatformPaymentId::parse(id).unwrap());
    w.aws.store().get_payment_record(&key(account), &invoice, &payment).await.unwrap().unwrap()
}

/// Delivers the bodies eight at a time, as a busy platform would.
async fn deliver_all(w: &World, bodies: Vec<Value>) {
    use futures::StreamExt;
    futures::stream::iter(bodies).for_each_concurrent(8, |body| async move { deliver(w, &body).await }).await;
}

pub(crate) async fn invoice_api(w: &World, account: &str) -> Value {
    let path = format!("/accounts/{account}/connections/{}/invoices/inv-1", demo::NZ_TENANT_ID);
    json(&w.invoice_api("GET", &path, "").await)
}

#[tokio::test]
async fn a_card_payment_in_full_pays_the_invoice_in_one_call_and_is_not_announced_back() {
    let w = with_invoice("acct-pay-full", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-pay-full", "dlv-pay-full-1", "pay-1", TOTAL)).await;
    w.work_push_queue().await;

    assert_eq!((w.emu.counters().total_calls(), calls(&w, PUT_PAYMENTS)), (1, 1), "{:?}", w.emu.counters());
    assert_eq!(invoice(&w)["Status"], "PAID");
    let paid = xero_payments(&w);
    assert_eq!(paid.len(), 1);
    assert_eq!(dec(&paid[0]["Amount"]), Decimal::from_str(TOTAL).unwrap());
    assert_eq!(paid[0]["Account"]["Code"], "090", "into the account mapped for card payments");
    assert_eq!(paid[0]["Reference"], "Card ending 4242");
    let synced = events_of(&w.inbox, "payment.synced").await;
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0]["detail"]["data"]["xero_payment_id"], paid[0]["PaymentID"]);
    assert_eq!(synced[0]["detail"]["data"]["action"], "created");
    assert_eq!(record(&w, "acct-pay-full", "pay-1").await.status, PaymentSyncStatus::Synced);
    let api = invoice_api(&w, "acct-pay-full").await;
    assert_eq!(api["payments"][0]["status"], "SYNCED");

    // Xero shows the payment back, through the import and through its webhook: no news.
    w.emu.clock().advance(Duration::from_secs(60));
    import(&w.importer.app, &ImportPolicy::default(), &key("acct-pay-full")).await.unwrap();
    let drained = w.inbox.drain().await.unwrap();
    let kinds: Vec<&Value> = drained.iter().map(|e| &e["detail-type"]).collect();
    assert!(!kinds.iter().any(|k| *k == "payment.recorded"), "our own payment is not announced: {kinds:?}");

    // One made in Xero itself still is.
    let connection = w.connections("acct-pay-full").await.remove(0);
    w.emu.clock().advance(Duration::from_secs(60));
    let made = json!({ "Payments": [{ "Invoice": { "InvoiceID": invoice(&w)["InvoiceID"] }, "Account": { "Code": "090" },
        "Date": "2026-11-22", "Amount": "10.00" }]});
    let refused = w.worker.app.tokens.put::<_, Value>(&connection, &ApiRequest::new("/Payments"), &made).await;
    assert!(refused.is_err(), "the invoice is paid: Xero takes no more");
}

#[tokio::test]
async fn two_partial_payments_leave_the_invoice_part_paid_then_paid() {
    let w = with_invoice("acct-pay-part", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-pay-part", "dlv-pay-part-1", "pay-a", "100.00")).await;
    w.work_push_queue().await;
    let after_first = invoice(&w);
    assert_eq!(
        (after_first["Status"].as_str(), dec(&after_first["AmountDue"])),
        (Some("AUTHORISED"), Decimal::from_str("54.17").unwrap())
    );
    deliver(&w, &payment("acct-pay-part", "dlv-pay-part-2", "pay-b", "54.17")).await;
    w.work_push_queue().await;
    assert_eq!(invoice(&w)["Status"], "PAID");
    assert_eq!(xero_payments(&w).len(), 2);
    assert_eq!(calls(&w, PUT_PAYMENTS), 2, "one call each");
    let api = invoice_api(&w, "acct-pay-part").await;
    let amounts: Vec<&str> =
        api["payments"].as_array().unwrap().iter().map(|p| p["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["100", "54.17"]);
}

#[tokio::test]
async fn a_payment_before_its_invoice_waits_for_it_and_says_so() {
    let w = ready("acct-pay-early", NewInvoiceStatus::Authorised).await;
    let mut s = settings(NewInvoiceStatus::Authorised);
    s.payment_accounts = [(PaymentMethod::Card, account_id(&w, "090"))].into();
    w.aws.store().put_settings(&key("acct-pay-early"), 1, &s).await.unwrap();
    deliver(&w, &payment("acct-pay-early", "dlv-pay-early-1", "pay-1", TOTAL)).await;
    let run = w.work_push_queue_for(0).await;
    assert_eq!(run.held, 1, "held back, not failed: {run:?}");
    assert_eq!(w.emu.counters().total_calls(), 0, "nothing asked of Xero");
    let api = invoice_api(&w, "acct-pay-early").await;
    assert_eq!(api["status"], Value::Null, "the invoice itself is not there yet");
    assert_eq!(api["payments"][0]["status"], "HELD");
    assert_eq!(api["payments"][0]["reason"], "waiting for the invoice to reach Xero");

    let invoice_event =
        event("acct-pay-early", "dlv-pay-early-inv", "inv-1", "INV-1001", new_customer("cust-1", "Totara Homes"));
    deliver(&w, &invoice_event).await;
    w.work_push_queue().await;
    assert_eq!(invoice(&w)["Status"], "PAID", "the payment followed its invoice");
    assert_eq!(xero_payments(&w).len(), 1);
    assert_eq!(record(&w, "acct-pay-early", "pay-1").await.status, PaymentSyncStatus::Synced);
}

#[tokio::test]
async fn a_payment_for_a_draft_is_held_until_the_settings_let_it_approve_the_draft() {
    let w = with_invoice("acct-pay-draft", NewInvoiceStatus::Draft, Options::default()).await;
    deliver(&w, &payment("acct-pay-draft", "dlv-pay-draft-1", "pay-1", TOTAL)).await;
    let run = w.work_push_queue_for(0).await;
    assert_eq!((run.held, w.emu.counters().total_calls()), (1, 0), "{run:?}");
    let api = invoice_api(&w, "acct-pay-draft").await;
    assert_eq!(api["payments"][0]["status"], "HELD");
    assert!(api["payments"][0]["reason"].as_str().unwrap().contains("draft"), "{api}");
    assert_eq!(invoice(&w)["Status"], "DRAFT");

    let mut s = w.aws.store().get_settings(&key("acct-pay-draft")).await.unwrap();
    s.settings.approve_drafts_for_payment = true;
    w.aws.store().put_settings(&key("acct-pay-draft"), s.version, &s.settings).await.unwrap();
    w.work_push_queue().await;
    assert_eq!(invoice(&w)["Status"], "PAID");
    assert_eq!(w.emu.counters().total_calls(), 2, "approve, then pay: {:?}", w.emu.counters());
}

#[tokio::test]
async fn a_voided_payment_is_deleted_in_xero_and_the_invoice_is_due_again_without_an_echo() {
    let w = with_invoice("acct-pay-void", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-pay-void", "dlv-pay-void-1", "pay-1", TOTAL)).await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    deliver(&w, &void("acct-pay-void", "dlv-pay-void-2", "pay-1")).await;
    w.work_push_queue().await;

    let paid = xero_payments(&w);
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["Status"], "DELETED");
    let after = invoice(&w);
    assert_eq!(
        (after["Status"].as_str(), dec(&after["AmountDue"])),
        (Some("AUTHORISED"), Decimal::from_str(TOTAL).unwrap())
    );
    assert_eq!(record(&w, "acct-pay-void", "pay-1").await.status, PaymentSyncStatus::Voided);
    let synced = events_of(&w.inbox, "payment.synced").await;
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0]["detail"]["data"]["action"], "voided");

    w.emu.clock().advance(Duration::from_secs(60));
    import(&w.importer.app, &ImportPolicy::default(), &key("acct-pay-void")).await.unwrap();
    let drained = w.inbox.drain().await.unwrap();
    assert!(
        !drained.iter().any(|e| e["detail-type"] == "payment.reversed" || e["detail-type"] == "payment.recorded"),
        "our own void is not announced back: {drained:?}"
    );
}

#[tokio::test]
async fn a_payment_over_the_amount_due_is_refused_with_xeros_reason_and_one_email() {
    let w = with_invoice("acct-pay-over", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-pay-over", "dlv-pay-over-1", "pay-1", "200.00")).await;
    w.work_push_queue().await;
    assert!(xero_payments(&w).is_empty());
    let failed = events_of(&w.inbox, "payment.sync_failed").await;
    assert_eq!(failed.len(), 1);
    let reasons = failed[0]["detail"]["data"]["reasons"].to_string();
    assert!(reasons.contains("exceeds the amount outstanding"), "Xero's own words: {reasons}");
    let r = record(&w, "acct-pay-over", "pay-1").await;
    assert_eq!(r.status, PaymentSyncStatus::Failed);
    let emails = sent_emails(w.moto().endpoint(), OWNER).await.unwrap();
    let about: Vec<_> = emails.iter().filter(|m| m.body.contains("exceeds the amount outstanding")).collect();
    assert_eq!(about.len(), 1, "one email, with Xero's words: {emails:?}");
}

#[tokio::test]
async fn a_payment_by_a_method_with_no_account_mapped_fails_naming_the_method() {
    let w = with_invoice("acct-pay-unmapped", NewInvoiceStatus::Authorised, Options::default()).await;
    let mut body = payment("acct-pay-unmapped", "dlv-pay-unmapped-1", "pay-1", "10.00");
    body["payment"]["method"] = json!("cash");
    deliver(&w, &body).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0);
    let failed = events_of(&w.inbox, "payment.sync_failed").await;
    assert!(
        failed[0]["detail"]["data"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("no Xero account is mapped for cash payments")
    );
}

#[tokio::test]
async fn ten_concurrent_redeliveries_make_one_xero_payment() {
    let w = with_invoice("acct-pay-redeliver", NewInvoiceStatus::Authorised, Options::default()).await;
    let body = payment("acct-pay-redeliver", "dlv-pay-redeliver-1", "pay-1", "50.00").to_string();
    let answers = futures::future::join_all((0..10).map(|_| w.post_webhook(&body, None))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| [200, 202, 503].contains(s)), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "accepted once: {statuses:?}");
    // The same payment under other delivery ids (a platform that re-sends with new ids).
    for n in 2..=4 {
        let again = payment("acct-pay-redeliver", &format!("dlv-pay-redeliver-{n}"), "pay-1", "50.00");
        deliver(&w, &again).await;
    }
    w.work_push_queue().await;
    assert_eq!(xero_payments(&w).len(), 1);
    assert_eq!(calls(&w, PUT_PAYMENTS), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_payments_through_errors_and_timeouts_after_the_write_each_land_exactly_once() {
    let w =
        ready_with("acct-pay-faults", NewInvoiceStatus::Authorised, Options { own_moto: true, ..Default::default() })
            .await;
    let mut s = settings(NewInvoiceStatus::Authorised);
    s.payment_accounts = [(PaymentMethod::Card, account_id(&w, "090"))].into();
    w.aws.store().put_settings(&key("acct-pay-faults"), 1, &s).await.unwrap();
    // 100 invoices, three partial payments each.
    let invoices = (0..100).map(|n| {
        event(
            "acct-pay-faults",
            &format!("dlv-pf-inv-{n}"),
            &format!("inv-{n}"),
            &format!("PF-{n:03}"),
            new_customer("cust-pf", "Pohutukawa Ltd"),
        )
    });
    deliver_all(&w, invoices.collect()).await;
    w.work_push_queue().await;
    let faults = w.emu.faults();
    faults.reseed(18);
    // Fifty payments to a write make few calls, so one error is placed rather than left to chance.
    let errors = faults.status_on_nth_call(Some("PUT"), "/api.xro/2.0/payments", 2, 503);
    faults.error_rate(Some("GET"), "/api.xro/2.0/payments*", 503, 0.3);
    let timeouts = faults.add(
        xero_emulator::FaultRule::new(
            Some("PUT"),
            "/api.xro/2.0/payments",
            xero_emulator::FaultAction::TimeoutAfterWrite { hang_millis: Some(1500) },
        )
        .trigger(xero_emulator::Trigger::Rate { probability: 0.2 }),
    );
    let payments = (0..300).map(|k| {
        let (n, part) = (k / 3, k % 3);
        let mut body = payment("acct-pay-faults", &format!("dlv-pf-{n}-{part}"), &format!("pay-{n}-{part}"), "10.00");
        body["payment"]["invoice_id"] = json!(format!("inv-{n}"));
        body["payment"]["reference"] = json!(format!("part {part}"));
        body
    });
    deliver_all(&w, payments.collect()).await;
    // Past Xero's memory of an Idempotency-Key between attempts: exactly-once is ours to keep.
    w.work_push_queue().await;

    let paid: Vec<Value> = xero_payments(&w).into_iter().filter(|p| p["Status"] == "AUTHORISED").collect();
    assert_eq!(paid.len(), 300, "each payment once");
    for invoice in w
        .emu
        .invoices(demo::NZ_TENANT_ID)
        .iter()
        .filter(|i| i["InvoiceNumber"].as_str().unwrap_or("").starts_with("PF-"))
    {
        assert_eq!(dec(&invoice["AmountPaid"]), Decimal::from(30), "{}", invoice["InvoiceNumber"]);
    }
    assert!(faults.fired(errors) > 0 && faults.fired(timeouts) > 0, "the faults were met");
    assert_eq!(events_of(&w.inbox, "payment.synced").await.len(), 300, "one payment.synced each");
}

#[tokio::test]
async fn a_connection_without_the_payments_scope_holds_payments_and_a_reconnect_releases_them() {
    let old = "openid profile email offline_access accounting.contacts accounting.invoices accounting.payments.read accounting.settings.read";
    let mut w = with_invoice(
        "acct-pay-scope",
        NewInvoiceStatus::Authorised,
        Options { scopes: Some(old), ..Default::default() },
    )
    .await;
    let path = "/accounts/acct-pay-scope/connections";
    let listed = json(&w.api("GET", path).await);
    let features = &listed["connections"][0]["features"];
    assert!(!features.as_array().unwrap().contains(&json!("push_payments")), "{listed}");
    assert_eq!(listed["connections"][0]["features_not_allowed"][0]["needs_scope"], "accounting.payments");

    deliver(&w, &payment("acct-pay-scope", "dlv-pay-scope-1", "pay-1", "20.00")).await;
    deliver(&w, &payment("acct-pay-scope", "dlv-pay-scope-2", "pay-2", "30.00")).await;
    w.work_push_queue().await;
    assert!(xero_payments(&w).is_empty());
    let api = invoice_api(&w, "acct-pay-scope").await;
    assert_eq!(api["payments"][0]["status"], "HELD");
    assert!(api["payments"][0]["reason"].as_str().unwrap().starts_with("reconnect to allow payments"));
    let emails = sent_emails(w.moto().endpoint(), OWNER).await.unwrap();
    let told: Vec<_> = emails.iter().filter(|m| m.subject == "Reconnect Xero to send payments").collect();
    assert_eq!(told.len(), 1, "told once for both payments: {emails:?}");
    assert!(invoice(&w)["Status"] == "AUTHORISED", "invoices still flow");

    // The account reconnects, now asked for accounting.payments: what was held goes to Xero.
    w.connect.oauth.scopes =
        xero_sync_runtime::config::DEFAULT_XERO_SCOPES.split_whitespace().map(str::to_owned).collect();
    w.connect_account("acct-pay-scope").await;
    w.work_push_queue().await;
    assert_eq!(xero_payments(&w).len(), 2);
    assert_eq!(record(&w, "acct-pay-scope", "pay-2").await.status, PaymentSyncStatus::Synced);
    let listed = json(&w.api("GET", path).await);
    assert!(listed["connections"][0]["features"].as_array().unwrap().contains(&json!("push_payments")));
}

#[tokio::test]
async fn the_xero_invoice_links_to_the_platforms_page_and_events_and_the_api_link_into_xero() {
    let w = ready("acct-links", NewInvoiceStatus::Authorised).await;
    let base = format!("/accounts/acct-links/connections/{}", demo::NZ_TENANT_ID);
    let org = w.emu.objects(demo::NZ_TENANT_ID, "Organisation").unwrap().remove(0);
    let code = org["ShortCode"].as_str().unwrap().to_owned();
    assert_eq!(
        w.connections("acct-links").await[0].short_code.as_deref(),
        Some(code.as_str()),
        "read once, at connect"
    );

    let mut wanted = serde_json::to_value(settings(NewInvoiceStatus::Authorised)).unwrap();
    wanted["invoice_url_template"] = json!("app.example.com/invoices/{invoice_id}");
    let refused =
        w.api_json("PUT", &format!("{base}/settings"), &json!({ "version": 1, "settings": wanted }).to_string()).await;
    assert_eq!(refused.status(), 422, "{}", body(&refused));
    assert_eq!(json(&refused)["problems"][0]["field"], "settings.invoice_url_template");
    wanted["invoice_url_template"] = json!("https://app.example.com/invoices/{invoice_id}");
    wanted["payment_accounts"] = json!({ "card": account_id(&w, "090") });
    let saved =
        w.api_json("PUT", &format!("{base}/settings"), &json!({ "version": 1, "settings": wanted }).to_string()).await;
    assert_eq!(saved.status(), 200, "{}", body(&saved));

    let sent = event("acct-links", "dlv-links-inv", "inv-1", "INV-1001", new_customer("cust-1", "Totara Homes"));
    deliver(&w, &sent).await;
    w.work_push_queue().await;
    let invoice = invoice(&w);
    assert_eq!(invoice["Url"], "https://app.example.com/invoices/inv-1", "Xero shows \"Go to …\" with it");
    let xero_id = invoice["InvoiceID"].as_str().unwrap();
    let deep = format!(
        "https://go.xero.com/organisationlogin/default.aspx?shortcode={code}&redirecturl=/AccountsReceivable/View.aspx?InvoiceID={xero_id}"
    );
    let synced = events_of(&w.inbox, "invoice.synced").await;
    assert_eq!(synced[0]["detail"]["data"]["xero_url"], deep.as_str());
    assert_eq!(invoice_api(&w, "acct-links").await["xero_url"], deep.as_str());

    deliver(&w, &payment("acct-links", "dlv-links-pay", "pay-1", "20.00")).await;
    w.work_push_queue().await;
    let paid = xero_payments(&w).remove(0);
    let payment_link = format!(
        "https://go.xero.com/organisationlogin/default.aspx?shortcode={code}&redirecturl=/Bank/ViewTransaction.aspx?bankTransactionID={}",
        paid["PaymentID"].as_str().unwrap()
    );
    let synced = events_of(&w.inbox, "payment.synced").await;
    assert_eq!(synced[0]["detail"]["data"]["xero_url"], payment_link.as_str());
    assert_eq!(invoice_api(&w, "acct-links").await["payments"][0]["xero_url"], payment_link.as_str());
}
