//! Per-connection sync settings: how platform invoices map onto a Xero organisation.
//!
//! The shape is stored as one versioned document; checking it against the organisation's
//! accounts, tax rates and tracking categories happens where settings are written.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NewInvoiceStatus {
    #[default]
    Draft,
    Authorised,
}

/// A platform tax rate and the Xero TaxType it is mapped to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxMapping {
    pub platform_tax_rate_id: String,
    /// The platform rate, in percent.
    pub rate: Decimal,
    /// Component rates, in percent, for compound taxes; empty for a single rate.
    #[serde(default)]
    pub components: Vec<Decimal>,
    pub xero_tax_type: String,
}

/// A Xero tracking category fed from a platform job attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingMapping {
    pub xero_category_id: uuid::Uuid,
    pub job_attribute: String,
    /// Platform attribute value → Xero option name; an unmapped value is sent as it is.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSettings {
    #[serde(default)]
    pub default_sales_account_code: Option<String>,
    #[serde(default)]
    pub default_tax_type: Option<String>,
    #[serde(default)]
    pub new_invoice_status: NewInvoiceStatus,
    #[serde(default)]
    pub tax_mapping: Vec<TaxMapping>,
    #[serde(default)]
    pub tracking_mapping: Vec<TrackingMapping>,
    #[serde(default)]
    pub match_items_by_code: bool,
}

/// A settings document with the version a writer must name to replace it (0: never written).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedSettings {
    pub version: u64,
    pub settings: ConnectionSettings,
}
