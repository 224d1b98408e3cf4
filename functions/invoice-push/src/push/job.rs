//! One event on its way through a push: its plan, its claim, and what became of it.

use std::time::Duration as StdDuration;

use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::model::SyncRecord;
use xero_sync_domain::xero::InvoiceStatus;
use xero_sync_runtime::token_provider::TokenError;

use super::plan::{Plan, PushError, PushResult};
use crate::event::InvoiceEvent;

pub(super) struct Job {
    pub(super) event: InvoiceEvent,
    pub(super) record: SyncRecord,
    pub(super) plan: Plan,
    /// For a write: who the invoice is for, once known.
    pub(super) contact: Option<ContactTarget>,
    /// The final outcome, once known.
    pub(super) result: Option<PushResult>,
    /// Xero's view after a successful write.
    pub(super) written: Option<Written>,
    /// Whether this push holds the record's claim (and so must release it).
    pub(super) claimed: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum ContactTarget {
    Existing(Uuid),
    /// Created by Xero with the invoice; under a distinct name beside an active namesake.
    New {
        distinct_name: bool,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Written {
    pub(super) xero_invoice_id: Uuid,
    pub(super) xero_status: Option<InvoiceStatus>,
    pub(super) contact_id: Option<Uuid>,
    /// The payment state Xero answered with, when nothing is paid or credited on it yet: the
    /// state we wrote, so that reading it back (the import, Xero's webhooks) is no news.
    pub(super) payment_state: Option<String>,
}

pub(crate) fn clone_error(e: &PushError) -> PushError {
    match e {
        PushError::Later { reason, after } => PushError::Later { reason: reason.clone(), after: *after },
        PushError::Held { reason, after } => PushError::Held { reason: reason.clone(), after: *after },
        PushError::Store(e) if e.is_retryable() => PushError::later(e.to_string(), StdDuration::from_secs(5)),
        PushError::Store(e) => PushError::Store(Error::Corrupt { what: "push", reason: e.to_string() }),
    }
}

pub(crate) fn later_for(e: &TokenError) -> PushError {
    PushError::waiting(e, e.retry_after().unwrap_or(StdDuration::from_secs(30)))
}

/// Whether the failed write may have been applied by Xero.
pub(crate) fn maybe_applied(e: &TokenError) -> bool {
    matches!(e, TokenError::Xero(x) if x.maybe_applied())
}
