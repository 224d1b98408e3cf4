use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let (app, env) = App::start().await?;
    let config = inactivity_sweep::SweepConfig::from(&env)?;
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(inactivity_sweep::sweep(&app, &config).await?)
    }))
    .await
}
