//! Telling an account something by email, without ever letting a dead address hold up the work
//! the email is about.
//!
//! A transient failure (SES throttling or unreachable) is an error: the caller's retry sends it.
//! A permanent refusal ([`Error::EmailRefused`]) is recorded on the connections the notice is
//! about (visible in the connection API) and counts as done: retrying would be refused again,
//! and the push or sweep that wanted to tell goes on. A refused address is held for
//! [`HOLD_REFUSED`], then tried once more (a sender identity fixed meanwhile, a mailbox back);
//! a new address is tried at once.

use chrono::{DateTime, Duration, Utc};
use xero_sync_domain::digest::sha256_hex;

use crate::aws::Services;
use xero_sync_domain::Error;
use xero_sync_domain::model::{Connection, EmailRefusal};
use xero_sync_domain::notify::Notice;

pub const HOLD_REFUSED: Duration = Duration::hours(24);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mailed {
    Sent,
    /// None of the connections has an address to write to.
    NoAddress,
    /// SES refused the address for good just now; recorded.
    Refused,
    /// SES refused this address lately; not tried again yet.
    Held,
}

/// Hashed so the connection records which address was refused without keeping it twice.
pub fn address_hash(address: &str) -> String {
    sha256_hex(address.trim().to_ascii_lowercase())
}

/// Whether `connection`'s address is one SES refused within [`HOLD_REFUSED`].
pub fn is_held(connection: &Connection, now: DateTime<Utc>) -> bool {
    match (&connection.notify_email, &connection.email_refused) {
        (Some(address), Some(refused)) => {
            refused.address_hash == address_hash(address) && now - refused.at < HOLD_REFUSED
        }
        _ => false,
    }
}

/// Sends `notice` to the address of the connections it is about (they share one account).
pub async fn tell(
    services: &Services,
    about: &[Connection],
    notice: Notice,
    now: DateTime<Utc>,
) -> Result<Mailed, Error> {
    let Some(address) = about.iter().find_map(|c| c.notify_email.clone()) else { return Ok(Mailed::NoAddress) };
    let hash = address_hash(&address);
    let same_address = |c: &&Connection| c.notify_email.as_deref().is_some_and(|a| address_hash(a) == hash);
    if about.iter().filter(same_address).any(|c| is_held(c, now)) {
        return Ok(Mailed::Held);
    }
    match services.notifier.send(&notice.to(address)).await {
        Ok(()) => {
            for c in about.iter().filter(same_address).filter(|c| c.email_refused.is_some()) {
                services.store.set_email_refusal(&c.key(), None).await?;
            }
            Ok(Mailed::Sent)
        }
        Err(Error::EmailRefused { code }) => {
            let refusal = EmailRefusal { address_hash: hash.clone(), code: code.clone(), at: now };
            for c in about.iter().filter(same_address) {
                services.store.set_email_refusal(&c.key(), Some(&refusal)).await?;
                tracing::warn!(account = %c.account_id, tenant = %c.tenant_id, code, "SES refused the account's address; held");
            }
            Ok(Mailed::Refused)
        }
        Err(e) => Err(e),
    }
}
