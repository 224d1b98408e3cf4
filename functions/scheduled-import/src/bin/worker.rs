use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // Calls Xero (refreshing tokens); it parses Xero's data, so it never holds the platform's key.
    let (app, env) =
        App::start(Needs { xero_client_secret: true, platform_signing_secrets: false, xero_webhook_key: false })
            .await?;
    let worker = scheduled_import::worker::Worker::new(app, &env)?;
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(scheduled_import::worker::handle(&worker, event.payload).await)
    }))
    .await
}
