//! The push: platform invoice events become Xero invoices, each exactly once.
//!
//! One call handles the events of one connection: a webhook's single event, or a backfill's
//! chunk of up to fifty. For each invoice:
//!
//! 1. **Decide** from the sync record, without Xero: an event older than the one applied is
//!    dropped; content whose hash equals the last written (or refused) content is unchanged; an
//!    invoice the settings cannot map fails with the problems named.
//! 2. **Claim** the sync record (a conditional write that also marks the write as in flight).
//!    A claim still set when the next pusher arrives means the last one died midway, so its
//!    write may have reached Xero: the record becomes *uncertain*.
//! 3. **Find contacts** ([`crate::contact::find_many`]); a customer Xero does not know travels
//!    with the invoice and Xero creates the contact.
//! 4. **Look before creating again**: uncertain creates are looked up by InvoiceNumber first,
//!    and any found are updated instead.
//! 5. **Write**: creates in one `PUT /Invoices`, updates and voids in one `POST /Invoices`,
//!    `summarizeErrors=false` so one bad invoice does not sink the rest, each with an
//!    Idempotency-Key derived from the request, so a repeat is replayed by Xero, not applied.
//!    429s, 5xx and timeouts are retried in-process (honouring Retry-After) a few times, then
//!    handed back to the queue with the wait.
//! 6. **Record and tell**: the sync record, `invoice.synced` or `invoice.sync_failed` (ids
//!    derived from the content, so a repeat is recognisable), one email per failure, and the
//!    activity that keeps the connection from the inactivity sweep.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use xero_sync_aws::Queue;
use xero_sync_domain::Error;
use xero_sync_domain::digest::hex;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{
    Connection, ConnectionKey, ConnectionStatus, ContactMapping, ContactMatch, ParkedPush, PlatformCustomerId,
    SyncRecord, SyncStatus, TenantId,
};
use xero_sync_domain::notify::Notice;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_domain::store::at_most_once;
use xero_sync_domain::xero::TrackingCategory;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_runtime::{App, mail};
use xero_sync_xero::{ApiRequest, XeroError};

use crate::contact::Found;
use crate::event::{EventOrder, EventType, InvoiceEvent};
use crate::mapping::{ContactRef, content_hash, xero_invoice};

/// Xero takes at most this many invoices in one request.
pub const XERO_BATCH: usize = 50;
/// How long a failure email is remembered, so a redelivery does not send it again.
const REMEMBER_NOTICES: Duration = Duration::days(30);
/// The content hash recorded for a void.
const VOID: &str = "void";

/// How hard one invocation tries before handing an event back to the queue.
#[derive(Debug, Clone, Copy)]
pub struct PushPolicy {
    /// Attempts at a Xero write within one invocation.
    pub attempts: u32,
    /// The first wait after a 5xx or timeout; it doubles with each attempt.
    pub backoff: StdDuration,
    /// The longest wait spent in-process; a longer Retry-After goes back to the queue.
    pub max_wait: StdDuration,
    /// How long a claim on an invoice lasts. It must outlast a push (the function's timeout)
    /// and be shorter than the queue's visibility timeout, so a redelivery can take over from a
    /// pusher that died.
    pub claim_for: Duration,
    /// How soon to come back for an invoice another pusher has claimed.
    pub busy_retry: StdDuration,
}

impl Default for PushPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: StdDuration::from_millis(250),
            max_wait: StdDuration::from_secs(10),
            claim_for: Duration::seconds(150),
            busy_retry: StdDuration::from_secs(30),
        }
    }
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Created {
        xero_invoice_id: Uuid,
    },
    Updated {
        xero_invoice_id: Uuid,
    },
    /// VOIDED, or DELETED for a draft; no id when the invoice never reached Xero.
    Voided {
        xero_invoice_id: Option<Uuid>,
    },
    /// Xero already has exactly this.
    Unchanged,
    /// A newer event for the invoice was applied first.
    Superseded,
    /// A retry cannot help; the account has been told what to change.
    Failed {
        reasons: Vec<String>,
    },
    /// The connection waits for reconnection; the event is sent once it is back.
    Parked,
    /// The account disconnected the organisation since the event was accepted.
    NotConnected,
}

/// Why an event must be tried again later.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{reason}; try again in {} s", after.as_secs())]
    Later { reason: String, after: StdDuration },
    #[error(transparent)]
    Store(#[from] Error),
}

impl PushError {
    fn later(reason: impl Into<String>, after: StdDuration) -> Self {
        Self::Later { reason: reason.into(), after }
    }

    /// How long the queue should hold the event back.
    pub fn retry_after(&self) -> Option<StdDuration> {
        match self {
            Self::Later { after, .. } => Some(*after),
            Self::Store(_) => None,
        }
    }
}

pub type PushResult = Result<Outcome, PushError>;

/// What one event needs from Xero.
#[derive(Debug)]
enum Plan {
    /// Nothing: decided from what we know.
    Done(PushResult),
    /// Refused before Xero: what the account must fix.
    Fail { reasons: Vec<String>, hash: String },
    /// Create or update with this content (the contact is filled in later).
    Write { invoice: Value, hash: String },
    /// Void or delete the Xero invoice.
    Void,
    /// Nothing for Xero, but the outcome on record was never announced: announce it.
    Retell,
}

struct Job {
    event: InvoiceEvent,
    record: SyncRecord,
    plan: Plan,
    /// For a write: who the invoice is for, once known.
    contact: Option<ContactTarget>,
    /// The final outcome, once known.
    result: Option<PushResult>,
    /// Xero's view after a successful write.
    written: Option<Written>,
    /// Whether this push holds the record's claim (and so must release it).
    claimed: bool,
}

#[derive(Debug, Clone, Copy)]
enum ContactTarget {
    Existing(Uuid),
    /// Created by Xero with the invoice; under a distinct name beside an active namesake.
    New {
        distinct_name: bool,
    },
}

#[derive(Debug, Clone)]
struct Written {
    xero_invoice_id: Uuid,
    xero_status: Option<String>,
    contact_id: Option<Uuid>,
}

/// Pushes the events of one connection. Every event gets a result, in order.
pub async fn push(app: &App, policy: &PushPolicy, tenant: TenantId, events: Vec<InvoiceEvent>) -> Vec<PushResult> {
    let Some(first) = events.first() else { return Vec::new() };
    let key = ConnectionKey { account_id: first.account_id.clone(), tenant_id: tenant };
    let count = events.len();
    match push_inner(app, policy, &key, events).await {
        Ok(results) => results,
        Err(e) => {
            tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, error = %e, "push failed; will retry");
            (0..count).map(|_| Err(clone_error(&e))).collect()
        }
    }
}

fn clone_error(e: &PushError) -> PushError {
    match e {
        PushError::Later { reason, after } => PushError::Later { reason: reason.clone(), after: *after },
        PushError::Store(e) if e.is_retryable() => PushError::later(e.to_string(), StdDuration::from_secs(5)),
        PushError::Store(e) => PushError::Store(Error::Corrupt { what: "push", reason: e.to_string() }),
    }
}

async fn push_inner(
    app: &App,
    policy: &PushPolicy,
    key: &ConnectionKey,
    events: Vec<InvoiceEvent>,
) -> Result<Vec<PushResult>, PushError> {
    let store = &app.services.store;
    let Some(connection) = store.get_connection(key).await? else {
        return Ok(events.iter().map(|_| Ok(Outcome::NotConnected)).collect());
    };
    match connection.status {
        ConnectionStatus::Connected => {}
        ConnectionStatus::NeedsReconnect => return park(app, key, &events).await,
        _ => return Ok(events.iter().map(|_| Ok(Outcome::NotConnected)).collect()),
    }
    let settings = store.get_settings(key).await?.settings;
    let tracking = tracking_categories(app, &connection, !settings.tracking_mapping.is_empty()).await;
    let tracking = match tracking {
        Ok(t) => t,
        Err(TokenError::Reconnect) => return park(app, key, &events).await,
        Err(e) => return Err(later_for(&e)),
    };

    let records =
        futures::future::try_join_all(events.iter().map(|e| store.get_sync_record(key, &e.invoice.id))).await?;
    let now = app.now();
    let mut jobs: Vec<Job> = events
        .into_iter()
        .zip(records)
        .map(|(event, record)| {
            let record =
                record.unwrap_or_else(|| SyncRecord::new(key, event.invoice.id.clone(), &event.invoice.number, now));
            let plan = decide(&event, &record, &settings, &tracking, now, policy);
            Job { event, record, plan, contact: None, result: None, written: None, claimed: false }
        })
        .collect();

    // Claim what needs Xero, and record refusals.
    for job in &mut jobs {
        match &job.plan {
            Plan::Done(_) | Plan::Fail { .. } | Plan::Retell => {}
            Plan::Write { .. } | Plan::Void => {
                let mut claimed = job.record.clone();
                // A claim nobody released: its holder died, perhaps after writing to Xero.
                claimed.uncertain |= claimed.claimed_until.is_some();
                claimed.claimed_until = Some(now + policy.claim_for);
                claimed.attempts += 1;
                claimed.updated_at = now;
                match store.save_sync_record(&claimed).await {
                    Ok(saved) => {
                        job.record = saved;
                        job.claimed = true;
                    }
                    Err(Error::Conflict(_)) => {
                        job.plan = Plan::Done(Err(PushError::later("another push has this invoice", policy.busy_retry)))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    write_to_xero(app, policy, &connection, &settings.new_invoice_status, &mut jobs).await;
    // Xero refused the grant midway: what was written is recorded, the rest waits.
    let waiting: Vec<InvoiceEvent> =
        jobs.iter().filter(|j| matches!(j.result, Some(Ok(Outcome::Parked)))).map(|j| j.event.clone()).collect();
    let mut results = finish(app, &connection, jobs).await?;
    if !waiting.is_empty() {
        let parked = park(app, key, &waiting).await?;
        let mut parked = parked.into_iter();
        for result in results.iter_mut().filter(|r| matches!(r, Ok(Outcome::Parked))) {
            *result = parked.next().unwrap_or(Ok(Outcome::Parked));
        }
    }
    Ok(results)
}

/// The tracking categories the mapping checks options against: the stored snapshot when there
/// is one (settings were checked against Xero when saved; Xero refuses a line whose option has
/// since gone), read from Xero only when none is stored.
async fn tracking_categories(
    app: &App,
    connection: &Connection,
    needed: bool,
) -> Result<Vec<TrackingCategory>, TokenError> {
    if !needed {
        return Ok(Vec::new());
    }
    let key = connection.key();
    if let Some(data) = app.services.store.get_reference_data(&key).await? {
        return Ok(data.tracking_categories);
    }
    let data = xero_sync_runtime::reference::read_from_xero(&app.tokens, connection, app.now()).await?;
    app.services.store.put_reference_data(&key, &data).await?;
    Ok(data.tracking_categories)
}

fn decide(
    event: &InvoiceEvent,
    record: &SyncRecord,
    settings: &xero_sync_domain::settings::ConnectionSettings,
    tracking: &[TrackingCategory],
    now: DateTime<Utc>,
    policy: &PushPolicy,
) -> Plan {
    let applied = record.last_event_at.map(|occurred_at| EventOrder { occurred_at, sequence: record.last_sequence });
    if applied.is_some_and(|applied| event.order().is_older_than(&applied)) {
        return Plan::Done(Ok(Outcome::Superseded));
    }
    if let Some(until) = record.claimed_until.filter(|until| *until > now) {
        let wait = (until - now).to_std().unwrap_or_default().min(policy.busy_retry);
        return Plan::Done(Err(PushError::later("another push has this invoice", wait.max(StdDuration::from_secs(1)))));
    }
    // Done already: the same delivery again (an SQS redelivery) after a failure, or content
    // Xero has. A new delivery of content that failed is tried again: the account may have
    // fixed the cause in Xero, as the failure email suggests.
    let same_delivery = record.last_delivery_id.as_deref() == Some(event.delivery_id.as_str());
    let already = |hash: &str| {
        let same = record.content_hash.as_deref() == Some(hash);
        match record.status {
            SyncStatus::Synced if same => Some(Outcome::Unchanged),
            SyncStatus::Failed if same && same_delivery => {
                Some(Outcome::Failed { reasons: record.last_error.iter().cloned().collect() })
            }
            _ => None,
        }
    };
    let done = |outcome: Outcome| if record.untold { Plan::Retell } else { Plan::Done(Ok(outcome)) };
    let fail = |reason: &str, hash: &str| match already(hash) {
        Some(outcome) => done(outcome),
        None => Plan::Fail { reasons: vec![reason.to_owned()], hash: hash.to_owned() },
    };
    let in_xero = record.xero_status.as_deref();
    if event.event == EventType::Voided {
        return match in_xero {
            Some("VOIDED" | "DELETED") => done(Outcome::Unchanged),
            Some("PAID") => fail("the invoice is paid in Xero, and a paid invoice cannot be voided", "paid"),
            _ => Plan::Void,
        };
    }
    match in_xero {
        Some("VOIDED" | "DELETED") => {
            return fail("the invoice was voided, and Xero cannot change a voided invoice", "voided");
        }
        Some("PAID") => return fail("the invoice is paid in Xero, and Xero cannot change a paid invoice", "paid"),
        _ => {}
    }
    // The customer as we would send it to be created: its id and details are in the hash.
    match xero_invoice(event, settings, tracking, ContactRef::new(&event.customer)) {
        Err(problems) => {
            let reasons: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
            let hash = hex(&Sha256::digest(reasons.join("\n").as_bytes()));
            match already(&hash) {
                Some(outcome) => done(outcome),
                None => Plan::Fail { reasons, hash },
            }
        }
        Ok(invoice) => {
            let hash = content_hash(&invoice);
            match already(&hash) {
                Some(outcome) => done(outcome),
                None => Plan::Write { invoice, hash },
            }
        }
    }
}

/// An Idempotency-Key naming exactly this request for these deliveries: a retry of it gets
/// Xero's first answer replayed, while the same content sent again by a later delivery (a change
/// undone, say A → B → A) is a new request and is applied.
fn idempotency_key(tenant: TenantId, method: &str, body: &Value, deliveries: &[&str]) -> String {
    let mut digest = Sha256::new()
        .chain_update(tenant.to_string())
        .chain_update(b"|")
        .chain_update(method)
        .chain_update(b"|")
        .chain_update(body.to_string());
    for delivery in deliveries {
        digest.update(b"|");
        digest.update(delivery.as_bytes());
    }
    format!("xero-sync-{}", hex(&digest.finalize()))
}

fn later_for(e: &TokenError) -> PushError {
    let after = match e {
        TokenError::Xero(x) => x.retry_after().unwrap_or(StdDuration::from_secs(30)),
        _ => StdDuration::from_secs(30),
    };
    PushError::later(e.to_string(), after)
}

/// Whether the failed write may have been applied by Xero.
fn maybe_applied(e: &TokenError) -> bool {
    matches!(e, TokenError::Xero(x) if x.maybe_applied())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroInvoice {
    #[serde(rename = "InvoiceID", default)]
    invoice_id: Option<Uuid>,
    #[serde(default)]
    invoice_number: Option<String>,
    #[serde(rename = "Type", default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    contact: Option<XeroContactRef>,
    #[serde(default)]
    status_attribute_string: Option<String>,
    #[serde(default)]
    validation_errors: Vec<XeroMessage>,
}

#[derive(Debug, Deserialize)]
struct XeroContactRef {
    #[serde(rename = "ContactID", default)]
    contact_id: Option<Uuid>,
}

#[derive(Debug, Deserialize)]
struct XeroMessage {
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct XeroInvoices {
    #[serde(rename = "Invoices", default)]
    invoices: Vec<XeroInvoice>,
}

/// Contacts, lookups and writes for every claimed job; every outcome becomes the job's
/// result. Xero refusing the grant midway leaves the jobs not yet written `Parked`.
async fn write_to_xero(
    app: &App,
    policy: &PushPolicy,
    connection: &Connection,
    new_status: &NewInvoiceStatus,
    jobs: &mut [Job],
) {
    let writes: Vec<usize> = (0..jobs.len()).filter(|i| matches!(jobs[*i].plan, Plan::Write { .. })).collect();
    if !writes.is_empty() {
        let customers: Vec<&crate::event::Customer> = writes.iter().map(|i| &jobs[*i].event.customer).collect();
        let found = match crate::contact::find_many(app, connection, &customers).await {
            Ok(found) => found,
            Err(TokenError::Reconnect) => return park_open(jobs),
            Err(e) if e.is_retryable() => {
                let error = later_for(&e);
                for i in writes {
                    jobs[i].result = Some(Err(clone_error(&error)));
                }
                return;
            }
            // A lookup Xero will never answer (a query it refuses): the customers' details go
            // with the invoices, and Xero matches them by number or name, or creates them.
            Err(e) => {
                tracing::warn!(error = %e, "contact lookup refused; sending the customers' details instead");
                Default::default()
            }
        };
        // Two new customers of one name in one request: Xero would give the second the first
        // one's contact, so the second is created under a distinct name too.
        let mut new_names: HashMap<String, PlatformCustomerId> = HashMap::new();
        for i in &writes {
            let customer = &jobs[*i].event.customer;
            jobs[*i].contact = Some(match found.get(&customer.id) {
                Some(Found::Contact(id)) => ContactTarget::Existing(*id),
                missing => {
                    let name_taken = matches!(missing, Some(Found::Missing { name_taken: true }));
                    let first =
                        new_names.entry(customer.name.trim().to_lowercase()).or_insert_with(|| customer.id.clone());
                    ContactTarget::New { distinct_name: name_taken || *first != customer.id }
                }
            });
        }
    }
    let pending: Vec<usize> = (0..jobs.len())
        .filter(|i| jobs[*i].result.is_none() && matches!(jobs[*i].plan, Plan::Write { .. } | Plan::Void))
        .collect();
    for chunk in pending.chunks(XERO_BATCH) {
        if write_chunk(app, policy, connection, new_status, jobs, chunk).await.is_err() {
            return park_open(jobs);
        }
    }
}

/// Every job still waiting for Xero waits for the reconnection instead.
fn park_open(jobs: &mut [Job]) {
    for job in jobs.iter_mut() {
        if job.result.is_none() && matches!(job.plan, Plan::Write { .. } | Plan::Void) {
            job.result = Some(Ok(Outcome::Parked));
        }
    }
}

/// Makes sure each open job's claim outlasts the next Xero round (lookup and two writes, each
/// up to the timeout), extending it when it would not: a claim that ran out while we waited
/// could let a redelivery write at the same time. A claim lost to another pusher ends the job.
async fn keep_claims(app: &App, policy: &PushPolicy, jobs: &mut [Job], open: &[usize]) -> Result<(), Error> {
    let timeout = chrono::Duration::from_std(app.xero.config().request_timeout).unwrap_or(Duration::seconds(30));
    let needed = timeout * 3 + Duration::seconds(10);
    let now = app.now();
    for &i in open {
        let job = &mut jobs[i];
        if job.record.claimed_until.is_some_and(|until| until - now > needed) {
            continue;
        }
        let mut renewed = job.record.clone();
        renewed.claimed_until = Some(now + policy.claim_for.max(needed * 2));
        match app.services.store.save_sync_record(&renewed).await {
            Ok(saved) => job.record = saved,
            Err(Error::Conflict(_)) => {
                job.claimed = false;
                job.result = Some(Err(PushError::later("another push took this invoice over", policy.busy_retry)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes one chunk, retrying what may succeed later; `Err` only when Xero refused the grant.
async fn write_chunk(
    app: &App,
    policy: &PushPolicy,
    connection: &Connection,
    new_status: &NewInvoiceStatus,
    jobs: &mut [Job],
    chunk: &[usize],
) -> Result<(), TokenError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let open: Vec<usize> = chunk.iter().copied().filter(|i| jobs[*i].result.is_none()).collect();
        if let Err(e) = keep_claims(app, policy, jobs, &open).await {
            for &i in &open {
                jobs[i].result = Some(Err(PushError::later(e.to_string(), StdDuration::from_secs(5))));
            }
            return Ok(());
        }
        let open: Vec<usize> = open.into_iter().filter(|i| jobs[*i].result.is_none()).collect();
        if open.is_empty() {
            return Ok(());
        }
        let Err(e) = write_once(app, connection, new_status, jobs, &open).await else { continue };
        let still_open: Vec<usize> = open.iter().copied().filter(|i| jobs[*i].result.is_none()).collect();
        let refused = match &e {
            TokenError::Reconnect => return Err(TokenError::Reconnect),
            // Xero's own refusal of the request: what the account must change.
            TokenError::Xero(XeroError::Validation { messages, .. }) => Some(messages.clone()),
            TokenError::Xero(XeroError::Forbidden(_) | XeroError::NotFound(_)) => Some(vec![e.to_string()]),
            _ => None,
        };
        if let Some(reasons) = refused {
            for i in still_open {
                jobs[i].result = Some(Ok(Outcome::Failed { reasons: reasons.clone() }));
            }
            return Ok(());
        }
        let wait = match &e {
            TokenError::Xero(x) => x.retry_after(),
            _ => None,
        }
        .unwrap_or_else(|| policy.backoff * 2u32.saturating_pow(attempt - 1));
        if !e.is_retryable() || attempt >= policy.attempts || wait > policy.max_wait {
            tracing::info!(error = %e, attempt, "Xero write deferred to the queue");
            let after = if e.is_retryable() { wait } else { StdDuration::from_secs(30) };
            for i in still_open {
                jobs[i].result = Some(Err(PushError::later(e.to_string(), after.max(StdDuration::from_secs(1)))));
            }
            return Ok(());
        }
        tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "Xero write retried");
        tokio::time::sleep(wait).await;
    }
}

/// One round: look up uncertain creates, then one PUT of creates and one POST of updates.
/// Jobs that got an answer have their result set; on an error the rest stay open, marked
/// uncertain if the error leaves the write's fate unknown.
async fn write_once(
    app: &App,
    connection: &Connection,
    new_status: &NewInvoiceStatus,
    jobs: &mut [Job],
    open: &[usize],
) -> Result<(), TokenError> {
    let uncertain_creates: Vec<usize> = open
        .iter()
        .copied()
        .filter(|i| jobs[*i].record.uncertain && jobs[*i].record.xero_invoice_id.is_none())
        .collect();
    if !uncertain_creates.is_empty() {
        look_up_by_number(app, connection, jobs, &uncertain_creates).await?;
    }
    let (mut creates, mut updates) = (Vec::new(), Vec::new());
    for &i in open {
        let job = &jobs[i];
        match (&job.plan, job.record.xero_invoice_id) {
            (Plan::Void, None) => {
                // Never reached Xero (and, if it was uncertain, the lookup found nothing).
                jobs[i].result = Some(Ok(Outcome::Voided { xero_invoice_id: None }));
            }
            (Plan::Void, Some(id)) => {
                let status = match job.record.xero_status.as_deref() {
                    Some("DRAFT" | "SUBMITTED") => "DELETED",
                    _ => "VOIDED",
                };
                updates.push((i, json!({ "InvoiceID": id, "Status": status })));
            }
            (Plan::Write { invoice, .. }, existing) => {
                let contact = match job.contact {
                    Some(ContactTarget::Existing(id)) => ContactRef::Existing(id),
                    Some(ContactTarget::New { distinct_name }) => {
                        ContactRef::New { customer: &job.event.customer, distinct_name }
                    }
                    None => ContactRef::new(&job.event.customer),
                };
                let settings_status = match new_status {
                    NewInvoiceStatus::Draft => "DRAFT",
                    NewInvoiceStatus::Authorised => "AUTHORISED",
                };
                let mut body = invoice.clone();
                body["Contact"] = crate::mapping::contact_json(contact);
                match existing {
                    None => creates.push((i, body)),
                    Some(id) => {
                        body["InvoiceID"] = json!(id);
                        // An approved invoice stays approved; Xero refuses to take it back to draft.
                        let keep = matches!(job.record.xero_status.as_deref(), Some("AUTHORISED" | "SUBMITTED"));
                        if keep {
                            body["Status"] = json!(job.record.xero_status.clone().unwrap_or_default());
                        } else {
                            body["Status"] = json!(settings_status);
                        }
                        updates.push((i, body));
                    }
                }
            }
            (Plan::Done(_) | Plan::Fail { .. } | Plan::Retell, _) => {}
        }
    }
    for (method, batch) in [("PUT", creates), ("POST", updates)] {
        if batch.is_empty() {
            continue;
        }
        let body = json!({ "Invoices": batch.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>() });
        let mut request = ApiRequest::new("/Invoices");
        // Per-invoice results, and unit prices kept to the four places the platform may send.
        request.query = vec![("summarizeErrors", "false".into()), ("unitdp", "4".into())];
        let deliveries: Vec<&str> = batch.iter().map(|(i, _)| jobs[*i].event.delivery_id.as_str()).collect();
        request.idempotency_key = Some(idempotency_key(connection.tenant_id, method, &body, &deliveries));
        let response: Result<XeroInvoices, TokenError> = if method == "PUT" {
            app.tokens.put(connection, &request, &body).await.map(|r| r.body)
        } else {
            app.tokens.post(connection, &request, &body).await.map(|r| r.body)
        };
        let answer = match response {
            Ok(answer) => answer,
            Err(e) => {
                if maybe_applied(&e) {
                    for (i, _) in &batch {
                        jobs[*i].record.uncertain = true;
                    }
                }
                return Err(e);
            }
        };
        if answer.invoices.len() != batch.len() {
            let e = XeroError::Unexpected(format!("{} invoices sent, {} answered", batch.len(), answer.invoices.len()));
            for (i, _) in &batch {
                jobs[*i].record.uncertain = true;
            }
            return Err(TokenError::Xero(e));
        }
        for ((i, _), answered) in batch.iter().zip(answer.invoices) {
            record_answer(&mut jobs[*i], answered, method == "PUT");
        }
    }
    Ok(())
}

fn record_answer(job: &mut Job, answered: XeroInvoice, created: bool) {
    let refused =
        answered.status_attribute_string.as_deref() == Some("ERROR") || !answered.validation_errors.is_empty();
    let id = answered.invoice_id.filter(|id| !id.is_nil());
    match id {
        Some(id) if !refused => {
            job.written = Some(Written {
                xero_invoice_id: id,
                xero_status: answered.status.clone(),
                contact_id: answered.contact.and_then(|c| c.contact_id),
            });
            job.result = Some(Ok(match (&job.plan, created) {
                (Plan::Void, _) => Outcome::Voided { xero_invoice_id: Some(id) },
                (_, true) => Outcome::Created { xero_invoice_id: id },
                (_, false) => Outcome::Updated { xero_invoice_id: id },
            }));
        }
        _ => {
            let mut reasons: Vec<String> = answered.validation_errors.into_iter().map(|m| m.message).collect();
            if reasons.is_empty() {
                reasons.push("Xero refused the invoice without saying why".into());
            }
            job.result = Some(Ok(Outcome::Failed { reasons }));
        }
    }
}

/// After an unknown outcome, whether Xero has the invoice after all: one query for the chunk.
async fn look_up_by_number(
    app: &App,
    connection: &Connection,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let numbers: Vec<String> = which.iter().map(|i| jobs[*i].event.invoice.number.trim().to_owned()).collect();
    // InvoiceNumbers= is split on commas, so a number holding one is asked for by `where`.
    let (plain, with_commas): (Vec<&String>, Vec<&String>) = numbers.iter().partition(|n| !n.contains(','));
    let mut found = XeroInvoices { invoices: Vec::new() };
    if !plain.is_empty() {
        let mut request = ApiRequest::new("/Invoices");
        let joined = plain.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(",");
        request.query = vec![("InvoiceNumbers", joined), ("page", "1".into()), ("summaryOnly", "true".into())];
        found.invoices.extend(app.tokens.get::<XeroInvoices>(connection, &request).await?.body.invoices);
    }
    if !with_commas.is_empty() {
        let terms: Vec<String> =
            with_commas.iter().map(|n| format!("InvoiceNumber=={}", crate::contact::literal(n))).collect();
        let mut request = ApiRequest::new("/Invoices");
        request.query = vec![
            ("where", format!("Type==\"ACCREC\" AND ({})", terms.join(" OR "))),
            ("page", "1".into()),
            ("summaryOnly", "true".into()),
        ];
        found.invoices.extend(app.tokens.get::<XeroInvoices>(connection, &request).await?.body.invoices);
    }
    for &i in which {
        let number = jobs[i].event.invoice.number.trim().to_owned();
        let hit = found.invoices.iter().find(|x| {
            x.kind.as_deref().is_none_or(|k| k == "ACCREC")
                && x.invoice_number.as_deref() == Some(number.as_str())
                && !matches!(x.status.as_deref(), Some("DELETED" | "VOIDED"))
        });
        let job = &mut jobs[i];
        if let Some(hit) = hit {
            job.record.xero_invoice_id = hit.invoice_id;
            job.record.xero_status = hit.status.clone();
        }
        // Looked: whatever the next write does, it does knowingly.
        job.record.uncertain = false;
    }
    Ok(())
}

async fn park(app: &App, key: &ConnectionKey, events: &[InvoiceEvent]) -> Result<Vec<PushResult>, PushError> {
    let store = &app.services.store;
    let mut parked = Vec::with_capacity(events.len());
    for event in events {
        let message = crate::message::QueueMessage::Event(Box::new(crate::message::PushMessage {
            tenant_id: key.tenant_id,
            event: event.clone(),
        }));
        let item = ParkedPush {
            invoice_id: event.invoice.id.clone(),
            occurred_at: event.occurred_at,
            sequence: event.sequence,
            message: serde_json::to_string(&message)
                .map_err(|e| Error::Corrupt { what: "parked push", reason: e.to_string() })?,
        };
        store.park_push(key, &item).await?;
        parked.push(item);
    }
    // The reconnection may have re-sent the parked pushes just before these were parked: then
    // they are taken back and this delivery is simply tried again.
    let connected = store.get_connection(key).await?.is_some_and(|c| c.status == ConnectionStatus::Connected);
    if connected {
        for item in &parked {
            store.unpark_push(key, item).await?;
        }
        let again = || Err(PushError::later("the organisation was reconnected meanwhile", StdDuration::from_secs(1)));
        return Ok(events.iter().map(|_| again()).collect());
    }
    if !events.is_empty() {
        tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoices = events.len(), "pushes parked until the organisation is reconnected");
    }
    Ok(events.iter().map(|_| Ok(Outcome::Parked)).collect())
}

/// What one job leaves behind: the record to save and what to announce.
struct Settled {
    record: Option<SyncRecord>,
    announce: Option<Announcement>,
}

enum Announcement {
    /// With what was done (`created`, `updated`, `voided`), when this push did it.
    Synced(Option<&'static str>),
    Failed(Vec<String>),
}

fn action(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Created { .. } => Some("created"),
        Outcome::Updated { .. } => Some("updated"),
        Outcome::Voided { .. } => Some("voided"),
        _ => None,
    }
}

fn settle(job: &mut Job, now: DateTime<Utc>) -> (PushResult, Settled) {
    let plan = std::mem::replace(&mut job.plan, Plan::Done(Ok(Outcome::Unchanged)));
    let event = &job.event;
    let mut next = job.record.clone();
    next.updated_at = now;
    if job.claimed {
        next.claimed_until = None;
    }
    let told = |mut next: SyncRecord, outcome: &Outcome| {
        next.last_event_at = Some(latest(&next, event));
        next.last_sequence = latest_sequence(&next, event);
        next.last_delivery_id = Some(event.delivery_id.clone());
        next.invoice_number = event.invoice.number.clone();
        let announce = match outcome {
            Outcome::Failed { reasons } => Announcement::Failed(reasons.clone()),
            other => Announcement::Synced(action(other)),
        };
        (next, Some(announce))
    };
    match plan {
        Plan::Done(result) => {
            // Nothing changed, but a newer event was seen: an older one arriving later must
            // not win over it.
            let applied =
                job.record.last_event_at.map(|at| EventOrder { occurred_at: at, sequence: job.record.last_sequence });
            let newer = applied.is_none_or(|applied| applied.is_older_than(&event.order()));
            let record = match &result {
                Ok(Outcome::Unchanged | Outcome::Failed { .. }) if newer && job.record.version > 0 => {
                    next.last_event_at = Some(latest(&next, event));
                    next.last_sequence = latest_sequence(&next, event);
                    Some(next)
                }
                _ => None,
            };
            (result, Settled { record, announce: None })
        }
        Plan::Retell => {
            let outcome = match job.record.status {
                SyncStatus::Failed => Outcome::Failed { reasons: job.record.last_error.iter().cloned().collect() },
                _ => Outcome::Unchanged,
            };
            let announce = match &outcome {
                Outcome::Failed { reasons } => Announcement::Failed(reasons.clone()),
                _ => Announcement::Synced(None),
            };
            next.untold = false;
            next.last_event_at = Some(latest(&next, event));
            next.last_sequence = latest_sequence(&next, event);
            (Ok(outcome), Settled { record: Some(next), announce: Some(announce) })
        }
        Plan::Fail { reasons, hash } => {
            next.status = SyncStatus::Failed;
            next.content_hash = Some(hash);
            next.last_error = Some(reasons.join("; "));
            let outcome = Outcome::Failed { reasons };
            let (next, announce) = told(next, &outcome);
            (Ok(outcome), Settled { record: Some(next), announce })
        }
        plan => {
            let result =
                job.result.take().unwrap_or_else(|| Err(PushError::later("not attempted", StdDuration::from_secs(5))));
            match &result {
                Ok(outcome @ Outcome::Failed { reasons }) => {
                    next.status = SyncStatus::Failed;
                    next.last_error = Some(reasons.join("; "));
                    next.content_hash = Some(plan_hash(&plan));
                    let (next, announce) = told(next, outcome);
                    (result, Settled { record: Some(next), announce })
                }
                // Waits for the reconnection; the claim is released, nothing else changes.
                Ok(Outcome::Parked) | Err(_) => {
                    let record = job.claimed.then_some(next);
                    (result, Settled { record, announce: None })
                }
                Ok(outcome) => {
                    next.status = SyncStatus::Synced;
                    next.last_error = None;
                    next.uncertain = false;
                    next.content_hash = Some(plan_hash(&plan));
                    if let Some(w) = &job.written {
                        next.xero_invoice_id = Some(w.xero_invoice_id);
                        next.xero_status = w.xero_status.clone();
                    } else if matches!(plan, Plan::Void) {
                        next.xero_status = Some("VOIDED".into());
                    }
                    let (next, announce) = told(next, outcome);
                    (result, Settled { record: Some(next), announce })
                }
            }
        }
    }
}

/// Tells the platform and the account, then records every job's result. In that order, so a
/// record never says "done" before it was announced; if telling fails, the outcome is recorded
/// as untold (and the claims released) and the redelivery tells it.
async fn finish(app: &App, connection: &Connection, mut jobs: Vec<Job>) -> Result<Vec<PushResult>, PushError> {
    let now = app.now();
    let key = connection.key();
    let store = &app.services.store;
    let mut settled = Vec::with_capacity(jobs.len());
    let mut mappings = Vec::new();
    for job in jobs.iter_mut() {
        if let (Some(ContactTarget::New { .. }), Some(Written { contact_id: Some(id), .. })) =
            (job.contact, &job.written)
        {
            mappings.push(ContactMapping {
                customer_id: job.event.customer.id.clone(),
                xero_contact_id: *id,
                matched_by: ContactMatch::Created,
                mapped_at: now,
            });
        }
        let (result, s) = settle(job, now);
        log_result(&key, &job.event, &result);
        job.result = Some(result);
        settled.push(s);
    }
    let mut events = Vec::new();
    let mut failures: Vec<(String, String, Vec<String>)> = Vec::new();
    for s in &settled {
        let (Some(record), Some(announce)) = (&s.record, &s.announce) else { continue };
        match announce {
            Announcement::Synced(action) => events.push(synced_event(record, *action)),
            Announcement::Failed(reasons) => {
                events.push(failed_event(record, reasons));
                let tag = format!(
                    "{}#{}",
                    record.last_delivery_id.as_deref().unwrap_or_default(),
                    record.content_hash.as_deref().unwrap_or_default()
                );
                failures.push((record.invoice_number.clone(), tag, reasons.clone()));
            }
        }
    }
    let told = match app.services.events.publish(&events).await {
        Err(e) => Err(PushError::later(format!("publishing events: {e}"), StdDuration::from_secs(10))),
        Ok(()) if failures.is_empty() => Ok(()),
        Ok(()) => tell_the_account(app, connection, &failures)
            .await
            .map_err(|e| PushError::later(format!("emailing the account: {e}"), StdDuration::from_secs(30))),
    };
    let synced_any = settled.iter().any(|s| matches!(s.announce, Some(Announcement::Synced(_))));
    for (job, s) in jobs.iter_mut().zip(settled) {
        let Some(mut record) = s.record else { continue };
        if told.is_err() && s.announce.is_some() {
            record.untold = true;
        }
        if let Err(e) = save_or_later(app, &record).await {
            job.result = Some(Err(e));
        } else if let (Err(e), Some(_)) = (&told, &s.announce) {
            job.result = Some(Err(clone_error(e)));
        }
    }
    // Neither is worth a retry of the push: a missing mapping costs one lookup next time (the
    // contact is found by its number), missed activity is made up by the next push.
    for mapping in &mappings {
        if let Err(e) = store.put_contact_mapping(&key, mapping).await {
            tracing::warn!(account = %key.account_id, customer = %mapping.customer_id, error = %e, "contact mapping not kept");
        }
    }
    if synced_any && told.is_ok() {
        if let Err(e) = store.record_activity(&key, now).await {
            tracing::warn!(account = %key.account_id, error = %e, "activity not recorded");
        }
    }
    Ok(jobs.into_iter().map(|j| j.result.unwrap_or(Ok(Outcome::Unchanged))).collect())
}

fn latest(record: &SyncRecord, event: &InvoiceEvent) -> DateTime<Utc> {
    record.last_event_at.map_or(event.occurred_at, |last| last.max(event.occurred_at))
}

fn latest_sequence(record: &SyncRecord, event: &InvoiceEvent) -> Option<u64> {
    record.last_sequence.max(event.sequence)
}

fn plan_hash(plan: &Plan) -> String {
    match plan {
        Plan::Write { hash, .. } | Plan::Fail { hash, .. } => hash.clone(),
        Plan::Void => VOID.into(),
        Plan::Done(_) | Plan::Retell => String::new(),
    }
}

async fn save_or_later(app: &App, record: &SyncRecord) -> Result<SyncRecord, PushError> {
    match app.services.store.save_sync_record(record).await {
        Ok(saved) => Ok(saved),
        // Someone took over after our claim ran out; they will record what Xero has.
        Err(Error::Conflict(_)) => Err(PushError::later("the sync record changed under us", StdDuration::from_secs(5))),
        Err(e) => Err(e.into()),
    }
}

/// The event's id names the delivery and the content, so a redelivery repeats it exactly and
/// a later change back to earlier content is a new event.
fn event_key(record: &SyncRecord) -> String {
    format!(
        "{}|{}|{}",
        record.invoice_id,
        record.last_delivery_id.as_deref().unwrap_or_default(),
        record.content_hash.as_deref().unwrap_or_default()
    )
}

fn synced_event(record: &SyncRecord, action: Option<&str>) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::InvoiceSynced,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "invoice_id": record.invoice_id,
            "invoice_number": record.invoice_number,
            "xero_invoice_id": record.xero_invoice_id,
            "xero_status": record.xero_status,
            "action": action,
        }),
    )
}

fn failed_event(record: &SyncRecord, reasons: &[String]) -> PlatformEvent {
    PlatformEvent::new(
        EventKind::InvoiceSyncFailed,
        record.account_id.clone(),
        Some(record.tenant_id),
        &event_key(record),
        record.updated_at,
        json!({
            "invoice_id": record.invoice_id,
            "invoice_number": record.invoice_number,
            "xero_invoice_id": record.xero_invoice_id,
            "reasons": reasons,
        }),
    )
}

/// One email for all the failures of this push (a backfill chunk can have several), sent once.
async fn tell_the_account(
    app: &App,
    connection: &Connection,
    failures: &[(String, String, Vec<String>)],
) -> Result<(), Error> {
    if connection.notify_email.is_none() {
        return Ok(());
    }
    let mut ids =
        Sha256::new().chain_update(connection.account_id.as_str()).chain_update(connection.tenant_id.to_string());
    for (number, hash, _) in failures {
        ids.update(format!("|{number}#{hash}"));
    }
    let once = format!("sync-failed#{}", hex(&ids.finalize()));
    let subject = match failures {
        [(number, _, _)] => format!("Invoice {number} did not reach Xero"),
        many => format!("{} invoices did not reach Xero", many.len()),
    };
    let mut details = Vec::new();
    for (number, _, reasons) in failures {
        details.push((format!("Invoice {number}"), reasons.join("; ")));
    }
    let notice = Notice {
        subject,
        organisation: connection.organisation_name.clone(),
        what_happened: match failures {
            [(number, _, _)] => {
                format!("Invoice {number} was not sent to Xero because Xero cannot accept it as it is.")
            }
            many => {
                format!("{} invoices were not sent to Xero because Xero cannot accept them as they are.", many.len())
            }
        },
        details,
        what_to_do: "Fix what is named above: in the invoice itself, or in the Xero settings (account codes, tax rate \
            mapping, tracking) when it names one of those. Then save the invoice again in the platform and it is sent \
            to Xero. Nothing else is held up: other invoices keep flowing."
            .into(),
    };
    // A refusal for good is recorded on the connection and is not a reason to hold the push.
    let now = app.now();
    at_most_once(app.services.store.as_ref(), &once, now, REMEMBER_NOTICES, || async {
        mail::tell(&app.services, std::slice::from_ref(connection), notice, now).await.map(|_| ())
    })
    .await
    .map(|_| ())
}

fn log_result(key: &ConnectionKey, event: &InvoiceEvent, result: &PushResult) {
    match result {
        Ok(outcome) => {
            let kind = match outcome {
                Outcome::Created { .. } => "created",
                Outcome::Updated { .. } => "updated",
                Outcome::Voided { .. } => "voided",
                Outcome::Unchanged => "unchanged",
                Outcome::Superseded => "superseded",
                Outcome::Failed { .. } => "failed",
                Outcome::Parked => "parked",
                Outcome::NotConnected => "not_connected",
            };
            tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoice = %event.invoice.id, outcome = kind, "invoice pushed");
        }
        Err(e) => {
            tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoice = %event.invoice.id, error = %e, "invoice push deferred");
        }
    }
}

/// Re-sends the pushes parked for a connection that is connected again; each is unparked only
/// once it is back on the queue.
pub async fn redrive_parked(app: &App, queue: &Queue, key: &ConnectionKey) -> Result<usize, Error> {
    let parked = app.services.store.parked_pushes(key).await?;
    let bodies: Vec<String> = parked.iter().map(|p| p.message.clone()).collect();
    let refused = queue.send_all(&bodies).await?;
    for (at, p) in parked.iter().enumerate() {
        if !refused.contains(&at) {
            app.services.store.unpark_push(key, p).await?;
        }
    }
    if !refused.is_empty() {
        return Err(Error::Conflict(format!("{} parked pushes could not be queued", refused.len())));
    }
    if !parked.is_empty() {
        tracing::info!(account = %key.account_id, tenant = %key.tenant_id, invoices = parked.len(), "parked pushes sent again");
    }
    Ok(parked.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_name_the_request_and_its_deliveries_and_fit_xero_limit() {
        let tenant = TenantId(Uuid::nil());
        let body = |n: &str| json!({ "Invoices": [{ "InvoiceNumber": n }] });
        let a = idempotency_key(tenant, "PUT", &body("INV-1"), &["d1"]);
        assert_eq!(a, idempotency_key(tenant, "PUT", &body("INV-1"), &["d1"]), "a retry replays");
        assert_ne!(a, idempotency_key(tenant, "POST", &body("INV-1"), &["d1"]));
        assert_ne!(a, idempotency_key(tenant, "PUT", &body("INV-2"), &["d1"]));
        assert_ne!(a, idempotency_key(tenant, "PUT", &body("INV-1"), &["d3"]), "A -> B -> A is applied");
        assert!(a.len() <= 128);
    }

    #[test]
    fn a_failed_answer_keeps_xero_messages() {
        let answered: XeroInvoice = serde_json::from_value(json!({
            "InvoiceID": "00000000-0000-0000-0000-000000000000",
            "StatusAttributeString": "ERROR",
            "ValidationErrors": [{ "Message": "Account code '999' is not a valid code for this document." }]
        }))
        .unwrap();
        let event: InvoiceEvent =
            serde_json::from_str(include_str!("../../../docs/contracts/examples/invoice-created.json")).unwrap();
        let key = ConnectionKey { account_id: event.account_id.clone(), tenant_id: TenantId(Uuid::nil()) };
        let record = SyncRecord::new(&key, event.invoice.id.clone(), "INV-1", Utc::now());
        let mut job =
            Job { event, record, plan: Plan::Void, contact: None, result: None, written: None, claimed: false };
        record_answer(&mut job, answered, true);
        assert_eq!(
            job.result.unwrap().unwrap(),
            Outcome::Failed { reasons: vec!["Account code '999' is not a valid code for this document.".into()] }
        );
    }
}
