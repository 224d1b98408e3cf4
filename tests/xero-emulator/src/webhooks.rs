//! Outgoing webhooks, shaped like xero-webhooks.yaml and signed like Xero signs them:
//! `x-xero-signature` is the base64 HMAC-SHA256 of the raw body keyed with the webhook key.
//! The intent-to-receive check sends one payload with a wrong signature (the receiver must
//! answer 401) and one with the right signature (it must answer 200):
//! https://developer.xero.com/documentation/guides/webhooks/overview/

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::server::Shared;
use crate::state::{DocKind, Tenant};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEvent {
    pub resource_url: String,
    pub resource_id: Uuid,
    pub event_date_utc: String,
    /// CREATE or UPDATE.
    pub event_type: String,
    /// INVOICE, CONTACT, CREDITNOTE or SUBSCRIPTION.
    pub event_category: String,
    pub tenant_id: Uuid,
    pub tenant_type: String,
    /// For invoices and credit notes, their Type and Status (the spec requires it on credit notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl WebhookEvent {
    pub fn new(
        base_url: &str,
        tenant: Uuid,
        category: &str,
        event_type: &str,
        resource_id: Uuid,
        at: DateTime<Utc>,
    ) -> Self {
        let collection = match category {
            "INVOICE" => "Invoices",
            "CONTACT" => "Contacts",
            "CREDITNOTE" => "CreditNotes",
            _ => "Subscriptions",
        };
        WebhookEvent {
            resource_url: format!("{base_url}/api.xro/2.0/{collection}/{resource_id}"),
            resource_id,
            event_date_utc: at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            event_type: event_type.into(),
            event_category: category.into(),
            tenant_id: tenant,
            tenant_type: "ORGANISATION".into(),
            data: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct WebhookDelivery {
    pub status: u16,
    pub body: String,
    pub signature: String,
    pub payload: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IntentToReceiveReport {
    /// True when the receiver answered 401 to the bad signature and 200 to the good one.
    pub passed: bool,
    pub bad_signature_status: u16,
    pub good_signature_status: u16,
}

pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn payload(events: &[WebhookEvent]) -> Value {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    let entropy: String = bytes.iter().map(|b| format!("{:02X}", b)).collect();
    // Xero's intent-to-receive payload has no events and sequences of 0, under the schema's
    // minimum of 1: a receiver that validates it against the schema fails the check.
    let count = events.len() as i64;
    json!({
        "events": events,
        "firstEventSequence": count.min(1),
        "lastEventSequence": count,
        "entropy": entropy,
    })
}

async fn post(url: &str, body: &[u8], signature: &str) -> Result<(u16, String), String> {
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-xero-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| format!("webhook delivery to {url} failed: {e}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

pub async fn send(url: &str, key: &str, events: Vec<WebhookEvent>, correct: bool) -> Result<WebhookDelivery, String> {
    let payload = payload(&events);
    let body = payload.to_string().into_bytes();
    let signature = if correct { sign(key, &body) } else { sign(&format!("not-{key}"), &body) };
    let (status, text) = post(url, &body, &signature).await?;
    Ok(WebhookDelivery { status, body: text, signature, payload })
}

pub async fn intent_to_receive(url: &str, key: &str) -> Result<IntentToReceiveReport, String> {
    let bad = send(url, key, vec![], false).await?;
    let good = send(url, key, vec![], true).await?;
    Ok(IntentToReceiveReport {
        passed: bad.status == 401 && good.status == 200,
        bad_signature_status: bad.status,
        good_signature_status: good.status,
    })
}

/// What one write changed, as the events Xero would send for it: an object that is new is
/// CREATE, one whose UpdatedDateUTC moved is UPDATE (a payment or an allocation moves its
/// invoice's, as in Xero).
pub(crate) fn changes(before: &Tenant, after: &Tenant, base_url: &str, now: DateTime<Utc>) -> Vec<WebhookEvent> {
    let mut events = Vec::new();
    let mut push = |category: &str, id: Uuid, was: Option<DateTime<Utc>>, is: DateTime<Utc>, data: Option<Value>| {
        let event_type = match was {
            None => "CREATE",
            Some(was) if was != is => "UPDATE",
            Some(_) => return,
        };
        let mut event = WebhookEvent::new(base_url, after.id, category, event_type, id, now);
        event.data = data;
        events.push(event);
    };
    for c in &after.contacts {
        push("CONTACT", c.id, before.contact(c.id).map(|b| b.updated), c.updated, None);
    }
    for (category, kind) in [("INVOICE", DocKind::Invoice), ("CREDITNOTE", DocKind::CreditNote)] {
        for d in after.docs(kind) {
            let was = before.docs(kind).iter().find(|b| b.id == d.id).map(|b| b.updated);
            push(category, d.id, was, d.updated, Some(json!({ "Type": d.doc_type, "Status": d.status })));
        }
    }
    events
}

/// Delivers what the outbox holds, as Xero does: one signed batch (events of any of the app's
/// organisations), kept for the next attempt unless the receiver answers 200. `None` when
/// there was nothing to deliver or no subscription.
pub(crate) async fn deliver_pending(shared: &Shared) -> Result<Option<WebhookDelivery>, String> {
    let Some(subscription) = shared.settings().webhooks else { return Ok(None) };
    let batch: Vec<WebhookEvent> = {
        let mut state = shared.lock();
        let n = state.webhook_outbox.len().min(MAX_BATCH);
        state.webhook_outbox.drain(..n).collect()
    };
    if batch.is_empty() {
        return Ok(None);
    }
    let outcome = send(&subscription.url, &subscription.key, batch.clone(), true).await;
    if !matches!(&outcome, Ok(d) if d.status == 200) {
        // Xero retries a failed delivery (for up to 24 hours): back to the front, in order.
        let mut state = shared.lock();
        for event in batch.into_iter().rev() {
            state.webhook_outbox.push_front(event);
        }
    }
    outcome.map(Some)
}

/// The most events one delivery carries.
const MAX_BATCH: usize = 100;
