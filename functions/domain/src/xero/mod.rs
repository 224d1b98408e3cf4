//! Xero's Accounting API objects as xero_accounting.yaml defines them (field names, enums),
//! kept to the fields xero-sync reads or writes. They live in the domain crate because its
//! rules read them (which accounts take sales, which tracking options are live); the Xero
//! crate, which moves them over HTTP, re-exports them.
//!
//! Fields the spec does not require are optional here, as in Xero's answers: a write refused
//! per element comes back without most of them. What a use of the object needs (the import
//! needs a payment's amount, say) is checked where it is used.

pub mod date;
mod documents;
mod reference;
mod status;
pub mod webhooks;

pub use documents::*;
pub use reference::*;
pub use status::*;
