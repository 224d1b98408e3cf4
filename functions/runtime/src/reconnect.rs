//! A grant Xero no longer accepts: its connections wait for a reconnection, and the account and
//! the platform hear about it once. The token provider calls this when a refresh is refused.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{AccountId, Connection, ConnectionStatus, GrantId};
use xero_sync_domain::notify::Notice;
use xero_sync_domain::store::{StatusChange, at_most_once};

use crate::aws::Services;
use crate::mail;

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
                let change = StatusChange::new(
                    ConnectionStatus::NeedsReconnect,
                    vec![ConnectionStatus::Connected],
                    Some(RECONNECT_REASON.into()),
                    now,
                );
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
    let names: Vec<_> = affected.iter().map(|c| c.organisation_name.as_str()).collect();
    let notice = Notice {
        subject: format!("Reconnect Xero: {}", names.join(", ")),
        organisation: names.join(", "),
        what_happened: "Xero stopped accepting the connection to your organisation, so invoices are no longer sent \
            to Xero and nothing is imported from it. This happens when the Xero user who connected changes their \
            password, leaves the organisation, or removes the app in Xero."
            .into(),
        details: vec![],
        what_to_do: "Open the Xero settings in the platform and click Connect to Xero again. Invoices waiting in \
            the meantime are sent once you have reconnected."
            .into(),
    };
    mail::tell(services, affected, notice, now).await.map(|_| ())
}
