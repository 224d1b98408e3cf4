//! `Idempotency-Key` on Accounting API writes, as Xero documents it
//! (https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/): the same
//! key with the same request within the window replays the first answer, with another request
//! it is refused, and once the window has passed the key is forgotten, so the same request is
//! applied again. Exactly-once beyond the window is the client's job, as it is with Xero.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::http::{Reply, Req};
use crate::identity::TokenCtx;
use crate::server::Shared;
use crate::state::{IdempotentResponse, State};

/// How long Xero remembers an Idempotency-Key: "about 6 minutes" (same page as above).
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(360);

/// The longest Idempotency-Key Xero accepts (same page).
const MAX_KEY_LENGTH: usize = 128;

/// Keys kept at once, so a clock that never moves cannot grow the map without bound; past it
/// the oldest key is forgotten early.
const MAX_KEYS: usize = 10_000;

fn window() -> TimeDelta {
    TimeDelta::from_std(IDEMPOTENCY_WINDOW).unwrap_or(TimeDelta::MAX)
}

fn fingerprint(req: &Req) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method.as_str().as_bytes());
    hasher.update(req.lower_path().as_bytes());
    let mut query = req.query.clone();
    query.sort();
    hasher.update(format!("{query:?}").as_bytes());
    hasher.update(&req.body);
    format!("{:x}", hasher.finalize())
}

fn forget_expired(state: &mut State, now: DateTime<Utc>) {
    let window = window();
    state.idempotency.retain(|_, e| now.signed_duration_since(e.stored) < window);
    while state.idempotency.len() >= MAX_KEYS {
        let Some(oldest) = state.idempotency.iter().min_by_key(|(_, e)| e.stored).map(|(k, _)| k.clone()) else {
            break;
        };
        state.idempotency.remove(&oldest);
    }
}

/// Handles one Accounting API request, honouring its Idempotency-Key if it is a write.
pub fn handle(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant: Uuid) -> Reply {
    let is_write = matches!(req.method.as_str(), "POST" | "PUT" | "DELETE");
    let key = if is_write { req.header("idempotency-key").map(str::to_string) } else { None };
    let Some(key) = key else { return crate::accounting::route(state, shared, req, ctx, tenant) };
    if key.is_empty() || key.len() > MAX_KEY_LENGTH {
        return Reply::validation_message("The Idempotency-Key header must be between 1 and 128 characters long.");
    }
    let now = shared.clock.now();
    forget_expired(state, now);
    let fingerprint = fingerprint(req);
    if let Some(previous) = state.idempotency.get(&(tenant, key.clone())) {
        return if previous.fingerprint == fingerprint {
            previous.reply.clone()
        } else {
            Reply::validation_message(
                "The Idempotency-Key has already been used for a different request. Use a new key for a new request.",
            )
        };
    }
    let reply = crate::accounting::route(state, shared, req, ctx, tenant);
    // A 5xx did not happen as far as Xero is concerned, so the retry runs for real.
    if reply.status < 500 {
        state.idempotency.insert((tenant, key), IdempotentResponse { fingerprint, reply: reply.clone(), stored: now });
    }
    reply
}
