//! Payments taken in the platform and what became of each in Xero.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AccountId, ConnectionKey, PlatformInvoiceId, PlatformPaymentId, TenantId};

/// How the customer paid; each method is paid into the Xero account the settings map it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    Cash,
    BankTransfer,
    Cheque,
    Online,
    Other,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Cash => "cash",
            Self::BankTransfer => "bank_transfer",
            Self::Cheque => "cheque",
            Self::Online => "online",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentSyncStatus {
    /// Accepted, not yet in Xero.
    Pending,
    /// Not sent yet, for a reason named in `reason` that goes away by itself or by the
    /// account's hand (the invoice is not in Xero yet, or is a draft; payments are not allowed
    /// by the connection's consent): sent once it does.
    Held,
    Synced,
    /// Removed in Xero (or never sent, when voided before it was).
    Voided,
    /// Xero refused it, or it cannot be sent; `reason` says why.
    Failed,
}

/// A platform payment and its Xero payment. Writes are conditional on `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub payment_id: PlatformPaymentId,
    pub invoice_id: PlatformInvoiceId,
    pub status: PaymentSyncStatus,
    #[serde(default)]
    pub xero_payment_id: Option<Uuid>,
    /// A refund (`payment.refunded`): the money goes back through a credit note of its own,
    /// `xero_credit_note_id`, which `xero_payment_id` pays out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refund: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_credit_note_id: Option<Uuid>,
    /// What was paid, as last asked for: shown in the invoice API.
    #[serde(default, deserialize_with = "crate::decimal::option::deserialize")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// Why it is held or failed, in words for the account.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(with = "crate::time::fixed_opt", default)]
    pub last_event_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_sequence: Option<u64>,
    #[serde(default)]
    pub last_delivery_id: Option<String>,
    /// Set while a push is writing to Xero; still set afterwards means it died midway.
    #[serde(with = "crate::time::fixed_opt", default)]
    pub claimed_until: Option<DateTime<Utc>>,
    /// A create may have reached Xero without us seeing the answer: look before creating.
    #[serde(default)]
    pub uncertain: bool,
    /// The outcome is recorded but not yet announced; the next delivery announces it.
    #[serde(default)]
    pub untold: bool,
    /// When the payment was first seen: how long it has waited for its invoice.
    #[serde(with = "crate::time::fixed")]
    pub first_seen_at: DateTime<Utc>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
    /// 0 before the first write.
    #[serde(default)]
    pub version: u64,
}

impl PaymentRecord {
    pub fn new(
        key: &ConnectionKey,
        payment_id: PlatformPaymentId,
        invoice_id: PlatformInvoiceId,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            account_id: key.account_id.clone(),
            tenant_id: key.tenant_id,
            payment_id,
            invoice_id,
            status: PaymentSyncStatus::Pending,
            xero_payment_id: None,
            refund: false,
            xero_credit_note_id: None,
            amount: None,
            date: None,
            reason: None,
            last_event_at: None,
            last_sequence: None,
            last_delivery_id: None,
            claimed_until: None,
            uncertain: false,
            untold: false,
            first_seen_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// Whether a write may have reached Xero unseen: one whose outcome we could not see, or a
    /// claim left by a push that died midway (a live claim is waited for before this is asked).
    pub fn may_have_reached_xero(&self) -> bool {
        self.uncertain || self.claimed_until.is_some()
    }

    pub fn key(&self) -> ConnectionKey {
        ConnectionKey { account_id: self.account_id.clone(), tenant_id: self.tenant_id }
    }
}
