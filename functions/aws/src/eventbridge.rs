//! The platform's events on an EventBridge bus, in batches within PutEvents' limits, refused
//! entries resent.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use xero_sync_domain::error::Error;
use xero_sync_domain::events::{EVENT_SOURCE, EventPublisher, PlatformEvent};

use crate::sdk_error;

/// PutEvents takes at most 10 entries and 256 KiB a call.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
const ATTEMPTS: u32 = 4;

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
                .map_err(|e| Error::Aws(sdk_error("EventBridge", "PutEvents", &e)))?;
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
