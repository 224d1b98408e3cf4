//! `POST /xero/webhooks`: Xero's webhooks in. It verifies the signature over the raw bytes,
//! groups the events by organisation, de-duplicates them and queues them; it never calls Xero,
//! so it answers well inside Xero's 5 seconds. The changes queue's worker reads what changed
//! (`crate::changes`).
//!
//! Xero's "Intent to Receive" check and every delivery get exactly what Xero asks for: 200 with
//! an empty body for a correct signature, 401 with an empty body for any other, and no cookies.
//! A delivery that cannot be queued gets a 5xx so that Xero delivers it again (for 24 hours).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::TenantId;
use xero_sync_domain::xero::webhooks::{Change, WebhookKey, XERO_SIGNATURE_HEADER, merge, read_delivery};
use xero_sync_http::{ApiError, Problem, request_body};
use xero_sync_runtime::{ConfigError, Env};

/// Far above any delivery Xero sends (it batches a few hundred events at most); a larger body
/// is refused before its signature is computed.
pub const MAX_BODY: usize = 1024 * 1024;
/// Changes per queue message: well inside SQS's 256 KiB.
const CHANGES_PER_MESSAGE: usize = 500;

/// One organisation's changes from one delivery: the body of a changes-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub tenant_id: TenantId,
    pub changes: Vec<Change>,
    /// When our endpoint received the delivery: what the latency target is measured from.
    #[serde(with = "xero_sync_domain::time::fixed")]
    pub received_at: DateTime<Utc>,
}

pub struct XeroWebhook {
    pub key: WebhookKey,
    /// The changes queue.
    pub queue: Queue,
}

impl XeroWebhook {
    pub fn new(sqs: aws_sdk_sqs::Client, env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            key: WebhookKey::new(env.required("XERO_WEBHOOK_KEY")?),
            queue: Queue::new(sqs, env.required("CHANGES_QUEUE_URL")?),
        })
    }
}

fn empty(status: StatusCode) -> Response<Body> {
    Response::builder().status(status).body(Body::Empty).expect("a status and no headers make a response")
}

/// Answers one request to the Xero webhook endpoint.
pub async fn handle_xero_webhook(webhook: &XeroWebhook, request: Request, now: DateTime<Utc>) -> Response<Body> {
    if request.method() != lambda_http::http::Method::POST {
        return ApiError::MethodNotAllowed { method: request.method().to_string() }.into_response();
    }
    let body = request_body(&request);
    if body.len() > MAX_BODY {
        return ApiError::PayloadTooLarge { limit: MAX_BODY }.into_response();
    }
    let signature = request.headers().get(XERO_SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if !webhook.key.verifies(body, signature) {
        tracing::warn!(
            signed = signature.is_some(),
            bytes = body.len(),
            "Xero webhook refused: signature does not match"
        );
        return empty(StatusCode::UNAUTHORIZED);
    }
    match accept(webhook, body, now).await {
        Ok(()) => empty(StatusCode::OK),
        Err(e) => e.into_response(),
    }
}

async fn accept(webhook: &XeroWebhook, body: &[u8], now: DateTime<Utc>) -> Result<(), ApiError> {
    let delivery = read_delivery(body).map_err(|e| ApiError::BadRequest(vec![Problem::new("body", e.0)]))?;
    if !delivery.unreadable.is_empty() {
        // Authentic but unreadable: nothing we could ask Xero for. The safety-net import
        // still finds the change.
        tracing::warn!(count = delivery.unreadable.len(), problems = ?delivery.unreadable, "Xero webhook events could not be read");
    }
    let mut by_tenant: BTreeMap<TenantId, Vec<Change>> = BTreeMap::new();
    let events = delivery.changes.len();
    for (tenant, change) in delivery.changes {
        by_tenant.entry(TenantId(tenant)).or_default().push(change);
    }
    let mut bodies = Vec::new();
    for (tenant_id, changes) in by_tenant {
        for chunk in merge(changes).chunks(CHANGES_PER_MESSAGE) {
            let batch = ChangeBatch { tenant_id, changes: chunk.to_vec(), received_at: now };
            bodies.push(
                serde_json::to_string(&batch)
                    .map_err(|e| Error::Corrupt { what: "change batch", reason: e.to_string() })?,
            );
        }
    }
    if !bodies.is_empty() {
        webhook.queue.send_every(&bodies).await?;
    }
    tracing::info!(events, ignored = delivery.ignored, messages = bodies.len(), "Xero webhook accepted");
    Ok(())
}
