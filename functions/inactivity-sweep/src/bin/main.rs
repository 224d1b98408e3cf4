use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // Refreshes tokens to end connections at Xero.
    let (app, env) =
        App::start(Needs { xero_client_secret: true, platform_signing_secrets: false, xero_webhook_key: false })
            .await?;
    let config = inactivity_sweep::SweepConfig::from(&env)?;
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let summary = inactivity_sweep::sweep(&app, &config).await;
        xero_sync_runtime::meter::flush(&app, "inactivity-sweep").await;
        Ok::<_, Error>(summary?)
    }))
    .await
}
