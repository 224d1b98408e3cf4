//! AWS clients, built once per process and shared by every invocation.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};

use xero_sync_aws::{DynamoStore, EventBridgePublisher, SecretsManagerVault, SesNotifier};
use xero_sync_domain::events::EventPublisher;
use xero_sync_domain::notify::Notifier;
use xero_sync_domain::store::Store;
use xero_sync_domain::vault::TokenVault;

use crate::config::Config;

/// The SDK's own configuration chain: region, credentials and `AWS_ENDPOINT_URL` come from the
/// standard variables, which is all the local stack needs to point everything at moto.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// The adapters behind the seams, as the functions use them.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub vault: Arc<dyn TokenVault>,
    pub notifier: Arc<dyn Notifier>,
    pub events: Arc<dyn EventPublisher>,
}

impl Services {
    pub fn new(config: &Config, sdk: &SdkConfig) -> Self {
        Self {
            store: Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), &config.aws.table_name)),
            vault: Arc::new(SecretsManagerVault::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                &config.aws.secret_prefix,
            )),
            notifier: Arc::new(SesNotifier::new(
                aws_sdk_sesv2::Client::new(sdk),
                &config.email.from,
                config.email.reply_to.clone(),
            )),
            events: Arc::new(EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(sdk),
                &config.aws.event_bus_name,
            )),
        }
    }
}
