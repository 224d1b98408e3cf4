//! A provisioned stack on the shared moto server, with the adapters the functions use.

use aws_config::SdkConfig;
use xero_sync_aws::DynamoStore;
use xero_sync_domain::store::Store;
use xero_sync_runtime::{Config, Env};

use crate::{Moto, Stack, Template, unique_name};

pub struct LocalAws {
    pub sdk: SdkConfig,
    pub stack: Stack,
}

impl LocalAws {
    /// Messages on the stack's queue `logical` (a template name), visible or not.
    pub async fn queue_depth(&self, logical: &str) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let out = sqs
            .get_queue_attributes()
            .queue_url(self.stack.reference(logical))
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("the queue answers");
        out.attributes.unwrap_or_default().values().map(|n| n.parse::<usize>().expect("a count")).sum()
    }

    /// A fresh, uniquely named stack from infra/template.yaml on this test binary's moto.
    pub async fn provision(prefix: &str) -> Self {
        Self::provision_on(Moto::shared(), &unique_name(prefix)).await.expect("stack provisions on moto")
    }

    /// A stack named `stack_name` on a given moto server.
    pub async fn provision_on(moto: &Moto, stack_name: &str) -> anyhow::Result<Self> {
        let sdk = moto.sdk_config().await;
        let stack = Template::from_repo()?.provision(&sdk, stack_name, &[]).await?;
        Ok(Self { sdk, stack })
    }

    /// The stack's table, through every store port.
    pub fn store(&self) -> Box<dyn Store> {
        Box::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), self.stack.reference("Table")))
    }

    /// How many items the table holds (a Scan: for tests checking that nothing was stored).
    pub async fn item_count(&self) -> usize {
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        let mut count = 0;
        let mut start = None;
        loop {
            let out = client
                .scan()
                .table_name(self.stack.reference("Table"))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            count += out.count as usize;
            start = out.last_evaluated_key;
            if start.is_none() {
                return count;
            }
        }
    }

    /// The functions' configuration as the template sets it, with `overrides` on top (Xero's
    /// URLs, say). The secret prefix is made unique so stacks sharing a moto do not meet.
    pub fn config(&self, overrides: &[(&str, &str)]) -> Config {
        Config::from(&Env::from_pairs(self.function_env(overrides)))
            .expect("the template's environment is a complete configuration")
    }

    /// The variables a function process gets: the template's, with `overrides` on top.
    pub fn function_env(&self, overrides: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self.stack.function_env.clone().into_iter().collect();
        vars.retain(|(k, _)| {
            !["SECRET_PREFIX", "S3_PATH_STYLE", "UPLOADS_BUCKET"].contains(&k.as_str())
                && !overrides.iter().any(|(o, _)| o == k)
        });
        vars.push(("SECRET_PREFIX".into(), format!("xero-sync/{}/grants/", self.stack.name)));
        // moto answers every bucket at its one address, not at a host name per bucket.
        vars.push(("S3_PATH_STYLE".into(), "true".into()));
        vars.push(("UPLOADS_BUCKET".into(), self.stack.reference("UploadsBucket").to_owned()));
        vars.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        vars.sort();
        vars
    }
}
