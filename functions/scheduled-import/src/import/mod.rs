//! One connection's import: what changed in Xero since last time, as events for the platform.
//!
//! * **Incremental resources** (contacts, our invoices' payment status, payments on sales
//!   invoices) are read with `If-Modified-Since`, oldest change first, 1000 a page. Paging is by
//!   time, not page number: after each page the events are published, then the cursor moves to
//!   the newest UpdatedDateUTC delivered (with the ids delivered at that instant) and the next
//!   request asks for changes since then. Page numbers would skip records: one edited on an
//!   earlier page moves to the end and shifts the rest back. Only when a whole page shares one
//!   instant does the run page by number. A run that dies resumes from its cursor: no gap, no
//!   duplicate. Xero's filter is to the second and includes it, so what was already delivered
//!   at the boundary comes back and is dropped here.
//! * **Credit notes** reach the platform through the invoices they are allocated to: Xero
//!   stamps the invoice with the allocation, so the invoice's `AmountCredited` and `AmountDue`
//!   arrive in `invoice.payment_status_changed` (the event contract has no credit-note event).
//! * **Reference data** (tax rates, accounts, items, currencies, tracking) is read whole, one
//!   call each, and published only when its hash differs from what was last delivered; the
//!   snapshot settings use is refreshed on the way.
//! * **Budget.** Xero allows 5,000 calls a day per organisation, which pushes need too: the
//!   import stops when fewer than [`ImportPolicy::day_reserve`] remain and resumes next run. A
//!   429 is waited out in-process when short, otherwise handed back to the queue.
//! * One import per connection at a time (a lease), so two runs never race a cursor.

pub mod changes;
mod documents;
mod reference;
mod resource;

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::Duration;
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::error::without_values;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{Connection, ConnectionKey, ConnectionStatus, ImportCursor};
use xero_sync_domain::xero::date;
use xero_sync_runtime::App;
use xero_sync_runtime::lease::Lease;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, RateLimits, XeroError};

use crate::cursor::{self, Listed, Paging};
use documents::StateChange;
use resource::Incremental;

/// Unreadable records kept on a cursor to try again; beyond this they are only logged.
const MAX_UNREADABLE: usize = 500;
/// Unreadable records read again per resource and run (one `IDs=` call).
const RETRY_PER_RUN: usize = 50;

#[derive(Debug, Clone, Copy)]
pub struct ImportPolicy {
    /// Xero's largest page.
    pub page_size: u32,
    /// Calls left for the day below which the import stops, leaving them to invoice pushes.
    pub day_reserve: u32,
    /// The longest Retry-After waited out in-process.
    pub max_wait: StdDuration,
    /// How long one connection's import may hold its lease (longer than the function's timeout).
    pub lease: Duration,
    /// How far back each request reaches before the newest change delivered, for records Xero
    /// makes visible a little after the time they carry (see [`crate::cursor`]).
    pub overlap: Duration,
    /// How often reference data is read (with webhooks on, rarely).
    pub cadence: crate::Cadence,
}

impl Default for ImportPolicy {
    fn default() -> Self {
        // The lease is shorter than the import queue's visibility timeout (an hour), so a
        // redelivery after a run that died finds it expired; the function's timeout is shorter still.
        Self {
            page_size: 1000,
            day_reserve: 500,
            max_wait: StdDuration::from_secs(10),
            lease: Duration::minutes(14),
            // Xero does not say how late a record may become visible; a few seconds is what
            // replicas lag by. Each run's first request re-reads what changed in this window.
            overlap: Duration::seconds(2),
            cadence: crate::Cadence::default(),
        }
    }
}

/// What one import did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub events: usize,
    pub calls: u32,
    /// Records Xero sent that did not parse: not delivered, kept to try again, logged by id.
    pub unreadable: usize,
    /// Why it stopped before the end (it resumes next run), if it did.
    pub stopped: Option<String>,
    /// Why it did nothing (not connected, another import running), if it did not run.
    pub skipped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the organisation must be reconnected")]
    Reconnect,
    /// Xero refuses the request itself (400, 403, 404): another go will not help; the next
    /// scheduled run tries again.
    #[error("Xero refused the import: {0}")]
    Refused(String),
    /// Worth another go after `after` (a long Retry-After, Xero or AWS trouble).
    #[error("{reason}; try again in {} s", after.as_secs())]
    Later { reason: String, after: StdDuration },
    /// A wait for Xero's limits (the governor's, or Xero's 429): no fault of the import, so
    /// the message is held, not failed.
    #[error("{reason}; held for {} s", after.as_secs())]
    Held { reason: String, after: StdDuration },
    #[error(transparent)]
    Store(#[from] Error),
}

/// A failed Xero call as the import's error.
pub(super) fn import_error(e: TokenError) -> ImportError {
    match e {
        TokenError::Aws(e) => ImportError::Store(e),
        TokenError::Reconnect => ImportError::Reconnect,
        e if e.is_rate_wait() => {
            let after = e.retry_after().unwrap_or(StdDuration::from_secs(60));
            ImportError::Held { reason: e.to_string(), after }
        }
        e if !e.is_retryable() => ImportError::Refused(e.to_string()),
        e => {
            let after = match &e {
                TokenError::Xero(x) => x.retry_after(),
                _ => None,
            };
            ImportError::Later { reason: e.to_string(), after: after.unwrap_or(StdDuration::from_secs(60)) }
        }
    }
}

impl ImportError {
    pub fn retry_after(&self) -> Option<StdDuration> {
        match self {
            Self::Later { after, .. } | Self::Held { after, .. } => Some(*after),
            Self::Store(_) | Self::Reconnect | Self::Refused(_) => None,
        }
    }

    /// The queue's answer: held for Xero's limits, or tried again after the wait asked for.
    pub fn retry(&self, otherwise: StdDuration) -> xero_sync_runtime::queue::Retry {
        match self {
            Self::Held { after, .. } => xero_sync_runtime::queue::Retry::held(*after),
            other => xero_sync_runtime::queue::Retry::later(other.retry_after().or(Some(otherwise))),
        }
    }
}

/// How a resource's run ended, short of an error.
enum Ended {
    Done,
    /// The day's budget is nearly spent.
    Budget,
}

struct Run<'a> {
    app: &'a App,
    policy: ImportPolicy,
    connection: Connection,
    key: ConnectionKey,
    limits: RateLimits,
    summary: ImportSummary,
    /// Ids of records of the page at hand that did not parse.
    unreadable: Vec<String>,
}

/// One record of a page: what the cursor needs, and Xero's text of it.
struct Item {
    listed: Listed,
    raw: Box<RawValue>,
}

pub async fn import(app: &App, policy: &ImportPolicy, key: &ConnectionKey) -> Result<ImportSummary, ImportError> {
    let store = &app.services.store;
    let skip = |why: &str| Ok(ImportSummary { skipped: Some(why.to_owned()), ..Default::default() });
    let Some(connection) = store.get_connection(key).await? else { return skip("no such connection") };
    if connection.status != ConnectionStatus::Connected {
        return skip("not connected");
    }
    let lease = format!("import#{}#{}", key.account_id, key.tenant_id);
    let owner = Uuid::new_v4().to_string();
    let now = app.now();
    let Some(lease) = Lease::try_take(store.as_ref(), &lease, &owner, policy.lease, now).await? else {
        return skip("another import of this connection is running");
    };
    // A connection stored before the organisation index existed joins it here, so that
    // Xero's webhooks for it are not dropped as an unknown organisation's.
    if let Err(e) = store.index_connection(&connection).await {
        lease.release().await;
        return Err(e.into());
    }
    let mut run = Run::new(app, policy, connection);
    let result = run.all().await;
    lease.release().await;
    let summary = run.summary;
    let now = app.now();
    // What was delivered counts, even if a later resource failed.
    if summary.events > 0 {
        store.record_activity(key, now).await?;
    }
    match result {
        Ok(()) => {}
        // Xero refused the grant: the connection now waits for the account to reconnect.
        Err(ImportError::Reconnect) => return skip("the organisation must be reconnected"),
        Err(e) => return Err(e),
    }
    store.record_sync(key, now).await?;
    tracing::info!(account = %key.account_id, tenant = %key.tenant_id, events = summary.events, calls = summary.calls, stopped = ?summary.stopped, "import done");
    Ok(summary)
}

impl<'a> Run<'a> {
    /// A run for a connection, with nothing counted yet (the import's and the webhooks' alike).
    fn new(app: &'a App, policy: &ImportPolicy, connection: Connection) -> Self {
        Run {
            app,
            policy: *policy,
            key: connection.key(),
            connection,
            limits: RateLimits::default(),
            summary: ImportSummary::default(),
            unreadable: Vec::new(),
        }
    }
}

impl Run<'_> {
    async fn all(&mut self) -> Result<(), ImportError> {
        for resource in [Incremental::Contacts, Incremental::Invoices, Incremental::Payments] {
            if let Ended::Budget = self.incremental(resource).await? {
                return Ok(());
            }
        }
        if let Ended::Budget = self.reference().await? {
            return Ok(());
        }
        Ok(())
    }

    fn over_budget(&mut self) -> bool {
        let low = self.limits.day_remaining.is_some_and(|left| left <= self.policy.day_reserve);
        if low && self.summary.stopped.is_none() {
            self.summary.stopped = Some(format!(
                "fewer than {} Xero calls left today; the rest waits for the next run",
                self.policy.day_reserve
            ));
        }
        low
    }

    /// One GET, waiting out a short Retry-After.
    async fn get<T: serde::de::DeserializeOwned>(&mut self, request: &ApiRequest<'_>) -> Result<T, ImportError> {
        loop {
            self.summary.calls += 1;
            match self.app.tokens.get::<T>(&self.connection, request).await {
                Ok(response) => {
                    // A response without the headers keeps what the last one said.
                    let l = response.limits;
                    self.limits = RateLimits {
                        minute_remaining: l.minute_remaining.or(self.limits.minute_remaining),
                        day_remaining: l.day_remaining.or(self.limits.day_remaining),
                        app_minute_remaining: l.app_minute_remaining.or(self.limits.app_minute_remaining),
                    };
                    if self.limits.minute_remaining.is_some_and(|left| left == 0) {
                        // The minute is used up: let it pass rather than collect a 429.
                        self.limits.minute_remaining = None;
                        if self.policy.max_wait < StdDuration::from_secs(60) {
                            return Err(ImportError::Held {
                                reason: "Xero's minute limit is used up".into(),
                                after: StdDuration::from_secs(60),
                            });
                        }
                        tokio::time::sleep(StdDuration::from_secs(60)).await;
                    }
                    return Ok(response.body);
                }
                Err(TokenError::Xero(XeroError::RateLimited { retry_after, .. }))
                    if retry_after <= self.policy.max_wait =>
                {
                    tokio::time::sleep(retry_after).await;
                }
                Err(e) => return Err(import_error(e)),
            }
        }
    }

    async fn publish(&mut self, events: &[PlatformEvent]) -> Result<(), ImportError> {
        self.app.services.events.publish(events).await.map_err(|e| ImportError::Later {
            reason: format!("publishing events: {e}"),
            after: StdDuration::from_secs(30),
        })?;
        self.summary.events += events.len();
        Ok(())
    }

    async fn save_cursor(&self, cursor: &ImportCursor) -> Result<ImportCursor, ImportError> {
        let mut next = cursor.clone();
        next.updated_at = self.app.now();
        Ok(self.app.services.store.save_cursor(&self.key, &next).await?)
    }

    async fn incremental(&mut self, resource: Incremental) -> Result<Ended, ImportError> {
        let store = &self.app.services.store;
        let mut cursor = store
            .get_cursor(&self.key, resource.name())
            .await?
            .unwrap_or_else(|| ImportCursor::new(resource.name(), self.app.now()));
        let paging = Paging { page_size: self.policy.page_size, overlap: self.policy.overlap };
        if !cursor.unreadable.is_empty() && !self.over_budget() {
            cursor = self.retry_unreadable(resource, cursor).await?;
        }
        let run_began = self.app.now();
        loop {
            if self.over_budget() {
                return Ok(Ended::Budget);
            }
            let (since, page) = cursor::request(&cursor, &paging);
            let mut request = ApiRequest::new(resource.path());
            request.if_modified_since = since;
            request.query = vec![
                ("page", page.to_string()),
                ("pageSize", self.policy.page_size.to_string()),
                ("order", "UpdatedDateUTC ASC".into()),
            ];
            request.query.extend(resource.query());
            let items = self.list(resource, &request).await?;
            let listed: Vec<Listed> = items.iter().map(|i| i.listed.clone()).collect();
            // Invoices are compared with the payment state announced, so a repeat is no news.
            let fresh = if resource.rechecks_boundary() {
                vec![true; items.len()]
            } else {
                cursor::fresh(&cursor, &listed, since)
            };
            let news: Vec<&Item> = items.iter().zip(fresh).filter(|(_, fresh)| *fresh).map(|(i, _)| i).collect();
            let (events, after) = self.events_for(resource, &news).await?;
            self.publish(&events).await?;
            // Only once the platform has them: what the next run compares against.
            self.note_payment_states(after).await?;
            self.keep_unreadable(resource, &mut cursor);
            let more = cursor::advance(&mut cursor, &listed, since, &paging, run_began);
            cursor = self.save_cursor(&cursor).await?;
            if !more {
                return Ok(Ended::Done);
            }
        }
    }

    /// A page of a resource, each record with what the cursor needs of it.
    async fn list(&mut self, resource: Incremental, request: &ApiRequest<'_>) -> Result<Vec<Item>, ImportError> {
        let body: HashMap<String, Box<RawValue>> = self.get(request).await?;
        let Some(list) = body.get(resource.key()) else { return Ok(Vec::new()) };
        let raws: Vec<Box<RawValue>> = serde_json::from_str(list.get()).map_err(|e| ImportError::Later {
            reason: format!("Xero's {} list did not parse: {}", resource.name(), without_values(&e.to_string())),
            after: StdDuration::from_secs(300),
        })?;
        Ok(raws
            .into_iter()
            .map(|raw| {
                let head: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                let id = head.get(resource.id_field()).and_then(Value::as_str).unwrap_or_default().to_owned();
                let updated = head.get("UpdatedDateUTC").and_then(Value::as_str).and_then(date::parse);
                Item { listed: Listed { id, updated }, raw }
            })
            .collect())
    }

    /// Records that did not parse are kept on the cursor (and tried again each run), counted in
    /// the summary and logged by id: a record the platform never hears of is never silent.
    fn keep_unreadable(&mut self, resource: Incremental, cursor: &mut ImportCursor) {
        let ids = std::mem::take(&mut self.unreadable);
        if ids.is_empty() {
            return;
        }
        tracing::warn!(resource = resource.name(), count = ids.len(), ids = ?ids, "Xero records did not parse; kept to try again");
        self.summary.unreadable += ids.len();
        for id in ids.into_iter().filter(|id| !id.is_empty()) {
            if !cursor.unreadable.contains(&id) && cursor.unreadable.len() < MAX_UNREADABLE {
                cursor.unreadable.push(id);
            }
        }
    }

    /// Reads again the records that did not parse before: those that do now are delivered.
    async fn retry_unreadable(
        &mut self,
        resource: Incremental,
        mut cursor: ImportCursor,
    ) -> Result<ImportCursor, ImportError> {
        // Payments take no IDs=: one call each, so a few a run; the others one IDs= call.
        let per_run = if resource == Incremental::Payments { 5 } else { RETRY_PER_RUN };
        let tried: Vec<String> = cursor.unreadable.iter().take(per_run).cloned().collect();
        let mut items = Vec::new();
        let fetched = match resource {
            Incremental::Contacts | Incremental::Invoices => {
                let mut request = ApiRequest::new(resource.path());
                request.query = vec![("IDs", tried.join(",")), ("page", "1".into())];
                request.query.extend(resource.query());
                self.list(resource, &request).await.map(|found| items = found)
            }
            Incremental::Payments => {
                let mut outcome = Ok(());
                for id in &tried {
                    match self.list(resource, &ApiRequest::new(&format!("/Payments/{id}"))).await {
                        Ok(found) => items.extend(found),
                        Err(e) => outcome = Err(e),
                    }
                }
                outcome
            }
        };
        match fetched {
            Ok(()) => {}
            // Trouble that stops the whole import stops it here too.
            Err(e @ (ImportError::Reconnect | ImportError::Store(_))) => return Err(e),
            // Reading them again failed: the import itself goes on; they are tried next run.
            Err(e) => tracing::warn!(resource = resource.name(), error = %e, "unreadable records not read again"),
        }
        let news: Vec<&Item> = items.iter().collect();
        let (events, after) = self.events_for(resource, &news).await?;
        self.publish(&events).await?;
        self.note_payment_states(after).await?;
        let delivered: Vec<Listed> = items.iter().map(|i| i.listed.clone()).collect();
        cursor::remember(&mut cursor, &delivered);
        let still = std::mem::take(&mut self.unreadable);
        let readable = |id: &String| items.iter().any(|i| &i.listed.id == id) && !still.contains(id);
        // The ones tried go to the back, so ones that never parse do not keep the rest waiting.
        let (tried_now, rest): (Vec<String>, Vec<String>) =
            cursor.unreadable.drain(..).partition(|id| tried.contains(id));
        cursor.unreadable = rest.into_iter().chain(tried_now.into_iter().filter(|id| !readable(id))).collect();
        self.summary.unreadable += still.iter().filter(|id| !tried.contains(id)).count();
        self.save_cursor(&cursor).await
    }

    /// The events for a page, and the payment states to record once they are published.
    async fn events_for(
        &mut self,
        resource: Incremental,
        items: &[&Item],
    ) -> Result<(Vec<PlatformEvent>, Vec<StateChange>), ImportError> {
        if items.is_empty() {
            return Ok(Default::default());
        }
        match resource {
            Incremental::Contacts => Ok((self.contact_events(items).await?, Vec::new())),
            Incremental::Invoices => self.invoice_events(items).await,
            Incremental::Payments => Ok((self.payment_events(items).await?, Vec::new())),
        }
    }

    /// The records that parse (read digit for digit from Xero's text) and have what `read`
    /// needs for their event; the ids of the others are noted (see [`Run::keep_unreadable`]),
    /// never their content.
    fn parse<W: serde::de::DeserializeOwned, T>(
        &mut self,
        items: &[&Item],
        read: fn(W) -> Result<T, &'static str>,
    ) -> Vec<T> {
        let mut parsed = Vec::with_capacity(items.len());
        for item in items {
            let de = &mut serde_json::Deserializer::from_str(item.raw.get());
            match serde_path_to_error::deserialize::<_, W>(de) {
                Ok(wire) => match read(wire) {
                    Ok(t) => parsed.push(t),
                    Err(field) => {
                        tracing::debug!(id = %item.listed.id, field, "Xero record lacks what its event needs");
                        self.unreadable.push(item.listed.id.clone());
                    }
                },
                Err(e) => {
                    tracing::debug!(id = %item.listed.id, path = %e.path(), error = %without_values(&e.inner().to_string()), "Xero record did not parse");
                    self.unreadable.push(item.listed.id.clone());
                }
            }
        }
        parsed
    }

    fn event(&self, kind: EventKind, dedup: &str, data: Value) -> PlatformEvent {
        PlatformEvent::new(kind, self.key.account_id.clone(), Some(self.key.tenant_id), dedup, self.app.now(), data)
    }
}
