//! Xero's OAuth callback (`GET /oauth/callback`) and the pick-one-organisation step
//! (`POST /oauth/choose`).
//!
//! The state is consumed first and atomically: an unknown, replayed or expired state ends the
//! flow before anything else happens. The code is exchanged with the PKCE verifier stored with
//! the state, and only this consent's organisations are listed (`authEventId`). The token set is
//! stored before any connection points at it.

mod finish;
mod pages;

use chrono::Duration;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use oauth2::CsrfToken;
use xero_sync_domain::model::{GrantRelease, OrganisationChoice, PendingChoice};
use xero_sync_domain::store::StateRefusal;
use xero_sync_http::{ApiError, CONSENT_COOKIE, consent_binding, no_route, request_cookie};
use xero_sync_runtime::config::OAuthConfig;
use xero_sync_runtime::{App, ConfigError, Env};

pub use finish::Outcome;
use pages::{choose_page, outcome_response, problem_page};

/// How long the pick-one-organisation page stays usable.
pub const CHOICE_LIFETIME: Duration = Duration::minutes(10);

pub struct Callback {
    pub app: App,
    pub oauth: OAuthConfig,
}

impl Callback {
    pub fn new(app: App, env: &Env) -> Result<Self, ConfigError> {
        Ok(Self { app, oauth: OAuthConfig::from(env)? })
    }
}

pub async fn handle(callback: &Callback, request: Request) -> Response<Body> {
    let path = xero_sync_http::request_path(&request);
    let method = request.method().as_str().to_owned();
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/oauth/callback") => oauth_callback(callback, &request).await,
        ("POST", "/oauth/choose") => choose(callback, &request).await,
        (_, "/oauth/callback" | "/oauth/choose") => ApiError::MethodNotAllowed { method }.into_response(),
        _ => no_route(&method, &path).into_response(),
    }
}

/// Random tokens we issue are base64url; anything else cannot be ours and is refused before
/// it reaches DynamoDB.
fn looks_like_our_token(s: &str) -> bool {
    (16..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refusal_page(refusal: StateRefusal) -> Response<Body> {
    match refusal {
        StateRefusal::Unknown => {
            problem_page(StatusCode::BAD_REQUEST, "This sign-in has already been used or was not started here.")
        }
        StateRefusal::Expired => {
            problem_page(StatusCode::BAD_REQUEST, "The sign-in took longer than 10 minutes and has expired.")
        }
    }
}

async fn oauth_callback(callback: &Callback, request: &Request) -> Response<Body> {
    let query = request.query_string_parameters();
    let Some(state) = query.first("state").filter(|s| looks_like_our_token(s)) else {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "Xero's answer is missing its state, so it cannot be matched to a sign-in.",
        );
    };
    // Checked before the state is consumed, so the person who did start it can still finish.
    if request_cookie(request.headers(), CONSENT_COOKIE) != Some(consent_binding(state).as_str()) {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "This sign-in was started in another browser, or this browser blocked its cookie.",
        );
    }
    let app = &callback.app;
    let now = app.now();
    let pending = match app.services.store.consume_oauth_state(state, now).await {
        Ok(Ok(pending)) => pending,
        Ok(Err(refusal)) => return refusal_page(refusal),
        Err(e) => {
            tracing::error!(error = %e, "could not consume the OAuth state");
            return problem_page(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong on our side.");
        }
    };
    let return_to = pending.return_to.as_deref();
    if let Some(error) = query.first("error") {
        // OAuth error codes are short identifiers; anything else in the URL is not repeated
        // into logs or pages.
        let error = if error.len() <= 64 && error.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            error
        } else {
            "unrecognised"
        };
        let outcome = if error == "access_denied" {
            Outcome::Denied
        } else {
            Outcome::Failed { reason: "xero_error", message: format!("Xero reported an error ({error}).") }
        };
        tracing::info!(account = %pending.account_id, error, "consent not given");
        return outcome_response(return_to, &outcome);
    }
    let Some(code) = query.first("code").filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return outcome_response(
            return_to,
            &Outcome::Failed { reason: "missing_code", message: "Xero's answer carried no authorisation code.".into() },
        );
    };
    let grant = match app.xero.exchange_code(&callback.oauth.redirect_uri, code, pending.pkce_verifier, now).await {
        Ok(grant) => grant,
        Err(e) => {
            tracing::warn!(account = %pending.account_id, error = %e, "code exchange failed");
            let outcome =
                Outcome::Failed { reason: "exchange_failed", message: "Xero did not accept the sign-in.".into() };
            return outcome_response(return_to, &outcome);
        }
    };
    // From here the consent holds tokens and Xero connections. Until it completes they are
    // listed for release, so a consent abandoned at the choice, or failing below, leaves nothing
    // at Xero or in the vault once the sweep has been by.
    let release = GrantRelease {
        grant_id: grant.tokens.grant_id,
        account_id: pending.account_id.clone(),
        xero_connection_ids: Vec::new(),
        due_at: now + CHOICE_LIFETIME + Duration::seconds(30),
    };
    let kept = match app.services.store.put_grant_release(&release).await {
        Ok(()) => app.services.vault.store(&grant.tokens).await,
        Err(e) => Err(e),
    };
    if let Err(e) = kept {
        tracing::error!(error = %e, "could not keep the consent's tokens");
        finish::abandon_now(callback, &grant.tokens).await;
        return problem_page(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong on our side.");
    }
    let organisations = match app.xero.connections(&grant.tokens.access_token, Some(grant.tokens.grant_id)).await {
        Ok(list) => list
            .into_iter()
            .filter(|c| c.tenant_type.as_deref().is_none_or(|t| t.eq_ignore_ascii_case("ORGANISATION")))
            .map(|c| OrganisationChoice {
                xero_connection_id: c.id,
                tenant_id: c.tenant_id,
                name: c.tenant_name.unwrap_or_else(|| "Xero organisation".into()),
            })
            .collect::<Vec<_>>(),
        Err(e) => {
            tracing::warn!(account = %pending.account_id, error = %e, "listing the consent's organisations failed");
            let outcome = Outcome::Failed {
                reason: "connections_failed",
                message: "Xero did not list the organisations.".into(),
            };
            return outcome_response(return_to, &outcome);
        }
    };
    if organisations.is_empty() {
        let outcome =
            Outcome::Failed { reason: "no_organisation", message: "No Xero organisation was selected.".into() };
        return outcome_response(return_to, &outcome);
    }
    let notify_email = pending.notify_email.clone().or_else(|| grant.id.and_then(|id| id.email));
    if !callback.oauth.multi_org && organisations.len() > 1 {
        let choice = PendingChoice {
            token: CsrfToken::new_random_len(32).secret().to_owned(),
            account_id: pending.account_id.clone(),
            return_to: pending.return_to.clone(),
            notify_email,
            grant_id: grant.tokens.grant_id,
            organisations,
            browser: consent_binding(state),
            scopes: Some(grant.tokens.scopes.clone()),
            expires_at: now + CHOICE_LIFETIME,
        };
        if let Err(e) = app.services.store.create_choice(&choice).await {
            tracing::error!(error = %e, "could not store the organisation choice");
            return problem_page(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong on our side.");
        }
        return choose_page(&choice);
    }
    let outcome = finish::connect(
        callback,
        &pending.account_id,
        finish::Granted::of(&grant.tokens),
        organisations,
        notify_email,
        now,
    )
    .await;
    finish::released_if_done(callback, grant.tokens.grant_id, &outcome, true).await;
    outcome_response(return_to, &outcome)
}

async fn choose(callback: &Callback, request: &Request) -> Response<Body> {
    let body = xero_sync_http::request_body(request);
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let (Some(token), Some(tenant)) = (form.get("choice"), form.get("tenant_id")) else {
        return problem_page(StatusCode::BAD_REQUEST, "The form is missing the organisation.");
    };
    if !looks_like_our_token(token) {
        return refusal_page(StateRefusal::Unknown);
    }
    let app = &callback.app;
    let now = app.now();
    let Some(browser) = request_cookie(request.headers(), CONSENT_COOKIE) else {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "This choice was started in another browser, or this browser blocked its cookie.",
        );
    };
    let choice = match app.services.store.consume_choice(token, now).await {
        Ok(Ok(choice)) => choice,
        Ok(Err(refusal)) => return refusal_page(refusal),
        Err(e) => {
            tracing::error!(error = %e, "could not consume the organisation choice");
            return problem_page(StatusCode::SERVICE_UNAVAILABLE, "Something went wrong on our side.");
        }
    };
    if choice.browser != browser {
        return problem_page(StatusCode::BAD_REQUEST, "This choice was started in another browser.");
    }
    let (chosen, others): (Vec<_>, Vec<_>) =
        choice.organisations.iter().cloned().partition(|o| o.tenant_id.to_string() == *tenant);
    if chosen.is_empty() {
        return problem_page(StatusCode::BAD_REQUEST, "That organisation was not one of those offered.");
    }
    let dropped = finish::drop_unchosen(callback, choice.grant_id, &others).await;
    if let Err(e) = &dropped {
        // The grant's release (due soon) removes them; the chosen one works meanwhile.
        tracing::warn!(error = %e, "could not remove the organisations not chosen at Xero");
    }
    let granted = finish::Granted { grant: choice.grant_id, scopes: choice.scopes.clone() };
    let outcome =
        finish::connect(callback, &choice.account_id, granted, chosen, choice.notify_email.clone(), now).await;
    finish::released_if_done(callback, choice.grant_id, &outcome, dropped.is_ok()).await;
    outcome_response(choice.return_to.as_deref(), &outcome)
}
