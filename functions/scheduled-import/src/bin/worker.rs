use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use xero_sync_core::{App, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let worker = scheduled_import::worker::Worker::new(App::from_env().await?, &Env::process())?;
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(scheduled_import::worker::handle(&worker, event.payload).await)
    }))
    .await
}
