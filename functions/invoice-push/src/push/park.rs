//! Pushes that wait for a reconnection, and sending them again once it comes.

use std::time::Duration as StdDuration;

use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::{ConnectionKey, ConnectionStatus, ParkedPush};
use xero_sync_domain::store::{ConnectionStore, ParkedPushStore};

use super::plan::{Outcome, PushError, PushResult};
use crate::event::InvoiceEvent;

pub(super) async fn park(
    store: &(impl ParkedPushStore + ConnectionStore + ?Sized),
    key: &ConnectionKey,
    events: &[InvoiceEvent],
) -> Result<Vec<PushResult>, PushError> {
    let mut parked = Vec::with_capacity(events.len());
    for event in events {
        let message = crate::message::QueueMessage::Event(Box::new(crate::message::PushMessage {
            tenant_id: key.tenant_id,
            event: event.clone(),
        }));
        let item = ParkedPush {
            invoice_id: event.invoice.id.clone(),
            occurred_at: event.occurred_at,
            sequence: event.sequence,
            message: serde_json::to_string(&message)
                .map_err(|e| Error::Corrupt { what: "parked push", reason: e.to_string() })?,
        };
        store.park_push(key, &item).await?;
        parked.push(item);
    }
    // The reconnection may have re-sent the parked pushes just before these were parked: then
    // they are taken back and this delivery is simply tried again.
    let connected = store.get_connection(key).await?.is_some_and(|c| c.status == ConnectionStatus::Connected);
    if connected {
        for item in &parked {
            store.unpark_push(key, item).await?;
        }
        let again = || Err(PushError::later("the organisation was reconnected meanwhile", StdDuration::from_secs(1)));
        return Ok(events.iter().map(|_| again()).collect());
    }
    if !events.is_empty() {
        tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoices = events.len(), "pushes parked until the organisation is reconnected");
    }
    Ok(events.iter().map(|_| Ok(Outcome::Parked)).collect())
}

/// Re-sends the pushes parked for a connection that is connected again; each is unparked only
/// once it is back on the queue.
pub async fn redrive_parked(store: &dyn ParkedPushStore, queue: &Queue, key: &ConnectionKey) -> Result<usize, Error> {
    let parked = store.parked_pushes(key).await?;
    let bodies: Vec<String> = parked.iter().map(|p| p.message.clone()).collect();
    let refused = queue.send_all(&bodies).await?;
    for (at, p) in parked.iter().enumerate() {
        if !refused.contains(&at) {
            store.unpark_push(key, p).await?;
        }
    }
    if !refused.is_empty() {
        return Err(Error::Conflict(format!("{} parked pushes could not be queued", refused.len())));
    }
    if !parked.is_empty() {
        tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoices = parked.len(), "parked pushes sent again");
    }
    Ok(parked.len())
}
