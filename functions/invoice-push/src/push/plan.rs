//! What to do with one event, decided from the sync record and the settings alone, without
//! Xero: the pure half of the push, and the outcomes it can end in.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::digest::hex;
use xero_sync_domain::model::{SyncRecord, SyncStatus};
use xero_sync_domain::xero::InvoiceStatus;

use crate::event::{EventOrder, EventType, InvoiceEvent};
use crate::mapping::{ContactRef, content_hash, to_xero};

/// The content hash recorded for a void.
pub(super) const VOID: &str = "void";

/// How hard one invocation tries before handing an event back to the queue.
#[derive(Debug, Clone, Copy)]
pub struct PushPolicy {
    /// Attempts at a Xero write within one invocation.
    pub attempts: u32,
    /// The first wait after a 5xx or timeout; it doubles with each attempt.
    pub backoff: StdDuration,
    /// The longest wait spent in-process; a longer Retry-After goes back to the queue.
    pub max_wait: StdDuration,
    /// How long a claim on an invoice lasts. It must outlast a push (the function's timeout)
    /// and be shorter than the queue's visibility timeout, so a redelivery can take over from a
    /// pusher that died.
    pub claim_for: Duration,
    /// How soon to come back for an invoice another pusher has claimed.
    pub busy_retry: StdDuration,
}

impl Default for PushPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: StdDuration::from_millis(250),
            max_wait: StdDuration::from_secs(10),
            claim_for: Duration::seconds(150),
            busy_retry: StdDuration::from_secs(30),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        xero_invoice_id: Uuid,
    },
    Updated {
        xero_invoice_id: Uuid,
    },
    /// VOIDED, or DELETED for a draft; no id when the invoice never reached Xero.
    Voided {
        xero_invoice_id: Option<Uuid>,
    },
    /// Xero already has exactly this.
    Unchanged,
    /// A newer event for the invoice was applied first.
    Superseded,
    /// A retry cannot help; the account has been told what to change.
    Failed {
        reasons: Vec<String>,
    },
    /// The connection waits for reconnection; the event is sent once it is back.
    Parked,
    /// The account disconnected the organisation since the event was accepted.
    NotConnected,
}

/// Why an event must be tried again later.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{reason}; try again in {} s", after.as_secs())]
    Later { reason: String, after: StdDuration },
    /// A wait for Xero's limits (the governor's, a 429's) or for time to work it: not the
    /// event's fault, so its message is held rather than failed.
    #[error("{reason}; held for {} s", after.as_secs())]
    Held { reason: String, after: StdDuration },
    #[error(transparent)]
    Store(#[from] Error),
}

impl PushError {
    pub(crate) fn later(reason: impl Into<String>, after: StdDuration) -> Self {
        Self::Later { reason: reason.into(), after }
    }

    /// For a wait on Xero's limits (see [`TokenError::is_rate_wait`]): held; otherwise later.
    pub(crate) fn waiting(e: &xero_sync_runtime::token_provider::TokenError, after: StdDuration) -> Self {
        match e.is_rate_wait() {
            true => Self::Held { reason: e.to_string(), after },
            false => Self::Later { reason: e.to_string(), after },
        }
    }

    /// Whether the message is held rather than failed (see [`PushError::Held`]).
    pub fn is_held(&self) -> bool {
        matches!(self, Self::Held { .. })
    }

    /// How long the queue should hold the event back.
    pub fn retry_after(&self) -> Option<StdDuration> {
        match self {
            Self::Later { after, .. } | Self::Held { after, .. } => Some(*after),
            Self::Store(_) => None,
        }
    }
}

pub type PushResult = Result<Outcome, PushError>;

/// What one event needs from Xero.
#[derive(Debug)]
pub(super) enum Plan {
    /// Nothing: decided from what we know.
    Done(PushResult),
    /// Refused before Xero: what the account must fix.
    Fail { reasons: Vec<String>, hash: String },
    /// Create or update: the content hashes to `hash` (the contact is settled when it is written).
    Write { hash: String },
    /// Void or delete the Xero invoice.
    Void,
    /// Nothing for Xero, but the outcome on record was never announced: announce it.
    Retell,
}

pub(super) fn decide(
    event: &InvoiceEvent,
    record: &SyncRecord,
    mapping: &super::write::Mapping<'_>,
    now: DateTime<Utc>,
    policy: &PushPolicy,
) -> Plan {
    let (settings, tracking) = (mapping.settings, mapping.tracking);
    let applied = record.last_event_at.map(|occurred_at| EventOrder { occurred_at, sequence: record.last_sequence });
    if applied.is_some_and(|applied| event.order().is_older_than(&applied)) {
        return Plan::Done(Ok(Outcome::Superseded));
    }
    if let Some(until) = record.claimed_until.filter(|until| *until > now) {
        let wait = (until - now).to_std().unwrap_or_default().min(policy.busy_retry);
        return Plan::Done(Err(PushError::later("another push has this invoice", wait.max(StdDuration::from_secs(1)))));
    }
    // Done already: the same delivery again (an SQS redelivery) after a failure, or content
    // Xero has. A new delivery of content that failed is tried again: the account may have
    // fixed the cause in Xero, as the failure email suggests.
    let same_delivery = record.last_delivery_id.as_deref() == Some(event.delivery_id.as_str());
    let already = |hash: &str| {
        let same = record.content_hash.as_deref() == Some(hash);
        match record.status {
            SyncStatus::Synced if same => Some(Outcome::Unchanged),
            SyncStatus::Failed if same && same_delivery => {
                Some(Outcome::Failed { reasons: record.last_error.iter().cloned().collect() })
            }
            _ => None,
        }
    };
    let done = |outcome: Outcome| if record.untold { Plan::Retell } else { Plan::Done(Ok(outcome)) };
    let fail = |reason: &str, hash: &str| match already(hash) {
        Some(outcome) => done(outcome),
        None => Plan::Fail { reasons: vec![reason.to_owned()], hash: hash.to_owned() },
    };
    let in_xero = record.xero_status;
    if event.event == EventType::Voided {
        return match in_xero {
            Some(s) if s.is_gone() => done(Outcome::Unchanged),
            Some(InvoiceStatus::Paid) => {
                fail("the invoice is paid in Xero, and a paid invoice cannot be voided", "paid")
            }
            _ => Plan::Void,
        };
    }
    match in_xero {
        Some(s) if s.is_gone() => {
            return fail("the invoice was voided, and Xero cannot change a voided invoice", "voided");
        }
        Some(InvoiceStatus::Paid) => {
            return fail("the invoice is paid in Xero, and Xero cannot change a paid invoice", "paid");
        }
        _ => {}
    }
    // The customer as we would send it to be created: its id and details are in the hash.
    let invoice = to_xero(event, settings, tracking, ContactRef::new(&event.customer), None).map(|mut invoice| {
        crate::mapping::carry_item_codes(&mut invoice, &event.invoice.lines, mapping.items);
        invoice
    });
    match invoice {
        Err(problems) => {
            let reasons: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
            let hash = hex(&Sha256::digest(reasons.join("\n").as_bytes()));
            match already(&hash) {
                Some(outcome) => done(outcome),
                None => Plan::Fail { reasons, hash },
            }
        }
        Ok(invoice) => {
            let hash = content_hash(&invoice);
            match already(&hash) {
                Some(outcome) => done(outcome),
                None => Plan::Write { hash },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rust_decimal::Decimal;
    use xero_sync_domain::model::{ConnectionKey, TenantId};
    use xero_sync_domain::settings::{ConnectionSettings, TaxMapping};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 7, 0, 0).unwrap()
    }

    fn event() -> InvoiceEvent {
        crate::event::example()
    }

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            default_sales_account_code: Some("200".into()),
            default_tax_type: Some("OUTPUT2".into()),
            tax_mapping: vec![TaxMapping {
                platform_tax_rate_id: "gst".into(),
                rate: Decimal::new(15, 0),
                components: vec![],
                xero_tax_type: "OUTPUT2".into(),
            }],
            ..ConnectionSettings::default()
        }
    }

    fn new_record(event: &InvoiceEvent) -> SyncRecord {
        let key = ConnectionKey { account_id: event.account_id.clone(), tenant_id: TenantId(Uuid::nil()) };
        SyncRecord::new(&key, event.invoice.id.clone(), &event.invoice.number, now())
    }

    fn plan(event: &InvoiceEvent, record: &SyncRecord) -> Plan {
        let items = std::collections::HashSet::new();
        let mapping = crate::push::write::Mapping { settings: &settings(), tracking: &[], items: &items };
        decide(event, record, &mapping, now(), &PushPolicy::default())
    }

    /// The record after `event` was written to Xero, as the push leaves it.
    fn synced(event: &InvoiceEvent, xero_status: &str) -> SyncRecord {
        let Plan::Write { hash, .. } = plan(event, &new_record(event)) else { panic!("a new invoice is written") };
        SyncRecord {
            status: SyncStatus::Synced,
            content_hash: Some(hash),
            xero_invoice_id: Some(Uuid::from_u128(1)),
            xero_status: Some(xero_status.parse().unwrap()),
            last_event_at: Some(event.occurred_at),
            last_delivery_id: Some(event.delivery_id.clone()),
            version: 1,
            ..new_record(event)
        }
    }

    fn with_event(mut event: InvoiceEvent, kind: EventType, delivery: &str, later_by: i64) -> InvoiceEvent {
        event.event = kind;
        event.delivery_id = delivery.into();
        event.occurred_at += Duration::seconds(later_by);
        event
    }

    #[test]
    fn a_new_invoice_is_written_with_the_hash_of_its_content() {
        let event = event();
        let Plan::Write { hash } = plan(&event, &new_record(&event)) else { panic!("written") };
        let invoice = to_xero(&event, &settings(), &[], ContactRef::new(&event.customer), None).unwrap();
        assert_eq!(invoice["InvoiceNumber"], event.invoice.number.as_str());
        assert_eq!(hash, content_hash(&invoice));
    }

    #[test]
    fn the_same_content_again_is_unchanged_and_a_missed_announcement_is_made_once() {
        let event = event();
        let record = synced(&event, "AUTHORISED");
        let again = with_event(event.clone(), EventType::Updated, "dlv-2", 60);
        assert!(matches!(plan(&again, &record), Plan::Done(Ok(Outcome::Unchanged))));
        let untold = SyncRecord { untold: true, ..record };
        assert!(matches!(plan(&again, &untold), Plan::Retell));
    }

    #[test]
    fn an_event_older_than_the_one_applied_is_superseded() {
        let event = event();
        let record = synced(&event, "AUTHORISED");
        let older = with_event(event, EventType::Updated, "dlv-0", -60);
        assert!(matches!(plan(&older, &record), Plan::Done(Ok(Outcome::Superseded))));
    }

    #[test]
    fn an_invoice_another_push_holds_comes_back_later() {
        let event = event();
        let record = SyncRecord { claimed_until: Some(now() + Duration::seconds(20)), ..new_record(&event) };
        let Plan::Done(Err(e)) = plan(&event, &record) else { panic!("deferred") };
        assert_eq!(e.retry_after(), Some(StdDuration::from_secs(20)));
    }

    #[test]
    fn a_void_voids_what_xero_has_and_refuses_what_is_paid() {
        let event = event();
        let void = with_event(event.clone(), EventType::Voided, "dlv-void", 60);
        assert!(matches!(plan(&void, &synced(&event, "AUTHORISED")), Plan::Void));
        assert!(matches!(plan(&void, &synced(&event, "VOIDED")), Plan::Done(Ok(Outcome::Unchanged))));
        let Plan::Fail { reasons, hash } = plan(&void, &synced(&event, "PAID")) else { panic!("refused") };
        assert_eq!((reasons.len(), hash.as_str()), (1, "paid"));
    }

    #[test]
    fn a_change_to_a_voided_or_paid_invoice_is_refused_with_the_reason() {
        let event = event();
        let mut changed = with_event(event.clone(), EventType::Updated, "dlv-2", 60);
        changed.invoice.number = format!("{}-B", event.invoice.number);
        for (status, why) in [("VOIDED", "voided"), ("PAID", "paid")] {
            let Plan::Fail { reasons, hash } = plan(&changed, &synced(&event, status)) else { panic!("{status}") };
            assert_eq!(hash, why);
            assert!(reasons[0].contains(why), "{reasons:?}");
        }
    }

    #[test]
    fn an_invoice_the_settings_cannot_map_fails_naming_the_problems_once_per_delivery() {
        let mut event = event();
        event.invoice.lines[0].tax_rate_id = Some("unmapped".into());
        let Plan::Fail { reasons, hash } = plan(&event, &new_record(&event)) else { panic!("refused") };
        assert!(reasons.iter().any(|r| r.contains("lines[0]")), "{reasons:?}");
        let failed = SyncRecord {
            status: SyncStatus::Failed,
            content_hash: Some(hash),
            last_error: Some(reasons.join("; ")),
            last_delivery_id: Some(event.delivery_id.clone()),
            version: 1,
            ..new_record(&event)
        };
        // The same delivery again (an SQS redelivery) ends as it did; a new one tries again.
        assert!(matches!(plan(&event, &failed), Plan::Done(Ok(Outcome::Failed { .. }))));
        let redelivered = with_event(event, EventType::Updated, "dlv-new", 0);
        assert!(matches!(plan(&redelivered, &failed), Plan::Fail { .. }));
    }
}
