//! What to do with one payment event, decided from our records and the settings alone.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use uuid::Uuid;
use xero_sync_domain::model::SyncRecord;
use xero_sync_domain::payment::{PaymentRecord, PaymentSyncStatus};
use xero_sync_domain::settings::ConnectionSettings;
use xero_sync_domain::xero::InvoiceStatus;

use crate::event::EventOrder;
use crate::follow::{Following, LONGEST_HOLD, following};
use crate::payment_event::{PaymentEvent, PaymentEventType};
use crate::push::{PushError, PushPolicy};

/// What became of one payment event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Synced {
        xero_payment_id: Uuid,
    },
    /// Deleted in Xero; no id when it never reached Xero.
    Voided {
        xero_payment_id: Option<Uuid>,
    },
    Unchanged,
    Superseded,
    Failed {
        reasons: Vec<String>,
    },
    /// Waits for a reconnection (the grant was refused, or it does not allow payments).
    Parked,
    NotConnected,
}

impl PaymentOutcome {
    /// What kind of outcome, for logs (which must not carry Xero's words: they may name people).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Synced { .. } => "synced",
            Self::Voided { .. } => "voided",
            Self::Unchanged => "unchanged",
            Self::Superseded => "superseded",
            Self::Failed { .. } => "failed",
            Self::Parked => "parked",
            Self::NotConnected => "not connected",
        }
    }
}

pub type PaymentResult = Result<PaymentOutcome, PushError>;

#[derive(Debug)]
pub(super) enum Plan {
    Done(PaymentResult),
    /// Not yet: held back on the queue, the reason kept on the record for the invoice API.
    Hold {
        reason: String,
        after: StdDuration,
    },
    /// The consent does not allow payments: parked until a reconnection that does.
    NotAllowed,
    /// Refused before Xero, with what the account must change.
    Fail {
        reason: String,
    },
    /// Pay the Xero invoice from the account; approve the draft invoice first when asked to.
    Create {
        xero_invoice_id: Uuid,
        account_id: Uuid,
        approve_first: bool,
    },
    /// Delete the Xero payment (looked up first when we could not see whether it reached Xero).
    Delete,
    /// Give the money back: an AUTHORISED customer credit note for the amount, on the sales
    /// account, to the invoice's contact, then a payment out of it from the method's account.
    Refund {
        account_id: Uuid,
        sales_account: String,
    },
}

impl Plan {
    /// Whether the plan writes to Xero, and so claims the record first.
    pub(super) fn writes(&self) -> bool {
        matches!(self, Plan::Create { .. } | Plan::Delete | Plan::Refund { .. })
    }
}

/// The reason a payment waits for a reconnection, as the invoice API and the email say it.
pub const RECONNECT_FOR_PAYMENTS: &str = "reconnect to allow payments: the organisation was connected without Xero's \
     accounting.payments permission";

pub(super) fn decide(
    event: &PaymentEvent,
    record: &PaymentRecord,
    invoice: Option<&SyncRecord>,
    settings: &ConnectionSettings,
    allowed: bool,
    now: DateTime<Utc>,
    policy: &PushPolicy,
) -> Plan {
    let applied = record.last_event_at.map(|occurred_at| EventOrder { occurred_at, sequence: record.last_sequence });
    if applied.is_some_and(|applied| event.order().is_older_than(&applied)) {
        return Plan::Done(Ok(PaymentOutcome::Superseded));
    }
    if let Some(until) = record.claimed_until.filter(|until| *until > now) {
        let wait = (until - now).to_std().unwrap_or_default().min(policy.busy_retry);
        return Plan::Done(Err(PushError::Later {
            reason: "another push has this payment".into(),
            after: wait.max(StdDuration::from_secs(1)),
        }));
    }
    let same_delivery = record.last_delivery_id.as_deref() == Some(event.delivery_id.as_str());
    // The same delivery again after its outcome was recorded but not announced: announce it.
    if record.untold && same_delivery {
        return Plan::Done(Ok(PaymentOutcome::Unchanged));
    }
    match event.event {
        PaymentEventType::Voided => match (record.status, record.xero_payment_id) {
            (PaymentSyncStatus::Voided, _) => Plan::Done(Ok(PaymentOutcome::Unchanged)),
            // Never reached Xero: there is nothing to take back (a refund's credit note would be).
            (_, None) if !record.may_have_reached_xero() && record.xero_credit_note_id.is_none() => {
                Plan::Done(Ok(PaymentOutcome::Voided { xero_payment_id: None }))
            }
            _ if !allowed => Plan::NotAllowed,
            _ => Plan::Delete,
        },
        PaymentEventType::Created | PaymentEventType::Refunded => {
            match record.status {
                PaymentSyncStatus::Synced => return Plan::Done(Ok(PaymentOutcome::Unchanged)),
                PaymentSyncStatus::Failed if same_delivery => {
                    return Plan::Done(Ok(PaymentOutcome::Failed { reasons: record.reason.iter().cloned().collect() }));
                }
                _ => {}
            }
            if !allowed {
                return Plan::NotAllowed;
            }
            let target = match pay_into(event, record, invoice, settings, now) {
                Ok(target) => target,
                Err(plan) => return plan,
            };
            if event.event == PaymentEventType::Refunded {
                return refund(target, settings);
            }
            let Target { xero_invoice_id, account_id, status } = target;
            match status {
                Some(InvoiceStatus::Draft | InvoiceStatus::Submitted) if !settings.approve_drafts_for_payment => {
                    Plan::Hold { reason: DRAFT.into(), after: LONGEST_HOLD }
                }
                Some(InvoiceStatus::Draft | InvoiceStatus::Submitted) => {
                    Plan::Create { xero_invoice_id, account_id, approve_first: true }
                }
                _ => Plan::Create { xero_invoice_id, account_id, approve_first: false },
            }
        }
    }
}

const DRAFT: &str = "the invoice is a draft in Xero: approve it there (or let payments approve drafts in the \
    settings) and the payment follows";

/// Where money taken (or given back) against an invoice goes in Xero.
struct Target {
    xero_invoice_id: Uuid,
    account_id: Uuid,
    status: Option<InvoiceStatus>,
}

/// The Xero invoice and the account a payment or refund goes through, or the plan for one that
/// cannot go yet (its invoice is not in Xero) or at all (no account mapped, the invoice voided).
fn pay_into(
    event: &PaymentEvent,
    record: &PaymentRecord,
    invoice: Option<&SyncRecord>,
    settings: &ConnectionSettings,
    now: DateTime<Utc>,
) -> Result<Target, Plan> {
    let Some(method) = event.payment.method else {
        return Err(Plan::Fail { reason: "the payment has no method".into() });
    };
    let Some(account_id) = settings.payment_accounts.get(&method).copied() else {
        return Err(Plan::Fail {
            reason: format!(
                "no Xero account is mapped for {} payments: map one in the settings (payment_accounts)",
                method.as_str().replace('_', " ")
            ),
        });
    };
    let outcome = "the payment could not be recorded";
    let (xero_invoice_id, status) =
        match following(&event.payment.invoice_id, invoice, now - record.first_seen_at, outcome) {
            Following::InXero { xero_invoice_id, status } => (xero_invoice_id, status),
            Following::Hold { reason, after } => return Err(Plan::Hold { reason, after }),
            Following::TooLate(reason) => return Err(Plan::Fail { reason }),
        };
    if status.is_some_and(InvoiceStatus::is_gone) {
        return Err(Plan::Fail { reason: "the invoice is voided in Xero and cannot take payments".into() });
    }
    Ok(Target { xero_invoice_id, account_id, status })
}

/// A refund is a credit note to the invoice's contact, paid out: it needs the invoice approved
/// (a draft was never paid in Xero) and a sales account for the credit note's line.
fn refund(target: Target, settings: &ConnectionSettings) -> Plan {
    if matches!(target.status, Some(InvoiceStatus::Draft | InvoiceStatus::Submitted)) {
        return Plan::Hold {
            reason: "the invoice is a draft in Xero, so nothing was paid there to refund: approve it there and the \
                refund follows"
                .into(),
            after: LONGEST_HOLD,
        };
    }
    let Some(sales_account) = settings.default_sales_account_code.clone().filter(|c| !c.trim().is_empty()) else {
        return Plan::Fail {
            reason: "a refund needs the sales account it is taken back from: set default_sales_account_code in the \
                settings"
                .into(),
        };
    };
    Plan::Refund { account_id: target.account_id, sales_account }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use xero_sync_domain::model::{ConnectionKey, TenantId};
    use xero_sync_domain::payment::PaymentMethod;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 7, 0, 0).unwrap()
    }

    fn key(event: &PaymentEvent) -> ConnectionKey {
        ConnectionKey { account_id: event.account_id.clone(), tenant_id: TenantId(Uuid::nil()) }
    }

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            payment_accounts: [(PaymentMethod::Card, Uuid::from_u128(9))].into(),
            ..ConnectionSettings::default()
        }
    }

    fn invoice(event: &PaymentEvent, status: Option<&str>) -> SyncRecord {
        let mut r = SyncRecord::new(&key(event), event.payment.invoice_id.clone(), "INV-1001", now());
        r.xero_invoice_id = status.map(|_| Uuid::from_u128(1));
        r.xero_status = status.map(|s| s.parse().unwrap());
        r
    }

    fn plan(event: &PaymentEvent, record: &PaymentRecord, invoice: Option<&SyncRecord>) -> Plan {
        decide(event, record, invoice, &settings(), true, now(), &PushPolicy::default())
    }

    fn new_record(event: &PaymentEvent) -> PaymentRecord {
        PaymentRecord::new(&key(event), event.payment.id.clone(), event.payment.invoice_id.clone(), now())
    }

    #[test]
    fn a_payment_for_an_authorised_invoice_is_paid_into_the_account_mapped_for_its_method() {
        let event = crate::payment_event::example();
        let inv = invoice(&event, Some("AUTHORISED"));
        let Plan::Create { account_id, approve_first, .. } = plan(&event, &new_record(&event), Some(&inv)) else {
            panic!("created")
        };
        assert_eq!((account_id, approve_first), (Uuid::from_u128(9), false));
    }

    #[test]
    fn a_payment_waits_for_its_invoice_soon_then_seldom_then_fails() {
        let event = crate::payment_event::example();
        let Plan::Hold { after, reason } = plan(&event, &new_record(&event), None) else { panic!("held") };
        assert_eq!((after, reason.as_str()), (StdDuration::from_secs(30), "waiting for the invoice to reach Xero"));
        let waited = PaymentRecord { first_seen_at: now() - Duration::hours(2), ..new_record(&event) };
        assert!(matches!(plan(&event, &waited, None), Plan::Hold { after, .. } if after == LONGEST_HOLD));
        let too_long = PaymentRecord { first_seen_at: now() - Duration::days(4), ..new_record(&event) };
        assert!(matches!(plan(&event, &too_long, None), Plan::Fail { reason } if reason.contains("inv-1001")));
    }

    #[test]
    fn a_draft_holds_the_payment_unless_the_settings_approve_it() {
        let event = crate::payment_event::example();
        let draft = invoice(&event, Some("DRAFT"));
        assert!(matches!(plan(&event, &new_record(&event), Some(&draft)), Plan::Hold { .. }));
        let approving = ConnectionSettings { approve_drafts_for_payment: true, ..settings() };
        let planned =
            decide(&event, &new_record(&event), Some(&draft), &approving, true, now(), &PushPolicy::default());
        assert!(matches!(planned, Plan::Create { approve_first: true, .. }));
    }

    #[test]
    fn an_unmapped_method_fails_naming_it_and_a_missing_scope_parks() {
        let mut event = crate::payment_event::example();
        event.payment.method = Some(PaymentMethod::BankTransfer);
        let inv = invoice(&event, Some("AUTHORISED"));
        let Plan::Fail { reason } = plan(&event, &new_record(&event), Some(&inv)) else { panic!("failed") };
        assert!(reason.contains("bank transfer payments"), "{reason}");
        let not_allowed =
            decide(&event, &new_record(&event), Some(&inv), &settings(), false, now(), &PushPolicy::default());
        assert!(matches!(not_allowed, Plan::NotAllowed));
    }

    #[test]
    fn a_refund_of_a_paid_invoice_is_a_credit_note_on_the_sales_account_paid_from_the_methods_account() {
        let mut event = crate::payment_event::example();
        event.event = PaymentEventType::Refunded;
        let paid = invoice(&event, Some("PAID"));
        let no_sales_account = plan(&event, &new_record(&event), Some(&paid));
        assert!(
            matches!(&no_sales_account, Plan::Fail { reason } if reason.contains("default_sales_account_code")),
            "{no_sales_account:?}"
        );
        let with_sales = ConnectionSettings { default_sales_account_code: Some("200".into()), ..settings() };
        let planned =
            decide(&event, &new_record(&event), Some(&paid), &with_sales, true, now(), &PushPolicy::default());
        let Plan::Refund { account_id, sales_account } = planned else { panic!("refunded: {planned:?}") };
        assert_eq!((account_id, sales_account.as_str()), (Uuid::from_u128(9), "200"));
        let draft = invoice(&event, Some("DRAFT"));
        let approving = ConnectionSettings { approve_drafts_for_payment: true, ..with_sales.clone() };
        let held = decide(&event, &new_record(&event), Some(&draft), &approving, true, now(), &PushPolicy::default());
        assert!(matches!(held, Plan::Hold { reason, .. } if reason.contains("nothing was paid there to refund")));
        let waiting = decide(&event, &new_record(&event), None, &with_sales, true, now(), &PushPolicy::default());
        assert!(matches!(waiting, Plan::Hold { after, .. } if after == StdDuration::from_secs(30)));
        let refunded = PaymentRecord { status: PaymentSyncStatus::Synced, refund: true, ..new_record(&event) };
        let again = decide(&event, &refunded, Some(&paid), &with_sales, true, now(), &PushPolicy::default());
        assert!(matches!(again, Plan::Done(Ok(PaymentOutcome::Unchanged))));
    }

    #[test]
    fn voiding_a_refund_whose_payment_never_went_still_takes_back_its_credit_note() {
        let mut event = crate::payment_event::example();
        event.event = PaymentEventType::Voided;
        let credit_only =
            PaymentRecord { refund: true, xero_credit_note_id: Some(Uuid::from_u128(7)), ..new_record(&event) };
        assert!(matches!(plan(&event, &credit_only, None), Plan::Delete));
    }

    #[test]
    fn a_void_deletes_what_reached_xero_and_forgets_what_did_not() {
        let mut event = crate::payment_event::example();
        event.event = PaymentEventType::Voided;
        let never = new_record(&event);
        assert!(matches!(plan(&event, &never, None), Plan::Done(Ok(PaymentOutcome::Voided { xero_payment_id: None }))));
        let maybe = PaymentRecord { uncertain: true, ..new_record(&event) };
        assert!(matches!(plan(&event, &maybe, None), Plan::Delete));
        // A push that died midway left its claim: its write may have reached Xero.
        let died = PaymentRecord { claimed_until: Some(now() - Duration::minutes(1)), ..new_record(&event) };
        assert!(matches!(plan(&event, &died, None), Plan::Delete), "looked up, not forgotten");
        let synced = PaymentRecord {
            status: PaymentSyncStatus::Synced,
            xero_payment_id: Some(Uuid::from_u128(5)),
            last_event_at: Some(event.occurred_at - Duration::minutes(5)),
            ..new_record(&event)
        };
        assert!(matches!(plan(&event, &synced, None), Plan::Delete));
        let older = PaymentEvent { occurred_at: event.occurred_at - Duration::hours(1), ..event.clone() };
        assert!(matches!(plan(&older, &synced, None), Plan::Done(Ok(PaymentOutcome::Superseded))));
    }
}
