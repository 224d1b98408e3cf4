//! What a function process builds once at start-up and lends to every invocation.

use std::sync::Arc;

use crate::aws::{Services, load_sdk_config};
use crate::config::Config;
use crate::time::{Clock, SystemClock};
use crate::token_provider::{RefreshPolicy, TokenProvider};
use crate::xero::{XeroClient, XeroError};

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

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
