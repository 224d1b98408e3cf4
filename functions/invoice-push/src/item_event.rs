//! The item events of the platform's webhook: the contract in
//! `docs/contracts/item-webhook.schema.json`, as types, plus what a schema cannot say. A
//! product or service becomes a Xero item found by its code.

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use xero_sync_domain::decimal;
use xero_sync_domain::model::{AccountId, PlatformItemId, TenantId};
use xero_sync_http::Problem;

use crate::event::{EventOrder, delivery_id_problem, limits};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemEventType {
    /// Created or changed: the Xero item with its code is made to hold these details.
    #[serde(rename = "item.upserted")]
    Upserted,
    /// Gone from the platform: the Xero item is deleted (Xero's items have no archive).
    #[serde(rename = "item.deleted")]
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: PlatformItemId,
    /// Xero's Code: how the item is found, and what invoice lines name.
    pub code: String,
    /// Required for `item.upserted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The sales unit price, in the organisation's currency.
    #[serde(default, deserialize_with = "decimal::option::deserialize", skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
    /// The sales account; the settings' default sales account when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    /// The platform tax rate, mapped as an invoice line's is; the default tax type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_rate_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemEvent {
    pub delivery_id: String,
    pub event: ItemEventType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<TenantId>,
    pub item: Item,
}

/// Xero keeps at most four decimal places on a unit price.
const MAX_DP: u32 = 4;

impl ItemEvent {
    pub fn order(&self) -> EventOrder {
        EventOrder { occurred_at: self.occurred_at, sequence: self.sequence }
    }

    /// What the types cannot say; every problem at once. Longer text than Xero holds is refused,
    /// never cut.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        p.extend(delivery_id_problem(&self.delivery_id));
        let item = &self.item;
        let mut text = |field: &str, value: Option<&String>, max: usize, required: bool| match value {
            None if required => p.push(Problem::new(field, "is required")),
            Some(v) if v.trim().is_empty() => p.push(Problem::new(field, "must not be blank")),
            Some(v) if v.chars().count() > max => {
                p.push(Problem::new(field, format!("is longer than Xero's {max} characters")))
            }
            _ => {}
        };
        text("item.code", Some(&item.code), limits::ITEM_CODE, true);
        text("item.name", item.name.as_ref(), limits::ITEM_NAME, self.event == ItemEventType::Upserted);
        text("item.description", item.description.as_ref(), limits::ITEM_DESCRIPTION, false);
        text("item.account_code", item.account_code.as_ref(), limits::ACCOUNT_CODE, false);
        text("item.tax_rate_id", item.tax_rate_id.as_ref(), 128, false);
        if let Some(price) = item.unit_price {
            if price.normalize().scale() > MAX_DP {
                p.push(Problem::new("item.unit_price", format!("has more than {MAX_DP} decimal places")));
            }
        }
        p
    }
}

/// Parses a body, naming the exact field that is missing or of the wrong type.
pub fn parse(body: &[u8]) -> Result<ItemEvent, Problem> {
    let mut event: ItemEvent = xero_sync_http::parse_json(body)?;
    event.occurred_at = event.occurred_at.trunc_subsecs(6);
    Ok(event)
}

/// The contract's example `item.upserted`, as the unit tests' starting point.
#[cfg(test)]
pub(crate) fn example() -> ItemEvent {
    parse(include_bytes!("../../../docs/contracts/examples/item-upserted.json")).expect("the example parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_or_name_longer_than_xero_holds_is_refused_naming_the_field_never_cut() {
        let mut event = example();
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        event.item.code = "C".repeat(31);
        event.item.name = Some("N".repeat(51));
        event.item.unit_price = Some(Decimal::new(123_456, 5));
        let fields: Vec<String> = event.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["item.code", "item.name", "item.unit_price"]);
    }

    #[test]
    fn a_deletion_needs_only_the_code() {
        let mut event = example();
        event.event = ItemEventType::Deleted;
        event.item.name = None;
        event.item.unit_price = None;
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        event.event = ItemEventType::Upserted;
        let fields: Vec<String> = event.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["item.name"]);
    }
}
