use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let (app, env) = App::start().await?;
    let worker = scheduled_import::worker::Worker::new(app, &env)?;
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(scheduled_import::worker::handle(&worker, event.payload).await)
    }))
    .await
}
