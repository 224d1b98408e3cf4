//! The organisation's reference data, read whole and announced only when it changed.

use std::time::Duration as StdDuration;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::ImportCursor;
use xero_sync_domain::reference::{ITEMS_CURSOR, items_payload};
use xero_sync_domain::xero::{RecordStatus, TaxRateStatus};
use xero_sync_runtime::reference;

use super::{Ended, ImportError, Run};

/// The cursor that says when reference data was last read (`read_at`) and last read whole
/// (`modified_since`).
const READ: &str = "reference";

impl Run<'_> {
    /// The five reference resources, one call each; an event for each that changed. Without
    /// webhooks, every run and whole. With them, once in [`Cadence::reference_every`]: Accounts
    /// and Items only as changed since the last read (`If-Modified-Since`, which Xero honours
    /// there) onto the stored snapshot, the other three whole (Xero does not), and all five whole
    /// once in [`Cadence::reference_full_every`], since `If-Modified-Since` never shows a deletion.
    ///
    /// [`Cadence::reference_every`]: crate::Cadence::reference_every
    /// [`Cadence::reference_full_every`]: crate::Cadence::reference_full_every
    pub(super) async fn reference(&mut self) -> Result<Ended, ImportError> {
        let cadence = self.policy.cadence;
        let began = self.app.now();
        let store = &self.app.services.store;
        let mut read = store.get_cursor(&self.key, READ).await?.unwrap_or_else(|| ImportCursor::new(READ, began));
        if read.read_at.is_some_and(|at| began - at < cadence.reference_every) {
            return Ok(Ended::Done);
        }
        let base = match (cadence.webhooks, read.read_at, read.modified_since) {
            (true, Some(last), Some(whole)) if began - whole < cadence.reference_full_every => {
                let since = last - self.policy.overlap;
                match store.get_reference_data(&self.key).await? {
                    // Only a snapshot of the last read (or later) holds what it saw. An older one
                    // is left from before the lists grew too large to keep, or from a failed
                    // write, and changes laid onto it would lose what came in between.
                    Some(kept) if kept.read_at >= last => Base::Onto(kept, since),
                    _ => Base::Unkept(since),
                }
            }
            _ => Base::Whole,
        };
        let mut bodies = Vec::with_capacity(reference::LISTS.len());
        // Lists known not to have changed although their contents are not at hand.
        let mut unchanged: Vec<&str> = Vec::new();
        for path in reference::LISTS {
            if self.over_budget() {
                return Ok(Ended::Budget);
            }
            let mut request = reference::request(path);
            request.if_modified_since = base.since().filter(|_| reference::takes_if_modified_since(path));
            let mut body = self.get::<Box<RawValue>>(&request).await?;
            if matches!(base, Base::Unkept(_)) && request.if_modified_since.is_some() {
                if lists_nothing(&body, path) {
                    unchanged.push(path);
                } else {
                    // A change, and no snapshot to lay it onto (it was too large to keep):
                    // this list is read whole.
                    if self.over_budget() {
                        return Ok(Ended::Budget);
                    }
                    request.if_modified_since = None;
                    body = self.get::<Box<RawValue>>(&request).await?;
                }
            }
            bodies.push(body);
        }
        // A list that does not parse is not delivered (a partial list would read as
        // deletions); it is tried again later.
        let later = |e: xero_sync_xero::XeroError| ImportError::Later {
            reason: e.to_string(),
            after: StdDuration::from_secs(300),
        };
        let data = match &base {
            Base::Onto(kept, _) => reference::assemble_onto(kept, &bodies, self.app.now()).map_err(later)?,
            Base::Whole | Base::Unkept(_) => reference::assemble(&bodies, self.app.now()).map_err(later)?,
        };
        let changes = [
            (
                "tax_rates",
                EventKind::TaxRatesChanged,
                json!({ "tax_rates": data.tax_rates.iter().map(|t| json!({
                "tax_type": t.tax_type, "name": t.name, "status": t.status.unwrap_or(TaxRateStatus::Active),
                "effective_rate": t.effective().normalize().to_string(),
                "components": t.tax_components.iter().map(|c| json!({
                    "name": c.name, "rate": c.rate.normalize().to_string(), "is_compound": c.is_compound })).collect::<Vec<_>>(),
                "can_apply_to_revenue": t.can_apply_to_revenue.unwrap_or(true),
            })).collect::<Vec<_>>() }),
            ),
            (
                "accounts",
                EventKind::AccountsChanged,
                json!({ "accounts": data.accounts.iter().map(|a| json!({
                "code": a.code, "name": a.name, "type": a.account_type,
                "status": a.status.unwrap_or(RecordStatus::Active), "tax_type": a.tax_type,
            })).collect::<Vec<_>>() }),
            ),
            (ITEMS_CURSOR, EventKind::ItemsChanged, items_payload(&data.items)),
            (
                "currencies",
                EventKind::CurrenciesChanged,
                json!({ "currencies": data.currencies.iter().map(|c| json!({
                "code": c.code, "description": c.description })).collect::<Vec<_>>() }),
            ),
            (
                "tracking",
                EventKind::TrackingChanged,
                json!({ "tracking_categories": data.tracking_categories.iter().map(|c| json!({
                "id": c.tracking_category_id, "name": c.name, "status": c.status.unwrap_or(RecordStatus::Active),
                "options": c.options.iter().map(|o| json!({
                    "id": o.tracking_option_id, "name": o.name, "status": o.status.unwrap_or(RecordStatus::Active) }))
                    .collect::<Vec<_>>(),
            })).collect::<Vec<_>>() }),
            ),
        ];
        let store = &self.app.services.store;
        // Keeps the settings' snapshot fresh (it is a cache: failing to keep it loses nothing).
        // Lists left unread are empty here: such a snapshot would read as deletions.
        if unchanged.is_empty()
            && let Err(e) = store.put_reference_data(&self.key, &data).await
        {
            tracing::warn!(error = %e, "reference snapshot not kept");
        }
        for (name, kind, payload) in changes {
            if unchanged.iter().any(|path| path[1..].eq_ignore_ascii_case(name)) {
                continue;
            }
            let hash: String = xero_sync_domain::digest::sha256_hex(payload.to_string());
            let cursor =
                store.get_cursor(&self.key, name).await?.unwrap_or_else(|| ImportCursor::new(name, self.app.now()));
            if cursor.content_hash.as_deref() == Some(hash.as_str()) {
                continue;
            }
            let events: Vec<PlatformEvent> = in_parts(payload)
                .into_iter()
                .enumerate()
                .map(|(n, part)| self.event(kind, &format!("{name}|{hash}|{n}"), part))
                .collect();
            self.publish(&events).await?;
            self.save_cursor(&ImportCursor { content_hash: Some(hash), ..cursor }).await?;
        }
        read.read_at = Some(began);
        if matches!(base, Base::Whole) {
            read.modified_since = Some(began);
        }
        self.save_cursor(&read).await?;
        Ok(Ended::Done)
    }
}

/// What the read lays Xero's answers onto.
enum Base {
    /// Nothing: every list is read whole.
    Whole,
    /// The kept snapshot; Accounts and Items are asked for what changed since then.
    Onto(xero_sync_domain::reference::ReferenceData, chrono::DateTime<chrono::Utc>),
    /// No snapshot (too large to keep). Accounts and Items are still asked for what changed,
    /// so that a quiet day costs a few bytes; one that changed is read again whole.
    Unkept(chrono::DateTime<chrono::Utc>),
}

impl Base {
    fn since(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Base::Whole => None,
            Base::Onto(_, since) | Base::Unkept(since) => Some(*since),
        }
    }
}

/// Whether Xero's answer for `path` lists no records. An answer that cannot be read this way
/// counts as listing some, so the list is read whole.
fn lists_nothing(body: &RawValue, path: &str) -> bool {
    serde_json::from_str::<Value>(body.get())
        .ok()
        .and_then(|v| v.get(&path[1..]).and_then(Value::as_array).map(Vec::is_empty))
        .unwrap_or(false)
}

/// An EventBridge entry holds 256 KiB: a list too large for one event (an organisation with
/// thousands of items, say) goes as numbered parts, `part` of `parts`, that together are the list.
pub(super) fn in_parts(payload: Value) -> Vec<Value> {
    const MAX_PART: usize = 200 * 1024;
    if payload.to_string().len() <= MAX_PART {
        return vec![payload];
    }
    let Some((key, Value::Array(list))) =
        payload.as_object().and_then(|m| m.iter().next()).map(|(k, v)| (k.clone(), v.clone()))
    else {
        return vec![payload];
    };
    let mut parts: Vec<Vec<Value>> = vec![Vec::new()];
    let mut size = 0;
    for entry in list {
        let len = entry.to_string().len() + 1;
        if size + len > MAX_PART && !parts.last().is_none_or(Vec::is_empty) {
            parts.push(Vec::new());
            size = 0;
        }
        size += len;
        parts.last_mut().expect("there is always a last part").push(entry);
    }
    let total = parts.len();
    parts.into_iter().enumerate().map(|(n, part)| json!({ key.clone(): part, "part": n + 1, "parts": total })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_too_large_for_one_event_goes_in_numbered_parts_that_add_up_to_it() {
        let items: Vec<Value> =
            (0..4000).map(|n| json!({ "code": format!("ITEM-{n:05}"), "name": "x".repeat(80) })).collect();
        let parts = in_parts(json!({ "items": items }));
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.to_string().len() < 256 * 1024));
        let total: usize = parts.iter().map(|p| p["items"].as_array().unwrap().len()).sum();
        assert_eq!(total, 4000);
        assert_eq!(parts.last().unwrap()["part"], parts.len());
        assert_eq!(parts[0]["parts"], parts.len());
        assert_eq!(in_parts(json!({ "items": [] })), vec![json!({ "items": [] })], "small lists stay whole");
    }
}
