//! The push worker: messages from the push queue (SQS, partial batch failures).
//!
//! A message is an invoice event from the webhook, a backfill chunk, or `connection.connected`
//! from our own bus (a rule routes it here), which sends the connection's parked pushes again.
//! A message that must be tried later is reported as a batch item failure after its visibility
//! is set to the wait Xero asked for; after the queue's receive limit it lands in the
//! dead-letter queue, so nothing is lost.

use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::StreamExt;
use xero_sync_aws::Queue;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::governor::Priority;
use xero_sync_domain::model::{AccountId, ConnectionKey, TenantId};
use xero_sync_runtime::queue::{Incoming, Retry, Unreadable, not_yet_due, read, respond};
use xero_sync_runtime::{App, ConfigError, Env};

use uuid::Uuid;

use crate::attachments::attach;
use crate::attachments::landing::{self, Landing};
use crate::credit_note_event::CreditNoteEvent;
use crate::credit_notes::push_credit_notes;
use crate::customer_event::CustomerEvent;
use crate::customers::push_customers;
use crate::event::InvoiceEvent;
use crate::item_event::ItemEvent;
use crate::items::push_items;
use crate::message::QueueMessage;
use crate::payment_event::PaymentEvent;
use crate::payments::push_payments;
use crate::push::{PushError, PushPolicy, XERO_BATCH, push, redrive_parked};

/// Lots (or bus events) worked on at once. Xero allows five concurrent calls per organisation;
/// leave one for the import.
const CONCURRENCY: usize = 4;
/// The function's timeout is 120 s; a wave started before this finishes well within it.
const DEFAULT_BUDGET: Duration = Duration::from_secs(45);

pub struct Worker {
    pub app: App,
    pub policy: PushPolicy,
    /// The push queue: retries are held back on it, parked pushes sent back to it.
    pub queue: Queue,
    /// The bucket uploads land in.
    pub uploads: xero_sync_aws::Uploads,
    /// Waves of a batch are started only within this time, so a large batch ends well inside
    /// the function's timeout; what was not started goes back to the queue at once.
    pub budget: Duration,
}

impl Worker {
    pub fn new(mut app: App, env: &Env) -> Result<Self, ConfigError> {
        app.tokens.prioritise(Priority::Push);
        let queue = Queue::new(aws_sdk_sqs::Client::new(&app.sdk), env.required("PUSH_QUEUE_URL")?);
        let uploads = crate::attachments::uploads(&app, env)?;
        Ok(Self { queue, uploads, policy: PushPolicy::default(), budget: DEFAULT_BUDGET, app })
    }
}

pub async fn handle(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let started = std::time::Instant::now();
    let messages = event.records;
    let mut results: Vec<Result<(), Retry>> = Vec::with_capacity(messages.len());
    let mut plan: Lots<InvoiceEvent> = Lots::default();
    let mut payments: Lots<PaymentEvent> = Lots::default();
    let mut credit_notes: Lots<CreditNoteEvent> = Lots::default();
    let mut customers: Lots<CustomerEvent> = Lots::default();
    let mut items: Lots<ItemEvent> = Lots::default();
    let mut bus: Vec<(usize, PlatformEvent)> = Vec::new();
    let mut landed: Vec<(usize, Uuid)> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        results.push(Ok(()));
        if let Some(wait) = not_yet_due(message, worker.app.now()) {
            results[index] = Err(Retry::held(wait));
            continue;
        }
        match read_message(message.body.as_deref().unwrap_or_default(), worker.uploads.bucket()) {
            Ok(Some(Read::Bus(event))) => bus.push((index, event)),
            Ok(Some(Read::Events(tenant, events))) => plan.add(index, tenant, events),
            Ok(Some(Read::Payment(tenant, event))) => payments.add(index, tenant, vec![event]),
            Ok(Some(Read::CreditNote(tenant, event))) => credit_notes.add(index, tenant, vec![event]),
            Ok(Some(Read::Customer(tenant, event))) => customers.add(index, tenant, vec![event]),
            Ok(Some(Read::Item(tenant, event))) => items.add(index, tenant, vec![event]),
            Ok(Some(Read::Uploads(uploads))) => landed.extend(uploads.into_iter().map(|id| (index, id))),
            Ok(None) => {}
            Err(unreadable) => results[index] = Err(unreadable.into()),
        }
    }
    let told: Vec<(usize, Result<(), Retry>)> = futures::stream::iter(bus)
        .map(|(index, event)| async move { (index, bus_event(worker, event).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (index, result) in told {
        results[index] = result;
    }
    let (app, policy) = (&worker.app, &worker.policy);
    // Customers and items first: an invoice that came with them finds the contact made and
    // carries the item's code.
    work(worker, started, customers, &mut results, |tenant, events| push_customers(app, policy, tenant, events)).await;
    work(worker, started, items, &mut results, |tenant, events| push_items(app, policy, tenant, events)).await;
    work(worker, started, plan, &mut results, |tenant, events| push(app, policy, tenant, events)).await;
    // After the invoices, so a credit note or a payment that came with its invoice finds it in
    // Xero; credits before payments, as a job reduced before it is paid would have them.
    work(worker, started, credit_notes, &mut results, |tenant, events| push_credit_notes(app, policy, tenant, events))
        .await;
    work(worker, started, payments, &mut results, |tenant, events| push_payments(app, policy, tenant, events)).await;
    // Last, so a file that came with its invoice finds it in Xero.
    attach_all(worker, started, landed, &mut results).await;

    xero_sync_runtime::meter::flush(&worker.app, "invoice-push-worker").await;
    respond(&worker.queue, &messages, results, worker.app.now()).await
}

/// What became of one pushed event.
type Pushed<T> = Result<T, PushError>;

/// Pushes the lots wave by wave. Waves run one after another, so two events for one document
/// are never pushed at once; the lots of a wave run side by side. A lot not started within the
/// budget goes back to the queue at once, for a fresh invocation to take.
async fn work<E, T, F, Fut>(
    worker: &Worker,
    started: std::time::Instant,
    lots: Lots<E>,
    results: &mut [Result<(), Retry>],
    push: F,
) where
    F: Fn(TenantId, Vec<E>) -> Fut,
    Fut: std::future::Future<Output = Vec<Pushed<T>>>,
{
    let push = &push;
    for wave in lots.waves {
        let done: Vec<(Vec<usize>, Vec<Pushed<T>>)> = futures::stream::iter(wave)
            .map(|lot| async move {
                let (indices, events): (Vec<usize>, Vec<E>) = lot.events.into_iter().unzip();
                if started.elapsed() > worker.budget {
                    // Not the event's fault: held, for a fresh invocation to take at once.
                    let later = || Err(PushError::Held { reason: "out of time".into(), after: Duration::from_secs(1) });
                    return (indices, events.iter().map(|_| later()).collect());
                }
                // An organisation that must wait for Xero's limits holds the whole lot before
                // anything is read or claimed for it.
                if let Err(e) = worker.app.tokens.ready(lot.key.tenant_id).await {
                    let after = e.retry_after().unwrap_or(Duration::from_secs(1));
                    let held = || Err(PushError::Held { reason: e.to_string(), after });
                    return (indices, events.iter().map(|_| held()).collect());
                }
                (indices, push(lot.key.tenant_id, events).await)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for (indices, pushed) in done {
            for (index, result) in indices.into_iter().zip(pushed) {
                if let Err(retry) = verdict(std::slice::from_ref(&result)) {
                    merge(&mut results[index], retry);
                }
            }
        }
    }
}

/// Attaches the uploads that landed, a few at once; one not started within the budget goes back
/// to the queue at once.
async fn attach_all(
    worker: &Worker,
    started: std::time::Instant,
    landed: Vec<(usize, Uuid)>,
    results: &mut [Result<(), Retry>],
) {
    // A notification delivered twice into one batch is one upload, attached once.
    let mut uploads: Vec<(Uuid, Vec<usize>)> = Vec::new();
    for (index, upload) in landed {
        match uploads.iter_mut().find(|(u, _)| *u == upload) {
            Some((_, indices)) => indices.push(index),
            None => uploads.push((upload, vec![index])),
        }
    }
    let done: Vec<(Vec<usize>, Result<(), Retry>)> = futures::stream::iter(uploads)
        .map(|(upload, indices)| async move {
            if started.elapsed() > worker.budget {
                return (indices, Err(Retry::held(Duration::from_secs(1))));
            }
            let result = attach(&worker.app, &worker.uploads, &worker.policy, upload).await;
            (indices, verdict(std::slice::from_ref(&result)))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for (indices, result) in done {
        if let Err(retry) = result {
            for index in indices {
                merge(&mut results[index], retry);
            }
        }
    }
}

/// A message fails when any of its events does, and comes back after the longest wait asked.
fn merge(result: &mut Result<(), Retry>, retry: Retry) {
    *result = Err(match std::mem::replace(result, Ok(())) {
        Ok(()) => retry,
        Err(r) => r.max(retry),
    });
}

/// Up to fifty events of one connection, pushed together: one Xero call writes them all.
struct Lot<E> {
    key: ConnectionKey,
    /// The message each event came in, and the event.
    events: Vec<(usize, E)>,
}

/// An event the worker groups: whose it is, and what it is about (an invoice, a payment).
trait Grouped {
    fn account(&self) -> &AccountId;
    fn subject(&self) -> &str;
}

impl Grouped for InvoiceEvent {
    fn account(&self) -> &AccountId {
        &self.account_id
    }
    fn subject(&self) -> &str {
        self.invoice.id.as_str()
    }
}

impl Grouped for CreditNoteEvent {
    fn account(&self) -> &AccountId {
        &self.account_id
    }
    fn subject(&self) -> &str {
        self.credit_note.id.as_str()
    }
}

impl Grouped for CustomerEvent {
    fn account(&self) -> &AccountId {
        &self.account_id
    }
    fn subject(&self) -> &str {
        self.customer.id.as_str()
    }
}

impl Grouped for ItemEvent {
    fn account(&self) -> &AccountId {
        &self.account_id
    }
    fn subject(&self) -> &str {
        self.item.id.as_str()
    }
}

impl Grouped for PaymentEvent {
    fn account(&self) -> &AccountId {
        &self.account_id
    }
    fn subject(&self) -> &str {
        self.payment.id.as_str()
    }
}

/// A batch's events, grouped so that a burst of webhooks costs one Xero write per fifty
/// documents. A document appears at most once per wave; a later event for it waits a wave.
struct Lots<E> {
    waves: Vec<Vec<Lot<E>>>,
}

impl<E> Default for Lots<E> {
    fn default() -> Self {
        Self { waves: Vec::new() }
    }
}

impl<E: Grouped> Lots<E> {
    fn add(&mut self, index: usize, tenant: TenantId, events: Vec<E>) {
        for event in events {
            let key = ConnectionKey { account_id: event.account().clone(), tenant_id: tenant };
            let wave = self
                .waves
                .iter()
                .position(|wave| {
                    !wave
                        .iter()
                        .any(|lot| lot.key == key && lot.events.iter().any(|(_, e)| e.subject() == event.subject()))
                })
                .unwrap_or_else(|| {
                    self.waves.push(Vec::new());
                    self.waves.len() - 1
                });
            let lots = &mut self.waves[wave];
            match lots.iter_mut().find(|lot| lot.key == key && lot.events.len() < XERO_BATCH) {
                Some(lot) => lot.events.push((index, event)),
                None => lots.push(Lot { key, events: vec![(index, event)] }),
            }
        }
    }
}

enum Read {
    /// From our own bus (`connection.connected`).
    Bus(PlatformEvent),
    /// Invoice events of one organisation.
    Events(TenantId, Vec<InvoiceEvent>),
    Payment(TenantId, PaymentEvent),
    CreditNote(TenantId, CreditNoteEvent),
    Customer(TenantId, CustomerEvent),
    Item(TenantId, ItemEvent),
    /// Uploads to attach: landed in the bucket, or sent again after a reconnection.
    Uploads(Vec<Uuid>),
}

/// `None` for a bus event of a kind that needs nothing here.
fn read_message(body: &str, bucket: &str) -> Result<Option<Read>, Unreadable> {
    match landing::read(body, bucket) {
        Some(Landing::Uploads(uploads)) => return Ok(Some(Read::Uploads(uploads))),
        Some(Landing::Nothing) => return Ok(None),
        None => {}
    }
    match read::<QueueMessage>(body, &[EventKind::ConnectionConnected.as_str()])? {
        Incoming::Event(event) => Ok(Some(Read::Bus(event))),
        Incoming::Other(kind) => {
            tracing::info!(kind, "bus event ignored");
            Ok(None)
        }
        Incoming::Ours(QueueMessage::Event(m)) => Ok(Some(Read::Events(m.tenant_id, vec![m.event]))),
        Incoming::Ours(QueueMessage::Payment(m)) => Ok(Some(Read::Payment(m.tenant_id, m.event))),
        Incoming::Ours(QueueMessage::CreditNote(m)) => Ok(Some(Read::CreditNote(m.tenant_id, m.event))),
        Incoming::Ours(QueueMessage::Customer(m)) => Ok(Some(Read::Customer(m.tenant_id, m.event))),
        Incoming::Ours(QueueMessage::Item(m)) => Ok(Some(Read::Item(m.tenant_id, m.event))),
        Incoming::Ours(QueueMessage::Attachment(m)) => Ok(Some(Read::Uploads(vec![m.upload_id]))),
        Incoming::Ours(QueueMessage::Backfill(chunk)) => {
            if chunk.events.iter().any(|e| e.account_id != chunk.account_id) {
                return Err(Unreadable("a backfill chunk mixes accounts".into()));
            }
            Ok(Some(Read::Events(chunk.tenant_id, chunk.events)))
        }
    }
}

/// The message is done when every event in it is; otherwise it comes back after the longest
/// wait any of them asked for (the done ones are then unchanged and cost nothing).
pub fn verdict<T>(results: &[Result<T, PushError>]) -> Result<(), Retry> {
    let mut retry: Option<Retry> = None;
    for result in results {
        if let Err(e) = result {
            let this = match e.retry_after() {
                Some(after) if e.is_held() => Retry::held(after),
                after => Retry::later(after),
            };
            retry = Some(match retry {
                None => this,
                Some(r) => r.max(this),
            });
        }
    }
    retry.map_or(Ok(()), Err)
}

async fn bus_event(worker: &Worker, event: PlatformEvent) -> Result<(), Retry> {
    let Some(tenant_id) = event.tenant_id else { return Ok(()) };
    let key = ConnectionKey { account_id: event.account_id, tenant_id };
    redrive_parked(&*worker.app.services.store, &worker.queue, &key).await.map(|_| ()).map_err(|e| {
        tracing::warn!(error = %e, "parked pushes not yet sent again");
        Retry::later(Some(Duration::from_secs(30)))
    })
}
