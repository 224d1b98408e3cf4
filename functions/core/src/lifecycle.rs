//! Changes in a connection's life that the account and the platform hear about.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::Error;
use crate::aws::Services;
use crate::events::{EventKind, PlatformEvent};
use crate::model::{AccountId, Connection, ConnectionStatus, GrantId};
use crate::notify::Notice;
use crate::store::StatusChange;
use crate::token_provider::{TokenError, TokenProvider};

pub const RECONNECT_REASON: &str =
    "Xero no longer accepts this connection's authorisation (the refresh token was refused).";

/// Xero refused the grant's refresh token: every CONNECTED connection on it becomes
/// NEEDS_RECONNECT. The status change is conditional, so of several processes that see the
/// refusal at once only one moves each connection, and only connections this call moved are
/// reported: one event each and one email for all of them. Returns how many it moved.
pub async fn needs_reconnect(
    services: &Services,
    account: &AccountId,
    grant: GrantId,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let mut moved: Vec<Connection> = Vec::new();
    for connection in services.store.account_connections(account).await? {
        if connection.grant_id != grant || connection.status != ConnectionStatus::Connected {
            continue;
        }
        let change = StatusChange {
            to: ConnectionStatus::NeedsReconnect,
            only_from: vec![ConnectionStatus::Connected],
            reason: Some(RECONNECT_REASON.into()),
            at: now,
        };
        match services.store.set_connection_status(&connection.key(), &change).await {
            Ok(updated) => moved.push(updated),
            Err(Error::Conflict(_) | Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if moved.is_empty() {
        return Ok(0);
    }
    let events: Vec<_> = moved
        .iter()
        .map(|c| {
            PlatformEvent::new(
                EventKind::ConnectionNeedsReconnect,
                c.account_id.clone(),
                Some(c.tenant_id),
                &format!("{}|{}", c.grant_id, crate::time::format(c.status_changed_at)),
                now,
                json!({ "organisation_name": c.organisation_name, "status": c.status, "reason": RECONNECT_REASON }),
            )
        })
        .collect();
    services.events.publish(&events).await?;
    tracing::warn!(account = %account, grant = %grant, connections = moved.len(), "connection needs reconnecting");
    if let Some(to) = moved.iter().find_map(|c| c.notify_email.clone()) {
        let names: Vec<_> = moved.iter().map(|c| c.organisation_name.as_str()).collect();
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
    Ok(moved.len())
}

/// Ends a connection: removes it at Xero, revokes the grant and deletes its secret when no other
/// connection of the account still uses it, and marks it `to` (DISCONNECTED or
/// DISCONNECTED_INACTIVE). Sync records, mappings and settings stay, so a reconnect picks up
/// where this left off.
///
/// Safe to repeat: a connection already gone at Xero (404) counts as removed, and a failure
/// before the status change leaves the connection as it was, so a retry redoes every step.
pub async fn disconnect(
    services: &Services,
    tokens: &TokenProvider,
    connection: &Connection,
    to: ConnectionStatus,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Connection, TokenError> {
    let xero = tokens.xero();
    if connection.status == ConnectionStatus::Connected {
        match tokens.access_token(connection).await {
            Ok(token) => {
                let existed = xero.delete_connection(&token, connection.xero_connection_id).await?;
                tracing::info!(tenant = %connection.tenant_id, existed, "removed the connection at Xero");
            }
            // The grant is dead already: Xero has nothing of ours to remove.
            Err(TokenError::Reconnect) => {}
            Err(e) => return Err(e),
        }
    }
    let siblings = services.store.account_connections(&connection.account_id).await?;
    let grant_in_use = siblings.iter().any(|c| {
        c.grant_id == connection.grant_id
            && c.tenant_id != connection.tenant_id
            && matches!(c.status, ConnectionStatus::Connected | ConnectionStatus::NeedsReconnect)
    });
    if !grant_in_use {
        retire_grant(services, tokens, connection.grant_id).await?;
    }
    let change = StatusChange {
        to,
        only_from: vec![ConnectionStatus::Connected, ConnectionStatus::NeedsReconnect],
        reason: Some(reason.to_owned()),
        at: now,
    };
    let updated = match services.store.set_connection_status(&connection.key(), &change).await {
        Ok(updated) => updated,
        // Someone finished the same disconnect first.
        Err(Error::Conflict(_)) => services
            .store
            .get_connection(&connection.key())
            .await?
            .ok_or_else(|| TokenError::Aws(Error::NotFound("connection".into())))?,
        Err(e) => return Err(e.into()),
    };
    let event = PlatformEvent::new(
        EventKind::ConnectionDisconnected,
        updated.account_id.clone(),
        Some(updated.tenant_id),
        &format!("{}|{}", updated.grant_id, to.as_str()),
        now,
        json!({ "organisation_name": updated.organisation_name, "status": updated.status, "reason": reason }),
    );
    services.events.publish(&[event]).await?;
    Ok(updated)
}

/// Revokes a grant at Xero and deletes its secret. A grant Xero no longer knows counts as revoked.
pub async fn retire_grant(services: &Services, tokens: &TokenProvider, grant: GrantId) -> Result<(), TokenError> {
    if let Some(set) = services.vault.load(&grant).await? {
        match tokens.xero().revoke(&set.refresh_token).await {
            Ok(()) => {}
            Err(crate::xero::XeroError::OAuth(_) | crate::xero::XeroError::InvalidGrant) => {}
            Err(e) => return Err(e.into()),
        }
    }
    services.vault.delete(&grant).await?;
    tokens.forget(grant);
    Ok(())
}
