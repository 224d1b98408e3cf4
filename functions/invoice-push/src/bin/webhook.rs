use lambda_http::{Error, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // Verifies the platform's signatures and queues; it never calls Xero.
    let (app, env) =
        App::start(Needs { xero_client_secret: false, platform_signing_secrets: true, xero_webhook_key: false })
            .await?;
    let webhook = invoice_push::Webhook::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(invoice_push::handle_webhook(&webhook, request).await) })).await
}
