use lambda_http::{Error, run, service_fn};
use xero_sync_runtime::app::{App, Needs};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_runtime::telemetry::init();
    // The connect link and the connection API are signed by the platform; the API calls Xero.
    let (app, env) =
        App::start(Needs { xero_client_secret: true, platform_signing_secrets: true, xero_webhook_key: false }).await?;
    let connect = connect::Connect::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(connect::handle(&connect, request).await) })).await
}
