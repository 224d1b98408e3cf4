//! What a function process builds once at start-up and lends to every invocation.

use std::sync::Arc;

use crate::aws::{Services, load_sdk_config};
use crate::config::{Config, Env};
use crate::time::{Clock, SystemClock};
use crate::token_provider::{RefreshPolicy, TokenProvider};
use crate::xero::{XeroClient, XeroError};

/// Names a Secrets Manager secret (a JSON object) holding the settings that must not sit in
/// the template or in plain Lambda environment variables: see [`SECRET_SETTINGS`].
pub const APP_SECRET_ID: &str = "APP_SECRET_ID";
/// What the app secret may hold.
pub const SECRET_SETTINGS: &[&str] = &["XERO_CLIENT_SECRET", "PLATFORM_SIGNING_SECRETS"];

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
        let tokens = TokenProvider::new(xero.clone(), services.clone(), clock.clone(), policy);
        Ok(Self { config, services, sdk: sdk.clone(), xero, tokens, clock })
    }

    /// Reads the configuration (failing on the first missing variable, by name) and builds the
    /// clients from the SDK's standard environment.
    pub async fn from_env() -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let config = Config::from_env()?;
        Ok(Self::new(config, &load_sdk_config().await)?)
    }

    /// What a function's `main` calls: the SDK's configuration, the process environment with
    /// the app secret laid over it (see [`APP_SECRET_ID`]), and the app built from them. The
    /// environment is returned for the function's own settings.
    pub async fn start() -> Result<(Self, Env), Box<dyn std::error::Error + Send + Sync>> {
        Self::start_with(Env::process(), &load_sdk_config().await).await
    }

    /// [`App::start`] with the environment and SDK configuration given.
    pub async fn start_with(
        mut env: Env,
        sdk: &aws_config::SdkConfig,
    ) -> Result<(Self, Env), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(id) = env.optional(APP_SECRET_ID) {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            let secret = client
                .get_secret_value()
                .secret_id(&id)
                .send()
                .await
                .map_err(|e| crate::AwsError::new("SecretsManager", "GetSecretValue", &e).without_message())?;
            let text = secret.secret_string().ok_or("the app secret has no string value")?;
            let values: std::collections::HashMap<String, String> = serde_json::from_str(text)
                .map_err(|_| format!("the app secret {id} is not a JSON object of strings"))?;
            for (name, value) in values {
                if !SECRET_SETTINGS.contains(&name.as_str()) {
                    return Err(
                        format!("the app secret {id} holds {name}, which is not one of {SECRET_SETTINGS:?}").into()
                    );
                }
                env.set(name, value);
            }
        }
        let config = Config::from(&env)?;
        Ok((Self::new(config, sdk)?, env))
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
