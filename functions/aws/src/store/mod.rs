//! The DynamoDB adapter for every store port (one file per group of ports); the only code
//! that knows the item layout.

mod attachments;
mod claims;
mod connections;
mod items;
mod records;
mod sessions;
mod sync_log;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use xero_sync_domain::attachment::{DocumentAttachments, DocumentKind, UploadRef};
use xero_sync_domain::contact_groups::ContactGroups;
use xero_sync_domain::credit_note::CreditNoteRecord;
use xero_sync_domain::error::{AwsError, Error};
use xero_sync_domain::governor::Bucket;
use xero_sync_domain::item::ItemRecord;
use xero_sync_domain::model::{
    AccountId, Connection, ConnectionKey, ConnectionStatus, ContactMapping, ContactOwner, Delivery, DeliveryStatus,
    EmailRefusal, GrantId, GrantRelease, ImportCursor, OAuthState, ParkedPush, PendingChoice, PlatformCreditNoteId,
    PlatformCustomerId, PlatformInvoiceId, PlatformItemId, PlatformPaymentId, SyncRecord, TenantId, XeroConnectionId,
    XeroUsage,
};
use xero_sync_domain::payment::PaymentRecord;
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::settings::{ConnectionSettings, VersionedSettings};
use xero_sync_domain::store::{
    AttachmentStore, BucketStore, CONNECTED_SHARDS, Claimed, ConnectedQuery, ConnectionStore, ConsentStore,
    ContactGroupStore, ContactMappingStore, CreditNoteRecordStore, CursorStore, DeliveryClaim, DeliveryStore,
    GrantReleaseStore, ItemRecordStore, JobStateStore, LeaseStore, OnceStore, Page, PageToken, ParkedPushStore,
    PaymentRecordStore, ReferenceDataStore, SettingsStore, StateRefusal, StatusChange, SyncRecordStore, UsageStore,
};
use xero_sync_domain::time;

type Item = HashMap<String, AttributeValue>;

pub const CONNECTED_INDEX: &str = "gsi1";
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
/// DynamoDB items hold 400 KB; leave room for keys and attribute names.
const MAX_SNAPSHOT_BYTES: usize = 350 * 1024;
/// BatchGetItem takes at most 100 keys.
const BATCH_GET_MAX: usize = 100;

mod keys {
    use super::*;

    pub fn account(account: &AccountId) -> String {
        format!("ACCOUNT#{account}")
    }
    pub fn connection(tenant: &TenantId) -> String {
        format!("CONNECTION#{tenant}")
    }
    pub fn settings(tenant: &TenantId) -> String {
        format!("SETTINGS#{tenant}")
    }
    pub fn org(key: &ConnectionKey) -> String {
        format!("ORG#{}#{}", key.account_id, key.tenant_id)
    }
    pub fn usage(day: chrono::NaiveDate) -> String {
        format!("USAGE#{}", day.format("%Y-%m-%d"))
    }
    pub fn invoice(id: &PlatformInvoiceId) -> String {
        format!("INVOICE#{id}")
    }
    pub fn xero_invoice(id: &Uuid) -> String {
        format!("XERO_INVOICE#{id}")
    }
    /// An invoice's parked event, or a payment's: platform ids hold no `#`, so they never meet.
    pub fn parked(parked: &ParkedPush) -> String {
        if let Some(payment) = &parked.payment_id {
            format!("PARKED#PAYMENT#{payment}")
        } else if let Some(credit_note) = &parked.credit_note_id {
            format!("PARKED#CREDIT_NOTE#{credit_note}")
        } else if let Some(customer) = &parked.customer_id {
            format!("PARKED#CUSTOMER#{customer}")
        } else if let Some(item) = &parked.item_id {
            format!("PARKED#ITEM#{item}")
        } else if let Some(upload) = &parked.upload_id {
            format!("PARKED#UPLOAD#{upload}")
        } else if let Some(invoice) = &parked.invoice_id {
            format!("PARKED#{invoice}")
        } else {
            "PARKED#".to_owned()
        }
    }
    pub fn payment(invoice: &PlatformInvoiceId, payment: &PlatformPaymentId) -> String {
        format!("{}{payment}", payments_of(invoice))
    }
    pub fn credit_note(id: &PlatformCreditNoteId) -> String {
        format!("CREDIT_NOTE#{id}")
    }
    pub fn item(id: &PlatformItemId) -> String {
        format!("ITEM#{id}")
    }
    /// The reference from a Xero item code to the platform item that holds it.
    pub fn item_code(code: &str) -> String {
        format!("ITEM_CODE#{code}")
    }
    /// A document's files: platform ids hold no `#`, and the kind keeps an invoice's apart from
    /// a credit note's of the same id.
    pub fn files(kind: DocumentKind, document_id: &str) -> String {
        format!("FILES#{}#{document_id}", kind.as_str())
    }
    pub fn upload(id: Uuid) -> String {
        format!("UPLOAD#{id}")
    }
    pub fn payments_of(invoice: &PlatformInvoiceId) -> String {
        format!("PAYMENT#{invoice}#")
    }
    pub fn xero_payment(id: &Uuid) -> String {
        format!("XERO_PAYMENT#{id}")
    }
    pub fn contact(id: &PlatformCustomerId) -> String {
        format!("CONTACT#{id}")
    }
    pub fn xero_contact(id: &Uuid) -> String {
        format!("XERO_CONTACT#{id}")
    }
    pub fn cursor(resource: &str) -> String {
        format!("CURSOR#{resource}")
    }
    pub fn oauth_state(state: &str) -> String {
        format!("OAUTH_STATE#{state}")
    }
    pub fn xero_connection(id: &XeroConnectionId) -> String {
        format!("XCONN#{id}")
    }
    pub fn xero_connection_user(key: &ConnectionKey) -> String {
        format!("{}#{}", key.account_id, key.tenant_id)
    }
    pub fn tenant(tenant: &TenantId) -> String {
        format!("TENANT#{tenant}")
    }
    pub fn choice(token: &str) -> String {
        format!("CHOICE#{token}")
    }
    pub fn delivery(id: &str) -> String {
        format!("DELIVERY#{id}")
    }
    pub fn lease(name: &str) -> String {
        format!("LEASE#{name}")
    }
    pub fn bucket(name: &str) -> String {
        format!("GOV#{name}")
    }
    pub fn job(name: &str) -> String {
        format!("JOB#{name}")
    }
    pub fn once(name: &str) -> String {
        format!("ONCE#{name}")
    }
    pub fn release(grant: &GrantId) -> String {
        format!("RELEASE#{grant}")
    }
    pub const RELEASES: &str = "RELEASES";

    /// Stable across processes and releases: a connection never moves between shards.
    pub fn connected_shard(key: &ConnectionKey) -> u8 {
        let digest = Sha256::new()
            .chain_update(key.account_id.as_str())
            .chain_update(b"#")
            .chain_update(key.tenant_id.to_string())
            .finalize();
        digest[0] % CONNECTED_SHARDS
    }

    pub fn connected_partition(shard: u8) -> String {
        format!("CONNECTED#{shard}")
    }

    pub fn cleanup_partition(shard: u8) -> String {
        format!("CLEANUP#{shard}")
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn to_item<T: Serialize>(what: &'static str, value: &T) -> Result<Item, Error> {
    serde_dynamo::to_item(value)
        .map_err(|e| Error::Corrupt { what, reason: xero_sync_domain::error::without_values(&e.to_string()) })
}

fn from_item<T: DeserializeOwned>(what: &'static str, item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item)
        .map_err(|e| Error::Corrupt { what, reason: xero_sync_domain::error::without_values(&e.to_string()) })
}

fn with_keys(mut item: Item, pk: String, sk: String, kind: &str) -> Item {
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(sk));
    item.insert("kind".into(), s(kind));
    item
}

fn with_expiry(mut item: Item, expires_at: DateTime<Utc>) -> Item {
    item.insert("expires_at".into(), s(time::format(expires_at)));
    item.insert("expires_epoch".into(), n(expires_at.timestamp()));
    item
}

fn dynamo<E: ProvideErrorMetadata>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> Error {
    move |e| Error::Aws(crate::sdk_error("DynamoDB", operation, &e))
}

fn condition_failed(e: &Error) -> bool {
    matches!(e, Error::Aws(aws) if aws.code_is(CONDITION_FAILED))
}

/// A conditional write's outcome: `true` if it was made, `false` if its condition did not hold.
fn held<T>(result: Result<T, Error>) -> Result<bool, Error> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The condition that a versioned item is still where the writer read it.
fn version_condition(expected: u64) -> (String, Option<(String, AttributeValue)>) {
    if expected == 0 {
        ("attribute_not_exists(pk)".into(), None)
    } else {
        ("#v = :expected".into(), Some((":expected".into(), n(expected))))
    }
}

fn connection_item(c: &Connection) -> Result<Item, Error> {
    let mut item = with_keys(
        to_item("connection", c)?,
        keys::account(&c.account_id),
        keys::connection(&c.tenant_id),
        "connection",
    );
    let shard = keys::connected_shard(&c.key());
    if c.status == ConnectionStatus::Connected {
        item.insert("gsi1pk".into(), s(keys::connected_partition(shard)));
        item.insert("gsi1sk".into(), s(time::format(c.last_activity_at)));
    } else if c.cleanup_pending {
        item.insert("gsi1pk".into(), s(keys::cleanup_partition(shard)));
        item.insert("gsi1sk".into(), s(time::format(c.status_changed_at)));
    }
    Ok(item)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ConnectedCursor {
    shard: u8,
    #[serde(default)]
    start: Option<HashMap<String, String>>,
}

impl ConnectedCursor {
    fn encode(&self) -> PageToken {
        PageToken(URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("plain struct serialises")))
    }

    fn decode(token: &PageToken) -> Result<Self, Error> {
        let corrupt = |reason: String| Error::Corrupt { what: "page token", reason };
        let bytes = URL_SAFE_NO_PAD.decode(&token.0).map_err(|e| corrupt(e.to_string()))?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if cursor.shard >= CONNECTED_SHARDS {
            return Err(corrupt(format!("shard {} out of range", cursor.shard)));
        }
        Ok(cursor)
    }
}

/// [`Store`] on one DynamoDB table laid out as the module documentation says.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem"))?;
        Ok(out.item)
    }

    /// Deletes the item at `key`, if there is one.
    async fn delete(&self, key: Item) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(dynamo("DeleteItem"))?;
        Ok(())
    }

    /// Every item of a partition (those whose sort key starts with `sk_prefix`, when given),
    /// page after page, read consistently.
    async fn query_all(&self, pk: String, sk_prefix: Option<&str>) -> Result<Vec<Item>, Error> {
        let mut query =
            self.client.query().table_name(&self.table).expression_attribute_values(":pk", s(pk)).consistent_read(true);
        query = match sk_prefix {
            Some(prefix) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("pk = :pk"),
        };
        let mut start = None;
        let mut items = Vec::new();
        loop {
            let out = query.clone().set_exclusive_start_key(start).send().await.map_err(dynamo("Query"))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    async fn put(&self, item: Item) -> Result<(), Error> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(dynamo("PutItem"))?;
        Ok(())
    }

    async fn put_versioned(&self, item: Item, expected: u64, what: &str) -> Result<(), Error> {
        let (condition, value) = version_condition(expected);
        let mut req =
            self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        if let Some((name, value)) = value {
            req = req.expression_attribute_names("#v", "version").expression_attribute_values(name, value);
        }
        match req.send().await.map_err(dynamo("PutItem")) {
            Err(e) if condition_failed(&e) => Err(Error::Conflict(what.to_owned())),
            other => other.map(|_| ()),
        }
    }

    /// Reads many items of one partition, 100 keys a call, until DynamoDB has returned them all.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, Error> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::Corrupt { what: "batch keys", reason: e.to_string() })?,
            );
            let mut attempt = 0u32;
            while let Some(request) = pending.take() {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(dynamo("BatchGetItem"))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
                if pending.is_some() {
                    // DynamoDB hands back unprocessed keys under load; back off before asking again.
                    attempt += 1;
                    if attempt > 8 {
                        return Err(Error::Aws(AwsError {
                            service: "DynamoDB",
                            operation: "BatchGetItem",
                            code: Some("UnprocessedKeys".into()),
                            message: None,
                            retryable: true,
                        }));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt.min(6))).await;
                }
            }
        }
        Ok(found)
    }

    async fn create_single_use(
        &self,
        item: Item,
        pk: String,
        sk: &str,
        what: &'static str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), Error> {
        let item = with_expiry(with_keys(item, pk, sk.to_owned(), sk), expires_at);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result.map_err(dynamo("PutItem")) {
            Err(e) if condition_failed(&e) => Err(Error::Conflict(what.into())),
            other => other.map(|_| ()),
        }
    }

    /// Deleting is the atomic step: of two concurrent consumers only one gets the old item.
    async fn consume_single_use<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
        what: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Result<T, StateRefusal>, Error> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result.map_err(dynamo("DeleteItem")) {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                let expires_at = item
                    .get("expires_at")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| time::parse(v).ok())
                    .ok_or(Error::Corrupt { what, reason: "no expires_at".into() })?;
                if expires_at <= now {
                    return Ok(Err(StateRefusal::Expired));
                }
                from_item(what, item).map(Ok)
            }
            Err(e) if condition_failed(&e) => Ok(Err(StateRefusal::Unknown)),
            Err(e) => Err(e),
        }
    }

    /// Keeps the `XCONN#` collection in step with a connection's status. Done after the
    /// connection is written: should this second write fail, the entry errs on the side of
    /// "still used", which only ever leaves a Xero connection in place.
    /// Keeps the two collections over live connections: who uses each Xero connection
    /// (`XCONN#`), and which accounts hold each organisation (`TENANT#`, for Xero's webhooks).
    async fn track_xero_connection(&self, connection: &Connection) -> Result<(), Error> {
        let held = connection.key();
        let rows = [
            (
                key(keys::xero_connection(&connection.xero_connection_id), keys::xero_connection_user(&held)),
                "xero_connection_user",
            ),
            (key(keys::tenant(&connection.tenant_id), connection.account_id.as_str().to_owned()), "tenant_connection"),
        ];
        for (row, kind) in rows {
            if connection.status.is_live() {
                let mut item = row;
                item.insert("kind".into(), s(kind));
                item.insert("account_id".into(), s(connection.account_id.as_str()));
                item.insert("tenant_id".into(), s(connection.tenant_id.to_string()));
                self.put(item).await?;
            } else {
                self.delete(row).await?;
            }
        }
        Ok(())
    }

    /// A page of one of `gsi1`'s sharded partitions (`partition(shard)`), shard after shard.
    async fn index_page(
        &self,
        partition: fn(u8) -> String,
        before: Option<DateTime<Utc>>,
        page_size: i32,
        from: Option<&PageToken>,
    ) -> Result<Page<Connection>, Error> {
        let cursor = match from {
            Some(token) => ConnectedCursor::decode(token)?,
            None => ConnectedCursor { shard: 0, start: None },
        };
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CONNECTED_INDEX)
            .expression_attribute_values(":p", s(partition(cursor.shard)))
            .limit(page_size.max(1));
        req = match before {
            Some(before) => req
                .key_condition_expression("gsi1pk = :p AND gsi1sk < :before")
                .expression_attribute_values(":before", s(time::format(before))),
            None => req.key_condition_expression("gsi1pk = :p"),
        };
        if let Some(start) = cursor.start {
            req = req.set_exclusive_start_key(Some(start.into_iter().map(|(k, v)| (k, s(v))).collect()));
        }
        let out = req.send().await.map_err(dynamo("Query"))?;
        let items =
            out.items.unwrap_or_default().into_iter().map(|i| from_item("connection", i)).collect::<Result<_, _>>()?;
        let next = match out.last_evaluated_key {
            Some(last) => {
                let start = last
                    .into_iter()
                    .map(|(k, v)| match v {
                        AttributeValue::S(v) => Ok((k, v)),
                        _ => Err(Error::Corrupt { what: "page token", reason: format!("{k} is not a string") }),
                    })
                    .collect::<Result<_, _>>()?;
                Some(ConnectedCursor { shard: cursor.shard, start: Some(start) }.encode())
            }
            None if cursor.shard + 1 < CONNECTED_SHARDS => {
                Some(ConnectedCursor { shard: cursor.shard + 1, start: None }.encode())
            }
            None => None,
        };
        Ok(Page { items, next })
    }

    async fn refs(&self, key: &ConnectionKey, sks: Vec<String>, field: &str) -> Result<HashMap<Uuid, String>, Error> {
        let items = self.ref_items(key, sks).await?;
        let mut out = HashMap::with_capacity(items.len());
        for (id, item) in items {
            let target = item.get(field).and_then(|v| v.as_s().ok()).cloned();
            let target =
                target.ok_or_else(|| Error::Corrupt { what: "Xero reference", reason: format!("missing {field}") })?;
            out.insert(id, target);
        }
        Ok(out)
    }

    /// The reverse references `sks` that exist, whole, by the Xero id each names.
    async fn ref_items(&self, key: &ConnectionKey, sks: Vec<String>) -> Result<HashMap<Uuid, Item>, Error> {
        let pk = keys::org(key);
        let mut unique = sks;
        unique.sort();
        unique.dedup();
        let items = self.batch_get(unique.into_iter().map(|sk| self::key(pk.clone(), sk)).collect()).await?;
        let mut out = HashMap::with_capacity(items.len());
        for item in items {
            let xero_id = item.get("xero_id").and_then(|v| v.as_s().ok()).and_then(|v| Uuid::parse_str(v).ok());
            let id = xero_id.ok_or(Error::Corrupt { what: "Xero reference", reason: "missing xero_id".into() })?;
            out.insert(id, item);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_survive_a_round_trip_and_refuse_garbage() {
        let cursor = ConnectedCursor { shard: 3, start: Some(HashMap::from([("pk".into(), "ACCOUNT#a".into())])) };
        let decoded = ConnectedCursor::decode(&cursor.encode()).unwrap();
        assert_eq!(decoded.shard, 3);
        assert!(ConnectedCursor::decode(&PageToken("!!".into())).is_err());
        let out_of_range = ConnectedCursor { shard: CONNECTED_SHARDS, start: None }.encode();
        assert!(ConnectedCursor::decode(&out_of_range).is_err());
    }

    #[test]
    fn a_connection_always_lands_in_the_same_shard() {
        let key = ConnectionKey {
            account_id: AccountId::parse("acct-1").unwrap(),
            tenant_id: TenantId::parse("4a6b6a0a-6a5b-4f6c-9d1c-6d3c1b0f9a11").unwrap(),
        };
        assert_eq!(keys::connected_shard(&key), keys::connected_shard(&key.clone()));
        assert!(keys::connected_shard(&key) < CONNECTED_SHARDS);
    }
}
