use lambda_http::{Error, run, service_fn, tracing};
use xero_sync_core::{App, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let webhook = invoice_push::Webhook::new(App::from_env().await?, &Env::process())?;
    run(service_fn(|request| async { Ok::<_, Error>(invoice_push::handle_webhook(&webhook, request).await) })).await
}
