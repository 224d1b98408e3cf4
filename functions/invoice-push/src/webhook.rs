//! `POST /webhooks/invoices`: verify, validate and durably accept, well within a webhook's
//! timeout. The push itself runs later from the queue, so a slow or rate-limited Xero never
//! makes the platform's delivery time out.

use chrono::Duration;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::model::{AccountId, DeliveryStatus, TenantId};
use xero_sync_domain::signing::{SIGNATURE_HEADER, Signed, SigningSecret, verify};
use xero_sync_domain::store::DeliveryClaim;
use xero_sync_http::{ApiError, Problem, json, request_body};
use xero_sync_runtime::config::platform_signing_secrets;
use xero_sync_runtime::{App, ConfigError, Env};

use crate::credit_note_event::CreditNoteEvent;
use crate::customer_event::CustomerEvent;
use crate::event::InvoiceEvent;
use crate::item_event::ItemEvent;
use crate::message::{CreditNoteMessage, CustomerMessage, ItemMessage, PaymentMessage, PushMessage, QueueMessage};
use crate::payment_event::PaymentEvent;

/// The largest body accepted: what is accepted goes onto the push queue (an SQS message holds
/// 256 KiB) and may be parked as one DynamoDB item (400 KB), so it must fit both with room for
/// the envelope. Far more than any invoice needs; a larger body is refused before it is parsed.
pub const MAX_BODY: usize = 240 * 1024;
/// SQS's limit on a message, which the queued event (slightly larger than its body: decimals
/// become strings) must also stay under.
const MAX_QUEUE_MESSAGE: usize = 256 * 1024;
/// How long a delivery id is remembered: longer than any platform retries a webhook.
pub const REMEMBER_DELIVERIES: Duration = Duration::days(7);
/// A delivery recorded but not yet handed on is taken to be in flight for this long; after
/// that the attempt that recorded it is taken to have died, and a redelivery takes over.
pub const IN_FLIGHT_FOR: Duration = Duration::seconds(60);

pub struct Webhook {
    pub app: App,
    pub secrets: Vec<SigningSecret>,
    /// The push queue.
    pub queue: Queue,
    /// Where the platform uploads files to attach.
    pub uploads: xero_sync_aws::Uploads,
}

impl Webhook {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let queue = Queue::new(aws_sdk_sqs::Client::new(&app.sdk), env.required("PUSH_QUEUE_URL")?);
        let uploads = crate::attachments::uploads(&app, env)?;
        Ok(Self { secrets: platform_signing_secrets(env)?, queue, uploads, app })
    }
}

/// Verifies, validates and durably accepts one delivery of `POST /webhooks/invoices`.
pub async fn accept(webhook: &Webhook, request: &Request) -> Result<Response<Body>, ApiError> {
    let raw = request_body(request);
    if raw.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let header = request.headers().get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let app = &webhook.app;
    verify(header, &webhook.secrets, app.now(), &Signed::Webhook { body: raw })
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let event = Accepted::parse(raw).map_err(|p| ApiError::BadRequest(vec![p]))?;
    let problems = event.problems();
    if !problems.is_empty() {
        return Err(ApiError::BadRequest(problems));
    }
    let tenant_id = organisation(webhook, event.account_id(), event.xero_tenant_id()).await?;
    let message = serde_json::to_string(&event.message(tenant_id))
        .map_err(|e| Error::Corrupt { what: "push message", reason: e.to_string() })?;
    let delivery_id = event.delivery_id();
    if message.len() > MAX_QUEUE_MESSAGE {
        // Under the body's limit, but larger once queued (decimals as strings): the queue's.
        return Err(ApiError::PayloadTooLarge { limit: MAX_QUEUE_MESSAGE });
    }

    match app.services.store.claim_delivery(delivery_id, app.now(), REMEMBER_DELIVERIES).await? {
        DeliveryClaim::Seen(seen) if seen.status == DeliveryStatus::Enqueued => {
            return Ok(json(StatusCode::OK, &json!({ "status": "duplicate", "delivery_id": delivery_id })));
        }
        // Another attempt is accepting this delivery right now. Acknowledging would lose the
        // event if that attempt then failed; enqueueing would send it twice. Come back later.
        DeliveryClaim::Seen(seen) if app.now() - seen.received_at < IN_FLIGHT_FOR => {
            let mut response = json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "error": "delivery_in_progress", "message": "this delivery is being accepted; retry shortly" }),
            );
            response.headers_mut().insert("retry-after", lambda_http::http::HeaderValue::from_static("5"));
            return Ok(response);
        }
        // New, or recorded by an attempt that died before handing it on: hand it on.
        DeliveryClaim::Seen(_) | DeliveryClaim::New => {}
    }
    if let Err(e) = webhook.queue.send(&message).await {
        // Let the platform's retry find the delivery unclaimed.
        let _ = app.services.store.forget_delivery(delivery_id).await;
        return Err(e.into());
    }
    app.services.store.mark_delivery_enqueued(delivery_id).await?;
    event.log_accepted();
    Ok(json(StatusCode::ACCEPTED, &json!({ "status": "accepted", "delivery_id": delivery_id })))
}

/// One delivery of the webhook: an invoice, payment, credit note, customer or item event, told
/// apart by `event`.
enum Accepted {
    Invoice(InvoiceEvent),
    Payment(PaymentEvent),
    CreditNote(CreditNoteEvent),
    Customer(CustomerEvent),
    Item(ItemEvent),
}

impl Accepted {
    fn parse(raw: &[u8]) -> Result<Self, Problem> {
        #[derive(serde::Deserialize)]
        struct Kind {
            #[serde(default)]
            event: Option<String>,
        }
        // Anything not plainly a payment event is read as an invoice event, whose parser names
        // what is wrong with it (the JSON itself, a missing or unknown `event`, ...).
        let kind = serde_json::from_slice::<Kind>(raw).ok().and_then(|k| k.event);
        match kind.as_deref() {
            Some(k) if k.starts_with("payment.") => crate::payment_event::parse(raw).map(Self::Payment),
            Some(k) if k.starts_with("credit_note.") => crate::credit_note_event::parse(raw).map(Self::CreditNote),
            Some(k) if k.starts_with("customer.") => crate::customer_event::parse(raw).map(Self::Customer),
            Some(k) if k.starts_with("item.") => crate::item_event::parse(raw).map(Self::Item),
            _ => crate::event::parse(raw).map(Self::Invoice),
        }
    }

    fn problems(&self) -> Vec<Problem> {
        match self {
            Self::Invoice(e) => e.problems(),
            Self::Payment(e) => e.problems(),
            Self::CreditNote(e) => e.problems(),
            Self::Customer(e) => e.problems(),
            Self::Item(e) => e.problems(),
        }
    }

    fn delivery_id(&self) -> &str {
        match self {
            Self::Invoice(e) => &e.delivery_id,
            Self::Payment(e) => &e.delivery_id,
            Self::CreditNote(e) => &e.delivery_id,
            Self::Customer(e) => &e.delivery_id,
            Self::Item(e) => &e.delivery_id,
        }
    }

    fn account_id(&self) -> &AccountId {
        match self {
            Self::Invoice(e) => &e.account_id,
            Self::Payment(e) => &e.account_id,
            Self::CreditNote(e) => &e.account_id,
            Self::Customer(e) => &e.account_id,
            Self::Item(e) => &e.account_id,
        }
    }

    fn xero_tenant_id(&self) -> Option<TenantId> {
        match self {
            Self::Invoice(e) => e.xero_tenant_id,
            Self::Payment(e) => e.xero_tenant_id,
            Self::CreditNote(e) => e.xero_tenant_id,
            Self::Customer(e) => e.xero_tenant_id,
            Self::Item(e) => e.xero_tenant_id,
        }
    }

    fn message(&self, tenant_id: TenantId) -> QueueMessage {
        match self {
            Self::Invoice(e) => QueueMessage::Event(Box::new(PushMessage { tenant_id, event: e.clone() })),
            Self::Payment(e) => QueueMessage::Payment(Box::new(PaymentMessage { tenant_id, event: e.clone() })),
            Self::CreditNote(e) => {
                QueueMessage::CreditNote(Box::new(CreditNoteMessage { tenant_id, event: e.clone() }))
            }
            Self::Customer(e) => QueueMessage::Customer(Box::new(CustomerMessage { tenant_id, event: e.clone() })),
            Self::Item(e) => QueueMessage::Item(Box::new(ItemMessage { tenant_id, event: e.clone() })),
        }
    }

    fn log_accepted(&self) {
        match self {
            Self::Invoice(e) => tracing::info!(
                account = %e.account_id, invoice = %e.invoice.id, delivery = %e.delivery_id, event = ?e.event,
                "invoice event accepted"
            ),
            Self::Payment(e) => tracing::info!(
                account = %e.account_id, invoice = %e.payment.invoice_id, payment = %e.payment.id,
                delivery = %e.delivery_id, event = ?e.event, "payment event accepted"
            ),
            Self::CreditNote(e) => tracing::info!(
                account = %e.account_id, credit_note = %e.credit_note.id, delivery = %e.delivery_id,
                event = ?e.event, "credit note event accepted"
            ),
            Self::Customer(e) => tracing::info!(
                account = %e.account_id, customer = %e.customer.id, delivery = %e.delivery_id, event = ?e.event,
                "customer event accepted"
            ),
            Self::Item(e) => tracing::info!(
                account = %e.account_id, item = %e.item.id, delivery = %e.delivery_id, event = ?e.event,
                "item event accepted"
            ),
        }
    }
}

/// The organisation the event goes to: the one named, or the account's only one. A connection
/// waiting for reconnection still takes events (they wait); a disconnected one does not.
async fn organisation(webhook: &Webhook, account: &AccountId, named: Option<TenantId>) -> Result<TenantId, ApiError> {
    let connections = webhook.app.services.store.account_connections(account).await?;
    let live: Vec<_> = connections.iter().filter(|c| c.status.is_live()).collect();
    match (named, live.as_slice()) {
        (Some(tenant), live) => live.iter().find(|c| c.tenant_id == tenant).map(|c| c.tenant_id).ok_or_else(|| {
            ApiError::NotFound(format!("account {account} is not connected to Xero organisation {tenant}"))
        }),
        (None, [only]) => Ok(only.tenant_id),
        (None, []) => Err(ApiError::NotFound(format!("account {account} is not connected to Xero"))),
        (None, _) => Err(ApiError::BadRequest(vec![Problem::new(
            "xero_tenant_id",
            "is required: the account is connected to several Xero organisations",
        )])),
    }
}
