//! Reference data a tenant is seeded with, in Xero's own JSON shape (PascalCase), so the same
//! types serve as seed input, stored state and API output.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

fn new_id() -> Uuid {
    Uuid::new_v4()
}

fn active() -> String {
    "ACTIVE".to_string()
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    #[serde(rename = "AccountID", default = "new_id")]
    pub account_id: Uuid,
    pub code: String,
    pub name: String,
    /// Xero's AccountType (BANK, REVENUE, SALES, CURRENT, ...).
    #[serde(rename = "Type")]
    pub account_type: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
    #[serde(default)]
    pub enable_payments_to_account: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
}

impl Account {
    pub fn new(code: &str, name: &str, account_type: &str) -> Self {
        Account {
            account_id: new_id(),
            code: code.into(),
            name: name.into(),
            account_type: account_type.into(),
            status: active(),
            tax_type: None,
            enable_payments_to_account: false,
            description: None,
            bank_account_number: None,
            bank_account_type: None,
            currency_code: None,
        }
    }

    /// Xero derives Class from Type; it is read-only in the API.
    pub fn class(&self) -> &'static str {
        match self.account_type.as_str() {
            "BANK" | "CURRENT" | "FIXED" | "INVENTORY" | "NONCURRENT" | "PREPAYMENT" => "ASSET",
            "CURRLIAB" | "LIABILITY" | "TERMLIAB" | "PAYG" => "LIABILITY",
            "EQUITY" => "EQUITY",
            "REVENUE" | "SALES" | "OTHERINCOME" => "REVENUE",
            _ => "EXPENSE",
        }
    }

    pub fn accepts_payments(&self) -> bool {
        self.account_type == "BANK" || self.enable_payments_to_account
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TaxComponent {
    pub name: String,
    #[serde(with = "crate::util::dec")]
    pub rate: Decimal,
    #[serde(default)]
    pub is_compound: bool,
    #[serde(default)]
    pub is_non_recoverable: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TaxRate {
    pub name: String,
    pub tax_type: String,
    #[serde(default)]
    pub tax_components: Vec<TaxComponent>,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_tax_type: Option<String>,
    #[serde(default = "yes")]
    pub can_apply_to_revenue: bool,
    #[serde(default = "yes")]
    pub can_apply_to_expenses: bool,
    #[serde(default = "yes")]
    pub can_apply_to_assets: bool,
    #[serde(default = "yes")]
    pub can_apply_to_equity: bool,
    #[serde(default = "yes")]
    pub can_apply_to_liabilities: bool,
    /// Filled from the components when the seed leaves them out.
    #[serde(default, with = "crate::util::dec_opt", skip_serializing_if = "Option::is_none")]
    pub display_tax_rate: Option<Decimal>,
    #[serde(default, with = "crate::util::dec_opt", skip_serializing_if = "Option::is_none")]
    pub effective_rate: Option<Decimal>,
}

fn yes() -> bool {
    true
}

impl TaxRate {
    pub fn new(tax_type: &str, name: &str, components: Vec<TaxComponent>) -> Self {
        let mut rate = TaxRate {
            name: name.into(),
            tax_type: tax_type.into(),
            tax_components: components,
            status: active(),
            report_tax_type: None,
            can_apply_to_revenue: true,
            can_apply_to_expenses: true,
            can_apply_to_assets: true,
            can_apply_to_equity: true,
            can_apply_to_liabilities: true,
            display_tax_rate: None,
            effective_rate: None,
        };
        rate.fill_rates();
        rate
    }

    /// A rate for purchases, as Xero's INPUT types are: not offered on sales documents.
    pub fn purchases_only(mut self) -> Self {
        self.can_apply_to_revenue = false;
        self
    }

    /// A rate for sales, as Xero's OUTPUT types are: not offered on purchase documents.
    pub fn sales_only(mut self) -> Self {
        self.can_apply_to_expenses = false;
        self
    }

    pub fn component(name: &str, rate: Decimal, is_compound: bool) -> TaxComponent {
        TaxComponent { name: name.into(), rate, is_compound, is_non_recoverable: false }
    }

    /// DisplayTaxRate is the plain sum of the component rates; EffectiveRate applies compound
    /// components on top of the simple ones (e.g. Quebec's QST on GST), as Xero documents for
    /// TaxRates: https://developer.xero.com/documentation/api/accounting/taxrates
    pub fn fill_rates(&mut self) {
        let simple: Decimal = self.tax_components.iter().filter(|c| !c.is_compound).map(|c| c.rate).sum();
        let compound: Decimal = self.tax_components.iter().filter(|c| c.is_compound).map(|c| c.rate).sum();
        let effective = simple + compound * (Decimal::ONE_HUNDRED + simple) / Decimal::ONE_HUNDRED;
        if self.display_tax_rate.is_none() {
            self.display_tax_rate = Some(simple + compound);
        }
        if self.effective_rate.is_none() {
            self.effective_rate = Some(effective);
        }
    }

    pub fn rate(&self) -> Decimal {
        self.effective_rate.unwrap_or_default()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ItemDetails {
    #[serde(default, with = "crate::util::dec_opt", skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    #[serde(rename = "ItemID", default = "new_id")]
    pub item_id: Uuid,
    pub code: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub is_sold: bool,
    #[serde(default)]
    pub is_purchased: bool,
    #[serde(default)]
    pub is_tracked_as_inventory: bool,
    #[serde(default)]
    pub sales_details: ItemDetails,
    #[serde(default)]
    pub purchase_details: ItemDetails,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Currency {
    pub code: String,
    #[serde(default)]
    pub description: String,
}

impl Currency {
    pub fn new(code: &str, description: &str) -> Self {
        Currency { code: code.into(), description: description.into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingOption {
    #[serde(rename = "TrackingOptionID", default = "new_id")]
    pub tracking_option_id: Uuid,
    pub name: String,
    #[serde(default = "active")]
    pub status: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingCategory {
    #[serde(rename = "TrackingCategoryID", default = "new_id")]
    pub tracking_category_id: Uuid,
    pub name: String,
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub options: Vec<TrackingOption>,
}

impl TrackingCategory {
    pub fn new(name: &str, options: &[&str]) -> Self {
        TrackingCategory {
            tracking_category_id: new_id(),
            name: name.into(),
            status: active(),
            options: options
                .iter()
                .map(|o| TrackingOption { tracking_option_id: new_id(), name: (*o).into(), status: active() })
                .collect(),
        }
    }
}
