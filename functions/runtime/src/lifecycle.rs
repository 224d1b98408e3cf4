//! Changes in a connection's life that the account and the platform hear about, and the
//! clean-up that follows an ending: what a connection held at Xero and in the vault is
//! released, and released again until that is done.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::aws::Services;
use crate::token_provider::{TokenError, TokenProvider};
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{AccountId, Connection, ConnectionStatus, GrantId, GrantRelease, XeroConnectionId};
use xero_sync_domain::store::{StatusChange, at_most_once};
use xero_sync_domain::tokens::AccessToken;

/// How a connection is to end.
#[derive(Debug, Clone)]
pub struct Ending<'a> {
    /// DISCONNECTED or DISCONNECTED_INACTIVE.
    pub to: ConnectionStatus,
    pub reason: &'a str,
    /// Ends it only if its last activity is still this (as read when the ending was decided):
    /// for the inactivity sweep, whose reason is gone once the account acts.
    pub if_last_activity: Option<DateTime<Utc>>,
}

/// Ends a connection: marks it `to`, listed for clean-up in the same write, then releases what
/// it held: its connection at Xero, unless another platform account shares it (Xero keeps one
/// per Xero user and organisation), and its grant's secret, unless another connection of the
/// account still uses the grant. Sync records, mappings and settings stay, so a reconnect
/// picks up where this left off.
///
/// Nothing is revoked: Xero's revocation removes *all* of that Xero user's connections to the
/// app, which would cut off the user's other organisations and other platform accounts. A
/// grant whose secret is deleted can no longer be used by anyone, and Xero lets it lapse.
///
/// The status changes first, so nothing syncs from then on. A clean-up that fails leaves the
/// connection in the clean-up index: calling this again (a repeated disconnect) or
/// [`finish_cleanups`] (the daily sweep) finishes it; each step is safe to repeat (a Xero 404
/// counts as removed, a missing secret as deleted). The event is published once per ending.
///
/// Returns the connection as it now is: not ended when it is still live (its activity moved
/// on meanwhile, for an ending that asked for [`Ending::if_last_activity`]).
pub async fn disconnect(
    services: &Services,
    tokens: &TokenProvider,
    connection: &Connection,
    ending: &Ending<'_>,
    now: DateTime<Utc>,
) -> Result<Connection, TokenError> {
    let change = StatusChange {
        if_last_activity: ending.if_last_activity,
        cleanup: true,
        ..StatusChange::new(
            ending.to,
            vec![ConnectionStatus::Connected, ConnectionStatus::NeedsReconnect],
            Some(ending.reason.to_owned()),
            now,
        )
    };
    let updated = match services.store.set_connection_status(&connection.key(), &change).await {
        Ok(updated) => updated,
        Err(Error::Conflict(_)) => {
            let current = services.store.get_connection(&connection.key()).await?;
            current.ok_or_else(|| TokenError::Aws(Error::NotFound("connection".into())))?
        }
        Err(e) => return Err(e.into()),
    };
    // Still live: the account acted (or reconnected) since the ending was decided.
    if updated.status.is_live() {
        return Ok(updated);
    }
    finish_cleanup(services, tokens, updated, now).await
}

/// Once per ending, whichever attempt gets this far first: a retry after a failed clean-up
/// still tells the platform, and a repeat does not tell it twice.
async fn announce(services: &Services, ended: &Connection, reason: &str, now: DateTime<Utc>) -> Result<(), Error> {
    let dedup = format!("{}|{}", ended.grant_id, ended.status.as_str());
    let once = format!("disconnected-event#{}#{}#{dedup}", ended.account_id, ended.tenant_id);
    let reason = ended.last_error.clone().unwrap_or_else(|| reason.to_owned());
    at_most_once(services.store.as_ref(), &once, now, Duration::days(365), || async {
        let event = PlatformEvent::new(
            EventKind::ConnectionDisconnected,
            ended.account_id.clone(),
            Some(ended.tenant_id),
            &dedup,
            now,
            json!({ "organisation_name": ended.organisation_name, "status": ended.status, "reason": reason }),
        );
        services.events.publish(&[event]).await
    })
    .await
    .map(|_| ())
}

/// Releases what an ended connection still holds, if its clean-up is pending; returns the
/// connection as it then is.
pub async fn finish_cleanup(
    services: &Services,
    tokens: &TokenProvider,
    seen: Connection,
    now: DateTime<Utc>,
) -> Result<Connection, TokenError> {
    // As it is now, not as an index or an earlier read had it: reconnected meanwhile (the same
    // Xero user's connection, perhaps) it is nothing to release.
    let Some(mut ended) = services.store.get_connection(&seen.key()).await? else { return Ok(seen) };
    if ended.status.is_live() || !ended.cleanup_pending || ended.grant_id != seen.grant_id {
        return Ok(ended);
    }
    // A repeat of an ending whose announcement failed still tells the platform (once).
    let reason = ended.last_error.clone().unwrap_or_default();
    announce(services, &ended, &reason, now).await?;
    release(services, tokens, &ended).await?;
    services.store.finish_cleanup(&ended.key()).await?;
    ended.cleanup_pending = false;
    tracing::info!(account = %ended.account_id, tenant = %ended.tenant_id, "connection released");
    Ok(ended)
}

/// What a no-longer-live connection still holds at Xero and in the vault, released unless
/// someone else uses it.
async fn release(services: &Services, tokens: &TokenProvider, connection: &Connection) -> Result<(), TokenError> {
    let key = connection.key();
    let shared = in_use(services, connection.xero_connection_id, &connection.account_id, Some(&key)).await?;
    if !shared {
        match tokens.grant_token(connection.grant_id).await {
            Ok(token) => remove_at_xero(tokens, &token, connection.xero_connection_id).await?,
            // No usable tokens: the grant is gone, and Xero drops its connection with it.
            Err(TokenError::Reconnect) => {}
            Err(e) => return Err(e),
        }
    }
    drop_grant_if_unused(services, tokens, &connection.account_id, connection.grant_id).await?;
    Ok(())
}

/// Whether a live platform connection, other than `except`, uses this Xero connection: those
/// the sharing index names, as they are now, and the account's own connections (in case the
/// index write after a connection's own failed).
async fn in_use(
    services: &Services,
    id: XeroConnectionId,
    account: &AccountId,
    except: Option<&xero_sync_domain::model::ConnectionKey>,
) -> Result<bool, Error> {
    let other = |k: &xero_sync_domain::model::ConnectionKey| except != Some(k);
    // A row may be stale (its write or delete lost to a failure): only a connection that is
    // live on this Xero connection right now counts.
    for key in services.store.sharing_xero_connection(id).await?.iter().filter(|k| other(k)) {
        let current = services.store.get_connection(key).await?;
        if current.is_some_and(|c| c.status.is_live() && c.xero_connection_id == id) {
            return Ok(true);
        }
    }
    let own = services.store.account_connections(account).await?;
    Ok(own.iter().any(|c| c.xero_connection_id == id && c.status.is_live() && other(&c.key())))
}

async fn remove_at_xero(tokens: &TokenProvider, token: &AccessToken, id: XeroConnectionId) -> Result<(), TokenError> {
    let existed = tokens.xero().delete_connection(token, id).await?;
    tracing::info!(xero_connection = %id, existed, "removed the connection at Xero");
    Ok(())
}

/// Deletes the grant's tokens unless a live connection of the account still uses them.
async fn drop_grant_if_unused(
    services: &Services,
    tokens: &TokenProvider,
    account: &AccountId,
    grant: GrantId,
) -> Result<(), Error> {
    let in_use =
        services.store.account_connections(account).await?.iter().any(|c| c.grant_id == grant && c.status.is_live());
    if !in_use {
        drop_grant(services, tokens, grant).await?;
    }
    Ok(())
}

/// Deletes a grant's token set; nothing can use the grant afterwards.
pub async fn drop_grant(services: &Services, tokens: &TokenProvider, grant: GrantId) -> Result<(), Error> {
    services.vault.delete(&grant).await?;
    tokens.forget(grant);
    Ok(())
}

/// Releases a grant nobody went on to use (see [`GrantRelease`]): each of its Xero connections
/// that no live platform connection uses is removed at Xero, then its tokens are deleted unless
/// a live connection of the account uses them. Safe to repeat; done once this returns `Ok`.
pub async fn release_grant(
    services: &Services,
    tokens: &TokenProvider,
    release: &GrantRelease,
) -> Result<(), TokenError> {
    match tokens.grant_token(release.grant_id).await {
        Ok(token) => {
            let mut ids = release.xero_connection_ids.clone();
            for listed in tokens.xero().connections(&token, Some(release.grant_id)).await? {
                if !ids.contains(&listed.id) {
                    ids.push(listed.id);
                }
            }
            for id in ids {
                if !in_use(services, id, &release.account_id, None).await? {
                    remove_at_xero(tokens, &token, id).await?;
                }
            }
        }
        // No tokens left (or Xero refuses them): nothing can be removed, and Xero lets it lapse.
        Err(TokenError::Reconnect) => {}
        Err(e) => return Err(e),
    }
    drop_grant_if_unused(services, tokens, &release.account_id, release.grant_id).await?;
    services.store.delete_grant_release(release.grant_id).await?;
    Ok(())
}

/// Finishes up to `limit` pending clean-ups and due grant releases, starting none after
/// `budget`; what still fails stays listed for the next call. Returns what failed, with why.
pub async fn finish_cleanups(
    services: &Services,
    tokens: &TokenProvider,
    now: DateTime<Utc>,
    limit: usize,
    budget: std::time::Duration,
) -> Result<Cleanups, Error> {
    let started = std::time::Instant::now();
    let limit_reached = |attempted: usize| attempted >= limit || started.elapsed() >= budget;
    let mut done = Cleanups::default();
    let mut token = None;
    loop {
        let page = services.store.pending_cleanups(100, token.as_ref()).await?;
        for connection in page.items {
            if limit_reached(done.attempted) {
                return Ok(done);
            }
            done.attempted += 1;
            let key = connection.key();
            match finish_cleanup(services, tokens, connection, now).await {
                Ok(released) => done.released.push(released),
                Err(e) => done.failed.push((key.account_id.to_string(), key.tenant_id.to_string(), e.to_string())),
            }
        }
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    for release in services.store.due_grant_releases(now, limit.saturating_sub(done.attempted).max(1) as i32).await? {
        if limit_reached(done.attempted) {
            break;
        }
        done.attempted += 1;
        if let Err(e) = release_grant(services, tokens, &release).await {
            done.failed.push((release.account_id.to_string(), format!("grant {}", release.grant_id), e.to_string()));
        }
    }
    Ok(done)
}

#[derive(Debug, Default)]
pub struct Cleanups {
    pub attempted: usize,
    /// Connections released by this call.
    pub released: Vec<Connection>,
    /// (account, tenant or grant, why) of each that failed.
    pub failed: Vec<(String, String, String)>,
}
