//! The invoice function's HTTP routes: the webhook, plus the platform's signed invoice API
//! (backfill, one invoice's status and its retry, files to attach to an invoice or a credit note).

use lambda_http::{Body, Request, Response};
use xero_sync_http::{ApiError, connection_key, no_route, request_body, verify_api_request};

use xero_sync_domain::attachment::DocumentKind;

use crate::attachments::api::request_upload;
use crate::webhook::{Webhook, accept};

/// Answers one request; every error becomes its status in [`ApiError::into_response`].
pub async fn handle(webhook: &Webhook, request: Request) -> Response<Body> {
    let method = request.method().as_str().to_owned();
    let path = xero_sync_http::request_path(&request).trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let answer = match (method.as_str(), segments.as_slice()) {
        ("POST", ["webhooks", "invoices"]) => accept(webhook, &request).await,
        (_, ["webhooks", "invoices"]) => Err(ApiError::MethodNotAllowed { method }),
        (_, ["accounts", account, "connections", tenant, rest @ ..]) => {
            api(webhook, &request, account, tenant, rest).await
        }
        _ => Err(no_route(&method, &path)),
    };
    answer.unwrap_or_else(ApiError::into_response)
}

async fn api(
    webhook: &Webhook,
    request: &Request,
    account: &str,
    tenant: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    verify_api_request(request, &webhook.secrets, webhook.app.now())?;
    let key = connection_key(account, tenant)?;
    match (request.method().as_str(), rest) {
        ("POST", ["backfill"]) => crate::backfill::start(webhook, &key, request_body(request)).await,
        ("GET", ["invoices", invoice]) => crate::backfill::invoice_status(webhook, &key, invoice).await,
        ("POST", ["invoices", invoice, "retry"]) => crate::retry::route(webhook, &key, invoice).await,
        ("POST", ["invoices", invoice, "attachments"]) => {
            request_upload(webhook, &key, DocumentKind::Invoice, invoice, request_body(request)).await
        }
        ("POST", ["credit-notes", credit_note, "attachments"]) => {
            request_upload(webhook, &key, DocumentKind::CreditNote, credit_note, request_body(request)).await
        }
        (
            method,
            ["backfill"] | ["invoices", _] | ["invoices", _, "retry"] | ["invoices" | "credit-notes", _, "attachments"],
        ) => Err(ApiError::MethodNotAllowed { method: method.to_owned() }),
        (method, _) => Err(no_route(method, &xero_sync_http::request_path(request))),
    }
}
