//! A platform invoice as a Xero invoice (`ACCREC`), per the connection's settings: the one
//! place an invoice becomes Xero's JSON ([`to_xero`]), voids included ([`withdrawal`]).
//!
//! Pure: no I/O, so every rule is a unit test. What the settings cannot resolve (an unmapped
//! tax rate, no account code, an unknown tracking option) is a list of problems the account
//! must fix, not something a retry could change.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use xero_sync_domain::digest::{hex, sha256_hex};
use xero_sync_domain::links;
use xero_sync_domain::problem::Problem;
use xero_sync_domain::settings::{ConnectionSettings, NewInvoiceStatus};
use xero_sync_domain::xero::{CreditNoteType, InvoiceStatus, InvoiceType, LineAmountTypes, TrackingCategory};

use xero_sync_domain::model::PlatformCustomerId;

use crate::event::{AddressType, AmountsAre, Customer, InvoiceEvent, Line, limits};

/// Who the invoice is for in Xero.
#[derive(Debug, Clone, Copy)]
pub enum ContactRef<'a> {
    /// A contact already in Xero (mapped or found).
    Existing(Uuid),
    /// Not in Xero yet: its details go with the invoice and Xero creates it, saving a call.
    /// `distinct_name` when another active contact has the customer's name already: Xero
    /// requires active contacts' names to be unique (and would otherwise take that contact).
    New { customer: &'a Customer, distinct_name: bool },
}

impl<'a> ContactRef<'a> {
    pub fn new(customer: &'a Customer) -> Self {
        Self::New { customer, distinct_name: false }
    }
}

/// The ContactNumber that stands for a platform customer in Xero, where it holds 50
/// characters: the id itself when it fits, else its first 37 characters, `~` and 12 hex digits
/// of its SHA-256, which is stable, still readable, and never another id (ids have no `~`).
pub fn contact_number(id: &PlatformCustomerId) -> String {
    let id = id.as_str();
    if id.len() <= limits::CONTACT_NUMBER {
        return id.to_owned();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hash = hex(&digest[..6]);
    // Platform ids are ASCII, so byte positions are character positions.
    format!("{}~{hash}", &id[..limits::CONTACT_NUMBER - 13])
}

/// The name a customer's new contact gets beside an active namesake: `John Smith (cust-2)`,
/// cut to fit Xero's 255 characters.
pub fn distinct_name(customer: &Customer) -> String {
    let suffix = format!(" ({})", contact_number(&customer.id));
    let room = limits::CONTACT_NAME.saturating_sub(suffix.chars().count());
    let name: String = customer.name.trim().chars().take(room).collect();
    format!("{}{suffix}", name.trim_end())
}

/// A decimal as a JSON number with exactly its digits.
pub fn number(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    serde_json::from_str::<serde_json::Number>(&text).map(Value::Number).unwrap_or(Value::String(text))
}

/// The invoice's `Contact` element.
pub fn contact_json(contact: ContactRef<'_>) -> Value {
    match contact {
        ContactRef::Existing(id) => json!({ "ContactID": id }),
        ContactRef::New { customer: c, distinct_name: distinct } => {
            let mut m = Map::new();
            let name = if distinct { self::distinct_name(c) } else { c.name.trim().to_owned() };
            m.insert("Name".into(), json!(name));
            // Stands for the platform's customer id, so the contact is found by number next time.
            m.insert("ContactNumber".into(), json!(contact_number(&c.id)));
            for (key, value) in [
                ("FirstName", &c.first_name),
                ("LastName", &c.last_name),
                ("EmailAddress", &c.email),
                ("TaxNumber", &c.tax_number),
            ] {
                if let Some(v) = value {
                    m.insert(key.into(), json!(v));
                }
            }
            if let Some(phone) = &c.phone {
                m.insert("Phones".into(), json!([{ "PhoneType": "DEFAULT", "PhoneNumber": phone }]));
            }
            if !c.addresses.is_empty() {
                let addresses: Vec<Value> = c
                    .addresses
                    .iter()
                    .map(|a| {
                        // Xero calls the postal (billing) address POBOX.
                        let kind = match a.kind {
                            AddressType::Billing => "POBOX",
                            AddressType::Street => "STREET",
                        };
                        let mut address = Map::new();
                        address.insert("AddressType".into(), json!(kind));
                        for (key, value) in [
                            ("AddressLine1", &a.line1),
                            ("AddressLine2", &a.line2),
                            ("City", &a.city),
                            ("Region", &a.region),
                            ("PostalCode", &a.postal_code),
                            ("Country", &a.country),
                        ] {
                            if let Some(v) = value {
                                address.insert(key.into(), json!(v));
                            }
                        }
                        Value::Object(address)
                    })
                    .collect();
                m.insert("Addresses".into(), Value::Array(addresses));
            }
            Value::Object(m)
        }
    }
}

/// The invoice Xero holds already, when the write is an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InXero {
    pub id: Uuid,
    /// Its status as last seen.
    pub status: Option<InvoiceStatus>,
}

/// The Xero invoice for `event`, billed to `to`: a new one, or an update of `existing`. Or
/// every problem that stops it.
pub fn to_xero(
    event: &InvoiceEvent,
    settings: &ConnectionSettings,
    tracking: &[TrackingCategory],
    to: ContactRef<'_>,
    existing: Option<InXero>,
) -> Result<Value, Vec<Problem>> {
    let inv = &event.invoice;
    let mut problems = Vec::new();
    let new_status = match settings.new_invoice_status {
        NewInvoiceStatus::Draft => InvoiceStatus::Draft,
        NewInvoiceStatus::Authorised => InvoiceStatus::Authorised,
    };
    if new_status == InvoiceStatus::Authorised && inv.due_date.is_none() {
        problems.push(Problem::new("invoice.due_date", "is needed: Xero approves an invoice only with a due date"));
    }
    let amounts = line_amount_types(inv.amounts_are);
    let lines = line_items("invoice", &inv.lines, inv.amounts_are, settings, tracking, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut invoice = Map::new();
    if let Some(existing) = existing {
        invoice.insert("InvoiceID".into(), json!(existing.id));
    }
    invoice.insert("Type".into(), json!(InvoiceType::AccRec));
    invoice.insert("InvoiceNumber".into(), json!(inv.number.trim()));
    if let Some(reference) = &inv.reference {
        invoice.insert("Reference".into(), json!(reference));
    }
    invoice.insert("Contact".into(), contact_json(to));
    invoice.insert("Date".into(), json!(inv.issue_date.format("%Y-%m-%d").to_string()));
    if let Some(due) = inv.due_date {
        invoice.insert("DueDate".into(), json!(due.format("%Y-%m-%d").to_string()));
    }
    invoice.insert("CurrencyCode".into(), json!(inv.currency));
    invoice.insert("LineAmountTypes".into(), json!(amounts));
    if let Some(template) = &settings.invoice_url_template {
        invoice.insert("Url".into(), json!(links::platform_page(template, inv.id.as_str())));
    }
    // An approved invoice stays approved: Xero refuses to take it back to draft.
    let status = match existing.and_then(|e| e.status) {
        Some(approved) if approved.is_approved() => approved,
        _ => new_status,
    };
    invoice.insert("Status".into(), json!(status));
    invoice.insert("LineItems".into(), Value::Array(lines));
    Ok(Value::Object(invoice))
}

/// The Xero credit note (`ACCRECCREDIT`, always AUTHORISED: it is a credit the customer has,
/// and only an approved one can be allocated) for a platform credit note, without its
/// `Contact`, which the push adds once it knows it. Or every problem that stops it.
pub fn credit_note_to_xero(
    note: &crate::credit_note_event::CreditNote,
    settings: &ConnectionSettings,
    tracking: &[TrackingCategory],
    existing: Option<Uuid>,
) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let lines = line_items("credit_note", &note.lines, note.amounts_are, settings, tracking, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut v = Map::new();
    if let Some(id) = existing {
        v.insert("CreditNoteID".into(), json!(id));
    }
    v.insert("Type".into(), json!(CreditNoteType::AccRecCredit));
    v.insert("CreditNoteNumber".into(), json!(note.number.trim()));
    if let Some(reference) = &note.reference {
        v.insert("Reference".into(), json!(reference));
    }
    v.insert("Date".into(), json!(note.issue_date.format("%Y-%m-%d").to_string()));
    v.insert("CurrencyCode".into(), json!(note.currency));
    v.insert("LineAmountTypes".into(), json!(line_amount_types(note.amounts_are)));
    v.insert("Status".into(), json!(InvoiceStatus::Authorised));
    v.insert("LineItems".into(), Value::Array(lines));
    Ok(Value::Object(v))
}

/// How the platform's amounts are read in Xero.
pub fn line_amount_types(amounts_are: AmountsAre) -> LineAmountTypes {
    match amounts_are {
        AmountsAre::TaxExclusive => LineAmountTypes::Exclusive,
        AmountsAre::TaxInclusive => LineAmountTypes::Inclusive,
        AmountsAre::NoTax => LineAmountTypes::NoTax,
    }
}

/// A document's lines as Xero's `LineItems`: accounts, tax rates, items and tracking mapped by
/// the settings, the same for invoices and credit notes. What cannot be mapped joins `problems`,
/// named under `prefix`.
pub fn line_items(
    prefix: &str,
    document_lines: &[Line],
    amounts_are: AmountsAre,
    settings: &ConnectionSettings,
    tracking: &[TrackingCategory],
    problems: &mut Vec<Problem>,
) -> Vec<Value> {
    let mut lines = Vec::with_capacity(document_lines.len());
    for (i, line) in document_lines.iter().enumerate() {
        let field = |name: &str| format!("{prefix}.lines[{i}].{name}");
        let mut l = Map::new();
        l.insert("Description".into(), json!(line.description));
        l.insert("Quantity".into(), number(line.quantity));
        l.insert("UnitAmount".into(), number(line.unit_price));
        if let Some(d) = line.discount_rate.filter(|d| !d.is_zero()) {
            l.insert("DiscountRate".into(), number(d));
        }
        match line.account_code.as_ref().or(settings.default_sales_account_code.as_ref()) {
            Some(code) => {
                l.insert("AccountCode".into(), json!(code));
            }
            None => {
                problems.push(Problem::new(field("account_code"), "is missing, and no default sales account is set"))
            }
        }
        if amounts_are != AmountsAre::NoTax {
            let tax_type = match &line.tax_rate_id {
                Some(id) => match settings.tax_mapping.iter().find(|m| &m.platform_tax_rate_id == id) {
                    Some(m) => Some(m.xero_tax_type.clone()),
                    None => {
                        problems.push(Problem::new(
                            field("tax_rate_id"),
                            format!("tax rate {id} is not mapped to a Xero tax rate"),
                        ));
                        None
                    }
                },
                // Without one, the default; without that, Xero takes the account's own tax rate.
                None => settings.default_tax_type.clone(),
            };
            if let Some(t) = tax_type {
                l.insert("TaxType".into(), json!(t));
            }
        }
        if settings.match_items_by_code {
            if let Some(code) = &line.item_code {
                l.insert("ItemCode".into(), json!(code));
            }
        }
        let mut line_tracking = Vec::new();
        for mapping in &settings.tracking_mapping {
            let Some(value) = line.job_attributes.get(&mapping.job_attribute) else { continue };
            let option = mapping.options.get(value).unwrap_or(value);
            match tracking.iter().find(|c| c.tracking_category_id == mapping.xero_category_id) {
                // The snapshot lists archived categories too (so this can say so).
                Some(category) if !category.is_active() => problems.push(Problem::new(
                    field("job_attributes"),
                    format!("{} is archived in Xero (from {})", category.name, mapping.job_attribute),
                )),
                Some(category) if category.active_option(option).is_some() => {
                    line_tracking.push(json!({ "Name": category.name, "Option": option }));
                }
                Some(category) => problems.push(Problem::new(
                    field("job_attributes"),
                    format!(
                        "{} has no active option {option} (from {} = {value})",
                        category.name, mapping.job_attribute
                    ),
                )),
                None => problems
                    .push(Problem::new(field("job_attributes"), "a mapped tracking category no longer exists in Xero")),
            }
        }
        if !line_tracking.is_empty() {
            l.insert("Tracking".into(), Value::Array(line_tracking));
        }
        lines.push(Value::Object(l));
    }
    lines
}

/// Lines naming an item we pushed to Xero carry its code (`ItemCode`), so Xero's item reports
/// see them; with `match_items_by_code` every line naming a code carries it already.
pub fn carry_item_codes(document: &mut Value, lines: &[Line], pushed: &std::collections::HashSet<String>) {
    if pushed.is_empty() {
        return;
    }
    let Some(items) = document.get_mut("LineItems").and_then(Value::as_array_mut) else { return };
    for (item, line) in items.iter_mut().zip(lines) {
        if let Some(code) = line.item_code.as_ref().filter(|c| pushed.contains(*c)) {
            item["ItemCode"] = json!(code);
        }
    }
}

/// What takes `existing` back: a draft or one awaiting approval is deleted, an approved one voided.
pub fn withdrawal(existing: InXero) -> Value {
    let status = existing.status.map_or(InvoiceStatus::Voided, InvoiceStatus::withdrawn);
    json!({ "InvoiceID": existing.id, "Status": status })
}

/// What the invoice says, and who it bills: equal hashes mean nothing to send, and an update
/// that names another customer is a change. Of the contact only who it is counts (its
/// ContactID, or the ContactNumber standing for the customer): a customer's phone changing is
/// no reason to write the invoice again, since an existing contact's details are not sent with
/// it. serde_json's maps are sorted, so the text is canonical.
pub fn content_hash(invoice: &Value) -> String {
    let mut bills = invoice.clone();
    if let Some(Value::Object(contact)) = bills.get_mut("Contact") {
        contact.retain(|k, _| k == "ContactID" || k == "ContactNumber");
    }
    sha256_hex(bills.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use xero_sync_domain::settings::{TaxMapping, TrackingMapping};
    use xero_sync_domain::xero::TrackingOption;

    fn event() -> InvoiceEvent {
        crate::event::example()
    }

    const REGION: Uuid = Uuid::from_u128(7);

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            default_sales_account_code: Some("200".into()),
            default_tax_type: Some("OUTPUT2".into()),
            new_invoice_status: NewInvoiceStatus::Authorised,
            tax_mapping: vec![TaxMapping {
                platform_tax_rate_id: "gst".into(),
                rate: Decimal::new(15, 0),
                components: vec![],
                xero_tax_type: "OUTPUT2".into(),
            }],
            tracking_mapping: vec![TrackingMapping {
                xero_category_id: REGION,
                job_attribute: "zone".into(),
                options: BTreeMap::from([("N".into(), "North".into())]),
            }],
            match_items_by_code: true,
            ..ConnectionSettings::default()
        }
    }

    fn tracking() -> Vec<TrackingCategory> {
        vec![TrackingCategory {
            tracking_category_id: REGION,
            name: "Region".into(),
            status: None,
            options: vec![TrackingOption {
                tracking_option_id: Uuid::from_u128(8),
                name: "North".into(),
                status: None,
            }],
        }]
    }

    #[test]
    fn a_platform_invoice_becomes_an_approved_accrec_invoice_with_mapped_lines() {
        let e = event();
        let invoice = to_xero(&e, &settings(), &tracking(), ContactRef::new(&e.customer), None).unwrap();
        assert_eq!(invoice["Type"], "ACCREC");
        assert_eq!(invoice["InvoiceNumber"], "INV-1001");
        assert_eq!(invoice["Status"], "AUTHORISED");
        assert_eq!(invoice["LineAmountTypes"], "Exclusive");
        assert_eq!(invoice["Date"], "2026-11-21");
        assert_eq!(invoice["DueDate"], "2026-12-05");
        let first = &invoice["LineItems"][0];
        assert_eq!(
            (first["AccountCode"].as_str(), first["TaxType"].as_str(), first["ItemCode"].as_str()),
            (Some("200"), Some("OUTPUT2"), Some("CALLOUT"))
        );
        assert_eq!(first["Tracking"], json!([{ "Name": "Region", "Option": "North" }]));
        let second = &invoice["LineItems"][1];
        assert_eq!(second["AccountCode"], "260", "the line's own account wins");
        assert_eq!(second["Quantity"].to_string(), "3.5");
        assert_eq!(second["UnitAmount"].to_string(), "12.4");
        assert_eq!(second["DiscountRate"].to_string(), "10");
        assert_eq!(invoice["Contact"]["ContactNumber"], "cust-7");
        assert_eq!(invoice["Contact"]["Addresses"][0]["AddressType"], "POBOX");
    }

    #[test]
    fn the_xero_invoice_links_to_the_platforms_page_when_the_settings_name_one() {
        let e = event();
        let without = to_xero(&e, &settings(), &tracking(), ContactRef::new(&e.customer), None).unwrap();
        assert!(without.get("Url").is_none());
        let linked = ConnectionSettings {
            invoice_url_template: Some("https://app.example.com/invoices/{invoice_id}".into()),
            ..settings()
        };
        let invoice = to_xero(&e, &linked, &tracking(), ContactRef::new(&e.customer), None).unwrap();
        assert_eq!(invoice["Url"], format!("https://app.example.com/invoices/{}", e.invoice.id.as_str()));
        xero_sync_testkit::openapi::accounting("Invoices", &json!({ "Invoices": [invoice] }));
    }

    #[test]
    fn the_invoices_we_send_match_xeros_spec() {
        let e = event();
        for to in [ContactRef::new(&e.customer), ContactRef::Existing(Uuid::new_v4())] {
            let invoice = to_xero(&e, &settings(), &tracking(), to, None).unwrap();
            xero_sync_testkit::openapi::accounting("Invoices", &json!({ "Invoices": [invoice] }));
        }
    }

    #[test]
    fn an_update_names_the_xero_invoice_and_never_takes_an_approved_one_back_to_draft() {
        let e = event();
        let mut s = settings();
        s.new_invoice_status = NewInvoiceStatus::Draft;
        let id = Uuid::new_v4();
        let to = ContactRef::Existing(Uuid::nil());
        for (was, sent) in [
            (Some(InvoiceStatus::Draft), "DRAFT"),
            (None, "DRAFT"),
            (Some(InvoiceStatus::Submitted), "SUBMITTED"),
            (Some(InvoiceStatus::Authorised), "AUTHORISED"),
        ] {
            let invoice = to_xero(&e, &s, &tracking(), to, Some(InXero { id, status: was })).unwrap();
            assert_eq!(
                (invoice["InvoiceID"].as_str(), invoice["Status"].as_str()),
                (Some(&*id.to_string()), Some(sent))
            );
            xero_sync_testkit::openapi::accounting("Invoices", &json!({ "Invoices": [invoice] }));
        }
        let new = to_xero(&e, &s, &tracking(), to, None).unwrap();
        assert!(new.get("InvoiceID").is_none());
    }

    #[test]
    fn a_draft_is_withdrawn_by_deleting_it_and_anything_else_by_voiding() {
        let id = Uuid::new_v4();
        let body = |status| withdrawal(InXero { id, status })["Status"].clone();
        assert_eq!(body(Some(InvoiceStatus::Draft)), "DELETED");
        assert_eq!(body(Some(InvoiceStatus::Submitted)), "DELETED");
        assert_eq!(body(Some(InvoiceStatus::Authorised)), "VOIDED");
        assert_eq!(body(None), "VOIDED");
        assert_eq!(withdrawal(InXero { id, status: None })["InvoiceID"], json!(id));
    }

    #[test]
    fn a_known_contact_is_referred_to_by_id_alone() {
        let e = event();
        let id = Uuid::new_v4();
        let invoice = to_xero(&e, &settings(), &tracking(), ContactRef::Existing(id), None).unwrap();
        assert_eq!(invoice["Contact"], json!({ "ContactID": id }));
    }

    #[test]
    fn what_the_settings_cannot_resolve_is_listed() {
        let mut e = event();
        e.invoice.due_date = None;
        e.invoice.lines[0].tax_rate_id = Some("vat".into());
        e.invoice.lines[0].job_attributes.insert("zone".into(), "Z".into());
        let mut s = settings();
        s.default_sales_account_code = None;
        let problems = to_xero(&e, &s, &tracking(), ContactRef::Existing(Uuid::nil()), None).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "invoice.due_date",
                "invoice.lines[0].account_code",
                "invoice.lines[0].tax_rate_id",
                "invoice.lines[0].job_attributes"
            ]
        );
        assert_eq!(problems[2].message, "tax rate vat is not mapped to a Xero tax rate");
        assert_eq!(problems[3].message, "Region has no active option Z (from zone = Z)");
    }

    #[test]
    fn a_line_mapped_to_an_archived_category_is_refused_naming_it() {
        let e = event();
        let mut archived = tracking();
        archived[0].status = Some(xero_sync_domain::xero::RecordStatus::Archived);
        let problems = to_xero(&e, &settings(), &archived, ContactRef::new(&e.customer), None).unwrap_err();
        assert_eq!(problems[0].field, "invoice.lines[0].job_attributes");
        assert!(problems[0].message.starts_with("Region is archived in Xero"), "{}", problems[0].message);
    }

    #[test]
    fn a_draft_needs_no_due_date_and_no_tax_invoices_carry_no_tax_types() {
        let mut e = event();
        e.invoice.due_date = None;
        e.invoice.amounts_are = AmountsAre::NoTax;
        let mut s = settings();
        s.new_invoice_status = NewInvoiceStatus::Draft;
        let invoice = to_xero(&e, &s, &tracking(), ContactRef::Existing(Uuid::nil()), None).unwrap();
        assert_eq!(invoice["Status"], "DRAFT");
        assert!(invoice["LineItems"].as_array().unwrap().iter().all(|l| l.get("TaxType").is_none()));
    }

    #[test]
    fn the_content_hash_sees_who_is_billed_and_every_other_change() {
        let e = event();
        let hash = |e: &InvoiceEvent| {
            content_hash(&to_xero(e, &settings(), &tracking(), ContactRef::new(&e.customer), None).unwrap())
        };
        assert_eq!(hash(&e), hash(&e.clone()), "the same content, the same hash");
        let mut changed = e.clone();
        changed.invoice.lines[1].quantity = Decimal::new(4, 0);
        assert_ne!(hash(&e), hash(&changed));
        let mut other_customer = e.clone();
        other_customer.customer.id = PlatformCustomerId::parse("cust-8").unwrap();
        assert_ne!(hash(&e), hash(&other_customer), "the invoice now bills someone else");
        let mut moved = e.clone();
        moved.customer.email = Some("new@acme.example".into());
        moved.customer.phone = None;
        assert_eq!(hash(&e), hash(&moved), "the same customer, whose details the invoice does not carry");
    }

    #[test]
    fn long_customer_ids_become_stable_readable_contact_numbers_that_fit() {
        let short = PlatformCustomerId::parse("cust-7").unwrap();
        assert_eq!(contact_number(&short), "cust-7");
        let long = PlatformCustomerId::parse(format!("crm:customer:{}", "7".repeat(100))).unwrap();
        let number = contact_number(&long);
        assert_eq!(number.len(), 50);
        assert!(number.starts_with("crm:customer:777") && number.contains('~'), "{number}");
        assert_eq!(number, contact_number(&long.clone()), "stable");
        let other = PlatformCustomerId::parse(format!("crm:customer:{}8", "7".repeat(99))).unwrap();
        assert_ne!(contact_number(&other), number, "ids with a common start stay apart");
    }

    #[test]
    fn a_namesakes_name_carries_the_customer_number_and_fits() {
        let mut e = event();
        e.customer.name = " John Smith ".into();
        e.customer.id = PlatformCustomerId::parse("cust-2").unwrap();
        assert_eq!(distinct_name(&e.customer), "John Smith (cust-2)");
        e.customer.name = "x".repeat(255);
        assert_eq!(distinct_name(&e.customer).chars().count(), 255);
    }
}
