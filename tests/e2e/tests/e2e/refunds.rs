//! Issue 18, refunds: `payment.refunded` gives money back on a paid invoice. Xero shows it as an
//! AUTHORISED customer credit note for the amount, paid out of the method's account: two calls,
//! exactly once, and never echoed back to the platform.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use scheduled_import::import::{ImportPolicy, import};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::model::PlatformInvoiceId;
use xero_sync_domain::payment::PaymentSyncStatus;
use xero_sync_domain::settings::NewInvoiceStatus;

use crate::helpers::*;
use crate::payments::{
    PUT_PAYMENTS, TOTAL, calls, dec, invoice, invoice_api, payment, record, void, with_invoice, xero_payments,
};

const PUT_CREDIT_NOTES: (&str, &str) = ("PUT", "/api.xro/2.0/creditnotes");

fn refund(account: &str, delivery: &str, id: &str, amount: &str) -> Value {
    let mut e = contract_example("payment-refunded.json", account, delivery);
    e["payment"]["id"] = json!(id);
    e["payment"]["invoice_id"] = json!("inv-1");
    e["payment"]["amount"] = json!(amount);
    e
}

/// The invoice `inv-1` in Xero and paid in full there by `pay-1`; the inbox and counters clear.
async fn paid(account: &str) -> World {
    let w = with_invoice(account, NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment(account, &format!("dlv-{account}-pay"), "pay-1", TOTAL)).await;
    w.work_push_queue().await;
    assert_eq!(invoice(&w)["Status"], "PAID");
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    w
}

fn credit_notes(w: &World) -> Vec<Value> {
    w.emu.credit_notes(demo::NZ_TENANT_ID)
}

fn refunds(w: &World) -> Vec<Value> {
    xero_payments(w).into_iter().filter(|p| p.get("CreditNote").is_some()).collect()
}

#[tokio::test]
async fn a_refund_is_a_credit_note_to_the_invoices_contact_paid_out_in_two_calls_and_not_announced_back() {
    let w = paid("acct-refund").await;
    deliver(&w, &refund("acct-refund", "dlv-refund-1", "rfd-1", "40.00")).await;
    w.work_push_queue().await;

    assert_eq!(
        (w.emu.counters().total_calls(), calls(&w, PUT_CREDIT_NOTES), calls(&w, PUT_PAYMENTS)),
        (2, 1, 1),
        "the credit note, then its payment: {:?}",
        w.emu.counters()
    );
    let notes = credit_notes(&w);
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!((note["Type"].as_str(), note["Status"].as_str()), (Some("ACCRECCREDIT"), Some("PAID")), "{note}");
    assert_eq!(note["CreditNoteNumber"], "RF-rfd-1");
    assert_eq!(dec(&note["Total"]), Decimal::from_str("40.00").unwrap(), "the amount given back, tax included");
    assert_eq!(note["Contact"]["ContactID"], invoice(&w)["Contact"]["ContactID"], "to the invoice's customer");
    assert_eq!(note["LineItems"][0]["AccountCode"], "200", "taken back from the sales account");
    assert!(dec(&note["TotalTax"]) > Decimal::ZERO, "the tax goes back with the sale: {note}");
    assert!(note["Allocations"].as_array().is_none_or(Vec::is_empty), "nothing to allocate to on a paid invoice");
    let out = refunds(&w);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["CreditNote"]["CreditNoteID"], note["CreditNoteID"]);
    assert_eq!(out[0]["Account"]["Code"], "090", "paid out of the account mapped for card payments");
    assert_eq!(dec(&out[0]["Amount"]), Decimal::from_str("40.00").unwrap());
    let after = invoice(&w);
    assert_eq!((after["Status"].as_str(), dec(&after["AmountDue"])), (Some("PAID"), Decimal::ZERO), "untouched");

    let synced = events_of(&w.inbox, "payment.synced").await;
    assert_eq!(synced.len(), 1);
    let data = &synced[0]["detail"]["data"];
    assert_eq!((data["action"].as_str(), data["refund"].as_bool()), (Some("refunded"), Some(true)), "{data}");
    assert_eq!(data["xero_credit_note_id"], note["CreditNoteID"]);
    assert_eq!(data["xero_payment_id"], out[0]["PaymentID"]);
    assert!(data["xero_credit_note_url"].as_str().unwrap().contains(note["CreditNoteID"].as_str().unwrap()));
    let r = record(&w, "acct-refund", "rfd-1").await;
    assert_eq!((r.status, r.refund), (PaymentSyncStatus::Synced, true));
    let api = invoice_api(&w, "acct-refund").await;
    let shown = api["payments"].as_array().unwrap().iter().find(|p| p["payment_id"] == "rfd-1").unwrap().clone();
    assert_eq!((shown["refund"].as_bool(), shown["status"].as_str()), (Some(true), Some("SYNCED")), "{shown}");
    assert_eq!(shown["xero_credit_note_id"], note["CreditNoteID"]);

    // The same refund again, under another delivery id: nothing more in Xero.
    deliver(&w, &refund("acct-refund", "dlv-refund-2", "rfd-1", "40.00")).await;
    w.work_push_queue().await;
    assert_eq!((credit_notes(&w).len(), refunds(&w).len(), w.emu.counters().total_calls()), (1, 1, 2));

    // Xero shows the credit note and its payment back: the platform hears nothing new.
    w.inbox.drain().await.unwrap();
    w.emu.clock().advance(Duration::from_secs(60));
    import(&w.importer.app, &ImportPolicy::default(), &key("acct-refund")).await.unwrap();
    let drained = w.inbox.drain().await.unwrap();
    let kinds: Vec<&Value> = drained.iter().map(|e| &e["detail-type"]).collect();
    assert!(
        !kinds.iter().any(|k| *k == "payment.recorded" || *k == "invoice.payment_status_changed"),
        "our own refund is not announced back: {kinds:?}"
    );
}

#[tokio::test]
async fn a_refund_whose_answers_were_lost_is_found_by_its_number_and_never_written_twice() {
    let w = paid("acct-refund-lost").await;
    let faults = w.emu.faults();
    // Both writes reach Xero and their answers are lost on the way back.
    let lost_note = faults.garbled_after_write(Some("PUT"), "/api.xro/2.0/creditnotes");
    let lost_payment = faults.garbled_after_write(Some("PUT"), "/api.xro/2.0/payments");
    deliver(&w, &refund("acct-refund-lost", "dlv-refund-lost-1", "rfd-1", "25.50")).await;
    w.work_push_queue().await;

    assert_eq!((faults.fired(lost_note), faults.fired(lost_payment)), (1, 1), "the faults were met");
    assert_eq!(credit_notes(&w).len(), 1, "one credit note: {:?}", credit_notes(&w));
    assert_eq!(refunds(&w).len(), 1, "one refund payment: {:?}", refunds(&w));
    assert_eq!(calls(&w, PUT_CREDIT_NOTES), 1, "found, not written again");
    assert_eq!(calls(&w, PUT_PAYMENTS), 1, "found, not paid out again");
    let r = record(&w, "acct-refund-lost", "rfd-1").await;
    assert_eq!(r.status, PaymentSyncStatus::Synced);
    assert_eq!(r.xero_credit_note_id.map(|id| json!(id)), Some(credit_notes(&w)[0]["CreditNoteID"].clone()));
    assert_eq!(events_of(&w.inbox, "payment.synced").await.len(), 1);
}

#[tokio::test]
async fn ten_deliveries_of_one_refund_pay_it_out_once() {
    let account = "acct-refund-ten";
    let w = paid(account).await;
    for n in 0..10 {
        deliver(&w, &refund(account, &format!("dlv-refund-ten-{n}"), "rfd-1", "40.00")).await;
    }
    w.work_push_queue().await;
    w.work_push_queue().await;

    assert_eq!((calls(&w, PUT_CREDIT_NOTES), calls(&w, PUT_PAYMENTS)), (1, 1), "{:?}", w.emu.counters());
    assert_eq!((credit_notes(&w).len(), refunds(&w).len()), (1, 1));
    assert_eq!(events_of(&w.inbox, "payment.synced").await.len(), 1, "announced once");
}

#[tokio::test]
async fn an_invoice_pushed_before_contacts_were_kept_reads_its_contact_once_for_the_refund() {
    let w = paid("acct-refund-old").await;
    let store = w.aws.store();
    let id = PlatformInvoiceId::parse("inv-1").unwrap();
    let mut old = store.get_sync_record(&key("acct-refund-old"), &id).await.unwrap().unwrap();
    assert!(old.xero_contact_id.is_some(), "kept when the invoice was pushed");
    old.xero_contact_id = None;
    store.save_sync_record(&old).await.unwrap();

    deliver(&w, &refund("acct-refund-old", "dlv-refund-old-1", "rfd-1", "10.00")).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 3, "the invoice read, then two writes: {:?}", w.emu.counters());
    assert_eq!(credit_notes(&w)[0]["Contact"]["ContactID"], invoice(&w)["Contact"]["ContactID"]);
}

#[tokio::test]
async fn voiding_a_refund_deletes_its_payment_and_voids_its_credit_note() {
    let w = paid("acct-refund-void").await;
    deliver(&w, &refund("acct-refund-void", "dlv-refund-void-1", "rfd-1", "40.00")).await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    let mut voided = void("acct-refund-void", "dlv-refund-void-2", "rfd-1");
    voided["occurred_at"] = json!("2026-11-23T10:00:00Z");
    deliver(&w, &voided).await;
    w.work_push_queue().await;

    assert_eq!(refunds(&w)[0]["Status"], "DELETED");
    assert_eq!(credit_notes(&w)[0]["Status"], "VOIDED", "it holds no credit");
    let r = record(&w, "acct-refund-void", "rfd-1").await;
    assert_eq!(r.status, PaymentSyncStatus::Voided);
    let synced = events_of(&w.inbox, "payment.synced").await;
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0]["detail"]["data"]["action"], "voided");
    assert_eq!(invoice(&w)["Status"], "PAID", "the invoice's own payment stands");
}

#[tokio::test]
async fn a_refund_without_a_sales_account_in_the_settings_fails_saying_which_setting() {
    let w = paid("acct-refund-nosales").await;
    let mut s = w.aws.store().get_settings(&key("acct-refund-nosales")).await.unwrap();
    s.settings.default_sales_account_code = None;
    w.aws.store().put_settings(&key("acct-refund-nosales"), s.version, &s.settings).await.unwrap();
    deliver(&w, &refund("acct-refund-nosales", "dlv-refund-nosales-1", "rfd-1", "40.00")).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0);
    let failed = events_of(&w.inbox, "payment.sync_failed").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["detail"]["data"]["reasons"][0].as_str().unwrap().contains("default_sales_account_code"));
}
