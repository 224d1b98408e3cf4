//! Opening the page: the platform's signed call makes a single-use URL; the browser that opens
//! it gets a session cookie and the URL is spent. The cookie is `SameSite=None; Partitioned` so
//! that it works inside the platform's iframe (third-party cookies are partitioned by the
//! embedding site, as Chrome's CHIPS has it) and `__Host-` so no other host can set it.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use oauth2::CsrfToken;
use serde_json::json;
use subtle::ConstantTimeEq;
use url::Url;
use xero_sync_domain::digest::sha256_hex;
use xero_sync_domain::integration::{OFFER_LIFETIME, PageContext, PageSession, SESSION_LIFETIME, SessionOffer};
use xero_sync_domain::model::AccountId;
use xero_sync_domain::problem::Problem;
use xero_sync_domain::store::StateRefusal;
use xero_sync_http::{ApiError, json, request_body, request_cookie};

use crate::text::Text;
use crate::{IntegrationPage, PageError, html};

pub const SESSION_COOKIE: &str = "__Host-xero-sync-page";
/// A session call's body: the context is a few kilobytes even for a long tax table.
const MAX_BODY: usize = 256 * 1024;

fn random_token() -> String {
    CsrfToken::new_random_len(32).secret().to_owned()
}

/// `POST /accounts/{account}/integration-sessions`, signed by the platform.
pub async fn create(page: &IntegrationPage, request: &Request, account: &str) -> Result<Response<Body>, ApiError> {
    let connect = &page.connect;
    xero_sync_http::verify_api_request(request, &connect.secrets, connect.app.now())?;
    let account =
        AccountId::parse(account).map_err(|e| ApiError::BadRequest(vec![Problem::new("account", e.to_string())]))?;
    let body = request_body(request);
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let mut context: PageContext = xero_sync_http::parse_json(body).map_err(|p| ApiError::BadRequest(vec![p]))?;
    let mut problems = context.problems();
    if let Some(raw) = &context.return_url {
        match Url::parse(raw) {
            // Kept as parsed: what the page links to is exactly what was checked.
            Ok(url) if connect.oauth.return_to_allowed(&url) => context.return_url = Some(url.to_string()),
            _ => problems.push(Problem::new("return_url", "is not an address under RETURN_TO_ALLOWLIST")),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::BadRequest(problems));
    }
    let token = random_token();
    let now = connect.app.now();
    let offer = SessionOffer {
        token_digest: sha256_hex(&token),
        account_id: account.clone(),
        context,
        expires_at: now + OFFER_LIFETIME,
    };
    page.sessions.create_offer(&offer).await?;
    let mut url = connect.oauth.integration_page("");
    url.query_pairs_mut().append_pair("session", &token);
    tracing::info!(account = %account, "integration page session offered");
    Ok(json(
        StatusCode::CREATED,
        &json!({ "url": url.as_str(), "expires_at": xero_sync_domain::time::format(offer.expires_at) }),
    ))
}

/// `GET /integration?session=…`: spends the URL, starts the browser's session and shows the
/// page at its plain address (so the token is not left in the history or a Referer).
pub async fn open(page: &IntegrationPage, token: &str) -> Response<Body> {
    let t = Text::for_locale("en");
    let now = page.connect.app.now();
    let refused =
        |title: &str| html::message(&page.framing, t, StatusCode::UNAUTHORIZED, title, &[t.link_invalid_help]);
    let offer = match page.sessions.consume_offer(&sha256_hex(token), now).await {
        Ok(Ok(offer)) => offer,
        Ok(Err(StateRefusal::Expired)) => return refused(t.link_expired),
        Ok(Err(StateRefusal::Unknown)) => return refused(t.link_used),
        Err(e) => return PageError::from(e).into_response(&page.framing),
    };
    let id = random_token();
    let session = PageSession {
        id_digest: sha256_hex(&id),
        account_id: offer.account_id,
        context: offer.context,
        csrf: random_token(),
        expires_at: now + SESSION_LIFETIME,
    };
    if let Err(e) = page.sessions.create_session(&session).await {
        return PageError::from(e).into_response(&page.framing);
    }
    tracing::info!(account = %session.account_id, "integration page opened");
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=None; Partitioned",
        SESSION_LIFETIME.num_seconds()
    );
    html::see_other(&page.framing, "/integration", Some(cookie))
}

/// The browser's session, from its cookie.
pub async fn current(page: &IntegrationPage, request: &Request) -> Result<PageSession, PageError> {
    let id = request_cookie(request.headers(), SESSION_COOKIE).ok_or(PageError::NoSession)?;
    page.sessions.get_session(&sha256_hex(id), page.connect.app.now()).await?.ok_or(PageError::NoSession)
}

/// The `session` query parameter, when the request opens a new session.
pub fn offered_token(request: &Request) -> Option<String> {
    request.query_string_parameters().first("session").map(str::to_owned)
}

/// A form's `csrf` field must be this session's token.
pub fn check_csrf(session: &PageSession, sent: Option<&str>) -> Result<(), PageError> {
    match sent {
        Some(sent) if bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) => Ok(()),
        _ => Err(PageError::Forgery),
    }
}
