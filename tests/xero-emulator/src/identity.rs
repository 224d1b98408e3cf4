//! Xero's OAuth 2 identity service: the consent page, the token endpoint with refresh-token
//! rotation, revocation and the connections API.
//!
//! Lifetimes follow https://developer.xero.com/documentation/guides/oauth2/token-types/ :
//! access tokens 30 minutes, authorization codes 5 minutes, refresh tokens 60 days when unused,
//! and a rotated refresh token stays valid for a 30-minute grace period.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::{Reply, Req, escape_html, html, oauth_error, redirect};
use crate::jwt;
use crate::server::Shared;
use crate::state::{AuthCode, Connection, Grant, PendingConsent, RefreshToken, State};

/// How long the consent page stays answerable.
pub const CONSENT_TTL: TimeDelta = TimeDelta::minutes(30);
pub const CODE_TTL: TimeDelta = TimeDelta::minutes(5);
pub const ACCESS_TTL: TimeDelta = TimeDelta::minutes(30);
pub const REFRESH_GRACE: TimeDelta = TimeDelta::minutes(30);
pub const REFRESH_TTL: TimeDelta = TimeDelta::days(60);

pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

fn error_page(status: u16, title: &str, detail: &str) -> Response {
    html(
        status,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Xero emulator - {t}</title>{STYLE}</head>\
             <body><main><h1>{t}</h1><p class=\"error\">{d}</p></main></body></html>",
            t = escape_html(title),
            d = escape_html(detail)
        ),
    )
}

const STYLE: &str = "<style>body{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1e2a35;margin:0}\
main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.3rem;margin-top:0}label{display:block;padding:.5rem 0;border-bottom:1px solid #eee}\
.who{color:#59636c;font-size:.9rem}.error{color:#b00020}.actions{margin-top:1.5rem;display:flex;gap:.75rem}\
button{padding:.6rem 1.4rem;border-radius:4px;border:1px solid #13b5ea;font-size:1rem;cursor:pointer}\
button.approve{background:#13b5ea;color:#fff}button.deny{background:#fff;color:#13b5ea}</style>";

fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

pub fn authorize_get(shared: &Arc<Shared>, req: &Req) -> Response {
    let q = |n: &str| req.query(n).map(str::to_string);
    let (Some(client_id), Some(redirect_uri)) = (q("client_id"), q("redirect_uri")) else {
        return error_page(400, "Invalid request", "client_id and redirect_uri are required.");
    };
    let settings = shared.settings();
    let mut state = shared.lock();
    let Some(client) = state.clients.get(&client_id) else {
        return error_page(400, "Unknown client", "unauthorized_client: the client_id is not registered.");
    };
    if !client.redirect_uris.iter().any(|u| u == &redirect_uri) {
        return error_page(400, "Invalid redirect_uri", "The redirect_uri is not registered for this client.");
    }
    let client_name = client.name.clone();
    let app_state = q("state");
    let fail = |error: &str| {
        let mut params = vec![("error", error)];
        if let Some(s) = &app_state {
            params.push(("state", s));
        }
        redirect(&with_query(&redirect_uri, &params))
    };
    if q("response_type").as_deref() != Some("code") {
        return fail("unsupported_response_type");
    }
    let scope = q("scope").unwrap_or_default();
    if scope.trim().is_empty() {
        return fail("invalid_scope");
    }
    let challenge = q("code_challenge");
    if challenge.is_some() && q("code_challenge_method").as_deref() != Some("S256") {
        return fail("invalid_request");
    }
    let user = match &settings.signed_in_user {
        Some(email) => state.user_by_email(email).cloned(),
        None => state.users.first().cloned(),
    };
    let Some(user) = user else {
        return error_page(400, "No user", "No test user is signed in to the emulator.");
    };
    let now = shared.clock.now();
    let orgs: Vec<(Uuid, String)> =
        user.organisations.iter().filter_map(|id| state.tenant(*id).map(|t| (t.id, t.name.clone()))).collect();
    let pending = PendingConsent {
        client_id,
        redirect_uri,
        scope,
        state: app_state,
        code_challenge: challenge,
        user_id: user.user_id,
        created: now,
    };
    if settings.auto_approve {
        let tenants: Vec<Uuid> = orgs
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| settings.approve_tenants.as_ref().is_none_or(|only| only.contains(id)))
            .collect();
        return approve(&mut state, pending, tenants, now);
    }
    let consent_id = random_token(18);
    state.consents.insert(consent_id.clone(), pending.clone());
    consent_page(&consent_id, &client_name, &user.email, &pending.scope, &orgs, None)
}

fn consent_page(
    consent_id: &str,
    client_name: &str,
    email: &str,
    scope: &str,
    orgs: &[(Uuid, String)],
    error: Option<&str>,
) -> Response {
    let mut boxes = String::new();
    for (i, (id, name)) in orgs.iter().enumerate() {
        boxes.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"tenant\" value=\"{id}\"{}> {}</label>",
            if i == 0 { " checked" } else { "" },
            escape_html(name)
        ));
    }
    let error = error.map(|e| format!("<p class=\"error\">{}</p>", escape_html(e))).unwrap_or_default();
    html(
        200,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Xero emulator - Allow access</title>{STYLE}</head>\
             <body><main><h1>{app} wants to access your Xero data</h1>\
             <p class=\"who\">Signed in as {email}</p><p class=\"who\">Scopes: {scope}</p>{error}\
             <form method=\"post\" action=\"/identity/connect/authorize\">\
             <input type=\"hidden\" name=\"consent_id\" value=\"{consent_id}\">\
             <fieldset style=\"border:0;padding:0\"><legend>Select organisations</legend>{boxes}</fieldset>\
             <div class=\"actions\"><button class=\"approve\" type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
             <button class=\"deny\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button></div>\
             </form></main></body></html>",
            app = escape_html(client_name),
            email = escape_html(email),
            scope = escape_html(scope),
        ),
    )
}

pub fn authorize_post(shared: &Arc<Shared>, req: &Req) -> Response {
    let form = req.form();
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let Some(consent_id) = get("consent_id") else {
        return error_page(400, "Invalid request", "The consent form is missing its id.");
    };
    let now = shared.clock.now();
    let mut state = shared.lock();
    let Some(pending) = state.consents.get(&consent_id).cloned().filter(|p| now <= p.created + CONSENT_TTL) else {
        return error_page(400, "Expired", "This consent request has already been answered or has expired.");
    };
    let user_orgs: Vec<(Uuid, String)> = state
        .users
        .iter()
        .find(|u| u.user_id == pending.user_id)
        .map(|u| u.organisations.iter().filter_map(|id| state.tenant(*id).map(|t| (t.id, t.name.clone()))).collect())
        .unwrap_or_default();
    if get("action").as_deref() != Some("approve") {
        state.consents.remove(&consent_id);
        let mut params = vec![("error", "access_denied")];
        if let Some(s) = &pending.state {
            params.push(("state", s.as_str()));
        }
        return redirect(&with_query(&pending.redirect_uri, &params));
    }
    let chosen: Vec<Uuid> = form
        .iter()
        .filter(|(k, _)| k == "tenant")
        .filter_map(|(_, v)| Uuid::parse_str(v).ok())
        .filter(|id| user_orgs.iter().any(|(o, _)| o == id))
        .collect();
    if chosen.is_empty() {
        let client_name = state.clients.get(&pending.client_id).map(|c| c.name.clone()).unwrap_or_default();
        let email =
            state.users.iter().find(|u| u.user_id == pending.user_id).map(|u| u.email.clone()).unwrap_or_default();
        return consent_page(
            &consent_id,
            &client_name,
            &email,
            &pending.scope,
            &user_orgs,
            Some("Select at least one organisation."),
        );
    }
    state.consents.remove(&consent_id);
    approve(&mut state, pending, chosen, now)
}

fn approve(state: &mut State, pending: PendingConsent, tenants: Vec<Uuid>, now: DateTime<Utc>) -> Response {
    let code = random_token(24);
    state.codes.insert(
        code.clone(),
        AuthCode {
            client_id: pending.client_id,
            redirect_uri: pending.redirect_uri.clone(),
            scope: pending.scope.clone(),
            code_challenge: pending.code_challenge,
            user_id: pending.user_id,
            tenants,
            issued: now,
            used: false,
        },
    );
    let mut params = vec![("code", code.as_str()), ("scope", pending.scope.as_str())];
    if let Some(s) = &pending.state {
        params.push(("state", s.as_str()));
    }
    redirect(&with_query(&pending.redirect_uri, &params))
}

/// The client from HTTP Basic auth (or form fields), `Err` with the OAuth error response.
struct ClientAuth {
    client_id: String,
    authenticated: bool,
}

fn client_auth(state: &State, req: &Req, form: &[(String, String)]) -> Result<ClientAuth, Box<Response>> {
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (id, secret) = match req.header("authorization") {
        Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
            let decoded = STANDARD.decode(h[6..].trim()).ok().and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(Box::new(oauth_error(401, "invalid_client")));
            };
            (id.to_string(), Some(secret.to_string()))
        }
        _ => match get("client_id") {
            Some(id) => (id, get("client_secret")),
            None => return Err(Box::new(oauth_error(401, "invalid_client"))),
        },
    };
    let client = state.clients.get(&id).or_else(|| {
        let decoded = url::form_urlencoded::parse(format!("x={id}").as_bytes()).next().map(|(_, v)| v.into_owned())?;
        state.clients.get(&decoded)
    });
    let Some(client) = client else {
        return Err(Box::new(oauth_error(401, "invalid_client")));
    };
    let id = client.client_id.clone();
    // RFC 6749 section 2.3.1 has clients form-encode id and secret inside Basic auth; many do not.
    let decoded =
        |raw: &str| url::form_urlencoded::parse(format!("x={raw}").as_bytes()).next().map(|(_, v)| v.into_owned());
    match secret {
        Some(s) if s == client.client_secret || decoded(&s).as_deref() == Some(client.client_secret.as_str()) => {
            Ok(ClientAuth { client_id: id, authenticated: true })
        }
        Some(_) => Err(Box::new(oauth_error(401, "invalid_client"))),
        None => Ok(ClientAuth { client_id: id, authenticated: false }),
    }
}

pub fn token(shared: &Arc<Shared>, req: &Req) -> Response {
    let form = req.form();
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let now = shared.clock.now();
    let mut state = shared.lock();
    let client = match client_auth(&state, req, &form) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    match get("grant_type").as_deref() {
        Some("authorization_code") => {
            let Some(code) = get("code") else { return oauth_error(400, "invalid_request") };
            let Some(grant) = state.codes.get_mut(&code) else { return oauth_error(400, "invalid_grant") };
            if grant.used || now > grant.issued + CODE_TTL || grant.client_id != client.client_id {
                grant.used = true;
                return oauth_error(400, "invalid_grant");
            }
            if get("redirect_uri").as_deref() != Some(grant.redirect_uri.as_str()) {
                return oauth_error(400, "invalid_grant");
            }
            match &grant.code_challenge {
                Some(challenge) => {
                    let Some(verifier) = get("code_verifier") else { return oauth_error(400, "invalid_grant") };
                    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
                    if &computed != challenge {
                        return oauth_error(400, "invalid_grant");
                    }
                }
                // Without PKCE only a confidential client (with its secret) may redeem a code.
                None if !client.authenticated => return oauth_error(401, "invalid_client"),
                None => {}
            }
            grant.used = true;
            let code = grant.clone();
            let grant_id = Uuid::new_v4();
            let auth_event_id = Uuid::new_v4();
            state.grants.insert(
                grant_id,
                Grant {
                    client_id: code.client_id.clone(),
                    user_id: code.user_id,
                    scope: code.scope.clone(),
                    auth_event_id,
                    revoked: false,
                },
            );
            for tenant_id in code.tenants {
                match state
                    .connections
                    .iter_mut()
                    .find(|c| c.client_id == code.client_id && c.user_id == code.user_id && c.tenant_id == tenant_id)
                {
                    Some(existing) => {
                        existing.grant_id = grant_id;
                        existing.auth_event_id = auth_event_id;
                        existing.updated = now;
                    }
                    None => state.connections.push(Connection {
                        id: Uuid::new_v4(),
                        tenant_id,
                        client_id: code.client_id.clone(),
                        user_id: code.user_id,
                        grant_id,
                        auth_event_id,
                        created: now,
                        updated: now,
                    }),
                }
            }
            issue_tokens(shared, &mut state, grant_id, now)
        }
        Some("refresh_token") => {
            let Some(token) = get("refresh_token") else { return oauth_error(400, "invalid_request") };
            let Some(rt) = state.refresh_tokens.get(&token).cloned() else { return oauth_error(400, "invalid_grant") };
            let Some(grant) = state.grants.get(&rt.grant_id) else { return oauth_error(400, "invalid_grant") };
            if grant.revoked || grant.client_id != client.client_id {
                return oauth_error(400, "invalid_grant");
            }
            let expired_by_grace = rt.rotated.is_some_and(|at| now > at + REFRESH_GRACE);
            if expired_by_grace || now > rt.issued + REFRESH_TTL {
                return oauth_error(400, "invalid_grant");
            }
            if let Some(stored) = state.refresh_tokens.get_mut(&token) {
                stored.rotated.get_or_insert(now);
            }
            issue_tokens(shared, &mut state, rt.grant_id, now)
        }
        _ => oauth_error(400, "unsupported_grant_type"),
    }
}

fn issue_tokens(shared: &Arc<Shared>, state: &mut State, grant_id: Uuid, now: DateTime<Utc>) -> Response {
    let Some(grant) = state.grants.get(&grant_id).cloned() else { return oauth_error(400, "invalid_grant") };
    let Some(user) = state.users.iter().find(|u| u.user_id == grant.user_id).cloned() else {
        return oauth_error(400, "invalid_grant");
    };
    let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
    let jti = Uuid::new_v4();
    let iss = shared.base_url();
    let access = jwt::encode(
        &shared.jwt_key,
        &json!({
            "nbf": now.timestamp(),
            "exp": (now + ACCESS_TTL).timestamp(),
            "iss": iss,
            "aud": format!("{iss}/resources"),
            "client_id": grant.client_id,
            "sub": user.user_id.simple().to_string(),
            "auth_time": now.timestamp(),
            "xero_userid": user.user_id,
            "global_session_id": grant_id.simple().to_string(),
            "sid": grant_id.simple().to_string(),
            "jti": jti.simple().to_string(),
            "authentication_event_id": grant.auth_event_id,
            "scope": scopes,
            "iat": now.timestamp(),
        }),
    );
    state.access_tokens.insert(jti, grant_id);
    let mut body = json!({
        "access_token": access,
        "expires_in": ACCESS_TTL.num_seconds(),
        "token_type": "Bearer",
        "scope": grant.scope,
    });
    if scopes.contains(&"offline_access") {
        let refresh = random_token(32);
        state.refresh_tokens.insert(refresh.clone(), RefreshToken { grant_id, issued: now, rotated: None });
        body["refresh_token"] = Value::String(refresh);
    }
    if scopes.contains(&"openid") {
        body["id_token"] = Value::String(jwt::encode(
            &shared.jwt_key,
            &json!({
                "nbf": now.timestamp(),
                "exp": (now + TimeDelta::minutes(5)).timestamp(),
                "iss": iss,
                "aud": grant.client_id,
                "iat": now.timestamp(),
                "sub": user.user_id.simple().to_string(),
                "auth_time": now.timestamp(),
                "xero_userid": user.user_id,
                "global_session_id": grant_id.simple().to_string(),
                "preferred_username": user.email,
                "email": user.email,
                "given_name": user.given_name,
                "family_name": user.family_name,
                "name": format!("{} {}", user.given_name, user.family_name).trim().to_string(),
            }),
        ));
    }
    Reply::json(200, body).into_response()
}

pub fn revoke(shared: &Arc<Shared>, req: &Req) -> Response {
    let form = req.form();
    let mut state = shared.lock();
    let client = match client_auth(&state, req, &form) {
        Ok(c) if c.authenticated => c,
        Ok(_) => return oauth_error(401, "invalid_client"),
        Err(resp) => return *resp,
    };
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()) else {
        return oauth_error(400, "invalid_request");
    };
    // RFC 7009: an unknown token is not an error.
    let Some(rt) = state.refresh_tokens.get(&token).cloned() else {
        return Reply { status: 200, body: crate::http::ReplyBody::Empty }.into_response();
    };
    let user_id = match state.grants.get_mut(&rt.grant_id) {
        Some(g) if g.client_id == client.client_id => {
            g.revoked = true;
            g.user_id
        }
        _ => return oauth_error(400, "invalid_grant"),
    };
    state.refresh_tokens.retain(|_, t| t.grant_id != rt.grant_id);
    // Xero's revocation "revokes a user's refresh token and removes all their connections to
    // your app" (XeroAPI/xero-node, revokeToken): every connection of this user and client goes,
    // whichever consent made it.
    state.connections.retain(|c| !(c.user_id == user_id && c.client_id == client.client_id));
    Reply { status: 200, body: crate::http::ReplyBody::Empty }.into_response()
}

/// Who a bearer token speaks for.
#[derive(Clone, Debug)]
pub struct TokenCtx {
    pub client_id: String,
    pub user_id: Uuid,
    /// What the grant's consent allowed, space-separated.
    pub scope: String,
}

pub fn authenticate(shared: &Shared, state: &State, req: &Req) -> Result<TokenCtx, Reply> {
    let unauthorized = |detail: &str| Reply::problem(401, "Unauthorized", detail);
    let Some(token) = req
        .header("authorization")
        .filter(|h| h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer "))
        .map(|h| h[7..].trim())
    else {
        return Err(unauthorized("AuthenticationUnsuccessful"));
    };
    let claims = jwt::decode(&shared.jwt_key, token).ok_or_else(|| unauthorized("AuthenticationUnsuccessful"))?;
    let now = shared.clock.now().timestamp();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    if now >= exp {
        return Err(unauthorized(&format!(
            "TokenExpired: token expired at {}",
            DateTime::<Utc>::from_timestamp(exp, 0).unwrap_or_default().format("%m/%d/%Y %H:%M:%S")
        )));
    }
    if claims["nbf"].as_i64().unwrap_or(i64::MAX) > now {
        return Err(unauthorized("AuthenticationUnsuccessful"));
    }
    let jti = claims["jti"].as_str().and_then(|s| Uuid::parse_str(s).ok());
    let grant_id = jti.and_then(|j| state.access_tokens.get(&j)).copied();
    let grant = grant_id.and_then(|g| state.grants.get(&g).map(|grant| (g, grant)));
    match grant {
        Some((_, g)) if !g.revoked => {
            Ok(TokenCtx { client_id: g.client_id.clone(), user_id: g.user_id, scope: g.scope.clone() })
        }
        _ => Err(unauthorized("AuthenticationUnsuccessful")),
    }
}

pub fn connected_tenants(state: &State, ctx: &TokenCtx) -> Vec<Uuid> {
    state
        .connections
        .iter()
        .filter(|c| c.client_id == ctx.client_id && c.user_id == ctx.user_id)
        .map(|c| c.tenant_id)
        .collect()
}

pub(crate) fn connection_json(state: &State, c: &Connection) -> Value {
    let fmt = crate::util::dotnet_time;
    json!({
        "id": c.id,
        "authEventId": c.auth_event_id,
        "tenantId": c.tenant_id,
        "tenantType": "ORGANISATION",
        "tenantName": state.tenant(c.tenant_id).map(|t| t.name.clone()).unwrap_or_default(),
        "createdDateUtc": fmt(c.created),
        "updatedDateUtc": fmt(c.updated),
    })
}

pub fn connections(shared: &Arc<Shared>, req: &Req) -> Reply {
    let mut state = shared.lock();
    let ctx = match authenticate(shared, &state, req) {
        Ok(ctx) => ctx,
        Err(reply) => return reply,
    };
    let mine = |c: &Connection| c.client_id == ctx.client_id && c.user_id == ctx.user_id;
    match (req.method.as_str(), req.segs.get(1)) {
        ("GET", None) => {
            let filter = match req.query("authEventId") {
                Some(s) => match Uuid::parse_str(s) {
                    Ok(id) => Some(id),
                    Err(_) => return Reply::problem(400, "Bad Request", "authEventId must be a GUID"),
                },
                None => None,
            };
            let list: Vec<Value> = state
                .connections
                .iter()
                .filter(|c| mine(c) && filter.is_none_or(|f| c.auth_event_id == f))
                .map(|c| connection_json(&state, c))
                .collect();
            Reply::json(200, Value::Array(list))
        }
        ("DELETE", Some(id)) => {
            let id = Uuid::parse_str(id).ok();
            let before = state.connections.len();
            state.connections.retain(|c| !(Some(c.id) == id && mine(c)));
            if state.connections.len() < before {
                Reply { status: 204, body: crate::http::ReplyBody::Empty }
            } else {
                Reply::problem(404, "Not Found", "Connection not found")
            }
        }
        _ => Reply::problem(405, "Method Not Allowed", "Method not allowed"),
    }
}
