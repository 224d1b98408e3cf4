use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;
use crate::spec::{SpecFile, accounting as spec, is_valid};

fn dec(v: &Value) -> String {
    // Money is compared through its decimal text so 15 and 15.0 read alike.
    let d: rust_decimal::Decimal = v.to_string().parse().unwrap_or_else(|_| panic!("not a number: {v}"));
    d.normalize().to_string()
}

#[tokio::test]
async fn creating_an_invoice_computes_exclusive_totals_with_decimal_arithmetic() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let request = json!({"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactNumber": "C-1001"}, "Date": "2026-11-01", "DueDate": "2026-11-20",
        "LineAmountTypes": "Exclusive", "Status": "DRAFT",
        "LineItems": [{"Description": "Labour", "Quantity": 3, "UnitAmount": 33.33, "AccountCode": "200", "TaxType": "OUTPUT2",
                       "Tracking": [{"Name": "Region", "Option": "North"}]}],
    }]});
    spec("Invoices", &request);
    let resp = api.put("/Invoices", &request).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    spec("Invoices", &resp.body);
    let inv = &resp.body["Invoices"][0];
    assert_eq!(dec(&inv["SubTotal"]), "99.99");
    assert_eq!(dec(&inv["TotalTax"]), "15");
    assert_eq!(dec(&inv["Total"]), "114.99");
    assert_eq!(dec(&inv["AmountDue"]), "114.99");
    assert_eq!(dec(&inv["AmountPaid"]), "0");
    assert_eq!(dec(&inv["LineItems"][0]["LineAmount"]), "99.99");
    assert_eq!(dec(&inv["LineItems"][0]["TaxAmount"]), "15");
    assert_eq!(inv["LineItems"][0]["Tracking"][0]["Option"], "North");
    assert_eq!(inv["InvoiceNumber"], "INV-0001", "Xero numbers ACCREC invoices when none is given");
    assert_eq!(inv["Status"], "DRAFT");
    assert_eq!(inv["Date"], "/Date(1793491200000+0000)/");
    assert_eq!(inv["DateString"], "2026-11-01T00:00:00");
    assert_eq!(inv["Contact"]["Name"], "Acme Plumbing Ltd");
    let updated = inv["UpdatedDateUTC"].as_str().expect("updated");
    assert_eq!(updated, format!("/Date({}+0000)/", emu.clock().now().timestamp_millis()));
}

#[tokio::test]
async fn inclusive_notax_discounts_and_multi_component_rates_are_computed_like_xero() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let line = |desc: &str, qty: f64, unit: f64, tax: &str| json!({"Description": desc, "Quantity": qty, "UnitAmount": unit, "AccountCode": "200", "TaxType": tax});
    let mut inclusive = invoice("INC-1", "0");
    inclusive["LineAmountTypes"] = json!("Inclusive");
    inclusive["LineItems"] = json!([line("Inclusive", 1.0, 115.0, "OUTPUT2")]);
    let inv = create_invoice(&api, inclusive).await;
    assert_eq!(
        (dec(&inv["SubTotal"]), dec(&inv["TotalTax"]), dec(&inv["Total"])),
        ("100".into(), "15".into(), "115".into())
    );

    let mut no_tax = invoice("NOTAX-1", "0");
    no_tax["LineAmountTypes"] = json!("NoTax");
    no_tax["LineItems"] = json!([{"Description": "No tax", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}]);
    let inv = create_invoice(&api, no_tax).await;
    assert_eq!((dec(&inv["TotalTax"]), dec(&inv["Total"])), ("0".into(), "100".into()));
    assert_eq!(inv["LineItems"][0]["TaxType"], "NONE");

    let mut discounted = invoice("DISC-1", "0");
    discounted["LineItems"] = json!([{"Description": "Discounted", "Quantity": 2, "UnitAmount": 50, "DiscountRate": 10, "AccountCode": "200", "TaxType": "OUTPUT2"}]);
    let inv = create_invoice(&api, discounted).await;
    assert_eq!(dec(&inv["LineItems"][0]["LineAmount"]), "90");
    assert_eq!(dec(&inv["TotalTax"]), "13.5");
    assert_eq!(dec(&inv["TotalDiscount"]), "10");

    let mut four_dp = invoice("DP4-1", "0");
    four_dp["LineItems"] = json!([line("Four places", 3.0, 1.2345, "OUTPUT2")]);
    let two = create_invoice(&api, four_dp.clone()).await;
    assert_eq!(dec(&two["LineItems"][0]["UnitAmount"]), "1.23", "two decimal places by default");
    four_dp["InvoiceNumber"] = json!("DP4-2");
    let resp = api.put("/Invoices?unitdp=4", &json!({"Invoices": [four_dp]})).await;
    let four = &resp.body["Invoices"][0];
    assert_eq!(dec(&four["LineItems"][0]["UnitAmount"]), "1.2345");
    assert_eq!(dec(&four["LineItems"][0]["LineAmount"]), "3.7", "3 x 1.2345 = 3.7035, rounded to cents");

    let mut combined = invoice("MULTI-1", "0");
    combined["LineItems"] = json!([line("Two taxes", 1.0, 100.0, "TAX001")]);
    let inv = create_invoice(&api, combined).await;
    assert_eq!(dec(&inv["TotalTax"]), "17.5");

    let au = api.for_tenant(AU);
    let mut compound = invoice("AU-1", "0");
    compound["LineItems"] = json!([{"Description": "Compound", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200", "TaxType": "TAX001"}]);
    let inv = create_invoice(&au, compound).await;
    assert_eq!(dec(&inv["TotalTax"]), "15.5", "the compound levy applies on top of GST");
    assert_eq!(inv["CurrencyCode"], "AUD");
}

#[tokio::test]
async fn an_invoice_for_an_unknown_contact_name_creates_the_contact_and_a_known_name_reuses_it() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut first = invoice("NEWC-1", "10");
    first["Contact"] =
        json!({"Name": "Brand New Customer", "ContactNumber": "C-9000", "EmailAddress": "new@customer.example"});
    let inv = create_invoice(&api, first).await;
    let contact_id = inv["Contact"]["ContactID"].as_str().expect("id").to_string();
    let contacts = emu.contacts(NZ);
    let created = contacts.iter().find(|c| c["Name"] == "Brand New Customer").expect("contact was created");
    assert_eq!(created["ContactID"], contact_id.as_str());
    assert_eq!(created["EmailAddress"], "new@customer.example");
    assert_eq!(created["IsCustomer"], true);
    let mut second = invoice("NEWC-2", "10");
    second["Contact"] = json!({"Name": "brand new customer"});
    let inv = create_invoice(&api, second).await;
    assert_eq!(inv["Contact"]["ContactID"], contact_id.as_str());
    assert_eq!(emu.contacts(NZ).len(), 4);
}

#[tokio::test]
async fn invoice_validation_reports_each_problem_in_a_validation_exception() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let bad = json!({"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": Uuid::new_v4()}, "CurrencyCode": "EUR",
        "LineItems": [
            {"Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "TaxType": "OUTPUT2"},
            {"Description": "Archived", "Quantity": 1, "UnitAmount": 10, "AccountCode": "205", "TaxType": "OUTPUT2"},
            {"Description": "Unknown account", "Quantity": 1, "UnitAmount": 10, "AccountCode": "999", "TaxType": "OUTPUT2"},
            {"Description": "Unknown tax", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "TaxType": "BOGUS"},
            {"Description": "Bad tracking", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "Tracking": [{"Name": "Region", "Option": "Mars"}]},
        ],
    }]});
    let resp = api.put("/Invoices", &bad).await;
    assert_eq!(resp.status, 400, "{}", resp.text);
    spec("Error", &resp.body);
    assert_eq!(resp.body["Type"], "ValidationException");
    assert_eq!(resp.body["ErrorNumber"], 10);
    let messages = resp.messages();
    for expected in [
        "could not be found",
        "The currency code 'EUR' is not enabled",
        "The description field is mandatory for each line item.",
        "Account code '205' has been archived",
        "Account code '999' is not a valid code for this document.",
        "The TaxType code BOGUS does not exist",
        "The tracking option 'Mars' does not exist",
    ] {
        assert!(messages.iter().any(|m| m.contains(expected)), "no '{expected}' in {messages:?}");
    }
    let mut no_account = invoice("NOACC-1", "10");
    no_account["LineItems"][0].as_object_mut().expect("line").remove("AccountCode");
    let resp = api.put("/Invoices", &json!({"Invoices": [no_account.clone()]})).await;
    assert_eq!(resp.messages(), vec!["Account code must be specified".to_string()], "approved lines need an account");
    no_account["Status"] = json!("DRAFT");
    assert_eq!(api.put("/Invoices", &json!({"Invoices": [no_account]})).await.status, 200, "drafts may leave it out");
    let no_contact = api.put("/Invoices", &json!({"Type": "ACCREC", "LineItems": []})).await;
    assert_eq!(no_contact.status, 400);
    assert!(no_contact.messages().contains(&"A Contact must be specified for this type of transaction".to_string()));
    assert_eq!(emu.invoices(NZ).len(), 1, "only the draft was stored");
}

#[tokio::test]
async fn invoice_numbers_must_be_unique_per_tenant() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    create_invoice(&api, invoice("DUP-1", "10")).await;
    let again = api.put("/Invoices", &json!({"Invoices": [invoice("DUP-1", "20")]})).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.messages(), vec!["Invoice # must be unique.".to_string()]);
    create_invoice(&api.for_tenant(AU), {
        let mut i = invoice("DUP-1", "10");
        i["LineItems"][0]["TaxType"] = json!("OUTPUT");
        i
    })
    .await;
    assert_eq!(emu.invoices(NZ).len(), 1);
    assert_eq!(emu.invoices(AU).len(), 1);
}

#[tokio::test]
async fn summarize_errors_false_returns_per_element_errors_with_status_200() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut broken = invoice("BATCH-2", "10");
    broken["LineItems"][0]["AccountCode"] = json!("999");
    let body = json!({"Invoices": [invoice("BATCH-1", "10"), broken, invoice("BATCH-3", "30")]});
    let resp = api.put("/Invoices?summarizeErrors=false", &body).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    spec("Invoices", &resp.body);
    let items = resp.body["Invoices"].as_array().expect("array");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["StatusAttributeString"], "OK");
    assert_eq!(items[1]["StatusAttributeString"], "ERROR");
    assert_eq!(items[1]["HasErrors"], true);
    assert_eq!(items[1]["ValidationErrors"][0]["Message"], "Account code '999' is not a valid code for this document.");
    assert_eq!(items[2]["StatusAttributeString"], "OK");
    let stored: Vec<String> =
        emu.invoices(NZ).iter().map(|i| i["InvoiceNumber"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(stored, vec!["BATCH-1", "BATCH-3"]);
}

#[tokio::test]
async fn a_batch_with_an_invalid_element_saves_nothing_when_errors_are_summarized() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut broken = invoice("S-2", "10");
    broken["LineItems"][0]["TaxType"] = json!("NOPE");
    let resp = api.put("/Invoices", &json!({"Invoices": [invoice("S-1", "10"), broken]})).await;
    assert_eq!(resp.status, 400);
    spec("Error", &resp.body);
    let elements = resp.body["Elements"].as_array().expect("elements");
    assert_eq!(elements.len(), 1);
    assert_eq!(elements[0]["InvoiceNumber"], "S-2");
    assert!(emu.invoices(NZ).is_empty());
}

#[tokio::test]
async fn posting_an_existing_invoice_updates_it_by_id_by_number_or_by_path() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut draft = invoice("UPD-1", "10");
    draft["Status"] = json!("DRAFT");
    let inv = create_invoice(&api, draft).await;
    let id = inv["InvoiceID"].as_str().expect("id").to_string();
    emu.clock().advance(Duration::from_secs(5));
    let by_id = api.post("/Invoices", &json!({"Invoices": [{"InvoiceID": id, "Reference": "by id"}]})).await;
    assert_eq!(by_id.status, 200, "{}", by_id.text);
    assert_eq!(by_id.body["Invoices"][0]["Reference"], "by id");
    assert_ne!(by_id.body["Invoices"][0]["UpdatedDateUTC"], inv["UpdatedDateUTC"]);
    let by_number = api
        .post(
            "/Invoices",
            &json!({"InvoiceNumber": "UPD-1", "LineItems": [
        {"Description": "Bigger job", "Quantity": 2, "UnitAmount": 100, "AccountCode": "260", "TaxType": "OUTPUT2"}]}),
        )
        .await;
    assert_eq!(by_number.status, 200, "{}", by_number.text);
    assert_eq!(dec(&by_number.body["Invoices"][0]["Total"]), "230");
    let by_path = api.post(&format!("/Invoices/{id}"), &json!({"Invoices": [{"Reference": "by path"}]})).await;
    assert_eq!(by_path.status, 200);
    assert_eq!(by_path.body["Invoices"][0]["Reference"], "by path");
    assert_eq!(emu.invoices(NZ).len(), 1);
    assert_eq!(api.post(&format!("/Invoices/{}", Uuid::new_v4()), &json!({"Reference": "x"})).await.status, 404);
}

async fn set_status(api: &Api, id: &str, status: &str) -> Resp {
    api.post(&format!("/Invoices/{id}"), &json!({"Invoices": [{"InvoiceID": id, "Status": status}]})).await
}

#[tokio::test]
async fn invoice_status_transitions_follow_xero() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut draft = invoice("ST-1", "10");
    draft["Status"] = json!("DRAFT");
    let id = create_invoice(&api, draft.clone()).await["InvoiceID"].as_str().expect("id").to_string();
    assert_eq!(set_status(&api, &id, "SUBMITTED").await.body["Invoices"][0]["Status"], "SUBMITTED");
    assert_eq!(set_status(&api, &id, "AUTHORISED").await.body["Invoices"][0]["Status"], "AUTHORISED");
    let back = set_status(&api, &id, "DRAFT").await;
    assert_eq!(back.status, 400);
    assert_eq!(back.messages(), vec!["Invoice not of valid status for modification".to_string()]);
    assert_eq!(set_status(&api, &id, "VOIDED").await.body["Invoices"][0]["Status"], "VOIDED");
    let edit_voided = api.post(&format!("/Invoices/{id}"), &json!({"Reference": "too late"})).await;
    assert_eq!(edit_voided.status, 400);
    assert_eq!(edit_voided.messages(), vec!["Invoice not of valid status for modification".to_string()]);

    draft["InvoiceNumber"] = json!("ST-2");
    let id2 = create_invoice(&api, draft.clone()).await["InvoiceID"].as_str().expect("id").to_string();
    assert_eq!(set_status(&api, &id2, "DELETED").await.body["Invoices"][0]["Status"], "DELETED");
    draft["InvoiceNumber"] = json!("ST-3");
    let id3 = create_invoice(&api, draft).await["InvoiceID"].as_str().expect("id").to_string();
    let void_draft = set_status(&api, &id3, "VOIDED").await;
    assert_eq!(void_draft.status, 400);
    let mut paid_on_create = invoice("ST-4", "10");
    paid_on_create["Status"] = json!("PAID");
    assert_eq!(api.put("/Invoices", &json!({"Invoices": [paid_on_create]})).await.status, 400);
}

#[tokio::test]
async fn a_full_payment_marks_the_invoice_paid_and_deleting_it_reverses_that() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("PAY-1", "100")).await;
    let id = inv["InvoiceID"].as_str().expect("id").to_string();
    let partial = json!({"Payments": [{"Invoice": {"InvoiceID": id}, "Account": {"Code": "090"}, "Amount": 15, "Date": "2026-11-05"}]});
    spec("Payments", &partial);
    let resp = api.put("/Payments", &partial).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    spec("Payments", &resp.body);
    let inv = &api.get(&format!("/Invoices/{id}")).await.body["Invoices"][0];
    assert_eq!(
        (dec(&inv["AmountPaid"]), dec(&inv["AmountDue"]), inv["Status"].as_str()),
        ("15".into(), "100".into(), Some("AUTHORISED"))
    );
    let too_much = api
        .put("/Payments", &json!({"Invoice": {"InvoiceNumber": "PAY-1"}, "Account": {"Code": "090"}, "Amount": 100.01}))
        .await;
    assert_eq!(too_much.status, 400);
    assert_eq!(too_much.messages(), vec!["Payment amount exceeds the amount outstanding on this document".to_string()]);
    let rest = api.put("/Payments", &json!({"Invoice": {"InvoiceNumber": "PAY-1"}, "Account": {"Code": "615"}, "Amount": 100, "Date": "2026-11-07"})).await;
    assert_eq!(rest.status, 200, "{}", rest.text);
    let payment_id = rest.body["Payments"][0]["PaymentID"].as_str().expect("payment").to_string();
    let paid = &api.get(&format!("/Invoices/{id}")).await.body;
    spec("Invoices", paid);
    let inv = &paid["Invoices"][0];
    assert_eq!(inv["Status"], "PAID");
    assert_eq!(dec(&inv["AmountDue"]), "0");
    assert_eq!(inv["FullyPaidOnDate"], "/Date(1794009600000+0000)/");
    assert_eq!(inv["Payments"].as_array().map(Vec::len), Some(2));
    let edit = api.post(&format!("/Invoices/{id}"), &json!({"Reference": "changed"})).await;
    assert_eq!(edit.status, 400);
    assert_eq!(edit.messages(), vec!["Invoice not of valid status for modification".to_string()]);
    let delete = api.post(&format!("/Payments/{payment_id}"), &json!({"Payments": [{"Status": "DELETED"}]})).await;
    assert_eq!(delete.status, 200, "{}", delete.text);
    assert_eq!(delete.body["Payments"][0]["Status"], "DELETED");
    let inv = &api.get(&format!("/Invoices/{id}")).await.body["Invoices"][0];
    assert_eq!(inv["Status"], "AUTHORISED");
    assert_eq!(dec(&inv["AmountDue"]), "100");
    assert!(inv.get("FullyPaidOnDate").is_none());
    let again = api.post(&format!("/Payments/{payment_id}"), &json!({"Status": "DELETED"})).await;
    assert_eq!(again.status, 400);
    let void_with_payment = set_status(&api, &id, "VOIDED").await;
    assert_eq!(void_with_payment.status, 400);
}

#[tokio::test]
async fn payments_need_an_authorised_invoice_and_an_account_that_takes_payments() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut draft = invoice("PD-1", "50");
    draft["Status"] = json!("DRAFT");
    create_invoice(&api, draft).await;
    let on_draft = api
        .put("/Payments", &json!({"Invoice": {"InvoiceNumber": "PD-1"}, "Account": {"Code": "090"}, "Amount": 5}))
        .await;
    assert_eq!(on_draft.status, 400);
    create_invoice(&api, invoice("PD-2", "50")).await;
    let revenue = api
        .put("/Payments", &json!({"Invoice": {"InvoiceNumber": "PD-2"}, "Account": {"Code": "200"}, "Amount": 5}))
        .await;
    assert_eq!(revenue.status, 400);
    assert!(revenue.messages()[0].contains("does not have payments enabled"), "{:?}", revenue.messages());
    assert!(emu.payments(NZ).is_empty());
}

#[tokio::test]
async fn a_credit_note_allocated_to_an_invoice_reduces_what_is_due() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("CNI-1", "100")).await;
    let note = json!({"CreditNotes": [{"Type": "ACCRECCREDIT", "Contact": {"ContactNumber": "C-1001"}, "Status": "AUTHORISED",
        "Date": "2026-11-02", "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200", "TaxType": "OUTPUT2"}]}]});
    spec("CreditNotes", &note);
    let created = api.put("/CreditNotes", &note).await;
    assert_eq!(created.status, 200, "{}", created.text);
    spec("CreditNotes", &created.body);
    let cn = &created.body["CreditNotes"][0];
    assert_eq!(cn["CreditNoteNumber"], "CN-0001");
    assert_eq!(dec(&cn["RemainingCredit"]), "23");
    let cn_id = cn["CreditNoteID"].as_str().expect("id");
    let alloc = api
        .put(
            &format!("/CreditNotes/{cn_id}/Allocations"),
            &json!({"Allocations": [{"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 23, "Date": "2026-11-03"}]}),
        )
        .await;
    assert_eq!(alloc.status, 200, "{}", alloc.text);
    spec("Allocations", &alloc.body);
    let inv = &api.get("/Invoices/CNI-1").await.body["Invoices"][0];
    assert_eq!(dec(&inv["AmountCredited"]), "23");
    assert_eq!(dec(&inv["AmountDue"]), "92");
    let cn = &api.get(&format!("/CreditNotes/{cn_id}")).await.body;
    spec("CreditNotes", cn);
    assert_eq!(cn["CreditNotes"][0]["Status"], "PAID");
    assert_eq!(dec(&cn["CreditNotes"][0]["RemainingCredit"]), "0");
    let edit = api
        .post(&format!("/CreditNotes/{cn_id}"), &json!({"CreditNotes": [{"CreditNoteID": cn_id, "Reference": "x"}]}))
        .await;
    assert_eq!(edit.status, 400, "allocated: Xero wants the allocation gone first: {}", edit.text);
    let over = api
        .put(
            &format!("/CreditNotes/{cn_id}/Allocations"),
            &json!({"Allocations": [{"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 1, "Date": "2026-11-03"}]}),
        )
        .await;
    assert_eq!(over.status, 400, "no credit left to allocate: {}", over.text);

    let allocation = cn["CreditNotes"][0]["Allocations"][0]["AllocationID"].as_str().expect("allocation id").to_owned();
    let removed = api.send("DELETE", &format!("/CreditNotes/{cn_id}/Allocations/{allocation}"), None, &[]).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    spec("Allocation", &removed.body);
    assert_eq!(removed.body["IsDeleted"], true);
    let again = api.send("DELETE", &format!("/CreditNotes/{cn_id}/Allocations/{allocation}"), None, &[]).await;
    assert_eq!(again.status, 404, "gone already");
    let inv = &api.get("/Invoices/CNI-1").await.body["Invoices"][0];
    assert_eq!((dec(&inv["AmountCredited"]), dec(&inv["AmountDue"])), ("0".into(), "115".into()));
    let cn = &api.get(&format!("/CreditNotes/{cn_id}")).await.body["CreditNotes"][0];
    assert_eq!((cn["Status"].as_str(), dec(&cn["RemainingCredit"])), (Some("AUTHORISED"), "23".into()));
    assert_eq!(cn["Allocations"], json!([]));
    let edit = api
        .post(&format!("/CreditNotes/{cn_id}"), &json!({"CreditNotes": [{"CreditNoteID": cn_id, "Reference": "x"}]}))
        .await;
    assert_eq!(edit.status, 200, "editable once nothing is allocated: {}", edit.text);
}

#[tokio::test]
async fn a_refund_pays_out_a_credit_note_which_cannot_be_voided_until_the_refund_is_deleted() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let note = |status: &str| {
        json!({"CreditNotes": [{"Type": "ACCRECCREDIT", "Contact": {"ContactNumber": "C-1001"}, "Status": status,
            "LineAmountTypes": "Inclusive", "Date": "2026-11-02",
            "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 23, "AccountCode": "200", "TaxType": "OUTPUT2"}]}]})
    };
    let draft = api.put("/CreditNotes", &note("DRAFT")).await.body["CreditNotes"][0]["CreditNoteID"].clone();
    let created = api.put("/CreditNotes", &note("AUTHORISED")).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let cn_id = created.body["CreditNotes"][0]["CreditNoteID"].as_str().expect("id").to_owned();
    assert_eq!(dec(&created.body["CreditNotes"][0]["Total"]), "23", "tax inclusive: the total is the amount");
    let refund = |id: &Value, amount: Value| json!({"Payments": [{"CreditNote": {"CreditNoteID": id}, "Account": {"Code": "090"}, "Amount": amount, "Date": "2026-11-03"}]});
    let on_draft = api.put("/Payments", &refund(&draft, json!(5))).await;
    assert_eq!(on_draft.status, 400);
    assert!(on_draft.messages()[0].contains("Authorised credit note"), "{:?}", on_draft.messages());
    let too_much = api.put("/Payments", &refund(&json!(cn_id), json!(23.01))).await;
    assert_eq!(too_much.status, 400);
    assert_eq!(too_much.messages(), vec!["Payment amount exceeds the amount outstanding on this document".to_string()]);
    let body = refund(&json!(cn_id), json!(23));
    spec("Payments", &body);
    let paid = api.put("/Payments", &body).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    spec("Payments", &paid.body);
    let payment = &paid.body["Payments"][0];
    assert_eq!(payment["PaymentType"], "ARCREDITPAYMENT");
    let payment_id = payment["PaymentID"].as_str().expect("payment").to_owned();
    let listed = api.get(&format!("/CreditNotes?where={}&page=1", url_encode("CreditNoteNumber==\"CN-0002\""))).await;
    spec("CreditNotes", &listed.body);
    let cn = &listed.body["CreditNotes"][0];
    assert_eq!((cn["CreditNoteID"].as_str(), cn["Status"].as_str()), (Some(cn_id.as_str()), Some("PAID")));
    assert_eq!(cn["Payments"][0]["PaymentID"], payment_id.as_str(), "a credit note lists its refunds");
    let void = json!({"CreditNotes": [{"CreditNoteID": cn_id, "Status": "VOIDED"}]});
    let refused = api.post(&format!("/CreditNotes/{cn_id}"), &void).await;
    assert_eq!(refused.status, 400, "paid out: {}", refused.text);
    let deleted = api.post(&format!("/Payments/{payment_id}"), &json!({"Status": "DELETED"})).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let voided = api.post(&format!("/CreditNotes/{cn_id}"), &void).await;
    assert_eq!(voided.status, 200, "{}", voided.text);
    assert_eq!(voided.body["CreditNotes"][0]["Status"], "VOIDED");
}

#[tokio::test]
async fn contacts_are_created_updated_and_need_unique_names() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let body = json!({"Contacts": [{"Name": "Zed Builders", "ContactNumber": "C-2000", "EmailAddress": "zed@builders.example",
        "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "021 555 0100"}]}]});
    spec("Contacts", &body);
    let created = api.put("/Contacts", &body).await;
    assert_eq!(created.status, 200, "{}", created.text);
    spec("Contacts", &created.body);
    let id = created.body["Contacts"][0]["ContactID"].as_str().expect("id").to_string();
    assert_eq!(created.body["Contacts"][0]["ContactStatus"], "ACTIVE");
    let dup = api.put("/Contacts", &json!({"Contacts": [{"Name": "zed builders"}]})).await;
    assert_eq!(dup.status, 400);
    assert!(dup.messages()[0].contains("is already assigned to another contact"));
    let by_number = api
        .post("/Contacts", &json!({"Contacts": [{"ContactNumber": "C-2000", "EmailAddress": "new@builders.example"}]}))
        .await;
    assert_eq!(by_number.status, 200, "{}", by_number.text);
    assert_eq!(by_number.body["Contacts"][0]["ContactID"], id.as_str());
    // A POST that names an active contact by its name changes that contact: no second one.
    let by_name =
        api.post("/Contacts", &json!({"Contacts": [{"Name": "ZED BUILDERS", "ContactNumber": "OTHER-1"}]})).await;
    assert_eq!(by_name.status, 200, "{}", by_name.text);
    assert_eq!(by_name.body["Contacts"][0]["ContactID"], id.as_str(), "the namesake was updated, not duplicated");
    assert_eq!(by_name.body["Contacts"][0]["ContactNumber"], "OTHER-1");
    let by_path = api.post(&format!("/Contacts/{id}"), &json!({"Contacts": [{"Name": "Zed Builders Ltd"}]})).await;
    assert_eq!(by_path.body["Contacts"][0]["Name"], "Zed Builders Ltd");
    assert_eq!(by_path.body["Contacts"][0]["EmailAddress"], "new@builders.example");
    let bad_email = api.put("/Contacts", &json!({"Name": "Email Person", "EmailAddress": "not-an-email"})).await;
    assert_eq!(bad_email.messages(), vec!["Email address must be valid.".to_string()]);
    let fetched = api.get(&format!("/Contacts/{id}")).await;
    spec("Contacts", &fetched.body);
    assert_eq!(fetched.body["Contacts"][0]["Phones"][0]["PhoneNumber"], "021 555 0100");
    assert_eq!(api.get(&format!("/Contacts/{}", Uuid::new_v4())).await.status, 404);
}

#[tokio::test]
async fn lists_page_with_the_pagination_object() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let batch: Vec<Value> = (1..=5).map(|n| invoice(&format!("PG-{n}"), "10")).collect();
    assert_eq!(api.put("/Invoices", &json!({"Invoices": batch})).await.status, 200);
    let page2 = api.get("/Invoices?page=2&pageSize=2&order=InvoiceNumber").await;
    assert_eq!(page2.status, 200);
    spec("Invoices", &page2.body);
    assert_eq!(page2.body["pagination"], json!({"page": 2, "pageSize": 2, "pageCount": 3, "itemCount": 5}));
    let numbers: Vec<&str> = page2.body["Invoices"]
        .as_array()
        .expect("a")
        .iter()
        .map(|i| i["InvoiceNumber"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(numbers, vec!["PG-3", "PG-4"]);
    assert!(page2.body["Invoices"][0]["LineItems"].is_array(), "paged invoices carry their line items");
    let unpaged = api.get("/Invoices").await;
    assert_eq!(unpaged.body["Invoices"].as_array().map(Vec::len), Some(5));
    assert!(unpaged.body.get("pagination").is_none());
    assert!(unpaged.body["Invoices"][0].get("LineItems").is_none(), "Xero leaves line items out of unpaged lists");
    let big = api.get("/Invoices?page=1&pageSize=5000").await;
    assert_eq!(big.body["pagination"]["pageSize"], 1000);
    assert_eq!(api.get("/Invoices?page=0").await.status, 400);
    let contacts = api.get("/Contacts?page=1&pageSize=2").await;
    spec("Contacts", &contacts.body);
    assert_eq!(contacts.body["pagination"]["itemCount"], 3);
}

#[tokio::test]
async fn if_modified_since_returns_only_objects_updated_since_then() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    create_invoice(&api, invoice("OLD-1", "10")).await;
    emu.clock().advance(Duration::from_secs(600));
    let since = emu.clock().now();
    emu.clock().advance(Duration::from_secs(1));
    create_invoice(&api, invoice("NEW-1", "10")).await;
    assert_eq!(api.put("/Contacts", &json!({"Name": "Late Contact"})).await.status, 200);
    for header in [since.format("%Y-%m-%dT%H:%M:%S").to_string(), since.to_rfc2822().replace("+0000", "GMT")] {
        let resp = api.send("GET", "/Invoices", None, &[("If-Modified-Since", &header)]).await;
        assert_eq!(resp.status, 200, "{header}");
        let numbers: Vec<&str> = resp.body["Invoices"]
            .as_array()
            .expect("a")
            .iter()
            .map(|i| i["InvoiceNumber"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(numbers, vec!["NEW-1"], "{header}");
    }
    let contacts = api.send("GET", "/Contacts", None, &[("If-Modified-Since", &since.to_rfc3339())]).await;
    assert_eq!(contacts.body["Contacts"][0]["Name"], "Late Contact");
    assert_eq!(contacts.body["Contacts"].as_array().map(Vec::len), Some(1));
    assert_eq!(api.send("GET", "/Invoices", None, &[("If-Modified-Since", "yesterday")]).await.status, 400);
}

#[tokio::test]
async fn where_filters_search_terms_id_lists_summary_only_and_order_select_objects() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let names = |r: &Resp, key: &str, field: &str| -> Vec<String> {
        r.body[key]
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c[field].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let w = url_encode(r#"ContactNumber=="C-1002" OR EmailAddress=="JANE@citizen.example" OR Name=="Nobody""#);
    let resp = api.get(&format!("/Contacts?where={w}&order=Name DESC")).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert_eq!(names(&resp, "Contacts", "Name"), vec!["Jane Citizen", "Bayside Property Management"]);
    let w = url_encode(r#"Name.StartsWith("acme") AND IsCustomer==true"#);
    assert_eq!(names(&api.get(&format!("/Contacts?where={w}")).await, "Contacts", "Name"), vec!["Acme Plumbing Ltd"]);
    assert_eq!(
        names(&api.get("/Contacts?searchTerm=bays").await, "Contacts", "Name"),
        vec!["Bayside Property Management"]
    );
    assert_eq!(api.get(&format!("/Contacts?where={}", url_encode("Name==\"unterminated"))).await.status, 400);

    let mut draft = invoice("W-2", "20");
    draft["Status"] = json!("DRAFT");
    draft["Contact"] = json!({"ContactNumber": "C-1002"});
    let a = create_invoice(&api, invoice("W-1", "10")).await;
    let b = create_invoice(&api, draft).await;
    let w = url_encode(r#"Status=="DRAFT" AND Type=="ACCREC""#);
    assert_eq!(names(&api.get(&format!("/Invoices?where={w}")).await, "Invoices", "InvoiceNumber"), vec!["W-2"]);
    let w = url_encode(r#"InvoiceNumber=="W-1" OR (Status=="DRAFT" AND Total>20)"#);
    assert_eq!(names(&api.get(&format!("/Invoices?where={w}")).await, "Invoices", "InvoiceNumber"), vec!["W-1", "W-2"]);
    let ids = format!("{},{}", a["InvoiceID"].as_str().unwrap(), Uuid::new_v4());
    assert_eq!(names(&api.get(&format!("/Invoices?IDs={ids}")).await, "Invoices", "InvoiceNumber"), vec!["W-1"]);
    assert_eq!(names(&api.get("/Invoices?InvoiceNumbers=W-2,W-9").await, "Invoices", "InvoiceNumber"), vec!["W-2"]);
    assert_eq!(names(&api.get("/Invoices?Statuses=AUTHORISED").await, "Invoices", "InvoiceNumber"), vec!["W-1"]);
    let contact = b["Contact"]["ContactID"].as_str().unwrap();
    assert_eq!(
        names(&api.get(&format!("/Invoices?ContactIDs={contact}")).await, "Invoices", "InvoiceNumber"),
        vec!["W-2"]
    );
    assert_eq!(names(&api.get("/Invoices?order=Total DESC").await, "Invoices", "InvoiceNumber"), vec!["W-2", "W-1"]);
    let summary = api.get("/Invoices?page=1&summaryOnly=true").await;
    spec("Invoices", &summary.body);
    let first = &summary.body["Invoices"][0];
    assert!(first.get("LineItems").is_none() && first.get("Payments").is_none());
    assert!(first.get("Total").is_some());
    let w = url_encode(&format!("Contact.ContactID==Guid(\"{contact}\")"));
    assert_eq!(names(&api.get(&format!("/Invoices?where={w}")).await, "Invoices", "InvoiceNumber"), vec!["W-2"]);
    let w = url_encode("Date>=DateTime(2026,11,01) AND Date<DateTime(2026,11,02)");
    assert_eq!(api.get(&format!("/Invoices?where={w}")).await.body["Invoices"].as_array().map(Vec::len), Some(2));
}

pub fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn objects_can_be_fetched_by_id_and_invoices_by_number() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("GET-1", "10")).await;
    let by_id = api.get(&format!("/Invoices/{}", inv["InvoiceID"].as_str().unwrap())).await;
    assert_eq!(by_id.body["Invoices"][0]["InvoiceNumber"], "GET-1");
    assert!(by_id.body["Invoices"][0]["LineItems"].is_array());
    assert_eq!(api.get("/Invoices/GET-1").await.body["Invoices"][0]["InvoiceID"], inv["InvoiceID"]);
    let missing = api.get("/Invoices/NOPE-1").await;
    assert_eq!(missing.status, 404);
    assert_eq!(api.get("/Nonsense").await.status, 404);
}

#[tokio::test]
async fn reference_data_endpoints_return_the_seeded_organisation_data() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let org = api.get("/Organisation").await;
    spec("Organisations", &org.body);
    assert_eq!(org.body["Organisations"][0]["Name"], "Demo Company (NZ)");
    assert_eq!(org.body["Organisations"][0]["BaseCurrency"], "NZD");
    let accounts = api.get("/Accounts").await;
    spec("Accounts", &accounts.body);
    let list = accounts.body["Accounts"].as_array().expect("accounts");
    let by_code = |code: &str| list.iter().find(|a| a["Code"] == code).expect("account").clone();
    assert_eq!((by_code("200")["Type"].as_str(), by_code("200")["Class"].as_str()), (Some("REVENUE"), Some("REVENUE")));
    assert_eq!(by_code("090")["Type"], "BANK");
    assert_eq!(by_code("205")["Status"], "ARCHIVED");
    assert_eq!(by_code("615")["EnablePaymentsToAccount"], true);
    let w = url_encode(r#"Type=="BANK""#);
    assert_eq!(api.get(&format!("/Accounts?where={w}")).await.body["Accounts"].as_array().map(Vec::len), Some(1));
    let account_id = by_code("260")["AccountID"].as_str().unwrap().to_string();
    assert_eq!(api.get(&format!("/Accounts/{account_id}")).await.body["Accounts"][0]["Name"], "Other Revenue");
    let rates = api.get("/TaxRates").await;
    spec("TaxRates", &rates.body);
    let multi =
        rates.body["TaxRates"].as_array().unwrap().iter().find(|r| r["TaxType"] == "TAX001").expect("multi").clone();
    assert_eq!(multi["TaxComponents"].as_array().map(Vec::len), Some(2));
    assert_eq!(dec(&multi["EffectiveRate"]), "17.5");
    assert_eq!(dec(&multi["DisplayTaxRate"]), "17.5");
    let au_rates = api.for_tenant(AU).get("/TaxRates").await;
    connect_au_guard(&au_rates);
    let items = api.get("/Items").await;
    spec("Items", &items.body);
    assert_eq!(items.body["Items"][0]["Code"], "CALLOUT");
    assert_eq!(dec(&items.body["Items"][0]["SalesDetails"]["UnitPrice"]), "95");
    let currencies = api.get("/Currencies").await;
    spec("Currencies", &currencies.body);
    assert_eq!(currencies.body["Currencies"].as_array().map(Vec::len), Some(3));
    let tracking = api.get("/TrackingCategories").await;
    spec("TrackingCategories", &tracking.body);
    assert_eq!(tracking.body["TrackingCategories"][0]["Options"].as_array().map(Vec::len), Some(3));
    // An item code on a line fills description, price, account and tax from the item.
    let mut with_item = invoice("ITEM-1", "0");
    with_item["LineItems"] = json!([{"ItemCode": "CALLOUT", "Quantity": 2}]);
    let inv = create_invoice(&api, with_item).await;
    assert_eq!(dec(&inv["SubTotal"]), "190");
    assert_eq!(inv["LineItems"][0]["AccountCode"], "200");
}

fn connect_au_guard(resp: &Resp) {
    let compound = resp.body["TaxRates"]
        .as_array()
        .expect("rates")
        .iter()
        .find(|r| r["TaxType"] == "TAX001")
        .expect("rate")
        .clone();
    assert_eq!(dec(&compound["EffectiveRate"]), "15.5");
    assert_eq!(dec(&compound["DisplayTaxRate"]), "15");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_rejects_a_different_body() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let body = json!({"Invoices": [invoice("IDEM-1", "10")]});
    let key = [("Idempotency-Key", "key-1")];
    let first = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(first.status, 200);
    emu.clock().advance(Duration::from_secs(10));
    let second = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.text, first.text, "the first response comes back unchanged");
    assert_eq!(emu.invoices(NZ).len(), 1);
    let other = json!({"Invoices": [invoice("IDEM-2", "10")]});
    let mismatch = api.send("PUT", "/Invoices", Some(&other), &key).await;
    assert_eq!(mismatch.status, 400);
    spec("Error", &mismatch.body);
    assert_eq!(emu.invoices(NZ).len(), 1);
    // A failed request is remembered too: retrying it with the key gives the same 400.
    let bad = json!({"Invoices": [invoice("IDEM-1", "10")]});
    let failed = api.send("PUT", "/Invoices", Some(&bad), &[("Idempotency-Key", "key-2")]).await;
    assert_eq!(failed.status, 400);
    let replay = api.send("PUT", "/Invoices", Some(&bad), &[("Idempotency-Key", "key-2")]).await;
    assert_eq!((replay.status, replay.text), (400, failed.text));
    let long = "k".repeat(129);
    assert_eq!(api.send("PUT", "/Invoices", Some(&other), &[("Idempotency-Key", &long)]).await.status, 400);
}

#[tokio::test]
async fn malformed_requests_get_xero_style_400s() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let resp = api
        .client
        .put(format!("{}/Invoices", api.base))
        .bearer_auth(&api.token)
        .header("xero-tenant-id", NZ.to_string())
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    spec("Error", &body);
    assert_eq!(body["Type"], "PostDataInvalidException");
    let wrong_types = api
        .put(
            "/Invoices",
            &json!({"Invoices": [{"Type": "ACCREC", "Contact": {"ContactNumber": "C-1001"},
        "LineItems": [{"Description": "x", "Quantity": "many", "UnitAmount": 1, "AccountCode": "200"}]}]}),
        )
        .await;
    assert_eq!(wrong_types.status, 400);
    assert!(wrong_types.messages().contains(&"Quantity must be a number.".to_string()));
    assert_eq!(api.put("/Invoices", &json!([1, 2])).await.status, 400);
    assert_eq!(api.send("DELETE", "/Invoices", None, &[]).await.status, 405);
}

#[tokio::test]
async fn the_spec_validator_rejects_bodies_that_break_the_schema() {
    // Guards the guard: a validator that accepted anything would make every spec check pass.
    assert!(!is_valid(SpecFile::Accounting, "Invoices", &json!({"Invoices": [{"Status": "SOMETHING"}]})));
    assert!(!is_valid(SpecFile::Accounting, "Invoices", &json!({"Invoices": [{"Total": "12.00"}]})));
    assert!(!is_valid(SpecFile::Accounting, "Error", &json!({"Elements": [{"ValidationErrors": [{"Message": 1}]}]})));
    assert!(!is_valid(SpecFile::Identity, "[]Connection", &json!([{"tenantId": 5}])));
    assert!(is_valid(SpecFile::Accounting, "Invoices", &json!({"Invoices": [{"Status": "DRAFT", "Total": 1.5}]})));
}

#[tokio::test]
async fn odd_input_gets_a_4xx_and_never_breaks_the_connection() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let bodies = [
        json!(null),
        json!("text"),
        json!({"Invoices": "not an array"}),
        json!({"Invoices": [1, "two", null]}),
        json!({"Invoices": [{"Type": 5, "Contact": "nobody", "LineItems": {"a": 1}}]}),
        json!({"Invoices": [{"Type": "ACCREC", "Contact": {"Name": "Big"}, "Status": "AUTHORISED",
            "LineItems": [{"Description": "x", "Quantity": 1e300, "UnitAmount": 1e300, "AccountCode": "200"}]}]}),
        json!({"Invoices": [{"Type": "ACCREC", "Contact": {"Name": "Big"}, "Date": "31/31/2020", "CurrencyRate": -1,
            "LineAmountTypes": "Sideways", "LineItems": [{"Description": "x", "Quantity": 99999999999.0, "UnitAmount": 99999999999.0,
            "DiscountRate": 150, "AccountCode": "200", "Tracking": [{}, {}, {}]}]}]}),
        json!({"Contacts": [{"Name": ""}, {"ContactID": "not-a-guid", "Name": "X"}]}),
        json!({"Payments": [{"Invoice": {"InvoiceID": "zzz"}, "Account": {}, "Amount": "lots"}]}),
    ];
    for (path, body) in [("/Invoices", 0..7), ("/Contacts", 7..8), ("/Payments", 8..9)]
        .iter()
        .flat_map(|(p, r)| r.clone().map(move |i| (*p, i)))
    {
        for method in ["PUT", "POST"] {
            let resp = api.send(method, path, Some(&bodies[body]), &[]).await;
            assert!(
                (400..500).contains(&resp.status),
                "{method} {path} {} -> {} {}",
                bodies[body],
                resp.status,
                resp.text
            );
        }
    }
    for query in [
        "where=%22%22%22",
        "where=Name%3D%3D",
        "where=((((",
        "where=Total%3E%3D1e999",
        "where=Date%3EDateTime(2020%2C13%2C45)",
        "order=Total%20SIDEWAYS",
        "page=-1",
        "page=99999999999999999999",
        "pageSize=0",
    ] {
        let resp = api.get(&format!("/Invoices?{query}")).await;
        assert!((200..500).contains(&resp.status), "{query} -> {}", resp.status);
    }
    let huge_page = api.get("/Invoices?page=18446744073709551615&pageSize=1000").await;
    assert_eq!(huge_page.status, 200);
    assert_eq!(huge_page.body["Invoices"], json!([]));
    assert!(emu.invoices(NZ).is_empty());
}

#[tokio::test]
async fn items_are_created_by_put_upserted_by_code_with_post_held_to_the_spec_and_deleted_for_good() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let item = json!({"Code": "PIPE-15", "Name": "Copper pipe 15mm", "IsSold": true,
        "SalesDetails": {"UnitPrice": 12.4, "AccountCode": "200", "TaxType": "OUTPUT2"}});
    spec("Items", &json!({"Items": [item.clone()]}));
    let created = api.put("/Items", &json!({"Items": [item.clone()]})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    spec("Items", &created.body);
    let id = created.body["Items"][0]["ItemID"].as_str().unwrap().to_owned();
    let again = api.put("/Items", &json!({"Items": [item.clone()]})).await;
    assert_eq!(again.status, 400, "a PUT never takes an existing code");
    assert!(again.messages()[0].contains("already exists"), "{}", again.text);

    let repriced = json!({"Items": [{"Code": "PIPE-15", "SalesDetails": {"UnitPrice": 13.1}}]});
    let updated = api.post("/Items?summarizeErrors=false", &repriced).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["Items"][0]["ItemID"], id.as_str(), "a POST finds the item by its code");
    assert_eq!(updated.body["Items"][0]["SalesDetails"]["UnitPrice"], json!(13.1));
    assert_eq!(updated.body["Items"][0]["SalesDetails"]["TaxType"], "OUTPUT2", "what is not sent stays");

    let long = json!({"Items": [{"Code": "C".repeat(31), "Name": "Too long a code"},
        {"Code": "GOOD-1", "Name": "Fine", "SalesDetails": {"TaxType": "NOPE"}}]});
    let refused = api.post("/Items?summarizeErrors=false", &long).await;
    assert_eq!(refused.status, 200, "{}", refused.text);
    assert_eq!(refused.body["Items"][0]["StatusAttributeString"], "ERROR", "Code holds 30 characters");
    assert!(refused.body["Items"][1]["ValidationErrors"][0]["Message"].as_str().unwrap().contains("TaxType"));

    let not_sold = api.post(&format!("/Items/{id}"), &json!({"Items": [{"IsSold": false}]})).await;
    assert_eq!(not_sold.body["Items"][0]["SalesDetails"], json!({}), "an item not sold keeps no sales details");

    let gone = api.send("DELETE", &format!("/Items/{id}"), None, &[]).await;
    assert_eq!((gone.status, gone.text.as_str()), (204, ""));
    assert_eq!(api.send("DELETE", &format!("/Items/{id}"), None, &[]).await.status, 404);
    assert_eq!(api.get(&format!("/Items/{id}")).await.status, 404);
}

#[tokio::test]
async fn contact_groups_list_their_members_only_when_asked_by_id_as_xero_does() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let created = api.put("/ContactGroups", &json!({"ContactGroups": [{"Name": "Residential"}]})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    spec("ContactGroups", &created.body);
    let id = created.body["ContactGroups"][0]["ContactGroupID"].as_str().unwrap().to_owned();
    let taken = api.put("/ContactGroups", &json!({"ContactGroups": [{"Name": "residential"}]})).await;
    assert_eq!(taken.status, 400, "names are unique among active groups");

    let contacts = api.get("/Contacts").await.body["Contacts"].clone();
    let jane = contacts.as_array().unwrap().iter().find(|c| c["Name"] == "Jane Citizen").unwrap()["ContactID"].clone();
    let added = api.put(&format!("/ContactGroups/{id}/Contacts"), &json!({"Contacts": [{"ContactID": jane}]})).await;
    assert_eq!(added.status, 200, "{}", added.text);
    let unknown = json!({"Contacts": [{"ContactID": Uuid::new_v4()}]});
    assert_eq!(api.put(&format!("/ContactGroups/{id}/Contacts"), &unknown).await.status, 400);

    let listed = api.get("/ContactGroups").await;
    spec("ContactGroups", &listed.body);
    assert_eq!(listed.body["ContactGroups"][0]["Contacts"], json!([]), "the list names no members");
    let one = api.get(&format!("/ContactGroups/{id}")).await;
    spec("ContactGroups", &one.body);
    assert_eq!(one.body["ContactGroups"][0]["Contacts"][0]["ContactID"], jane);

    let out = api.send("DELETE", &format!("/ContactGroups/{id}/Contacts/{}", jane.as_str().unwrap()), None, &[]).await;
    assert_eq!(out.status, 204);
    assert_eq!(api.get(&format!("/ContactGroups/{id}")).await.body["ContactGroups"][0]["Contacts"], json!([]));
    let deleted = api.post(&format!("/ContactGroups/{id}"), &json!({"ContactGroups": [{"Status": "DELETED"}]})).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(api.get("/ContactGroups").await.body["ContactGroups"], json!([]), "only active groups are listed");
    assert_eq!(api.get(&format!("/ContactGroups/{id}")).await.status, 404);
}
