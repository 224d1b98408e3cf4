use lambda_http::{Error, run, service_fn, tracing};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let app = App::from_env().await?;
    run(service_fn(|request| async { Ok::<_, Error>(invoice_push::handle_webhook(&app, request).await) })).await
}
