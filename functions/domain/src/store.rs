//! Everything xero-sync remembers, in one DynamoDB table.
//!
//! # Item layout
//!
//! This table is the single place the layout is described; `xero_sync_aws::store` is the only
//! code that builds keys. Every access path is a `GetItem`, a `Query` on the table's key, on `gsi1`
//! or on `gsi2`, or a `BatchGetItem`; nothing scans.
//!
//! | item              | `pk`                          | `sk`                        | `gsi1pk` / `gsi1sk`                     | `expires_epoch` |
//! |-------------------|-------------------------------|-----------------------------|-----------------------------------------|--------------|
//! | connection        | `ACCOUNT#{account}`           | `CONNECTION#{tenant}`       | `CONNECTED#{shard}` / last activity, only while CONNECTED | – |
//! | settings          | `ACCOUNT#{account}`           | `SETTINGS#{tenant}`         | –                                       | –            |
//! | Xero connection user | `XCONN#{Xero connection id}` | `{account}#{tenant}`     | –                                       | –            |
//! | organisation's connection | `TENANT#{tenant}`       | `{account}`                 | –                                       | –            |
//! | sync record       | `ORG#{account}#{tenant}`      | `INVOICE#{platform id}`     | sync log (below)                        | –            |
//! | Xero invoice ref  | `ORG#{account}#{tenant}`      | `XERO_INVOICE#{InvoiceID}`  | –                                       | –            |
//! | contact mapping   | `ORG#{account}#{tenant}`      | `CONTACT#{customer id}`     | –                                       | –            |
//! | Xero contact ref  | `ORG#{account}#{tenant}`      | `XERO_CONTACT#{ContactID}`  | –                                       | –            |
//! | payment record    | `ORG#{account}#{tenant}`      | `PAYMENT#{invoice id}#{payment id}` | sync log (below)                | –            |
//! | credit note record | `ORG#{account}#{tenant}`     | `CREDIT_NOTE#{platform id}` | sync log (below)                        | –            |
//! | Xero payment ref  | `ORG#{account}#{tenant}`      | `XERO_PAYMENT#{PaymentID}`  | –                                       | –            |
//! | parked push       | `ORG#{account}#{tenant}`      | `PARKED#{platform id}`, `PARKED#PAYMENT#{payment id}` | –             | –            |
//! | import cursor     | `ORG#{account}#{tenant}`      | `CURSOR#{resource}`         | –                                       | –            |
//! | reference data    | `ORG#{account}#{tenant}`      | `REFDATA`                   | –                                       | –            |
//! | document's files  | `ORG#{account}#{tenant}`      | `FILES#{kind}#{document id}` | –                                      | –            |
//! | Xero usage of a day | `ORG#{account}#{tenant}`    | `USAGE#{yyyy-mm-dd}`        | –                                       | 90 days      |
//! | OAuth state       | `OAUTH_STATE#{state}`         | `OAUTH_STATE`               | –                                       | 10 minutes   |
//! | pending org choice| `CHOICE#{token}`              | `CHOICE`                    | –                                       | 10 minutes   |
//! | page URL offer    | `PAGE_OFFER#{token sha256}`   | `PAGE_OFFER`                | –                                       | 5 minutes    |
//! | page session      | `PAGE_SESSION#{id sha256}`    | `PAGE_SESSION`              | –                                       | 2 hours      |
//! | webhook delivery  | `DELIVERY#{delivery id}`      | `DELIVERY`                  | –                                       | a few days   |
//! | lease             | `LEASE#{name}`                | `LEASE`                     | –                                       | seconds      |
//! | governor bucket   | `GOV#{name}`                  | `GOV`                       | –                                       | a day        |
//! | job state         | `JOB#{name}`                  | `JOB`                       | –                                       | –            |
//! | upload            | `UPLOAD#{upload id}`          | `UPLOAD`                    | –                                       | 30 days      |
//! | once              | `ONCE#{name}`                 | `ONCE`                      | –                                       | as claimed   |
//! | grant release     | `RELEASE#{grant}`             | `RELEASE`                   | `RELEASES` / due at                     | –            |
//!
//! * **Connected index.** `gsi1` holds only CONNECTED connections (the attribute is removed on
//!   any other status), sorted by last activity as a fixed-width UTC string. "Connected
//!   connections" (the import fan-out) reads every partition; "connected and idle since T" (the
//!   inactivity sweep) adds `gsi1sk < T`. The partition is spread over [`CONNECTED_SHARDS`]
//!   values by a hash of the connection, so tens of thousands of connections recording activity
//!   do not all write to one index partition.
//! * **Clean-up index.** An ended connection whose clean-up (its Xero connection, its tokens)
//!   is not done yet sits in `gsi1` under `CLEANUP#{shard}` instead, sorted by when it ended;
//!   [`ConnectionStore::finish_cleanup`] takes it out. Grant releases sit under `RELEASES`, sorted by when
//!   they are due. Both are written in the same request as the state they describe.
//! * **Sync log.** Sync, payment and credit note records also sit in `gsi1` under
//!   `LOG#{account}#{tenant}`, sorted by `{updated_at}#{kind}#{id}` (the same put, no extra write),
//!   so [`SyncLogStore::sync_log`] reads one organisation's newest changes a page at a time.
//!   While a record is FAILED the same keys are also its `gsi2pk` (`FAILED#{account}#{tenant}`)
//!   and `gsi2sk`: `gsi2` is sparse and holds failures only, so listing them never reads past
//!   the successes. Records last written before the log existed are in neither until their
//!   next write.
//! * **Activity** is a successful push, an import that delivered changes, or an action by the
//!   account through the connection API; each calls [`ConnectionStore::record_activity`].
//! * **Expiry.** `expires_epoch` (epoch seconds) is the table's TTL attribute, there only so
//!   DynamoDB cleans up. It deletes expired items up to days late and moto never does, so every
//!   read of an expiring item checks the item's own `expires_at` (a fixed-width UTC string),
//!   and conditional writes treat an item whose `expires_at` has passed as absent.
//! * **Exactly once.** Single use (states), first delivery (webhook ids), leases and versioned
//!   records (sync records, cursors, settings) are conditional writes; a lost race is
//!   [`crate::Error::Conflict`].
//! * **Shared Xero connections.** Xero keeps one connection per Xero user and organisation, so
//!   two platform accounts connected by the same person to the same organisation share it. The
//!   `XCONN#` collection lists the live (CONNECTED or NEEDS_RECONNECT) connections using each
//!   one; it is kept by [`ConnectionStore::put_connection`] and [`ConnectionStore::set_connection_status`], and a
//!   disconnect removes the Xero connection only when no one else uses it.
//! * **Paired items.** A Xero id → platform id reference is written just before the record it
//!   points back to (a reference is true as soon as Xero has the object, so one left alone by a
//!   failed record write is harmless), so the import can batch-read "which of these Xero
//!   objects are ours" without an index per entity. No transactions: they cost twice the
//!   writes and buy nothing here.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;

use crate::Error;
use crate::attachment::{DocumentAttachments, DocumentKind, UploadRef};
use crate::contact_groups::ContactGroups;
use crate::credit_note::CreditNoteRecord;
use crate::governor::Bucket;
use crate::item::ItemRecord;
use crate::model::{
    AccountId, Connection, ConnectionKey, ConnectionStatus, ContactMapping, ContactOwner, Delivery, EmailRefusal,
    GrantId, GrantRelease, ImportCursor, OAuthState, ParkedPush, PendingChoice, PlatformCreditNoteId,
    PlatformCustomerId, PlatformInvoiceId, PlatformItemId, PlatformPaymentId, SyncRecord, TenantId, XeroConnectionId,
    XeroUsage,
};
use crate::payment::PaymentRecord;
use crate::reference::ReferenceData;
use crate::settings::{ConnectionSettings, VersionedSettings};
use crate::sync_log::{LogEntry, LogFilter};

/// How many partitions the connected index is spread over. Changing it re-homes every
/// connection, so it is a constant, not configuration.
pub const CONNECTED_SHARDS: u8 = 8;

/// Why an OAuth state was refused at the callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateRefusal {
    /// Never issued, or already used (a replay).
    Unknown,
    /// Issued, but the consent took longer than the state lives.
    Expired,
}

#[derive(Debug)]
pub enum DeliveryClaim {
    /// First sight of this delivery id: process it.
    New,
    /// Seen before and still remembered.
    Seen(Delivery),
}

/// A status change and the statuses it may come from (empty: any).
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub to: ConnectionStatus,
    pub only_from: Vec<ConnectionStatus>,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// Only while the connection's last activity is still this (as the caller read it), so
    /// activity recorded meanwhile wins over a change decided from idleness.
    pub if_last_activity: Option<DateTime<Utc>>,
    /// What the connection held is still to be released: list it in the clean-up index.
    pub cleanup: bool,
}

impl StatusChange {
    pub fn new(
        to: ConnectionStatus,
        only_from: Vec<ConnectionStatus>,
        reason: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        Self { to, only_from, reason, at, if_last_activity: None, cleanup: false }
    }
}

/// A claim made earlier, with what it kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub value: String,
    pub at: DateTime<Utc>,
}

/// Which connected connections to list.
#[derive(Debug, Clone, Copy)]
pub struct ConnectedQuery {
    /// Only those whose last activity is before this instant.
    pub idle_before: Option<DateTime<Utc>>,
    /// At most this many per page (DynamoDB's `Limit`).
    pub page_size: i32,
}

/// Where the next page of a multi-page listing starts; opaque to callers, safe to put in a
/// queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken(pub String);

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageToken>,
}

/// How long a claimed once-key is taken to be in progress before its claimant is presumed dead.
const ONCE_IN_FLIGHT: Duration = Duration::minutes(5);
/// What [`at_most_once`] keeps with its key while the work runs, and once it is done.
const ONCE_RUNNING: &str = "running";
const ONCE_DONE: &str = "done";

/// Runs `work` unless a run under `key` already succeeded (within `remember`): how a notice is
/// sent once although its cause is seen by every retry. The key is claimed first and released
/// if `work` fails, so a failure is retried by the next caller instead of being lost. Returns
/// whether `work` ran.
pub async fn at_most_once<F, Fut>(
    store: &dyn OnceStore,
    key: &str,
    now: DateTime<Utc>,
    remember: Duration,
    work: F,
) -> Result<bool, Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    match store.claim_once(key, ONCE_RUNNING, now + remember, now).await? {
        None => {}
        // Claimed by a run that died before it finished: ours to do now.
        Some(earlier) if earlier.value == ONCE_RUNNING && now - earlier.at > ONCE_IN_FLIGHT => {}
        Some(_) => return Ok(false),
    }
    match work().await {
        Ok(()) => {
            store.settle_once(key, ONCE_DONE, now + remember, now).await?;
            Ok(true)
        }
        Err(e) => {
            let _ = store.forget_once(key).await;
            Err(e)
        }
    }
}

/// Connections: their status, activity, the indexes over them, clean-up and refused addresses.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put_connection(&self, connection: &Connection) -> Result<(), Error>;
    async fn get_connection(&self, key: &ConnectionKey) -> Result<Option<Connection>, Error>;
    async fn account_connections(&self, account: &AccountId) -> Result<Vec<Connection>, Error>;
    /// Fails with `Conflict` when the current status is not in `only_from`, `NotFound` when
    /// there is no such connection.
    async fn set_connection_status(&self, key: &ConnectionKey, change: &StatusChange) -> Result<Connection, Error>;
    /// Moves last activity forward (never back). Returns whether it moved.
    async fn record_activity(&self, key: &ConnectionKey, at: DateTime<Utc>) -> Result<bool, Error>;
    async fn record_sync(&self, key: &ConnectionKey, at: DateTime<Utc>) -> Result<(), Error>;
    async fn connected_page(&self, query: ConnectedQuery, from: Option<&PageToken>) -> Result<Page<Connection>, Error>;
    /// Live connections, of any account, that use this Xero connection.
    async fn sharing_xero_connection(&self, id: XeroConnectionId) -> Result<Vec<ConnectionKey>, Error>;
    /// Live connections, of any account, to this organisation (where Xero's webhooks go).
    async fn holding_tenant(&self, tenant: TenantId) -> Result<Vec<ConnectionKey>, Error>;
    /// Lists a connection in the collections over live connections again (idempotent): the
    /// import does it each run, so one stored before a collection existed joins it.
    async fn index_connection(&self, connection: &Connection) -> Result<(), Error>;
    /// Ended connections whose clean-up is not done, oldest first.
    async fn pending_cleanups(&self, page_size: i32, from: Option<&PageToken>) -> Result<Page<Connection>, Error>;
    /// The clean-up is done: out of the clean-up index.
    async fn finish_cleanup(&self, key: &ConnectionKey) -> Result<(), Error>;
    /// Records (or, with `None`, clears) a permanent refusal of the account's address.
    async fn set_email_refusal(&self, key: &ConnectionKey, refusal: Option<&EmailRefusal>) -> Result<(), Error>;
}

/// Grants to release once nobody uses them.
#[async_trait]
pub trait GrantReleaseStore: Send + Sync {
    async fn put_grant_release(&self, release: &GrantRelease) -> Result<(), Error>;
    async fn delete_grant_release(&self, grant: GrantId) -> Result<(), Error>;
    /// Releases due at `now`, soonest first, at most `limit`.
    async fn due_grant_releases(&self, now: DateTime<Utc>, limit: i32) -> Result<Vec<GrantRelease>, Error>;
}

/// Claims made once: a connect link's single use, a notice sent once (see [`at_most_once`]).
#[async_trait]
pub trait OnceStore: Send + Sync {
    /// Claims `name` until `until`, keeping `value` with the claim: `None` the first time, the
    /// earlier claim while it lasts (single use of a connect link, say).
    async fn claim_once(
        &self,
        name: &str,
        value: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, Error>;
    /// Replaces what a claim keeps, and until when (the claim made, its work done).
    async fn settle_once(&self, name: &str, value: &str, until: DateTime<Utc>, now: DateTime<Utc>)
    -> Result<(), Error>;
    /// Gives a claim up, so that the next caller makes it again (its work failed).
    async fn forget_once(&self, name: &str) -> Result<(), Error>;
}

/// Consents in progress: OAuth states and the pick-one-organisation step, each single use.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn create_oauth_state(&self, state: &OAuthState) -> Result<(), Error>;
    async fn consume_oauth_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<OAuthState, StateRefusal>, Error>;
    /// The pick-one-organisation step after a consent; single use like an OAuth state.
    async fn create_choice(&self, choice: &PendingChoice) -> Result<(), Error>;
    async fn consume_choice(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<PendingChoice, StateRefusal>, Error>;
}

/// Leases: one holder at a time, until it releases or the lease expires.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;
    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), Error>;
    /// Extends a lease only if `owner` still holds it and it has not expired: a fence before a
    /// write that must not happen once someone else may have taken over.
    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;
}

/// Webhook deliveries, remembered so that a redelivery is recognised.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    async fn claim_delivery(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
        keep_for: Duration,
    ) -> Result<DeliveryClaim, Error>;
    async fn mark_delivery_enqueued(&self, delivery_id: &str) -> Result<(), Error>;
    /// Lets a delivery that could not be handed on be accepted again when it is redelivered.
    async fn forget_delivery(&self, delivery_id: &str) -> Result<(), Error>;
}

/// Sync records: a platform invoice and what became of it in Xero.
#[async_trait]
pub trait SyncRecordStore: Send + Sync {
    async fn get_sync_record(
        &self,
        key: &ConnectionKey,
        invoice: &PlatformInvoiceId,
    ) -> Result<Option<SyncRecord>, Error>;
    /// Writes `record` if the stored version still equals `record.version`; returns it with the
    /// new version.
    async fn save_sync_record(&self, record: &SyncRecord) -> Result<SyncRecord, Error>;
    async fn invoices_for_xero_ids(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PlatformInvoiceId>, Error>;
}

/// Payment records: a platform payment and what became of it in Xero.
#[async_trait]
pub trait PaymentRecordStore: Send + Sync {
    async fn get_payment_record(
        &self,
        key: &ConnectionKey,
        invoice: &PlatformInvoiceId,
        payment: &PlatformPaymentId,
    ) -> Result<Option<PaymentRecord>, Error>;
    /// Versioned like [`SyncRecordStore::save_sync_record`]; a record naming a Xero payment
    /// has its reference written first.
    async fn save_payment_record(&self, record: &PaymentRecord) -> Result<PaymentRecord, Error>;
    /// Every payment of one invoice, oldest first.
    async fn invoice_payments(
        &self,
        key: &ConnectionKey,
        invoice: &PlatformInvoiceId,
    ) -> Result<Vec<PaymentRecord>, Error>;
    /// Which of these Xero payments we made, with the record of each.
    async fn payments_for_xero_ids(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PaymentRecord>, Error>;
}

/// The sync log over sync, payment and credit note records (see [`crate::sync_log`]).
#[async_trait]
pub trait SyncLogStore: Send + Sync {
    /// One organisation's records, the most recently changed first, at most `page_size`;
    /// `from` is the `next` of the page before.
    async fn sync_log(
        &self,
        key: &ConnectionKey,
        filter: LogFilter,
        page_size: i32,
        from: Option<&PageToken>,
    ) -> Result<Page<LogEntry>, Error>;
}

/// Credit note records: a platform credit note and what became of it in Xero.
#[async_trait]
pub trait CreditNoteRecordStore: Send + Sync {
    async fn get_credit_note_record(
        &self,
        key: &ConnectionKey,
        credit_note: &PlatformCreditNoteId,
    ) -> Result<Option<CreditNoteRecord>, Error>;
    /// Versioned like [`SyncRecordStore::save_sync_record`].
    async fn save_credit_note_record(&self, record: &CreditNoteRecord) -> Result<CreditNoteRecord, Error>;
}

/// Platform items and their Xero items.
#[async_trait]
pub trait ItemRecordStore: Send + Sync {
    async fn get_item_record(&self, key: &ConnectionKey, item: &PlatformItemId) -> Result<Option<ItemRecord>, Error>;
    /// Versioned like [`SyncRecordStore::save_sync_record`]. Also keeps the reference from the
    /// record's live code to it, and drops the one from `previous_code` when that is no longer it.
    async fn save_item_record(&self, record: &ItemRecord, previous_code: Option<&str>) -> Result<ItemRecord, Error>;
    /// Which of `codes` name items we pushed that are in Xero now.
    async fn live_item_codes(&self, key: &ConnectionKey, codes: &[String]) -> Result<HashSet<String>, Error>;
}

/// Files attached to documents, and the uploads that bring them.
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    async fn get_attachments(
        &self,
        key: &ConnectionKey,
        kind: DocumentKind,
        document_id: &str,
    ) -> Result<Option<DocumentAttachments>, Error>;
    /// Versioned like [`SyncRecordStore::save_sync_record`]: [`Error::Conflict`] when another
    /// writer saved first.
    async fn save_attachments(&self, attachments: &DocumentAttachments) -> Result<DocumentAttachments, Error>;
    /// Remembers which document and file an upload is for, until `expires`.
    async fn put_upload(&self, upload: &UploadRef, expires: DateTime<Utc>) -> Result<(), Error>;
    /// The upload, unless it expired by `now`.
    async fn get_upload(&self, upload_id: Uuid, now: DateTime<Utc>) -> Result<Option<UploadRef>, Error>;
}

/// The organisation's contact groups as last read.
#[async_trait]
pub trait ContactGroupStore: Send + Sync {
    async fn get_contact_groups(&self, key: &ConnectionKey) -> Result<Option<ContactGroups>, Error>;
    async fn put_contact_groups(&self, key: &ConnectionKey, groups: &ContactGroups) -> Result<(), Error>;
}

/// A scheduled job's own state between runs (where a bounded run stopped, what to retry).
#[async_trait]
pub trait JobStateStore: Send + Sync {
    async fn get_job_state(&self, name: &str) -> Result<Option<String>, Error>;
    /// Replaces the state; `None` removes it.
    async fn put_job_state(&self, name: &str, state: Option<&str>) -> Result<(), Error>;
}

/// Pushes waiting for a reconnection.
#[async_trait]
pub trait ParkedPushStore: Send + Sync {
    /// Keeps `parked` unless a newer event for the same invoice is already parked.
    async fn park_push(&self, key: &ConnectionKey, parked: &ParkedPush) -> Result<(), Error>;
    async fn parked_pushes(&self, key: &ConnectionKey) -> Result<Vec<ParkedPush>, Error>;
    /// Removes `parked` unless a newer event has replaced it since it was read.
    async fn unpark_push(&self, key: &ConnectionKey, parked: &ParkedPush) -> Result<(), Error>;
}

/// Which Xero contact invoices each platform customer.
#[async_trait]
pub trait ContactMappingStore: Send + Sync {
    async fn get_contact_mapping(
        &self,
        key: &ConnectionKey,
        customer: &PlatformCustomerId,
    ) -> Result<Option<ContactMapping>, Error>;
    async fn put_contact_mapping(&self, key: &ConnectionKey, mapping: &ContactMapping) -> Result<(), Error>;
    /// The customers the Xero contacts `xero_ids` stand for, and our last write to each.
    async fn contact_owners(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, ContactOwner>, Error>;

    async fn customers_for_xero_ids(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PlatformCustomerId>, Error> {
        let owners = self.contact_owners(key, xero_ids).await?;
        Ok(owners.into_iter().map(|(id, owner)| (id, owner.customer_id)).collect())
    }
}

/// Import cursors.
#[async_trait]
pub trait CursorStore: Send + Sync {
    async fn get_cursor(&self, key: &ConnectionKey, resource: &str) -> Result<Option<ImportCursor>, Error>;
    /// Versioned like [`SyncRecordStore::save_sync_record`].
    async fn save_cursor(&self, key: &ConnectionKey, cursor: &ImportCursor) -> Result<ImportCursor, Error>;
}

/// The organisation's reference data, as last read (see [`crate::reference`]).
#[async_trait]
pub trait ReferenceDataStore: Send + Sync {
    async fn get_reference_data(&self, key: &ConnectionKey) -> Result<Option<ReferenceData>, Error>;
    /// Keeps a snapshot; one too large for an item (over ~350 KB of JSON) is not kept and
    /// `false` is returned, so readers go to Xero instead.
    async fn put_reference_data(&self, key: &ConnectionKey, data: &ReferenceData) -> Result<bool, Error>;
}

/// What each connection received from Xero, by UTC day.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds `usage` to the connection's count for `day` (one atomic update).
    async fn add_usage(&self, key: &ConnectionKey, day: NaiveDate, usage: XeroUsage) -> Result<(), Error>;
    /// The connection's counts for `days`, a day without any counting as zero.
    async fn usage(&self, key: &ConnectionKey, days: &[NaiveDate]) -> Result<Vec<(NaiveDate, XeroUsage)>, Error>;
}

/// Settings.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn get_settings(&self, key: &ConnectionKey) -> Result<VersionedSettings, Error>;
    /// Replaces the settings if they are still at `expected_version`.
    async fn put_settings(
        &self,
        key: &ConnectionKey,
        expected_version: u64,
        settings: &ConnectionSettings,
    ) -> Result<VersionedSettings, Error>;
}

/// The governor's buckets ([`crate::governor::Bucket`]), each a small versioned record that
/// every process reads and writes by compare-and-set.
#[async_trait]
pub trait BucketStore: Send + Sync {
    /// The bucket and its version (0 when it was never written).
    async fn get_bucket(&self, name: &str) -> Result<(Bucket, u64), Error>;
    /// Writes the bucket if it is still at `version`; `false` when another process wrote first.
    async fn put_bucket(
        &self,
        name: &str,
        bucket: &Bucket,
        version: u64,
        expires: DateTime<Utc>,
    ) -> Result<bool, Error>;
}

/// Every port at once: what the DynamoDB adapter implements, and what a process holds. A
/// function that needs less asks for the port it uses ([`LeaseStore`], say).
pub trait Store:
    ConnectionStore
    + GrantReleaseStore
    + OnceStore
    + ConsentStore
    + LeaseStore
    + DeliveryStore
    + SyncRecordStore
    + PaymentRecordStore
    + CreditNoteRecordStore
    + SyncLogStore
    + ItemRecordStore
    + AttachmentStore
    + ContactGroupStore
    + JobStateStore
    + ParkedPushStore
    + ContactMappingStore
    + CursorStore
    + ReferenceDataStore
    + SettingsStore
    + UsageStore
    + BucketStore
{
}

impl<
    T: ConnectionStore
        + GrantReleaseStore
        + OnceStore
        + ConsentStore
        + LeaseStore
        + DeliveryStore
        + SyncRecordStore
        + PaymentRecordStore
        + CreditNoteRecordStore
        + SyncLogStore
        + ItemRecordStore
        + AttachmentStore
        + ContactGroupStore
        + JobStateStore
        + ParkedPushStore
        + ContactMappingStore
        + CursorStore
        + ReferenceDataStore
        + SettingsStore
        + UsageStore
        + BucketStore,
> Store for T
{
}
