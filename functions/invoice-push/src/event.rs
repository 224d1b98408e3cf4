//! The invoice webhook's payload: the contract in `docs/contracts/invoice-webhook.schema.json`,
//! as types, plus the checks a schema cannot express (dates in order, decimal places).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use xero_sync_domain::decimal;
use xero_sync_domain::model::{AccountId, PlatformCustomerId, PlatformInvoiceId, TenantId};
use xero_sync_http::Problem;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "invoice.created")]
    Created,
    #[serde(rename = "invoice.updated")]
    Updated,
    #[serde(rename = "invoice.voided")]
    Voided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountsAre {
    TaxExclusive,
    TaxInclusive,
    NoTax,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub description: String,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub quantity: Decimal,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub unit_price: Decimal,
    #[serde(default, deserialize_with = "decimal::option::deserialize", skip_serializing_if = "Option::is_none")]
    pub discount_rate: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rate_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub job_attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoice {
    pub id: PlatformInvoiceId,
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub issue_date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    pub currency: String,
    pub amounts_are: AmountsAre,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressType {
    Billing,
    Street,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(rename = "type")]
    pub kind: AddressType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// Personal data: never logged (only its id is).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub id: PlatformCustomerId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Xero's TaxNumber (an ABN, a GST or VAT number, a Tax ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_number: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
}

impl std::fmt::Debug for Customer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Customer").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoiceEvent {
    pub delivery_id: String,
    pub event: EventType,
    /// When the invoice changed in the platform, to the microsecond (finer is cut off).
    pub occurred_at: DateTime<Utc>,
    /// The invoice's version in the platform, increasing with each change: when two events
    /// for an invoice both carry one, it alone orders them (see [`EventOrder`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<TenantId>,
    pub invoice: Invoice,
    pub customer: Customer,
}

/// Xero keeps at most four decimal places on quantities and unit prices.
const MAX_DP: u32 = 4;

/// The longest text Xero takes in each field we send, as xero_accounting.yaml's `maxLength`
/// says (`(schema, property, limit)`; a unit test holds this table to the spec). Where the spec
/// gives none, Xero's documentation does: a 4000-character line description, a 255-character
/// reference.
pub mod limits {
    pub const CONTACT_NAME: usize = 255;
    pub const CONTACT_FIRST_NAME: usize = 255;
    pub const CONTACT_LAST_NAME: usize = 255;
    pub const CONTACT_EMAIL: usize = 255;
    /// Also what an id longer than this becomes (see `crate::mapping::contact_number`).
    pub const CONTACT_NUMBER: usize = 50;
    pub const PHONE_NUMBER: usize = 50;
    pub const TAX_NUMBER: usize = 50;
    pub const ADDRESS_LINE: usize = 500;
    pub const ADDRESS_CITY: usize = 255;
    pub const ADDRESS_REGION: usize = 255;
    pub const ADDRESS_POSTAL_CODE: usize = 50;
    pub const ADDRESS_COUNTRY: usize = 50;
    pub const INVOICE_NUMBER: usize = 255;
    pub const ITEM_CODE: usize = 30;
    pub const ITEM_NAME: usize = 50;
    pub const ITEM_DESCRIPTION: usize = 4000;
    pub const ACCOUNT_CODE: usize = 10;
    pub const REFERENCE: usize = 255;
    pub const LINE_DESCRIPTION: usize = 4000;

    /// Every limit above that the spec states, with where it states it.
    pub const IN_SPEC: &[(&str, &str, usize)] = &[
        ("Contact", "Name", CONTACT_NAME),
        ("Contact", "FirstName", CONTACT_FIRST_NAME),
        ("Contact", "LastName", CONTACT_LAST_NAME),
        ("Contact", "EmailAddress", CONTACT_EMAIL),
        ("Contact", "ContactNumber", CONTACT_NUMBER),
        ("Contact", "TaxNumber", TAX_NUMBER),
        ("Phone", "PhoneNumber", PHONE_NUMBER),
        ("Address", "AddressLine1", ADDRESS_LINE),
        ("Address", "AddressLine2", ADDRESS_LINE),
        ("Address", "City", ADDRESS_CITY),
        ("Address", "Region", ADDRESS_REGION),
        ("Address", "PostalCode", ADDRESS_POSTAL_CODE),
        ("Address", "Country", ADDRESS_COUNTRY),
        ("Invoice", "InvoiceNumber", INVOICE_NUMBER),
        ("Item", "Code", ITEM_CODE),
        ("Item", "Name", ITEM_NAME),
        ("Item", "Description", ITEM_DESCRIPTION),
    ];
}

/// How two events for one invoice are ordered: by `sequence` when both carry one, otherwise by
/// `occurred_at` (to the microsecond). Events equal in that order are applied in the order
/// they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOrder {
    pub occurred_at: DateTime<Utc>,
    pub sequence: Option<u64>,
}

impl EventOrder {
    pub fn is_older_than(&self, other: &EventOrder) -> bool {
        match (self.sequence, other.sequence) {
            (Some(mine), Some(theirs)) => mine < theirs,
            _ => self.occurred_at < other.occurred_at,
        }
    }
}

/// A delivery id becomes part of a key and an Idempotency-Key: a closed alphabet, bounded.
pub(crate) fn delivery_id_problem(id: &str) -> Option<Problem> {
    let ok = (8..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    (!ok).then(|| Problem::new("delivery_id", "must be 8 to 128 letters, digits or . _ : -"))
}

fn text(problems: &mut Vec<Problem>, field: &str, value: &str, max: usize, required: bool) {
    if required && value.trim().is_empty() {
        problems.push(Problem::new(field, "must not be blank"));
    } else if value.chars().count() > max {
        problems.push(Problem::new(field, format!("is longer than {max} characters")));
    }
}

fn opt_text(problems: &mut Vec<Problem>, field: &str, value: &Option<String>, max: usize) {
    if let Some(v) = value {
        text(problems, field, v, max, true);
    }
}

impl InvoiceEvent {
    pub fn order(&self) -> EventOrder {
        EventOrder { occurred_at: self.occurred_at, sequence: self.sequence }
    }

    /// What the types cannot say; every problem at once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        p.extend(delivery_id_problem(&self.delivery_id));
        let inv = &self.invoice;
        let document = Document {
            prefix: "invoice",
            number: &inv.number,
            reference: &inv.reference,
            currency: &inv.currency,
            lines: &inv.lines,
        };
        document.heading_problems(&mut p);
        if let Some(due) = inv.due_date {
            if due < inv.issue_date {
                p.push(Problem::new("invoice.due_date", "is before the issue date"));
            }
        }
        document.line_problems(&mut p);
        customer_problems(&mut p, &self.customer);
        p
    }
}

/// What an invoice and a credit note share, checked alike under their own field names.
pub(crate) struct Document<'a> {
    pub(crate) prefix: &'a str,
    pub(crate) number: &'a str,
    pub(crate) reference: &'a Option<String>,
    pub(crate) currency: &'a str,
    pub(crate) lines: &'a [Line],
}

impl Document<'_> {
    pub(crate) fn heading_problems(&self, p: &mut Vec<Problem>) {
        let at = |name: &str| format!("{}.{name}", self.prefix);
        text(p, &at("number"), self.number, limits::INVOICE_NUMBER, true);
        opt_text(p, &at("reference"), self.reference, limits::REFERENCE);
        if !(self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            p.push(Problem::new(at("currency"), "must be a three-letter ISO 4217 code such as NZD"));
        }
    }

    pub(crate) fn line_problems(&self, p: &mut Vec<Problem>) {
        let at = |name: &str| format!("{}.{name}", self.prefix);
        if self.lines.is_empty() {
            p.push(Problem::new(at("lines"), "must have at least one line"));
        }
        if self.lines.len() > 500 {
            p.push(Problem::new(at("lines"), "has more than 500 lines"));
        }
        for (i, line) in self.lines.iter().enumerate() {
            let f = |name: &str| format!("{}.lines[{i}].{name}", self.prefix);
            text(p, &f("description"), &line.description, limits::LINE_DESCRIPTION, true);
            for (name, value) in [("quantity", line.quantity), ("unit_price", line.unit_price)] {
                if value.normalize().scale() > MAX_DP {
                    p.push(Problem::new(f(name), "has more than 4 decimal places"));
                }
            }
            if let Some(d) = line.discount_rate {
                if d < Decimal::ZERO || d > Decimal::ONE_HUNDRED {
                    p.push(Problem::new(f("discount_rate"), "must be a percentage from 0 to 100"));
                }
            }
            opt_text(p, &f("tax_rate_id"), &line.tax_rate_id, 128);
            opt_text(p, &f("item_code"), &line.item_code, limits::ITEM_CODE);
            opt_text(p, &f("account_code"), &line.account_code, limits::ACCOUNT_CODE);
        }
    }
}

pub(crate) fn customer_problems(p: &mut Vec<Problem>, c: &Customer) {
    text(p, "customer.name", &c.name, limits::CONTACT_NAME, true);
    opt_text(p, "customer.first_name", &c.first_name, limits::CONTACT_FIRST_NAME);
    opt_text(p, "customer.last_name", &c.last_name, limits::CONTACT_LAST_NAME);
    opt_text(p, "customer.phone", &c.phone, limits::PHONE_NUMBER);
    opt_text(p, "customer.tax_number", &c.tax_number, limits::TAX_NUMBER);
    if let Some(email) = &c.email {
        if !xero_sync_domain::email::is_plausible(email) || email.len() > limits::CONTACT_EMAIL {
            p.push(Problem::new("customer.email", "is not an email address"));
        }
    }
    if c.addresses.len() > 2 || (c.addresses.len() == 2 && c.addresses[0].kind == c.addresses[1].kind) {
        p.push(Problem::new("customer.addresses", "may hold one billing and one street address"));
    }
    for (i, a) in c.addresses.iter().enumerate() {
        let f = |name: &str| format!("customer.addresses[{i}].{name}");
        opt_text(p, &f("line1"), &a.line1, limits::ADDRESS_LINE);
        opt_text(p, &f("line2"), &a.line2, limits::ADDRESS_LINE);
        opt_text(p, &f("city"), &a.city, limits::ADDRESS_CITY);
        opt_text(p, &f("region"), &a.region, limits::ADDRESS_REGION);
        opt_text(p, &f("postal_code"), &a.postal_code, limits::ADDRESS_POSTAL_CODE);
        opt_text(p, &f("country"), &a.country, limits::ADDRESS_COUNTRY);
    }
}

/// Parses a body, naming the exact field that is missing or of the wrong type.
pub fn parse(body: &[u8]) -> Result<InvoiceEvent, Problem> {
    let mut event: InvoiceEvent = xero_sync_http::parse_json(body)?;
    // Stored times keep microseconds; ordering on finer digits would not survive storage.
    event.occurred_at = event.occurred_at.trunc_subsecs(6);
    Ok(event)
}

/// The contract's example `invoice.created`, as the unit tests' starting point.
#[cfg(test)]
pub(crate) fn example() -> InvoiceEvent {
    parse(include_bytes!("../../../docs/contracts/examples/invoice-created.json")).expect("the example parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_we_hold_fields_to_is_the_one_xeros_spec_states() {
        let spec = xero_sync_testkit::openapi::accounting_spec();
        for (schema, property, limit) in limits::IN_SPEC {
            let pointer = format!("/components/schemas/{schema}/properties/{property}/maxLength");
            let stated = spec.pointer(&pointer).and_then(serde_json::Value::as_u64);
            assert_eq!(stated, Some(*limit as u64), "{schema}.{property}");
        }
    }

    #[test]
    fn a_sequence_orders_events_and_without_one_the_time_does() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let order = |t: &str, seq: Option<u64>| EventOrder { occurred_at: at(t), sequence: seq };
        let (early, late) = ("2026-11-21T06:00:00.100Z", "2026-11-21T06:00:00.250Z");
        assert!(order(early, None).is_older_than(&order(late, None)));
        assert!(!order(late, None).is_older_than(&order(late, None)), "the same time is applied");
        assert!(order(late, Some(1)).is_older_than(&order(early, Some(2))), "the sequence wins over the clock");
        assert!(order(early, Some(3)).is_older_than(&order(late, None)), "one without a sequence: the time");
    }
}
