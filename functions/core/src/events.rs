//! Events for the platform, published on an EventBridge bus.
//!
//! Delivery is at least once, so every event carries an id that is derived from what it
//! reports: a redelivered message produces the same id and the platform can drop the repeat.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AwsError, Error};
use crate::model::{AccountId, TenantId};

/// The `source` of every entry we put on the bus.
pub const EVENT_SOURCE: &str = "xero-sync";
/// PutEvents takes at most 10 entries and 256 KiB a call.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
const ATTEMPTS: u32 = 4;

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

#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    fn entry(&self, event: &PlatformEvent) -> Result<(PutEventsRequestEntry, usize), Error> {
        let detail =
            serde_json::to_string(event).map_err(|e| Error::Corrupt { what: "event", reason: e.to_string() })?;
        // EventBridge's own size rule: source, detail-type, detail and resources, in bytes.
        let size = EVENT_SOURCE.len() + event.kind.as_str().len() + detail.len();
        if size > MAX_BATCH_BYTES {
            return Err(Error::Corrupt {
                what: "event",
                reason: format!("{} is {size} bytes, over 256 KiB", event.kind.as_str()),
            });
        }
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(event.kind.as_str())
            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(event.occurred_at.timestamp_millis()))
            .detail(detail)
            .build();
        Ok((entry, size))
    }

    /// Sends one batch, resending only the refused entries.
    async fn send_batch(&self, mut pending: Vec<PutEventsRequestEntry>) -> Result<(), Error> {
        let mut last_code = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            let out = self
                .client
                .put_events()
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| Error::Aws(AwsError::new("EventBridge", "PutEvents", &e)))?;
            if out.failed_entry_count == 0 {
                return Ok(());
            }
            // Results come back in request order; an entry with an error code was refused.
            let results = out.entries.unwrap_or_default();
            let mut refused = Vec::new();
            for (entry, result) in pending.into_iter().zip(results.iter().map(Some).chain(std::iter::repeat(None))) {
                match result.and_then(|r| r.error_code()) {
                    Some(code) => {
                        last_code = code.to_owned();
                        refused.push(entry);
                    }
                    None if result.is_none() => refused.push(entry),
                    None => {}
                }
            }
            if refused.is_empty() {
                return Ok(());
            }
            pending = refused;
        }
        Err(Error::EventsRejected { failed: pending.len(), code: last_code })
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: &[PlatformEvent]) -> Result<(), Error> {
        let mut batch = Vec::with_capacity(MAX_ENTRIES);
        let mut batch_bytes = 0;
        for event in events {
            let (entry, size) = self.entry(event)?;
            if batch.len() == MAX_ENTRIES || batch_bytes + size > MAX_BATCH_BYTES {
                self.send_batch(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            batch.push(entry);
            batch_bytes += size;
        }
        if !batch.is_empty() {
            self.send_batch(batch).await?;
        }
        Ok(())
    }
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
