//! An organisation's reference data (accounts, tax rates, tracking, items, currencies) as the
//! Accounting API lists it.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::status::{AccountClass, AccountType, RecordStatus, TaxRateStatus};
use crate::decimal;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    #[serde(rename = "AccountID")]
    pub account_id: Uuid,
    #[serde(default)]
    pub code: Option<String>,
    pub name: String,
    #[serde(rename = "Type")]
    pub account_type: AccountType,
    #[serde(default)]
    pub class: Option<AccountClass>,
    #[serde(default)]
    pub status: Option<RecordStatus>,
    #[serde(default)]
    pub enable_payments_to_account: bool,
    #[serde(default)]
    pub tax_type: Option<String>,
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status.is_none_or(|s| s == RecordStatus::Active)
    }

    /// What a payment may be paid into: an active bank account, or one with payments enabled.
    pub fn takes_payments(&self) -> bool {
        self.is_active() && (self.account_type == AccountType::Bank || self.enable_payments_to_account)
    }

    /// What may receive a sales invoice's lines: an active revenue account, or one that takes
    /// payments, but never a bank account.
    pub fn usable_for_sales(&self) -> bool {
        self.is_active()
            && self.code.is_some()
            && self.account_type != AccountType::Bank
            && (self.class == Some(AccountClass::Revenue) || self.enable_payments_to_account)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaxComponent {
    pub name: String,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub rate: Decimal,
    #[serde(default)]
    pub is_compound: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaxRate {
    pub name: String,
    pub tax_type: String,
    #[serde(default)]
    pub status: Option<TaxRateStatus>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub effective_rate: Option<Decimal>,
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub display_tax_rate: Option<Decimal>,
    #[serde(default)]
    pub tax_components: Vec<TaxComponent>,
    #[serde(default)]
    pub can_apply_to_revenue: Option<bool>,
}

impl TaxRate {
    pub fn is_active(&self) -> bool {
        self.status.is_none_or(|s| s == TaxRateStatus::Active)
    }

    pub fn usable_for_sales(&self) -> bool {
        self.is_active() && self.can_apply_to_revenue != Some(false)
    }

    /// The rate Xero applies: its EffectiveRate, else what the components add up to.
    pub fn effective(&self) -> Decimal {
        self.effective_rate.unwrap_or_else(|| {
            let simple: Decimal = self.tax_components.iter().filter(|c| !c.is_compound).map(|c| c.rate).sum();
            let compound = self.tax_components.iter().filter(|c| c.is_compound);
            compound.fold(simple, |total, c| total + c.rate * (Decimal::ONE_HUNDRED + total) / Decimal::ONE_HUNDRED)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingOption {
    #[serde(rename = "TrackingOptionID")]
    pub tracking_option_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub status: Option<RecordStatus>,
}

impl TrackingOption {
    pub fn is_active(&self) -> bool {
        self.status.is_none_or(|s| s == RecordStatus::Active)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrackingCategory {
    #[serde(rename = "TrackingCategoryID")]
    pub tracking_category_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub status: Option<RecordStatus>,
    #[serde(default)]
    pub options: Vec<TrackingOption>,
}

impl TrackingCategory {
    pub fn is_active(&self) -> bool {
        self.status.is_none_or(|s| s == RecordStatus::Active)
    }

    pub fn active_option(&self, name: &str) -> Option<&TrackingOption> {
        self.options.iter().find(|o| o.name == name && o.is_active())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ItemSalesDetails {
    #[serde(default, deserialize_with = "decimal::option::deserialize")]
    pub unit_price: Option<Decimal>,
    #[serde(default)]
    pub account_code: Option<String>,
    #[serde(default)]
    pub tax_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Item {
    #[serde(rename = "ItemID")]
    pub item_id: Uuid,
    pub code: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_sold: Option<bool>,
    #[serde(default)]
    pub sales_details: Option<ItemSalesDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Currency {
    pub code: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `{"Accounts": [...]}` and its siblings.
#[derive(Debug, Deserialize)]
pub struct Accounts {
    #[serde(rename = "Accounts", default)]
    pub accounts: Vec<Account>,
}

#[derive(Debug, Deserialize)]
pub struct TaxRates {
    #[serde(rename = "TaxRates", default)]
    pub tax_rates: Vec<TaxRate>,
}

#[derive(Debug, Deserialize)]
pub struct TrackingCategories {
    #[serde(rename = "TrackingCategories", default)]
    pub tracking_categories: Vec<TrackingCategory>,
}

#[derive(Debug, Deserialize)]
pub struct Items {
    #[serde(rename = "Items", default)]
    pub items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
pub struct Currencies {
    #[serde(rename = "Currencies", default)]
    pub currencies: Vec<Currency>,
}

/// `{"Organisations": [...]}`: of the organisation only what xero-sync keeps.
#[derive(Debug, Default, Deserialize)]
pub struct Organisations {
    #[serde(rename = "Organisations", default)]
    pub organisations: Vec<Organisation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Organisation {
    #[serde(default)]
    pub short_code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn json_numbers_become_the_decimals_xero_wrote() {
        let rate: TaxRate = serde_json::from_str(
            r#"{"Name":"GST","TaxType":"OUTPUT2","EffectiveRate":15.0000,"TaxComponents":[{"Name":"GST","Rate":0.1,"IsCompound":false}]}"#,
        )
        .unwrap();
        assert_eq!(rate.effective(), dec!(15));
        assert_eq!(rate.tax_components[0].rate.to_string(), "0.1");
    }

    #[test]
    fn a_compound_component_applies_on_top_of_the_others() {
        let rate = TaxRate {
            name: "GST + levy".into(),
            tax_type: "TAX001".into(),
            status: None,
            effective_rate: None,
            display_tax_rate: None,
            tax_components: vec![
                TaxComponent { name: "GST".into(), rate: dec!(10), is_compound: false },
                TaxComponent { name: "Levy".into(), rate: dec!(5), is_compound: true },
            ],
            can_apply_to_revenue: Some(true),
        };
        assert_eq!(rate.effective(), dec!(15.5));
    }

    #[test]
    fn bank_and_archived_accounts_never_take_sales() {
        use AccountClass as C;
        use AccountType as T;
        let account = |account_type, class, status, payments: bool| Account {
            account_id: Uuid::nil(),
            code: Some("1".into()),
            name: "x".into(),
            account_type,
            class: Some(class),
            status: Some(status),
            enable_payments_to_account: payments,
            tax_type: None,
        };
        let (active, archived) = (RecordStatus::Active, RecordStatus::Archived);
        assert!(account(T::Revenue, C::Revenue, active, false).usable_for_sales());
        assert!(account(T::CurrentLiability, C::Liability, active, true).usable_for_sales());
        assert!(!account(T::Bank, C::Asset, active, true).usable_for_sales());
        assert!(!account(T::Revenue, C::Revenue, archived, false).usable_for_sales());
        assert!(!account(T::Expense, C::Expense, active, false).usable_for_sales());
    }
}
