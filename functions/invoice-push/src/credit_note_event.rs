//! The credit note events of the platform's webhook: the contract in
//! `docs/contracts/credit-note-webhook.schema.json`, as types, plus what a schema cannot say.
//! A credit note is written like an invoice (its lines and customer are the invoice event's).

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use xero_sync_domain::model::{AccountId, PlatformCreditNoteId, PlatformInvoiceId, TenantId};
use xero_sync_http::Problem;

use crate::event::{AmountsAre, Customer, Document, EventOrder, Line, customer_problems, delivery_id_problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreditNoteEventType {
    #[serde(rename = "credit_note.created")]
    Created,
    #[serde(rename = "credit_note.updated")]
    Updated,
    /// Taken back: allocations and refunds removed in Xero first, then the credit note voided.
    #[serde(rename = "credit_note.voided")]
    Voided,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditNote {
    pub id: PlatformCreditNoteId,
    /// Its own number in Xero (CreditNoteNumber), unique among the organisation's credit notes.
    pub number: String,
    /// The platform invoice it credits: it waits for that invoice to reach Xero, and is
    /// allocated to it as far as the invoice still has something due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<PlatformInvoiceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub issue_date: NaiveDate,
    pub currency: String,
    pub amounts_are: AmountsAre,
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteEvent {
    pub delivery_id: String,
    pub event: CreditNoteEventType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<TenantId>,
    pub credit_note: CreditNote,
    pub customer: Customer,
}

impl CreditNoteEvent {
    pub fn order(&self) -> EventOrder {
        EventOrder { occurred_at: self.occurred_at, sequence: self.sequence }
    }

    /// What the types cannot say; every problem at once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        p.extend(delivery_id_problem(&self.delivery_id));
        let cn = &self.credit_note;
        let document = Document {
            prefix: "credit_note",
            number: &cn.number,
            reference: &cn.reference,
            currency: &cn.currency,
            lines: &cn.lines,
        };
        document.heading_problems(&mut p);
        document.line_problems(&mut p);
        customer_problems(&mut p, &self.customer);
        p
    }
}

/// Parses a body, naming the exact field that is missing or of the wrong type.
pub fn parse(body: &[u8]) -> Result<CreditNoteEvent, Problem> {
    let mut event: CreditNoteEvent = xero_sync_http::parse_json(body)?;
    event.occurred_at = event.occurred_at.trunc_subsecs(6);
    Ok(event)
}

/// The contract's example `credit_note.created`, as the unit tests' starting point.
#[cfg(test)]
pub(crate) fn example() -> CreditNoteEvent {
    parse(include_bytes!("../../../docs/contracts/examples/credit-note-created.json")).expect("the example parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_note_is_checked_as_an_invoice_is_under_its_own_field_names() {
        let mut event = example();
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        event.credit_note.currency = "nzd".into();
        event.credit_note.lines.clear();
        event.customer.name = " ".into();
        let fields: Vec<String> = event.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["credit_note.currency", "credit_note.lines", "customer.name"]);
    }
}
