//! What xero-sync knows without reaching anything: ids, connections and their status rules,
//! sync records, settings rules, problems, event payloads, email texts, the Xero documents it
//! reads and writes, and the ports (store, vault, notifier, events) the adapters implement.
//! No AWS and no HTTP client here: `xero_sync_xero` talks to Xero, `xero_sync_aws` to AWS.

pub mod attachment;
pub mod contact_groups;
pub mod credit_note;
pub mod decimal;
pub mod digest;
pub mod email;
pub mod error;
pub mod events;
pub mod governor;
pub mod integration;
pub mod item;
pub mod links;
pub mod model;
pub mod notify;
pub mod payment;
pub mod problem;
pub mod reference;
pub mod scopes;
pub mod secret;
pub mod settings;
pub mod signing;
pub mod store;
pub mod sync_log;
pub mod time;
pub mod tokens;
pub mod vault;
pub mod xero;

pub use error::{AwsError, Error};
