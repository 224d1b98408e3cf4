//! Credit notes issued in the platform (a job's sales credits) and what became of each in Xero.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AccountId, ConnectionKey, PlatformCreditNoteId, PlatformInvoiceId, TenantId};
/// A credit note goes through the lifecycle a payment does: pending, held (waiting for its
/// invoice to reach Xero), synced, voided, or failed with a reason.
pub use crate::payment::PaymentSyncStatus as CreditNoteSyncStatus;
use crate::xero::InvoiceStatus;

/// A platform credit note and its Xero credit note (`ACCRECCREDIT`). Writes are conditional on
/// `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNoteRecord {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub credit_note_id: PlatformCreditNoteId,
    pub number: String,
    /// The platform invoice it credits, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<PlatformInvoiceId>,
    pub status: CreditNoteSyncStatus,
    #[serde(default)]
    pub xero_credit_note_id: Option<Uuid>,
    /// Its status in Xero as last seen: an approved one may carry allocations and payments,
    /// which Xero requires removed before an edit or a void.
    #[serde(default)]
    pub xero_status: Option<InvoiceStatus>,
    /// Its total in Xero, as last written.
    #[serde(default, deserialize_with = "crate::decimal::option::deserialize")]
    pub total: Option<Decimal>,
    /// What of it we allocated to its invoice (none when left unallocated).
    #[serde(default, deserialize_with = "crate::decimal::option::deserialize")]
    pub allocated: Option<Decimal>,
    /// Hash of what was last written (or refused): the same again makes no Xero call.
    #[serde(default)]
    pub content_hash: Option<String>,
    /// Why it is held or failed, or why it was left unallocated, in words for the account.
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
    /// A write may have reached Xero without us seeing the answer: look before writing again.
    #[serde(default)]
    pub uncertain: bool,
    /// The outcome is recorded but not yet announced; the next delivery announces it.
    #[serde(default)]
    pub untold: bool,
    /// When it was first seen: how long it has waited for its invoice.
    #[serde(with = "crate::time::fixed")]
    pub first_seen_at: DateTime<Utc>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
    /// 0 before the first write.
    #[serde(default)]
    pub version: u64,
}

impl CreditNoteRecord {
    pub fn new(key: &ConnectionKey, credit_note_id: PlatformCreditNoteId, number: &str, now: DateTime<Utc>) -> Self {
        Self {
            account_id: key.account_id.clone(),
            tenant_id: key.tenant_id,
            credit_note_id,
            number: number.to_owned(),
            invoice_id: None,
            status: CreditNoteSyncStatus::Pending,
            xero_credit_note_id: None,
            xero_status: None,
            total: None,
            allocated: None,
            content_hash: None,
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
