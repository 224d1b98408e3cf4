use lambda_http::{Error, run, service_fn};
use xero_sync_core::App;

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let (app, env) = App::start().await?;
    let connect = connect::Connect::new(app, &env)?;
    run(service_fn(|request| async { Ok::<_, Error>(connect::handle(&connect, request).await) })).await
}
