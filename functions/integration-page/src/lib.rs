//! The hosted Xero integration page: what a platform links to or embeds so its users can
//! connect, see the status, choose the settings, test, validate, disconnect and read the sync
//! log without the platform building any of it.
//!
//! The platform opens a session server to server (`POST /accounts/{account}/integration-sessions`,
//! signed); the browser opens the single-use URL it is given and from then on carries a session
//! cookie. Every page is server-rendered HTML with forms that work without script; every form
//! carries the session's CSRF token. The page uses the same operations as the connection API
//! (the `connect` crate), so a rule holds the same whichever way a setting is written.

mod actions;
mod forms;
mod html;
mod log;
mod sessions;
mod settings_form;
mod settings_read;
mod status;
mod text;

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use url::Url;
use xero_sync_domain::integration::PageSessionStore;
use xero_sync_http::no_route;
use xero_sync_runtime::{App, ConfigError, Env};

pub use html::Framing;
pub use sessions::SESSION_COOKIE;

/// The page function's process-wide state.
pub struct IntegrationPage {
    /// The connection API's operations, which the page's forms call.
    pub connect: connect::Connect,
    pub sessions: Arc<dyn PageSessionStore>,
    pub framing: Framing,
    /// The push queue, which a retried invoice goes back on.
    pub push_queue: xero_sync_aws::Queue,
}

impl IntegrationPage {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        let sessions = Arc::new(xero_sync_aws::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&app.sdk),
            &app.config.aws.table_name,
        ));
        let push_queue = xero_sync_aws::Queue::new(aws_sdk_sqs::Client::new(&app.sdk), env.required("PUSH_QUEUE_URL")?);
        let connect = connect::Connect::new(app, env)?;
        let framing = Framing::new(frame_ancestors(env, &connect.oauth.return_to_allowlist)?);
        Ok(Self { connect, sessions, framing, push_queue })
    }
}

/// `PAGE_FRAME_ANCESTORS` (origins, comma-separated), else the origins of
/// `RETURN_TO_ALLOWLIST`: the platform that the page returns to is the one that embeds it.
fn frame_ancestors(env: &Env, allowlist: &[Url]) -> Result<Vec<String>, ConfigError> {
    let listed = env.list("PAGE_FRAME_ANCESTORS");
    let mut origins = Vec::new();
    if listed.is_empty() {
        for url in allowlist {
            origins.push(url.origin().ascii_serialization());
        }
    }
    for raw in listed {
        let url = Url::parse(&raw)
            .map_err(|e| ConfigError::Invalid { name: "PAGE_FRAME_ANCESTORS", reason: format!("{raw}: {e}") })?;
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
        if url.scheme() != "https" && !(url.scheme() == "http" && local) {
            return Err(ConfigError::Invalid {
                name: "PAGE_FRAME_ANCESTORS",
                reason: format!("{raw} is not an https origin (only localhost may use http)"),
            });
        }
        origins.push(url.origin().ascii_serialization());
    }
    origins.sort();
    origins.dedup();
    Ok(origins)
}

/// Every request ends in a response: the API call answers JSON, the page answers HTML.
pub async fn handle(page: &IntegrationPage, request: Request) -> Response<Body> {
    let path = xero_sync_http::request_path(&request);
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().as_str().to_owned();
    let response = match (method.as_str(), segments.as_slice()) {
        ("POST", ["accounts", account, "integration-sessions"]) => {
            sessions::create(page, &request, account).await.unwrap_or_else(xero_sync_http::ApiError::into_response)
        }
        (_, ["accounts", _, "integration-sessions"]) => {
            xero_sync_http::ApiError::MethodNotAllowed { method: method.clone() }.into_response()
        }
        ("GET", ["integration", "assets", name]) => match html::asset(name) {
            Some(asset) => asset,
            None => no_route(&method, &path).into_response(),
        },
        ("GET", ["integration", "connected"]) => actions::connected(page, &request).await,
        ("GET", ["integration", "connect"]) => actions::connect(page, &request).await,
        (_, ["integration", rest @ ..]) => forms::handle(page, &request, &method, rest).await,
        _ => no_route(&method, &path).into_response(),
    };
    // The page's calls to Xero (test, options, validate) count towards the organisation's day.
    xero_sync_runtime::meter::flush(&page.connect.app, "integration-page").await;
    response
}

/// What went wrong with a browser's request, answered as a page in one place.
#[derive(Debug)]
pub enum PageError {
    /// No session, or one that ended.
    NoSession,
    /// A form without this session's CSRF token.
    Forgery,
    /// The request cannot be done as asked: its status and what to say.
    Refused { status: StatusCode, message: String },
    /// Anything of ours that failed; the details are logged, not shown.
    Unavailable(String),
}

impl PageError {
    pub fn refused(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Refused { status, message: message.into() }
    }

    pub fn into_response(self, framing: &Framing) -> Response<Body> {
        let t = text::Text::for_locale("en");
        match self {
            Self::NoSession => {
                html::message(framing, t, StatusCode::UNAUTHORIZED, t.session_ended, &[t.session_ended_help])
            }
            Self::Forgery => html::message(framing, t, StatusCode::FORBIDDEN, t.form_refused, &[t.form_refused_help]),
            Self::Refused { status, message } => html::message(framing, t, status, t.refused, &[&message]),
            Self::Unavailable(why) => {
                tracing::error!(error = %why, "the integration page could not answer");
                html::message(framing, t, StatusCode::SERVICE_UNAVAILABLE, t.unavailable, &[t.unavailable_help])
            }
        }
    }
}

impl From<xero_sync_domain::Error> for PageError {
    fn from(e: xero_sync_domain::Error) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// The connection API's errors, as the page shows them: what the user can act on is said, what
/// is ours is logged.
impl From<xero_sync_http::ApiError> for PageError {
    fn from(e: xero_sync_http::ApiError) -> Self {
        let status = e.status();
        if status.is_server_error() && !matches!(e, xero_sync_http::ApiError::Upstream { .. }) {
            return Self::Unavailable(e.to_string());
        }
        Self::refused(status, e.to_string())
    }
}
