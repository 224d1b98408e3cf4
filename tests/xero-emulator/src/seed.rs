//! Seed data: users, organisations (tenants) with their reference data, and OAuth clients.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::{Account, Currency, Item, ItemDetails, TaxRate, TrackingCategory};
use crate::state::{Client, State, Tenant, User};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Seed {
    #[serde(default)]
    pub users: Vec<UserSeed>,
    #[serde(default)]
    pub organisations: Vec<OrgSeed>,
    #[serde(default)]
    pub clients: Vec<ClientSeed>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserSeed {
    #[serde(default)]
    pub user_id: Option<Uuid>,
    pub email: String,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    /// Tenant ids of the organisations this user can connect.
    #[serde(default)]
    pub organisations: Vec<Uuid>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientSeed {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrgSeed {
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(default = "nzd")]
    pub base_currency: String,
    #[serde(default = "nz")]
    pub country_code: String,
    #[serde(default)]
    pub accounts: Vec<Account>,
    #[serde(default)]
    pub tax_rates: Vec<TaxRate>,
    #[serde(default)]
    pub items: Vec<Item>,
    #[serde(default)]
    pub currencies: Vec<Currency>,
    #[serde(default)]
    pub tracking_categories: Vec<TrackingCategory>,
    /// Contacts in Xero's JSON shape (`Name`, `ContactNumber`, `EmailAddress`, ...).
    #[serde(default)]
    pub contacts: Vec<Value>,
}

fn nzd() -> String {
    "NZD".into()
}

fn nz() -> String {
    "NZ".into()
}

impl OrgSeed {
    pub fn new(tenant_id: Uuid, name: &str, base_currency: &str) -> Self {
        OrgSeed {
            tenant_id,
            name: name.into(),
            base_currency: base_currency.into(),
            country_code: base_currency.get(..2).unwrap_or("NZ").into(),
            accounts: vec![],
            tax_rates: vec![],
            items: vec![],
            currencies: vec![],
            tracking_categories: vec![],
            contacts: vec![],
        }
    }
}

/// Adds (or replaces, by id/email/client id) what the seed describes.
pub(crate) fn apply(state: &mut State, seed: Seed, now: DateTime<Utc>) -> Result<(), String> {
    for org in seed.organisations {
        let mut tax_rates = org.tax_rates;
        for rate in &mut tax_rates {
            rate.fill_rates();
        }
        let mut currencies = org.currencies;
        if !currencies.iter().any(|c| c.code == org.base_currency) {
            currencies.insert(0, Currency::new(&org.base_currency, &org.base_currency));
        }
        let tenant = Tenant {
            id: org.tenant_id,
            short_code: format!("!{}", &org.tenant_id.simple().to_string()[..5]),
            name: org.name,
            base_currency: org.base_currency,
            country_code: org.country_code,
            created: now,
            accounts: org.accounts,
            tax_rates,
            items: org.items,
            currencies,
            tracking_categories: org.tracking_categories,
            contacts: vec![],
            invoices: vec![],
            credit_notes: vec![],
            payments: vec![],
            allocations: vec![],
            reference_updated: now,
            item_updated: Default::default(),
            contact_groups: Vec::new(),
            attachments: Default::default(),
        };
        state.tenants.retain(|t| t.id != tenant.id);
        state.tenants.push(tenant);
        let tenant = state.tenant_mut(org.tenant_id).ok_or("tenant vanished")?;
        for contact in org.contacts {
            crate::documents::create_contact(tenant, &contact, now)
                .map_err(|errors| format!("contact {contact}: {}", errors.join("; ")))?;
        }
    }
    for user in seed.users {
        let user = User {
            user_id: user.user_id.unwrap_or_else(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, user.email.as_bytes())),
            email: user.email,
            given_name: user.given_name,
            family_name: user.family_name,
            organisations: user.organisations,
        };
        state.users.retain(|u| !u.email.eq_ignore_ascii_case(&user.email));
        state.users.push(user);
    }
    for client in seed.clients {
        let client = Client {
            name: client.name.unwrap_or_else(|| "Test app".into()),
            client_id: client.client_id,
            client_secret: client.client_secret,
            redirect_uris: client.redirect_uris,
        };
        state.clients.insert(client.client_id.clone(), client);
    }
    Ok(())
}

pub mod demo {
    //! The `demo` seed: one user with two organisations and a client for local runs.
    use super::*;

    pub const NZ_TENANT_ID: Uuid = Uuid::from_u128(0xfe79f7dd_b6d4_4a92_ba7b_538af6289c58);
    pub const AU_TENANT_ID: Uuid = Uuid::from_u128(0x4b4e5c1a_2f3d_4c6e_9a8b_7d1e2f3a4b5c);
    pub const USER_ID: Uuid = Uuid::from_u128(0x6f1c0d2e_8a3b_4c5d_9e7f_1a2b3c4d5e6f);
    pub const USER_EMAIL: &str = "demo@example.com";
    pub const CLIENT_ID: &str = "8E5C2B4F1D7A4C6B9E3F0A1B2C3D4E5F";
    pub const CLIENT_SECRET: &str = "demo-client-secret-for-local-use-only";
    pub const REDIRECT_URIS: [&str; 3] = [
        "http://localhost:3000/oauth/callback",
        "http://127.0.0.1:3000/oauth/callback",
        "http://localhost:9000/oauth/callback",
    ];

    pub fn seed() -> Seed {
        Seed {
            users: vec![UserSeed {
                user_id: Some(USER_ID),
                email: USER_EMAIL.into(),
                given_name: "Demo".into(),
                family_name: "User".into(),
                organisations: vec![NZ_TENANT_ID, AU_TENANT_ID],
            }],
            organisations: vec![nz(), au()],
            clients: vec![ClientSeed {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: REDIRECT_URIS.iter().map(|s| s.to_string()).collect(),
                name: Some("xero-sync (local)".into()),
            }],
        }
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap_or_default()
    }

    fn account(tenant: Uuid, code: &str, name: &str, kind: &str, tax: &str) -> Account {
        let mut a = Account::new(code, name, kind);
        a.account_id = Uuid::new_v5(&tenant, code.as_bytes());
        a.tax_type = Some(tax.into());
        a
    }

    fn accounts(tenant: Uuid, output: &str, input: &str, none: &str) -> Vec<Account> {
        let mut bank = account(tenant, "090", "Business Bank Account", "BANK", none);
        bank.bank_account_number = Some("0123456789".into());
        bank.bank_account_type = Some("BANK".into());
        let mut archived = account(tenant, "205", "Old Sales (closed)", "REVENUE", output);
        archived.status = "ARCHIVED".into();
        let mut undeposited = account(tenant, "615", "Undeposited Funds", "CURRENT", none);
        undeposited.enable_payments_to_account = true;
        vec![
            bank,
            account(tenant, "200", "Sales", "REVENUE", output),
            archived,
            account(tenant, "260", "Other Revenue", "REVENUE", output),
            account(tenant, "270", "Interest Income", "REVENUE", none),
            account(tenant, "310", "Cost of Goods Sold", "DIRECTCOSTS", input),
            account(tenant, "400", "Advertising", "OVERHEADS", input),
            undeposited,
            account(tenant, "800", "Accounts Payable", "CURRLIAB", none),
        ]
    }

    fn region(tenant: Uuid) -> TrackingCategory {
        let mut region = TrackingCategory::new("Region", &["North", "South", "Central"]);
        region.tracking_category_id = Uuid::new_v5(&tenant, b"tracking:Region");
        for o in &mut region.options {
            o.tracking_option_id = Uuid::new_v5(&tenant, format!("tracking:Region:{}", o.name).as_bytes());
        }
        region
    }

    fn item(tenant: Uuid, tax: &str) -> Item {
        Item {
            item_id: Uuid::new_v5(&tenant, b"item:CALLOUT"),
            code: "CALLOUT".into(),
            name: "Call-out fee".into(),
            description: Some("Standard call-out fee".into()),
            is_sold: true,
            is_purchased: false,
            is_tracked_as_inventory: false,
            sales_details: ItemDetails {
                unit_price: Some(dec("95.00")),
                account_code: Some("200".into()),
                tax_type: Some(tax.into()),
            },
            purchase_details: ItemDetails::default(),
        }
    }

    fn contacts() -> Vec<Value> {
        vec![
            json!({"Name": "Acme Plumbing Ltd", "ContactNumber": "C-1001", "EmailAddress": "accounts@acme.example",
                   "IsCustomer": true}),
            json!({"Name": "Bayside Property Management", "ContactNumber": "C-1002",
                   "EmailAddress": "ap@bayside.example", "IsCustomer": true}),
            json!({"Name": "Jane Citizen", "FirstName": "Jane", "LastName": "Citizen",
                   "EmailAddress": "jane@citizen.example"}),
        ]
    }

    fn nz() -> OrgSeed {
        let t = NZ_TENANT_ID;
        let mut org = OrgSeed::new(t, "Demo Company (NZ)", "NZD");
        org.accounts = accounts(t, "OUTPUT2", "INPUT2", "NONE");
        org.tax_rates = vec![
            TaxRate::new("OUTPUT2", "15% GST on Income", vec![TaxRate::component("GST", dec("15"), false)])
                .sales_only(),
            TaxRate::new("INPUT2", "15% GST on Expenses", vec![TaxRate::component("GST", dec("15"), false)])
                .purchases_only(),
            TaxRate::new("NONE", "No GST", vec![TaxRate::component("GST", dec("0"), false)]),
            TaxRate::new(
                "TAX001",
                "GST and Regional Levy on Income",
                vec![
                    TaxRate::component("GST", dec("15"), false),
                    TaxRate::component("Regional Levy", dec("2.5"), false),
                ],
            ),
        ];
        org.items = vec![item(t, "OUTPUT2")];
        org.currencies = vec![
            Currency::new("NZD", "New Zealand Dollar"),
            Currency::new("AUD", "Australian Dollar"),
            Currency::new("USD", "United States Dollar"),
        ];
        org.tracking_categories = vec![region(t)];
        org.contacts = contacts();
        org
    }

    fn au() -> OrgSeed {
        let t = AU_TENANT_ID;
        let mut org = OrgSeed::new(t, "Demo Company (AU)", "AUD");
        org.accounts = accounts(t, "OUTPUT", "INPUT", "BASEXCLUDED");
        org.tax_rates = vec![
            TaxRate::new("OUTPUT", "GST on Income", vec![TaxRate::component("GST", dec("10"), false)]).sales_only(),
            TaxRate::new("INPUT", "GST on Expenses", vec![TaxRate::component("GST", dec("10"), false)])
                .purchases_only(),
            TaxRate::new("EXEMPTOUTPUT", "GST Free Income", vec![TaxRate::component("GST", dec("0"), false)]),
            TaxRate::new("BASEXCLUDED", "BAS Excluded", vec![TaxRate::component("GST", dec("0"), false)]),
            TaxRate::new(
                "TAX001",
                "GST and Compound Levy on Income",
                vec![TaxRate::component("GST", dec("10"), false), TaxRate::component("Levy", dec("5"), true)],
            ),
        ];
        org.items = vec![item(t, "OUTPUT")];
        org.currencies = vec![Currency::new("AUD", "Australian Dollar"), Currency::new("NZD", "New Zealand Dollar")];
        org.tracking_categories = vec![region(t)];
        org.contacts = contacts();
        org
    }
}
