//! Issue 19, attachments: a file declared through the invoice API, uploaded to the bucket on
//! moto, whose object-created notification reaches the push queue as S3 sends it, is attached
//! to the Xero invoice once.

use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::settings::NewInvoiceStatus;

use crate::helpers::*;

const PUT_ATTACHMENT: (&str, &str) = ("PUT", "/api.xro/2.0/invoices/{id}/attachments/{id}");

fn files_path(account: &str, invoice: &str) -> String {
    format!("/accounts/{account}/connections/{}/invoices/{invoice}/attachments", demo::NZ_TENANT_ID)
}

fn declaration(name: &str, content_type: &str, size: usize) -> String {
    json!({ "file_name": name, "content_type": content_type, "size": size }).to_string()
}

/// Declares the file and uploads `bytes` to the URL given, as the platform would.
async fn upload(w: &World, account: &str, invoice: &str, name: &str, bytes: &[u8]) -> Value {
    let response =
        w.invoice_api("POST", &files_path(account, invoice), &declaration(name, "application/pdf", bytes.len())).await;
    assert_eq!(response.status(), 201, "{}", body(&response));
    let offered = json(&response);
    put_file(&offered, bytes).await;
    offered
}

async fn put_file(offered: &Value, bytes: &[u8]) {
    let mut request = reqwest::Client::new().put(offered["url"].as_str().unwrap()).body(bytes.to_vec());
    for (name, value) in offered["headers"].as_object().unwrap() {
        // reqwest sets the length from the body; a body of another length is the test's point.
        if name != "content-length" {
            request = request.header(name.as_str(), value.as_str().unwrap());
        }
    }
    let answer = request.send().await.expect("the bucket answers");
    assert!(answer.status().is_success(), "{}", answer.status());
}

/// Every message on the push queue, sent `times` times in all: a notification delivered again.
async fn deliver_queue(w: &World, times: usize) {
    let sqs = aws_sdk_sqs::Client::new(&w.aws.sdk);
    let url = w.aws.stack.reference("PushQueue");
    let received = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
    let messages = received.messages.unwrap_or_default();
    assert!(!messages.is_empty(), "S3 told the queue of the upload");
    for m in messages {
        for _ in 1..times {
            sqs.send_message().queue_url(url).message_body(m.body().unwrap()).send().await.unwrap();
        }
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
}

fn xero_invoice_id(w: &World, number: &str) -> uuid::Uuid {
    in_xero(w, number)[0]["InvoiceID"].as_str().unwrap().parse().unwrap()
}

fn put_calls(w: &World) -> u64 {
    w.emu.counters().calls_to(PUT_ATTACHMENT.0, PUT_ATTACHMENT.1)
}

#[tokio::test]
async fn a_file_for_a_synced_invoice_is_attached_once_though_its_notification_comes_ten_times_and_a_new_upload_replaces_it()
 {
    let account = "acct-files";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    deliver(&w, &example_event(account, "dlv-files-1")).await;
    w.work_push_queue().await;
    let invoice = xero_invoice_id(&w, "INV-1001");
    w.emu.reset_counters();
    w.inbox.drain().await.unwrap();

    let pdf = b"%PDF-1.7 job sheet for INV-1001".to_vec();
    let offered = upload(&w, account, "inv-1001", "Job sheet 1001.pdf", &pdf).await;
    assert_eq!((offered["method"].as_str(), offered["replaces"].as_bool()), (Some("PUT"), Some(false)));
    deliver_queue(&w, 10).await;
    w.work_push_queue().await;
    let attached = w.emu.attachments(demo::NZ_TENANT_ID, invoice);
    assert_eq!(attached.len(), 1);
    assert_eq!((attached[0].file_name.as_str(), &attached[0].content), ("Job sheet 1001.pdf", &pdf));
    assert!(!attached[0].include_online, "not shown online unless the settings say so");
    assert_eq!((put_calls(&w), w.emu.counters().total_calls()), (1, 1), "one Xero call for the file");
    let synced = events_of(&w.inbox, "attachment.synced").await;
    assert_eq!(synced.len(), 1);
    let data = &synced[0]["detail"]["data"];
    assert_eq!((&data["document_id"], &data["replaced"]), (&json!("inv-1001"), &json!(false)));
    assert_eq!(data["xero_attachment_id"], json!(attached[0].attachment_id));
    let status = json(
        &w.invoice_api("GET", &format!("/accounts/{account}/connections/{}/invoices/inv-1001", demo::NZ_TENANT_ID), "")
            .await,
    );
    assert_eq!(status["attachments"][0]["state"], "attached", "{status}");

    // The same name again replaces the file in Xero: still one attachment.
    let newer = b"%PDF-1.7 job sheet, signed".to_vec();
    let offered = upload(&w, account, "inv-1001", "Job sheet 1001.pdf", &newer).await;
    assert_eq!(offered["replaces"], true);
    w.work_push_queue().await;
    let attached_again = w.emu.attachments(demo::NZ_TENANT_ID, invoice);
    assert_eq!(attached_again.len(), 1);
    assert_eq!((attached_again[0].attachment_id, &attached_again[0].content), (attached[0].attachment_id, &newer));
    assert_eq!(events_of(&w.inbox, "attachment.synced").await[0]["detail"]["data"]["replaced"], true);
}

#[tokio::test]
async fn a_file_too_large_of_a_type_xero_refuses_with_a_path_in_its_name_or_for_an_unknown_invoice_is_refused_by_name()
{
    let account = "acct-files-bad";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    deliver(&w, &example_event(account, "dlv-files-bad")).await;
    w.work_push_queue().await;
    w.emu.reset_counters();
    let path = files_path(account, "inv-1001");
    for (declared, field) in [
        (declaration("job.pdf", "application/pdf", 10 * 1024 * 1024 + 1), "size"),
        (declaration("setup.exe", "application/octet-stream", 10), "file_name"),
        (declaration("../job.pdf", "application/pdf", 10), "file_name"),
        (declaration("photo.png", "application/pdf", 10), "content_type"),
    ] {
        let response = w.invoice_api("POST", &path, &declared).await;
        assert_eq!(response.status(), 400, "{declared}");
        let problems = json(&response);
        assert_eq!(problems["problems"][0]["field"], field, "{problems}");
    }
    let unknown = w
        .invoice_api("POST", &files_path(account, "inv-never-sent"), &declaration("a.pdf", "application/pdf", 9))
        .await;
    assert_eq!(unknown.status(), 404);
    assert!(body(&unknown).contains("send its invoice event first"), "{}", body(&unknown));
    assert_eq!(w.emu.counters().total_calls(), 0);
}

#[tokio::test]
async fn a_file_larger_than_declared_is_not_attached_and_the_platform_is_told_why() {
    let account = "acct-files-lie";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    deliver(&w, &example_event(account, "dlv-files-lie")).await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    let response =
        w.invoice_api("POST", &files_path(account, "inv-1001"), &declaration("a.pdf", "application/pdf", 4)).await;
    assert_eq!(response.status(), 201);
    // S3 refuses a body of another length than the URL signed; moto checks no signature, so
    // this stands for a bucket that let one through: the worker still refuses it.
    put_file(&json(&response), b"more than four bytes").await;
    w.work_push_queue().await;
    assert_eq!(put_calls(&w), 0);
    let failed = events_of(&w.inbox, "attachment.sync_failed").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["detail"]["data"]["reasons"][0].as_str().unwrap().contains("not the 4 declared"), "{failed:?}");
}

#[tokio::test]
async fn a_file_for_an_invoice_not_yet_in_xero_waits_for_it_and_is_attached_once_it_is() {
    let account = "acct-files-wait";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    // Refused first: its tax rate is not mapped.
    let mut refused = example_event(account, "dlv-wait-1");
    refused["invoice"]["lines"][0]["tax_rate_id"] = json!("vat");
    deliver(&w, &refused).await;
    w.work_push_queue().await;
    assert!(in_xero(&w, "INV-1001").is_empty());

    upload(&w, account, "inv-1001", "job.pdf", b"%PDF-1.7 waits").await;
    w.work_push_queue_for(1).await;
    let status = json(
        &w.invoice_api("GET", &format!("/accounts/{account}/connections/{}/invoices/inv-1001", demo::NZ_TENANT_ID), "")
            .await,
    );
    assert_eq!(status["attachments"][0]["state"], "waiting", "{status}");
    assert_eq!(put_calls(&w), 0);

    let mut fixed = example_event(account, "dlv-wait-2");
    fixed["occurred_at"] = json!((w.now() + chrono::Duration::seconds(1)).to_rfc3339());
    deliver(&w, &fixed).await;
    w.work_push_queue().await;
    let invoice = xero_invoice_id(&w, "INV-1001");
    assert_eq!(w.emu.attachments(demo::NZ_TENANT_ID, invoice).len(), 1, "attached once the invoice is in Xero");
    assert_eq!(put_calls(&w), 1);
}

#[tokio::test]
async fn a_file_for_an_organisation_connected_without_the_attachments_scope_waits_for_a_reconnection() {
    let without = "openid profile email offline_access accounting.contacts accounting.invoices accounting.payments \
                   accounting.settings.read";
    let account = "acct-files-scope";
    let mut w =
        ready_with(account, NewInvoiceStatus::Authorised, Options { scopes: Some(without), ..Default::default() })
            .await;
    let listed = json(&w.api("GET", &format!("/accounts/{account}/connections")).await);
    let missing = listed["connections"][0]["features_not_allowed"].as_array().unwrap().clone();
    assert!(
        missing.contains(&json!({ "feature": "attachments", "needs_scope": "accounting.attachments" })),
        "{listed}"
    );
    deliver(&w, &example_event(account, "dlv-scope-files")).await;
    w.work_push_queue().await;

    let offered = upload(&w, account, "inv-1001", "job.pdf", b"%PDF-1.7 held").await;
    assert!(offered["held"].as_str().unwrap().starts_with("reconnect to allow attachments"), "{offered}");
    w.work_push_queue().await;
    let status = json(
        &w.invoice_api("GET", &format!("/accounts/{account}/connections/{}/invoices/inv-1001", demo::NZ_TENANT_ID), "")
            .await,
    );
    assert!(
        status["attachments"][0]["reason"].as_str().unwrap().starts_with("reconnect to allow attachments"),
        "{status}"
    );
    assert_eq!(put_calls(&w), 0);

    w.connect.oauth.scopes =
        xero_sync_runtime::config::DEFAULT_XERO_SCOPES.split_whitespace().map(str::to_owned).collect();
    w.connect_account(account).await;
    w.work_push_queue().await;
    w.work_push_queue().await;
    let invoice = xero_invoice_id(&w, "INV-1001");
    assert_eq!(w.emu.attachments(demo::NZ_TENANT_ID, invoice).len(), 1, "released by the reconnection");
}

#[tokio::test]
async fn a_file_for_a_credit_note_is_attached_to_it_and_shown_online_when_the_settings_say_so() {
    let account = "acct-files-cn";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let mut online = settings(NewInvoiceStatus::Authorised);
    online.attachments_online = true;
    w.aws.store().put_settings(&key(account), 1, &online).await.unwrap();
    deliver(&w, &example_event(account, "dlv-files-cn-inv")).await;
    w.work_push_queue().await;
    deliver(&w, &contract_example("credit-note-created.json", account, "dlv-files-cn")).await;
    w.work_push_queue().await;
    let credit_note = w
        .emu
        .credit_notes(demo::NZ_TENANT_ID)
        .into_iter()
        .find(|c| c["CreditNoteNumber"] == "CN-2001")
        .expect("the credit note is in Xero");
    let credit_note: uuid::Uuid = credit_note["CreditNoteID"].as_str().unwrap().parse().unwrap();

    let path = format!("/accounts/{account}/connections/{}/credit-notes/cn-2001/attachments", demo::NZ_TENANT_ID);
    let response = w.invoice_api("POST", &path, &declaration("returned.pdf", "application/pdf", 9)).await;
    assert_eq!(response.status(), 201, "{}", body(&response));
    put_file(&json(&response), b"%PDF-1.7 ").await;
    w.work_push_queue().await;
    let attached = w.emu.attachments(demo::NZ_TENANT_ID, credit_note);
    assert_eq!(attached.len(), 1);
    assert!(attached[0].include_online, "a sales credit note's file is shown online under attachments_online");
    let synced = events_of(&w.inbox, "attachment.synced").await;
    assert_eq!(synced.last().unwrap()["detail"]["data"]["document"], "credit_note");
}
