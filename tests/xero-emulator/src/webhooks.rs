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
    // Sequences must be at least 1 (the spec's minimum), also for an empty intent-to-receive batch.
    let count = events.len().max(1) as i64;
    json!({
        "events": events,
        "firstEventSequence": 1,
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
