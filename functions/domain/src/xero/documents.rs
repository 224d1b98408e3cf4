//! Invoices, contacts and payments: what the push writes and reads back, and what the import
//! lists.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

use super::date;
use super::status::{ContactStatus, CreditNoteType, InvoiceStatus, InvoiceType, PaymentStatus};
use crate::decimal;

/// One element's refusal in a write answered per element (`summarizeErrors=false`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ValidationError {
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// Xero's words for a refused element; `what` names the element when Xero gave none.
pub fn refusal_reasons(errors: Vec<ValidationError>, what: &str) -> Vec<String> {
    let reasons: Vec<String> = errors.into_iter().map(|e| e.message).filter(|m| !m.trim().is_empty()).collect();
    if reasons.is_empty() { vec![format!("Xero refused the {what} without saying why")] } else { reasons }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Invoice {
    #[serde(rename = "InvoiceID", default)]
    pub invoice_id: Option<Uuid>,
    #[serde(default)]
    pub invoice_number: Option<String>,
    #[serde(rename = "Type", default)]
    pub kind: Option<InvoiceType>,
    #[serde(default)]
    pub status: Option<InvoiceStatus>,
    #[serde(default)]
    pub contact: Option<Contact>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub total: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub amount_due: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub amount_paid: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub amount_credited: Option<Decimal>,
    #[serde(default)]
    pub currency_code: Option<String>,
    #[serde(default, deserialize_with = "date::day_option")]
    pub fully_paid_on_date: Option<NaiveDate>,
    #[serde(rename = "UpdatedDateUTC", default, deserialize_with = "date::option")]
    pub updated: Option<DateTime<Utc>>,
    /// Its payments, when Xero lists them (by id, or a numbered page): each an id, a date and
    /// an amount, authorised (a deleted payment leaves the list).
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// "ERROR" on an element Xero refused.
    #[serde(default)]
    pub status_attribute_string: Option<String>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

impl Invoice {
    /// The id Xero gave it; a refused element carries the nil UUID.
    pub fn id(&self) -> Option<Uuid> {
        self.invoice_id.filter(|id| !id.is_nil())
    }

    /// Whether Xero refused this element of a write.
    pub fn is_refused(&self) -> bool {
        self.status_attribute_string.as_deref() == Some("ERROR") || !self.validation_errors.is_empty()
    }

    /// Its payment state as the import and the webhooks compare it with the one last
    /// announced (`status|paid|credited|due`), when the answer has what it takes.
    pub fn payment_state(&self) -> Option<String> {
        Some(payment_state(self.status?, self.amount_paid?, self.amount_credited.unwrap_or_default(), self.amount_due?))
    }

    /// A sales invoice, as far as the answer says (a summary may leave the type out).
    pub fn is_sales(&self) -> bool {
        self.kind.is_none_or(|k| k == InvoiceType::AccRec)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Phone {
    #[serde(default)]
    pub phone_type: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub phone_area_code: Option<String>,
    #[serde(default)]
    pub phone_country_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    #[serde(default)]
    pub address_type: Option<String>,
    #[serde(default)]
    pub address_line1: Option<String>,
    #[serde(default)]
    pub address_line2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Contact {
    #[serde(rename = "ContactID", default)]
    pub contact_id: Option<Uuid>,
    #[serde(default)]
    pub contact_number: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub contact_status: Option<ContactStatus>,
    #[serde(default)]
    pub is_customer: bool,
    /// Has bills: read only, as IsCustomer is.
    #[serde(default)]
    pub is_supplier: bool,
    #[serde(default)]
    pub phones: Vec<Phone>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(rename = "UpdatedDateUTC", default, deserialize_with = "date::option")]
    pub updated: Option<DateTime<Utc>>,
    #[serde(default)]
    pub status_attribute_string: Option<String>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

impl Contact {
    /// Active, or of a status the answer leaves out (Xero's summaries do).
    pub fn is_active(&self) -> bool {
        self.contact_status.is_none_or(|s| s == ContactStatus::Active)
    }

    /// Whether a write of this contact was refused (`summarizeErrors=false`).
    pub fn is_refused(&self) -> bool {
        self.status_attribute_string.as_deref() == Some("ERROR") || !self.validation_errors.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Payment {
    #[serde(rename = "PaymentID", default)]
    pub payment_id: Option<Uuid>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub amount: Option<Decimal>,
    #[serde(default, deserialize_with = "date::day_option")]
    pub date: Option<NaiveDate>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub status: Option<PaymentStatus>,
    #[serde(default)]
    pub invoice: Option<Invoice>,
    /// The account paid into (`AccountID`, `Code`), when Xero says.
    #[serde(default)]
    pub account: Option<PaymentAccount>,
    #[serde(rename = "UpdatedDateUTC", default, deserialize_with = "date::option")]
    pub updated: Option<DateTime<Utc>>,
    /// "ERROR" on an element Xero refused.
    #[serde(default)]
    pub status_attribute_string: Option<String>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

impl Payment {
    /// The id Xero gave it; a refused element carries none, or the nil UUID.
    pub fn id(&self) -> Option<Uuid> {
        self.payment_id.filter(|id| !id.is_nil())
    }

    /// Whether Xero refused this element of a write.
    pub fn is_refused(&self) -> bool {
        self.status_attribute_string.as_deref() == Some("ERROR") || !self.validation_errors.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PaymentAccount {
    #[serde(rename = "AccountID", default)]
    pub account_id: Option<Uuid>,
}

/// `{"Payments": [...]}`.
#[derive(Debug, Default, Deserialize)]
pub struct Payments {
    #[serde(rename = "Payments", default)]
    pub payments: Vec<Payment>,
}

/// An invoice's payment state as its record keeps it (see [`payment_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentState {
    pub status: InvoiceStatus,
    pub paid: Decimal,
    pub credited: Decimal,
    pub due: Decimal,
}

impl PaymentState {
    /// Reads `status|paid|credited|due`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('|');
        let state = Self {
            status: parts.next()?.parse().ok()?,
            paid: parts.next()?.parse().ok()?,
            credited: parts.next()?.parse().ok()?,
            due: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(state)
    }

    pub fn text(&self) -> String {
        payment_state(self.status, self.paid, self.credited, self.due)
    }

    /// The state after `amount` more is credited to the invoice (less, when negative), as Xero
    /// moves an approved invoice to PAID when nothing is left due, and back.
    pub fn credited_by(self, amount: Decimal) -> Self {
        let due = self.due - amount;
        let status = match self.status {
            InvoiceStatus::Authorised if due <= Decimal::ZERO => InvoiceStatus::Paid,
            InvoiceStatus::Paid if due > Decimal::ZERO => InvoiceStatus::Authorised,
            other => other,
        };
        Self { status, credited: self.credited + amount, due, ..self }
    }
}

/// `status|paid|credited|due`, the amounts without trailing zeros: what tells one payment state
/// of an invoice from another.
pub fn payment_state(status: InvoiceStatus, paid: Decimal, credited: Decimal, due: Decimal) -> String {
    format!("{status}|{}|{}|{}", paid.normalize(), credited.normalize(), due.normalize())
}

/// A credit note, with the invoices it is allocated to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreditNote {
    #[serde(rename = "CreditNoteID", default)]
    pub credit_note_id: Option<Uuid>,
    #[serde(rename = "Type", default)]
    pub kind: Option<CreditNoteType>,
    #[serde(default)]
    pub credit_note_number: Option<String>,
    #[serde(default)]
    pub status: Option<InvoiceStatus>,
    #[serde(default)]
    pub contact: Option<Contact>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub total: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub remaining_credit: Option<Decimal>,
    #[serde(default)]
    pub allocations: Vec<Allocation>,
    /// Its payments (refunds paid out of it), when Xero lists them.
    #[serde(default)]
    pub payments: Vec<Payment>,
    #[serde(rename = "UpdatedDateUTC", default, deserialize_with = "date::option")]
    pub updated: Option<DateTime<Utc>>,
    /// "ERROR" on an element Xero refused.
    #[serde(default)]
    pub status_attribute_string: Option<String>,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

impl CreditNote {
    /// The id Xero gave it; a refused element carries none, or the nil UUID.
    pub fn id(&self) -> Option<Uuid> {
        self.credit_note_id.filter(|id| !id.is_nil())
    }

    /// Whether Xero refused this element of a write.
    pub fn is_refused(&self) -> bool {
        self.status_attribute_string.as_deref() == Some("ERROR") || !self.validation_errors.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Allocation {
    #[serde(rename = "AllocationID", default)]
    pub allocation_id: Option<Uuid>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub invoice: Option<Invoice>,
    /// True in the answer to a removal.
    #[serde(default)]
    pub is_deleted: bool,
    #[serde(default)]
    pub validation_errors: Vec<ValidationError>,
}

/// `{"Allocations": [...]}`.
#[derive(Debug, Default, Deserialize)]
pub struct Allocations {
    #[serde(rename = "Allocations", default)]
    pub allocations: Vec<Allocation>,
}

/// `{"Invoices": [...]}` and its siblings.
#[derive(Debug, Default, Deserialize)]
pub struct Invoices {
    #[serde(rename = "Invoices", default)]
    pub invoices: Vec<Invoice>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreditNotes {
    #[serde(rename = "CreditNotes", default)]
    pub credit_notes: Vec<CreditNote>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Contacts {
    #[serde(rename = "Contacts", default)]
    pub contacts: Vec<Contact>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;
    use serde_json::json;

    #[test]
    fn a_refused_element_reads_with_its_messages_and_no_id() {
        let answered: Invoice = serde_json::from_value(json!({
            "InvoiceID": "00000000-0000-0000-0000-000000000000",
            "StatusAttributeString": "ERROR",
            "ValidationErrors": [{ "Message": "Account code '999' is not a valid code for this document." }]
        }))
        .unwrap();
        assert!(answered.is_refused());
        assert_eq!(answered.id(), None);
        assert_eq!(answered.validation_errors[0].message, "Account code '999' is not a valid code for this document.");
    }

    #[test]
    fn a_listed_payment_reads_its_amount_digit_for_digit_and_its_day_in_utc() {
        let payment: Payment = serde_json::from_str(
            r#"{"PaymentID":"00000000-0000-0000-0000-000000000001","Amount":12345678901234.5678,
                "Date":"/Date(1573689600000+0000)/","Status":"DELETED",
                "Invoice":{"InvoiceID":"00000000-0000-0000-0000-000000000002","CurrencyCode":"NZD"}}"#,
        )
        .unwrap();
        assert_eq!(payment.amount, Some(dec!(12345678901234.5678)));
        assert_eq!(payment.date, NaiveDate::from_ymd_opt(2019, 11, 14));
        assert_eq!(payment.status, Some(PaymentStatus::Deleted));
    }

    #[test]
    fn a_payment_state_reads_back_what_it_wrote_and_moves_with_credit_as_xero_moves_it() {
        let state = PaymentState::parse("AUTHORISED|100|0|54.17").unwrap();
        assert_eq!(state.text(), "AUTHORISED|100|0|54.17");
        let credited = state.credited_by(dec!(54.17));
        assert_eq!(credited.text(), "PAID|100|54.17|0");
        assert_eq!(credited.credited_by(dec!(-10)).text(), "AUTHORISED|100|44.17|10");
        for bad in ["", "PAID|1|2", "PAID|1|2|3|4", "paid|1|2|3", "PAID|x|2|3"] {
            assert_eq!(PaymentState::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_date_that_is_not_one_is_refused_rather_than_dropped() {
        let bad = serde_json::from_value::<Contact>(json!({ "UpdatedDateUTC": "yesterday" }));
        assert!(bad.is_err());
        let missing: Contact = serde_json::from_value(json!({})).unwrap();
        assert_eq!(missing.updated, None);
    }
}
