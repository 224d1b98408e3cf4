//! What every push does first: find its lot's connection and ask whether it may reach Xero now;
//! and what it does when the whole lot fails.

use std::future::Future;

use xero_sync_domain::model::{Connection, ConnectionKey, ConnectionStatus};
use xero_sync_domain::scopes::Feature;
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;

use super::{PushError, clone_error, later_for};

/// Whether a lot goes to Xero now.
pub(crate) enum Gate {
    Go(Box<Connection>),
    /// Held until a reconnection (that grants `feature`'s scope).
    Park,
    NotConnected,
}

/// The connection, if it is connected and its consent allows `feature`.
pub(crate) async fn gate(app: &App, key: &ConnectionKey, feature: Feature) -> Result<Gate, PushError> {
    let Some(connection) = app.services.store.get_connection(key).await? else { return Ok(Gate::NotConnected) };
    match connection.status {
        ConnectionStatus::Connected => {}
        ConnectionStatus::NeedsReconnect => return Ok(Gate::Park),
        _ => return Ok(Gate::NotConnected),
    }
    match app.tokens.granted_scopes(&connection).await {
        Ok(scopes) if feature.allowed_by(&scopes) => Ok(Gate::Go(Box::new(connection))),
        Ok(_) | Err(TokenError::Reconnect) => Ok(Gate::Park),
        Err(e) => Err(later_for(&e)),
    }
}

/// Whether what was parked for `feature` must stay parked on `connection`: until it is
/// connected with a consent that allows the feature.
pub(crate) fn blocked_without(feature: Feature) -> impl Fn(&Connection) -> bool {
    move |c| c.status != ConnectionStatus::Connected || !c.scopes.as_deref().is_some_and(|s| feature.allowed_by(s))
}

/// The results of a lot of `count` events pushed by `lot`: when the lot fails as a whole (a
/// store error, say), every event gets that failure and comes back.
pub(crate) async fn per_event<T>(
    what: &str,
    key: &ConnectionKey,
    count: usize,
    lot: impl Future<Output = Result<Vec<Result<T, PushError>>, PushError>>,
) -> Vec<Result<T, PushError>> {
    match lot.await {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, error = %e, what, "push failed; will retry");
            (0..count).map(|_| Err(clone_error(&e))).collect()
        }
    }
}
