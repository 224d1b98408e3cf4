use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use xero_sync_core::{App, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let worker = invoice_push::Worker::new(App::from_env().await?, &Env::process())?;
    run(service_fn(|event: LambdaEvent<_>| async {
        Ok::<_, Error>(invoice_push::handle_queue(&worker, event.payload).await)
    }))
    .await
}
