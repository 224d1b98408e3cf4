//! One holder at a time for a named piece of work (a grant's token refresh, one connection's
//! import, the daily sweep), across every process: a conditional write in the store that
//! expires by itself if its holder dies.

use chrono::{DateTime, Duration, Utc};
use xero_sync_domain::Error;
use xero_sync_domain::store::LeaseStore;

/// A lease this process holds. Release it when done; if the process dies first, it expires
/// `held_for` after it was last taken or renewed.
pub struct Lease<'a> {
    store: &'a dyn LeaseStore,
    name: String,
    owner: String,
    held_for: Duration,
}

impl<'a> Lease<'a> {
    /// Takes `name` for `held_for` as `owner`, unless someone else holds it: `None` then.
    pub async fn try_take(
        store: &'a dyn LeaseStore,
        name: &str,
        owner: &str,
        held_for: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<Lease<'a>>, Error> {
        if !store.try_acquire_lease(name, owner, now + held_for, now).await? {
            return Ok(None);
        }
        Ok(Some(Self { store, name: name.to_owned(), owner: owner.to_owned(), held_for }))
    }

    /// Extends the lease only if it is still ours and has not expired: a fence before a write
    /// that must not happen once someone else may have taken over. `false` when it is lost.
    pub async fn renew(&self, now: DateTime<Utc>) -> Result<bool, Error> {
        self.store.renew_lease(&self.name, &self.owner, now + self.held_for, now).await
    }

    /// Lets go. A failure is only logged: the lease expires by itself, and the next holder
    /// only waits longer.
    pub async fn release(self) {
        if let Err(e) = self.store.release_lease(&self.name, &self.owner).await {
            tracing::warn!(lease = %self.name, error = %e, "could not release a lease; it expires by itself");
        }
    }
}
