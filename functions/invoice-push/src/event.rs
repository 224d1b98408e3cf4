//! The invoice webhook's payload: the contract in `docs/contracts/invoice-webhook.schema.json`,
//! as types, plus the checks a schema cannot express (dates in order, decimal places).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use xero_sync_core::http::Problem;
use xero_sync_core::model::{AccountId, PlatformCustomerId, PlatformInvoiceId, TenantId};
use xero_sync_core::xero::model::decimal;

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
    pub occurred_at: DateTime<Utc>,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<TenantId>,
    pub invoice: Invoice,
    pub customer: Customer,
}

/// Xero keeps at most four decimal places on quantities and unit prices.
const MAX_DP: u32 = 4;

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
    /// What the types cannot say; every problem at once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let id_ok = (8..=128).contains(&self.delivery_id.len())
            && self.delivery_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !id_ok {
            p.push(Problem::new("delivery_id", "must be 8 to 128 letters, digits or . _ : -"));
        }
        let inv = &self.invoice;
        text(&mut p, "invoice.number", &inv.number, 255, true);
        opt_text(&mut p, "invoice.reference", &inv.reference, 255);
        if !(inv.currency.len() == 3 && inv.currency.bytes().all(|b| b.is_ascii_uppercase())) {
            p.push(Problem::new("invoice.currency", "must be a three-letter ISO 4217 code such as NZD"));
        }
        if let Some(due) = inv.due_date {
            if due < inv.issue_date {
                p.push(Problem::new("invoice.due_date", "is before the issue date"));
            }
        }
        if inv.lines.is_empty() {
            p.push(Problem::new("invoice.lines", "must have at least one line"));
        }
        if inv.lines.len() > 500 {
            p.push(Problem::new("invoice.lines", "has more than 500 lines"));
        }
        for (i, line) in inv.lines.iter().enumerate() {
            let f = |name: &str| format!("invoice.lines[{i}].{name}");
            text(&mut p, &f("description"), &line.description, 4000, true);
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
            opt_text(&mut p, &f("tax_rate_id"), &line.tax_rate_id, 128);
            opt_text(&mut p, &f("item_code"), &line.item_code, 30);
            opt_text(&mut p, &f("account_code"), &line.account_code, 10);
        }
        let c = &self.customer;
        text(&mut p, "customer.name", &c.name, 255, true);
        opt_text(&mut p, "customer.first_name", &c.first_name, 255);
        opt_text(&mut p, "customer.last_name", &c.last_name, 255);
        opt_text(&mut p, "customer.phone", &c.phone, 50);
        if let Some(email) = &c.email {
            let plausible = email.len() <= 254
                && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                && !email.chars().any(char::is_whitespace);
            if !plausible {
                p.push(Problem::new("customer.email", "is not an email address"));
            }
        }
        if c.addresses.len() > 2 || (c.addresses.len() == 2 && c.addresses[0].kind == c.addresses[1].kind) {
            p.push(Problem::new("customer.addresses", "may hold one billing and one street address"));
        }
        p
    }
}

/// Parses a body, naming the exact field that is missing or of the wrong type.
pub fn parse(body: &[u8]) -> Result<InvoiceEvent, Problem> {
    xero_sync_core::http::parse_json(body)
}
