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

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::decimal;
use xero_sync_domain::error::without_values;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{Connection, ConnectionKey, ConnectionStatus, ImportCursor, SyncRecord};
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::xero::{Accounts, Currencies, Items, TaxRates, TrackingCategories, date};
use xero_sync_runtime::App;
use xero_sync_runtime::lease::Lease;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, RateLimits, XeroError};

use crate::cursor::{self, Listed, Paging};

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
    #[error(transparent)]
    Store(#[from] Error),
}

impl ImportError {
    pub fn retry_after(&self) -> Option<StdDuration> {
        match self {
            Self::Later { after, .. } => Some(*after),
            Self::Store(_) | Self::Reconnect | Self::Refused(_) => None,
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
    let mut run = Run {
        app,
        policy: *policy,
        connection,
        key: key.clone(),
        limits: RateLimits::default(),
        summary: ImportSummary::default(),
        unreadable: Vec::new(),
    };
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
                            return Err(ImportError::Later {
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
                Err(TokenError::Aws(e)) => return Err(ImportError::Store(e)),
                Err(TokenError::Reconnect) => return Err(ImportError::Reconnect),
                Err(e) if !e.is_retryable() => return Err(ImportError::Refused(e.to_string())),
                Err(e) => {
                    let after = match &e {
                        TokenError::Xero(x) => x.retry_after(),
                        _ => None,
                    };
                    return Err(ImportError::Later {
                        reason: e.to_string(),
                        after: after.unwrap_or(StdDuration::from_secs(60)),
                    });
                }
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

    /// The records that parse, read digit for digit from Xero's text; the ids of the others
    /// are noted (see [`Run::keep_unreadable`]), never their content.
    fn parse<T: serde::de::DeserializeOwned>(&mut self, items: &[&Item]) -> Vec<T> {
        let mut parsed = Vec::with_capacity(items.len());
        for item in items {
            let de = &mut serde_json::Deserializer::from_str(item.raw.get());
            match serde_path_to_error::deserialize::<_, T>(de) {
                Ok(t) => parsed.push(t),
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

    async fn contact_events(&mut self, items: &[&Item]) -> Result<Vec<PlatformEvent>, ImportError> {
        let contacts: Vec<XeroContact> = self.parse(items);
        let ids: Vec<Uuid> = contacts.iter().map(|c| c.contact_id).collect();
        let mapped = self.app.services.store.customers_for_xero_ids(&self.key, &ids).await?;
        Ok(contacts
            .iter()
            .map(|c| {
                let data = contact_data(c, mapped.get(&c.contact_id).map(|id| id.as_str()));
                let dedup = format!("{}|{}", c.contact_id, xero_sync_domain::time::format(c.updated));
                self.event(EventKind::ContactUpserted, &dedup, data)
            })
            .collect())
    }

    /// Our invoices only (Xero's other sales invoices are not the platform's business), and only
    /// when their payment state moved since it was last announced.
    async fn invoice_events(&mut self, items: &[&Item]) -> Result<(Vec<PlatformEvent>, Vec<StateChange>), ImportError> {
        let invoices: Vec<XeroInvoice> = self.parse(items);
        let ids: Vec<Uuid> = invoices.iter().map(|i| i.invoice_id).collect();
        let store = &self.app.services.store;
        let ours = store.invoices_for_xero_ids(&self.key, &ids).await?;
        let mut events = Vec::new();
        let mut changes = Vec::new();
        for invoice in &invoices {
            let Some(platform_id) = ours.get(&invoice.invoice_id) else { continue };
            // A reference without its record (its write failed): nothing was announced for it.
            let Some(record) = store.get_sync_record(&self.key, platform_id).await? else { continue };
            let state = format!(
                "{}|{}|{}|{}",
                invoice.status,
                invoice.amount_paid.normalize(),
                invoice.amount_credited.normalize(),
                invoice.amount_due.normalize()
            );
            if record.payment_state.as_deref() == Some(state.as_str()) {
                continue;
            }
            let updated = xero_sync_domain::time::format(invoice.updated);
            let data = json!({
                "xero_invoice_id": invoice.invoice_id,
                "invoice_id": platform_id,
                "invoice_number": invoice.invoice_number,
                "status": invoice.status,
                "total": invoice.total.normalize().to_string(),
                "amount_due": invoice.amount_due.normalize().to_string(),
                "amount_paid": invoice.amount_paid.normalize().to_string(),
                "amount_credited": invoice.amount_credited.normalize().to_string(),
                "currency": invoice.currency_code,
                "fully_paid_on": invoice.fully_paid_on_date.map(|d| d.format("%Y-%m-%d").to_string()),
                "updated_at": updated,
            });
            // The time is in the id: PAID, payment deleted, PAID again is three facts.
            let dedup = format!("{}|{state}|{updated}", invoice.invoice_id);
            events.push(self.event(EventKind::InvoicePaymentStatusChanged, &dedup, data));
            changes.push(StateChange { record, state, status: invoice.status.clone() });
        }
        Ok((events, changes))
    }

    /// Records announced payment states on the sync records (so the push knows a paid invoice
    /// cannot change, and the next run what is news).
    async fn note_payment_states(&self, changes: Vec<StateChange>) -> Result<(), ImportError> {
        let store = &self.app.services.store;
        for change in changes {
            let mut record = Some(change.record);
            for _ in 0..3 {
                let Some(mut next) = record.take() else { break };
                next.payment_state = Some(change.state.clone());
                next.xero_status = Some(change.status.clone());
                match store.save_sync_record(&next).await {
                    Ok(_) => break,
                    // A push wrote meanwhile: read it again.
                    Err(Error::Conflict(_)) => record = store.get_sync_record(&self.key, &next.invoice_id).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    async fn payment_events(&mut self, items: &[&Item]) -> Result<Vec<PlatformEvent>, ImportError> {
        let payments: Vec<XeroPayment> = self.parse(items);
        let ids: Vec<Uuid> = payments.iter().filter_map(|p| p.invoice.as_ref().map(|i| i.invoice_id)).collect();
        let ours = self.app.services.store.invoices_for_xero_ids(&self.key, &ids).await?;
        let mut events = Vec::new();
        for p in &payments {
            let Some(invoice) = &p.invoice else { continue };
            let Some(platform_id) = ours.get(&invoice.invoice_id) else { continue };
            let kind = match p.status.as_str() {
                "AUTHORISED" => EventKind::PaymentRecorded,
                "DELETED" => EventKind::PaymentReversed,
                _ => continue,
            };
            let data = json!({
                "xero_payment_id": p.payment_id,
                "xero_invoice_id": invoice.invoice_id,
                "invoice_id": platform_id,
                "invoice_number": invoice.invoice_number,
                "amount": p.amount.normalize().to_string(),
                "currency": invoice.currency_code,
                "date": p.date.format("%Y-%m-%d").to_string(),
                "reference": p.reference.clone().filter(|r| !r.is_empty()),
                "status": p.status,
                "updated_at": xero_sync_domain::time::format(p.updated),
            });
            events.push(self.event(kind, &format!("{}|{}", p.payment_id, p.status), data));
        }
        Ok(events)
    }

    /// The five reference resources, one call each; an event for each that changed.
    async fn reference(&mut self) -> Result<Ended, ImportError> {
        let mut bodies = Vec::new();
        for path in ["/TaxRates", "/Accounts", "/Items", "/Currencies", "/TrackingCategories"] {
            if self.over_budget() {
                return Ok(Ended::Budget);
            }
            let mut request = ApiRequest::new(path);
            if path == "/TrackingCategories" {
                request.query = vec![("includeArchived", "true".into())];
            }
            bodies.push(self.get::<Box<RawValue>>(&request).await?);
        }
        let tax: TaxRates = parse_whole(&bodies[0], "tax rates")?;
        let accounts: Accounts = parse_whole(&bodies[1], "accounts")?;
        let items: Items = parse_whole(&bodies[2], "items")?;
        let currencies: Currencies = parse_whole(&bodies[3], "currencies")?;
        let tracking: TrackingCategories = parse_whole(&bodies[4], "tracking categories")?;
        let data = ReferenceData {
            read_at: self.app.now(),
            accounts: accounts.accounts,
            tax_rates: tax.tax_rates,
            tracking_categories: tracking.tracking_categories,
            items: items.items,
            currencies: currencies.currencies,
        };
        let changes = [
            (
                "tax_rates",
                EventKind::TaxRatesChanged,
                json!({ "tax_rates": data.tax_rates.iter().map(|t| json!({
                "tax_type": t.tax_type, "name": t.name, "status": t.status.clone().unwrap_or_else(|| "ACTIVE".into()),
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
                "status": a.status.clone().unwrap_or_else(|| "ACTIVE".into()), "tax_type": a.tax_type,
            })).collect::<Vec<_>>() }),
            ),
            (
                "items",
                EventKind::ItemsChanged,
                json!({ "items": data.items.iter().map(|i| {
                let sales = i.sales_details.as_ref();
                json!({
                    "code": i.code, "name": i.name, "description": i.description,
                    "unit_price": sales.and_then(|s| s.unit_price).map(|p| p.normalize().to_string()),
                    "account_code": sales.and_then(|s| s.account_code.clone()),
                    "tax_type": sales.and_then(|s| s.tax_type.clone()),
                    "is_sold": i.is_sold.unwrap_or(true),
                })
            }).collect::<Vec<_>>() }),
            ),
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
                "id": c.tracking_category_id, "name": c.name, "status": c.status.clone().unwrap_or_else(|| "ACTIVE".into()),
                "options": c.options.iter().map(|o| json!({
                    "id": o.tracking_option_id, "name": o.name, "status": o.status.clone().unwrap_or_else(|| "ACTIVE".into()) }))
                    .collect::<Vec<_>>(),
            })).collect::<Vec<_>>() }),
            ),
        ];
        let store = &self.app.services.store;
        // Keeps the settings' snapshot fresh (it is a cache: failing to keep it loses nothing).
        if let Err(e) = store.put_reference_data(&self.key, &data).await {
            tracing::warn!(error = %e, "reference snapshot not kept");
        }
        for (name, kind, payload) in changes {
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
        Ok(Ended::Done)
    }
}

/// An EventBridge entry holds 256 KiB: a list too large for one event (an organisation with
/// thousands of items, say) goes as numbered parts, `part` of `parts`, that together are the list.
fn in_parts(payload: Value) -> Vec<Value> {
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

/// A payment state to record once its event is published.
struct StateChange {
    /// As read when the change was found; saved conditionally on its version.
    record: SyncRecord,
    state: String,
    status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Incremental {
    Contacts,
    Invoices,
    Payments,
}

impl Incremental {
    fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Invoices => "invoices",
            Self::Payments => "payments",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::Contacts => "/Contacts",
            Self::Invoices => "/Invoices",
            Self::Payments => "/Payments",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Contacts => "Contacts",
            Self::Invoices => "Invoices",
            Self::Payments => "Payments",
        }
    }

    fn id_field(self) -> &'static str {
        match self {
            Self::Contacts => "ContactID",
            Self::Invoices => "InvoiceID",
            Self::Payments => "PaymentID",
        }
    }

    /// Invoices at the boundary are looked at again: their payment state is compared with what
    /// was announced, so a change made in the same instant is not missed and nothing repeats.
    fn rechecks_boundary(self) -> bool {
        matches!(self, Self::Invoices)
    }

    fn query(self) -> Vec<(&'static str, String)> {
        match self {
            // Archived contacts too: the platform must hear that one was archived.
            Self::Contacts => vec![("includeArchived", "true".into())],
            // createdByMyApp: only what we pushed; the references tell ours from another app's.
            Self::Invoices => vec![
                ("where", "Type==\"ACCREC\"".into()),
                ("summaryOnly", "true".into()),
                ("createdByMyApp", "true".into()),
            ],
            Self::Payments => vec![("where", "PaymentType==\"ACCRECPAYMENT\"".into())],
        }
    }
}

/// A reference list that does not parse is not delivered (a partial list would read as
/// deletions); it is tried again later.
fn parse_whole<T: serde::de::DeserializeOwned>(v: &RawValue, what: &str) -> Result<T, ImportError> {
    serde_json::from_str(v.get()).map_err(|e| ImportError::Later {
        reason: format!("Xero's {what} did not parse: {}", without_values(&e.to_string())),
        after: StdDuration::from_secs(300),
    })
}

fn xero_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.as_deref().and_then(date::parse))
}

/// The timestamps and dates the platform's events require: a Xero object without one is
/// skipped (and logged) rather than announced half-known.
fn xero_time_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    date::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text} is not a Xero date")))
}

fn xero_day<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Ok(xero_time(d)?.map(|t| t.date_naive()))
}

fn xero_day_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    Ok(xero_time_required(d)?.date_naive())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroPhone {
    #[serde(default)]
    phone_type: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    phone_area_code: Option<String>,
    #[serde(default)]
    phone_country_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroAddress {
    #[serde(default)]
    address_type: Option<String>,
    #[serde(default)]
    address_line1: Option<String>,
    #[serde(default)]
    address_line2: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    postal_code: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroContact {
    #[serde(rename = "ContactID")]
    contact_id: Uuid,
    #[serde(default)]
    name: String,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
    #[serde(default)]
    contact_status: Option<String>,
    #[serde(default)]
    is_customer: bool,
    #[serde(default)]
    phones: Vec<XeroPhone>,
    #[serde(default)]
    addresses: Vec<XeroAddress>,
    #[serde(rename = "UpdatedDateUTC", deserialize_with = "xero_time_required")]
    updated: DateTime<Utc>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A contact as the platform takes it. Xero often has only a name while the platform wants a
/// first and last name: then the first word is the first name and the rest the last ("Jane van
/// Dyk" → "Jane", "van Dyk"); a one-word name is a first name.
fn contact_data(c: &XeroContact, customer_id: Option<&str>) -> Value {
    let (mut first, mut last) = (non_empty(&c.first_name), non_empty(&c.last_name));
    if first.is_none() && last.is_none() {
        let name = c.name.trim();
        match name.split_once(char::is_whitespace) {
            Some((f, l)) => {
                first = Some(f.to_owned());
                last = Some(l.trim().to_owned());
            }
            None if !name.is_empty() => first = Some(name.to_owned()),
            None => {}
        }
    }
    let phones: Vec<Value> = c
        .phones
        .iter()
        .filter_map(|p| {
            let number = non_empty(&p.phone_number)?;
            let full = [non_empty(&p.phone_country_code), non_empty(&p.phone_area_code), Some(number)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some(json!({ "type": p.phone_type.clone().unwrap_or_else(|| "DEFAULT".into()), "number": full }))
        })
        .collect();
    let addresses: Vec<Value> = c
        .addresses
        .iter()
        .filter(|a| [&a.address_line1, &a.city, &a.postal_code, &a.country].iter().any(|f| non_empty(f).is_some()))
        .map(|a| {
            json!({
                // Xero's postal address is the billing address.
                "type": if a.address_type.as_deref() == Some("STREET") { "street" } else { "billing" },
                "line1": non_empty(&a.address_line1), "line2": non_empty(&a.address_line2),
                "city": non_empty(&a.city), "region": non_empty(&a.region),
                "postal_code": non_empty(&a.postal_code), "country": non_empty(&a.country),
            })
        })
        .collect();
    json!({
        "xero_contact_id": c.contact_id,
        "customer_id": customer_id,
        "name": c.name,
        "first_name": first,
        "last_name": last,
        "email": non_empty(&c.email_address),
        "phones": phones,
        "addresses": addresses,
        "archived": c.contact_status.as_deref() == Some("ARCHIVED"),
        "is_customer": c.is_customer,
        "updated_at": xero_sync_domain::time::format(c.updated),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroInvoice {
    #[serde(rename = "InvoiceID")]
    invoice_id: Uuid,
    #[serde(default)]
    invoice_number: Option<String>,
    status: String,
    #[serde(deserialize_with = "decimal::deserialize")]
    total: Decimal,
    #[serde(deserialize_with = "decimal::deserialize")]
    amount_due: Decimal,
    #[serde(deserialize_with = "decimal::deserialize")]
    amount_paid: Decimal,
    #[serde(default, deserialize_with = "decimal::deserialize")]
    amount_credited: Decimal,
    currency_code: String,
    #[serde(default, deserialize_with = "xero_day")]
    fully_paid_on_date: Option<NaiveDate>,
    #[serde(rename = "UpdatedDateUTC", deserialize_with = "xero_time_required")]
    updated: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PaymentInvoice {
    #[serde(rename = "InvoiceID")]
    invoice_id: Uuid,
    #[serde(default)]
    invoice_number: Option<String>,
    #[serde(default)]
    currency_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroPayment {
    #[serde(rename = "PaymentID")]
    payment_id: Uuid,
    #[serde(deserialize_with = "decimal::deserialize")]
    amount: Decimal,
    #[serde(deserialize_with = "xero_day_required")]
    date: NaiveDate,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    invoice: Option<PaymentInvoice>,
    #[serde(rename = "UpdatedDateUTC", deserialize_with = "xero_time_required")]
    updated: DateTime<Utc>,
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

    #[test]
    fn a_name_alone_is_split_into_first_and_last() {
        let contact: XeroContact = serde_json::from_value(json!({
            "ContactID": "00000000-0000-0000-0000-000000000001",
            "Name": "Jane van Dyk",
            "UpdatedDateUTC": "/Date(1573755038314+0000)/"
        }))
        .unwrap();
        let data = contact_data(&contact, None);
        assert_eq!((data["first_name"].as_str(), data["last_name"].as_str()), (Some("Jane"), Some("van Dyk")));
    }
}
