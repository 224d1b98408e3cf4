//! The signed "Connect to Xero" link (`GET /connect`) and the platform's connection API
//! (`/accounts/{account}/connections...`, every call signed; see `xero_sync_core::signing`).

mod api;
mod link;
mod settings;

use lambda_http::{Body, Request, RequestExt, Response};
use xero_sync_core::config::{OAuthConfig, platform_signing_secrets};
use xero_sync_core::http::{ApiError, no_route};
use xero_sync_core::signing::SigningSecret;
use xero_sync_core::{App, ConfigError, Env};

pub use link::connect_link;

/// The connect function's process-wide state.
pub struct Connect {
    pub app: App,
    pub oauth: OAuthConfig,
    pub secrets: Vec<SigningSecret>,
}

impl Connect {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { app, oauth: OAuthConfig::from(env)?, secrets: platform_signing_secrets(env)? })
    }
}

/// Every request ends in a response; errors become their status in one place ([`ApiError`]).
pub async fn handle(connect: &Connect, request: Request) -> Response<Body> {
    let path = request.raw_http_path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().as_str().to_owned();
    match segments.as_slice() {
        ["connect"] if method == "GET" => link::start(connect, &request).await,
        ["connect"] => ApiError::MethodNotAllowed { method }.into_response(),
        ["accounts", account, "connections", rest @ ..] => {
            api::handle(connect, &request, account, rest).await.unwrap_or_else(ApiError::into_response)
        }
        _ => no_route(&method, &path).into_response(),
    }
}
