//! An organisation's reference data (accounts, tax rates, tracking, items, currencies): what
//! settings are chosen from and checked against.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::xero::{Account, Currency, Item, TaxRate, TrackingCategory};

/// A snapshot older than this is read again from Xero: the import refreshes it every 30 minutes,
/// so anything older means the import has not run.
pub const FRESH_FOR: Duration = Duration::minutes(45);

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
