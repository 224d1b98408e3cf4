//! The platform's connection API. Every call carries a timestamped signature bound to its
//! method, path and body.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde_json::{Value, json};
use xero_sync_domain::model::{AccountId, Connection, ConnectionKey, ConnectionStatus, XeroUsage};
use xero_sync_http::{ApiError, Problem, connection_key, json, request_body};
use xero_sync_runtime::lifecycle;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use crate::Connect;
use xero_sync_domain::scopes::{Feature, features};

/// What the platform sees of a connection: no grant, no token, no email.
#[derive(Debug, Serialize)]
pub struct ConnectionView<'a> {
    pub tenant_id: String,
    pub organisation_name: &'a str,
    pub status: ConnectionStatus,
    pub connected_at: String,
    pub last_activity_at: String,
    pub last_sync_at: Option<String>,
    pub status_changed_at: String,
    pub last_error: Option<&'a str>,
    /// Whether account emails reach the address (which itself is not shown); `None` without one.
    pub email: Option<EmailView>,
    /// Ended, with its clean-up at Xero or in the vault still to finish.
    pub cleanup_pending: bool,
    /// What xero-sync received from Xero for it, today and yesterday (UTC): calls and bytes.
    pub xero_usage: UsageView,
    /// What the consent granted; `None` when not known (made before scopes were recorded, and
    /// its tokens are gone).
    pub scopes: Option<Vec<String>>,
    /// What those scopes allow, and what they do not with the scope a reconnection would add.
    pub features: Vec<Feature>,
    pub features_not_allowed: Vec<FeatureNeeds>,
}

#[derive(Debug, Serialize)]
pub struct FeatureNeeds {
    pub feature: Feature,
    pub needs_scope: &'static str,
}

impl ConnectionView<'_> {
    /// Fills in what the scopes allow.
    pub fn with_scopes(mut self, scopes: Option<Vec<String>>) -> Self {
        if let Some(granted) = &scopes {
            self.features = features(granted);
            self.features_not_allowed = Feature::ALL
                .into_iter()
                .filter(|f| !f.allowed_by(granted))
                .map(|f| FeatureNeeds { feature: f, needs_scope: f.scope() })
                .collect();
        }
        self.scopes = scopes;
        self
    }
}

/// What the connection's consent granted: recorded on it, or else in its token set.
pub async fn granted_scopes(connect: &Connect, c: &Connection) -> Result<Option<Vec<String>>, ApiError> {
    if c.scopes.is_some() || !c.status.is_live() {
        return Ok(c.scopes.clone());
    }
    Ok(connect.app.services.vault.load(&c.grant_id).await?.map(|tokens| tokens.scopes))
}

#[derive(Debug, Default, Serialize)]
pub struct UsageView {
    pub today: XeroUsage,
    pub yesterday: XeroUsage,
}

#[derive(Debug, Serialize)]
pub struct EmailView {
    pub deliverable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_at: Option<String>,
    /// SES's code for the refusal, such as MessageRejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl<'a> From<&'a Connection> for ConnectionView<'a> {
    fn from(c: &'a Connection) -> Self {
        use xero_sync_domain::time::format;
        Self {
            tenant_id: c.tenant_id.to_string(),
            organisation_name: &c.organisation_name,
            status: c.status,
            connected_at: format(c.connected_at),
            last_activity_at: format(c.last_activity_at),
            last_sync_at: c.last_sync_at.map(format),
            status_changed_at: format(c.status_changed_at),
            last_error: c.last_error.as_deref(),
            email: c.notify_email.as_deref().map(|address| {
                let refused = c
                    .email_refused
                    .as_ref()
                    .filter(|r| r.address_hash == xero_sync_runtime::mail::address_hash(address));
                EmailView {
                    deliverable: refused.is_none(),
                    refused_at: refused.map(|r| format(r.at)),
                    reason: refused.map(|r| format!("SES refused the address ({})", r.code)),
                }
            }),
            cleanup_pending: c.cleanup_pending,
            xero_usage: UsageView::default(),
            scopes: None,
            features: Vec::new(),
            features_not_allowed: Vec::new(),
        }
    }
}

fn check_signature(connect: &Connect, request: &Request) -> Result<(), ApiError> {
    xero_sync_http::verify_api_request(request, &connect.secrets, connect.app.now())
}

pub async fn connection(connect: &Connect, key: &ConnectionKey) -> Result<Connection, ApiError> {
    connect.app.services.store.get_connection(key).await?.ok_or_else(|| {
        ApiError::NotFound(format!("account {} has no connection to tenant {}", key.account_id, key.tenant_id))
    })
}

pub async fn handle(
    connect: &Connect,
    request: &Request,
    account: &str,
    rest: &[&str],
) -> Result<Response<Body>, ApiError> {
    check_signature(connect, request)?;
    let method = request.method().as_str();
    match (method, rest) {
        ("GET", []) => {
            let account = AccountId::parse(account)
                .map_err(|e| ApiError::BadRequest(vec![Problem::new("account", e.to_string())]))?;
            let store = &connect.app.services.store;
            let connections = store.account_connections(&account).await?;
            let today = connect.app.now().date_naive();
            let days = [today, today - chrono::Duration::days(1)];
            let mut views = Vec::with_capacity(connections.len());
            for c in &connections {
                let mut view = ConnectionView::from(c).with_scopes(granted_scopes(connect, c).await?);
                if let [(_, today), (_, yesterday)] = store.usage(&c.key(), &days).await?.as_slice() {
                    view.xero_usage = UsageView { today: *today, yesterday: *yesterday };
                }
                views.push(view);
            }
            Ok(json(StatusCode::OK, &json!({ "account_id": account, "connections": views })))
        }
        ("POST", [tenant, "test"]) => test(connect, &connection_key(account, tenant)?).await,
        ("POST", [tenant, "disconnect"]) => disconnect(connect, &connection_key(account, tenant)?).await,
        ("GET", [tenant, "options"]) => {
            let connection = connection(connect, &connection_key(account, tenant)?).await?;
            crate::settings::options(connect, &connection).await
        }
        ("GET", [tenant, "settings"]) => {
            let key = connection_key(account, tenant)?;
            connection(connect, &key).await?;
            crate::settings::get(connect, &key).await
        }
        ("PUT", [tenant, "settings"]) => {
            let connection = connection(connect, &connection_key(account, tenant)?).await?;
            crate::settings::put(connect, &connection, request_body(request)).await
        }
        ("POST", [tenant, "validate"]) => {
            let connection = connection(connect, &connection_key(account, tenant)?).await?;
            crate::settings::validate(connect, &connection, request_body(request)).await
        }
        (_, [] | [_, "test" | "disconnect" | "options" | "settings" | "validate"]) => {
            Err(ApiError::MethodNotAllowed { method: method.to_owned() })
        }
        _ => Err(xero_sync_http::no_route(method, &xero_sync_http::request_path(request))),
    }
}

/// The "Test" button: can we read the organisation right now?
async fn test(connect: &Connect, key: &ConnectionKey) -> Result<Response<Body>, ApiError> {
    Ok(json(StatusCode::OK, &test_now(connect, key).await?))
}

/// What the "Test" button shows: `ok`, and the organisation read or the problem in plain words.
pub async fn test_now(connect: &Connect, key: &ConnectionKey) -> Result<Value, ApiError> {
    let connection = connection(connect, key).await?;
    let outcome = connect.app.tokens.get::<Value>(&connection, &ApiRequest::new("/Organisation")).await;
    let body = match outcome {
        Ok(response) => {
            let org = response.body.pointer("/Organisations/0").cloned().unwrap_or(Value::Null);
            connect.app.services.store.record_activity(key, connect.app.now()).await?;
            json!({
                "ok": true,
                "organisation": {
                    "name": org.get("Name"),
                    "base_currency": org.get("BaseCurrency"),
                    "country_code": org.get("CountryCode"),
                },
            })
        }
        Err(TokenError::Reconnect) => {
            json!({ "ok": false, "problem": "Xero needs the organisation to be reconnected." })
        }
        Err(TokenError::Xero(e)) => json!({ "ok": false, "problem": describe(&e), "retryable": e.is_retryable() }),
        Err(TokenError::Busy) => {
            json!({ "ok": false, "problem": "Busy refreshing the connection; try again.", "retryable": true })
        }
        Err(e @ TokenError::Governed { .. }) => {
            json!({ "ok": false, "problem": format!("Xero's limits: {e}; try again."), "retryable": true })
        }
        Err(TokenError::Aws(e)) => return Err(e.into()),
    };
    Ok(body)
}

fn describe(e: &XeroError) -> String {
    match e {
        XeroError::Forbidden(_) => "Xero no longer allows access to this organisation.".into(),
        other => other.to_string(),
    }
}

/// "Disconnect": stops all syncing and keeps the data. Repeating it is harmless, and finishes
/// a clean-up an earlier attempt left undone.
async fn disconnect(connect: &Connect, key: &ConnectionKey) -> Result<Response<Body>, ApiError> {
    let updated = disconnect_now(connect, key).await?;
    Ok(json(StatusCode::OK, &json!({ "connection": ConnectionView::from(&updated) })))
}

/// Ends the connection (or finishes its clean-up) and answers it as it is now.
pub async fn disconnect_now(connect: &Connect, key: &ConnectionKey) -> Result<Connection, ApiError> {
    let connection = connection(connect, key).await?;
    let app = &connect.app;
    let updated = if connection.status.is_live() {
        let ending = lifecycle::Ending {
            to: ConnectionStatus::Disconnected,
            reason: "Disconnected by the account.",
            if_last_activity: None,
        };
        lifecycle::disconnect(&app.services, &app.tokens, &connection, &ending, app.now()).await?
    } else {
        lifecycle::finish_cleanup(&app.services, &app.tokens, connection, app.now()).await?
    };
    tracing::info!(account = %key.account_id, tenant = %key.tenant_id, "disconnected by the account");
    Ok(updated)
}
