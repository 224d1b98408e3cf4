//! Changes in a connection's life that the account and the platform hear about.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::Error;
use crate::aws::Services;
use crate::events::{EventKind, PlatformEvent};
use crate::model::{AccountId, Connection, ConnectionStatus, GrantId};
use crate::notify::Notice;
use crate::store::{StatusChange, at_most_once};
use crate::token_provider::{TokenError, TokenProvider};

pub const RECONNECT_REASON: &str =
    "Xero no longer accepts this connection's authorisation (the refresh token was refused).";

/// Xero refused the grant's refresh token: every CONNECTED connection on it becomes
/// NEEDS_RECONNECT (conditionally, so racing processes move each connection once), and the
/// account hears about it once: one email for all of the grant's organisations and one event
/// each. The notice is claimed with a once-key before it is sent and released if sending fails,
/// so a failure is retried by the next caller rather than lost. Returns how many connections
/// this call moved.
pub async fn needs_reconnect(
    services: &Services,
    account: &AccountId,
    grant: GrantId,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let mut moved = 0;
    let mut affected: Vec<Connection> = Vec::new();
    for connection in services.store.account_connections(account).await? {
        if connection.grant_id != grant {
            continue;
        }
        match connection.status {
            ConnectionStatus::Connected => {
                let change = StatusChange {
                    to: ConnectionStatus::NeedsReconnect,
                    only_from: vec![ConnectionStatus::Connected],
                    reason: Some(RECONNECT_REASON.into()),
                    at: now,
                };
                match services.store.set_connection_status(&connection.key(), &change).await {
                    Ok(updated) => {
                        moved += 1;
                        affected.push(updated);
                    }
                    Err(Error::Conflict(_) | Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            ConnectionStatus::NeedsReconnect => affected.push(connection),
            _ => {}
        }
    }
    if affected.is_empty() {
        return Ok(moved);
    }
    let once = format!("reconnect-notice#{grant}");
    let told = at_most_once(services.store.as_ref(), &once, now, Duration::days(90), || {
        tell_the_account(services, account, grant, &affected, now)
    })
    .await?;
    if told {
        tracing::warn!(account = %account, grant = %grant, connections = affected.len(), "connection needs reconnecting");
    }
    Ok(moved)
}

async fn tell_the_account(
    services: &Services,
    account: &AccountId,
    grant: GrantId,
    affected: &[Connection],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let events: Vec<_> = affected
        .iter()
        .map(|c| {
            PlatformEvent::new(
                EventKind::ConnectionNeedsReconnect,
                account.clone(),
                Some(c.tenant_id),
                &grant.to_string(),
                now,
                json!({ "organisation_name": c.organisation_name, "status": ConnectionStatus::NeedsReconnect, "reason": RECONNECT_REASON }),
            )
        })
        .collect();
    services.events.publish(&events).await?;
    if let Some(to) = affected.iter().find_map(|c| c.notify_email.clone()) {
        let names: Vec<_> = affected.iter().map(|c| c.organisation_name.as_str()).collect();
        let notice = Notice {
            subject: format!("Reconnect Xero: {}", names.join(", ")),
            organisation: names.join(", "),
            what_happened:
                "Xero stopped accepting the connection to your organisation, so invoices are no longer sent \
                to Xero and nothing is imported from it. This happens when the Xero user who connected changes their \
                password, leaves the organisation, or removes the app in Xero."
                    .into(),
            details: vec![],
            what_to_do: "Open the Xero settings in the platform and click Connect to Xero again. Invoices waiting in \
                the meantime are sent once you have reconnected."
                .into(),
        };
        services.notifier.send(&notice.to(to)).await?;
    }
    Ok(())
}

/// Ends a connection: marks it `to` (DISCONNECTED or DISCONNECTED_INACTIVE), then removes what
/// it held: its connection at Xero, unless another platform account shares it (Xero keeps one
/// per Xero user and organisation), and its grant's secret, unless another connection of the
/// account still uses the grant. Sync records, mappings and settings stay, so a reconnect
/// picks up where this left off.
///
/// Nothing is revoked: Xero's revocation removes *all* of that Xero user's connections to the
/// app, which would cut off the user's other organisations and other platform accounts. A
/// grant whose secret is deleted can no longer be used by anyone, and Xero lets it lapse.
///
/// The status changes first, so nothing syncs from then on and no concurrent refresh mistakes
/// the clean-up for a revoked grant. The clean-up is safe to repeat (a Xero 404 counts as
/// removed, a missing secret as deleted), so a failed attempt is finished by the next one; the
/// event is published once per ending (a once-key), before the clean-up.
pub async fn disconnect(
    services: &Services,
    tokens: &TokenProvider,
    connection: &Connection,
    to: ConnectionStatus,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Connection, TokenError> {
    let change = StatusChange {
        to,
        only_from: vec![ConnectionStatus::Connected, ConnectionStatus::NeedsReconnect],
        reason: Some(reason.to_owned()),
        at: now,
    };
    let updated = match services.store.set_connection_status(&connection.key(), &change).await {
        Ok(updated) => updated,
        Err(Error::Conflict(_)) => {
            let current = services.store.get_connection(&connection.key()).await?;
            current.ok_or_else(|| TokenError::Aws(Error::NotFound("connection".into())))?
        }
        Err(e) => return Err(e.into()),
    };
    if updated.status == to {
        // Once per ending, whichever attempt gets this far first: a retry after a failed
        // clean-up still tells the platform, and a repeat does not tell it twice.
        let dedup = format!("{}|{}", updated.grant_id, to.as_str());
        let once = format!("disconnected-event#{}#{}#{dedup}", updated.account_id, updated.tenant_id);
        let reason = updated.last_error.clone().unwrap_or_else(|| reason.to_owned());
        at_most_once(services.store.as_ref(), &once, now, Duration::days(365), || async {
            let event = PlatformEvent::new(
                EventKind::ConnectionDisconnected,
                updated.account_id.clone(),
                Some(updated.tenant_id),
                &dedup,
                now,
                json!({ "organisation_name": updated.organisation_name, "status": updated.status, "reason": reason }),
            );
            services.events.publish(&[event]).await
        })
        .await?;
    }
    release(services, tokens, &updated).await?;
    Ok(updated)
}

/// What a no-longer-live connection still holds at Xero and in the vault, released unless
/// someone else uses it.
async fn release(services: &Services, tokens: &TokenProvider, connection: &Connection) -> Result<(), TokenError> {
    let key = connection.key();
    let shared =
        services.store.sharing_xero_connection(connection.xero_connection_id).await?.into_iter().any(|k| k != key);
    if !shared {
        match tokens.grant_token(connection.grant_id).await {
            Ok(token) => {
                let existed = tokens.xero().delete_connection(&token, connection.xero_connection_id).await?;
                tracing::info!(tenant = %connection.tenant_id, existed, "removed the connection at Xero");
            }
            // No usable tokens: the grant is gone, and Xero drops its connection with it.
            Err(TokenError::Reconnect) => {}
            Err(e) => return Err(e),
        }
    }
    let grant_in_use = services.store.account_connections(&connection.account_id).await?.iter().any(|c| {
        c.grant_id == connection.grant_id
            && c.key() != key
            && matches!(c.status, ConnectionStatus::Connected | ConnectionStatus::NeedsReconnect)
    });
    if !grant_in_use {
        drop_grant(services, tokens, connection.grant_id).await?;
    }
    Ok(())
}

/// Deletes a grant's token set; nothing can use the grant afterwards.
pub async fn drop_grant(services: &Services, tokens: &TokenProvider, grant: GrantId) -> Result<(), Error> {
    services.vault.delete(&grant).await?;
    tokens.forget(grant);
    Ok(())
}
