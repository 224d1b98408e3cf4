//! Attachments of invoices and credit notes: uploaded as raw bytes, listed in the spec's
//! `Attachments` shape, read back as they were sent, and refused where Xero refuses them.

use serde_json::{Value, json};
use uuid::Uuid;
use xero_emulator::Emulator;

use crate::helpers::*;
use crate::spec::accounting as spec;

const WITH_ATTACHMENTS: &str =
    "offline_access accounting.transactions accounting.contacts accounting.settings accounting.attachments";
const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n";
const TEN_MB: usize = 10 * 1024 * 1024;

async fn attachments_api(emu: &Emulator) -> Api {
    connected_api_with_scope(emu, WITH_ATTACHMENTS).await
}

/// Sends `bytes` as the body, as Xero's SDKs upload a file.
async fn upload(
    api: &Api,
    method: &str,
    path: &str,
    content_type: &str,
    bytes: &[u8],
    headers: &[(&str, &str)],
) -> Resp {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = api
        .client
        .request(method, format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .header("xero-tenant-id", api.tenant.to_string())
        .header("accept", "application/json")
        .header("content-type", content_type)
        .body(bytes.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("upload");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Resp { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
}

async fn put(api: &Api, path: &str, bytes: &[u8]) -> Resp {
    upload(api, "PUT", path, "application/octet-stream", bytes, &[]).await
}

/// The status, content type and bytes of a file read back.
async fn download(api: &Api, url: &str) -> (u16, String, Vec<u8>) {
    let resp = api
        .client
        .get(url)
        .bearer_auth(&api.token)
        .header("xero-tenant-id", api.tenant.to_string())
        .send()
        .await
        .expect("download");
    let status = resp.status().as_u16();
    let kind = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, kind, resp.bytes().await.expect("body").to_vec())
}

async fn invoice_id(api: &Api, number: &str) -> Uuid {
    uuid(&create_invoice(api, invoice(number, "100")).await["InvoiceID"])
}

fn bill(number: &str) -> Value {
    let mut bill = invoice(number, "100");
    bill["Type"] = json!("ACCPAY");
    bill["LineItems"][0]["AccountCode"] = json!("400");
    bill["LineItems"][0]["TaxType"] = json!("INPUT2");
    bill
}

async fn credit_note_id(api: &Api, note_type: &str) -> Uuid {
    let (account, tax) = if note_type == "ACCRECCREDIT" { ("200", "OUTPUT2") } else { ("400", "INPUT2") };
    let note = json!({"Type": note_type, "Contact": {"ContactNumber": "C-1001"}, "Status": "AUTHORISED",
        "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 20, "AccountCode": account, "TaxType": tax}]});
    let resp = api.put("/CreditNotes", &note).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    uuid(&resp.body["CreditNotes"][0]["CreditNoteID"])
}

fn uuid(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("a string")).expect("a uuid")
}

#[tokio::test]
async fn an_uploaded_pdf_is_listed_and_read_back_as_it_was_sent() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-1").await;
    emu.reset_counters();

    let created =
        upload(&api, "PUT", &format!("/Invoices/{id}/Attachments/Job%20sheet.pdf"), "application/pdf", PDF, &[]).await;
    assert_eq!(created.status, 200, "{}", created.text);
    spec("Attachments", &created.body);
    assert_eq!(created.body["Status"], "OK");
    let one = &created.body["Attachments"][0];
    assert_eq!(created.body["Attachments"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["FileName"], "Job sheet.pdf", "the path's name is percent-decoded");
    assert_eq!(one["MimeType"], "application/pdf");
    assert_eq!(one["ContentLength"], PDF.len());
    assert_eq!(one["IncludeOnline"], false, "IncludeOnline defaults to false");
    let url = one["Url"].as_str().expect("url").to_string();
    assert_eq!(url, format!("{}/Invoices/{id}/Attachments/Job%20sheet.pdf", api.base));

    let listed = api.get(&format!("/Invoices/{id}/Attachments")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    spec("Attachments", &listed.body);
    assert_eq!(listed.body["Attachments"], created.body["Attachments"]);

    let attachment_id = one["AttachmentID"].as_str().expect("id");
    let by_id = format!("{}/Invoices/{id}/Attachments/{attachment_id}", api.base);
    for url in [url.as_str(), by_id.as_str()] {
        assert_eq!(download(&api, url).await, (200, "application/pdf".to_string(), PDF.to_vec()), "{url}");
    }
    let missing = download(&api, &format!("{}/Invoices/{id}/Attachments/other.pdf", api.base)).await;
    assert_eq!(missing.0, 404);

    let stored = emu.attachments(NZ, id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].attachment_id, uuid(&one["AttachmentID"]));
    assert_eq!((stored[0].file_name.as_str(), stored[0].content_length), ("Job sheet.pdf", PDF.len()));
    assert_eq!(stored[0].content, PDF);
    let invoice = api.get(&format!("/Invoices/{id}")).await;
    assert_eq!(invoice.body["Invoices"][0]["HasAttachments"], true);

    let counters = emu.counters();
    assert_eq!(counters.calls_to("PUT", "/api.xro/2.0/invoices/{id}/attachments/{id}"), 1);
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/invoices/{id}/attachments/{id}"), 3);
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/invoices/{id}/attachments"), 1);
}

#[tokio::test]
async fn a_generic_content_type_gets_the_mime_type_of_the_file_extension() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-MIME").await;
    let resp = put(&api, &format!("/Invoices/{id}/Attachments/Photo.JPG"), b"\xff\xd8\xff\xe0jpeg").await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.body["Attachments"][0]["MimeType"], "image/jpeg");
    let typed = format!("/Invoices/{id}/Attachments/notes.txt");
    let resp = upload(&api, "PUT", &typed, "text/plain; charset=utf-8", b"call first", &[]).await;
    assert_eq!(resp.body["Attachments"][0]["MimeType"], "text/plain", "the sent type, without parameters");
}

#[tokio::test]
async fn the_same_file_name_uploaded_again_replaces_the_file_and_keeps_its_id() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-2").await;
    let path = format!("/Invoices/{id}/Attachments/quote.pdf");
    let first = put(&api, &path, PDF).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let attachment_id = first.body["Attachments"][0]["AttachmentID"].clone();

    let again = put(&api, &path, b"%PDF-1.7 second version").await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["Attachments"][0]["AttachmentID"], attachment_id);
    assert_eq!(again.body["Attachments"][0]["ContentLength"], 23);
    let updated = upload(&api, "POST", &path, "image/png", b"now a picture", &[]).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    spec("Attachments", &updated.body);
    assert_eq!(updated.body["Attachments"][0]["AttachmentID"], attachment_id);
    assert_eq!(updated.body["Attachments"][0]["MimeType"], "image/png");

    let stored = emu.attachments(NZ, id);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!((stored[0].attachment_id, stored[0].content.as_slice()), (uuid(&attachment_id), &b"now a picture"[..]));
    let listed = api.get(&format!("/Invoices/{id}/Attachments")).await;
    assert_eq!(listed.body["Attachments"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn include_online_is_kept_on_sales_documents_only() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let sales = invoice_id(&api, "ATT-3").await;
    let path = format!("/Invoices/{sales}/Attachments/terms.pdf");
    let online = put(&api, &format!("{path}?IncludeOnline=true"), PDF).await;
    assert_eq!(online.status, 200, "{}", online.text);
    assert_eq!(online.body["Attachments"][0]["IncludeOnline"], true);
    let posted = upload(&api, "POST", &format!("{path}?IncludeOnline=false"), "application/pdf", PDF, &[]).await;
    assert_eq!(posted.body["Attachments"][0]["IncludeOnline"], true, "a POST leaves the flag as it was");
    let put_again = put(&api, &path, PDF).await;
    assert_eq!(put_again.body["Attachments"][0]["IncludeOnline"], false, "a PUT sets it, false by default");
    let bad = put(&api, &format!("{path}?IncludeOnline=yes"), PDF).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.messages(), vec!["IncludeOnline must be true or false."]);

    let bill = uuid(&create_invoice(&api, bill("BILL-ATT")).await["InvoiceID"]);
    let resp = put(&api, &format!("/Invoices/{bill}/Attachments/receipt.png?IncludeOnline=true"), b"png").await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(resp.body["Attachments"][0]["IncludeOnline"], false, "a bill has no online invoice");
    assert!(!emu.attachments(NZ, bill)[0].include_online);
}

#[tokio::test]
async fn an_eleventh_file_name_is_refused_while_the_ten_can_still_be_replaced() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-4").await;
    for n in 1..=10 {
        let resp = put(&api, &format!("/Invoices/{id}/Attachments/page-{n:02}.pdf"), PDF).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
    }
    let refused = put(&api, &format!("/Invoices/{id}/Attachments/page-11.pdf"), PDF).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    spec("Error", &refused.body);
    assert_eq!(refused.body["Type"], "ValidationException");
    assert_eq!(refused.messages(), vec!["At most 10 attachments are allowed per document."]);

    let replaced = put(&api, &format!("/Invoices/{id}/Attachments/page-03.pdf"), b"%PDF new page three").await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let stored = emu.attachments(NZ, id);
    let names: Vec<&str> = stored.iter().map(|a| a.file_name.as_str()).collect();
    assert_eq!(names, (1..=10).map(|n| format!("page-{n:02}.pdf")).collect::<Vec<_>>(), "by file name");
    assert_eq!(stored[2].content, b"%PDF new page three");
}

#[tokio::test]
async fn a_file_over_10_mb_is_refused_with_413_and_one_of_10_mb_is_taken() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-5").await;
    let too_big = put(&api, &format!("/Invoices/{id}/Attachments/scan.tiff"), &vec![7u8; TEN_MB + 1]).await;
    assert_eq!(too_big.status, 413, "{}", too_big.text);
    spec("Error", &too_big.body);
    assert!(emu.attachments(NZ, id).is_empty());

    let largest = vec![7u8; TEN_MB];
    let taken = put(&api, &format!("/Invoices/{id}/Attachments/scan.tiff"), &largest).await;
    assert_eq!(taken.status, 200, "{}", taken.text);
    assert_eq!(taken.body["Attachments"][0]["ContentLength"], TEN_MB);
    assert_eq!(emu.attachments(NZ, id)[0].content, largest, "the bytes arrive unchanged");
}

#[tokio::test]
async fn bad_file_names_and_empty_files_are_refused() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-6").await;
    let reserved = "The FileName must not contain / \\ : * ? \" < > | or control characters.";
    let long = format!("{}.pdf", "n".repeat(251));
    let too_long = format!("{}.pdf", "n".repeat(252));
    let cases = [
        ("folder%2Fquote.pdf", reserved.to_string()),
        ("quote%3F.pdf", reserved.to_string()),
        ("quote%0A.pdf", reserved.to_string()),
        (too_long.as_str(), "The FileName must not be more than 255 characters long.".to_string()),
        ("%20", "The FileName field is required.".to_string()),
        ("setup.exe", "The file type of 'setup.exe' is not supported.".to_string()),
        ("README", "The file type of 'README' is not supported.".to_string()),
    ];
    for (name, message) in cases {
        let resp = put(&api, &format!("/Invoices/{id}/Attachments/{name}"), PDF).await;
        assert_eq!(resp.status, 400, "{name}: {}", resp.text);
        spec("Error", &resp.body);
        let messages = resp.messages();
        assert!(messages.len() == 1 && messages[0].starts_with(&message), "{name}: {messages:?}");
    }
    let no_name = put(&api, &format!("/Invoices/{id}/Attachments"), PDF).await;
    assert_eq!(no_name.messages(), vec!["The FileName field is required."]);
    let empty = put(&api, &format!("/Invoices/{id}/Attachments/empty.pdf"), b"").await;
    assert_eq!(empty.status, 400, "{}", empty.text);
    spec("Error", &empty.body);
    assert!(emu.attachments(NZ, id).is_empty(), "nothing was stored");

    assert_eq!(put(&api, &format!("/Invoices/{id}/Attachments/{long}"), PDF).await.status, 200, "255 fit");
    assert_eq!(put(&api, &format!("/Invoices/{id}/Attachments/Ledger.XLSX"), PDF).await.status, 200);
}

#[tokio::test]
async fn without_the_attachments_scope_files_are_refused() {
    let emu = start().await;
    let writer = attachments_api(&emu).await;
    let id = invoice_id(&writer, "ATT-7").await;
    assert_eq!(put(&writer, &format!("/Invoices/{id}/Attachments/a.pdf"), PDF).await.status, 200);

    let plain = connected_api(&emu).await;
    let list = plain.get(&format!("/Invoices/{id}/Attachments")).await;
    assert_eq!(list.status, 401, "{}", list.text);
    assert_eq!(
        (&list.body["Title"], &list.body["Detail"]),
        (&json!("Unauthorized"), &json!("AuthorizationUnsuccessful"))
    );
    assert_eq!(put(&plain, &format!("/Invoices/{id}/Attachments/b.pdf"), PDF).await.status, 401);

    let reader =
        connected_api_with_scope(&emu, "offline_access accounting.transactions accounting.attachments.read").await;
    assert_eq!(reader.get(&format!("/Invoices/{id}/Attachments")).await.status, 200);
    assert_eq!(put(&reader, &format!("/Invoices/{id}/Attachments/b.pdf"), PDF).await.status, 401, "read only");
    assert_eq!(emu.attachments(NZ, id).len(), 1);
}

#[tokio::test]
async fn an_unknown_invoice_is_not_found() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let unknown = Uuid::new_v4();
    assert_eq!(put(&api, &format!("/Invoices/{unknown}/Attachments/a.pdf"), PDF).await.status, 404);
    assert_eq!(api.get(&format!("/Invoices/{unknown}/Attachments")).await.status, 404);
    assert_eq!(download(&api, &format!("{}/Invoices/{unknown}/Attachments/a.pdf", api.base)).await.0, 404);
    // A credit note's id does not name an invoice.
    let note = credit_note_id(&api, "ACCRECCREDIT").await;
    assert_eq!(put(&api, &format!("/Invoices/{note}/Attachments/a.pdf"), PDF).await.status, 404);
}

#[tokio::test]
async fn a_repeated_idempotency_key_replays_the_first_answer() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let id = invoice_id(&api, "ATT-8").await;
    let path = format!("/Invoices/{id}/Attachments/once.pdf");
    let key = [("Idempotency-Key", "attach-once")];
    let first = upload(&api, "PUT", &path, "application/pdf", PDF, &key).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let replay = upload(&api, "PUT", &path, "application/pdf", PDF, &key).await;
    assert_eq!(replay.text, first.text, "the first answer comes back");
    let other = upload(&api, "PUT", &path, "application/pdf", b"%PDF other", &key).await;
    assert_eq!(other.status, 400, "another file under the key is refused: {}", other.text);
    let stored = emu.attachments(NZ, id);
    assert_eq!((stored.len(), stored[0].content.as_slice()), (1, PDF));
}

#[tokio::test]
async fn credit_notes_take_attachments_the_same_way() {
    let emu = start().await;
    let api = attachments_api(&emu).await;
    let note = credit_note_id(&api, "ACCRECCREDIT").await;
    let path = format!("/CreditNotes/{note}/Attachments/refund.pdf");
    let created = upload(&api, "PUT", &format!("{path}?IncludeOnline=true"), "application/pdf", PDF, &[]).await;
    assert_eq!(created.status, 200, "{}", created.text);
    spec("Attachments", &created.body);
    let one = &created.body["Attachments"][0];
    assert_eq!(one["IncludeOnline"], true);
    assert_eq!(one["Url"], format!("{}/CreditNotes/{note}/Attachments/refund.pdf", api.base));
    let listed = api.get(&format!("/CreditNotes/{note}/Attachments")).await;
    spec("Attachments", &listed.body);
    assert_eq!(listed.body["Attachments"], created.body["Attachments"]);
    assert_eq!(download(&api, &format!("{}{path}", api.base)).await, (200, "application/pdf".into(), PDF.to_vec()));
    assert_eq!(emu.counters().calls_to("PUT", "/api.xro/2.0/creditnotes/{id}/attachments/{id}"), 1);
    let replaced = upload(&api, "POST", &path, "application/pdf", b"%PDF v2", &[]).await;
    assert_eq!(replaced.body["Attachments"][0]["AttachmentID"], one["AttachmentID"]);
    assert_eq!(api.get(&format!("/CreditNotes/{note}")).await.body["CreditNotes"][0]["HasAttachments"], true);

    let supplier_note = credit_note_id(&api, "ACCPAYCREDIT").await;
    let resp = put(&api, &format!("/CreditNotes/{supplier_note}/Attachments/r.pdf?IncludeOnline=true"), PDF).await;
    assert_eq!(resp.body["Attachments"][0]["IncludeOnline"], false);
    for n in 2..=10 {
        put(&api, &format!("/CreditNotes/{note}/Attachments/{n}.pdf"), PDF).await;
    }
    assert_eq!(put(&api, &format!("/CreditNotes/{note}/Attachments/11.pdf"), PDF).await.status, 400);
    assert_eq!(put(&api, &format!("/CreditNotes/{}/Attachments/r.pdf", Uuid::new_v4()), PDF).await.status, 404);
}
