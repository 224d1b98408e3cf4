//! Checks the `detail` of an event xero-sync publishes against its contract,
//! `docs/contracts/events/<type>.schema.json`, so a function that starts sending something the
//! contract does not allow fails its own tests instead of a platform consumer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// Where the event contracts live.
pub fn schema_dir() -> PathBuf {
    crate::workspace_root().join("docs/contracts/events")
}

/// Every violation of the schema for `detail["type"]`, each as "path: message" (the path is a
/// JSON pointer into `detail`). An event type without a schema is an error too.
pub fn check(detail: &Value) -> Result<(), Vec<String>> {
    let kind = match detail.get("type") {
        Some(Value::String(kind)) => kind,
        Some(other) => return Err(vec![format!("/type: {other} is not a string, so no schema can be chosen")]),
        None => return Err(vec!["/: \"type\" is missing, so no schema can be chosen".to_string()]),
    };
    let validator = validator(kind).map_err(|e| vec![e])?;
    let errors: Vec<String> = validator
        .iter_errors(detail)
        .map(|e| {
            let path = e.instance_path().to_string();
            format!("{}: {e}", if path.is_empty() { "/" } else { &path })
        })
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Panics with the event type, every violation and the event itself when `detail` does not match.
pub fn assert_valid(detail: &Value) {
    if let Err(errors) = check(detail) {
        let kind = detail.get("type").and_then(Value::as_str).unwrap_or("(untyped)");
        panic!("{kind} event does not match its schema:\n  {}\n{detail:#}", errors.join("\n  "));
    }
}

fn validator(kind: &str) -> Result<Arc<jsonschema::Validator>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    // The type becomes part of a file name: anything else could reach a file outside the contracts.
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.') {
        return Err(format!("/type: no schema for event type {kind:?}"));
    }
    // A poisoned lock only means another test panicked mid-compile; the map is still consistent.
    let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(validator) = cache.get(kind) {
        return Ok(validator.clone());
    }
    let path = schema_dir().join(format!("{kind}.schema.json"));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("/type: no schema for event type {kind:?} ({} does not exist)", path.display()));
        }
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    };
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    // Formats are annotations only in 2020-12 unless asked for; uuid, date and date-time carry meaning here.
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()));
    let validator = Arc::new(validator);
    cache.insert(kind.to_string(), validator.clone());
    Ok(validator)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use xero_sync_domain::events::{EventKind, PlatformEvent};
    use xero_sync_domain::model::AccountId;

    use super::*;

    /// Mirrors `EventKind` in functions/domain/src/events.rs (its `as_str`); a kind added there
    /// needs a schema file and an entry here.
    const KINDS: [&str; 25] = [
        "connection.connected",
        "connection.needs_reconnect",
        "connection.disconnected",
        "connection.inactivity_warning",
        "invoice.synced",
        "invoice.sync_failed",
        "invoice.payment_status_changed",
        "contact.upserted",
        "payment.recorded",
        "payment.reversed",
        "payment.synced",
        "payment.sync_failed",
        "credit_note.synced",
        "credit_note.sync_failed",
        "customer.synced",
        "customer.sync_failed",
        "item.synced",
        "item.sync_failed",
        "attachment.synced",
        "attachment.sync_failed",
        "tax_rates.changed",
        "accounts.changed",
        "items.changed",
        "currencies.changed",
        "tracking.changed",
    ];

    const TENANT: &str = "3f1c1e62-9b0a-4d7e-8f5e-2b6d0c4a7e11";
    const XERO_INVOICE: &str = "a6b2f3c4-1d2e-4f5a-9b8c-7d6e5f4a3b2c";

    fn data(kind: &str) -> Value {
        match kind {
            "connection.connected" => json!({ "organisation_name": "Demo Company (AU)", "status": "CONNECTED" }),
            "connection.needs_reconnect" => json!({
                "organisation_name": "Demo Company (AU)",
                "status": "NEEDS_RECONNECT",
                "reason": "Xero no longer accepts the connection"
            }),
            "connection.disconnected" => {
                json!({ "organisation_name": "Demo Company (AU)", "status": "DISCONNECTED_INACTIVE", "reason": null })
            }
            "connection.inactivity_warning" => json!({
                "organisation_name": "Demo Company (AU)",
                "last_activity_at": "2026-09-22T06:00:00.000000Z",
                "disconnect_on": "2026-11-21"
            }),
            "invoice.synced" => json!({
                "invoice_id": "inv-1001",
                "invoice_number": "INV-1001",
                "xero_invoice_id": XERO_INVOICE,
                "xero_status": "AUTHORISED",
                "xero_url": "https://go.xero.com/organisationlogin/default.aspx?shortcode=!NLglS&redirecturl=/AccountsReceivable/View.aspx?InvoiceID=a6b2f3c4-1d2e-4f5a-9b8c-7d6e5f4a3b2c",
                "action": "created"
            }),
            "invoice.sync_failed" => json!({
                "invoice_id": "inv-1001",
                "invoice_number": "INV-1001",
                "xero_invoice_id": null,
                "reasons": ["Account code '999' is not a valid code for this document."]
            }),
            "invoice.payment_status_changed" => json!({
                "xero_invoice_id": XERO_INVOICE,
                "invoice_id": "inv-1001",
                "invoice_number": "INV-1001",
                "status": "PAID",
                "total": "110.00",
                "amount_due": "0.00",
                "amount_paid": "110.00",
                "amount_credited": "0",
                "currency": "AUD",
                "fully_paid_on": "2026-11-20",
                "updated_at": "2026-11-20T23:14:05.123000Z"
            }),
            "payment.recorded" | "payment.reversed" => json!({
                "xero_payment_id": "0d4c7a52-6e1f-4b39-a8d2-5c3b9e7f1a60",
                "xero_invoice_id": XERO_INVOICE,
                "invoice_id": null,
                "invoice_number": "INV-1001",
                "amount": "-110.00",
                "currency": null,
                "date": "2026-11-20",
                "reference": "Card 4242",
                "status": if kind == "payment.recorded" { "AUTHORISED" } else { "DELETED" },
                "updated_at": "2026-11-20T23:14:05.000000Z"
            }),
            "payment.synced" => json!({
                "payment_id": "pay-7",
                "invoice_id": "inv-1001",
                "xero_payment_id": "0d4c7a52-6e1f-4b39-a8d2-5c3b9e7f1a60",
                "xero_invoice_id": XERO_INVOICE,
                "amount": "55.00",
                "status": "SYNCED",
                "xero_url": null,
                "action": "created"
            }),
            "payment.sync_failed" => json!({
                "payment_id": "pay-7",
                "invoice_id": "inv-1001",
                "reasons": ["Payment amount exceeds the amount outstanding on this document"]
            }),
            "credit_note.synced" => json!({
                "credit_note_id": "cn-2001",
                "credit_note_number": "CN-2001",
                "invoice_id": "inv-1001",
                "xero_credit_note_id": "3f1d2c4b-5a6e-4f70-8a9b-0c1d2e3f4a5b",
                "xero_invoice_id": XERO_INVOICE,
                "status": "SYNCED",
                "total": "21.39",
                "allocated": "21.39",
                "unallocated_reason": null,
                "removed": { "allocations": 0, "refunds": 0 },
                "xero_url": null,
                "action": "created"
            }),
            "credit_note.sync_failed" => json!({
                "credit_note_id": "cn-2001",
                "credit_note_number": "CN-2001",
                "invoice_id": null,
                "reasons": ["credit_note.lines[0].tax_rate_id: tax rate vat is not mapped to a Xero tax rate"]
            }),
            "customer.synced" => json!({
                "customer_id": "cust-42",
                "xero_contact_id": "5b7e9c1d-2f4a-4c6e-8a0b-1d3f5a7c9e2b",
                "action": "kept_xero",
                "reason": "the contact was edited in Xero at 2026-11-23T10:00:00.000000Z; the settings keep edits made in Xero",
                "xero_url": null
            }),
            "customer.sync_failed" => json!({
                "customer_id": "cust-42",
                "reasons": ["Email address must be valid."]
            }),
            "item.synced" => json!({
                "item_id": "prod-15",
                "code": "PIPE-CU-15",
                "xero_item_id": "7c1e9a3b-5d2f-4e6a-8b0c-2d4f6a8c0e1b",
                "action": "created"
            }),
            "item.sync_failed" => json!({
                "item_id": "prod-15",
                "code": "PIPE-CU-15",
                "reasons": ["item.tax_rate_id: tax rate vat is not mapped to a Xero tax rate"]
            }),
            "attachment.synced" => json!({
                "document": "invoice",
                "document_id": "inv-1001",
                "file_name": "Job sheet 1001.pdf",
                "upload_id": "6f1d3b5a-7c9e-4b2d-8f0a-1c3e5a7b9d2f",
                "xero_attachment_id": "2e4a6c8b-0d1f-4a3c-9e5b-7d9f1b3d5e7a",
                "replaced": false,
                "files": 1
            }),
            "attachment.sync_failed" => json!({
                "document": "credit_note",
                "document_id": "cn-7",
                "file_name": "Job sheet 1001.pdf",
                "upload_id": "6f1d3b5a-7c9e-4b2d-8f0a-1c3e5a7b9d2f",
                "reasons": ["the upload is larger than the 90 bytes declared"]
            }),
            "contact.upserted" => json!({
                "xero_contact_id": "5b7e9c1d-2f4a-4c6e-8a0b-1d3f5a7c9e2b",
                "customer_id": "cust-42",
                "name": "Smith Plumbing",
                "first_name": "Jo",
                "last_name": null,
                "email": "jo@example.com",
                "phones": [{ "type": "MOBILE", "number": "0400 000 000" }],
                "addresses": [{
                    "type": "billing",
                    "line1": "1 Main St",
                    "line2": null,
                    "city": "Sydney",
                    "region": "NSW",
                    "postal_code": "2000",
                    "country": "AU"
                }],
                "archived": false,
                "is_customer": true,
                "updated_at": "2026-11-20T23:14:05.000000Z"
            }),
            "tax_rates.changed" => json!({ "tax_rates": [{
                "tax_type": "OUTPUT",
                "name": "GST on Income",
                "status": "ACTIVE",
                "effective_rate": "10.0000",
                "components": [{ "name": "GST", "rate": "10.0000", "is_compound": false }],
                "can_apply_to_revenue": true
            }] }),
            "accounts.changed" => json!({ "accounts": [
                { "code": "200", "name": "Sales", "type": "REVENUE", "status": "ACTIVE", "tax_type": "OUTPUT" },
                { "code": null, "name": "Business Bank", "type": "BANK", "status": "ACTIVE", "tax_type": null }
            ] }),
            "items.changed" => json!({ "items": [{
                "code": "CALLOUT",
                "name": "Call-out fee",
                "description": null,
                "unit_price": "89.5000",
                "account_code": "200",
                "tax_type": "OUTPUT",
                "is_sold": true
            }] }),
            "currencies.changed" => json!({ "currencies": [{ "code": "AUD", "description": "Australian Dollar" }] }),
            "tracking.changed" => json!({ "tracking_categories": [{
                "id": "7c9e1a3b-5d7f-4a2c-9e4b-6d8f0a2c4e6a",
                "name": "Region",
                "status": "ACTIVE",
                "options": [{ "id": "8d0f2b4c-6e8a-4b3d-8f5c-7e9a1b3d5f7b", "name": "North", "status": "ACTIVE" }]
            }] }),
            other => panic!("no example for {other}"),
        }
    }

    fn example(kind: &str) -> Value {
        json!({
            "id": "9a8b7c6d-5e4f-5a3b-8c2d-1e0f9a8b7c6d",
            "type": kind,
            "account_id": "acct-42",
            "tenant_id": TENANT,
            "occurred_at": "2026-11-21T06:00:00.000000Z",
            "data": data(kind),
        })
    }

    fn errors(detail: &Value) -> Vec<String> {
        check(detail).expect_err("the event should be refused")
    }

    fn assert_refused_at(detail: &Value, path: &str) {
        let errors = errors(detail);
        assert!(errors.iter().any(|e| e.starts_with(&format!("{path}: "))), "nothing at {path}: {errors:?}");
    }

    #[test]
    fn every_event_kind_has_a_schema_file() {
        for kind in KINDS {
            let parsed: EventKind = serde_json::from_value(json!(kind)).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(parsed.as_str(), kind);
            let path = schema_dir().join(format!("{kind}.schema.json"));
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }

    #[test]
    fn every_schema_file_is_for_a_known_event_kind() {
        for entry in std::fs::read_dir(schema_dir()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(kind) = name.strip_suffix(".schema.json") {
                assert!(KINDS.contains(&kind), "{name} is for no EventKind");
            }
        }
    }

    #[test]
    fn a_valid_example_of_every_event_type_passes() {
        let failures: Vec<String> = KINDS
            .iter()
            .filter_map(|kind| check(&example(kind)).err().map(|errors| format!("{kind}: {errors:?}")))
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn an_event_as_core_serialises_it_passes() {
        let event = PlatformEvent::new(
            EventKind::ConnectionConnected,
            AccountId::parse("acct:42@example_co.uk").unwrap(),
            Some(xero_sync_domain::model::TenantId::parse(TENANT).unwrap()),
            "grant-1",
            xero_sync_domain::time::now(),
            data("connection.connected"),
        );
        assert_valid(&serde_json::to_value(&event).unwrap());
    }

    #[test]
    fn a_field_of_the_wrong_type_is_refused_by_its_path() {
        let mut detail = example("invoice.synced");
        detail["data"]["invoice_number"] = json!(1001);
        assert_refused_at(&detail, "/data/invoice_number");
    }

    #[test]
    fn a_field_the_contract_does_not_know_is_refused_by_name() {
        let mut detail = example("contact.upserted");
        detail["data"]["addresses"][0]["attention"] = json!("Accounts");
        let errors = errors(&detail);
        assert!(errors.iter().any(|e| e.starts_with("/data/addresses/0: ") && e.contains("attention")), "{errors:?}");
    }

    #[test]
    fn an_amount_that_is_not_a_decimal_string_is_refused() {
        for amount in [json!("110,00"), json!("1e3"), json!(110.0), json!("")] {
            let mut detail = example("payment.recorded");
            detail["data"]["amount"] = amount;
            assert_refused_at(&detail, "/data/amount");
        }
        let mut detail = example("tax_rates.changed");
        detail["data"]["tax_rates"][0]["components"][0]["rate"] = json!("ten");
        assert_refused_at(&detail, "/data/tax_rates/0/components/0/rate");
    }

    #[test]
    fn a_missing_data_field_is_named() {
        let mut detail = example("connection.disconnected");
        detail["data"].as_object_mut().unwrap().remove("reason");
        let errors = errors(&detail);
        assert!(errors.iter().any(|e| e.starts_with("/data: ") && e.contains("reason")), "{errors:?}");
    }

    #[test]
    fn the_status_must_match_the_event_type() {
        let mut detail = example("payment.reversed");
        detail["data"]["status"] = json!("AUTHORISED");
        assert_refused_at(&detail, "/data/status");
    }

    #[test]
    fn occurred_at_must_have_the_fixed_width_format() {
        for at in ["2026-11-21T06:00:00Z", "2026-11-21T06:00:00.000000+00:00", "2026-11-21T06:00:00.000Z"] {
            let mut detail = example("invoice.synced");
            detail["occurred_at"] = json!(at);
            assert_refused_at(&detail, "/occurred_at");
        }
    }

    #[test]
    fn account_ids_follow_the_rule_account_id_parse_applies() {
        for account in ["acct#1", "", "a b"] {
            let mut detail = example("invoice.synced");
            detail["account_id"] = json!(account);
            assert!(AccountId::parse(account).is_err());
            assert_refused_at(&detail, "/account_id");
        }
        let mut detail = example("invoice.synced");
        detail["account_id"] = json!("a".repeat(AccountId::MAX_LEN + 1));
        assert_refused_at(&detail, "/account_id");
    }

    #[test]
    fn ids_must_be_uuids() {
        let mut detail = example("tracking.changed");
        detail["data"]["tracking_categories"][0]["options"][0]["id"] = json!("north");
        assert_refused_at(&detail, "/data/tracking_categories/0/options/0/id");
    }

    #[test]
    fn an_unknown_event_type_is_an_error() {
        for kind in [json!("invoice.deleted"), json!("../invoice-webhook"), json!(7)] {
            let mut detail = example("invoice.synced");
            detail["type"] = kind;
            assert_refused_at(&detail, "/type");
        }
        let mut detail = example("invoice.synced");
        detail.as_object_mut().unwrap().remove("type");
        assert!(check(&detail).is_err());
    }

    #[test]
    #[should_panic(expected = "payment.reversed event does not match its schema")]
    fn assert_valid_panics_naming_the_event_type() {
        let mut detail = example("payment.reversed");
        detail["data"]["currency"] = json!("dollars");
        assert_valid(&detail);
    }
}
