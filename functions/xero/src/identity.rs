//! Xero's identity service: consent, tokens, connections. The OAuth exchanges go through the
//! oauth2 crate with client authentication by HTTP Basic, as Xero requires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet, ExtraTokenFields,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, RevocationUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use xero_sync_domain::model::{GrantId, TenantId, XeroConnectionId};
use xero_sync_domain::secret::PkceVerifier;
use xero_sync_domain::tokens::{AccessToken, RefreshToken, TokenSet};

use crate::{XeroClient, XeroError};

/// Xero adds an OpenID Connect `id_token` to the standard token response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct XeroTokenFields {
    #[serde(default)]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for XeroTokenFields {}

type XeroTokenResponse = StandardTokenResponse<XeroTokenFields, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    XeroTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointSet,
>;

/// What Xero's access token says about itself. Xero signs it; we do not verify the signature
/// because the token came to us directly from Xero over TLS, and Xero verifies it on every call.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    pub authentication_event_id: Uuid,
    #[serde(default)]
    pub xero_userid: Option<Uuid>,
    #[serde(default)]
    pub exp: Option<i64>,
}

/// Who consented, from the OpenID Connect id token; personal data, never logged.
#[derive(Clone, Default, Deserialize)]
pub struct IdClaims {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
}

impl std::fmt::Debug for IdClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdClaims([redacted])")
    }
}

/// The outcome of a consent: its token set and who gave it.
#[derive(Debug)]
pub struct Grant {
    pub tokens: TokenSet,
    pub id: Option<IdClaims>,
}

/// One organisation a grant may reach (`GET /connections`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XeroConnection {
    pub id: XeroConnectionId,
    #[serde(default)]
    pub auth_event_id: Option<Uuid>,
    pub tenant_id: TenantId,
    #[serde(default)]
    pub tenant_type: Option<String>,
    #[serde(default)]
    pub tenant_name: Option<String>,
}

fn jwt_payload<T: for<'de> Deserialize<'de>>(jwt: &str) -> Result<T, XeroError> {
    let payload = jwt.split('.').nth(1).ok_or_else(|| XeroError::Unexpected("token is not a JWT".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| XeroError::Unexpected("JWT payload is not base64url".into()))?;
    // Claims hold the user's email; the parser's message would quote them.
    serde_json::from_slice(&bytes).map_err(|e| {
        XeroError::Unexpected(format!("JWT claims: {}", xero_sync_domain::error::without_values(&e.to_string())))
    })
}

pub fn access_token_claims(token: &AccessToken) -> Result<AccessClaims, XeroError> {
    jwt_payload(token.secret())
}

fn oauth_error(e: RequestTokenError<oauth2::HttpClientError<reqwest::Error>, BasicErrorResponse>) -> XeroError {
    match e {
        RequestTokenError::ServerResponse(r) if *r.error() == BasicErrorResponseType::InvalidGrant => {
            XeroError::InvalidGrant
        }
        RequestTokenError::ServerResponse(r) => XeroError::OAuth(r.error().as_ref().to_owned()),
        // The request may have reached Xero (and rotated the refresh token) before failing; the
        // old refresh token stays valid for Xero's grace period, so retrying is safe.
        RequestTokenError::Request(_) => {
            XeroError::Transport { message: "token request failed".into(), maybe_applied: true }
        }
        // The body holds tokens; the parser's message would quote them.
        RequestTokenError::Parse(e, _) => XeroError::Unexpected(format!(
            "token response: {}",
            xero_sync_domain::error::without_values(&e.to_string())
        )),
        RequestTokenError::Other(m) => XeroError::Unexpected(m),
    }
}

impl XeroClient {
    /// The Xero app's client secret, which only the functions that call the identity service
    /// hold (`App::start`'s `Needs`); elsewhere a call that needs it is refused, never sent.
    fn client_secret(&self) -> Result<&ClientSecret, XeroError> {
        self.config.client_secret.as_ref().ok_or(XeroError::NotConfigured(
            "this function holds no Xero client secret (XERO_CLIENT_SECRET, from XERO_CLIENT_SECRET_ID), \
             so it cannot use Xero's identity service",
        ))
    }

    fn oauth(&self) -> Result<OAuthClient, XeroError> {
        let bad = |e: url::ParseError| XeroError::Unexpected(format!("Xero URL: {e}"));
        let identity = self.config.identity_url.as_str().trim_end_matches('/');
        Ok(oauth2::Client::new(ClientId::new(self.config.client_id.clone()))
            .set_client_secret(self.client_secret()?.clone())
            .set_auth_uri(AuthUrl::new(self.config.authorize_url.to_string()).map_err(bad)?)
            .set_token_uri(TokenUrl::new(format!("{identity}/connect/token")).map_err(bad)?)
            .set_revocation_url(RevocationUrl::new(format!("{identity}/connect/revocation")).map_err(bad)?))
    }

    /// Where to send the user's browser to consent, and the PKCE verifier to keep for the
    /// callback.
    pub fn authorize_url(
        &self,
        redirect_uri: &url::Url,
        scopes: &[String],
        state: &str,
    ) -> Result<(url::Url, PkceVerifier), XeroError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let (url, _) = self
            .oauth()?
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
            .authorize_url(move || CsrfToken::new(state))
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok((url, PkceVerifier::new(verifier.secret().clone())))
    }

    /// Exchanges the callback's code for a token set.
    pub async fn exchange_code(
        &self,
        redirect_uri: &url::Url,
        code: &str,
        verifier: PkceVerifier,
        now: DateTime<Utc>,
    ) -> Result<Grant, XeroError> {
        let response = self
            .oauth()?
            .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()))
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.secret().clone()))
            .request_async(&self.http)
            .await
            .map_err(oauth_error)?;
        let id = response.extra_fields().id_token.as_deref().map(jwt_payload::<IdClaims>).transpose()?;
        let claims = access_token_claims(&AccessToken::new(response.access_token().secret().clone()))?;
        let tokens = token_set(GrantId(claims.authentication_event_id), &response, now, None)?;
        Ok(Grant { tokens, id })
    }

    /// Trades the refresh token for a new set. Xero rotates the refresh token: the returned
    /// set's must be stored before anything else uses it.
    pub async fn refresh(&self, current: &TokenSet, now: DateTime<Utc>) -> Result<TokenSet, XeroError> {
        let response = self
            .oauth()?
            .exchange_refresh_token(&oauth2::RefreshToken::new(current.refresh_token.secret().clone()))
            .request_async(&self.http)
            .await
            .map_err(oauth_error)?;
        token_set(current.grant_id, &response, now, Some(&current.refresh_token))
    }

    /// The organisations a grant reaches, optionally only those of one consent.
    pub async fn connections(
        &self,
        token: &AccessToken,
        auth_event: Option<GrantId>,
    ) -> Result<Vec<XeroConnection>, XeroError> {
        let url = format!("{}/connections", self.config.api_url.as_str().trim_end_matches('/'));
        let mut req = self.http.get(url).bearer_auth(token.secret());
        if let Some(event) = auth_event {
            req = req.query(&[("authEventId", event.to_string())]);
        }
        let response = req.send().await.map_err(|e| XeroError::from_transport(&e, false))?;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|e| XeroError::from_transport(&e, false))?;
        if !status.is_success() {
            return Err(XeroError::from_response(status, &headers, &bytes, "/connections"));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            XeroError::Unexpected(format!("connections: {}", xero_sync_domain::error::without_values(&e.to_string())))
        })
    }
}

fn token_set(
    grant_id: GrantId,
    response: &XeroTokenResponse,
    now: DateTime<Utc>,
    previous_refresh: Option<&RefreshToken>,
) -> Result<TokenSet, XeroError> {
    // Xero always rotates; should it ever not, the old refresh token stays the one to use.
    let refresh_token = response
        .refresh_token()
        .map(|t| RefreshToken::new(t.secret().clone()))
        .or_else(|| previous_refresh.cloned())
        .ok_or_else(|| XeroError::Unexpected("no refresh token (is offline_access in the scopes?)".into()))?;
    let lifetime = response.expires_in().and_then(|d| Duration::from_std(d).ok()).unwrap_or(Duration::minutes(30));
    Ok(TokenSet {
        grant_id,
        access_token: AccessToken::new(response.access_token().secret().clone()),
        refresh_token,
        expires_at: now + lifetime,
        scopes: response.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default(),
        obtained_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        format!("eyJhbGciOiJIUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    #[test]
    fn the_grant_is_read_from_the_access_token() {
        let id = Uuid::new_v4();
        let token = AccessToken::new(jwt(serde_json::json!({"authentication_event_id": id, "exp": 1})));
        assert_eq!(access_token_claims(&token).unwrap().authentication_event_id, id);
    }

    #[test]
    fn a_token_that_is_not_a_jwt_is_an_unexpected_response() {
        assert!(matches!(access_token_claims(&AccessToken::new("opaque".into())), Err(XeroError::Unexpected(_))));
        let no_event = AccessToken::new(jwt(serde_json::json!({"sub": "x"})));
        assert!(access_token_claims(&no_event).is_err());
    }

    #[test]
    fn id_claims_never_print() {
        let claims: IdClaims = jwt_payload(&jwt(serde_json::json!({"email": "owner@example.com"}))).unwrap();
        assert_eq!(claims.email.as_deref(), Some("owner@example.com"));
        assert!(!format!("{claims:?}").contains("owner"));
    }
}
