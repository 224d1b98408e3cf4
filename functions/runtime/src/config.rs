//! Configuration, read once per process from the environment.
//!
//! A missing or malformed variable fails at start-up with its name, never halfway through an
//! invocation. AWS endpoints are deliberately absent: the SDK reads its own standard variables
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), so local runs against moto need no special code path.

use std::collections::HashMap;
use std::str::FromStr;

use oauth2::ClientSecret;
use url::Url;
use xero_sync_domain::governor::GovernorLimits;
pub use xero_sync_xero::XeroConfig;

/// Xero's production endpoints, overridable so the emulator can stand in for them.
pub const DEFAULT_XERO_AUTHORIZE_URL: &str = "https://login.xero.com/identity/connect/authorize";
pub const DEFAULT_XERO_IDENTITY_URL: &str = "https://identity.xero.com";
pub const DEFAULT_XERO_API_URL: &str = "https://api.xero.com";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    /// A secret the function needs, neither named through its `*_ID` variable (in AWS) nor set
    /// directly (local runs and tests).
    #[error("missing environment variable {id} (the Secrets Manager secret holding {name}; or {name} itself)")]
    MissingSecret { name: &'static str, id: &'static str },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Where configuration values come from: the process environment in Lambda, a map in tests.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn process() -> Self {
        Self { vars: std::env::vars().collect() }
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// Sets (or replaces) one variable: how secrets fetched at start-up join the rest.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// Drops one variable: how a function lets go of a secret it does not use.
    pub fn remove(&mut self, name: &str) {
        self.vars.remove(name);
    }

    /// A set but empty variable counts as missing: an empty table name or secret is never meant.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// `true` or `false`; absent is `false`.
    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.optional(name).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ConfigError::Invalid { name, reason: "must be true or false".into() }),
        }
    }

    /// A URL; with an empty default the variable is required.
    pub fn url_or(&self, name: &'static str, default: &str) -> Result<Url, ConfigError> {
        let raw = match self.optional(name) {
            Some(raw) => raw,
            None if default.is_empty() => return Err(ConfigError::Missing(name)),
            None => default.to_owned(),
        };
        let url = Url::parse(&raw).map_err(|e| ConfigError::Invalid { name, reason: e.to_string() })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid { name, reason: format!("scheme {} is not http(s)", url.scheme()) });
        }
        Ok(url)
    }

    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid { name, reason: e.to_string() }),
        }
    }

    /// A comma-separated list; blanks between commas are dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.optional(name)
            .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }
}

/// The AWS resources this deployment owns (the SAM template passes their names in).
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table_name: String,
    /// Every grant's secret is named `{secret_prefix}{grant id}`; IAM policies are scoped to it.
    pub secret_prefix: String,
    pub event_bus_name: String,
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// A verified SES identity.
    pub from: String,
    pub reply_to: Option<String>,
}

fn is_local(url: &Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// Tokens and client secrets travel to these URLs: plain HTTP only to this machine (the emulator).
fn secure(url: Url, name: &'static str) -> Result<Url, ConfigError> {
    if url.scheme() == "https" || is_local(&url) {
        Ok(url)
    } else {
        Err(ConfigError::Invalid { name, reason: "must be https (plain http is for localhost only)".into() })
    }
}

/// Xero's granular scopes for apps created from March 2026 on; older apps set `XERO_SCOPES` to
/// the broad ones (`accounting.transactions accounting.contacts accounting.settings ...`).
pub const DEFAULT_XERO_SCOPES: &str = "openid profile email offline_access accounting.contacts accounting.invoices \
     accounting.payments accounting.settings.read accounting.attachments";

/// Where the hosted integration page lives on this deployment's API, beside `/oauth/callback`.
pub const INTEGRATION_PAGE_PATH: &str = "/integration";

/// What the consent flow needs (the connect link and the OAuth callback).
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// This deployment's `GET /oauth/callback`, registered with the Xero app.
    pub redirect_uri: Url,
    pub scopes: Vec<String>,
    /// URL prefixes a connect link may return to; anything else is refused (no open redirect).
    pub return_to_allowlist: Vec<Url>,
    /// Whether one account may keep several organisations ("multiple financial companies").
    pub multi_org: bool,
}

impl OAuthConfig {
    /// The integration page's address on this deployment (the callback's origin).
    pub fn integration_page(&self, path: &str) -> Url {
        let mut url = self.redirect_uri.clone();
        url.set_path(&format!("{INTEGRATION_PAGE_PATH}{path}"));
        url.set_query(None);
        url
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let mut return_to_allowlist = Vec::new();
        for raw in env.list("RETURN_TO_ALLOWLIST") {
            let url = Url::parse(&raw)
                .map_err(|e| ConfigError::Invalid { name: "RETURN_TO_ALLOWLIST", reason: format!("{raw}: {e}") })?;
            if url.scheme() != "https" && !is_local(&url) {
                return Err(ConfigError::Invalid {
                    name: "RETURN_TO_ALLOWLIST",
                    reason: format!("{raw} is not https (only localhost may use http)"),
                });
            }
            return_to_allowlist.push(url);
        }
        let scopes = env.optional("XERO_SCOPES").unwrap_or_else(|| DEFAULT_XERO_SCOPES.into());
        let scopes: Vec<String> = scopes.split_whitespace().map(str::to_owned).collect();
        if !scopes.iter().any(|s| s == "offline_access") {
            return Err(ConfigError::Invalid { name: "XERO_SCOPES", reason: "must include offline_access".into() });
        }
        Ok(Self {
            redirect_uri: env.url_or("OAUTH_REDIRECT_URI", "")?,
            scopes,
            return_to_allowlist,
            multi_org: env.parse_or("MULTI_ORG", false)?,
        })
    }

    /// Same scheme, host and port as an allowed prefix, and a path under it.
    pub fn return_to_allowed(&self, candidate: &Url) -> bool {
        if candidate.username() != "" || candidate.password().is_some() {
            return false;
        }
        // The integration page's own (re)connect comes back to it, on this deployment's API.
        let own_page = candidate.origin() == self.redirect_uri.origin()
            && path_is_under(candidate.path(), &format!("{INTEGRATION_PAGE_PATH}/"));
        own_page
            || self.return_to_allowlist.iter().any(|allowed| {
                allowed.scheme() == candidate.scheme()
                    && allowed.host_str() == candidate.host_str()
                    && allowed.port_or_known_default() == candidate.port_or_known_default()
                    && path_is_under(candidate.path(), allowed.path())
            })
    }
}

fn path_is_under(path: &str, prefix: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix)
    } else {
        path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
    }
}

/// The secrets the platform signs with; more than one while rotating.
pub fn platform_signing_secrets(env: &Env) -> Result<Vec<xero_sync_domain::signing::SigningSecret>, ConfigError> {
    let secrets = env.list("PLATFORM_SIGNING_SECRETS");
    if secrets.is_empty() {
        return Err(ConfigError::Missing("PLATFORM_SIGNING_SECRETS"));
    }
    if secrets.iter().any(|s| s.len() < 32) {
        return Err(ConfigError::Invalid {
            name: "PLATFORM_SIGNING_SECRETS",
            reason: "each secret must be at least 32 characters".into(),
        });
    }
    Ok(secrets.into_iter().map(|s| xero_sync_domain::signing::SigningSecret::new(s.into_bytes())).collect())
}

/// What every function needs. Function-specific settings are read by the function's own
/// config type from the same [`Env`].
#[derive(Debug, Clone)]
pub struct Config {
    pub xero: XeroConfig,
    pub aws: AwsResources,
    pub email: EmailConfig,
    /// Xero's limits as the governor keeps them: `XERO_ORG_CALLS_PER_MINUTE` (60),
    /// `XERO_ORG_CONCURRENT_CALLS` (5), `XERO_APP_CALLS_PER_MINUTE` (10,000), as Xero sets
    /// them for the app (lower only to leave room for another stack sharing the Xero app), and
    /// `XERO_GOVERNOR_WAIT_MS` (2,000), how long a call waits in-process for a token.
    pub governor: GovernorLimits,
}

impl Config {
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let secret_prefix = env.required("SECRET_PREFIX")?;
        if secret_prefix.contains(['*', '?']) {
            return Err(ConfigError::Invalid { name: "SECRET_PREFIX", reason: "must not contain wildcards".into() });
        }
        let request_timeout = std::time::Duration::from_secs(env.parse_or("XERO_TIMEOUT_SECONDS", 30u64)?);
        let positive = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            match env.parse_or(name, default)? {
                0 => Err(ConfigError::Invalid { name, reason: "must be at least 1".into() }),
                n => Ok(n),
            }
        };
        // A call's slot outlives the longest a call can take (a hung answer, then ours).
        let slot_lease = chrono::Duration::from_std(request_timeout).unwrap_or(chrono::Duration::MAX)
            + chrono::Duration::seconds(10);
        let mut governor = GovernorLimits::new(
            positive("XERO_ORG_CALLS_PER_MINUTE", 60)?,
            positive("XERO_ORG_CONCURRENT_CALLS", 5)?,
            positive("XERO_APP_CALLS_PER_MINUTE", 10_000)?,
            slot_lease,
        );
        governor.token_wait = std::time::Duration::from_millis(env.parse_or("XERO_GOVERNOR_WAIT_MS", 2_000u64)?);
        Ok(Self {
            governor,
            xero: XeroConfig {
                client_id: env.required("XERO_CLIENT_ID")?,
                client_secret: env.optional("XERO_CLIENT_SECRET").map(ClientSecret::new),
                authorize_url: secure(
                    env.url_or("XERO_AUTHORIZE_URL", DEFAULT_XERO_AUTHORIZE_URL)?,
                    "XERO_AUTHORIZE_URL",
                )?,
                identity_url: secure(env.url_or("XERO_IDENTITY_URL", DEFAULT_XERO_IDENTITY_URL)?, "XERO_IDENTITY_URL")?,
                api_url: secure(env.url_or("XERO_API_URL", DEFAULT_XERO_API_URL)?, "XERO_API_URL")?,
                request_timeout,
            },
            aws: AwsResources {
                table_name: env.required("TABLE_NAME")?,
                secret_prefix,
                event_bus_name: env.required("EVENT_BUS_NAME")?,
            },
            email: EmailConfig { from: env.required("EMAIL_FROM")?, reply_to: env.optional("EMAIL_REPLY_TO") },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("XERO_CLIENT_ID", "client"),
            ("XERO_CLIENT_SECRET", "shh"),
            ("TABLE_NAME", "table"),
            ("SECRET_PREFIX", "xero-sync/test/grants/"),
            ("EVENT_BUS_NAME", "bus"),
            ("EMAIL_FROM", "noreply@example.com"),
        ]
    }

    #[test]
    fn a_complete_environment_uses_xeros_real_urls_by_default() {
        let config = Config::from(&Env::from_pairs(complete())).unwrap();
        assert_eq!(config.xero.authorize_url.as_str(), DEFAULT_XERO_AUTHORIZE_URL);
        assert_eq!(config.xero.identity_url.as_str(), "https://identity.xero.com/");
        assert_eq!(config.xero.api_url.as_str(), "https://api.xero.com/");
        assert_eq!(config.aws.table_name, "table");
    }

    #[test]
    fn each_missing_variable_is_named() {
        // The client secret is only for the functions that need it (App::start checks those).
        for (name, _) in complete().into_iter().filter(|(k, _)| *k != "XERO_CLIENT_SECRET") {
            let env = Env::from_pairs(complete().into_iter().filter(|(k, _)| *k != name));
            let err = Config::from(&env).unwrap_err();
            assert_eq!(err.to_string(), format!("missing environment variable {name}"));
        }
    }

    #[test]
    fn the_client_secret_is_optional() {
        let with = Config::from(&Env::from_pairs(complete())).unwrap();
        assert_eq!(with.xero.client_secret.as_ref().map(|s| s.secret().as_str()), Some("shh"));
        let env = Env::from_pairs(complete().into_iter().filter(|(k, _)| *k != "XERO_CLIENT_SECRET"));
        assert!(Config::from(&env).unwrap().xero.client_secret.is_none());
    }

    #[test]
    fn a_blank_variable_counts_as_missing() {
        let mut vars = complete();
        vars.retain(|(k, _)| *k != "TABLE_NAME");
        vars.push(("TABLE_NAME", "  "));
        assert_eq!(Config::from(&Env::from_pairs(vars)).unwrap_err(), ConfigError::Missing("TABLE_NAME"));
    }

    #[test]
    fn the_governor_keeps_xeros_limits_unless_told_lower_and_refuses_zero() {
        let defaults = Config::from(&Env::from_pairs(complete())).unwrap().governor;
        assert_eq!(
            defaults,
            GovernorLimits { token_wait: defaults.token_wait, ..GovernorLimits::xeros(defaults.slot_lease) }
        );
        assert_eq!(defaults.slot_lease, chrono::Duration::seconds(40), "Xero's timeout of 30 s, and 10 more");
        let mut vars = complete();
        vars.push(("XERO_APP_CALLS_PER_MINUTE", "5000"));
        let lower = Config::from(&Env::from_pairs(vars)).unwrap().governor;
        assert!(lower.app_shard.per_minute * lower.app_shards < defaults.app_shard.per_minute * defaults.app_shards);
        let mut vars = complete();
        vars.push(("XERO_ORG_CONCURRENT_CALLS", "0"));
        let err = Config::from(&Env::from_pairs(vars)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "XERO_ORG_CONCURRENT_CALLS", .. }), "{err}");
    }

    #[test]
    fn a_malformed_url_is_refused_with_its_name() {
        let mut vars = complete();
        vars.push(("XERO_API_URL", "not a url"));
        let err = Config::from(&Env::from_pairs(vars)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "XERO_API_URL", .. }), "{err}");
    }

    #[test]
    fn xero_urls_must_be_https_except_on_this_machine() {
        let mut vars = complete();
        vars.push(("XERO_API_URL", "http://api.example.com"));
        assert!(matches!(Config::from(&Env::from_pairs(vars)), Err(ConfigError::Invalid { name: "XERO_API_URL", .. })));
        let mut vars = complete();
        vars.push(("XERO_API_URL", "http://127.0.0.1:8080"));
        assert!(Config::from(&Env::from_pairs(vars)).is_ok());
    }

    #[test]
    fn the_client_secret_never_prints() {
        let config = Config::from(&Env::from_pairs(complete())).unwrap();
        assert!(!format!("{config:?}").contains("shh"));
    }

    fn oauth(allow: &str) -> OAuthConfig {
        OAuthConfig::from(&Env::from_pairs([
            ("OAUTH_REDIRECT_URI", "https://api.example.com/oauth/callback"),
            ("RETURN_TO_ALLOWLIST", allow),
        ]))
        .unwrap()
    }

    #[test]
    fn return_to_must_sit_under_an_allowed_prefix() {
        let c = oauth("https://app.example.com/settings/, https://admin.example.com/xero");
        let ok = |u: &str| c.return_to_allowed(&Url::parse(u).unwrap());
        assert!(ok("https://app.example.com/settings/xero?tab=1"));
        assert!(ok("https://admin.example.com/xero"));
        assert!(ok("https://admin.example.com/xero/done"));
        assert!(!ok("https://admin.example.com/xerox"));
        assert!(!ok("https://app.example.com/other"));
        assert!(!ok("http://app.example.com/settings/xero"));
        assert!(!ok("https://app.example.com:8443/settings/xero"));
        assert!(!ok("https://app.example.com.evil.com/settings/"));
        assert!(!ok("https://user@app.example.com/settings/"));
    }

    #[test]
    fn the_default_scopes_are_xeros_granular_set() {
        let c = oauth("https://app.example.com/");
        assert_eq!(c.scopes.join(" "), DEFAULT_XERO_SCOPES.split_whitespace().collect::<Vec<_>>().join(" "));
        assert!(!c.multi_org);
        let err =
            OAuthConfig::from(&Env::from_pairs([("OAUTH_REDIRECT_URI", "https://x/cb"), ("XERO_SCOPES", "openid")]));
        assert!(err.is_err());
        let plain = OAuthConfig::from(&Env::from_pairs([
            ("OAUTH_REDIRECT_URI", "https://x/cb"),
            ("RETURN_TO_ALLOWLIST", "http://evil.com/"),
        ]));
        assert!(plain.is_err(), "plain http is for localhost only");
    }

    #[test]
    fn short_signing_secrets_are_refused() {
        assert_eq!(
            platform_signing_secrets(&Env::from_pairs([("A", "b")])).unwrap_err(),
            ConfigError::Missing("PLATFORM_SIGNING_SECRETS")
        );
        assert!(platform_signing_secrets(&Env::from_pairs([("PLATFORM_SIGNING_SECRETS", "short")])).is_err());
        let two = format!("{},{}", "a".repeat(32), "b".repeat(40));
        assert_eq!(
            platform_signing_secrets(&Env::from_pairs([("PLATFORM_SIGNING_SECRETS", two.as_str())])).unwrap().len(),
            2
        );
    }

    #[test]
    fn lists_drop_blanks() {
        let env = Env::from_pairs([("L", " a, ,b ,")]);
        assert_eq!(env.list("L"), vec!["a", "b"]);
        assert!(env.list("MISSING").is_empty());
    }
}
