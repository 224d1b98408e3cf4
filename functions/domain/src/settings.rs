//! Per-connection sync settings: how platform invoices map onto a Xero organisation, and the
//! rules a settings write must pass against the organisation's reference data.

use std::collections::{BTreeMap, HashSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::payment::PaymentMethod;
use crate::problem::Problem;
use crate::reference::ReferenceData;
use crate::xero::AccountType;

/// At most this many tracking categories per invoice line, as Xero allows.
pub const MAX_TRACKING: usize = 2;
/// Far beyond any real tax table; keeps a settings document well inside a DynamoDB item.
pub const MAX_TAX_MAPPINGS: usize = 200;
pub const MAX_TRACKING_OPTIONS: usize = 500;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NewInvoiceStatus {
    #[default]
    Draft,
    Authorised,
}

/// Whose change stands when a customer's contact was edited in Xero after our last write to it
/// and the platform then changes the customer too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerConflicts {
    /// The later change by the times each side reports: the platform event's `occurred_at`
    /// against the contact's UpdatedDateUTC.
    #[default]
    NewestWins,
    /// The platform's details are written over the edit.
    PlatformWins,
    /// The edit in Xero stands; the platform's change is not written (and is reported so).
    XeroWins,
}

impl CustomerConflicts {
    /// Whether the platform's change, made at `platform_at`, is written over a contact edited in
    /// Xero at `xero_at`.
    pub fn platform_prevails(
        self,
        platform_at: chrono::DateTime<chrono::Utc>,
        xero_at: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        match self {
            Self::NewestWins => platform_at > xero_at,
            Self::PlatformWins => true,
            Self::XeroWins => false,
        }
    }
}

/// Which contacts read back from Xero (the import, Xero's webhooks) the platform hears of as
/// `contact.upserted`. A contact that stands for a platform customer is always sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactsSentBack {
    /// Every contact.
    #[default]
    All,
    /// Everyone but suppliers. Xero's IsCustomer only means "has sales invoices" (and is read
    /// only), so a new customer without one has it false: a contact is left out only when it is
    /// a supplier and not a customer (IsSupplier without IsCustomer).
    Customers,
    /// The members of `contact_groups`.
    Groups,
}

impl ContactsSentBack {
    /// Whether a contact with these flags, standing for a platform customer or not, in a chosen
    /// group or not, is sent back.
    pub fn sends(self, is_customer: bool, is_supplier: bool, ours: bool, in_chosen_group: bool) -> bool {
        ours || match self {
            Self::All => true,
            Self::Customers => is_customer || !is_supplier,
            Self::Groups => in_chosen_group,
        }
    }
}

/// A platform tax rate and the Xero TaxType it is mapped to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxMapping {
    pub platform_tax_rate_id: String,
    /// The platform rate, in percent.
    #[serde(deserialize_with = "crate::decimal::deserialize")]
    pub rate: Decimal,
    /// Component rates, in percent, for multi-component taxes; empty for a single rate.
    #[serde(default, deserialize_with = "crate::decimal::vec::deserialize")]
    pub components: Vec<Decimal>,
    pub xero_tax_type: String,
}

/// A Xero tracking category fed from a platform job attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingMapping {
    pub xero_category_id: uuid::Uuid,
    pub job_attribute: String,
    /// Platform attribute value → Xero option name; an unmapped value is sent as it is.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// How the customer paid → the Xero account (BANK, or one with payments enabled) the
    /// payment goes into. A payment by an unmapped method fails, naming the method.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub payment_accounts: BTreeMap<PaymentMethod, uuid::Uuid>,
    /// A payment for an invoice that is a draft in Xero approves the invoice first; otherwise
    /// it is held until the invoice is approved.
    #[serde(default)]
    pub approve_drafts_for_payment: bool,
    /// The platform's page for an invoice, such as `https://app.example.com/invoices/{invoice_id}`:
    /// set as the Xero invoice's `Url`, so Xero shows "Go to …" on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_url_template: Option<String>,
    /// See [`CustomerConflicts`].
    #[serde(default)]
    pub customer_conflicts: CustomerConflicts,
    /// See [`ContactsSentBack`].
    #[serde(default)]
    pub contacts_sent_back: ContactsSentBack,
    /// The Xero contact groups (ContactGroupID) whose members are sent back under
    /// [`ContactsSentBack::Groups`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_groups: Vec<uuid::Uuid>,
    /// Files attached to sales invoices and credit notes are shown to the customer with the
    /// online invoice (Xero's IncludeOnline). Off by default, as in Xero: a job sheet may hold
    /// notes not meant for the customer.
    #[serde(default)]
    pub attachments_online: bool,
}

/// A settings document with the version a writer must name to replace it (0: never written).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedSettings {
    pub version: u64,
    pub settings: ConnectionSettings,
}

/// Whether a platform rate (with its components, for a multi-component tax) may be mapped to the
/// Xero rate: the same effective rate, and component by component the same rates when either
/// side has several. What the integration page offers, and what a settings write must pass.
pub fn tax_rate_matches(rate: Decimal, components: &[Decimal], xero: &crate::xero::TaxRate) -> bool {
    same_rate(rate, xero.effective()) && same_components(components, xero)
}

/// Component by component, when either side has several (a single rate has nothing to compare).
fn same_components(components: &[Decimal], xero: &crate::xero::TaxRate) -> bool {
    let multi = !components.is_empty() || xero.tax_components.len() > 1;
    !multi || sorted(components.to_vec()) == sorted(xero.tax_components.iter().map(|c| c.rate).collect())
}

fn same_rate(a: Decimal, b: Decimal) -> bool {
    a.normalize() == b.normalize()
}

fn sorted(mut rates: Vec<Decimal>) -> Vec<Decimal> {
    rates.iter_mut().for_each(|r| *r = r.normalize());
    rates.sort();
    rates
}

fn check_account(code: &str, field: &str, data: &ReferenceData, problems: &mut Vec<Problem>) {
    match data.account(code) {
        None => problems.push(Problem::new(field, format!("account {code} does not exist in Xero"))),
        Some(a) if !a.is_active() => problems.push(Problem::new(field, format!("account {code} is archived in Xero"))),
        Some(a) if a.account_type == AccountType::Bank => {
            problems.push(Problem::new(field, format!("account {code} is a bank account and cannot take sales")))
        }
        Some(a) if !a.usable_for_sales() => problems
            .push(Problem::new(field, format!("account {code} is neither a revenue account nor enabled for payments"))),
        Some(_) => {}
    }
}

fn check_tax_type(tax_type: &str, field: &str, data: &ReferenceData, problems: &mut Vec<Problem>) -> bool {
    match data.tax_rate(tax_type) {
        None => problems.push(Problem::new(field, format!("tax rate {tax_type} does not exist in Xero"))),
        Some(t) if !t.is_active() => {
            problems.push(Problem::new(field, format!("tax rate {tax_type} is archived in Xero")))
        }
        Some(t) if !t.usable_for_sales() => {
            problems.push(Problem::new(field, format!("tax rate {tax_type} cannot be used on sales")))
        }
        Some(_) => return true,
    }
    false
}

/// Whether a payment may be paid into the account: Xero takes payments into a bank account or
/// one with payments enabled.
fn check_payment_account(id: uuid::Uuid, field: &str, data: &ReferenceData, problems: &mut Vec<Problem>) {
    match data.accounts.iter().find(|a| a.account_id == id) {
        None => problems.push(Problem::new(field, format!("account {id} does not exist in Xero"))),
        Some(a) if !a.is_active() => {
            problems.push(Problem::new(field, format!("account {} is archived in Xero", a.name)))
        }
        Some(a) if !a.takes_payments() => problems.push(Problem::new(
            field,
            format!("account {} is neither a bank account nor enabled for payments", a.name),
        )),
        Some(_) => {}
    }
}

/// Every problem with `settings` for this organisation, so the admin sees them all at once.
pub fn check(settings: &ConnectionSettings, data: &ReferenceData) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(problem) = settings.invoice_url_template.as_deref().and_then(crate::links::template_problem) {
        problems.push(Problem::new("settings.invoice_url_template", problem));
    }
    for (method, id) in &settings.payment_accounts {
        check_payment_account(*id, &format!("settings.payment_accounts.{}", method.as_str()), data, &mut problems);
    }
    if let Some(code) = &settings.default_sales_account_code {
        check_account(code, "settings.default_sales_account_code", data, &mut problems);
    }
    if let Some(tax_type) = &settings.default_tax_type {
        check_tax_type(tax_type, "settings.default_tax_type", data, &mut problems);
    }
    if settings.tax_mapping.len() > MAX_TAX_MAPPINGS {
        problems.push(Problem::new("settings.tax_mapping", format!("has more than {MAX_TAX_MAPPINGS} entries")));
    }
    let mut seen = HashSet::new();
    for (i, mapping) in settings.tax_mapping.iter().enumerate() {
        let field = format!("settings.tax_mapping[{i}]");
        if !seen.insert(mapping.platform_tax_rate_id.as_str()) {
            problems.push(Problem::new(format!("{field}.platform_tax_rate_id"), "is mapped twice"));
        }
        if !check_tax_type(&mapping.xero_tax_type, &format!("{field}.xero_tax_type"), data, &mut problems) {
            continue;
        }
        let xero = data.tax_rate(&mapping.xero_tax_type).expect("checked above");
        if !same_rate(mapping.rate, xero.effective()) {
            problems.push(Problem::new(
                format!("{field}.rate"),
                format!(
                    "{}% does not match {} ({}%, effective)",
                    mapping.rate.normalize(),
                    xero.tax_type,
                    xero.effective().normalize()
                ),
            ));
        }
        if !same_components(&mapping.components, xero) {
            let theirs = sorted(xero.tax_components.iter().map(|c| c.rate).collect());
            let list = |r: &[Decimal]| r.iter().map(|d| format!("{d}%")).collect::<Vec<_>>().join(" + ");
            problems.push(Problem::new(
                format!("{field}.components"),
                format!(
                    "components {} do not match {}'s {}",
                    list(&sorted(mapping.components.clone())),
                    xero.tax_type,
                    list(&theirs)
                ),
            ));
        }
    }
    if settings.tracking_mapping.len() > MAX_TRACKING {
        problems.push(Problem::new("settings.tracking_mapping", "Xero allows at most two tracking categories"));
    }
    let mut categories = HashSet::new();
    for (i, mapping) in settings.tracking_mapping.iter().enumerate() {
        let field = format!("settings.tracking_mapping[{i}]");
        if mapping.options.len() > MAX_TRACKING_OPTIONS {
            problems.push(Problem::new(
                format!("{field}.options"),
                format!("has more than {MAX_TRACKING_OPTIONS} entries"),
            ));
        }
        if mapping.job_attribute.trim().is_empty() {
            problems.push(Problem::new(format!("{field}.job_attribute"), "is empty"));
        }
        if !categories.insert(mapping.xero_category_id) {
            problems.push(Problem::new(format!("{field}.xero_category_id"), "is mapped twice"));
        }
        match data.tracking_category(mapping.xero_category_id) {
            None => problems.push(Problem::new(format!("{field}.xero_category_id"), "does not exist in Xero")),
            Some(c) if !c.is_active() => problems
                .push(Problem::new(format!("{field}.xero_category_id"), format!("{} is archived in Xero", c.name))),
            Some(c) => {
                for (value, option) in &mapping.options {
                    if c.active_option(option).is_none() {
                        problems.push(Problem::new(
                            format!("{field}.options.{value}"),
                            format!("{} has no active option {option}", c.name),
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// Re-checks what settings use against the organisation now ("Validate Accounts"), together
/// with account codes the platform itself uses.
pub fn validate_in_use(
    settings: &ConnectionSettings,
    extra_account_codes: &[String],
    data: &ReferenceData,
) -> Vec<Problem> {
    let mut problems = check(settings, data);
    for (i, code) in extra_account_codes.iter().enumerate() {
        check_account(code, &format!("account_codes[{i}]"), data, &mut problems);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xero::{Account, TaxComponent, TaxRate, TrackingCategory, TrackingOption};
    use chrono::Utc;
    use rust_decimal_macros::dec;
    use uuid::Uuid;

    const REGION: Uuid = Uuid::from_u128(1);

    fn account(code: &str, t: &str, class: &str, status: &str, payments: bool) -> Account {
        Account {
            account_id: Uuid::new_v4(),
            code: Some(code.into()),
            name: code.into(),
            account_type: t.parse().unwrap(),
            class: Some(class.parse().unwrap()),
            status: Some(status.parse().unwrap()),
            enable_payments_to_account: payments,
            tax_type: None,
        }
    }

    fn rate(tax_type: &str, components: &[(Decimal, bool)], effective: Decimal) -> TaxRate {
        TaxRate {
            name: tax_type.into(),
            tax_type: tax_type.into(),
            status: Some("ACTIVE".parse().unwrap()),
            effective_rate: Some(effective),
            display_tax_rate: None,
            tax_components: components
                .iter()
                .map(|(r, c)| TaxComponent { name: "c".into(), rate: *r, is_compound: *c })
                .collect(),
            can_apply_to_revenue: Some(true),
        }
    }

    fn data() -> ReferenceData {
        ReferenceData {
            read_at: Utc::now(),
            accounts: vec![
                account("200", "REVENUE", "REVENUE", "ACTIVE", false),
                account("205", "REVENUE", "REVENUE", "ARCHIVED", false),
                account("090", "BANK", "ASSET", "ACTIVE", true),
                account("400", "EXPENSE", "EXPENSE", "ACTIVE", false),
            ],
            tax_rates: vec![
                rate("OUTPUT2", &[(dec!(15), false)], dec!(15)),
                rate("TAX001", &[(dec!(10), false), (dec!(5), true)], dec!(15.5)),
            ],
            tracking_categories: vec![TrackingCategory {
                tracking_category_id: REGION,
                name: "Region".into(),
                status: Some("ACTIVE".parse().unwrap()),
                options: vec![TrackingOption {
                    tracking_option_id: Uuid::new_v4(),
                    name: "North".into(),
                    status: None,
                }],
            }],
            items: vec![],
            currencies: vec![],
        }
    }

    fn mapping(rate: Decimal, components: Vec<Decimal>, tax_type: &str) -> TaxMapping {
        TaxMapping {
            platform_tax_rate_id: format!("p-{tax_type}-{rate}"),
            rate,
            components,
            xero_tax_type: tax_type.into(),
        }
    }

    #[test]
    fn rates_sent_as_json_numbers_keep_their_digits() {
        let m: TaxMapping = serde_json::from_str(
            r#"{"platform_tax_rate_id":"t","rate":12.345,"components":[0.1,12.245],"xero_tax_type":"X"}"#,
        )
        .unwrap();
        assert_eq!(m.rate.to_string(), "12.345");
        assert_eq!(m.components[0].to_string(), "0.1");
    }

    #[test]
    fn what_comes_back_leaves_out_suppliers_or_non_members_but_never_our_own_customers() {
        use ContactsSentBack::*;
        // (is_customer, is_supplier, ours, in a chosen group)
        assert!(All.sends(false, true, false, false));
        assert!(Customers.sends(false, false, false, false), "a new customer has no sales invoice yet");
        assert!(Customers.sends(true, true, false, false), "a customer who also supplies");
        assert!(!Customers.sends(false, true, false, false), "a supplier only");
        assert!(Customers.sends(false, true, true, false), "one that stands for a platform customer");
        assert!(!Groups.sends(true, false, false, false));
        assert!(Groups.sends(false, true, false, true));
        assert!(Groups.sends(false, false, true, false));
    }

    #[test]
    fn each_conflict_rule_says_whose_change_stands() {
        let xero_edit = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z").unwrap().to_utc();
        let earlier = xero_edit - chrono::Duration::minutes(5);
        let later = xero_edit + chrono::Duration::minutes(5);
        assert!(CustomerConflicts::NewestWins.platform_prevails(later, xero_edit));
        assert!(!CustomerConflicts::NewestWins.platform_prevails(earlier, xero_edit));
        assert!(!CustomerConflicts::NewestWins.platform_prevails(xero_edit, xero_edit), "a tie keeps what is there");
        assert!(CustomerConflicts::PlatformWins.platform_prevails(earlier, xero_edit));
        assert!(!CustomerConflicts::XeroWins.platform_prevails(later, xero_edit));
        let read: ConnectionSettings = serde_json::from_str(r#"{"customer_conflicts": "xero_wins"}"#).unwrap();
        assert_eq!(read.customer_conflicts, CustomerConflicts::XeroWins);
        assert_eq!(ConnectionSettings::default().customer_conflicts, CustomerConflicts::NewestWins);
    }

    #[test]
    fn a_sound_configuration_has_no_problems() {
        let settings = ConnectionSettings {
            default_sales_account_code: Some("200".into()),
            default_tax_type: Some("OUTPUT2".into()),
            new_invoice_status: NewInvoiceStatus::Authorised,
            tax_mapping: vec![
                mapping(dec!(15.00), vec![], "OUTPUT2"),
                mapping(dec!(15.5), vec![dec!(5), dec!(10)], "TAX001"),
            ],
            tracking_mapping: vec![TrackingMapping {
                xero_category_id: REGION,
                job_attribute: "zone".into(),
                options: BTreeMap::from([("N".into(), "North".into())]),
            }],
            match_items_by_code: true,
            payment_accounts: BTreeMap::new(),
            approve_drafts_for_payment: false,
            invoice_url_template: Some("https://app.example.com/invoices/{invoice_id}".into()),
            customer_conflicts: CustomerConflicts::PlatformWins,
            contacts_sent_back: ContactsSentBack::All,
            contact_groups: vec![],
            attachments_online: true,
        };
        let data = data();
        let settings = ConnectionSettings {
            payment_accounts: BTreeMap::from([(PaymentMethod::Card, data.account("090").unwrap().account_id)]),
            ..settings
        };
        assert_eq!(check(&settings, &data), vec![]);
    }

    #[test]
    fn payments_go_only_into_a_bank_account_or_one_that_takes_payments() {
        let data = data();
        let id = |code: &str| data.account(code).unwrap().account_id;
        let settings = ConnectionSettings {
            payment_accounts: BTreeMap::from([
                (PaymentMethod::Card, id("090")),
                (PaymentMethod::Cash, id("200")),
                (PaymentMethod::Cheque, uuid::Uuid::nil()),
            ]),
            ..Default::default()
        };
        let problems: Vec<(String, String)> =
            check(&settings, &data).into_iter().map(|p| (p.field, p.message)).collect();
        assert_eq!(
            problems,
            vec![
                (
                    "settings.payment_accounts.cash".into(),
                    "account 200 is neither a bank account nor enabled for payments".into()
                ),
                (
                    "settings.payment_accounts.cheque".into(),
                    "account 00000000-0000-0000-0000-000000000000 does not exist in Xero".into()
                ),
            ]
        );
    }

    #[test]
    fn an_invoice_page_template_that_is_no_https_address_is_refused_naming_the_field() {
        let settings = ConnectionSettings {
            invoice_url_template: Some("app.example.com/{invoice_id}".into()),
            ..Default::default()
        };
        let problems = check(&settings, &data());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "settings.invoice_url_template");
        assert!(problems[0].message.contains("https"), "{}", problems[0].message);
    }

    #[test]
    fn archived_bank_expense_and_unknown_accounts_are_each_named() {
        for (code, says) in
            [("205", "archived"), ("090", "bank account"), ("400", "neither a revenue"), ("999", "does not exist")]
        {
            let settings = ConnectionSettings { default_sales_account_code: Some(code.into()), ..Default::default() };
            let problems = check(&settings, &data());
            assert_eq!(problems.len(), 1, "{code}");
            assert!(problems[0].message.contains(says), "{code}: {}", problems[0].message);
        }
    }

    #[test]
    fn a_rate_mismatch_is_refused() {
        let settings =
            ConnectionSettings { tax_mapping: vec![mapping(dec!(12.5), vec![], "OUTPUT2")], ..Default::default() };
        let problems = check(&settings, &data());
        assert_eq!(problems[0].field, "settings.tax_mapping[0].rate");
        assert_eq!(problems[0].message, "12.5% does not match OUTPUT2 (15%, effective)");
    }

    #[test]
    fn multi_component_rates_match_component_by_component() {
        let wrong = ConnectionSettings {
            tax_mapping: vec![mapping(dec!(15.5), vec![dec!(7.5), dec!(7.5)], "TAX001")],
            ..Default::default()
        };
        let problems = check(&wrong, &data());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].message, "components 7.5% + 7.5% do not match TAX001's 5% + 10%");
        let single =
            ConnectionSettings { tax_mapping: vec![mapping(dec!(15.5), vec![], "TAX001")], ..Default::default() };
        assert_eq!(check(&single, &data()).len(), 1, "a single platform rate cannot stand for two components");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let settings = ConnectionSettings {
            default_sales_account_code: Some("999".into()),
            default_tax_type: Some("NOPE".into()),
            tax_mapping: vec![mapping(dec!(15), vec![], "OUTPUT2"), mapping(dec!(15), vec![], "OUTPUT2")],
            tracking_mapping: vec![
                TrackingMapping {
                    xero_category_id: REGION,
                    job_attribute: " ".into(),
                    options: BTreeMap::from([("S".into(), "South".into())]),
                },
                TrackingMapping {
                    xero_category_id: Uuid::from_u128(9),
                    job_attribute: "x".into(),
                    options: BTreeMap::new(),
                },
                TrackingMapping { xero_category_id: REGION, job_attribute: "y".into(), options: BTreeMap::new() },
            ],
            ..Default::default()
        };
        let fields: Vec<String> = check(&settings, &data()).into_iter().map(|p| p.field).collect();
        for expected in [
            "settings.default_sales_account_code",
            "settings.default_tax_type",
            "settings.tax_mapping[1].platform_tax_rate_id",
            "settings.tracking_mapping",
            "settings.tracking_mapping[0].job_attribute",
            "settings.tracking_mapping[0].options.S",
            "settings.tracking_mapping[1].xero_category_id",
            "settings.tracking_mapping[2].xero_category_id",
        ] {
            assert!(fields.iter().any(|f| f == expected), "{expected} missing from {fields:?}");
        }
    }
}
