//! What a function process builds once at start-up and lends to every invocation.

use crate::aws::{Services, load_sdk_config};
use crate::config::{Config, ConfigError};

pub struct App {
    pub config: Config,
    pub services: Services,
    /// For the clients only some functions need (SQS, say), built from the same settings.
    pub sdk: aws_config::SdkConfig,
}

impl App {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let services = Services::new(&config, sdk);
        Self { config, services, sdk: sdk.clone() }
    }

    /// Reads the configuration (failing on the first missing variable, by name) and builds the
    /// AWS clients from the SDK's standard environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(config, &load_sdk_config().await))
    }
}
