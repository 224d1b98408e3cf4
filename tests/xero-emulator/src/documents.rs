//! Contacts, invoices, credit notes, payments and allocations: validation, arithmetic and the
//! JSON Xero returns for them.
//!
//! Messages follow Xero's ValidationException texts where they are known
//! (https://developer.xero.com/documentation/api/accounting/invoices ,
//! https://developer.xero.com/documentation/api/accounting/payments).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::state::{Allocation, Contact, DocKind, Document, LineItem, Payment, Tenant, TrackingRef};
use crate::util::{
    bool_field, date_string, field, money, ms_date, ms_date_of_day, parse_date, parse_decimal, round2, str_field,
    uuid_field,
};

// ---------------------------------------------------------------- contacts

/// Fields the emulator owns; a client cannot set them.
const CONTACT_OWNED: &[&str] = &[
    "ContactID",
    "UpdatedDateUTC",
    "ContactStatus",
    "HasValidationErrors",
    "ValidationErrors",
    "StatusAttributeString",
    "Balances",
    "HasAttachments",
];

fn contact_errors(tenant: &Tenant, v: &Value, existing: Option<&Contact>) -> Vec<String> {
    let mut errors = vec![];
    if !v.is_object() {
        return vec!["A contact must be a JSON object".into()];
    }
    let name = str_field(v, "Name").or_else(|| existing.map(Contact::name)).unwrap_or_default();
    if name.trim().is_empty() {
        errors.push("The contact name must be specified.".into());
    } else if name.chars().count() > 255 {
        errors.push("The contact name must not be longer than 255 characters.".into());
    } else if tenant.contacts.iter().any(|c| {
        Some(c.id) != existing.map(|e| e.id)
            && c.status == "ACTIVE"
            && c.name().trim().eq_ignore_ascii_case(name.trim())
    }) {
        errors.push(format!(
            "The contact name {name} is already assigned to another contact. The contact name must be unique across all active contacts."
        ));
    }
    if let Some(email) = str_field(v, "EmailAddress").filter(|e| !e.is_empty())
        && !(email.contains('@') && !email.starts_with('@') && !email.ends_with('@') && !email.contains(' '))
    {
        errors.push("Email address must be valid.".into());
    }
    if let Some(status) = str_field(v, "ContactStatus")
        && !matches!(status.as_str(), "ACTIVE" | "ARCHIVED")
    {
        errors.push(format!("ContactStatus '{status}' is not valid."));
    }
    if let Some(Err(bad)) = uuid_field(v, "ContactID") {
        errors.push(format!("'{bad}' is not a valid ContactID."));
    }
    errors
}

fn merge_contact_fields(data: &mut Map<String, Value>, v: &Value) {
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if CONTACT_OWNED.iter().any(|o| o.eq_ignore_ascii_case(k)) {
                continue;
            }
            // Keep Xero's spelling of the field whatever case the client used.
            let key =
                data.keys().find(|existing| existing.eq_ignore_ascii_case(k)).cloned().unwrap_or_else(|| k.clone());
            data.insert(key, val.clone());
        }
    }
}

pub fn create_contact(tenant: &mut Tenant, v: &Value, now: DateTime<Utc>) -> Result<Uuid, Vec<String>> {
    let errors = contact_errors(tenant, v, None);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut data = Map::new();
    merge_contact_fields(&mut data, v);
    let id = match uuid_field(v, "ContactID") {
        Some(Ok(id)) if tenant.contact(id).is_none() => id,
        _ => Uuid::new_v4(),
    };
    let status = str_field(v, "ContactStatus").unwrap_or_else(|| "ACTIVE".into());
    tenant.contacts.push(Contact { id, data, status, updated: now });
    Ok(id)
}

pub fn update_contact(tenant: &mut Tenant, id: Uuid, v: &Value, now: DateTime<Utc>) -> Result<(), Vec<String>> {
    let existing = tenant.contact(id).cloned().ok_or_else(|| vec![format!("Contact {id} does not exist.")])?;
    let errors = contact_errors(tenant, v, Some(&existing));
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(c) = tenant.contacts.iter_mut().find(|c| c.id == id) {
        merge_contact_fields(&mut c.data, v);
        if let Some(status) = str_field(v, "ContactStatus") {
            c.status = status;
        }
        c.updated = now;
    }
    Ok(())
}

/// Finds the contact a POST means to update: by ContactID, else by ContactNumber, else (as Xero
/// keeps active names unique) the active contact with its name.
pub fn find_contact_for_update(tenant: &Tenant, v: &Value) -> Option<Uuid> {
    if let Some(Ok(id)) = uuid_field(v, "ContactID") {
        return tenant.contact(id).map(|c| c.id);
    }
    let number = str_field(v, "ContactNumber").filter(|n| !n.is_empty());
    if let Some(found) =
        number.and_then(|n| tenant.contacts.iter().find(|c| c.get_str("ContactNumber") == Some(n.as_str())))
    {
        return Some(found.id);
    }
    let name = str_field(v, "Name").filter(|n| !n.trim().is_empty())?;
    let active = |c: &&crate::state::Contact| c.status == "ACTIVE";
    tenant.contacts.iter().filter(active).find(|c| c.name().trim().eq_ignore_ascii_case(name.trim())).map(|c| c.id)
}

pub fn contact_json(c: &Contact) -> Value {
    let mut out = Map::new();
    out.insert("ContactID".into(), json!(c.id));
    out.insert("ContactStatus".into(), json!(c.status));
    for (k, v) in &c.data {
        out.insert(k.clone(), v.clone());
    }
    for key in ["Addresses", "Phones", "ContactGroups", "ContactPersons"] {
        out.entry(key.to_string()).or_insert_with(|| json!([]));
    }
    out.entry("IsSupplier".to_string()).or_insert(json!(false));
    out.entry("IsCustomer".to_string()).or_insert(json!(false));
    out.insert("UpdatedDateUTC".into(), json!(ms_date(c.updated)));
    out.insert("HasAttachments".into(), json!(false));
    out.insert("HasValidationErrors".into(), json!(false));
    Value::Object(out)
}

fn contact_summary(tenant: &Tenant, id: Uuid) -> Value {
    match tenant.contact(id) {
        Some(c) => {
            let mut v =
                json!({"ContactID": c.id, "Name": c.name(), "ContactStatus": c.status, "HasValidationErrors": false});
            for key in ["ContactNumber", "EmailAddress", "FirstName", "LastName"] {
                if let Some(val) = c.data.get(key) {
                    v[key] = val.clone();
                }
            }
            v
        }
        None => json!({"ContactID": id}),
    }
}

// ---------------------------------------------------------------- invoices and credit notes

pub fn number_field(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Invoice => "InvoiceNumber",
        DocKind::CreditNote => "CreditNoteNumber",
    }
}

pub fn id_field(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Invoice => "InvoiceID",
        DocKind::CreditNote => "CreditNoteID",
    }
}

fn noun(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Invoice => "Invoice",
        DocKind::CreditNote => "Credit Note",
    }
}

/// How an invoice's contact is to be found: an existing one, or details to create it from.
enum ContactChoice {
    Existing(Uuid),
    New(Value),
}

fn resolve_contact(tenant: &Tenant, v: &Value, errors: &mut Vec<String>) -> Option<ContactChoice> {
    let c = field(v, "Contact")?;
    if let Some(id) = uuid_field(c, "ContactID") {
        return match id {
            Ok(id) if tenant.contact(id).is_some() => Some(ContactChoice::Existing(id)),
            Ok(id) => {
                errors.push(format!("The contact with ContactID {id} could not be found."));
                None
            }
            Err(bad) => {
                errors.push(format!("'{bad}' is not a valid ContactID."));
                None
            }
        };
    }
    if let Some(number) = str_field(c, "ContactNumber").filter(|n| !n.is_empty())
        && let Some(found) = tenant.contacts.iter().find(|k| k.get_str("ContactNumber") == Some(number.as_str()))
    {
        return Some(ContactChoice::Existing(found.id));
    }
    let name = str_field(c, "Name").unwrap_or_default();
    if name.trim().is_empty() {
        errors.push("A Contact must be specified for this type of transaction".into());
        return None;
    }
    match tenant.contacts.iter().find(|k| k.status == "ACTIVE" && k.name().trim().eq_ignore_ascii_case(name.trim())) {
        Some(found) => Some(ContactChoice::Existing(found.id)),
        None => {
            let problems = contact_errors(tenant, c, None);
            if problems.is_empty() {
                Some(ContactChoice::New(c.clone()))
            } else {
                errors.extend(problems);
                None
            }
        }
    }
}

fn max_amount() -> Decimal {
    Decimal::from(1_000_000_000_000i64)
}

fn parse_line(
    tenant: &Tenant,
    v: &Value,
    line_amount_types: &str,
    previous: Option<&LineItem>,
    unit_dp: u32,
    errors: &mut Vec<String>,
) -> LineItem {
    let dec = |name: &str, errors: &mut Vec<String>| match field(v, name) {
        None => None,
        Some(x) => match parse_decimal(x) {
            // Bounded so that line and document arithmetic can never overflow a Decimal.
            Some(d) if d.abs() <= max_amount() => Some(d),
            Some(_) => {
                errors.push(format!("{name} is too large."));
                None
            }
            None => {
                errors.push(format!("{name} must be a number."));
                None
            }
        },
    };
    let item_code = str_field(v, "ItemCode").filter(|s| !s.is_empty());
    let item = match &item_code {
        Some(code) => {
            let item = tenant.items.iter().find(|i| i.code.eq_ignore_ascii_case(code));
            if item.is_none() {
                errors.push(format!("Item code '{code}' is not valid"));
            }
            item
        }
        None => None,
    };
    let description = str_field(v, "Description")
        .or_else(|| item.and_then(|i| i.description.clone().or(Some(i.name.clone()))))
        .filter(|d| !d.trim().is_empty());
    if description.is_none() {
        errors.push("The description field is mandatory for each line item.".into());
    }
    let quantity = dec("Quantity", errors).unwrap_or(Decimal::ONE);
    // Xero keeps unit amounts to 2 decimal places unless the request says unitdp=4.
    let unit_amount = dec("UnitAmount", errors)
        .or_else(|| item.and_then(|i| i.sales_details.unit_price))
        .map(|u| u.round_dp_with_strategy(unit_dp, rust_decimal::RoundingStrategy::MidpointAwayFromZero));
    let discount_rate = dec("DiscountRate", errors);
    if let Some(r) = discount_rate
        && (r < Decimal::ZERO || r > Decimal::ONE_HUNDRED)
    {
        errors.push("Discount rate must be between 0 and 100.".into());
    }
    let account_code = str_field(v, "AccountCode")
        .filter(|s| !s.is_empty())
        .or_else(|| item.and_then(|i| i.sales_details.account_code.clone()));
    let account =
        account_code.as_ref().and_then(|code| tenant.accounts.iter().find(|a| a.code.eq_ignore_ascii_case(code)));
    match (&account_code, account) {
        (Some(code), None) => errors.push(format!("Account code '{code}' is not a valid code for this document.")),
        (Some(code), Some(a)) if a.status != "ACTIVE" => errors.push(format!(
            "Account code '{code}' has been archived, or has been deleted. Each line item must reference a valid account."
        )),
        _ => {}
    }
    let tax_type = match str_field(v, "TaxType").filter(|s| !s.is_empty()) {
        Some(t) => t,
        None if line_amount_types == "NoTax" => "NONE".into(),
        None => account
            .and_then(|a| a.tax_type.clone())
            .or_else(|| item.and_then(|i| i.sales_details.tax_type.clone()))
            .unwrap_or_else(|| "NONE".into()),
    };
    let rate = tenant.tax_rates.iter().find(|r| r.tax_type.eq_ignore_ascii_case(&tax_type) && r.status == "ACTIVE");
    if rate.is_none() && !(tax_type == "NONE" && line_amount_types == "NoTax") {
        errors.push(format!(
            "The TaxType code {tax_type} does not exist or cannot be used for this type of transaction."
        ));
    }
    let mut tracking = vec![];
    if let Some(list) = field(v, "Tracking").and_then(Value::as_array) {
        if list.len() > 2 {
            errors.push("A line item can have at most two tracking categories.".into());
        }
        for t in list {
            let category = match uuid_field(t, "TrackingCategoryID") {
                Some(Ok(id)) => tenant.tracking_categories.iter().find(|c| c.tracking_category_id == id),
                _ => str_field(t, "Name")
                    .and_then(|n| tenant.tracking_categories.iter().find(|c| c.name.eq_ignore_ascii_case(&n))),
            };
            let Some(category) = category.filter(|c| c.status == "ACTIVE") else {
                errors.push(format!(
                    "The tracking category '{}' does not exist.",
                    str_field(t, "Name").or_else(|| str_field(t, "TrackingCategoryID")).unwrap_or_default()
                ));
                continue;
            };
            let option = match uuid_field(t, "TrackingOptionID") {
                Some(Ok(id)) => category.options.iter().find(|o| o.tracking_option_id == id),
                _ => str_field(t, "Option")
                    .and_then(|n| category.options.iter().find(|o| o.name.eq_ignore_ascii_case(&n))),
            };
            match option.filter(|o| o.status == "ACTIVE") {
                Some(o) => tracking.push(TrackingRef {
                    category_id: category.tracking_category_id,
                    option_id: o.tracking_option_id,
                    name: category.name.clone(),
                    option: o.name.clone(),
                }),
                None => errors.push(format!(
                    "The tracking option '{}' does not exist for the tracking category '{}'.",
                    str_field(t, "Option").or_else(|| str_field(t, "TrackingOptionID")).unwrap_or_default(),
                    category.name
                )),
            }
        }
    }
    let gross = unit_amount.map(|u| quantity * u);
    let discount_amount = match (gross, discount_rate) {
        (Some(g), Some(r)) => round2(g * r / Decimal::ONE_HUNDRED),
        _ => Decimal::ZERO,
    };
    let gross = match gross {
        Some(g) if g.abs() > max_amount() * Decimal::from(1000) => {
            errors.push("The line amount is too large.".into());
            None
        }
        other => other,
    };
    let line_amount = match gross {
        Some(g) => round2(g) - discount_amount,
        None => match dec("LineAmount", errors) {
            Some(a) => round2(a),
            None => {
                errors.push("A line item needs a UnitAmount or a LineAmount.".into());
                Decimal::ZERO
            }
        },
    };
    let pct = rate.map(|r| r.rate()).unwrap_or_default();
    let tax_amount = match line_amount_types {
        "Exclusive" => round2(line_amount * pct / Decimal::ONE_HUNDRED),
        "Inclusive" => round2(line_amount * pct / (Decimal::ONE_HUNDRED + pct)),
        _ => Decimal::ZERO,
    };
    LineItem {
        id: match uuid_field(v, "LineItemID") {
            Some(Ok(id)) => id,
            _ => previous.map(|p| p.id).unwrap_or_else(Uuid::new_v4),
        },
        description,
        quantity,
        unit_amount,
        item_code: item.map(|i| i.code.clone()),
        account_code: account.map(|a| a.code.clone()).or(account_code),
        tax_type: rate.map(|r| r.tax_type.clone()).unwrap_or(tax_type),
        tax_amount,
        line_amount,
        discount_rate,
        discount_amount,
        tracking,
    }
}

fn transition_error(kind: DocKind, doc: &Document, to: &str, edits_money: bool) -> Option<String> {
    let from = doc.status.as_str();
    let not_valid = format!("{} not of valid status for modification", noun(kind));
    let allocated = doc.amount_paid > Decimal::ZERO || doc.amount_credited > Decimal::ZERO;
    match (from, to) {
        ("PAID" | "VOIDED" | "DELETED", _) => Some(not_valid),
        ("DRAFT" | "SUBMITTED", "DRAFT" | "SUBMITTED" | "AUTHORISED" | "DELETED") => None,
        ("AUTHORISED", "AUTHORISED") if allocated && edits_money => {
            Some("This document cannot be edited as it has a payment or credit note allocated to it.".into())
        }
        ("AUTHORISED", "AUTHORISED") => None,
        ("AUTHORISED", "VOIDED") if allocated => {
            Some("This document cannot be voided as it has a payment or credit note allocated to it.".into())
        }
        ("AUTHORISED", "VOIDED") => None,
        _ => Some(not_valid),
    }
}

/// Builds the new version of a document (a fresh one, or `existing` with the changes applied),
/// or the validation messages. Nothing is stored here.
fn build_document(
    tenant: &Tenant,
    kind: DocKind,
    v: &Value,
    existing: Option<&Document>,
    unit_dp: u32,
    now: DateTime<Utc>,
) -> Result<(Document, Option<Value>), Vec<String>> {
    let mut errors = vec![];
    if !v.is_object() {
        return Err(vec![format!("An {} must be a JSON object", noun(kind))]);
    }
    let today = now.date_naive();
    let allowed_types: &[&str] = match kind {
        DocKind::Invoice => &["ACCREC", "ACCPAY"],
        DocKind::CreditNote => &["ACCRECCREDIT", "ACCPAYCREDIT"],
    };
    let doc_type = match (str_field(v, "Type"), existing) {
        (Some(t), _) if allowed_types.contains(&t.as_str()) => t,
        (Some(t), _) => {
            errors.push(format!("'{t}' is not a valid {} type.", noun(kind)));
            t
        }
        (None, Some(e)) => e.doc_type.clone(),
        (None, None) => {
            errors.push(format!("{} Type must be specified", noun(kind)));
            String::new()
        }
    };
    if let Some(e) = existing
        && e.doc_type != doc_type
        && errors.is_empty()
    {
        errors.push(format!("The {} Type cannot be changed.", noun(kind)));
    }
    let contact = if field(v, "Contact").is_some() {
        resolve_contact(tenant, v, &mut errors)
    } else if let Some(e) = existing {
        Some(ContactChoice::Existing(e.contact_id))
    } else {
        errors.push("A Contact must be specified for this type of transaction".into());
        None
    };
    let mut date_of = |name: &str, current: Option<NaiveDate>| match str_field(v, name) {
        Some(s) if s.is_empty() => None,
        Some(s) => match parse_date(&s) {
            Some(d) => Some(d),
            None => {
                errors.push(format!("{name} '{s}' is not a valid date."));
                current
            }
        },
        None => current,
    };
    let date = date_of("Date", existing.map(|e| e.date)).unwrap_or(today);
    let due_date = date_of("DueDate", existing.and_then(|e| e.due_date));
    let expected_payment_date = date_of("ExpectedPaymentDate", existing.and_then(|e| e.expected_payment_date));
    let line_amount_types = match str_field(v, "LineAmountTypes") {
        Some(t) => match t.to_ascii_lowercase().as_str() {
            "exclusive" => "Exclusive".to_string(),
            "inclusive" => "Inclusive".to_string(),
            "notax" => "NoTax".to_string(),
            _ => {
                errors.push(format!("'{t}' is not a valid LineAmountTypes value; use Exclusive, Inclusive or NoTax."));
                "Exclusive".into()
            }
        },
        None => existing.map(|e| e.line_amount_types.clone()).unwrap_or_else(|| "Exclusive".into()),
    };
    let currency_code = str_field(v, "CurrencyCode")
        .map(|c| c.to_ascii_uppercase())
        .or_else(|| existing.map(|e| e.currency_code.clone()))
        .unwrap_or_else(|| tenant.base_currency.clone());
    if !tenant.currencies.iter().any(|c| c.code == currency_code) {
        errors.push(format!("The currency code '{currency_code}' is not enabled for this organisation."));
    }
    let currency_rate = match field(v, "CurrencyRate").map(parse_decimal) {
        Some(Some(r)) if r > Decimal::ZERO => r,
        Some(_) => {
            errors.push("CurrencyRate must be a positive number.".into());
            Decimal::ONE
        }
        None => existing.map(|e| e.currency_rate).unwrap_or(Decimal::ONE),
    };
    let status = str_field(v, "Status").map(|s| s.to_ascii_uppercase());
    let status = match (status, existing) {
        (Some(s), None) if matches!(s.as_str(), "DRAFT" | "SUBMITTED" | "AUTHORISED") => s,
        (Some(s), None) => {
            errors.push(format!(
                "{} Status Code '{s}' is not valid for a new document; use DRAFT, SUBMITTED or AUTHORISED.",
                noun(kind)
            ));
            s
        }
        (Some(s), Some(_)) => s,
        (None, Some(e)) => e.status.clone(),
        (None, None) => "DRAFT".into(),
    };
    if !matches!(status.as_str(), "DRAFT" | "SUBMITTED" | "AUTHORISED" | "DELETED" | "VOIDED" | "PAID") {
        errors.push(format!("'{status}' is not a valid status."));
    }
    let edits_money = ["LineItems", "LineAmountTypes", "CurrencyCode", "CurrencyRate", "Contact"]
        .iter()
        .any(|f| field(v, f).is_some());
    if let Some(e) = existing
        && let Some(msg) = transition_error(kind, e, &status, edits_money)
    {
        errors.push(msg);
    }
    let number = match str_field(v, number_field(kind)).filter(|n| !n.is_empty()) {
        Some(n) => Some(n),
        None => existing.and_then(|e| e.number.clone()),
    };
    if let Some(n) = &number {
        if n.chars().count() > 255 {
            errors.push(format!("{} must not be longer than 255 characters.", number_field(kind)));
        }
        let unique_required = doc_type == "ACCREC" || doc_type == "ACCRECCREDIT";
        let my_id = existing.map(|e| e.id);
        if unique_required
            && tenant
                .docs(kind)
                .iter()
                .any(|d| Some(d.id) != my_id && d.doc_type == doc_type && d.number.as_deref() == Some(n.as_str()))
        {
            errors.push(match kind {
                DocKind::Invoice => "Invoice # must be unique.".into(),
                DocKind::CreditNote => "Credit Note # must be unique.".into(),
            });
        }
    }
    let line_items = match field(v, "LineItems") {
        Some(Value::Array(lines)) => lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let previous = existing.and_then(|e| {
                    let by_id = uuid_field(l, "LineItemID").and_then(Result::ok);
                    by_id
                        .and_then(|id| e.line_items.iter().find(|x| x.id == id))
                        .or_else(|| e.line_items.get(i).filter(|_| by_id.is_some()))
                });
                parse_line(tenant, l, &line_amount_types, previous, unit_dp, &mut errors)
            })
            .collect(),
        Some(_) => {
            errors.push("LineItems must be an array.".into());
            vec![]
        }
        None => match existing {
            // Changing LineAmountTypes alone recomputes the stored lines.
            Some(e) => e
                .line_items
                .iter()
                .map(|l| {
                    let mut line = l.clone();
                    retax(tenant, &mut line, &line_amount_types);
                    line
                })
                .collect(),
            None => vec![],
        },
    };
    if matches!(status.as_str(), "SUBMITTED" | "AUTHORISED") && line_items.iter().any(|l| l.account_code.is_none()) {
        errors.push("Account code must be specified".into());
    }
    if line_items.is_empty() && matches!(status.as_str(), "SUBMITTED" | "AUTHORISED") {
        errors.push(format!("A {} must have at least one line item before it can be approved.", noun(kind)));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let total_tax: Decimal = line_items.iter().map(|l| l.tax_amount).sum();
    let lines_total: Decimal = line_items.iter().map(|l| l.line_amount).sum();
    let sub_total = if line_amount_types == "Inclusive" { lines_total - total_tax } else { lines_total };
    let (contact_id, new_contact) = match contact {
        Some(ContactChoice::Existing(id)) => (id, None),
        Some(ContactChoice::New(c)) => (Uuid::new_v4(), Some(c)),
        None => return Err(vec!["A Contact must be specified for this type of transaction".into()]),
    };
    let mut doc = Document {
        kind,
        id: existing.map(|e| e.id).unwrap_or_else(Uuid::new_v4),
        doc_type,
        contact_id,
        number,
        reference: str_field(v, "Reference").or_else(|| existing.and_then(|e| e.reference.clone())),
        date,
        due_date,
        expected_payment_date,
        status,
        line_amount_types,
        currency_code,
        currency_rate,
        total_discount: line_items.iter().map(|l| l.discount_amount).sum(),
        line_items,
        sub_total,
        total_tax,
        total: sub_total + total_tax,
        amount_paid: existing.map(|e| e.amount_paid).unwrap_or_default(),
        amount_credited: existing.map(|e| e.amount_credited).unwrap_or_default(),
        fully_paid_on: existing.and_then(|e| e.fully_paid_on),
        url: str_field(v, "Url").or_else(|| existing.and_then(|e| e.url.clone())),
        sent_to_contact: bool_field(v, "SentToContact").or(existing.map(|e| e.sent_to_contact)).unwrap_or(false),
        updated: now,
    };
    if doc.number.is_none() && (doc.doc_type == "ACCREC" || doc.doc_type == "ACCRECCREDIT") {
        doc.number = Some(next_number(tenant, kind));
    }
    Ok((doc, new_contact))
}

fn retax(tenant: &Tenant, line: &mut LineItem, line_amount_types: &str) {
    let pct = tenant.tax_rates.iter().find(|r| r.tax_type == line.tax_type).map(|r| r.rate()).unwrap_or_default();
    line.tax_amount = match line_amount_types {
        "Exclusive" => round2(line.line_amount * pct / Decimal::ONE_HUNDRED),
        "Inclusive" => round2(line.line_amount * pct / (Decimal::ONE_HUNDRED + pct)),
        _ => Decimal::ZERO,
    };
}

/// Xero's default numbering, e.g. INV-0001 / CN-0001, skipping numbers already used.
fn next_number(tenant: &Tenant, kind: DocKind) -> String {
    let prefix = match kind {
        DocKind::Invoice => "INV-",
        DocKind::CreditNote => "CN-",
    };
    let mut n = tenant.docs(kind).len() + 1;
    loop {
        let candidate = format!("{prefix}{n:04}");
        if !tenant.docs(kind).iter().any(|d| d.number.as_deref() == Some(candidate.as_str())) {
            return candidate;
        }
        n += 1;
    }
}

/// Which stored document a POST element refers to, by id or (for ACCREC) number.
pub fn find_document(tenant: &Tenant, kind: DocKind, v: &Value) -> Result<Option<Uuid>, String> {
    if let Some(id) = uuid_field(v, id_field(kind)) {
        return match id {
            Ok(id) if tenant.docs(kind).iter().any(|d| d.id == id) => Ok(Some(id)),
            Ok(id) => Err(format!("{} {id} could not be found.", noun(kind))),
            Err(bad) => Err(format!("'{bad}' is not a valid {}.", id_field(kind))),
        };
    }
    let number = str_field(v, number_field(kind)).filter(|n| !n.is_empty());
    Ok(number.and_then(|n| tenant.docs(kind).iter().find(|d| d.number.as_deref() == Some(n.as_str())).map(|d| d.id)))
}

/// Creates (`target` None) or updates a document in the tenant.
pub fn save_document(
    tenant: &mut Tenant,
    kind: DocKind,
    v: &Value,
    target: Option<Uuid>,
    unit_dp: u32,
    now: DateTime<Utc>,
) -> Result<Uuid, Vec<String>> {
    let existing = target.and_then(|id| tenant.docs(kind).iter().find(|d| d.id == id).cloned());
    if target.is_some() && existing.is_none() {
        return Err(vec![format!("{} could not be found.", noun(kind))]);
    }
    let (mut doc, new_contact) = build_document(tenant, kind, v, existing.as_ref(), unit_dp, now)?;
    if let Some(c) = new_contact {
        doc.contact_id = create_contact(tenant, &c, now)?;
    }
    // Xero's read-only flags: a contact with sales invoices is a customer, one with bills a
    // supplier.
    let flag = if doc.doc_type == "ACCPAY" { "IsSupplier" } else { "IsCustomer" };
    if matches!(doc.doc_type.as_str(), "ACCREC" | "ACCPAY")
        && let Some(c) = tenant.contacts.iter_mut().find(|c| c.id == doc.contact_id)
        && c.data.get(flag) != Some(&json!(true))
    {
        c.data.insert(flag.into(), json!(true));
        c.updated = now;
    }
    let id = doc.id;
    let docs = tenant.docs_mut(kind);
    match docs.iter_mut().find(|d| d.id == id) {
        Some(slot) => *slot = doc,
        None => docs.push(doc),
    }
    Ok(id)
}

fn line_json(l: &LineItem) -> Value {
    let mut v = json!({
        "LineItemID": l.id,
        "Description": l.description,
        "Quantity": money(l.quantity),
        "TaxType": l.tax_type,
        "TaxAmount": money(l.tax_amount),
        "LineAmount": money(l.line_amount),
        "Tracking": l.tracking.iter().map(|t| json!({
            "TrackingCategoryID": t.category_id, "TrackingOptionID": t.option_id, "Name": t.name, "Option": t.option,
        })).collect::<Vec<_>>(),
    });
    if let Some(u) = l.unit_amount {
        v["UnitAmount"] = money(u);
    }
    if let Some(code) = &l.account_code {
        v["AccountCode"] = json!(code);
    }
    if let Some(code) = &l.item_code {
        v["ItemCode"] = json!(code);
    }
    if let Some(r) = l.discount_rate {
        v["DiscountRate"] = money(r);
        v["DiscountAmount"] = money(l.discount_amount);
    }
    v
}

fn payment_summary(p: &Payment) -> Value {
    json!({
        "PaymentID": p.id,
        "Date": ms_date_of_day(p.date),
        "Amount": money(p.amount),
        "Reference": p.reference.clone().unwrap_or_default(),
        "CurrencyRate": money(p.currency_rate),
        "HasAccount": true,
        "HasValidationErrors": false,
    })
}

pub fn document_json(tenant: &Tenant, d: &Document, summary_only: bool, with_lines: bool) -> Value {
    let mut v = json!({
        "Type": d.doc_type,
        id_field(d.kind): d.id,
        "Reference": d.reference.clone().unwrap_or_default(),
        "Contact": contact_summary(tenant, d.contact_id),
        "Date": ms_date_of_day(d.date),
        "DateString": date_string(d.date),
        "Status": d.status,
        "LineAmountTypes": d.line_amount_types,
        "SubTotal": money(d.sub_total),
        "TotalTax": money(d.total_tax),
        "Total": money(d.total),
        "CurrencyCode": d.currency_code,
        "CurrencyRate": money(d.currency_rate),
        "UpdatedDateUTC": ms_date(d.updated),
        "HasAttachments": crate::attachments::has_any(tenant, d.id),
        "HasErrors": false,
        "SentToContact": d.sent_to_contact,
    });
    if let Some(n) = &d.number {
        v[number_field(d.kind)] = json!(n);
    }
    if let Some(due) = d.due_date {
        v["DueDate"] = json!(ms_date_of_day(due));
        v["DueDateString"] = json!(date_string(due));
    }
    if let Some(paid) = d.fully_paid_on {
        v["FullyPaidOnDate"] = json!(ms_date_of_day(paid));
    }
    if d.total_discount > Decimal::ZERO {
        v["TotalDiscount"] = money(d.total_discount);
    }
    if let Some(url) = &d.url {
        v["Url"] = json!(url);
    }
    if let Some(e) = d.expected_payment_date {
        v["ExpectedPaymentDate"] = json!(ms_date_of_day(e));
    }
    let payments: Vec<Value> =
        tenant.payments.iter().filter(|p| p.doc_id == d.id && p.status == "AUTHORISED").map(payment_summary).collect();
    match d.kind {
        DocKind::Invoice => {
            v["AmountDue"] = money(d.amount_due());
            v["AmountPaid"] = money(d.amount_paid);
            v["AmountCredited"] = money(d.amount_credited);
            v["IsDiscounted"] = json!(d.total_discount > Decimal::ZERO);
            if !summary_only {
                v["CreditNotes"] = json!(
                    tenant
                        .allocations
                        .iter()
                        .filter(|a| a.invoice_id == d.id)
                        .filter_map(|a| tenant.credit_notes.iter().find(|c| c.id == a.credit_note_id).map(|c| (a, c)))
                        .map(|(a, c)| json!({
                            "CreditNoteID": c.id, "CreditNoteNumber": c.number, "Total": money(c.total),
                            "AppliedAmount": money(a.amount), "Date": ms_date_of_day(a.date),
                        }))
                        .collect::<Vec<_>>()
                );
                v["Prepayments"] = json!([]);
                v["Overpayments"] = json!([]);
            }
        }
        DocKind::CreditNote => {
            v["RemainingCredit"] = money(d.amount_due());
            if !summary_only {
                v["Allocations"] = json!(
                    tenant
                        .allocations
                        .iter()
                        .filter(|a| a.credit_note_id == d.id)
                        .map(|a| json!({
                            "AllocationID": a.allocation_id_string(),
                            "Amount": money(a.amount),
                            "Date": ms_date_of_day(a.date),
                            "Invoice": {"InvoiceID": a.invoice_id, "InvoiceNumber":
                                tenant.invoices.iter().find(|i| i.id == a.invoice_id).and_then(|i| i.number.clone())},
                        }))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    if !summary_only {
        v["Payments"] = json!(payments);
        if with_lines {
            v["LineItems"] = json!(d.line_items.iter().map(line_json).collect::<Vec<_>>());
        }
    }
    v
}

impl Allocation {
    fn allocation_id_string(&self) -> String {
        self.id.to_string()
    }
}

// ---------------------------------------------------------------- payments

fn find_doc_ref(tenant: &Tenant, kind: DocKind, r: &Value) -> Result<Uuid, String> {
    match find_document(tenant, kind, r)? {
        Some(id) => Ok(id),
        None => Err(format!("{} could not be found.", noun(kind))),
    }
}

pub fn create_payment(tenant: &mut Tenant, v: &Value, now: DateTime<Utc>) -> Result<Uuid, Vec<String>> {
    let mut errors = vec![];
    let target = match (field(v, "Invoice"), field(v, "CreditNote")) {
        (Some(i), _) => find_doc_ref(tenant, DocKind::Invoice, i).map(|id| (DocKind::Invoice, id)),
        (None, Some(c)) => find_doc_ref(tenant, DocKind::CreditNote, c).map(|id| (DocKind::CreditNote, id)),
        (None, None) => Err("An Invoice or CreditNote must be specified.".into()),
    };
    let account = match field(v, "Account") {
        Some(a) => {
            let found = match uuid_field(a, "AccountID") {
                Some(Ok(id)) => tenant.accounts.iter().find(|x| x.account_id == id),
                _ => {
                    str_field(a, "Code").and_then(|c| tenant.accounts.iter().find(|x| x.code.eq_ignore_ascii_case(&c)))
                }
            };
            match found {
                None => {
                    errors.push("Account could not be found.".into());
                    None
                }
                Some(acc) if acc.status != "ACTIVE" => {
                    errors.push(format!("Account code '{}' has been archived, or has been deleted.", acc.code));
                    None
                }
                Some(acc) if !acc.accepts_payments() => {
                    errors.push(format!(
                        "Account code '{}' is not a bank account and does not have payments enabled.",
                        acc.code
                    ));
                    None
                }
                Some(acc) => Some(acc.account_id),
            }
        }
        None => {
            errors.push("An Account must be specified.".into());
            None
        }
    };
    let amount = match field(v, "Amount").map(parse_decimal) {
        Some(Some(a)) if a > max_amount() => {
            errors.push("Payment amount is too large.".into());
            Decimal::ZERO
        }
        Some(Some(a)) if a > Decimal::ZERO => round2(a),
        Some(Some(_)) => {
            errors.push("Payment amount must be greater than zero.".into());
            Decimal::ZERO
        }
        _ => {
            errors.push("Payment amount must be specified.".into());
            Decimal::ZERO
        }
    };
    let date = match str_field(v, "Date") {
        Some(s) => parse_date(&s).unwrap_or_else(|| {
            errors.push(format!("Date '{s}' is not a valid date."));
            now.date_naive()
        }),
        None => now.date_naive(),
    };
    let (kind, doc_id) = match target {
        Ok(t) => t,
        Err(e) => {
            errors.push(e);
            return Err(errors);
        }
    };
    let doc = tenant.docs(kind).iter().find(|d| d.id == doc_id).cloned();
    let Some(doc) = doc else { return Err(vec![format!("{} could not be found.", noun(kind))]) };
    if doc.status != "AUTHORISED" {
        errors.push(format!("Payments can only be made against Authorised {}s.", noun(kind).to_lowercase()));
    } else if amount > doc.amount_due() {
        errors.push("Payment amount exceeds the amount outstanding on this document".into());
    }
    let Some(account_id) = account else { return Err(errors) };
    if !errors.is_empty() {
        return Err(errors);
    }
    let payment_type = match doc.doc_type.as_str() {
        "ACCREC" => "ACCRECPAYMENT",
        "ACCPAY" => "ACCPAYPAYMENT",
        "ACCRECCREDIT" => "ARCREDITPAYMENT",
        _ => "APCREDITPAYMENT",
    };
    let payment = Payment {
        id: Uuid::new_v4(),
        doc_kind: kind,
        doc_id,
        account_id,
        amount,
        date,
        reference: str_field(v, "Reference"),
        status: "AUTHORISED".into(),
        payment_type: payment_type.into(),
        currency_rate: field(v, "CurrencyRate").and_then(parse_decimal).unwrap_or(doc.currency_rate),
        updated: now,
    };
    let id = payment.id;
    tenant.payments.push(payment);
    if let Some(d) = tenant.docs_mut(kind).iter_mut().find(|d| d.id == doc_id) {
        d.amount_paid += amount;
        settle(d, date, now);
    }
    Ok(id)
}

/// Moves a document to PAID when nothing is left to pay, and back when something is again.
fn settle(d: &mut Document, date: NaiveDate, now: DateTime<Utc>) {
    if d.amount_due() <= Decimal::ZERO && d.status == "AUTHORISED" {
        d.status = "PAID".into();
        d.fully_paid_on = Some(date);
    } else if d.amount_due() > Decimal::ZERO && d.status == "PAID" {
        d.status = "AUTHORISED".into();
        d.fully_paid_on = None;
    }
    d.updated = now;
}

pub fn delete_payment(tenant: &mut Tenant, id: Uuid, v: &Value, now: DateTime<Utc>) -> Result<(), Vec<String>> {
    if str_field(v, "Status").map(|s| s.to_ascii_uppercase()).as_deref() != Some("DELETED") {
        return Err(vec!["A payment can only be updated to Status DELETED.".into()]);
    }
    let Some(p) = tenant.payments.iter_mut().find(|p| p.id == id) else {
        return Err(vec!["Payment could not be found.".into()]);
    };
    if p.status == "DELETED" {
        return Err(vec!["This payment has already been deleted.".into()]);
    }
    p.status = "DELETED".into();
    p.updated = now;
    let (kind, doc_id, amount, date) = (p.doc_kind, p.doc_id, p.amount, p.date);
    if let Some(d) = tenant.docs_mut(kind).iter_mut().find(|d| d.id == doc_id) {
        d.amount_paid -= amount;
        settle(d, date, now);
    }
    Ok(())
}

pub fn payment_json(tenant: &Tenant, p: &Payment) -> Value {
    let doc = tenant.docs(p.doc_kind).iter().find(|d| d.id == p.doc_id);
    let account = tenant.accounts.iter().find(|a| a.account_id == p.account_id);
    let mut v = payment_summary(p);
    v["BankAmount"] = money(p.amount);
    v["Status"] = json!(p.status);
    v["PaymentType"] = json!(p.payment_type);
    v["UpdatedDateUTC"] = json!(ms_date(p.updated));
    v["IsReconciled"] = json!(false);
    v["Account"] = json!({"AccountID": p.account_id, "Code": account.map(|a| a.code.clone()), "Name": account.map(|a| a.name.clone())});
    if let Some(d) = doc {
        let key = match p.doc_kind {
            DocKind::Invoice => "Invoice",
            DocKind::CreditNote => "CreditNote",
        };
        v[key] = document_json(tenant, d, true, false);
        v[number_field(p.doc_kind)] = json!(d.number);
    }
    v
}

// ---------------------------------------------------------------- allocations

pub fn allocate(tenant: &mut Tenant, credit_note: Uuid, v: &Value, now: DateTime<Utc>) -> Result<Uuid, Vec<String>> {
    let Some(cn) = tenant.credit_notes.iter().find(|c| c.id == credit_note).cloned() else {
        return Err(vec!["Credit Note could not be found.".into()]);
    };
    let mut errors = vec![];
    let invoice = match field(v, "Invoice") {
        Some(i) => find_doc_ref(tenant, DocKind::Invoice, i).map_err(|e| errors.push(e)).ok(),
        None => {
            errors.push("An Invoice must be specified.".into());
            None
        }
    };
    let amount =
        field(v, "Amount").and_then(parse_decimal).map(round2).filter(|a| *a > Decimal::ZERO && *a <= max_amount());
    if amount.is_none() {
        errors.push("Allocation amount must be greater than zero.".into());
    }
    let date = str_field(v, "Date").and_then(|d| parse_date(&d)).unwrap_or(now.date_naive());
    let inv = invoice.and_then(|id| tenant.invoices.iter().find(|i| i.id == id).cloned());
    if cn.status != "AUTHORISED" {
        errors.push("Credit notes must be AUTHORISED before they can be allocated.".into());
    }
    if let (Some(inv), Some(amount)) = (&inv, amount) {
        if inv.status != "AUTHORISED" {
            errors.push("Allocations can only be made against AUTHORISED invoices.".into());
        }
        if inv.currency_code != cn.currency_code {
            errors.push("The credit note and the invoice must be in the same currency.".into());
        }
        if amount > cn.amount_due() {
            errors.push("The amount allocated exceeds the credit note's remaining credit.".into());
        }
        if amount > inv.amount_due() {
            errors.push("The amount allocated exceeds the amount outstanding on the invoice.".into());
        }
    }
    let (Some(inv), Some(amount)) = (inv, amount) else { return Err(errors) };
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = Uuid::new_v4();
    tenant.allocations.push(Allocation { id, invoice_id: inv.id, credit_note_id: cn.id, amount, date });
    if let Some(i) = tenant.invoices.iter_mut().find(|i| i.id == inv.id) {
        i.amount_credited += amount;
        settle(i, date, now);
    }
    if let Some(c) = tenant.credit_notes.iter_mut().find(|c| c.id == cn.id) {
        c.amount_credited += amount;
        settle(c, date, now);
    }
    Ok(id)
}

/// Undoes an allocation's amounts on its invoice and credit note.
pub fn unallocate(tenant: &mut Tenant, a: &Allocation, now: DateTime<Utc>) {
    if let Some(i) = tenant.invoices.iter_mut().find(|i| i.id == a.invoice_id) {
        i.amount_credited -= a.amount;
        settle(i, a.date, now);
    }
    if let Some(c) = tenant.credit_notes.iter_mut().find(|c| c.id == a.credit_note_id) {
        c.amount_credited -= a.amount;
        settle(c, a.date, now);
    }
}
