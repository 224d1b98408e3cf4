use lambda_http::{Error, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // Sessions are opened by a signed platform call, and the page signs its Connect links; its
    // buttons call Xero (test, validate, the settings' choices).
    let (app, env) =
        App::start(Needs { xero_client_secret: true, platform_signing_secrets: true, xero_webhook_key: false }).await?;
    let page = integration_page::IntegrationPage::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(integration_page::handle(&page, request).await) })).await
}
