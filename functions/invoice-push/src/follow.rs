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
    if waited > WAIT_FOR_INVOICE {
        return Following::TooLate(format!(
            "invoice {invoice_id} did not reach Xero within {} days, so {outcome}",
            WAIT_FOR_INVOICE.num_days()
        ));
    }
    let reason = match invoice.map(|i| i.status) {
        Some(SyncStatus::Failed) => "waiting for the invoice, which Xero refused: fix the invoice and it follows",
        _ => "waiting for the invoice to reach Xero",
    };
    // Soon while the invoice is likely just behind, then less and less often.
    let after = (waited / 4).to_std().unwrap_or_default().clamp(StdDuration::from_secs(30), LONGEST_HOLD);
    Following::Hold { reason: reason.into(), after }
}
