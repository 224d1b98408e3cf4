//! What a function process builds once at start-up and lends to every invocation.

use std::sync::Arc;

use crate::aws::{Services, load_sdk_config};
use crate::config::{Config, ConfigError, Env};
use crate::token_provider::{RefreshPolicy, TokenProvider};
use xero_sync_domain::time::{Clock, SystemClock};
use xero_sync_xero::{XeroClient, XeroError};

/// A setting too sensitive for the template or Lambda's environment: in AWS the variable
/// `id` names a Secrets Manager secret whose SecretString is the value itself (plain text, not
/// JSON), read at start-up; locally and in tests `name` may be set directly instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSetting {
    /// The variable the value becomes, as the configuration reads it.
    pub name: &'static str,
    /// The variable naming the Secrets Manager secret that holds it.
    pub id: &'static str,
}

/// The Xero app's client secret: the code exchange and every token refresh.
pub const XERO_CLIENT_SECRET: SecretSetting = SecretSetting { name: "XERO_CLIENT_SECRET", id: "XERO_CLIENT_SECRET_ID" };
/// The comma-separated secrets the platform signs links and requests with.
pub const PLATFORM_SIGNING_SECRETS: SecretSetting =
    SecretSetting { name: "PLATFORM_SIGNING_SECRETS", id: "PLATFORM_SIGNING_SECRETS_ID" };

/// The key Xero signs its webhooks with (developer.xero.com > My Apps > Webhooks).
pub const XERO_WEBHOOK_KEY: SecretSetting = SecretSetting { name: "XERO_WEBHOOK_KEY", id: "XERO_WEBHOOK_KEY_ID" };

/// Which secrets a function's code uses. [`App::start`] reads only these and drops the others
/// from the environment, so a function never holds a secret it does not need (the import
/// worker, which parses data from Xero, cannot sign a platform request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Anything that exchanges a code or refreshes a token at Xero ([`XERO_CLIENT_SECRET`]).
    pub xero_client_secret: bool,
    /// Anything that checks the platform's signatures ([`PLATFORM_SIGNING_SECRETS`]).
    pub platform_signing_secrets: bool,
    /// Anything that checks Xero's webhook signatures ([`XERO_WEBHOOK_KEY`]).
    pub xero_webhook_key: bool,
}

impl Needs {
    /// Each secret setting, with whether it is needed.
    fn each(self) -> [(SecretSetting, bool); 3] {
        [
            (XERO_CLIENT_SECRET, self.xero_client_secret),
            (PLATFORM_SIGNING_SECRETS, self.platform_signing_secrets),
            (XERO_WEBHOOK_KEY, self.xero_webhook_key),
        ]
    }
}

pub struct App {
    pub config: Config,
    pub services: Services,
    /// For the clients only some functions need (SQS, say), built from the same settings.
    pub sdk: aws_config::SdkConfig,
    pub xero: XeroClient,
    pub tokens: TokenProvider,
    pub clock: Arc<dyn Clock>,
}

impl App {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, XeroError> {
        Self::with_clock(config, sdk, Arc::new(SystemClock), RefreshPolicy::default())
    }

    /// Tests share a clock with the Xero emulator so token expiry can be moved, not waited for.
    pub fn with_clock(
        config: Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
        policy: RefreshPolicy,
    ) -> Result<Self, XeroError> {
        let services = Services::new(&config, sdk);
        let xero = XeroClient::new(&config.xero)?;
        let tokens = TokenProvider::new(xero.clone(), services.clone(), clock.clone(), policy, config.governor);
        Ok(Self { config, services, sdk: sdk.clone(), xero, tokens, clock })
    }

    /// What a function's `main` calls, naming the secrets its code uses: the SDK's
    /// configuration, the process environment with those secrets added (see [`Needs`]), and
    /// the app built from them. The environment is returned for the function's own settings.
    pub async fn start(needs: Needs) -> Result<(Self, Env), Box<dyn std::error::Error + Send + Sync>> {
        Self::start_with(needs, Env::process(), &load_sdk_config().await).await
    }

    /// [`App::start`] with the environment and SDK configuration given.
    ///
    /// A needed secret comes from the secret its `*_ID` variable names, or else from the
    /// variable itself; with neither, start-up fails naming the variable. A secret not needed is
    /// not read, and is removed from the environment if it was set directly.
    pub async fn start_with(
        needs: Needs,
        mut env: Env,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(Self, Env), Box<dyn std::error::Error + Send + Sync>> {
        let mut client = None;
        for (setting, needed) in needs.each() {
            if !needed {
                env.remove(setting.name);
                continue;
            }
            match env.optional(setting.id) {
                Some(id) => {
                    let client = client.get_or_insert_with(|| aws_sdk_secretsmanager::Client::new(sdk));
                    let value = read_secret(client, setting, &id).await?;
                    env.set(setting.name, value);
                }
                None if env.optional(setting.name).is_some() => {}
                None => return Err(ConfigError::MissingSecret { name: setting.name, id: setting.id }.into()),
            }
        }
        let config = Config::from(&env)?;
        Ok((Self::new(config, sdk)?, env))
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// One secret's value. Errors name the variable and the secret, never the value, and carry no
/// message from Secrets Manager.
async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    setting: SecretSetting,
    id: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let named = || format!("the secret {id} (named by {})", setting.id);
    let secret = client.get_secret_value().secret_id(id).send().await.map_err(|e| {
        let e = xero_sync_aws::sdk_error("SecretsManager", "GetSecretValue", &e).without_message();
        format!("reading {}: {e}", named())
    })?;
    let value = secret.secret_string().map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(format!("{} has no string value; it must hold {} itself", named(), setting.name).into());
    }
    // The one-secret layout this replaces held a JSON object; such a value is no secret of ours.
    if value.starts_with('{') {
        return Err(
            format!("{} holds a JSON object; it must hold {} itself, as plain text", named(), setting.name).into()
        );
    }
    Ok(value.to_owned())
}
