//! Everything the emulator remembers, behind one lock so that a write, its idempotency record
//! and the counters it touches change together.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::{Account, Currency, Item, TaxRate, TrackingCategory};

#[derive(Clone, Debug)]
pub struct User {
    pub user_id: Uuid,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub organisations: Vec<Uuid>,
}

#[derive(Clone, Debug)]
pub struct Client {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub name: String,
}

/// An authorize request waiting for the user to press Approve or Deny on the consent page.
#[derive(Clone, Debug)]
pub struct PendingConsent {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub user_id: Uuid,
    pub created: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub user_id: Uuid,
    pub tenants: Vec<Uuid>,
    pub issued: DateTime<Utc>,
    pub used: bool,
}

#[derive(Clone, Debug)]
pub struct Grant {
    pub client_id: String,
    pub user_id: Uuid,
    pub scope: String,
    pub auth_event_id: Uuid,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub struct RefreshToken {
    pub grant_id: Uuid,
    pub issued: DateTime<Utc>,
    /// When this token was exchanged for a newer one; it stays usable for the grace period.
    pub rotated: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    pub grant_id: Uuid,
    pub auth_event_id: Uuid,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct IdempotentResponse {
    pub fingerprint: String,
    pub reply: crate::http::Reply,
    /// Emulator time the answer was stored; the key is forgotten a window later.
    pub stored: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct Contact {
    pub id: Uuid,
    /// The Xero-shaped fields the client sent, minus the ones the emulator owns.
    pub data: Map<String, Value>,
    pub status: String,
    pub updated: DateTime<Utc>,
}

impl Contact {
    pub fn name(&self) -> String {
        self.data.get("Name").and_then(Value::as_str).unwrap_or_default().to_string()
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Invoice,
    CreditNote,
}

#[derive(Clone, Debug)]
pub struct TrackingRef {
    pub category_id: Uuid,
    pub option_id: Uuid,
    pub name: String,
    pub option: String,
}

#[derive(Clone, Debug)]
pub struct LineItem {
    pub id: Uuid,
    pub description: Option<String>,
    pub quantity: Decimal,
    pub unit_amount: Option<Decimal>,
    pub item_code: Option<String>,
    pub account_code: Option<String>,
    pub tax_type: String,
    pub tax_amount: Decimal,
    pub line_amount: Decimal,
    pub discount_rate: Option<Decimal>,
    pub discount_amount: Decimal,
    pub tracking: Vec<TrackingRef>,
}

#[derive(Clone, Debug)]
pub struct Allocation {
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub credit_note_id: Uuid,
    pub amount: Decimal,
    pub date: NaiveDate,
}

/// An invoice or a credit note: Xero computes and transitions both the same way.
#[derive(Clone, Debug)]
pub struct Document {
    pub kind: DocKind,
    pub id: Uuid,
    pub doc_type: String,
    pub contact_id: Uuid,
    pub number: Option<String>,
    pub reference: Option<String>,
    pub date: NaiveDate,
    pub due_date: Option<NaiveDate>,
    pub expected_payment_date: Option<NaiveDate>,
    pub status: String,
    pub line_amount_types: String,
    pub currency_code: String,
    pub currency_rate: Decimal,
    pub line_items: Vec<LineItem>,
    pub sub_total: Decimal,
    pub total_tax: Decimal,
    pub total: Decimal,
    pub total_discount: Decimal,
    pub amount_paid: Decimal,
    pub amount_credited: Decimal,
    pub fully_paid_on: Option<NaiveDate>,
    pub url: Option<String>,
    pub sent_to_contact: bool,
    pub updated: DateTime<Utc>,
}

impl Document {
    pub fn amount_due(&self) -> Decimal {
        self.total - self.amount_paid - self.amount_credited
    }
}

#[derive(Clone, Debug)]
pub struct Payment {
    pub id: Uuid,
    pub doc_kind: DocKind,
    pub doc_id: Uuid,
    pub account_id: Uuid,
    pub amount: Decimal,
    pub date: NaiveDate,
    pub reference: Option<String>,
    pub status: String,
    pub payment_type: String,
    pub currency_rate: Decimal,
    pub updated: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub base_currency: String,
    pub country_code: String,
    pub short_code: String,
    pub created: DateTime<Utc>,
    pub accounts: Vec<Account>,
    pub tax_rates: Vec<TaxRate>,
    pub items: Vec<Item>,
    pub currencies: Vec<Currency>,
    pub tracking_categories: Vec<TrackingCategory>,
    pub contacts: Vec<Contact>,
    pub invoices: Vec<Document>,
    pub credit_notes: Vec<Document>,
    pub payments: Vec<Payment>,
    pub allocations: Vec<Allocation>,
    pub reference_updated: DateTime<Utc>,
    /// When each item written through the API last changed; seeded ones carry `reference_updated`.
    pub item_updated: std::collections::HashMap<Uuid, DateTime<Utc>>,
    pub contact_groups: Vec<ContactGroup>,
    /// Files attached to invoices and credit notes, by document id, in the order first uploaded.
    pub attachments: HashMap<Uuid, Vec<Attachment>>,
}

/// A file attached to an invoice or a credit note.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub id: Uuid,
    pub file_name: String,
    pub mime_type: String,
    /// `Bytes`, so cloning a tenant (batch writes work on a copy) does not copy the files.
    pub content: axum::body::Bytes,
    pub include_online: bool,
}

/// A contact group and the contacts in it.
#[derive(Clone, Debug)]
pub struct ContactGroup {
    pub id: Uuid,
    pub name: String,
    /// ACTIVE or DELETED (Xero's way of deleting one).
    pub status: String,
    pub members: Vec<Uuid>,
}

impl Tenant {
    pub fn docs(&self, kind: DocKind) -> &Vec<Document> {
        match kind {
            DocKind::Invoice => &self.invoices,
            DocKind::CreditNote => &self.credit_notes,
        }
    }

    pub fn docs_mut(&mut self, kind: DocKind) -> &mut Vec<Document> {
        match kind {
            DocKind::Invoice => &mut self.invoices,
            DocKind::CreditNote => &mut self.credit_notes,
        }
    }

    pub fn contact(&self, id: Uuid) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }
}

#[derive(Default)]
pub struct State {
    pub users: Vec<User>,
    pub clients: HashMap<String, Client>,
    pub tenants: Vec<Tenant>,
    pub consents: HashMap<String, PendingConsent>,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<Uuid, Grant>,
    pub refresh_tokens: HashMap<String, RefreshToken>,
    /// jti → grant, so revoking a grant also stops its access tokens.
    pub access_tokens: HashMap<Uuid, Uuid>,
    pub connections: Vec<Connection>,
    pub idempotency: HashMap<(Uuid, String), IdempotentResponse>,
    /// (tenant, resource, id) → when the object starts to appear in reads of that resource.
    pub hidden_until: HashMap<(Uuid, &'static str, Uuid), DateTime<Utc>>,
    /// Webhook events not yet delivered (or refused by the receiver), oldest first.
    pub webhook_outbox: std::collections::VecDeque<crate::webhooks::WebhookEvent>,
}

impl State {
    pub fn tenant(&self, id: Uuid) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.id == id)
    }

    pub fn tenant_mut(&mut self, id: Uuid) -> Option<&mut Tenant> {
        self.tenants.iter_mut().find(|t| t.id == id)
    }

    pub fn user_by_email(&self, email: &str) -> Option<&User> {
        self.users.iter().find(|u| u.email.eq_ignore_ascii_case(email))
    }

    pub fn is_hidden(&self, tenant: Uuid, resource: &'static str, id: Uuid, now: DateTime<Utc>) -> bool {
        self.hidden_until.get(&(tenant, resource, id)).is_some_and(|at| now < *at)
    }
}
