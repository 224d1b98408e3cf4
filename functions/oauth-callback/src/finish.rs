//! Recording a finished consent: connections, replaced grants, events.

use chrono::{DateTime, Utc};
use serde_json::json;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::links;
use xero_sync_domain::model::{
    AccountId, Connection, ConnectionStatus, GrantId, GrantRelease, OrganisationChoice, TenantId,
};
use xero_sync_domain::tokens::TokenSet;
use xero_sync_domain::xero::Organisations;
use xero_sync_runtime::lifecycle::{Ending, disconnect, drop_grant, release_grant};
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::ApiRequest;

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

/// The consent's grant, and what it granted.
pub struct Granted {
    pub grant: GrantId,
    pub scopes: Option<Vec<String>>,
}

impl Granted {
    pub fn of(tokens: &TokenSet) -> Self {
        Self { grant: tokens.grant_id, scopes: Some(tokens.scopes.clone()) }
    }
}

/// Stores one CONNECTED connection per organisation. Without multi-organisation mode the
/// account's other connections are ended, and grants no longer used by any live connection of
/// the account are released: their secrets deleted once no live connection uses them.
pub async fn connect(
    callback: &Callback,
    account: &AccountId,
    granted: Granted,
    organisations: Vec<OrganisationChoice>,
    notify_email: Option<String>,
    now: DateTime<Utc>,
) -> Outcome {
    match record(callback, account, &granted, &organisations, notify_email, now).await {
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

/// The organisation's ShortCode, which Xero's deep links need: read once, when the organisation
/// first connects (it does not change). Without it the links are left out, nothing else.
async fn short_code(callback: &Callback, connection: &Connection) -> Option<String> {
    let read = callback.app.tokens.get::<Organisations>(connection, &ApiRequest::new("/Organisation")).await;
    match read {
        Ok(answer) => {
            let code = answer.body.organisations.into_iter().next().and_then(|o| o.short_code);
            code.filter(|c| links::is_short_code(c))
        }
        Err(e) => {
            tracing::warn!(tenant = %connection.tenant_id, error = %e, "could not read the organisation's ShortCode; links to Xero are left out");
            None
        }
    }
}

async fn record(
    callback: &Callback,
    account: &AccountId,
    granted: &Granted,
    organisations: &[OrganisationChoice],
    notify_email: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), xero_sync_domain::Error> {
    let services = &callback.app.services;
    let grant = granted.grant;
    let existing = services.store.account_connections(account).await?;
    let live = |c: &Connection| c.status.is_live();
    // Connections to the same organisations made earlier through another Xero user: theirs
    // are no longer used once this consent's replace them.
    let mut replaced: Vec<GrantRelease> = Vec::new();
    for org in organisations {
        let before = existing.iter().find(|c| c.tenant_id == org.tenant_id);
        let moved = |b: &&Connection| live(b) && b.xero_connection_id != org.xero_connection_id && b.grant_id != grant;
        if let Some(b) = before.filter(moved) {
            // Listed before the connection moves on, so a failure below still leaves it to the sweep.
            let release = GrantRelease {
                grant_id: b.grant_id,
                account_id: account.clone(),
                xero_connection_ids: vec![b.xero_connection_id],
                due_at: now,
            };
            services.store.put_grant_release(&release).await?;
            replaced.push(release);
        }
        let mut connection = Connection {
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
            cleanup_pending: false,
            email_refused: before.and_then(|c| c.email_refused.clone()),
            scopes: granted.scopes.clone(),
            short_code: before.and_then(|c| c.short_code.clone()),
        };
        if connection.short_code.is_none() {
            connection.short_code = short_code(callback, &connection).await;
        }
        services.store.put_connection(&connection).await?;
    }
    // Released at once, or else left listed for the sweep (the grant is kept for that).
    let mut deferred: Vec<GrantId> = Vec::new();
    for release in replaced {
        if let Err(e) = release_grant(services, &callback.app.tokens, &release).await {
            tracing::warn!(grant = %release.grant_id, error = %e, "could not release the replaced Xero connection; the sweep will");
            deferred.push(release.grant_id);
        }
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
        let ending = Ending { to: ConnectionStatus::Disconnected, reason: &reason, if_last_activity: None };
        if let Err(e) = disconnect(services, &callback.app.tokens, old, &ending, now).await {
            // The new connection works regardless; the old one's clean-up is finished by the sweep.
            tracing::warn!(tenant = %old.tenant_id, error = %e, "could not end the replaced connection");
        }
    }
    let mut old_grants: Vec<GrantId> = existing.iter().map(|c| c.grant_id).filter(|g| *g != grant).collect();
    old_grants.sort();
    old_grants.dedup();
    // As they are now: a replaced connection whose clean-up failed still needs its grant's
    // tokens to remove its Xero connection, so its clean-up deletes them, not this.
    let now_held = services.store.account_connections(account).await?;
    let still_needed =
        |g: GrantId| now_held.iter().any(|c| c.grant_id == g && (c.status.is_live() || c.cleanup_pending));
    for old in old_grants {
        if still_live.iter().any(|c| c.grant_id == old) || deferred.contains(&old) || still_needed(old) {
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

/// A consent that ended with everything it made in use (or removed) needs no release.
pub async fn released_if_done(callback: &Callback, grant: GrantId, outcome: &Outcome, nothing_left: bool) {
    if !matches!(outcome, Outcome::Connected { .. }) || !nothing_left {
        return;
    }
    if let Err(e) = callback.app.services.store.delete_grant_release(grant).await {
        // It comes due and finds everything in use: a few wasted calls, nothing removed.
        tracing::warn!(grant = %grant, error = %e, "could not drop the consent's release");
    }
}

/// A consent whose tokens could not be kept: remove its Xero connections now, as best we can
/// (none of them is used yet; a reconnect of a connection in use keeps it).
pub async fn abandon_now(callback: &Callback, tokens: &TokenSet) {
    let app = &callback.app;
    let listed = match app.xero.connections(&tokens.access_token, Some(tokens.grant_id)).await {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the abandoned consent's connections");
            return;
        }
    };
    for connection in listed {
        let used = app.services.store.sharing_xero_connection(connection.id).await.map(|u| !u.is_empty());
        if matches!(used, Ok(false)) {
            if let Err(e) = app.xero.delete_connection(&tokens.access_token, connection.id).await {
                tracing::warn!(error = %e, "could not remove the abandoned consent's connection");
            }
        }
    }
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
        // The same Xero user may have connected it to another platform account already.
        if callback.app.services.store.sharing_xero_connection(org.xero_connection_id).await?.is_empty() {
            callback.app.xero.delete_connection(&tokens.access_token, org.xero_connection_id).await?;
        }
    }
    Ok(())
}
