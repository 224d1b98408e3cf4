use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use scheduled_import::{FanoutConfig, fan_out};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // Only reads the table and queues messages: no secret at all.
    let (app, env) =
        App::start(Needs { xero_client_secret: false, platform_signing_secrets: false, xero_webhook_key: false })
            .await?;
    let config = FanoutConfig::from(&env)?;
    let sqs = aws_sdk_sqs::Client::new(&app.sdk);
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let summary = fan_out(app.services.store.as_ref(), &sqs, &config, xero_sync_domain::time::now()).await?;
        Ok::<_, Error>(summary)
    }))
    .await
}
