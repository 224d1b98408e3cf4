//! What the page's buttons do, through the same operations as the connection and invoice APIs.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use xero_sync_domain::integration::PageSession;
use xero_sync_domain::model::{ConnectionKey, PlatformInvoiceId};
use xero_sync_http::ApiError;

use crate::forms::Fields;
use crate::status::CardResult;
use crate::text::Text;
use crate::{IntegrationPage, PageError, html, sessions, settings_read};
use xero_sync_domain::signing::verify_page_connect_ticket;

/// What a page that finished a form says at its top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Saved,
    Disconnected,
    Retried,
    Connected,
    NotConnected,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Disconnected => "disconnected",
            Self::Retried => "retried",
            Self::Connected => "connected",
            Self::NotConnected => "not_connected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Saved, Self::Disconnected, Self::Retried, Self::Connected, Self::NotConnected]
            .into_iter()
            .find(|n| n.as_str() == s)
    }

    pub fn text(self, t: &Text) -> (&'static str, bool) {
        match self {
            Self::Saved => (t.saved, true),
            Self::Disconnected => (t.disconnected_notice, true),
            Self::Retried => (t.retried, true),
            Self::Connected => (t.connected_notice, true),
            Self::NotConnected => (t.connect_refused_notice, false),
        }
    }
}

/// The callback's code for why a connect failed (`reason`): a short word, shown as a code and
/// passed on in a URL, so nothing else is taken from the query string.
pub fn is_reason_code(r: &str) -> bool {
    r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub enum Outcome {
    Notice(Notice),
    /// The page drawn again with this result in the connection's card.
    Shown {
        status: StatusCode,
        result: Box<CardResult>,
    },
}

fn shown(status: StatusCode, result: CardResult) -> Outcome {
    Outcome::Shown { status, result: Box::new(result) }
}

pub async fn save_settings(
    page: &IntegrationPage,
    session: &PageSession,
    key: &ConnectionKey,
    fields: &Fields,
) -> Result<Outcome, PageError> {
    let connect = &page.connect;
    let connection = connect::connection(connect, key).await?;
    let version: u64 = fields.one("version").and_then(|v| v.parse().ok()).ok_or_else(|| {
        PageError::refused(StatusCode::BAD_REQUEST, Text::for_locale(&session.context.locale).no_version)
    })?;
    let current = connect.app.services.store.get_settings(key).await?;
    let (submitted, problems) = settings_read::parse(fields, &current.settings, &session.context);
    if !problems.is_empty() {
        return Ok(shown(
            StatusCode::UNPROCESSABLE_ENTITY,
            CardResult::SettingsRefused { problems, submitted, version },
        ));
    }
    match connect::save_settings(connect, &connection, version, &submitted).await {
        Ok(_) => Ok(Outcome::Notice(Notice::Saved)),
        Err(ApiError::Unprocessable(problems)) => {
            Ok(shown(StatusCode::UNPROCESSABLE_ENTITY, CardResult::SettingsRefused { problems, submitted, version }))
        }
        Err(ApiError::Conflict(_)) => Ok(shown(StatusCode::CONFLICT, CardResult::Stale)),
        Err(ApiError::Upstream { message, .. }) => Ok(shown(StatusCode::BAD_GATEWAY, CardResult::Xero(message))),
        Err(e) => Err(e.into()),
    }
}

pub async fn test(page: &IntegrationPage, key: &ConnectionKey) -> Result<Outcome, PageError> {
    let answer = connect::test_now(&page.connect, key).await?;
    let ok = answer["ok"].as_bool().unwrap_or(false);
    let message = if ok {
        answer["organisation"]["name"].as_str().unwrap_or_default().to_owned()
    } else {
        answer["problem"].as_str().unwrap_or_default().to_owned()
    };
    Ok(shown(StatusCode::OK, CardResult::Test { ok, message }))
}

pub async fn validate(page: &IntegrationPage, key: &ConnectionKey) -> Result<Outcome, PageError> {
    let connection = connect::connection(&page.connect, key).await?;
    match connect::validate_now(&page.connect, &connection, &[]).await {
        Ok((problems, _)) => Ok(shown(StatusCode::OK, CardResult::Validate(problems))),
        Err(ApiError::Upstream { message, .. }) => Ok(shown(StatusCode::BAD_GATEWAY, CardResult::Xero(message))),
        Err(e) => Err(e.into()),
    }
}

pub async fn disconnect(page: &IntegrationPage, key: &ConnectionKey) -> Result<Outcome, PageError> {
    connect::disconnect_now(&page.connect, key).await?;
    Ok(Outcome::Notice(Notice::Disconnected))
}

pub async fn retry(
    page: &IntegrationPage,
    key: &ConnectionKey,
    invoice: &PlatformInvoiceId,
) -> Result<Outcome, PageError> {
    match invoice_push::retry::retry_invoice(&page.connect.app, &page.push_queue, key, invoice).await {
        Ok(_) => Ok(Outcome::Notice(Notice::Retried)),
        Err(e) => match ApiError::from(e) {
            e @ (ApiError::Conflict(_) | ApiError::NotFound(_)) => {
                Ok(shown(e.status(), CardResult::RetryRefused(e.to_string())))
            }
            other => Err(other.into()),
        },
    }
}

/// The confirmation a Disconnect asks for, saying what happens.
pub async fn confirm_disconnect(
    page: &IntegrationPage,
    session: &PageSession,
    key: &ConnectionKey,
) -> Result<Response<Body>, PageError> {
    let connection = connect::connection(&page.connect, key).await?;
    let t = Text::for_locale(&session.context.locale);
    let body = format!(
        "<section class=\"card\" aria-labelledby=\"confirm-title\"><h1 id=\"confirm-title\">{}</h1><p><strong>{}</strong></p><p>{}</p>\
         <form method=\"post\" action=\"/integration/connections/{}/disconnect\" class=\"actions\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" class=\"danger\">{}</button>\
         <a class=\"button\" href=\"/integration#org-{}\">{}</a></form></section>",
        html::esc(t.disconnect_title),
        html::esc(&connection.organisation_name),
        html::esc(t.disconnect_explain),
        key.tenant_id,
        html::esc(&session.csrf),
        html::esc(t.disconnect_confirm),
        key.tenant_id,
        html::esc(t.cancel),
    );
    Ok(html::respond(&page.framing, StatusCode::OK, html::document(t, t.disconnect_title, &body, None)))
}

/// Where a connect started from the page ends (`return_to`). In the page's own window the
/// session is there and the page shows again; in a popup opened from an embedded page it is
/// not (the cookie belongs to the embedding site), so the popup tells its opener and closes.
pub async fn connected(page: &IntegrationPage, request: &Request) -> Response<Body> {
    let query = request.query_string_parameters();
    let ok = query.first("xero") == Some("connected");
    let notice = if ok { Notice::Connected } else { Notice::NotConnected };
    // The callback's own code for what went wrong (`reason`): shown as a code, never as markup.
    let reason = query.first("reason").filter(|r| is_reason_code(r)).map(str::to_owned);
    if sessions::current(page, request).await.is_ok() {
        let mut location = format!("/integration?notice={}", notice.as_str());
        if let Some(reason) = &reason {
            location.push_str(&format!("&reason={reason}"));
        }
        return html::see_other(&page.framing, &location, None);
    }
    let t = Text::for_locale("en");
    let (title, body) =
        if ok { (t.connected_title, t.connected_body) } else { (t.not_connected_title, t.not_connected_body) };
    let reason = reason.map(|r| format!("<p>({})</p>", html::esc(&r))).unwrap_or_default();
    let html_body =
        format!("<section class=\"card\"><h1>{}</h1><p>{}</p>{reason}</section>", html::esc(title), html::esc(body));
    html::respond(
        &page.framing,
        StatusCode::OK,
        html::document(t, title, &html_body, Some("/integration/assets/connected.js")),
    )
}

/// `GET /integration/connect`: the page's Connect button. It carries a ticket signed for the
/// account until the session ends, not the session (a popup opened from an embedded page does
/// not send its cookie), and mints a fresh connect link each time, so a page left open for an
/// hour still connects.
pub async fn connect(page: &IntegrationPage, request: &Request) -> Response<Body> {
    let t = Text::for_locale("en");
    let query = request.query_string_parameters();
    let connect = &page.connect;
    let now = connect.app.now();
    let expired =
        || html::message(&page.framing, t, StatusCode::UNAUTHORIZED, t.button_expired, &[t.button_expired_help]);
    let (Some(account), Some(expires), Some(ticket)) =
        (query.first("account"), query.first("expires").and_then(|e| e.parse::<i64>().ok()), query.first("ticket"))
    else {
        return expired();
    };
    if expires <= now.timestamp() || !verify_page_connect_ticket(&connect.secrets, ticket, account, expires) {
        return expired();
    }
    let Some(secret) = connect.secrets.first() else { return expired() };
    let mut base = connect.oauth.redirect_uri.clone();
    base.set_path("/");
    base.set_query(None);
    let back = connect.oauth.integration_page("/connected");
    let link_expires = (now + connect.link_lifetime).timestamp();
    let link = connect::connect_link(&base, secret, account, Some(back.as_str()), None, link_expires);
    html::see_other(&page.framing, link.as_str(), None)
}
