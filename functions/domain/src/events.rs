//! Events for the platform (published on an EventBridge bus: see `xero_sync_aws::eventbridge`).
//!
//! Delivery is at least once, so every event carries an id that is derived from what it
//! reports: a redelivered message produces the same id and the platform can drop the repeat.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::model::{AccountId, TenantId};

/// The `source` of every entry we put on the bus.
pub const EVENT_SOURCE: &str = "xero-sync";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "connection.connected")]
    ConnectionConnected,
    #[serde(rename = "connection.needs_reconnect")]
    ConnectionNeedsReconnect,
    #[serde(rename = "connection.disconnected")]
    ConnectionDisconnected,
    #[serde(rename = "connection.inactivity_warning")]
    ConnectionInactivityWarning,
    #[serde(rename = "invoice.synced")]
    InvoiceSynced,
    #[serde(rename = "invoice.sync_failed")]
    InvoiceSyncFailed,
    #[serde(rename = "invoice.payment_status_changed")]
    InvoicePaymentStatusChanged,
    #[serde(rename = "contact.upserted")]
    ContactUpserted,
    #[serde(rename = "payment.recorded")]
    PaymentRecorded,
    #[serde(rename = "payment.reversed")]
    PaymentReversed,
    #[serde(rename = "payment.synced")]
    PaymentSynced,
    #[serde(rename = "payment.sync_failed")]
    PaymentSyncFailed,
    #[serde(rename = "credit_note.synced")]
    CreditNoteSynced,
    #[serde(rename = "credit_note.sync_failed")]
    CreditNoteSyncFailed,
    #[serde(rename = "customer.synced")]
    CustomerSynced,
    #[serde(rename = "customer.sync_failed")]
    CustomerSyncFailed,
    #[serde(rename = "item.synced")]
    ItemSynced,
    #[serde(rename = "item.sync_failed")]
    ItemSyncFailed,
    #[serde(rename = "attachment.synced")]
    AttachmentSynced,
    #[serde(rename = "attachment.sync_failed")]
    AttachmentSyncFailed,
    #[serde(rename = "tax_rates.changed")]
    TaxRatesChanged,
    #[serde(rename = "accounts.changed")]
    AccountsChanged,
    #[serde(rename = "items.changed")]
    ItemsChanged,
    #[serde(rename = "currencies.changed")]
    CurrenciesChanged,
    #[serde(rename = "tracking.changed")]
    TrackingChanged,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionConnected => "connection.connected",
            Self::ConnectionNeedsReconnect => "connection.needs_reconnect",
            Self::ConnectionDisconnected => "connection.disconnected",
            Self::ConnectionInactivityWarning => "connection.inactivity_warning",
            Self::InvoiceSynced => "invoice.synced",
            Self::InvoiceSyncFailed => "invoice.sync_failed",
            Self::InvoicePaymentStatusChanged => "invoice.payment_status_changed",
            Self::ContactUpserted => "contact.upserted",
            Self::PaymentRecorded => "payment.recorded",
            Self::PaymentReversed => "payment.reversed",
            Self::PaymentSynced => "payment.synced",
            Self::PaymentSyncFailed => "payment.sync_failed",
            Self::CreditNoteSynced => "credit_note.synced",
            Self::CreditNoteSyncFailed => "credit_note.sync_failed",
            Self::CustomerSynced => "customer.synced",
            Self::CustomerSyncFailed => "customer.sync_failed",
            Self::ItemSynced => "item.synced",
            Self::ItemSyncFailed => "item.sync_failed",
            Self::AttachmentSynced => "attachment.synced",
            Self::AttachmentSyncFailed => "attachment.sync_failed",
            Self::TaxRatesChanged => "tax_rates.changed",
            Self::AccountsChanged => "accounts.changed",
            Self::ItemsChanged => "items.changed",
            Self::CurrenciesChanged => "currencies.changed",
            Self::TrackingChanged => "tracking.changed",
        }
    }
}

/// The `detail` of every entry: an envelope around the event's own data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlatformEvent {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub account_id: AccountId,
    pub tenant_id: Option<TenantId>,
    #[serde(with = "crate::time::fixed")]
    pub occurred_at: DateTime<Utc>,
    pub data: serde_json::Value,
}

impl PlatformEvent {
    /// `dedup_key` names what the event reports (say, an InvoiceID and its UpdatedDateUTC); the
    /// same key always gives the same id.
    pub fn new(
        kind: EventKind,
        account_id: AccountId,
        tenant_id: Option<TenantId>,
        dedup_key: &str,
        occurred_at: DateTime<Utc>,
        data: serde_json::Value,
    ) -> Self {
        let seed = format!(
            "{}|{}|{}|{}",
            kind.as_str(),
            account_id,
            tenant_id.map(|t| t.to_string()).unwrap_or_default(),
            dedup_key
        );
        Self { id: Uuid::new_v5(&Uuid::NAMESPACE_URL, seed.as_bytes()), kind, account_id, tenant_id, occurred_at, data }
    }
}

#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes all of them or fails; entries EventBridge refuses are retried a few times first.
    async fn publish(&self, events: &[PlatformEvent]) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_fact_always_gets_the_same_event_id() {
        let account = AccountId::parse("acct").unwrap();
        let at = Utc::now();
        let a = PlatformEvent::new(EventKind::InvoiceSynced, account.clone(), None, "inv-1", at, serde_json::json!({}));
        let b = PlatformEvent::new(EventKind::InvoiceSynced, account.clone(), None, "inv-1", at, serde_json::json!({}));
        let c = PlatformEvent::new(EventKind::InvoiceSyncFailed, account, None, "inv-1", at, serde_json::json!({}));
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [EventKind::PaymentReversed, EventKind::TaxRatesChanged, EventKind::ConnectionInactivityWarning] {
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
    }
}
