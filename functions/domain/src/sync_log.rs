//! The sync log: one row per invoice, payment, refund or credit note pushed to Xero, newest
//! change first, as the integration page and the platform list them.
//!
//! A row is read from the record itself (see [`crate::store::SyncLogStore`]), so it is never
//! out of step with what the push decided; it carries what a row shows and a link into Xero
//! needs, nothing the push keeps for itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::credit_note::CreditNoteRecord;
use crate::links::XeroDocument;
use crate::model::{SyncRecord, SyncStatus};
use crate::payment::{PaymentRecord, PaymentSyncStatus};

/// Which rows to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFilter {
    All,
    /// Only what is FAILED now: what the account has to act on.
    Failures,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    Invoice,
    Payment,
    Refund,
    CreditNote,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::Payment => "payment",
            Self::Refund => "refund",
            Self::CreditNote => "credit_note",
        }
    }
}

/// The record's own status; invoices are only ever PENDING, SYNCED or FAILED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogStatus {
    Pending,
    Held,
    Synced,
    Voided,
    Failed,
}

/// One row of the sync log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub kind: LogKind,
    /// The platform's id of the invoice, payment or credit note.
    pub platform_id: String,
    /// The platform invoice a payment, refund or credit note belongs to (a credit note may
    /// name none); for an invoice, its own id.
    pub invoice_id: Option<String>,
    /// The invoice's or credit note's number; payments have none.
    pub number: Option<String>,
    pub status: LogStatus,
    /// The Xero object it became, once Xero has it: for a refund, the credit note it is paid
    /// out of (the refund's payment pays that credit note).
    pub xero_id: Option<Uuid>,
    /// Why it failed or is held, as the record keeps it (Xero's own words when Xero refused).
    pub error: Option<String>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
}

impl LogEntry {
    /// What a link into Xero opens for this row (with [`crate::model::Connection::xero_link`],
    /// which needs the organisation's ShortCode); `None` until Xero has it.
    pub fn xero_document(&self) -> Option<XeroDocument> {
        let id = self.xero_id?;
        Some(match self.kind {
            LogKind::Invoice => XeroDocument::Invoice(id),
            LogKind::Payment => XeroDocument::Payment(id),
            LogKind::Refund | LogKind::CreditNote => XeroDocument::CreditNote(id),
        })
    }

    pub fn is_failure(&self) -> bool {
        self.status == LogStatus::Failed
    }
}

impl From<&SyncRecord> for LogEntry {
    fn from(r: &SyncRecord) -> Self {
        Self {
            kind: LogKind::Invoice,
            platform_id: r.invoice_id.as_str().to_owned(),
            invoice_id: Some(r.invoice_id.as_str().to_owned()),
            number: Some(r.invoice_number.clone()),
            status: match r.status {
                SyncStatus::Pending => LogStatus::Pending,
                SyncStatus::Synced => LogStatus::Synced,
                SyncStatus::Failed => LogStatus::Failed,
            },
            xero_id: r.xero_invoice_id,
            error: r.last_error.clone().filter(|_| r.status == SyncStatus::Failed),
            updated_at: r.updated_at,
        }
    }
}

impl From<&PaymentRecord> for LogEntry {
    fn from(r: &PaymentRecord) -> Self {
        Self {
            kind: if r.refund { LogKind::Refund } else { LogKind::Payment },
            platform_id: r.payment_id.as_str().to_owned(),
            invoice_id: Some(r.invoice_id.as_str().to_owned()),
            number: None,
            status: r.status.into(),
            xero_id: if r.refund { r.xero_credit_note_id } else { r.xero_payment_id },
            error: r.reason.clone(),
            updated_at: r.updated_at,
        }
    }
}

impl From<&CreditNoteRecord> for LogEntry {
    fn from(r: &CreditNoteRecord) -> Self {
        Self {
            kind: LogKind::CreditNote,
            platform_id: r.credit_note_id.as_str().to_owned(),
            invoice_id: r.invoice_id.as_ref().map(|id| id.as_str().to_owned()),
            number: Some(r.number.clone()),
            status: r.status.into(),
            xero_id: r.xero_credit_note_id,
            error: r.reason.clone(),
            updated_at: r.updated_at,
        }
    }
}

impl From<PaymentSyncStatus> for LogStatus {
    fn from(s: PaymentSyncStatus) -> Self {
        match s {
            PaymentSyncStatus::Pending => Self::Pending,
            PaymentSyncStatus::Held => Self::Held,
            PaymentSyncStatus::Synced => Self::Synced,
            PaymentSyncStatus::Voided => Self::Voided,
            PaymentSyncStatus::Failed => Self::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AccountId, ConnectionKey, PlatformInvoiceId, PlatformPaymentId, TenantId};

    fn key() -> ConnectionKey {
        ConnectionKey { account_id: AccountId::parse("acct-1").unwrap(), tenant_id: TenantId(Uuid::from_u128(7)) }
    }

    #[test]
    fn a_refund_links_to_the_credit_note_it_is_paid_out_of() {
        let invoice = PlatformInvoiceId::parse("inv-1").unwrap();
        let mut refund = PaymentRecord::new(&key(), PlatformPaymentId::parse("pay-1").unwrap(), invoice, Utc::now());
        refund.refund = true;
        refund.xero_payment_id = Some(Uuid::from_u128(1));
        refund.xero_credit_note_id = Some(Uuid::from_u128(2));
        let entry = LogEntry::from(&refund);
        assert_eq!(entry.kind, LogKind::Refund);
        assert_eq!(entry.xero_document(), Some(XeroDocument::CreditNote(Uuid::from_u128(2))));
    }

    #[test]
    fn an_invoice_shows_its_error_only_while_it_is_failed() {
        let mut record = SyncRecord::new(&key(), PlatformInvoiceId::parse("inv-1").unwrap(), "INV-1", Utc::now());
        record.status = SyncStatus::Failed;
        record.last_error = Some("Account code '999' is not a valid code".into());
        assert!(LogEntry::from(&record).is_failure());
        assert_eq!(LogEntry::from(&record).error.as_deref(), Some("Account code '999' is not a valid code"));
        record.status = SyncStatus::Synced;
        assert_eq!(LogEntry::from(&record).error, None);
        assert_eq!(LogEntry::from(&record).xero_document(), None, "no link before Xero has it");
    }
}
