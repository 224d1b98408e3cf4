//! What goes on the push queue: the webhook's accepted events, backfill chunks. The worker
//! also reads `connection.connected` from our own bus there (see [`crate::worker`]).

use serde::{Deserialize, Serialize};
use xero_sync_domain::model::{AccountId, TenantId};

use crate::credit_note_event::CreditNoteEvent;
use crate::customer_event::CustomerEvent;
use crate::event::InvoiceEvent;
use crate::item_event::ItemEvent;
use crate::payment_event::PaymentEvent;

/// One queue message: the validated event and the organisation it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushMessage {
    pub tenant_id: TenantId,
    pub event: InvoiceEvent,
}

/// What we put on the push queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueueMessage {
    /// One event from the webhook.
    Event(Box<PushMessage>),
    /// Up to fifty invoices of a backfill, pushed in one Xero request.
    Backfill(BackfillChunk),
    /// One payment event from the webhook.
    Payment(Box<PaymentMessage>),
    /// One credit note event from the webhook.
    CreditNote(Box<CreditNoteMessage>),
    /// One customer event from the webhook.
    Customer(Box<CustomerMessage>),
    /// One item event from the webhook.
    Item(Box<ItemMessage>),
    /// An upload to attach, sent again after a reconnection (the bucket's own notification
    /// arrives as S3 writes it; see `crate::attachments::landing`).
    Attachment(AttachmentMessage),
}

/// An upload to attach: everything else is read from what was recorded when it was offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMessage {
    pub upload_id: uuid::Uuid,
}

/// An item event and the organisation it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemMessage {
    pub tenant_id: TenantId,
    pub event: ItemEvent,
}

/// A customer event and the organisation it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessage {
    pub tenant_id: TenantId,
    pub event: CustomerEvent,
}

/// A credit note event and the organisation it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditNoteMessage {
    pub tenant_id: TenantId,
    pub event: CreditNoteEvent,
}

/// A payment event and the organisation it goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentMessage {
    pub tenant_id: TenantId,
    pub event: PaymentEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillChunk {
    pub backfill_id: String,
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub events: Vec<InvoiceEvent>,
}
