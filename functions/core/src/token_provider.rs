//! A valid Xero access token for a connection, whenever one is asked for.
//!
//! * Warm: tokens are kept in memory until a few minutes before they expire, so a warm Lambda
//!   reads Secrets Manager about once per token lifetime.
//! * One refresher: within a process a per-grant mutex lets one task refresh while the others
//!   wait for its result; across processes a DynamoDB lease does the same, and the others poll
//!   the vault for the new version.
//! * Rotation: Xero's refresh tokens are single use. The new set is written to the vault before
//!   the new access token is handed out. If the refresh response is lost, or the write fails,
//!   the old refresh token still works for Xero's 30-minute grace period, so the next attempt
//!   recovers.
//! * `invalid_grant`: the grant's connections become NEEDS_RECONNECT (see
//!   [`crate::lifecycle::needs_reconnect`]); the grant is remembered as dead in this process, and
//!   connections already NEEDS_RECONNECT never reach Xero, so nothing retries in a loop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use uuid::Uuid;

use crate::Error;
use crate::aws::Services;
use crate::lifecycle;
use crate::model::{Connection, ConnectionStatus, GrantId};
use crate::time::Clock;
use crate::tokens::{AccessToken, TokenSet};
use crate::xero::{ApiRequest, XeroClient, XeroError, XeroResponse};

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
}

impl TokenError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Reconnect => false,
            Self::Xero(e) => e.is_retryable(),
            Self::Aws(e) => e.is_retryable(),
            Self::Busy => true,
        }
    }
}

/// Timings of the refresh dance.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Refresh this long before the access token expires.
    pub margin: Duration,
    /// How long a refresher may hold the lease before others may take over.
    pub lease: Duration,
    /// How often and how many times a waiter looks for the other refresher's result.
    pub poll_every: std::time::Duration,
    pub polls: u32,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            margin: Duration::minutes(5),
            lease: Duration::seconds(30),
            poll_every: std::time::Duration::from_millis(100),
            polls: 150,
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
    dead: Mutex<HashSet<GrantId>>,
    refreshing: Mutex<HashMap<GrantId, Arc<tokio::sync::Mutex<()>>>>,
}

impl TokenProvider {
    pub fn new(xero: XeroClient, services: Services, clock: Arc<dyn Clock>, policy: RefreshPolicy) -> Self {
        Self {
            xero,
            services,
            clock,
            policy,
            owner: Uuid::new_v4().to_string(),
            cache: Mutex::default(),
            dead: Mutex::default(),
            refreshing: Mutex::default(),
        }
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
        let token = self.access_token(connection).await?;
        match self.xero.get(&token, connection.tenant_id, request).await {
            Err(XeroError::Unauthorized) => {
                let fresh = self.replace_rejected(connection, &token).await?;
                Ok(self.xero.get(&fresh, connection.tenant_id, request).await?)
            }
            other => Ok(other?),
        }
    }

    /// Drops what this process remembers of a grant (after a disconnect or reconnect).
    pub fn forget(&self, grant: GrantId) {
        lock(&self.cache).remove(&grant);
        lock(&self.dead).remove(&grant);
    }

    async fn token(&self, connection: &Connection, rejected: Option<&AccessToken>) -> Result<AccessToken, TokenError> {
        if connection.status != ConnectionStatus::Connected {
            return Err(TokenError::Reconnect);
        }
        let grant = connection.grant_id;
        if lock(&self.dead).contains(&grant) {
            return Err(TokenError::Reconnect);
        }
        if let Some(token) = self.usable(self.cached(grant), rejected) {
            return Ok(token);
        }
        let gate = lock(&self.refreshing).entry(grant).or_default().clone();
        let _one_refresher_here = gate.lock().await;
        if let Some(token) = self.usable(self.cached(grant), rejected) {
            return Ok(token);
        }
        let result = self.refresh_across_processes(grant, rejected).await;
        if matches!(result, Err(TokenError::Reconnect)) {
            lock(&self.cache).remove(&grant);
            lock(&self.dead).insert(grant);
            lifecycle::needs_reconnect(&self.services, &connection.account_id, grant, self.clock.now()).await?;
        }
        result
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
        let stored = self.stored(grant).await?;
        if self.usable(Some(stored.clone()), rejected).is_some() {
            return Ok(self.keep(stored));
        }
        let lease = format!("token-refresh#{grant}");
        for poll in 0..=self.policy.polls {
            let now = self.clock.now();
            if self.services.store.try_acquire_lease(&lease, &self.owner, now + self.policy.lease, now).await? {
                let result = self.refresh_holding_lease(grant, rejected).await;
                if let Err(e) = self.services.store.release_lease(&lease, &self.owner).await {
                    // It expires by itself; the next refresher only waits longer.
                    tracing::warn!(grant = %grant, error = %e, "could not release the refresh lease");
                }
                return result;
            }
            if poll < self.policy.polls {
                tokio::time::sleep(self.policy.poll_every).await;
            }
            let latest = self.stored(grant).await?;
            if self.usable(Some(latest.clone()), rejected).is_some() {
                return Ok(self.keep(latest));
            }
        }
        Err(TokenError::Busy)
    }

    async fn refresh_holding_lease(
        &self,
        grant: GrantId,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        // The previous holder may have stored a new set just before we took the lease.
        let current = self.stored(grant).await?;
        if self.usable(Some(current.clone()), rejected).is_some() {
            return Ok(self.keep(current));
        }
        match self.xero.refresh(&current, self.clock.now()).await {
            Ok(next) => {
                self.services.vault.store(&next).await?;
                tracing::info!(grant = %grant, "refreshed Xero tokens");
                Ok(self.keep(next))
            }
            Err(XeroError::InvalidGrant) => Err(TokenError::Reconnect),
            Err(e) => Err(TokenError::Xero(e)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps hold plain data; a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
