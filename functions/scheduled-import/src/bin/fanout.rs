use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use scheduled_import::{FanoutConfig, fan_out};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let (app, env) = App::start().await?;
    let config = FanoutConfig::from(&env)?;
    let sqs = aws_sdk_sqs::Client::new(&app.sdk);
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let summary = fan_out(app.services.store.as_ref(), &sqs, &config, xero_sync_core::time::now()).await?;
        Ok::<_, Error>(summary)
    }))
    .await
}
