use lambda_http::{Error, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // The code exchange authenticates to Xero; nothing here is signed by the platform.
    let (app, env) =
        App::start(Needs { xero_client_secret: true, platform_signing_secrets: false, xero_webhook_key: false })
            .await?;
    let callback = oauth_callback::Callback::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(oauth_callback::handle(&callback, request).await) })).await
}
