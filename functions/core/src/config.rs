//! Configuration, read once per process from the environment.
//!
//! A missing or malformed variable fails at start-up with its name, never halfway through an
//! invocation. AWS endpoints are deliberately absent: the SDK reads its own standard variables
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...), so local runs against moto need no special code path.

use std::collections::HashMap;
use std::str::FromStr;

use oauth2::ClientSecret;
use url::Url;

/// Xero's production endpoints, overridable so the emulator can stand in for them.
pub const DEFAULT_XERO_AUTHORIZE_URL: &str = "https://login.xero.com/identity/connect/authorize";
pub const DEFAULT_XERO_IDENTITY_URL: &str = "https://identity.xero.com";
pub const DEFAULT_XERO_API_URL: &str = "https://api.xero.com";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
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

    /// A set but empty variable counts as missing: an empty table name or secret is never meant.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn url_or(&self, name: &'static str, default: &str) -> Result<Url, ConfigError> {
        let raw = self.optional(name).unwrap_or_else(|| default.to_owned());
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

/// How to reach Xero and who we are to it.
#[derive(Debug, Clone)]
pub struct XeroConfig {
    pub client_id: String,
    /// oauth2's secret type prints `[redacted]` under Debug.
    pub client_secret: ClientSecret,
    /// Where the user's browser goes to consent (Xero's login service).
    pub authorize_url: Url,
    /// Base of the identity service: `/connect/token` and `/connect/revocation`.
    pub identity_url: Url,
    /// Base of the API: `/connections` and `/api.xro/2.0/...`.
    pub api_url: Url,
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

/// What every function needs. Function-specific settings are read by the function's own
/// config type from the same [`Env`].
#[derive(Debug, Clone)]
pub struct Config {
    pub xero: XeroConfig,
    pub aws: AwsResources,
    pub email: EmailConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from(&Env::process())
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let secret_prefix = env.required("SECRET_PREFIX")?;
        if secret_prefix.contains(['*', '?']) {
            return Err(ConfigError::Invalid { name: "SECRET_PREFIX", reason: "must not contain wildcards".into() });
        }
        Ok(Self {
            xero: XeroConfig {
                client_id: env.required("XERO_CLIENT_ID")?,
                client_secret: ClientSecret::new(env.required("XERO_CLIENT_SECRET")?),
                authorize_url: env.url_or("XERO_AUTHORIZE_URL", DEFAULT_XERO_AUTHORIZE_URL)?,
                identity_url: env.url_or("XERO_IDENTITY_URL", DEFAULT_XERO_IDENTITY_URL)?,
                api_url: env.url_or("XERO_API_URL", DEFAULT_XERO_API_URL)?,
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
        for (name, _) in complete() {
            let env = Env::from_pairs(complete().into_iter().filter(|(k, _)| *k != name));
            let err = Config::from(&env).unwrap_err();
            assert_eq!(err.to_string(), format!("missing environment variable {name}"));
        }
    }

    #[test]
    fn a_blank_variable_counts_as_missing() {
        let mut vars = complete();
        vars.retain(|(k, _)| *k != "TABLE_NAME");
        vars.push(("TABLE_NAME", "  "));
        assert_eq!(Config::from(&Env::from_pairs(vars)).unwrap_err(), ConfigError::Missing("TABLE_NAME"));
    }

    #[test]
    fn a_malformed_url_is_refused_with_its_name() {
        let mut vars = complete();
        vars.push(("XERO_API_URL", "not a url"));
        let err = Config::from(&Env::from_pairs(vars)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "XERO_API_URL", .. }), "{err}");
    }

    #[test]
    fn the_client_secret_never_prints() {
        let config = Config::from(&Env::from_pairs(complete())).unwrap();
        assert!(!format!("{config:?}").contains("shh"));
    }

    #[test]
    fn lists_drop_blanks() {
        let env = Env::from_pairs([("L", " a, ,b ,")]);
        assert_eq!(env.list("L"), vec!["a", "b"]);
        assert!(env.list("MISSING").is_empty());
    }
}
