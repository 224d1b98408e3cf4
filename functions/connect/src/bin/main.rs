use lambda_http::{Error, run, service_fn};
use xero_sync_core::{App, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    xero_sync_core::telemetry::init();
    let connect = connect::Connect::new(App::from_env().await?, &Env::process())?;
    run(service_fn(|request| async { Ok::<_, Error>(connect::handle(&connect, request).await) })).await
}
