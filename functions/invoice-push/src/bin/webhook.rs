use lambda_http::{Error, run, service_fn};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let (app, env) = App::start().await?;
    let webhook = invoice_push::Webhook::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(invoice_push::handle_webhook(&webhook, request).await) })).await
}
