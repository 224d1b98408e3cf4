//! Pushes that wait for a reconnection, and sending them again once it comes.

use std::time::Duration as StdDuration;

use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::{
    Connection, ConnectionKey, ConnectionStatus, ParkedPush, PlatformCreditNoteId, PlatformCustomerId,
    PlatformInvoiceId, PlatformItemId, PlatformPaymentId,
};
use xero_sync_domain::store::{ConnectionStore, ParkedPushStore};

use super::plan::{Outcome, PushError, PushResult};
use crate::event::{EventOrder, InvoiceEvent};

pub(super) async fn park(
    store: &(impl ParkedPushStore + ConnectionStore + ?Sized),
    key: &ConnectionKey,
    events: &[InvoiceEvent],
) -> Result<Vec<PushResult>, PushError> {
    let mut items = Vec::with_capacity(events.len());
    for event in events {
        let message = crate::message::QueueMessage::Event(Box::new(crate::message::PushMessage {
            tenant_id: key.tenant_id,
            event: event.clone(),
        }));
        items.push(parked(ParkedUnder::Invoice(event.invoice.id.clone()), event.order(), &message)?);
    }
    let parked = park_items(store, key, &items, |c| c.status != ConnectionStatus::Connected).await?;
    Ok(events.iter().map(|_| if parked { Ok(Outcome::Parked) } else { Err(reconnected_meanwhile()) }).collect())
}

pub(crate) fn reconnected_meanwhile() -> PushError {
    PushError::later("the organisation was reconnected meanwhile", StdDuration::from_secs(1))
}

/// Which record a parked event is kept under: the newest event for it replaces an older one.
pub(crate) enum ParkedUnder {
    Invoice(PlatformInvoiceId),
    Payment(PlatformPaymentId),
    CreditNote(PlatformCreditNoteId),
    Customer(PlatformCustomerId),
    Item(PlatformItemId),
    Upload(uuid::Uuid),
}

/// What is kept for a parked event: the queue message, as it will be sent again.
pub(crate) fn parked(
    under: ParkedUnder,
    order: EventOrder,
    message: &crate::message::QueueMessage,
) -> Result<ParkedPush, Error> {
    let mut parked = ParkedPush {
        invoice_id: None,
        payment_id: None,
        credit_note_id: None,
        customer_id: None,
        item_id: None,
        upload_id: None,
        occurred_at: order.occurred_at,
        sequence: order.sequence,
        message: serde_json::to_string(message)
            .map_err(|e| Error::Corrupt { what: "parked push", reason: e.to_string() })?,
    };
    match under {
        ParkedUnder::Invoice(id) => parked.invoice_id = Some(id),
        ParkedUnder::Payment(id) => parked.payment_id = Some(id),
        ParkedUnder::CreditNote(id) => parked.credit_note_id = Some(id),
        ParkedUnder::Customer(id) => parked.customer_id = Some(id),
        ParkedUnder::Item(id) => parked.item_id = Some(id),
        ParkedUnder::Upload(id) => parked.upload_id = Some(id),
    }
    Ok(parked)
}

/// Parks the items; `false` when the organisation was reconnected meanwhile (the connection is no
/// longer `blocked`), so they were taken back and the delivery is simply tried again.
pub(crate) async fn park_items(
    store: &(impl ParkedPushStore + ConnectionStore + ?Sized),
    key: &ConnectionKey,
    items: &[ParkedPush],
    blocked: impl Fn(&Connection) -> bool,
) -> Result<bool, Error> {
    for item in items {
        store.park_push(key, item).await?;
    }
    // The reconnection may have re-sent the parked pushes just before these were parked.
    let released = store.get_connection(key).await?.is_some_and(|c| !blocked(&c));
    if released {
        for item in items {
            store.unpark_push(key, item).await?;
        }
        return Ok(false);
    }
    if !items.is_empty() {
        tracing::info!(account = %key.account_id, tenant = %key.tenant_id, events = items.len(), "pushes parked until the organisation is reconnected");
    }
    Ok(true)
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
