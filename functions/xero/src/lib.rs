//! Xero's identity service and Accounting API.
//!
//! One `reqwest` client per process with timeouts and redirects off (a redirect from an OAuth or
//! API endpoint is never something to follow with a bearer token). Base URLs come from
//! [`XeroConfig`], so the emulator stands in for Xero with no other change. Every response's
//! rate-limit headers are read; a 429 becomes [`XeroError::RateLimited`] with Xero's
//! `Retry-After`.

mod error;
mod identity;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, HeaderMap, HeaderValue, IF_MODIFIED_SINCE};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::XeroError;
pub use identity::{AccessClaims, Grant, IdClaims, XeroConnection, access_token_claims};
/// The Accounting API's objects, defined in the domain crate whose rules read them.
pub use xero_sync_domain::xero as model;

use xero_sync_domain::model::{TenantId, XeroConnectionId};
use xero_sync_domain::tokens::AccessToken;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("xero-sync/", env!("CARGO_PKG_VERSION"));

/// What Xero says is left of its limits after this call (absent headers stay `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub minute_remaining: Option<u32>,
    pub day_remaining: Option<u32>,
    pub app_minute_remaining: Option<u32>,
}

impl RateLimits {
    fn from_headers(headers: &HeaderMap) -> Self {
        let read = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
        Self {
            minute_remaining: read("x-minlimit-remaining"),
            day_remaining: read("x-daylimit-remaining"),
            app_minute_remaining: read("x-appminlimit-remaining"),
        }
    }
}

/// How to reach Xero and who we are to it.
#[derive(Debug, Clone)]
pub struct XeroConfig {
    pub client_id: String,
    /// Only in the functions that call Xero's identity service (see `xero_sync_runtime::app::Needs`);
    /// without it the code exchange, token refresh and revocation refuse. oauth2's secret type
    /// prints `[redacted]` under Debug.
    pub client_secret: Option<oauth2::ClientSecret>,
    /// Where the user's browser goes to consent (Xero's login service).
    pub authorize_url: url::Url,
    /// Base of the identity service: `/connect/token` and `/connect/revocation`.
    pub identity_url: url::Url,
    /// Base of the API: `/connections` and `/api.xro/2.0/...`.
    pub api_url: url::Url,
    /// How long one call to Xero may take before it counts as lost.
    pub request_timeout: std::time::Duration,
}

#[derive(Debug)]
pub struct XeroResponse<T> {
    pub body: T,
    pub limits: RateLimits,
    /// The answer's size as received: what Xero bills as egress.
    pub bytes: usize,
}

/// A request to the Accounting API.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest<'a> {
    /// Below `/api.xro/2.0`, e.g. `/Invoices`.
    pub path: &'a str,
    pub query: Vec<(&'a str, String)>,
    pub if_modified_since: Option<DateTime<Utc>>,
    /// Xero replays the first response for a repeated key instead of applying the write again.
    pub idempotency_key: Option<String>,
    /// A file sent as the body itself (an attachment), rather than JSON.
    pub file: Option<FileBody>,
}

/// A file as a request body: its bytes, shared rather than copied when a call is sent again.
#[derive(Debug, Clone)]
pub struct FileBody {
    pub bytes: bytes::Bytes,
    pub content_type: String,
}

impl<'a> ApiRequest<'a> {
    pub fn new(path: &'a str) -> Self {
        Self { path, ..Default::default() }
    }
}

#[derive(Clone, Debug)]
pub struct XeroClient {
    http: reqwest::Client,
    config: XeroConfig,
}

impl XeroClient {
    pub fn new(config: &XeroConfig) -> Result<Self, XeroError> {
        let mut headers = HeaderMap::new();
        // Xero answers in XML unless asked for JSON.
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(config.request_timeout)
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .build()
            .map_err(|e| XeroError::Unexpected(format!("building the HTTP client: {e}")))?;
        Ok(Self { http, config: config.clone() })
    }

    pub fn config(&self) -> &XeroConfig {
        &self.config
    }

    fn url(&self, base: &url::Url, path: &str) -> String {
        format!("{}{}", base.as_str().trim_end_matches('/'), path)
    }

    /// One call to the Accounting API with `token` for `tenant`; callers go through the token
    /// provider, which supplies a fresh token and retries once on a 401.
    pub async fn call<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        method: Method,
        token: &AccessToken,
        tenant: TenantId,
        request: &ApiRequest<'_>,
        body: Option<&B>,
    ) -> Result<XeroResponse<T>, XeroError> {
        let url = self.url(&self.config.api_url, &format!("/api.xro/2.0{}", request.path));
        let is_write = method != Method::GET;
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(token.secret())
            .header("xero-tenant-id", tenant.to_string())
            .query(&request.query);
        if let Some(since) = request.if_modified_since {
            // Xero reads this header as UTC, to the second.
            req = req.header(IF_MODIFIED_SINCE, since.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
        if let Some(key) = &request.idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            req = req.json(body);
        } else if let Some(file) = &request.file {
            req = req.header(reqwest::header::CONTENT_TYPE, &file.content_type).body(file.bytes.clone());
        }
        let response = req.send().await.map_err(|e| XeroError::from_transport(&e, is_write))?;
        let status = response.status();
        let headers = response.headers().clone();
        let limits = RateLimits::from_headers(&headers);
        let bytes = response.bytes().await.map_err(|e| XeroError::from_transport(&e, is_write))?;
        if status.is_success() {
            // A write Xero answered with a 2xx was applied even if its answer cannot be read: the
            // caller must look before writing again, as after a timeout.
            // A 204 (a deleted item, say) has no body: it reads as JSON null.
            let text: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(text).map(|body| XeroResponse { body, limits, bytes: bytes.len() }).map_err(
                |e| XeroError::Unreadable {
                    what: request.path.trim_start_matches('/').to_owned(),
                    reason: xero_sync_domain::error::without_values(&e.to_string()),
                    maybe_applied: is_write,
                },
            );
        }
        Err(XeroError::from_response(status, &headers, &bytes, request.path))
    }

    /// `DELETE /connections/{id}`: whether Xero still had it (a 404 means already gone).
    pub async fn delete_connection(&self, token: &AccessToken, id: XeroConnectionId) -> Result<bool, XeroError> {
        let url = self.url(&self.config.api_url, &format!("/connections/{id}"));
        let response = self
            .http
            .delete(url)
            .bearer_auth(token.secret())
            .send()
            .await
            .map_err(|e| XeroError::from_transport(&e, true))?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => {
                let headers = response.headers().clone();
                let bytes = response.bytes().await.unwrap_or_default();
                Err(XeroError::from_response(status, &headers, &bytes, "/connections"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_headers_are_read_when_present() {
        let mut h = HeaderMap::new();
        h.insert("X-MinLimit-Remaining", HeaderValue::from_static("59"));
        h.insert("x-daylimit-remaining", HeaderValue::from_static(" 4990 "));
        h.insert("X-AppMinLimit-Remaining", HeaderValue::from_static("lots"));
        assert_eq!(
            RateLimits::from_headers(&h),
            RateLimits { minute_remaining: Some(59), day_remaining: Some(4990), app_minute_remaining: None }
        );
    }
}
