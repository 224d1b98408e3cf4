use lambda_http::{Error, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // Verifies Xero's signatures and queues; it never calls Xero, so it holds no client secret.
    let (app, env) =
        App::start(Needs { xero_client_secret: false, platform_signing_secrets: false, xero_webhook_key: true })
            .await?;
    let webhook = scheduled_import::webhook::XeroWebhook::new(aws_sdk_sqs::Client::new(&app.sdk), &env)?;
    let clock = app.clock.clone();
    run(service_fn(|request| async {
        Ok::<_, Error>(scheduled_import::webhook::handle_xero_webhook(&webhook, request, clock.now()).await)
    }))
    .await
}
