//! The page's routes under `/integration`: the page itself, and the forms it posts. Every post
//! needs the session and its CSRF token; every answer is HTML.

use std::collections::HashMap;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use xero_sync_domain::integration::PageSession;
use xero_sync_domain::model::{ConnectionKey, PlatformInvoiceId, TenantId};
use xero_sync_http::request_body;

use crate::actions::{self, Outcome};
use crate::status::{self, View};
use crate::text::Text;
use crate::{IntegrationPage, PageError, html, sessions};

/// A form's fields as the browser sent them (`application/x-www-form-urlencoded`), indexed
/// once by name: a form names hundreds of fields at most, but a post may carry any number.
#[derive(Debug, Default)]
pub struct Fields {
    pairs: Vec<(String, String)>,
    by_name: HashMap<String, Vec<usize>>,
}

/// Far more than the largest settings form; a post beyond it is not ours.
const MAX_FORM: usize = 128 * 1024;

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (name, _)) in pairs.iter().enumerate() {
            by_name.entry(name.clone()).or_default().push(i);
        }
        Self { pairs, by_name }
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.many(name).next()
    }

    pub fn many<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.by_name.get(name).into_iter().flatten().map(|&i| self.pairs[i].1.as_str())
    }

    pub fn all(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

pub async fn handle(page: &IntegrationPage, request: &Request, method: &str, rest: &[&str]) -> Response<Body> {
    if let (Some(token), "GET", []) = (sessions::offered_token(request), method, rest) {
        return sessions::open(page, &token).await;
    }
    match route(page, request, method, rest).await {
        Ok(response) => response,
        Err(e) => e.into_response(&page.framing),
    }
}

async fn route(
    page: &IntegrationPage,
    request: &Request,
    method: &str,
    rest: &[&str],
) -> Result<Response<Body>, PageError> {
    let session = sessions::current(page, request).await?;
    let t = Text::for_locale(&session.context.locale);
    let query = request.query_string_parameters();
    match (method, rest) {
        ("GET", []) => {
            let view = View::from_query(|name| query.first(name).map(str::to_owned));
            status::page(page, &session, view, StatusCode::OK).await
        }
        ("GET", ["connections", tenant, "disconnect"]) => {
            let key = key(&session, tenant)?;
            actions::confirm_disconnect(page, &session, &key).await
        }
        ("POST", ["connections", tenant, action @ ..]) => {
            let body = request_body(request);
            if body.len() > MAX_FORM {
                return Err(PageError::refused(StatusCode::PAYLOAD_TOO_LARGE, t.form_too_large));
            }
            let fields = Fields::parse(body);
            sessions::check_csrf(&session, fields.one("csrf"))?;
            let key = key(&session, tenant)?;
            let outcome = match action {
                ["settings"] => actions::save_settings(page, &session, &key, &fields).await?,
                ["test"] => actions::test(page, &key).await?,
                ["validate"] => actions::validate(page, &key).await?,
                ["disconnect"] => actions::disconnect(page, &key).await?,
                ["invoices", invoice, "retry"] => {
                    let invoice = PlatformInvoiceId::parse(*invoice)
                        .map_err(|_| PageError::refused(StatusCode::BAD_REQUEST, t.not_an_invoice))?;
                    actions::retry(page, &key, &invoice).await?
                }
                _ => return Err(PageError::refused(StatusCode::NOT_FOUND, t.no_such_page)),
            };
            respond(page, &session, key.tenant_id, outcome).await
        }
        _ => Err(PageError::refused(StatusCode::NOT_FOUND, t.no_such_page)),
    }
}

/// A form's result: a notice after a redirect (so a reload does not post again), or the page
/// drawn again with what the form showed (a test's answer, the problems of a refused save).
async fn respond(
    page: &IntegrationPage,
    session: &PageSession,
    tenant: TenantId,
    outcome: Outcome,
) -> Result<Response<Body>, PageError> {
    match outcome {
        Outcome::Notice(notice) => {
            Ok(html::see_other(&page.framing, &format!("/integration?notice={}#org-{tenant}", notice.as_str()), None))
        }
        Outcome::Shown { status, result } => {
            let view = View { result: Some((tenant, *result)), ..View::default() };
            status::page(page, session, view, status).await
        }
    }
}

/// A connection of the session's account: the account comes from the session, never the form.
fn key(session: &PageSession, tenant: &str) -> Result<ConnectionKey, PageError> {
    let tenant_id = TenantId::parse(tenant).map_err(|_| {
        PageError::refused(StatusCode::BAD_REQUEST, Text::for_locale(&session.context.locale).not_an_organisation)
    })?;
    Ok(ConnectionKey { account_id: session.account_id.clone(), tenant_id })
}
