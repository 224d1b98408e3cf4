//! Write bodies are checked against Xero's OpenAPI schemas (maxLength, enum, required) before
//! any business rule, and refused in Xero's ValidationException shape.

use serde_json::{Value, json};
use xero_emulator::{Emulator, EmulatorConfig, SPEC_DIR_VAR};

use crate::helpers::*;
use crate::spec::accounting as spec;

fn assert_validation_exception(resp: &Resp) {
    assert_eq!(resp.status, 400, "{}", resp.text);
    spec("Error", &resp.body);
    assert_eq!(resp.body["ErrorNumber"], 10);
    assert_eq!(resp.body["Type"], "ValidationException");
    assert_eq!(resp.body["Message"], "A validation exception occurred");
}

const TOO_LONG: &str = "The ContactNumber must not be more than 50 characters long.";

#[tokio::test]
async fn a_contact_number_longer_than_50_characters_is_refused_and_50_are_accepted() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let contact = |number: String| json!({"Contacts": [{"Name": "Long Number Ltd", "ContactNumber": number}]});
    let refused = api.put("/Contacts", &contact("N".repeat(51))).await;
    assert_validation_exception(&refused);
    assert_eq!(refused.messages(), vec![TOO_LONG.to_string()]);
    let element = &refused.body["Elements"][0];
    assert_eq!(element["Name"], "Long Number Ltd", "the element is echoed");
    assert!(element.get("ContactNumber").is_none(), "without the value the spec refused");
    assert_eq!(emu.contacts(NZ).len(), 3, "nothing was stored");
    // Xero binds property names case-blind, so the limit holds whatever the spelling.
    let lower = api.put("/Contacts", &json!({"Name": "Lower Case Ltd", "contactNumber": "n".repeat(51)})).await;
    assert_eq!(lower.messages(), vec![TOO_LONG.to_string()]);

    let accepted = api.put("/Contacts", &contact("N".repeat(50))).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    spec("Contacts", &accepted.body);
    assert_eq!(accepted.body["Contacts"][0]["ContactNumber"], "N".repeat(50));
}

#[tokio::test]
async fn an_inline_contact_of_an_invoice_is_checked_too() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut inv = invoice("INLINE-1", "10");
    inv["Contact"] = json!({"Name": "Inline Customer", "ContactNumber": "I".repeat(51)});
    let refused = api.put("/Invoices", &json!({"Invoices": [inv.clone()]})).await;
    assert_validation_exception(&refused);
    assert_eq!(refused.messages(), vec![TOO_LONG.to_string()]);
    assert_eq!(refused.body["Elements"][0]["InvoiceNumber"], "INLINE-1");
    assert!(emu.invoices(NZ).is_empty() && emu.contacts(NZ).len() == 3);

    inv["Contact"]["ContactNumber"] = json!("I".repeat(50));
    let created = create_invoice(&api, inv).await;
    assert_eq!(created["Contact"]["ContactNumber"], "I".repeat(50));
}

#[tokio::test]
async fn values_outside_the_spec_enums_are_refused() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut inv = invoice("ENUM-1", "10");
    inv["Type"] = json!("ACCREX");
    let refused = api.put("/Invoices", &json!({"Invoices": [inv]})).await;
    assert_validation_exception(&refused);
    assert_eq!(
        refused.messages(),
        vec![
            "Type 'ACCREX' is not valid. It must be one of: ACCPAY, ACCPAYCREDIT, APOVERPAYMENT, APPREPAYMENT, \
             ACCREC, ACCRECCREDIT, AROVERPAYMENT, ARPREPAYMENT."
                .to_string()
        ]
    );
    let address = json!({"Name": "Home Address Ltd", "Addresses": [{"AddressType": "HOME", "City": "Wellington"}]});
    let refused = api.put("/Contacts", &address).await;
    assert_validation_exception(&refused);
    assert_eq!(
        refused.messages(),
        vec!["AddressType 'HOME' is not valid. It must be one of: POBOX, STREET.".to_string()]
    );
    assert_eq!(refused.body["Elements"][0]["Addresses"][0], json!({"City": "Wellington"}));
    // The enums the handlers already read in any case stay that way.
    let mut relaxed = invoice("ENUM-2", "10");
    relaxed["Status"] = json!("authorised");
    relaxed["LineAmountTypes"] = json!("exclusive");
    assert_eq!(create_invoice(&api, relaxed).await["Status"], "AUTHORISED");
    assert_eq!(emu.invoices(NZ).len(), 1);
}

#[tokio::test]
async fn unknown_and_read_only_properties_are_ignored() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut inv = invoice("IGNORED-1", "10");
    inv["NotAXeroField"] = json!("x".repeat(5000));
    inv["Payments"] = json!([{"Status": "NOT-A-STATUS"}]);
    create_invoice(&api, inv).await;
}

async fn authorised_credit_note(api: &Api) -> String {
    let note = json!({"Type": "ACCRECCREDIT", "Contact": {"ContactNumber": "C-1001"}, "Status": "AUTHORISED",
        "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200", "TaxType": "OUTPUT2"}]});
    let resp = api.put("/CreditNotes", &note).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.body["CreditNotes"][0]["CreditNoteID"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn an_allocation_needs_the_properties_the_spec_requires() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("ALLOC-1", "100")).await;
    let cn = authorised_credit_note(&api).await;
    let path = format!("/CreditNotes/{cn}/Allocations");
    let no_date = json!({"Allocations": [{"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 5}]});
    let refused = api.put(&path, &no_date).await;
    assert_validation_exception(&refused);
    assert_eq!(refused.messages(), vec!["The Date field is required.".to_string()]);
    let mut nothing = api.put(&path, &json!({"Allocations": [{}]})).await.messages();
    nothing.sort();
    assert_eq!(
        nothing,
        vec!["The Amount field is required.", "The Date field is required.", "The Invoice field is required."]
    );
    let complete =
        json!({"Allocations": [{"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Amount": 5, "Date": "2026-11-03"}]});
    let allocated = api.put(&path, &complete).await;
    assert_eq!(allocated.status, 200, "{}", allocated.text);
    spec("Allocations", &allocated.body);
}

#[tokio::test]
async fn required_applies_to_updates_only_where_the_schema_is_the_update() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("REQ-1", "100")).await;
    let payment = json!({"Invoice": {"InvoiceID": inv["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 10});
    let paid = api.put("/Payments", &payment).await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let id = paid.body["Payments"][0]["PaymentID"].as_str().expect("id").to_string();
    // POST /Payments/{id} takes PaymentDelete, whose one required property is the Status.
    let refused = api.post(&format!("/Payments/{id}"), &json!({"Payments": [{"Reference": "no status"}]})).await;
    assert_validation_exception(&refused);
    assert_eq!(refused.messages(), vec!["The Status field is required.".to_string()]);
    // A partial update of an invoice sends no Type, Contact or lines and is fine.
    let id = inv["InvoiceID"].as_str().expect("id");
    assert_eq!(api.post(&format!("/Invoices/{id}"), &json!({"Reference": "partial"})).await.status, 200);
}

#[tokio::test]
async fn with_summarize_errors_false_only_the_bad_element_fails() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let mut bad = invoice("MIX-2", "10");
    bad["Type"] = json!("ACCREX");
    bad["Contact"] = json!({"Name": "Mixed Batch Ltd", "ContactNumber": "M".repeat(51)});
    let body = json!({"Invoices": [invoice("MIX-1", "10"), bad, invoice("MIX-3", "30")]});
    let resp = api.put("/Invoices?summarizeErrors=false", &body).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    spec("Invoices", &resp.body);
    let items = resp.body["Invoices"].as_array().expect("array");
    let statuses: Vec<&Value> = items.iter().map(|i| &i["StatusAttributeString"]).collect();
    assert_eq!(statuses, vec!["OK", "ERROR", "OK"]);
    assert_eq!(items[1]["HasErrors"], true);
    assert_eq!(items[1]["InvoiceNumber"], "MIX-2");
    let mut messages: Vec<&str> =
        items[1]["ValidationErrors"].as_array().expect("errors").iter().filter_map(|e| e["Message"].as_str()).collect();
    messages.sort();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0], TOO_LONG);
    assert!(messages[1].starts_with("Type 'ACCREX' is not valid."), "{messages:?}");
    let stored: Vec<String> =
        emu.invoices(NZ).iter().map(|i| i["InvoiceNumber"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(stored, vec!["MIX-1", "MIX-3"]);

    let contacts =
        json!({"Contacts": [{"Name": "Fine Ltd"}, {"Name": "Too Long Ltd", "ContactNumber": "T".repeat(51)}]});
    let resp = api.put("/Contacts?summarizeErrors=false", &contacts).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    spec("Contacts", &resp.body);
    assert_eq!(resp.body["Contacts"][1]["HasValidationErrors"], true);
    assert_eq!(resp.body["Contacts"][1]["ValidationErrors"][0]["Message"], TOO_LONG);
}

#[tokio::test]
async fn the_emulator_does_not_start_without_the_spec() {
    let missing = std::env::temp_dir().join("no-xero-openapi-here");
    let err = Emulator::start(EmulatorConfig::default().openapi_dir(&missing)).await.err().expect("start fails");
    let text = err.to_string();
    assert!(text.contains(&missing.join("xero_accounting.yaml").display().to_string()), "{text}");
    assert!(text.contains(SPEC_DIR_VAR), "{text}");
}
