use lambda_http::{Error, run, service_fn, tracing};
use xero_sync_core::{App, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let connect = connect::Connect::new(App::from_env().await?, &Env::process())?;
    run(service_fn(|request| async { Ok::<_, Error>(connect::handle(&connect, request).await) })).await
}
