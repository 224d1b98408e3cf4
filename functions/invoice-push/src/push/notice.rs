//! The account's email about pushes that failed for good: one per set of failures, however
//! often the push is retried or redelivered.

use chrono::Duration;
use sha2::{Digest, Sha256};
use xero_sync_domain::Error;
use xero_sync_domain::digest::hex;
use xero_sync_domain::model::Connection;
use xero_sync_domain::notify::Notice;
use xero_sync_domain::store::at_most_once;
use xero_sync_runtime::{App, mail};

/// How long a failure email is remembered, so a redelivery does not send it again.
pub(crate) const REMEMBER_NOTICES: Duration = Duration::days(30);

/// Sends `notice` once for the failures `keys` name (`kind` tells invoices, payments and credit
/// notes apart). A refusal for good is recorded on the connection and is no reason to fail.
pub(crate) async fn tell_once(
    app: &App,
    connection: &Connection,
    kind: &str,
    keys: impl IntoIterator<Item = String>,
    notice: Notice,
) -> Result<(), Error> {
    let mut ids =
        Sha256::new().chain_update(connection.account_id.as_str()).chain_update(connection.tenant_id.to_string());
    for key in keys {
        ids.update(format!("|{key}"));
    }
    let once = format!("{kind}#{}", hex(&ids.finalize()));
    let now = app.now();
    at_most_once(app.services.store.as_ref(), &once, now, REMEMBER_NOTICES, || async {
        mail::tell(&app.services, std::slice::from_ref(connection), notice, now).await.map(|_| ())
    })
    .await
    .map(|_| ())
}
