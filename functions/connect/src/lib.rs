//! The signed "Connect to Xero" link (GET /connect) and the platform's connection API.

use lambda_http::{Body, Request, Response};
use xero_sync_core::App;
use xero_sync_core::http::{ApiError, no_route};

/// Every request ends in a response; errors become their status in [`ApiError`].
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    route(app, &request).await.unwrap_or_else(ApiError::into_response)
}

async fn route(_app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    Err(no_route(request.method().as_str(), request.uri().path()))
}
