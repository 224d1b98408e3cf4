//! The signed "Connect to Xero" link (`GET /connect`) and the platform's connection API
//! (`/accounts/{account}/connections...`, every call signed; see `xero_sync_domain::signing`).

mod api;
mod link;
mod settings;

use lambda_http::{Body, Request, Response};
use xero_sync_domain::signing::SigningSecret;
use xero_sync_http::{ApiError, no_route};
use xero_sync_runtime::config::{OAuthConfig, platform_signing_secrets};
use xero_sync_runtime::{App, ConfigError, Env};

pub use api::{connection, disconnect_now, granted_scopes, test_now};
pub use link::connect_link;
pub use settings::{contacts_allowed, reference_data, save as save_settings, validate_now};

/// The connect function's process-wide state.
pub struct Connect {
    pub app: App,
    pub oauth: OAuthConfig,
    pub secrets: Vec<SigningSecret>,
    /// The longest a connect link may live (`CONNECT_LINK_MAX_MINUTES`).
    pub link_lifetime: chrono::Duration,
}

impl Connect {
    pub fn new(mut app: App, env: &Env) -> Result<Self, ConfigError> {
        // Someone is waiting on the page: their calls go before the import's.
        app.tokens.prioritise(xero_sync_domain::governor::Priority::Push);
        let minutes: i64 = env.parse_or("CONNECT_LINK_MAX_MINUTES", link::DEFAULT_LINK_MINUTES)?;
        if !(1..=link::MAX_LINK_LIFETIME.num_minutes()).contains(&minutes) {
            return Err(ConfigError::Invalid {
                name: "CONNECT_LINK_MAX_MINUTES",
                reason: format!("must be 1 to {} minutes", link::MAX_LINK_LIFETIME.num_minutes()),
            });
        }
        Ok(Self {
            app,
            oauth: OAuthConfig::from(env)?,
            secrets: platform_signing_secrets(env)?,
            link_lifetime: chrono::Duration::minutes(minutes),
        })
    }
}

/// Every request ends in a response; errors become their status in one place ([`ApiError`]).
pub async fn handle(connect: &Connect, request: Request) -> Response<Body> {
    let path = xero_sync_http::request_path(&request);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().as_str().to_owned();
    match segments.as_slice() {
        ["connect"] if method == "GET" => link::start(connect, &request).await,
        ["connect"] => ApiError::MethodNotAllowed { method }.into_response(),
        ["accounts", account, "connections", rest @ ..] => {
            let response = api::handle(connect, &request, account, rest).await.unwrap_or_else(ApiError::into_response);
            // The API's calls to Xero (test, options, validate) count towards the organisation's day.
            xero_sync_runtime::meter::flush(&connect.app, "connect").await;
            response
        }
        _ => no_route(&method, &path).into_response(),
    }
}
