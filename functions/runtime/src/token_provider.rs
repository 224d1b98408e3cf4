//! A valid Xero access token for a connection, whenever one is asked for.
//!
//! * Warm: tokens are kept in memory until a few minutes before they expire, so a warm Lambda
//!   reads Secrets Manager once per token lifetime (and writes it when it is the refresher).
//! * One refresher: within a process a per-grant mutex lets one task refresh while the others
//!   wait for its result; across processes a DynamoDB lease does the same: the others poll the
//!   lease and read the vault when they get it, finding the new set.
//! * Rotation: Xero's refresh tokens are single use. Once Xero has answered a refresh, the new
//!   set is the grant's only future: it is written to the vault (retried a few times) before it
//!   is used, and if the vault still refuses it, it is kept in this process and written by the
//!   next call rather than dropped, since past Xero's 30-minute grace the old refresh token is
//!   dead. If the refresh response itself is lost, the old token still works within the grace.
//! * Before a grant is declared dead on `invalid_grant`, the vault is read again: another
//!   process may have stored a newer set meanwhile.
//! * `invalid_grant`: the grant's connections become NEEDS_RECONNECT (see
//!   [`crate::reconnect::needs_reconnect`]); the grant is remembered as dead in this process, and
//!   connections already NEEDS_RECONNECT never reach Xero, so nothing retries in a loop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use uuid::Uuid;

use crate::aws::Services;
use crate::governor::Governor;
use crate::lease::Lease;
use crate::reconnect;
use xero_sync_domain::Error;
use xero_sync_domain::governor::{GovernorLimits, Limit, Priority};
use xero_sync_domain::model::{Connection, ConnectionStatus, GrantId};
use xero_sync_domain::time::Clock;
use xero_sync_domain::tokens::{AccessToken, TokenSet};
use xero_sync_xero::{ApiRequest, XeroClient, XeroError, XeroResponse};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Only the account re-authorising helps.
    #[error("the Xero organisation must be reconnected")]
    Reconnect,
    #[error(transparent)]
    Xero(#[from] XeroError),
    #[error(transparent)]
    Aws(#[from] Error),
    /// Another process held the refresh lease for longer than we wait.
    #[error("another process is refreshing this connection's tokens")]
    Busy,
    /// The governor holds the call back so as to stay inside one of Xero's limits.
    #[error("waiting {} s for Xero's {} limit", after.as_secs().max(1), limit.as_str())]
    Governed { after: std::time::Duration, limit: Limit },
}

impl TokenError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Reconnect => false,
            Self::Xero(e) => e.is_retryable(),
            Self::Aws(e) => e.is_retryable(),
            Self::Busy | Self::Governed { .. } => true,
        }
    }

    /// How long to wait before trying again, when Xero or the governor said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Xero(e) => e.retry_after(),
            Self::Governed { after, .. } => Some(*after),
            _ => None,
        }
    }

    /// A wait for Xero's limits (the governor's or a 429's): no fault of the work, so it goes
    /// back to the queue without counting towards the dead-letter queue.
    pub fn is_rate_wait(&self) -> bool {
        matches!(self, Self::Governed { .. } | Self::Xero(XeroError::RateLimited { .. }))
    }
}

/// Timings of the refresh dance.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Refresh this long before the access token expires.
    pub margin: Duration,
    /// How long a refresher may hold the lease before others may take over. It must outlast a
    /// whole refresh (vault read, Xero call, vault write); [`TokenProvider::new`] raises it to
    /// twice the Xero timeout plus ten seconds when it is shorter.
    pub lease: Duration,
    /// How often a waiter looks for the other refresher's result; it waits as long as the
    /// lease lasts, plus a little.
    pub poll_every: std::time::Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::minutes(5),
            lease: Duration::seconds(70),
            poll_every: std::time::Duration::from_millis(100),
        }
    }
}

pub struct TokenProvider {
    xero: XeroClient,
    services: Services,
    clock: Arc<dyn Clock>,
    policy: RefreshPolicy,
    /// Names this process as a lease holder.
    owner: String,
    cache: Mutex<HashMap<GrantId, TokenSet>>,
    /// Rotated sets the vault has not taken yet, with the refresh token each was rotated from.
    unstored: Mutex<HashMap<GrantId, (String, TokenSet)>>,
    dead: Mutex<HashSet<GrantId>>,
    refreshing: Mutex<HashMap<GrantId, Arc<tokio::sync::Mutex<()>>>>,
    /// Every Accounting API call, counted per connection.
    meter: crate::meter::Meter,
    /// Every Accounting API call, inside Xero's limits.
    governor: Governor,
    priority: Priority,
}

impl TokenProvider {
    pub fn new(
        xero: XeroClient,
        services: Services,
        clock: Arc<dyn Clock>,
        mut policy: RefreshPolicy,
        limits: GovernorLimits,
    ) -> Self {
        let whole_refresh =
            Duration::from_std(xero.config().request_timeout * 2).unwrap_or(Duration::MAX) + Duration::seconds(10);
        policy.lease = policy.lease.max(whole_refresh);
        let governor = Governor::new(services.store.clone(), clock.clone(), limits);
        Self {
            xero,
            services,
            clock,
            policy,
            governor,
            priority: Priority::Import,
            owner: Uuid::new_v4().to_string(),
            cache: Mutex::default(),
            unstored: Mutex::default(),
            dead: Mutex::default(),
            refreshing: Mutex::default(),
            meter: crate::meter::Meter::default(),
        }
    }

    /// Calls from this process go before the import's (pushes, the connection API).
    pub fn prioritise(&mut self, priority: Priority) {
        self.priority = priority;
    }

    /// Whether the governor would let a call to the connection's organisation through now
    /// ([`Governor::ready`]): `Governed` when it would not.
    pub async fn ready(&self, connection_tenant: xero_sync_domain::model::TenantId) -> Result<(), TokenError> {
        self.governor
            .ready(connection_tenant, self.priority)
            .await
            .map_err(|wait| TokenError::Governed { after: wait.after, limit: wait.limit })
    }

    /// What this process received from Xero since the last [`crate::meter::flush`].
    pub fn meter(&self) -> &crate::meter::Meter {
        &self.meter
    }

    pub fn xero(&self) -> &XeroClient {
        &self.xero
    }

    /// A token for the connection's grant, refreshing it if needed. On `invalid_grant` the
    /// connection (and its grant's siblings) are marked NEEDS_RECONNECT before `Reconnect` is
    /// returned.
    pub async fn access_token(&self, connection: &Connection) -> Result<AccessToken, TokenError> {
        self.token(connection, None).await
    }

    /// What the connection's consent granted: as recorded on the connection, or, for one made
    /// before scopes were recorded, as its token set says (read with its token, so no extra call).
    pub async fn granted_scopes(&self, connection: &Connection) -> Result<Vec<String>, TokenError> {
        if let Some(scopes) = &connection.scopes {
            return Ok(scopes.clone());
        }
        self.access_token(connection).await?;
        Ok(self.cached(connection.grant_id).map(|set| set.scopes).unwrap_or_default())
    }

    /// After Xero answered 401 to `rejected`: a token other than that one, refreshing if the
    /// vault has nothing newer.
    pub async fn replace_rejected(
        &self,
        connection: &Connection,
        rejected: &AccessToken,
    ) -> Result<AccessToken, TokenError> {
        self.token(connection, Some(rejected)).await
    }

    /// GET from the Accounting API for a connection; a 401 gets one fresh token and one retry.
    pub async fn get<T: serde::de::DeserializeOwned>(
        &self,
        connection: &Connection,
        request: &ApiRequest<'_>,
    ) -> Result<XeroResponse<T>, TokenError> {
        self.send::<(), T>(reqwest::Method::GET, connection, request, None).await
    }

    /// PUT (create) to the Accounting API for a connection, as [`Self::get`] (a 401 means Xero
    /// applied nothing, so the retry is safe).
    pub async fn put<B: serde::Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        connection: &Connection,
        request: &ApiRequest<'_>,
        body: &B,
    ) -> Result<XeroResponse<T>, TokenError> {
        self.send(reqwest::Method::PUT, connection, request, Some(body)).await
    }

    /// POST (create or update) to the Accounting API for a connection, as [`Self::put`].
    pub async fn post<B: serde::Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        connection: &Connection,
        request: &ApiRequest<'_>,
        body: &B,
    ) -> Result<XeroResponse<T>, TokenError> {
        self.send(reqwest::Method::POST, connection, request, Some(body)).await
    }

    /// PUT of the file in `request` (an attachment), as [`Self::put`].
    pub async fn put_file<T: serde::de::DeserializeOwned>(
        &self,
        connection: &Connection,
        request: &ApiRequest<'_>,
    ) -> Result<XeroResponse<T>, TokenError> {
        self.send::<(), T>(reqwest::Method::PUT, connection, request, None).await
    }

    /// DELETE on the Accounting API for a connection (a credit note's allocation), as [`Self::put`].
    pub async fn delete<T: serde::de::DeserializeOwned>(
        &self,
        connection: &Connection,
        request: &ApiRequest<'_>,
    ) -> Result<XeroResponse<T>, TokenError> {
        self.send::<(), T>(reqwest::Method::DELETE, connection, request, None).await
    }

    async fn send<B: serde::Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        connection: &Connection,
        request: &ApiRequest<'_>,
        body: Option<&B>,
    ) -> Result<XeroResponse<T>, TokenError> {
        let token = self.access_token(connection).await?;
        match self.call(method.clone(), connection, &token, request, body).await? {
            Err(XeroError::Unauthorized) => {
                let fresh = self.replace_rejected(connection, &token).await?;
                Ok(self.call(method, connection, &fresh, request, body).await??)
            }
            other => Ok(other?),
        }
    }

    /// One call, once the governor allows it; Xero's answer goes back to the governor.
    async fn call<B: serde::Serialize + Sync, T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        connection: &Connection,
        token: &AccessToken,
        request: &ApiRequest<'_>,
        body: Option<&B>,
    ) -> Result<Result<XeroResponse<T>, XeroError>, TokenError> {
        let permit = self
            .governor
            .acquire(connection.tenant_id, self.priority)
            .await
            .map_err(|wait| TokenError::Governed { after: wait.after, limit: wait.limit })?;
        let result = self.xero.call(method, token, connection.tenant_id, request, body).await;
        self.governor.finish(permit, &result).await;
        Ok(self.counted(connection, result))
    }

    fn counted<T>(
        &self,
        connection: &Connection,
        result: Result<XeroResponse<T>, XeroError>,
    ) -> Result<XeroResponse<T>, XeroError> {
        match &result {
            Ok(response) => self.meter.record(connection.key(), response.bytes, Some(&response.limits)),
            Err(_) => self.meter.record(connection.key(), 0, None),
        }
        result
    }

    /// Drops what this process remembers of a grant (after a disconnect or reconnect).
    pub fn forget(&self, grant: GrantId) {
        lock(&self.cache).remove(&grant);
        lock(&self.unstored).remove(&grant);
        lock(&self.dead).remove(&grant);
    }

    /// A token for a grant, with none of a connection's bookkeeping: for cleaning up after a
    /// disconnect, where a refused grant only means there is nothing left to clean at Xero.
    pub async fn grant_token(&self, grant: GrantId) -> Result<AccessToken, TokenError> {
        match self.grant_token_inner(grant, None).await {
            Err(TokenError::Xero(XeroError::InvalidGrant)) => Err(TokenError::Reconnect),
            other => other,
        }
    }

    async fn token(&self, connection: &Connection, rejected: Option<&AccessToken>) -> Result<AccessToken, TokenError> {
        if connection.status != ConnectionStatus::Connected {
            return Err(TokenError::Reconnect);
        }
        match self.grant_token_inner(connection.grant_id, rejected).await {
            // Only Xero refusing the grant means the account must act; a missing secret (a
            // disconnect in progress) is not news to them.
            Err(TokenError::Xero(XeroError::InvalidGrant)) => {
                lock(&self.cache).remove(&connection.grant_id);
                lock(&self.dead).insert(connection.grant_id);
                reconnect::needs_reconnect(
                    &self.services,
                    &connection.account_id,
                    connection.grant_id,
                    self.clock.now(),
                )
                .await?;
                Err(TokenError::Reconnect)
            }
            other => other,
        }
    }

    async fn grant_token_inner(
        &self,
        grant: GrantId,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        if lock(&self.dead).contains(&grant) {
            return Err(TokenError::Reconnect);
        }
        if let Some(token) = self.usable(self.cached(grant), rejected) {
            self.store_unstored(grant).await;
            return Ok(token);
        }
        let gate = lock(&self.refreshing).entry(grant).or_default().clone();
        let _one_refresher_here = gate.lock().await;
        if let Some(token) = self.usable(self.cached(grant), rejected) {
            return Ok(token);
        }
        self.refresh_across_processes(grant, rejected).await
    }

    /// Writes a rotated set an earlier refresh could not store, unless the vault has moved on.
    async fn store_unstored(&self, grant: GrantId) {
        let Some((from, set)) = lock(&self.unstored).get(&grant).cloned() else { return };
        let outcome = match self.services.vault.load(&grant).await {
            Ok(Some(stored)) if *stored.refresh_token.secret() == from => self.services.vault.replace(&set).await,
            // A newer set is stored, or the grant was ended: ours is not wanted.
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        match outcome {
            Err(e) => tracing::warn!(grant = %grant, error = %e, "rotated tokens still not stored"),
            Ok(_) => {
                lock(&self.unstored).remove(&grant);
            }
        }
    }

    fn cached(&self, grant: GrantId) -> Option<TokenSet> {
        lock(&self.cache).get(&grant).cloned()
    }

    fn usable(&self, set: Option<TokenSet>, rejected: Option<&AccessToken>) -> Option<AccessToken> {
        let set = set?;
        let fresh = !set.expires_within(self.clock.now(), self.policy.margin);
        let not_rejected = rejected.is_none_or(|r| r.secret() != set.access_token.secret());
        (fresh && not_rejected).then_some(set.access_token)
    }

    fn keep(&self, set: TokenSet) -> AccessToken {
        let token = set.access_token.clone();
        lock(&self.cache).insert(set.grant_id, set);
        token
    }

    async fn stored(&self, grant: GrantId) -> Result<TokenSet, TokenError> {
        // No secret means the grant was disconnected or never completed: only a reconnect helps.
        self.services.vault.load(&grant).await?.ok_or(TokenError::Reconnect)
    }

    async fn refresh_across_processes(
        &self,
        grant: GrantId,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        // A process that has never read this grant reads it once: usually it is fresh.
        if self.cached(grant).is_none() {
            let stored = self.stored(grant).await?;
            if self.usable(Some(stored.clone()), rejected).is_some() {
                return Ok(self.keep(stored));
            }
        }
        // Otherwise the vault is read only while holding the lease, so a warm process reads
        // Secrets Manager once per token lifetime: waiters poll the lease (a cheap DynamoDB
        // write), not the vault, and read the vault once the refresher is done.
        let lease = format!("token-refresh#{grant}");
        let wait = self.policy.lease + Duration::seconds(5);
        let polls = (wait.num_milliseconds() as u128 / self.policy.poll_every.as_millis().max(1)) as u32;
        for poll in 0..=polls {
            let now = self.clock.now();
            let store = self.services.store.as_ref();
            if let Some(held) = Lease::try_take(store, &lease, &self.owner, self.policy.lease, now).await? {
                let result = self.refresh_holding_lease(grant, rejected, &held).await;
                held.release().await;
                return result;
            }
            if poll < polls {
                tokio::time::sleep(self.policy.poll_every).await;
            }
        }
        Err(TokenError::Busy)
    }

    async fn refresh_holding_lease(
        &self,
        grant: GrantId,
        rejected: Option<&AccessToken>,
        lease: &Lease<'_>,
    ) -> Result<AccessToken, TokenError> {
        // The previous holder may have stored a new set just before we took the lease.
        let mut current = self.stored(grant).await?;
        // What the vault holds: a rotated set goes only over it (see `write_rotated`).
        let in_vault = current.refresh_token.secret().clone();
        // A set this process rotated (perhaps again and again) but could not store is newer
        // than the one the vault holds.
        let pending = lock(&self.unstored).get(&grant).cloned();
        if let Some((from, set)) = pending {
            if in_vault == from {
                current = set;
            } else {
                lock(&self.unstored).remove(&grant);
            }
        }
        if self.usable(Some(current.clone()), rejected).is_some() {
            return Ok(self.keep(current));
        }
        match self.xero.refresh(&current, self.clock.now()).await {
            Ok(next) => self.keep_rotated(grant, &in_vault, next, lease).await,
            Err(XeroError::InvalidGrant) => {
                // Dead only if the vault holds nothing newer than what Xero just refused.
                let again = self.stored(grant).await?;
                if *again.refresh_token.secret() == in_vault {
                    return Err(TokenError::Xero(XeroError::InvalidGrant));
                }
                tracing::info!(grant = %grant, "a newer token set was stored meanwhile; refreshing with it");
                lock(&self.unstored).remove(&grant);
                let next = self.xero.refresh(&again, self.clock.now()).await?;
                self.keep_rotated(grant, again.refresh_token.secret(), next, lease).await
            }
            Err(e) => Err(TokenError::Xero(e)),
        }
    }

    /// Stores a rotated set over the one whose refresh token is `in_vault`, retrying, and hands
    /// out its access token. It is never dropped: if the vault keeps refusing it, this process
    /// keeps it (with `in_vault`, however many rotations later) until it is stored.
    async fn keep_rotated(
        &self,
        grant: GrantId,
        in_vault: &str,
        next: TokenSet,
        lease: &Lease<'_>,
    ) -> Result<AccessToken, TokenError> {
        const ATTEMPTS: u32 = 3;
        for attempt in 0..ATTEMPTS {
            match self.write_rotated(in_vault, &next, lease).await {
                Ok(Rotated::Stored) => {
                    lock(&self.unstored).remove(&grant);
                    tracing::info!(grant = %grant, "refreshed Xero tokens");
                    return Ok(self.keep(next));
                }
                Ok(Rotated::Newer(theirs)) => {
                    lock(&self.unstored).remove(&grant);
                    return Ok(self.keep(theirs));
                }
                Ok(Rotated::Gone) => {
                    // Deleted while Xero answered: the grant was ended, and stays ended.
                    tracing::info!(grant = %grant, "the grant's secret is gone; the refreshed tokens are dropped");
                    return Err(TokenError::Reconnect);
                }
                Err(e) if attempt + 1 < ATTEMPTS => {
                    tracing::warn!(grant = %grant, error = %e, attempt, "storing rotated tokens failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => {
                    tracing::warn!(grant = %grant, error = %e, "rotated tokens kept in this process until they can be stored");
                }
            }
        }
        lock(&self.unstored).insert(grant, (in_vault.to_owned(), next.clone()));
        Ok(self.keep(next))
    }

    async fn write_rotated(&self, in_vault: &str, next: &TokenSet, lease: &Lease<'_>) -> Result<Rotated, Error> {
        let now = self.clock.now();
        if !lease.renew(now).await? {
            // The lease ran out while Xero answered: another process may have refreshed from the
            // same stored set. What it stored wins; ours goes only over the set it came from.
            match self.services.vault.load(&next.grant_id).await? {
                None => return Ok(Rotated::Gone),
                Some(stored) if stored.refresh_token.secret() != in_vault => return Ok(Rotated::Newer(stored)),
                Some(_) => {}
            }
        }
        Ok(if self.services.vault.replace(next).await? { Rotated::Stored } else { Rotated::Gone })
    }
}

enum Rotated {
    Stored,
    /// Another process stored a newer set first.
    Newer(TokenSet),
    /// The grant's secret was deleted meanwhile.
    Gone,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold plain data; a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
