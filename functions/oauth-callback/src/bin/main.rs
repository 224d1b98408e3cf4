use lambda_http::{Error, run, service_fn};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let (app, env) = App::start().await?;
    let callback = oauth_callback::Callback::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(oauth_callback::handle(&callback, request).await) })).await
}
