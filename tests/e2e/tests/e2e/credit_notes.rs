//! Issue 18, credit notes: `credit_note.*` from the platform become AUTHORISED customer credit
//! notes in Xero with their own numbers, allocated to their invoice as far as it has something
//! due; an edit or a void takes off what Xero requires gone first. Exactly once, never echoed.

use std::time::Duration;

use scheduled_import::import::{ImportPolicy, import};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::credit_note::{CreditNoteRecord, CreditNoteSyncStatus};
use xero_sync_domain::model::PlatformCreditNoteId;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_testkit::sent_emails;
use xero_sync_xero::ApiRequest;

use crate::helpers::*;
use crate::payments::{dec, invoice, payment, with_invoice};

const PUT_CREDIT_NOTES: (&str, &str) = ("PUT", "/api.xro/2.0/creditnotes");
/// The example credit note's total: 1.5 × 12.40, plus 15 % GST.
const CREDIT: &str = "21.39";

fn calls(w: &World, (method, endpoint): (&str, &str)) -> u64 {
    w.emu.counters().calls_to(method, endpoint)
}

/// Credit note `id` (numbered `number`) for invoice `inv-1` and its customer.
fn credit_note(account: &str, delivery: &str, id: &str, number: &str) -> Value {
    let mut e = contract_example("credit-note-created.json", account, delivery);
    e["credit_note"]["id"] = json!(id);
    e["credit_note"]["number"] = json!(number);
    e["credit_note"]["invoice_id"] = json!("inv-1");
    e["customer"] = new_customer("cust-1", "Totara Homes");
    e
}

fn with_event(mut e: Value, kind: &str, at: &str) -> Value {
    e["delivery_id"] = json!(format!("{}-{kind}-{at}", e["delivery_id"].as_str().unwrap()).replace(['T', 'Z'], ""));
    e["event"] = json!(kind);
    e["occurred_at"] = json!(at);
    e
}

fn xero_credit_notes(w: &World) -> Vec<Value> {
    w.emu.credit_notes(demo::NZ_TENANT_ID)
}

async fn record(w: &World, account: &str, id: &str) -> CreditNoteRecord {
    let id = PlatformCreditNoteId::parse(id).unwrap();
    w.aws.store().get_credit_note_record(&key(account), &id).await.unwrap().unwrap()
}

fn money(v: &Value) -> String {
    dec(v).normalize().to_string()
}

#[tokio::test]
async fn a_credit_note_for_an_invoice_is_allocated_to_it_in_two_calls_and_not_announced_back() {
    let w = with_invoice("acct-cn", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &credit_note("acct-cn", "dlv-cn-1", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;

    assert_eq!(
        (w.emu.counters().total_calls(), calls(&w, PUT_CREDIT_NOTES)),
        (2, 1),
        "the credit note, then its allocation: {:?}",
        w.emu.counters()
    );
    let notes = xero_credit_notes(&w);
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!((note["Type"].as_str(), note["CreditNoteNumber"].as_str()), (Some("ACCRECCREDIT"), Some("CN-2001")));
    assert_eq!(note["Status"], "PAID", "all of it allocated: {note}");
    assert_eq!(money(&note["Total"]), CREDIT);
    assert_eq!(note["Contact"]["ContactID"], invoice(&w)["Contact"]["ContactID"], "to the invoice's customer");
    assert_eq!(note["LineItems"][0]["AccountCode"], "260");
    assert_eq!(note["LineItems"][0]["TaxType"], "OUTPUT2", "tax mapped as an invoice's");
    assert_eq!(money(&note["Allocations"][0]["Amount"]), CREDIT);
    let inv = invoice(&w);
    assert_eq!((money(&inv["AmountCredited"]), money(&inv["AmountDue"])), (CREDIT.into(), "132.78".into()));

    let synced = events_of(&w.inbox, "credit_note.synced").await;
    assert_eq!(synced.len(), 1);
    let data = &synced[0]["detail"]["data"];
    assert_eq!((data["action"].as_str(), data["allocated"].as_str()), (Some("created"), Some(CREDIT)), "{data}");
    assert_eq!(data["xero_credit_note_id"], note["CreditNoteID"]);
    assert_eq!(data["unallocated_reason"], Value::Null);
    assert!(data["xero_url"].as_str().unwrap().contains(note["CreditNoteID"].as_str().unwrap()));
    let r = record(&w, "acct-cn", "cn-1").await;
    assert_eq!((r.status, r.allocated.map(|a| a.to_string())), (CreditNoteSyncStatus::Synced, Some(CREDIT.into())));

    // The same credit note again under another delivery id: nothing more in Xero.
    deliver(&w, &credit_note("acct-cn", "dlv-cn-2", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 2);

    // Xero shows the credit back on the invoice: our own allocation is no news.
    w.inbox.drain().await.unwrap();
    w.emu.clock().advance(Duration::from_secs(60));
    import(&w.importer.app, &ImportPolicy::default(), &key("acct-cn")).await.unwrap();
    let kinds: Vec<Value> = w.inbox.drain().await.unwrap().into_iter().map(|e| e["detail-type"].clone()).collect();
    assert!(!kinds.contains(&json!("invoice.payment_status_changed")), "our own credit is not announced: {kinds:?}");
}

#[tokio::test]
async fn a_credit_note_larger_than_what_is_due_is_allocated_for_what_is_due_and_the_rest_stays_as_credit() {
    let w = with_invoice("acct-cn-part", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-cn-part", "dlv-cn-part-pay", "pay-1", "150.00")).await;
    w.work_push_queue().await;
    deliver(&w, &credit_note("acct-cn-part", "dlv-cn-part-1", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;

    let note = xero_credit_notes(&w).remove(0);
    assert_eq!(money(&note["Allocations"][0]["Amount"]), "4.17", "what the invoice still had due");
    assert_eq!((note["Status"].as_str(), money(&note["RemainingCredit"])), (Some("AUTHORISED"), "17.22".into()));
    assert_eq!(invoice(&w)["Status"], "PAID");
    let synced = events_of(&w.inbox, "credit_note.synced").await;
    let data = &synced[0]["detail"]["data"];
    assert_eq!(data["allocated"], "4.17");
    assert!(data["unallocated_reason"].as_str().unwrap().contains("17.22 stays as credit"), "{data}");

    // A second credit on the now paid invoice stays whole with the customer, and says why.
    deliver(&w, &credit_note("acct-cn-part", "dlv-cn-part-2", "cn-2", "CN-2002")).await;
    w.work_push_queue().await;
    let second = xero_credit_notes(&w).into_iter().find(|c| c["CreditNoteNumber"] == "CN-2002").unwrap();
    assert!(second["Allocations"].as_array().is_none_or(Vec::is_empty));
    let synced = events_of(&w.inbox, "credit_note.synced").await;
    assert_eq!(synced[0]["detail"]["data"]["allocated"], Value::Null);
    assert!(synced[0]["detail"]["data"]["unallocated_reason"].as_str().unwrap().contains("paid in full"));
}

#[tokio::test]
async fn a_credit_note_naming_no_invoice_goes_to_the_customers_contact_unallocated() {
    let w = ready("acct-cn-free", NewInvoiceStatus::Authorised).await;
    let mut body = credit_note("acct-cn-free", "dlv-cn-free-1", "cn-1", "CN-2001");
    body["credit_note"].as_object_mut().unwrap().remove("invoice_id");
    body["customer"] = new_customer("cust-9", "Rimu Roofing");
    deliver(&w, &body).await;
    w.work_push_queue().await;
    let note = xero_credit_notes(&w).remove(0);
    assert_eq!((note["Status"].as_str(), money(&note["RemainingCredit"])), (Some("AUTHORISED"), CREDIT.into()));
    let contact =
        w.emu.contacts(demo::NZ_TENANT_ID).into_iter().find(|c| c["ContactID"] == note["Contact"]["ContactID"]);
    assert_eq!(contact.unwrap()["ContactNumber"], "cust-9", "Xero created the customer's contact with it");
    let synced = events_of(&w.inbox, "credit_note.synced").await;
    assert_eq!(
        (synced[0]["detail"]["data"]["invoice_id"].clone(), synced[0]["detail"]["data"]["allocated"].clone()),
        (Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn an_allocated_credit_note_that_changes_is_unallocated_first_then_updated_and_allocated_again() {
    let w = with_invoice("acct-cn-edit", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &credit_note("acct-cn-edit", "dlv-cn-edit-1", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();

    let mut changed = with_event(
        credit_note("acct-cn-edit", "dlv-cn-edit-2", "cn-1", "CN-2001"),
        "credit_note.updated",
        "2026-11-22T05:00:00Z",
    );
    changed["credit_note"]["lines"][0]["quantity"] = json!("3");
    deliver(&w, &changed).await;
    w.work_push_queue().await;

    let counters = w.emu.counters();
    assert_eq!(
        (
            counters.calls_to("GET", "/api.xro/2.0/creditnotes"),
            counters.calls_to("POST", "/api.xro/2.0/creditnotes"),
            counters.total_calls()
        ),
        (1, 1, 4),
        "read it, remove its allocation, update it, allocate it again: {counters:?}"
    );
    let note = xero_credit_notes(&w).remove(0);
    assert_eq!(money(&note["Total"]), "42.78");
    assert_eq!(note["Allocations"].as_array().unwrap().len(), 1, "one allocation, the new one: {note}");
    assert_eq!(money(&note["Allocations"][0]["Amount"]), "42.78");
    assert_eq!(money(&invoice(&w)["AmountCredited"]), "42.78");
    let synced = events_of(&w.inbox, "credit_note.synced").await;
    let data = &synced[0]["detail"]["data"];
    assert_eq!(
        (data["action"].as_str(), data["removed"]["allocations"].as_u64()),
        (Some("updated"), Some(1)),
        "{data}"
    );
}

#[tokio::test]
async fn voiding_a_credit_note_paid_out_in_xero_deletes_the_refund_then_voids_it() {
    let w = ready("acct-cn-void", NewInvoiceStatus::Authorised).await;
    let mut body = credit_note("acct-cn-void", "dlv-cn-void-1", "cn-1", "CN-2001");
    body["credit_note"].as_object_mut().unwrap().remove("invoice_id");
    deliver(&w, &body).await;
    w.work_push_queue().await;
    let note = xero_credit_notes(&w).remove(0);
    // The bookkeeper pays part of the credit out in Xero.
    let connection = w.connections("acct-cn-void").await.remove(0);
    let refund = json!({ "Payments": [{ "CreditNote": { "CreditNoteID": note["CreditNoteID"] }, "Account": { "Code": "090" },
        "Date": "2026-11-23", "Amount": "5.00" }]});
    w.worker.app.tokens.put::<_, Value>(&connection, &ApiRequest::new("/Payments"), &refund).await.unwrap();
    w.inbox.drain().await.unwrap();

    deliver(&w, &with_event(body.clone(), "credit_note.voided", "2026-11-23T01:00:00Z")).await;
    w.work_push_queue().await;
    assert_eq!(xero_credit_notes(&w)[0]["Status"], "VOIDED");
    let paid_out = w.emu.payments(demo::NZ_TENANT_ID);
    assert_eq!(paid_out[0]["Status"], "DELETED", "the refund went first, as Xero requires");
    assert_eq!(record(&w, "acct-cn-void", "cn-1").await.status, CreditNoteSyncStatus::Voided);
    let synced = events_of(&w.inbox, "credit_note.synced").await;
    let data = &synced[0]["detail"]["data"];
    assert_eq!((data["action"].as_str(), data["status"].as_str()), (Some("voided"), Some("VOIDED")));
    assert_eq!(data["removed"]["refunds"], 1, "and says so: {data}");

    // Changing it now cannot bring it back, and says so.
    deliver(&w, &with_event(body, "credit_note.updated", "2026-11-23T02:00:00Z")).await;
    w.work_push_queue().await;
    let failed = events_of(&w.inbox, "credit_note.sync_failed").await;
    assert!(failed[0]["detail"]["data"]["reasons"][0].as_str().unwrap().contains("voided"));
}

#[tokio::test]
async fn a_credit_note_before_its_invoice_waits_for_it_then_is_allocated() {
    let w = ready("acct-cn-early", NewInvoiceStatus::Authorised).await;
    deliver(&w, &credit_note("acct-cn-early", "dlv-cn-early-1", "cn-1", "CN-2001")).await;
    let run = w.work_push_queue_for(0).await;
    assert_eq!((run.held, w.emu.counters().total_calls()), (1, 0), "{run:?}");
    let r = record(&w, "acct-cn-early", "cn-1").await;
    assert_eq!(
        (r.status, r.reason.as_deref()),
        (CreditNoteSyncStatus::Held, Some("waiting for the invoice to reach Xero"))
    );
    let invoice_event =
        event("acct-cn-early", "dlv-cn-early-inv", "inv-1", "INV-1001", new_customer("cust-1", "Totara Homes"));
    deliver(&w, &invoice_event).await;
    w.work_push_queue().await;
    assert_eq!(money(&invoice(&w)["AmountCredited"]), CREDIT, "the credit followed its invoice");
}

#[tokio::test]
async fn a_credit_note_whose_answers_were_lost_is_written_and_allocated_once() {
    let w = with_invoice("acct-cn-lost", NewInvoiceStatus::Authorised, Options::default()).await;
    let faults = w.emu.faults();
    let lost_note = faults.garbled_after_write(Some("PUT"), "/api.xro/2.0/creditnotes");
    let lost_allocation = faults.garbled_after_write(Some("PUT"), "/api.xro/2.0/creditnotes/*");
    deliver(&w, &credit_note("acct-cn-lost", "dlv-cn-lost-1", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;
    assert_eq!((faults.fired(lost_note), faults.fired(lost_allocation)), (1, 1), "the faults were met");
    let notes = xero_credit_notes(&w);
    assert_eq!(notes.len(), 1, "one credit note: {notes:?}");
    assert_eq!(notes[0]["Allocations"].as_array().unwrap().len(), 1, "allocated once: {}", notes[0]);
    assert_eq!(money(&invoice(&w)["AmountCredited"]), CREDIT);
    assert_eq!(events_of(&w.inbox, "credit_note.synced").await.len(), 1);
}

#[tokio::test]
async fn ten_deliveries_of_one_credit_note_write_it_and_its_allocation_once() {
    let account = "acct-cn-ten";
    let w = with_invoice(account, NewInvoiceStatus::Authorised, Options::default()).await;
    let event = credit_note(account, "dlv-cn-ten-0", "cn-1", "CN-2001");
    // The platform's retries of one delivery, then nine more deliveries of the same credit note.
    for n in 0..10 {
        let response = w.post_webhook(&event.to_string(), None).await;
        assert_eq!(response.status(), if n == 0 { 202 } else { 200 }, "{}", body(&response));
    }
    for n in 1..10 {
        deliver(&w, &credit_note(account, &format!("dlv-cn-ten-{n}"), "cn-1", "CN-2001")).await;
    }
    w.work_push_queue().await;
    w.work_push_queue().await;

    assert_eq!(calls(&w, PUT_CREDIT_NOTES), 1, "{:?}", w.emu.counters());
    assert_eq!(w.emu.counters().calls_to("PUT", "/api.xro/2.0/creditnotes/{id}/allocations"), 1);
    let notes = xero_credit_notes(&w);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["Allocations"].as_array().unwrap().len(), 1, "allocated once: {}", notes[0]);
    assert_eq!(money(&invoice(&w)["AmountCredited"]), CREDIT);
    assert_eq!(events_of(&w.inbox, "credit_note.synced").await.len(), 1, "announced once");
}

#[tokio::test]
async fn a_credit_note_the_settings_cannot_map_fails_naming_the_line_with_one_email() {
    let w = with_invoice("acct-cn-bad", NewInvoiceStatus::Authorised, Options::default()).await;
    let mut body = credit_note("acct-cn-bad", "dlv-cn-bad-1", "cn-1", "CN-2001");
    body["credit_note"]["lines"][0]["tax_rate_id"] = json!("vat");
    deliver(&w, &body).await;
    w.work_push_queue().await;
    assert_eq!(w.emu.counters().total_calls(), 0);
    let failed = events_of(&w.inbox, "credit_note.sync_failed").await;
    assert_eq!(failed.len(), 1);
    let reason = failed[0]["detail"]["data"]["reasons"][0].as_str().unwrap().to_owned();
    assert!(reason.contains("credit_note.lines[0].tax_rate_id"), "{reason}");
    let emails = sent_emails(w.moto().endpoint(), OWNER).await.unwrap();
    assert_eq!(
        emails.iter().filter(|m| m.subject == "Credit note CN-2001 did not reach Xero").count(),
        1,
        "{emails:?}"
    );
}

#[tokio::test]
async fn an_edit_of_a_credit_note_that_paid_its_invoice_off_takes_back_its_credit_then_allocates_again() {
    let w = with_invoice("acct-cn-off", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-cn-off", "dlv-cn-off-pay", "pay-1", "132.78")).await;
    w.work_push_queue().await;
    deliver(&w, &credit_note("acct-cn-off", "dlv-cn-off-1", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;
    assert_eq!(invoice(&w)["Status"], "PAID", "the credit paid it off");
    w.inbox.drain().await.unwrap();

    let mut smaller = with_event(
        credit_note("acct-cn-off", "dlv-cn-off-2", "cn-1", "CN-2001"),
        "credit_note.updated",
        "2026-11-22T05:00:00Z",
    );
    smaller["credit_note"]["lines"][0]["quantity"] = json!("1");
    deliver(&w, &smaller).await;
    w.work_push_queue().await;
    let inv = invoice(&w);
    assert_eq!(
        (inv["Status"].as_str(), money(&inv["AmountCredited"]), money(&inv["AmountDue"])),
        (Some("AUTHORISED"), "14.26".into(), "7.13".into()),
        "the smaller credit is allocated again in full, not left aside as if the invoice were still paid"
    );
    let synced = events_of(&w.inbox, "credit_note.synced").await;
    assert_eq!(synced[0]["detail"]["data"]["allocated"], "14.26");

    // Xero shows the invoice's new state back: it is our own doing, not news.
    w.emu.clock().advance(Duration::from_secs(60));
    import(&w.importer.app, &ImportPolicy::default(), &key("acct-cn-off")).await.unwrap();
    let kinds: Vec<Value> = w.inbox.drain().await.unwrap().into_iter().map(|e| e["detail-type"].clone()).collect();
    assert!(!kinds.contains(&json!("invoice.payment_status_changed")), "{kinds:?}");
}

#[tokio::test]
async fn two_credit_notes_for_one_invoice_in_one_batch_share_what_it_has_due() {
    let w = with_invoice("acct-cn-two", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &payment("acct-cn-two", "dlv-cn-two-pay", "pay-1", "140.00")).await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    deliver(&w, &credit_note("acct-cn-two", "dlv-cn-two-1", "cn-1", "CN-2001")).await;
    deliver(&w, &credit_note("acct-cn-two", "dlv-cn-two-2", "cn-2", "CN-2002")).await;
    w.work_push_queue().await;

    let allocations: Vec<String> = xero_credit_notes(&w)
        .iter()
        .flat_map(|c| c["Allocations"].as_array().cloned().unwrap_or_default())
        .map(|a| money(&a["Amount"]))
        .collect();
    assert_eq!(allocations, ["14.17"], "what was due, once; nothing asked of Xero that it must refuse");
    assert_eq!(
        w.emu.counters().calls_to("PUT", "/api.xro/2.0/creditnotes/{id}/allocations"),
        1,
        "{:?}",
        w.emu.counters()
    );
    assert_eq!(invoice(&w)["Status"], "PAID");
    let reasons: Vec<String> = events_of(&w.inbox, "credit_note.synced")
        .await
        .iter()
        .map(|e| e["detail"]["data"]["unallocated_reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("7.22 stays as credit")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("paid in full") || r.contains("nothing left due")), "{reasons:?}");
}

#[tokio::test]
async fn a_void_after_a_push_died_midway_looks_for_the_credit_note_before_forgetting_it() {
    let w = with_invoice("acct-cn-died", NewInvoiceStatus::Authorised, Options::default()).await;
    deliver(&w, &credit_note("acct-cn-died", "dlv-cn-died-1", "cn-1", "CN-2001")).await;
    w.work_push_queue().await;
    // As a push that died after Xero took the credit note leaves its record: claimed, no id.
    let store = w.aws.store();
    let mut died = record(&w, "acct-cn-died", "cn-1").await;
    (died.xero_credit_note_id, died.status, died.last_event_at, died.content_hash) =
        (None, CreditNoteSyncStatus::Pending, None, None);
    died.claimed_until = Some(w.now() - chrono::Duration::minutes(5));
    store.save_credit_note_record(&died).await.unwrap();
    // And one whose create never reached Xero at all.
    let mut never = xero_sync_domain::credit_note::CreditNoteRecord::new(
        &key("acct-cn-died"),
        PlatformCreditNoteId::parse("cn-2").unwrap(),
        "CN-2002",
        w.now(),
    );
    never.uncertain = true;
    store.save_credit_note_record(&never).await.unwrap();
    w.inbox.drain().await.unwrap();

    let voided = with_event(
        credit_note("acct-cn-died", "dlv-cn-died-2", "cn-1", "CN-2001"),
        "credit_note.voided",
        "2026-11-23T01:00:00Z",
    );
    let never_sent = with_event(
        credit_note("acct-cn-died", "dlv-cn-died-3", "cn-2", "CN-2002"),
        "credit_note.voided",
        "2026-11-23T01:00:00Z",
    );
    deliver(&w, &voided).await;
    deliver(&w, &never_sent).await;
    w.work_push_queue().await;
    assert_eq!(xero_credit_notes(&w)[0]["Status"], "VOIDED", "found by its number and voided");
    assert_eq!(money(&invoice(&w)["AmountCredited"]), "0", "its allocation taken back first");
    assert_eq!(record(&w, "acct-cn-died", "cn-2").await.status, CreditNoteSyncStatus::Voided, "looked for, not found");
    assert_eq!(events_of(&w.inbox, "credit_note.synced").await.len(), 2);
}

#[tokio::test]
async fn a_refund_xero_will_not_remove_fails_that_credit_note_alone() {
    let w = ready("acct-cn-stuck", NewInvoiceStatus::Authorised).await;
    let mut free = credit_note("acct-cn-stuck", "dlv-cn-stuck-1", "cn-1", "CN-2001");
    free["credit_note"].as_object_mut().unwrap().remove("invoice_id");
    deliver(&w, &free).await;
    w.work_push_queue().await;
    let note = xero_credit_notes(&w).remove(0);
    let connection = w.connections("acct-cn-stuck").await.remove(0);
    let refund = json!({ "Payments": [{ "CreditNote": { "CreditNoteID": note["CreditNoteID"] }, "Account": { "Code": "090" },
        "Date": "2026-11-23", "Amount": "5.00" }]});
    w.worker.app.tokens.put::<_, Value>(&connection, &ApiRequest::new("/Payments"), &refund).await.unwrap();
    w.inbox.drain().await.unwrap();

    // An edit of a credit note paid out is refused before anything is taken off it.
    let mut edit = with_event(free.clone(), "credit_note.updated", "2026-11-23T01:00:00Z");
    edit["credit_note"]["reference"] = json!("changed");
    deliver(&w, &edit).await;
    w.work_push_queue().await;
    let failed = events_of(&w.inbox, "credit_note.sync_failed").await;
    assert!(failed[0]["detail"]["data"]["reasons"][0].as_str().unwrap().contains("paid out in Xero"), "{failed:?}");
    assert_eq!(w.emu.payments(demo::NZ_TENANT_ID)[0]["Status"], "AUTHORISED", "the refund stands");

    // Xero refuses to remove the refund (reconciled): that void fails, another credit note in
    // the same batch goes through.
    let reconciled = json!({ "ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
        "Elements": [{ "ValidationErrors": [{ "Message": "This payment has been reconciled and cannot be deleted." }] }] });
    w.emu.faults().add(xero_emulator::FaultRule::new(
        Some("POST"),
        "/api.xro/2.0/payments/*",
        xero_emulator::FaultAction::Status { status: 400, body: Some(reconciled), retry_after: None },
    ));
    let void = with_event(free, "credit_note.voided", "2026-11-23T02:00:00Z");
    let mut other = credit_note("acct-cn-stuck", "dlv-cn-stuck-9", "cn-9", "CN-2009");
    other["credit_note"].as_object_mut().unwrap().remove("invoice_id");
    deliver(&w, &void).await;
    deliver(&w, &other).await;
    w.work_push_queue().await;
    let failed = events_of(&w.inbox, "credit_note.sync_failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["detail"]["data"]["credit_note_id"], "cn-1");
    assert!(failed[0]["detail"]["data"]["reasons"].to_string().contains("reconciled"));
    assert_eq!(record(&w, "acct-cn-stuck", "cn-9").await.status, CreditNoteSyncStatus::Synced);
}

#[tokio::test]
async fn bad_credit_notes_and_refunds_get_a_400_naming_every_problem_and_store_and_queue_nothing() {
    let w = World::new().await;
    w.connect_account("acct-cn-input").await;
    let stored_before = w.aws.item_count().await;
    let mut note = credit_note("acct-cn-input", "dlv-cn-input-1", "cn-1", " ");
    note["credit_note"]["currency"] = json!("Dollars");
    note["credit_note"]["lines"][0]["discount_rate"] = json!("150");
    let mut no_customer = credit_note("acct-cn-input", "dlv-cn-input-2", "cn-1", "CN-1");
    no_customer.as_object_mut().unwrap().remove("customer");
    let mut refund = contract_example("payment-refunded.json", "acct-cn-input", "dlv-cn-input-3");
    refund["payment"].as_object_mut().unwrap().remove("method");
    refund["payment"]["amount"] = json!("-40.00");
    let cases = [
        (note, vec!["credit_note.number", "credit_note.currency", "credit_note.lines[0].discount_rate"]),
        (no_customer, vec!["customer"]),
        (refund, vec!["payment.method", "payment.amount"]),
    ];
    for (body, fields) in cases {
        let response = w.post_webhook(&body.to_string(), None).await;
        let text = crate::helpers::body(&response);
        assert_eq!(response.status(), 400, "{text}");
        for field in fields {
            assert!(text.contains(field), "{field}: {text}");
        }
    }
    assert_eq!(w.aws.item_count().await, stored_before, "nothing stored");
    assert!(w.queued_pushes().await.is_empty(), "nothing queued");
}
