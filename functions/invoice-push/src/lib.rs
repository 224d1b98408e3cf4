//! The platform's invoice webhook (`POST /webhooks/invoices`) and, behind its queue, the push
//! to Xero.

pub mod contact;
pub mod event;
pub mod mapping;
pub mod webhook;

pub use webhook::{PushMessage, Webhook, handle as handle_webhook};
