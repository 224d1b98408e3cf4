use lambda_runtime::{Error, LambdaEvent, run, service_fn, tracing};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let app = App::from_env().await?;
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async { Ok::<_, Error>(inactivity_sweep::sweep(&app).await?) }))
        .await
}
