//! An organisation's reference data (accounts, tax rates, tracking, items, currencies): what
//! settings are chosen from and checked against.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::xero::{Account, Currency, Item, TaxRate, TrackingCategory};

/// A snapshot older than this is read again from Xero: the import refreshes it every 30 minutes,
/// so anything older means the import has not run.
pub const FRESH_FOR: Duration = Duration::minutes(45);

/// The import cursor whose content hash says which item list the platform was last told of.
pub const ITEMS_CURSOR: &str = "items";

/// `items.changed`'s data for `items`: the import announces it when its hash differs from the one
/// the platform was last told; the item push lays its own writes onto both, so they are no news.
pub fn items_payload(items: &[Item]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            let sales = i.sales_details.as_ref();
            serde_json::json!({
                "code": i.code, "name": i.name, "description": i.description,
                "unit_price": sales.and_then(|s| s.unit_price).map(|p| p.normalize().to_string()),
                "account_code": sales.and_then(|s| s.account_code.clone()),
                "tax_type": sales.and_then(|s| s.tax_type.clone()),
                "is_sold": i.is_sold.unwrap_or(true),
            })
        })
        .collect();
    serde_json::json!({ "items": items })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceData {
    #[serde(with = "crate::time::fixed")]
    pub read_at: DateTime<Utc>,
    pub accounts: Vec<Account>,
    pub tax_rates: Vec<TaxRate>,
    pub tracking_categories: Vec<TrackingCategory>,
    pub items: Vec<Item>,
    pub currencies: Vec<Currency>,
}

impl ReferenceData {
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now - self.read_at < FRESH_FOR
    }

    pub fn account(&self, code: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.code.as_deref() == Some(code))
    }

    pub fn tax_rate(&self, tax_type: &str) -> Option<&TaxRate> {
        self.tax_rates.iter().find(|t| t.tax_type == tax_type)
    }

    pub fn tracking_category(&self, id: uuid::Uuid) -> Option<&TrackingCategory> {
        self.tracking_categories.iter().find(|c| c.tracking_category_id == id)
    }
}
