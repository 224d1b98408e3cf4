//! Recording a finished consent: connections, replaced grants, events.

use chrono::{DateTime, Utc};
use serde_json::json;
use xero_sync_core::events::{EventKind, PlatformEvent};
use xero_sync_core::lifecycle::{disconnect, drop_grant};
use xero_sync_core::model::{AccountId, Connection, ConnectionStatus, GrantId, OrganisationChoice, TenantId};
use xero_sync_core::token_provider::TokenError;

use crate::Callback;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Connected {
        tenants: Vec<TenantId>,
        names: Vec<String>,
    },
    Denied,
    /// `reason` is a stable code for the platform; `message` is for the person.
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// Stores one CONNECTED connection per organisation. Without multi-organisation mode the
/// account's other connections are ended, and grants no longer used by any live connection of
/// the account are revoked and their secrets deleted.
pub async fn connect(
    callback: &Callback,
    account: &AccountId,
    grant: GrantId,
    organisations: Vec<OrganisationChoice>,
    notify_email: Option<String>,
    now: DateTime<Utc>,
) -> Outcome {
    match record(callback, account, grant, &organisations, notify_email, now).await {
        Ok(()) => Outcome::Connected {
            tenants: organisations.iter().map(|o| o.tenant_id).collect(),
            names: organisations.into_iter().map(|o| o.name).collect(),
        },
        Err(e) => {
            tracing::error!(account = %account, error = %e, "could not record the connection");
            Outcome::Failed {
                reason: "internal",
                message: "Something went wrong on our side; please try again.".into(),
            }
        }
    }
}

async fn record(
    callback: &Callback,
    account: &AccountId,
    grant: GrantId,
    organisations: &[OrganisationChoice],
    notify_email: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), xero_sync_core::Error> {
    let services = &callback.app.services;
    let existing = services.store.account_connections(account).await?;
    let live = |c: &Connection| matches!(c.status, ConnectionStatus::Connected | ConnectionStatus::NeedsReconnect);
    for org in organisations {
        let before = existing.iter().find(|c| c.tenant_id == org.tenant_id);
        let connection = Connection {
            account_id: account.clone(),
            tenant_id: org.tenant_id,
            xero_connection_id: org.xero_connection_id,
            grant_id: grant,
            status: ConnectionStatus::Connected,
            organisation_name: org.name.clone(),
            notify_email: notify_email.clone().or_else(|| before.and_then(|c| c.notify_email.clone())),
            connected_at: now,
            last_activity_at: now,
            last_sync_at: before.and_then(|c| c.last_sync_at),
            status_changed_at: now,
            last_error: None,
        };
        services.store.put_connection(&connection).await?;
    }
    let chosen = |t: TenantId| organisations.iter().any(|o| o.tenant_id == t);
    let names: Vec<_> = organisations.iter().map(|o| o.name.as_str()).collect();
    let mut still_live: Vec<&Connection> = Vec::new();
    for old in existing.iter().filter(|c| !chosen(c.tenant_id) && live(c)) {
        if callback.oauth.multi_org {
            still_live.push(old);
            continue;
        }
        let reason = format!("Replaced by the connection to {}.", names.join(", "));
        if let Err(e) =
            disconnect(services, &callback.app.tokens, old, ConnectionStatus::Disconnected, &reason, now).await
        {
            // The new connection works regardless; the old one is retried on the next disconnect.
            tracing::warn!(tenant = %old.tenant_id, error = %e, "could not end the replaced connection");
        }
    }
    let mut old_grants: Vec<GrantId> = existing.iter().map(|c| c.grant_id).filter(|g| *g != grant).collect();
    old_grants.sort();
    old_grants.dedup();
    for old in old_grants {
        if still_live.iter().any(|c| c.grant_id == old) {
            continue;
        }
        // Not revoked: Xero's revocation would also remove the connections this consent just
        // made for the same Xero user.
        if let Err(e) = drop_grant(services, &callback.app.tokens, old).await {
            tracing::warn!(grant = %old, error = %e, "could not delete the replaced grant's tokens");
        }
    }
    callback.app.tokens.forget(grant);
    let events: Vec<_> = organisations
        .iter()
        .map(|o| {
            PlatformEvent::new(
                EventKind::ConnectionConnected,
                account.clone(),
                Some(o.tenant_id),
                &format!("{grant}"),
                now,
                json!({ "organisation_name": o.name, "status": ConnectionStatus::Connected }),
            )
        })
        .collect();
    services.events.publish(&events).await?;
    tracing::info!(account = %account, organisations = organisations.len(), "connected to Xero");
    Ok(())
}

/// The consent reached organisations the account did not keep: remove them at Xero so they do
/// not count against the app's connection limit.
pub async fn drop_unchosen(
    callback: &Callback,
    grant: GrantId,
    others: &[OrganisationChoice],
) -> Result<(), TokenError> {
    if others.is_empty() {
        return Ok(());
    }
    let tokens = callback.app.services.vault.load(&grant).await?.ok_or(TokenError::Reconnect)?;
    for org in others {
        callback.app.xero.delete_connection(&tokens.access_token, org.xero_connection_id).await?;
    }
    Ok(())
}
