use lambda_http::{Error, run, service_fn};
use xero_sync_core::{App, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let webhook = invoice_push::Webhook::new(App::from_env().await?, &Env::process())?;
    run(service_fn(|request| async { Ok::<_, Error>(invoice_push::handle_webhook(&webhook, request).await) })).await
}
