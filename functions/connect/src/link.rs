//! `GET /connect`: checks the platform's signed link and sends the browser to Xero's consent.

use chrono::Duration;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use oauth2::CsrfToken;
use url::Url;
use xero_sync_domain::model::{AccountId, OAuthState};
use xero_sync_domain::signing::{SigningSecret, connect_link_signature, verify_connect_link};
use xero_sync_http::{consent_binding, consent_cookie, page, redirect};

use crate::Connect;

/// How long the consent may take, from the click to Xero's callback.
pub const STATE_LIFETIME: Duration = Duration::minutes(10);
/// How far in the future a link may say it expires, unless `CONNECT_LINK_MAX_MINUTES` says
/// otherwise: a link is a bearer token until it is used, so it lives briefly.
pub const DEFAULT_LINK_MINUTES: i64 = 15;
/// A second click on a link this soon after the first gets the first one's answer.
const DOUBLE_CLICK: Duration = Duration::seconds(30);
/// The most `CONNECT_LINK_MAX_MINUTES` may allow.
pub const MAX_LINK_LIFETIME: Duration = Duration::hours(24);

/// Builds a signed connect link, as the platform does (also used by tests and the local demo).
pub fn connect_link(
    base: &Url,
    secret: &SigningSecret,
    account_id: &str,
    return_to: Option<&str>,
    email: Option<&str>,
    expires: i64,
) -> Url {
    let mut url = base.join("connect").expect("a fixed relative path joins");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("account_id", account_id);
        if let Some(r) = return_to {
            q.append_pair("return_to", r);
        }
        if let Some(e) = email {
            q.append_pair("email", e);
        }
        q.append_pair("expires", &expires.to_string());
        q.append_pair("sig", &connect_link_signature(secret, account_id, return_to, email, expires));
    }
    url
}

fn refused(status: StatusCode, what: &str) -> Response<Body> {
    page(status, "Xero could not be connected", &[what, "Go back to the platform and click Connect to Xero again."])
}

pub async fn start(connect: &Connect, request: &Request) -> Response<Body> {
    let query = request.query_string_parameters();
    let mut problems = Vec::new();
    let account = match query.first("account_id").map(AccountId::parse) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            problems.push(format!("account_id: {e}"));
            None
        }
        None => {
            problems.push("account_id is missing".to_owned());
            None
        }
    };
    let expires = match query.first("expires").map(str::parse::<i64>) {
        Some(Ok(e)) => Some(e),
        Some(Err(_)) => {
            problems.push("expires is not a whole number of seconds".to_owned());
            None
        }
        None => {
            problems.push("expires is missing".to_owned());
            None
        }
    };
    let sig = query.first("sig");
    if sig.is_none() {
        problems.push("sig is missing".to_owned());
    }
    let return_to = query.first("return_to");
    let email = query.first("email");
    if let Some(e) = email {
        if !xero_sync_domain::email::is_valid(e) {
            problems.push("email is not an email address".to_owned());
        }
    }
    let (Some(account), Some(expires), Some(sig), true) = (account, expires, sig, problems.is_empty()) else {
        let listed = problems.join("; ");
        return page(
            StatusCode::BAD_REQUEST,
            "This link is incomplete",
            &[
                &format!("The Connect to Xero link is missing parts: {listed}."),
                "Go back to the platform and click Connect to Xero again.",
            ],
        );
    };
    if !verify_connect_link(&connect.secrets, sig, account.as_str(), return_to, email, expires) {
        return refused(
            StatusCode::UNAUTHORIZED,
            "This Connect to Xero link is not valid: it was not signed by the platform, or was changed.",
        );
    }
    let now = connect.app.now();
    if expires <= now.timestamp() {
        return refused(StatusCode::UNAUTHORIZED, "This Connect to Xero link has expired.");
    }
    if expires > (now + connect.link_lifetime).timestamp() {
        let most = connect.link_lifetime.num_minutes();
        return refused(
            StatusCode::BAD_REQUEST,
            &format!("This Connect to Xero link is valid for too long (at most {most} minutes)."),
        );
    }
    let return_to = match return_to.map(Url::parse) {
        None => None,
        Some(Ok(url)) if connect.oauth.return_to_allowed(&url) => Some(url.to_string()),
        Some(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "This link asks to return to an address the integration does not allow.",
            );
        }
    };
    let state = CsrfToken::new_random_len(32).secret().to_owned();
    let (authorize, verifier) =
        match connect.app.xero.authorize_url(&connect.oauth.redirect_uri, &connect.oauth.scopes, &state) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(error = %e, "could not build Xero's authorize URL");
                return refused(StatusCode::INTERNAL_SERVER_ERROR, "The integration is misconfigured.");
            }
        };
    let record = OAuthState {
        state,
        account_id: account.clone(),
        return_to,
        pkce_verifier: verifier,
        notify_email: email.map(str::to_owned),
        created_at: now,
        expires_at: now + STATE_LIFETIME,
    };
    let unavailable = || {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Xero could not be connected",
            &["Something went wrong on our side. Please try again in a minute."],
        )
    };
    if let Err(e) = connect.app.services.store.create_oauth_state(&record).await {
        tracing::error!(error = %e, "could not store the OAuth state");
        return unavailable();
    }
    // Single use, claimed last so that a failure above leaves the link usable. Whoever holds a
    // link that was used (copied from a log, a shared screen) cannot start a consent with it;
    // a double click within moments gets the first click's answer again (its state is single
    // use at the callback, so only one browser can finish it).
    let cookie = consent_binding(&record.state);
    let claim = serde_json::json!({ "location": authorize.as_str(), "cookie": cookie }).to_string();
    let until = chrono::DateTime::from_timestamp(expires, 0).unwrap_or(now);
    let (location, cookie) =
        match connect.app.services.store.claim_once(&format!("connect-link#{sig}"), &claim, until, now).await {
            Ok(None) => (authorize.to_string(), cookie),
            Ok(Some(earlier)) if now - earlier.at <= DOUBLE_CLICK => {
                let first: serde_json::Value = serde_json::from_str(&earlier.value).unwrap_or_default();
                match (first["location"].as_str(), first["cookie"].as_str()) {
                    (Some(location), Some(cookie)) => (location.to_owned(), cookie.to_owned()),
                    _ => return refused(StatusCode::UNAUTHORIZED, "This Connect to Xero link has already been used."),
                }
            }
            Ok(Some(_)) => {
                return refused(StatusCode::UNAUTHORIZED, "This Connect to Xero link has already been used.");
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the link's use");
                return unavailable();
            }
        };
    tracing::info!(account = %account, "consent started");
    let mut response = redirect(&location);
    let cookie = consent_cookie(&cookie, STATE_LIFETIME.num_seconds());
    response.headers_mut().insert("set-cookie", cookie.parse().expect("a cookie of hex digits is a valid header"));
    response
}
