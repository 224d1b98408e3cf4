//! The platform's invoice webhook (`POST /webhooks/invoices`) and, behind its queue, the push
//! to Xero.

pub mod attachments;
pub mod backfill;
pub mod contact;
pub mod credit_note_event;
pub mod credit_notes;
pub mod customer_event;
pub mod customers;
pub mod event;
pub mod follow;
pub mod item_event;
pub mod items;
pub mod mapping;
pub mod message;
pub mod payment_event;
pub mod payments;
pub mod push;
pub mod retry;
pub mod routes;
pub mod webhook;
pub mod worker;

pub use message::{PaymentMessage, PushMessage, QueueMessage};
pub use routes::handle as handle_webhook;
pub use webhook::Webhook;
pub use worker::{Worker, handle as handle_queue};
