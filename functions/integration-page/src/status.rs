//! The page: a card for each organisation the account connected, with its status, what its
//! consent allows, its buttons, its settings and its sync log.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use xero_sync_domain::integration::PageSession;
use xero_sync_domain::model::{Connection, ConnectionStatus, TenantId};
use xero_sync_domain::problem::Problem;
use xero_sync_domain::scopes::{Feature, features};
use xero_sync_domain::settings::ConnectionSettings;

use crate::actions::Notice;
use crate::html::esc;
use crate::log::LogQuery;
use crate::settings_form::{self, FormInput, Problems};
use crate::settings_read;
use crate::text::Text;
use crate::{IntegrationPage, PageError, html};

/// What a form left to show in one card.
pub enum CardResult {
    Test {
        ok: bool,
        message: String,
    },
    Validate(Vec<Problem>),
    SettingsRefused {
        problems: Vec<Problem>,
        submitted: ConnectionSettings,
        version: u64,
    },
    Stale,
    /// Xero could not be asked (its limits, an outage): its words.
    Xero(String),
    RetryRefused(String),
}

/// How to draw the page this time.
#[derive(Default)]
pub struct View {
    pub notice: Option<Notice>,
    /// Why a connect failed, as the callback's code.
    pub reason: Option<String>,
    pub result: Option<(TenantId, CardResult)>,
    pub log: LogQuery,
}

impl View {
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            notice: get("notice").and_then(|n| Notice::parse(&n)),
            reason: get("reason").filter(|r| crate::actions::is_reason_code(r)),
            result: None,
            log: LogQuery::from_query(&get),
        }
    }
}

pub async fn page(
    page: &IntegrationPage,
    session: &PageSession,
    view: View,
    status: StatusCode,
) -> Result<Response<Body>, PageError> {
    let t = Text::for_locale(&session.context.locale);
    let connections = page.connect.app.services.store.account_connections(&session.account_id).await?;
    let mut body = String::from("<div class=\"top\"><div>");
    body.push_str(&format!(
        "<h1>{}</h1><p class=\"who\">{} {}, {} {}</p></div>",
        esc(t.title),
        esc(t.signed_in_as),
        esc(&session.context.user_display_name),
        esc(t.account),
        esc(session.account_id.as_str())
    ));
    if let Some(back) = &session.context.return_url {
        body.push_str(&format!("<a href=\"{}\" target=\"_top\">{}</a>", esc(back), esc(t.back_to_platform)));
    }
    body.push_str("</div>");
    if let Some(notice) = view.notice {
        let (words, good) = notice.text(t);
        let class = if good { "ok" } else { "problem" };
        let reason = view.reason.as_deref().filter(|_| !good).map(|r| format!(" ({})", esc(r))).unwrap_or_default();
        body.push_str(&format!("<p class=\"notice {class}\" role=\"status\">{}{reason}</p>", esc(words)));
    }
    if connections.is_empty() {
        body.push_str(&format!(
            "<section class=\"card\"><p>{}</p>{}</section>",
            esc(t.no_connection),
            connect_button(page, session, t, t.connect)
        ));
    }
    for connection in &connections {
        let result = view.result.as_ref().filter(|(tenant, _)| *tenant == connection.tenant_id).map(|(_, r)| r);
        body.push_str(&card(page, session, t, connection, result, &view.log).await?);
    }
    // One organisation per account unless MULTI_ORG: its card's Reconnect is the way back.
    if !connections.is_empty() && page.connect.oauth.multi_org {
        body.push_str(&format!("<p>{}</p>", connect_button(page, session, t, t.connect_another)));
    }
    Ok(html::respond(&page.framing, status, html::document(t, t.title, &body, Some("/integration/assets/page.js"))))
}

/// Connect (or reconnect): a link to the page's own `/integration/connect`, which mints a fresh
/// connect link when clicked (one made now would expire while the page stays open). It carries
/// a ticket signed for the account until the session ends instead of the session, since from
/// an embedded page it opens a popup (see page.js), where the session's cookie is not sent.
fn connect_button(page: &IntegrationPage, session: &PageSession, t: &Text, label: &str) -> String {
    let connect = &page.connect;
    let Some(secret) = connect.secrets.first() else { return String::new() };
    let expires = session.expires_at.timestamp();
    let account = session.account_id.as_str();
    let ticket = xero_sync_domain::signing::page_connect_ticket(secret, account, expires);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("account", account)
        .append_pair("expires", &expires.to_string())
        .append_pair("ticket", &ticket)
        .finish();
    format!(
        "<a class=\"button xero connect\" href=\"/integration/connect?{}\" target=\"_top\">{}<span class=\"sr-only\"> {}</span></a>",
        esc(&query),
        esc(label),
        esc(t.opens_in_new_window)
    )
}

fn post_button(session: &PageSession, tenant: TenantId, action: &str, label: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/integration/connections/{tenant}/{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">{}</button></form>",
        esc(&session.csrf),
        esc(label)
    )
}

async fn card(
    page: &IntegrationPage,
    session: &PageSession,
    t: &'static Text,
    c: &Connection,
    result: Option<&CardResult>,
    log: &LogQuery,
) -> Result<String, PageError> {
    let tenant = c.tenant_id;
    let status_class = c.status.as_str().to_lowercase();
    let mut out = format!(
        "<section class=\"card\" id=\"org-{tenant}\" aria-labelledby=\"org-{tenant}-name\"><div class=\"card-head\">\
         <h2 id=\"org-{tenant}-name\">{}</h2><span class=\"badge {status_class}\">{}</span></div>",
        esc(&c.organisation_name),
        esc(t.status(c.status))
    );
    if c.status == ConnectionStatus::NeedsReconnect {
        out.push_str(&format!("<p>{}</p>", esc(t.needs_reconnect_help)));
    }
    out.push_str("<dl class=\"facts\">");
    let last_sync = c.last_sync_at.map(|at| t.when(at)).unwrap_or_else(|| t.never.to_owned());
    out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(t.last_sync), esc(&last_sync)));
    if c.status.is_live() {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(t.connected_since), esc(&t.when(c.connected_at))));
    } else {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(t.status(c.status)), esc(&t.when(c.status_changed_at))));
    }
    if let Some(error) = &c.last_error {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(t.last_error), esc(error)));
    }
    out.push_str("</dl>");

    let granted = connect::granted_scopes(&page.connect, c).await?;
    let missing: Vec<Feature> = match &granted {
        Some(scopes) => Feature::ALL.into_iter().filter(|f| !f.allowed_by(scopes)).collect(),
        None => Vec::new(),
    };
    if let Some(scopes) = &granted {
        if c.status.is_live() {
            out.push_str("<div class=\"features\"><div>");
            out.push_str(&format!("<h3>{}</h3><ul>", esc(t.allowed)));
            for f in features(scopes) {
                out.push_str(&format!("<li>{}</li>", esc(t.feature(f))));
            }
            out.push_str("</ul></div>");
            if !missing.is_empty() {
                out.push_str(&format!("<div><h3>{}</h3><ul>", esc(t.not_allowed)));
                for f in &missing {
                    out.push_str(&format!("<li>{}</li>", esc(t.feature(*f))));
                }
                out.push_str("</ul></div>");
            }
            out.push_str("</div>");
        }
    }

    out.push_str("<div class=\"actions\">");
    if c.status != ConnectionStatus::Connected {
        out.push_str(&connect_button(page, session, t, t.reconnect));
    } else if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|f| t.feature(*f)).collect();
        out.push_str(&connect_button(page, session, t, &format!("{}: {}", t.reconnect_for_features, names.join(", "))));
    }
    if c.status == ConnectionStatus::Connected {
        out.push_str(&post_button(session, tenant, "test", t.test));
        out.push_str(&post_button(session, tenant, "validate", t.validate));
    }
    if c.status.is_live() {
        out.push_str(&format!(
            "<a class=\"button disconnect\" href=\"/integration/connections/{tenant}/disconnect\">{}</a>",
            esc(t.disconnect)
        ));
    }
    out.push_str("</div>");

    let mut problems = Problems::new();
    let mut refused: Option<(&ConnectionSettings, u64)> = None;
    out.push_str("<div role=\"status\">");
    match result {
        Some(CardResult::Test { ok: true, message }) => {
            out.push_str(&format!("<p class=\"notice ok\">{} {}</p>", esc(t.test_ok), esc(message)))
        }
        Some(CardResult::Test { ok: false, message }) => {
            out.push_str(&format!("<p class=\"notice problem\">{}: {}</p>", esc(t.test_failed), esc(message)))
        }
        Some(CardResult::Validate(list)) if list.is_empty() => {
            out.push_str(&format!("<p class=\"notice ok\">{}</p>", esc(t.validate_ok)))
        }
        Some(CardResult::Validate(list)) => {
            out.push_str(&format!("<div class=\"notice problem\"><p>{}:</p><ul>", esc(t.validate_failed)));
            for p in list {
                out.push_str(&format!("<li>{}: {}</li>", esc(&p.field), esc(&p.message)));
            }
            out.push_str("</ul></div>");
        }
        Some(CardResult::SettingsRefused { problems: list, submitted, version }) => {
            out.push_str(&format!("<p class=\"notice problem\">{}</p>", esc(t.not_saved)));
            for p in list {
                let field = settings_read::field_of(p, submitted).unwrap_or_default();
                problems.entry(field).or_default().push(p.clone());
            }
            refused = Some((submitted, *version));
        }
        Some(CardResult::Stale) => out.push_str(&format!("<p class=\"notice problem\">{}</p>", esc(t.stale))),
        Some(CardResult::Xero(message)) | Some(CardResult::RetryRefused(message)) => {
            out.push_str(&format!("<p class=\"notice problem\">{}</p>", esc(message)))
        }
        None => {}
    }
    out.push_str("</div>");

    if c.status == ConnectionStatus::Connected && granted.as_ref().is_none_or(|s| Feature::Settings.allowed_by(s)) {
        out.push_str(&settings(page, session, t, c, refused, &problems).await?);
    }
    out.push_str(&crate::log::render(page, session, t, c, log).await?);
    out.push_str("</section>");
    Ok(out)
}

async fn settings(
    page: &IntegrationPage,
    session: &PageSession,
    t: &'static Text,
    c: &Connection,
    refused: Option<(&ConnectionSettings, u64)>,
    problems: &Problems,
) -> Result<String, PageError> {
    let connect = &page.connect;
    // Xero unreachable, its limits reached, the grant refused: the card keeps its status, log
    // and buttons, and says why the settings are missing.
    let data = match connect::reference_data(connect, c, true).await {
        Ok((data, _)) => data,
        Err(e) if !matches!(e, xero_sync_http::ApiError::Internal(_)) => {
            return Ok(format!(
                "<h3>{}</h3><p class=\"notice problem\">{}: {}</p>",
                esc(t.settings),
                esc(t.settings_unavailable),
                esc(&e.to_string())
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let saved = connect.app.services.store.get_settings(&c.key()).await?;
    let (settings, version) = refused.unwrap_or((&saved.settings, saved.version));
    // Without the groups (Xero could not list them) the contacts choice is not drawn, and a save
    // keeps it as it is.
    let groups = match connect::contacts_allowed(c) {
        true => xero_sync_runtime::contact_groups::listed(&connect.app, c).await.ok().map(|g| g.groups),
        false => None,
    };
    Ok(settings_form::render(&FormInput {
        text: t,
        action: format!("/integration/connections/{}/settings", c.tenant_id),
        csrf: &session.csrf,
        version,
        settings,
        context: &session.context,
        data: &data,
        groups: groups.as_deref(),
        problems,
    }))
}
