//! Xero's webhooks (xero-webhooks.yaml): the signature over a delivery and the events in it.
//!
//! Xero signs the raw body: `x-xero-signature` is the base64 HMAC-SHA256 of the bytes as sent,
//! keyed with the app's webhook key. The "Intent to Receive" check sends one delivery with a
//! wrong signature (we must answer 401) and one with the right one (200, empty body); its
//! payload has no events and sequence numbers of 0, below the schema's minimum, so a delivery
//! is read leniently, never validated against the schema.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use uuid::Uuid;

pub const XERO_SIGNATURE_HEADER: &str = "x-xero-signature";

/// The app's webhook key (developer.xero.com > My Apps > Webhooks); never printed.
#[derive(Clone)]
pub struct WebhookKey(Vec<u8>);

impl WebhookKey {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self(key.into())
    }

    /// Whether `header` is the signature of `body` (constant-time).
    pub fn verifies(&self, body: &[u8], header: Option<&str>) -> bool {
        let Some(given) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }

    /// The signature Xero would send with `body` (for the emulator and tests).
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(body);
        STANDARD.encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey([redacted])")
    }
}

/// What a change is about: the categories xero-sync subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeCategory {
    Contact,
    Invoice,
    #[serde(rename = "CREDITNOTE")]
    CreditNote,
}

/// One event of a delivery that xero-sync acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub category: ChangeCategory,
    pub resource_id: Uuid,
    #[serde(with = "crate::time::fixed")]
    pub at: DateTime<Utc>,
}

/// A delivery's events, each read on its own: one that cannot be read does not cost the others.
#[derive(Debug, Default)]
pub struct Delivery {
    /// The events to act on, by organisation.
    pub changes: Vec<(Uuid, Change)>,
    /// Events left out on purpose: supplier documents, subscriptions, other categories.
    pub ignored: usize,
    /// Events that could not be read, with what was wrong (never their values).
    pub unreadable: Vec<String>,
}

#[derive(Deserialize)]
struct Envelope {
    events: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    resource_id: Uuid,
    tenant_id: Uuid,
    event_category: String,
    event_date_utc: String,
    #[serde(default)]
    data: Option<WireData>,
}

#[derive(Deserialize)]
struct WireData {
    #[serde(rename = "Type", default)]
    kind: Option<String>,
}

/// Why a delivery's body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the delivery is not Xero's webhook payload: {0}")]
pub struct NotAPayload(pub String);

/// Reads a delivery (already verified). Supplier documents (`data.Type` ACCPAY, ACCPAYCREDIT)
/// are not the platform's business and are left out here, without a call to Xero.
pub fn read_delivery(body: &[u8]) -> Result<Delivery, NotAPayload> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| NotAPayload(crate::error::without_values(&e.to_string())))?;
    let mut delivery = Delivery::default();
    for (n, raw) in envelope.events.into_iter().enumerate() {
        let event: WireEvent = match serde_json::from_value(raw) {
            Ok(event) => event,
            Err(e) => {
                delivery.unreadable.push(format!("event {n}: {}", crate::error::without_values(&e.to_string())));
                continue;
            }
        };
        let category = match event.event_category.as_str() {
            "CONTACT" => ChangeCategory::Contact,
            "INVOICE" => ChangeCategory::Invoice,
            "CREDITNOTE" => ChangeCategory::CreditNote,
            _ => {
                delivery.ignored += 1;
                continue;
            }
        };
        if event.data.and_then(|d| d.kind).is_some_and(|kind| kind.starts_with("ACCPAY")) {
            delivery.ignored += 1;
            continue;
        }
        let Some(at) = event_time(&event.event_date_utc) else {
            delivery.unreadable.push(format!("event {n}: eventDateUtc is not a date-time"));
            continue;
        };
        delivery.changes.push((event.tenant_id, Change { category, resource_id: event.resource_id, at }));
    }
    Ok(delivery)
}

/// Xero writes `2025-12-02T00:44:09.923`, UTC without an offset; an offset is honoured too.
fn event_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
    })
}

/// An organisation's changes, de-duplicated: one entry per object, at its latest event time.
pub fn merge(changes: impl IntoIterator<Item = Change>) -> Vec<Change> {
    let mut latest: std::collections::BTreeMap<(ChangeCategory, Uuid), DateTime<Utc>> = Default::default();
    for change in changes {
        let at = latest.entry((change.category, change.resource_id)).or_insert(change.at);
        *at = (*at).max(change.at);
    }
    latest.into_iter().map(|((category, resource_id), at)| Change { category, resource_id, at }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_exact_bytes_signed_with_the_key_verify() {
        let key = WebhookKey::new("key");
        let body = br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}"#;
        let signature = key.sign(body);
        assert!(key.verifies(body, Some(&signature)));
        assert!(!key.verifies(
            br#"{"events": [],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}"#,
            Some(&signature)
        ));
        assert!(!WebhookKey::new("other").verifies(body, Some(&signature)));
        assert!(!key.verifies(body, None));
        assert!(!key.verifies(body, Some("not base64 !")));
        assert_eq!(format!("{key:?}"), "WebhookKey([redacted])");
    }

    #[test]
    fn a_delivery_keeps_what_concerns_the_platform_and_says_what_it_could_not_read() {
        let tenant = Uuid::new_v4();
        let id = Uuid::new_v4();
        let event = |category: &str, data: Value| {
            json!({ "resourceUrl": "https://api.xero.com/x", "resourceId": id, "tenantId": tenant, "tenantType": "ORGANISATION",
                    "eventCategory": category, "eventType": "UPDATE", "eventDateUtc": "2025-12-02T00:44:09.923", "data": data })
        };
        let body = json!({ "events": [
            event("INVOICE", json!({ "Type": "ACCREC", "Status": "PAID" })),
            event("INVOICE", json!({ "Type": "ACCPAY", "Status": "PAID" })),
            event("CREDITNOTE", json!({ "Type": "ACCPAYCREDIT", "Status": "DRAFT" })),
            event("CONTACT", Value::Null),
            event("SUBSCRIPTION", Value::Null),
            { "resourceId": "not a uuid" },
        ], "firstEventSequence": 1, "lastEventSequence": 6, "entropy": "E" });
        let delivery = read_delivery(body.to_string().as_bytes()).unwrap();
        let categories: Vec<_> = delivery.changes.iter().map(|(_, c)| c.category).collect();
        assert_eq!(categories, [ChangeCategory::Invoice, ChangeCategory::Contact]);
        assert_eq!(delivery.changes[0].1.at.to_rfc3339(), "2025-12-02T00:44:09.923+00:00");
        assert_eq!(delivery.ignored, 3);
        assert_eq!(delivery.unreadable.len(), 1);
        assert!(!delivery.unreadable[0].contains("not a uuid"), "{:?}", delivery.unreadable);
        assert!(read_delivery(b"[1,2]").is_err());
    }

    #[test]
    fn repeated_events_for_one_object_merge_into_its_latest() {
        let id = Uuid::new_v4();
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let merged = merge([
            Change { category: ChangeCategory::Invoice, resource_id: id, at: at(5) },
            Change { category: ChangeCategory::Invoice, resource_id: id, at: at(9) },
            Change { category: ChangeCategory::Invoice, resource_id: id, at: at(7) },
            Change { category: ChangeCategory::Contact, resource_id: id, at: at(1) },
        ]);
        assert_eq!(merged.len(), 2);
        assert!(merged.iter().any(|c| c.category == ChangeCategory::Invoice && c.at == at(9)));
    }
}
