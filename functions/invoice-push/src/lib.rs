//! The platform's invoice webhook (`POST /webhooks/invoices`) and, behind its queue, the push
//! to Xero.

pub mod backfill;
pub mod contact;
pub mod event;
pub mod mapping;
pub mod push;
pub mod webhook;
pub mod worker;

pub use webhook::{PushMessage, Webhook, handle as handle_webhook};
pub use worker::{QueueMessage, Worker, handle as handle_queue};
