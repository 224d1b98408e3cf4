//! What to do with one credit note event, decided from our records and the settings alone.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;
use xero_sync_domain::credit_note::{CreditNoteRecord, CreditNoteSyncStatus};
use xero_sync_domain::digest::sha256_hex;
use xero_sync_domain::model::SyncRecord;
use xero_sync_domain::settings::ConnectionSettings;
use xero_sync_domain::xero::TrackingCategory;

use crate::credit_note_event::{CreditNoteEvent, CreditNoteEventType};
use crate::event::EventOrder;
use crate::follow::{Following, following};
use crate::push::{PushError, PushPolicy};

/// What became of one credit note event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditNoteOutcome {
    Synced {
        xero_credit_note_id: Uuid,
    },
    /// Voided in Xero; no id when it never reached Xero.
    Voided {
        xero_credit_note_id: Option<Uuid>,
    },
    Unchanged,
    Superseded,
    Failed {
        reasons: Vec<String>,
    },
    /// Waits for a reconnection.
    Parked,
    NotConnected,
}

impl CreditNoteOutcome {
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

pub type CreditNoteResult = Result<CreditNoteOutcome, PushError>;

#[derive(Debug)]
pub(super) enum Plan {
    Done(CreditNoteResult),
    /// Not yet: its invoice is not in Xero. Held back on the queue, the reason on the record.
    Hold {
        reason: String,
        after: StdDuration,
    },
    /// Refused before Xero, with what the account must change.
    Fail {
        reasons: Vec<String>,
    },
    /// Create it, or update the one in Xero, then allocate it to its invoice. `body` is the
    /// credit note without its contact; `hash` what it says, to know the same content again.
    Write {
        body: Value,
        hash: String,
    },
    /// Take back what is allocated or paid out of it, then void it.
    Void,
}

impl Plan {
    /// Whether the plan writes to Xero, and so claims the record first.
    pub(super) fn writes(&self) -> bool {
        matches!(self, Plan::Write { .. } | Plan::Void)
    }
}

pub(super) struct Inputs<'a> {
    pub(super) settings: &'a ConnectionSettings,
    pub(super) tracking: &'a [TrackingCategory],
    pub(super) now: DateTime<Utc>,
    pub(super) policy: &'a PushPolicy,
}

pub(super) fn decide(
    event: &CreditNoteEvent,
    record: &CreditNoteRecord,
    invoice: Option<&SyncRecord>,
    inputs: &Inputs<'_>,
) -> Plan {
    let now = inputs.now;
    let applied = record.last_event_at.map(|occurred_at| EventOrder { occurred_at, sequence: record.last_sequence });
    if applied.is_some_and(|applied| event.order().is_older_than(&applied)) {
        return Plan::Done(Ok(CreditNoteOutcome::Superseded));
    }
    if let Some(until) = record.claimed_until.filter(|until| *until > now) {
        let wait = (until - now).to_std().unwrap_or_default().min(inputs.policy.busy_retry);
        return Plan::Done(Err(PushError::Later {
            reason: "another push has this credit note".into(),
            after: wait.max(StdDuration::from_secs(1)),
        }));
    }
    let same_delivery = record.last_delivery_id.as_deref() == Some(event.delivery_id.as_str());
    if record.untold && same_delivery {
        return Plan::Done(Ok(CreditNoteOutcome::Unchanged));
    }
    if event.event == CreditNoteEventType::Voided {
        return match (record.status, record.xero_credit_note_id) {
            (CreditNoteSyncStatus::Voided, _) => Plan::Done(Ok(CreditNoteOutcome::Unchanged)),
            // Never reached Xero: there is nothing to take back.
            (_, None) if !record.may_have_reached_xero() => {
                Plan::Done(Ok(CreditNoteOutcome::Voided { xero_credit_note_id: None }))
            }
            _ => Plan::Void,
        };
    }
    match record.status {
        CreditNoteSyncStatus::Voided => {
            return Plan::Fail {
                reasons: vec![
                    "the credit note was voided, and Xero cannot bring a voided credit note back: issue a \
                    new one"
                        .into(),
                ],
            };
        }
        CreditNoteSyncStatus::Failed if same_delivery => {
            return Plan::Done(Ok(CreditNoteOutcome::Failed { reasons: record.reason.iter().cloned().collect() }));
        }
        _ => {}
    }
    if let Some(invoice_id) = &event.credit_note.invoice_id {
        let outcome = "its credit note was not sent";
        match following(invoice_id, invoice, now - record.first_seen_at, outcome) {
            Following::InXero { .. } => {}
            Following::Hold { reason, after } => return Plan::Hold { reason, after },
            Following::TooLate(reason) => return Plan::Fail { reasons: vec![reason] },
        }
    }
    let body = match crate::mapping::credit_note_to_xero(&event.credit_note, inputs.settings, inputs.tracking, None) {
        Ok(body) => body,
        Err(problems) => {
            return Plan::Fail {
                reasons: problems.into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect(),
            };
        }
    };
    // Who it credits counts as much as what it says: another customer, or another invoice, is
    // a change.
    let hash = sha256_hex(format!(
        "{body}|{}|{}",
        event.customer.id,
        event.credit_note.invoice_id.as_ref().map(|i| i.as_str()).unwrap_or_default()
    ));
    if record.status == CreditNoteSyncStatus::Synced && record.content_hash.as_deref() == Some(hash.as_str()) {
        return Plan::Done(Ok(CreditNoteOutcome::Unchanged));
    }
    Plan::Write { body, hash }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use xero_sync_domain::model::{ConnectionKey, TenantId};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 5, 0, 0).unwrap()
    }

    fn key(event: &CreditNoteEvent) -> ConnectionKey {
        ConnectionKey { account_id: event.account_id.clone(), tenant_id: TenantId(Uuid::nil()) }
    }

    fn settings() -> ConnectionSettings {
        ConnectionSettings {
            default_sales_account_code: Some("200".into()),
            tax_mapping: vec![xero_sync_domain::settings::TaxMapping {
                platform_tax_rate_id: "gst".into(),
                rate: rust_decimal::Decimal::new(15, 0),
                components: vec![],
                xero_tax_type: "OUTPUT2".into(),
            }],
            ..ConnectionSettings::default()
        }
    }

    fn plan(event: &CreditNoteEvent, record: &CreditNoteRecord, invoice: Option<&SyncRecord>) -> Plan {
        let settings = settings();
        let policy = PushPolicy::default();
        decide(event, record, invoice, &Inputs { settings: &settings, tracking: &[], now: now(), policy: &policy })
    }

    fn new_record(event: &CreditNoteEvent) -> CreditNoteRecord {
        CreditNoteRecord::new(&key(event), event.credit_note.id.clone(), &event.credit_note.number, now())
    }

    fn invoice(event: &CreditNoteEvent, in_xero: bool) -> SyncRecord {
        let id = event.credit_note.invoice_id.clone().unwrap();
        let mut r = SyncRecord::new(&key(event), id, "INV-1001", now());
        r.xero_invoice_id = in_xero.then(|| Uuid::from_u128(1));
        r
    }

    #[test]
    fn a_credit_note_for_an_invoice_in_xero_is_written_as_an_authorised_accreccredit() {
        let event = crate::credit_note_event::example();
        let inv = invoice(&event, true);
        let Plan::Write { body, .. } = plan(&event, &new_record(&event), Some(&inv)) else { panic!("written") };
        assert_eq!((body["Type"].as_str(), body["Status"].as_str()), (Some("ACCRECCREDIT"), Some("AUTHORISED")));
        assert_eq!(body["CreditNoteNumber"], "CN-2001");
        assert_eq!(body["LineItems"][0]["TaxType"], "OUTPUT2", "lines mapped as an invoice's");
        assert_eq!(body["LineItems"][0]["AccountCode"], "260");
    }

    #[test]
    fn a_credit_note_waits_for_its_invoice_then_fails_naming_it() {
        let event = crate::credit_note_event::example();
        let Plan::Hold { after, reason } = plan(&event, &new_record(&event), Some(&invoice(&event, false))) else {
            panic!("held")
        };
        assert_eq!((after, reason.as_str()), (StdDuration::from_secs(30), "waiting for the invoice to reach Xero"));
        let late = CreditNoteRecord { first_seen_at: now() - Duration::days(4), ..new_record(&event) };
        assert!(matches!(plan(&event, &late, None), Plan::Fail { reasons } if reasons[0].contains("inv-1001")));
    }

    #[test]
    fn the_same_content_again_is_unchanged_and_an_older_event_is_dropped() {
        let event = crate::credit_note_event::example();
        let inv = invoice(&event, true);
        let Plan::Write { hash, .. } = plan(&event, &new_record(&event), Some(&inv)) else { panic!("written") };
        let synced = CreditNoteRecord {
            status: CreditNoteSyncStatus::Synced,
            content_hash: Some(hash),
            last_event_at: Some(event.occurred_at),
            ..new_record(&event)
        };
        assert!(matches!(plan(&event, &synced, Some(&inv)), Plan::Done(Ok(CreditNoteOutcome::Unchanged))));
        let mut other = event.clone();
        other.customer.id = xero_sync_domain::model::PlatformCustomerId::parse("cust-8").unwrap();
        assert!(matches!(plan(&other, &synced, Some(&inv)), Plan::Write { .. }), "another customer is a change");
        let older = CreditNoteEvent { occurred_at: event.occurred_at - Duration::hours(1), ..event };
        assert!(matches!(plan(&older, &synced, Some(&inv)), Plan::Done(Ok(CreditNoteOutcome::Superseded))));
    }

    #[test]
    fn a_void_takes_back_what_reached_xero_and_forgets_what_did_not() {
        let mut event = crate::credit_note_event::example();
        event.event = CreditNoteEventType::Voided;
        assert!(matches!(
            plan(&event, &new_record(&event), None),
            Plan::Done(Ok(CreditNoteOutcome::Voided { xero_credit_note_id: None }))
        ));
        let sent = CreditNoteRecord { xero_credit_note_id: Some(Uuid::from_u128(3)), ..new_record(&event) };
        assert!(matches!(plan(&event, &sent, None), Plan::Void));
        // A push that died midway left its claim: its write may have reached Xero.
        let died = CreditNoteRecord { claimed_until: Some(now() - Duration::minutes(1)), ..new_record(&event) };
        assert!(matches!(plan(&event, &died, None), Plan::Void), "looked up, not forgotten");
        let voided = CreditNoteRecord { status: CreditNoteSyncStatus::Voided, ..sent };
        event.event = CreditNoteEventType::Updated;
        assert!(matches!(plan(&event, &voided, None), Plan::Fail { .. }), "a voided credit note cannot come back");
    }

    #[test]
    fn an_unmapped_tax_rate_fails_naming_the_line() {
        let mut event = crate::credit_note_event::example();
        event.credit_note.lines[0].tax_rate_id = Some("vat".into());
        let Plan::Fail { reasons } = plan(&event, &new_record(&event), Some(&invoice(&event, true))) else {
            panic!("failed")
        };
        assert_eq!(reasons, ["credit_note.lines[0].tax_rate_id: tax rate vat is not mapped to a Xero tax rate"]);
    }
}
