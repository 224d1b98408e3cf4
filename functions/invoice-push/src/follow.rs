//! Payments, refunds and credit notes follow their invoice into Xero: until it is there they
//! are held back on the queue, soon at first and then less and less often, and after a few
//! days they fail, naming the invoice.

use std::time::Duration as StdDuration;

use chrono::Duration;
use uuid::Uuid;
use xero_sync_domain::model::{PlatformInvoiceId, SyncRecord, SyncStatus};
use xero_sync_domain::xero::InvoiceStatus;

/// How long a document waits for its invoice to reach Xero before it fails, naming it.
pub const WAIT_FOR_INVOICE: Duration = Duration::days(3);
/// The longest a held document is held back at once (SQS delays no longer).
pub(crate) const LONGEST_HOLD: StdDuration = StdDuration::from_secs(900);

/// Where a document stands with its invoice.
pub(crate) enum Following {
    /// In Xero, with its status as last seen.
    InXero { xero_invoice_id: Uuid, status: Option<InvoiceStatus> },
    /// Not yet: hold the document back this long, saying why.
    Hold { reason: String, after: StdDuration },
    /// Waited too long: fail, saying this.
    TooLate(String),
}

/// `invoice` is the invoice's record, when there is one; `waited`, how long the document has
/// waited; `outcome` finishes the sentence that says what did not happen.
pub(crate) fn following(
    invoice_id: &PlatformInvoiceId,
    invoice: Option<&SyncRecord>,
    waited: Duration,
    outcome: &str,
) -> Following {
    if let Some((xero_invoice_id, status)) = invoice.and_then(|i| i.xero_invoice_id.map(|id| (id, i.xero_status))) {
        return Following::InXero { xero_invoice_id, status };
    }
    match (waiting(&format!("invoice {invoice_id}"), waited, outcome), invoice.map(|i| i.status)) {
        (Following::Hold { after, .. }, Some(SyncStatus::Failed)) => Following::Hold {
            reason: "waiting for the invoice, which Xero refused: fix the invoice and it follows".into(),
            after,
        },
        (held, _) => held,
    }
}

/// A document (`what`, such as `invoice inv-1`) that has not reached Xero after `waited`: held
/// back, or too late after [`WAIT_FOR_INVOICE`].
pub(crate) fn waiting(what: &str, waited: Duration, outcome: &str) -> Following {
    if waited > WAIT_FOR_INVOICE {
        return Following::TooLate(format!(
            "{what} did not reach Xero within {} days, so {outcome}",
            WAIT_FOR_INVOICE.num_days()
        ));
    }
    let kind = what.split(' ').next().unwrap_or(what);
    // Soon while the document is likely just behind, then less and less often.
    let after = (waited / 4).to_std().unwrap_or_default().clamp(StdDuration::from_secs(30), LONGEST_HOLD);
    Following::Hold { reason: format!("waiting for the {kind} to reach Xero"), after }
}
