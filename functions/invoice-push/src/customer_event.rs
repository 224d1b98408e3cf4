//! The customer events of the platform's webhook: the contract in
//! `docs/contracts/customer-webhook.schema.json`, as types, plus what a schema cannot say. The
//! customer is the invoice event's, checked the same way.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use xero_sync_domain::model::{AccountId, TenantId};
use xero_sync_http::Problem;

use crate::event::{Customer, EventOrder, customer_problems, delivery_id_problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CustomerEventType {
    /// Created or changed: the contact is made to hold these details.
    #[serde(rename = "customer.upserted")]
    Upserted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerEvent {
    pub delivery_id: String,
    pub event: CustomerEventType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<TenantId>,
    pub customer: Customer,
}

impl CustomerEvent {
    pub fn order(&self) -> EventOrder {
        EventOrder { occurred_at: self.occurred_at, sequence: self.sequence }
    }

    /// What the types cannot say; every problem at once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        p.extend(delivery_id_problem(&self.delivery_id));
        customer_problems(&mut p, &self.customer);
        p
    }
}

/// Parses a body, naming the exact field that is missing or of the wrong type.
pub fn parse(body: &[u8]) -> Result<CustomerEvent, Problem> {
    let mut event: CustomerEvent = xero_sync_http::parse_json(body)?;
    event.occurred_at = event.occurred_at.trunc_subsecs(6);
    Ok(event)
}

/// The contract's example `customer.upserted`, as the unit tests' starting point.
#[cfg(test)]
pub(crate) fn example() -> CustomerEvent {
    parse(include_bytes!("../../../docs/contracts/examples/customer-upserted.json")).expect("the example parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_is_checked_as_an_invoices_customer_is() {
        let mut event = example();
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        event.customer.tax_number = Some("1".repeat(51));
        event.customer.email = Some("not an address".into());
        event.delivery_id = "short".into();
        let fields: Vec<String> = event.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["delivery_id", "customer.tax_number", "customer.email"]);
    }
}
