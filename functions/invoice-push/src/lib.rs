//! The platform's invoice webhook (POST /webhooks/invoices).

use lambda_http::{Body, Request, Response};
use xero_sync_core::App;
use xero_sync_core::http::{ApiError, no_route};

/// The webhook side: verify, validate, accept. Errors become their status in [`ApiError`].
pub async fn handle_webhook(app: &App, request: Request) -> Response<Body> {
    route(app, &request).await.unwrap_or_else(ApiError::into_response)
}

async fn route(_app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    Err(no_route(request.method().as_str(), request.uri().path()))
}
