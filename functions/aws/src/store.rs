//! The DynamoDB adapter for [`Store`]; the only code that knows the item layout.

use std::collections::HashMap;

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

use xero_sync_domain::error::{AwsError, Error};
use xero_sync_domain::model::{
    AccountId, Connection, ConnectionKey, ConnectionStatus, ContactMapping, Delivery, DeliveryStatus, EmailRefusal,
    GrantId, GrantRelease, ImportCursor, OAuthState, ParkedPush, PendingChoice, PlatformCustomerId, PlatformInvoiceId,
    SyncRecord, TenantId, XeroConnectionId,
};
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::settings::{ConnectionSettings, VersionedSettings};
use xero_sync_domain::store::{
    CONNECTED_SHARDS, Claimed, ConnectedQuery, DeliveryClaim, Page, PageToken, StateRefusal, StatusChange, Store,
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
    pub fn invoice(id: &PlatformInvoiceId) -> String {
        format!("INVOICE#{id}")
    }
    pub fn xero_invoice(id: &Uuid) -> String {
        format!("XERO_INVOICE#{id}")
    }
    pub fn parked(id: &PlatformInvoiceId) -> String {
        format!("PARKED#{id}")
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
    pub fn choice(token: &str) -> String {
        format!("CHOICE#{token}")
    }
    pub fn delivery(id: &str) -> String {
        format!("DELIVERY#{id}")
    }
    pub fn lease(name: &str) -> String {
        format!("LEASE#{name}")
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
    async fn track_xero_connection(&self, connection: &Connection) -> Result<(), Error> {
        let live = connection.status.is_live();
        let item =
            key(keys::xero_connection(&connection.xero_connection_id), keys::xero_connection_user(&connection.key()));
        if live {
            let mut item = item;
            item.insert("kind".into(), s("xero_connection_user"));
            item.insert("account_id".into(), s(connection.account_id.as_str()));
            item.insert("tenant_id".into(), s(connection.tenant_id.to_string()));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(dynamo("PutItem"))?;
        } else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(item))
                .send()
                .await
                .map_err(dynamo("DeleteItem"))?;
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
        let pk = keys::org(key);
        let mut unique = sks;
        unique.sort();
        unique.dedup();
        let items = self.batch_get(unique.into_iter().map(|sk| self::key(pk.clone(), sk)).collect()).await?;
        let mut out = HashMap::with_capacity(items.len());
        for item in items {
            let xero_id = item.get("xero_id").and_then(|v| v.as_s().ok()).and_then(|v| Uuid::parse_str(v).ok());
            let target = item.get(field).and_then(|v| v.as_s().ok()).cloned();
            match (xero_id, target) {
                (Some(id), Some(target)) => {
                    out.insert(id, target);
                }
                _ => {
                    return Err(Error::Corrupt {
                        what: "Xero reference",
                        reason: format!("missing xero_id or {field}"),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn put_connection(&self, connection: &Connection) -> Result<(), Error> {
        let out = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(connection_item(connection)?))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(dynamo("PutItem"))?;
        // Reconnected through another Xero user: this connection no longer uses the old one.
        let before = out.attributes.and_then(|old| old.get("xero_connection_id").and_then(|v| v.as_s().ok()).cloned());
        let replaced = before.and_then(|old| XeroConnectionId::parse(&old).ok());
        if let Some(old) = replaced.filter(|old| *old != connection.xero_connection_id) {
            let row = key(keys::xero_connection(&old), keys::xero_connection_user(&connection.key()));
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(row))
                .send()
                .await
                .map_err(dynamo("DeleteItem"))?;
        }
        self.track_xero_connection(connection).await
    }

    async fn get_connection(&self, key: &ConnectionKey) -> Result<Option<Connection>, Error> {
        let item = self.get(self::key(keys::account(&key.account_id), keys::connection(&key.tenant_id))).await?;
        item.map(|i| from_item("connection", i)).transpose()
    }

    async fn account_connections(&self, account: &AccountId) -> Result<Vec<Connection>, Error> {
        let items = self.query_all(keys::account(account), Some("CONNECTION#")).await?;
        items.into_iter().map(|i| from_item("connection", i)).collect()
    }

    async fn set_connection_status(&self, key: &ConnectionKey, change: &StatusChange) -> Result<Connection, Error> {
        let shard = keys::connected_shard(key);
        let mut update =
            String::from("SET #s = :to, status_changed_at = :at, last_error = :reason, cleanup_pending = :cleanup");
        let index = if change.to == ConnectionStatus::Connected {
            update.push_str(", gsi1pk = :index, gsi1sk = last_activity_at");
            Some(keys::connected_partition(shard))
        } else if change.cleanup {
            update.push_str(", gsi1pk = :index, gsi1sk = :at");
            Some(keys::cleanup_partition(shard))
        } else {
            update.push_str(" REMOVE gsi1pk, gsi1sk");
            None
        };
        let mut condition = String::from("attribute_exists(pk)");
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::account(&key.account_id), keys::connection(&key.tenant_id))))
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":to", s(change.to.as_str()))
            .expression_attribute_values(":at", s(time::format(change.at)))
            .expression_attribute_values(":cleanup", AttributeValue::Bool(change.cleanup))
            .expression_attribute_values(
                ":reason",
                change.reason.clone().map(AttributeValue::S).unwrap_or(AttributeValue::Null(true)),
            )
            .return_values(ReturnValue::AllNew);
        if let Some(index) = index {
            req = req.expression_attribute_values(":index", s(index));
        }
        if !change.only_from.is_empty() {
            let names: Vec<String> = (0..change.only_from.len()).map(|i| format!(":from{i}")).collect();
            condition.push_str(&format!(" AND #s IN ({})", names.join(", ")));
            for (name, status) in names.into_iter().zip(&change.only_from) {
                req = req.expression_attribute_values(name, s(status.as_str()));
            }
        }
        if let Some(seen) = change.if_last_activity {
            condition.push_str(" AND last_activity_at = :seen");
            req = req.expression_attribute_values(":seen", s(time::format(seen)));
        }
        let result = req.update_expression(update).condition_expression(condition).send().await;
        match result.map_err(dynamo("UpdateItem")) {
            Ok(out) => {
                let updated: Connection = from_item("connection", out.attributes.unwrap_or_default())?;
                self.track_xero_connection(&updated).await?;
                Ok(updated)
            }
            Err(e) if condition_failed(&e) => match self.get_connection(key).await? {
                Some(current) => Err(Error::Conflict(format!("connection (now {})", current.status.as_str()))),
                None => Err(Error::NotFound("connection".into())),
            },
            Err(e) => Err(e),
        }
    }

    async fn record_activity(&self, key: &ConnectionKey, at: DateTime<Utc>) -> Result<bool, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::account(&key.account_id), keys::connection(&key.tenant_id))))
            // gsi1sk follows last activity even while not CONNECTED: without gsi1pk the item is
            // not in the index, and a later reconnect copies the value anyway.
            .update_expression("SET last_activity_at = :at, gsi1sk = :at")
            .condition_expression("attribute_exists(pk) AND last_activity_at < :at")
            .expression_attribute_values(":at", s(time::format(at)))
            .send()
            .await;
        held(result.map_err(dynamo("UpdateItem")))
    }

    async fn record_sync(&self, key: &ConnectionKey, at: DateTime<Utc>) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::account(&key.account_id), keys::connection(&key.tenant_id))))
            .update_expression("SET last_sync_at = :at")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":at", s(time::format(at)))
            .send()
            .await;
        match result.map_err(dynamo("UpdateItem")) {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Err(Error::NotFound("connection".into())),
            Err(e) => Err(e),
        }
    }

    async fn connected_page(&self, query: ConnectedQuery, from: Option<&PageToken>) -> Result<Page<Connection>, Error> {
        self.index_page(keys::connected_partition, query.idle_before, query.page_size, from).await
    }

    async fn pending_cleanups(&self, page_size: i32, from: Option<&PageToken>) -> Result<Page<Connection>, Error> {
        self.index_page(keys::cleanup_partition, None, page_size, from).await
    }

    async fn finish_cleanup(&self, key: &ConnectionKey) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::account(&key.account_id), keys::connection(&key.tenant_id))))
            .update_expression("SET cleanup_pending = :false REMOVE gsi1pk, gsi1sk")
            .condition_expression("cleanup_pending = :true")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await;
        // Not pending (finished by someone else, or reconnected since): nothing to take out.
        held(result.map_err(dynamo("UpdateItem"))).map(|_| ())
    }

    async fn set_email_refusal(&self, key: &ConnectionKey, refusal: Option<&EmailRefusal>) -> Result<(), Error> {
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::account(&key.account_id), keys::connection(&key.tenant_id))))
            .condition_expression("attribute_exists(pk)");
        let req = match refusal {
            Some(refusal) => {
                let value = serde_dynamo::to_attribute_value(refusal)
                    .map_err(|e| Error::Corrupt { what: "email refusal", reason: e.to_string() })?;
                req.update_expression("SET email_refused = :refusal").expression_attribute_values(":refusal", value)
            }
            None => req.update_expression("REMOVE email_refused"),
        };
        held(req.send().await.map_err(dynamo("UpdateItem"))).map(|_| ())
    }

    async fn put_grant_release(&self, release: &GrantRelease) -> Result<(), Error> {
        let mut item = with_keys(
            to_item("grant release", release)?,
            keys::release(&release.grant_id),
            "RELEASE".into(),
            "release",
        );
        item.insert("gsi1pk".into(), s(keys::RELEASES));
        item.insert("gsi1sk".into(), s(time::format(release.due_at)));
        self.put(item).await
    }

    async fn delete_grant_release(&self, grant: GrantId) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::release(&grant), "RELEASE")))
            .send()
            .await
            .map_err(dynamo("DeleteItem"))?;
        Ok(())
    }

    async fn due_grant_releases(&self, now: DateTime<Utc>, limit: i32) -> Result<Vec<GrantRelease>, Error> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CONNECTED_INDEX)
            .key_condition_expression("gsi1pk = :p AND gsi1sk <= :now")
            .expression_attribute_values(":p", s(keys::RELEASES))
            .expression_attribute_values(":now", s(time::format(now)))
            .limit(limit.max(1))
            .send()
            .await
            .map_err(dynamo("Query"))?;
        out.items.unwrap_or_default().into_iter().map(|i| from_item("grant release", i)).collect()
    }

    async fn claim_once(
        &self,
        name: &str,
        value: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, Error> {
        let mut item = with_expiry(with_keys(Item::new(), keys::once(name), "ONCE".into(), "once"), until);
        item.insert("value".into(), s(value));
        item.insert("claimed_at".into(), s(time::format(now)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", s(time::format(now)))
            .send()
            .await;
        if held(result.map_err(dynamo("PutItem")))? {
            return Ok(None);
        }
        let earlier = self.get(key(keys::once(name), "ONCE")).await?.unwrap_or_default();
        let text = |field: &str| earlier.get(field).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let at = time::parse(&text("claimed_at")).unwrap_or(now);
        Ok(Some(Claimed { value: text("value"), at }))
    }

    async fn settle_once(
        &self,
        name: &str,
        value: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut item = with_expiry(with_keys(Item::new(), keys::once(name), "ONCE".into(), "once"), until);
        item.insert("value".into(), s(value));
        item.insert("claimed_at".into(), s(time::format(now)));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(dynamo("PutItem"))?;
        Ok(())
    }

    async fn forget_once(&self, name: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::once(name), "ONCE")))
            .send()
            .await
            .map_err(dynamo("DeleteItem"))?;
        Ok(())
    }

    async fn sharing_xero_connection(&self, id: XeroConnectionId) -> Result<Vec<ConnectionKey>, Error> {
        let items = self.query_all(keys::xero_connection(&id), None).await?;
        let corrupt = |e: xero_sync_domain::model::InvalidId| Error::Corrupt {
            what: "Xero connection user",
            reason: e.to_string(),
        };
        items
            .iter()
            .map(|item| {
                let field = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                Ok(ConnectionKey {
                    account_id: AccountId::parse(field("account_id")).map_err(corrupt)?,
                    tenant_id: TenantId::parse(&field("tenant_id")).map_err(corrupt)?,
                })
            })
            .collect()
    }

    async fn create_oauth_state(&self, state: &OAuthState) -> Result<(), Error> {
        let item = to_item("OAuth state", state)?;
        self.create_single_use(item, keys::oauth_state(&state.state), "OAUTH_STATE", "OAuth state", state.expires_at)
            .await
    }

    async fn consume_oauth_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<OAuthState, StateRefusal>, Error> {
        self.consume_single_use(keys::oauth_state(state), "OAUTH_STATE", "OAuth state", now).await
    }

    async fn create_choice(&self, choice: &PendingChoice) -> Result<(), Error> {
        let item = to_item("organisation choice", choice)?;
        self.create_single_use(item, keys::choice(&choice.token), "CHOICE", "organisation choice", choice.expires_at)
            .await
    }

    async fn consume_choice(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<PendingChoice, StateRefusal>, Error> {
        self.consume_single_use(keys::choice(token), "CHOICE", "organisation choice", now).await
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut item = with_expiry(key(keys::lease(name), "LEASE"), until);
        item.insert("owner".into(), s(owner));
        item.insert("kind".into(), s("lease"));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", s(time::format(now)))
            .send()
            .await;
        held(result.map_err(dynamo("PutItem")))
    }

    async fn release_lease(&self, name: &str, owner: &str) -> Result<(), Error> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::lease(name), "LEASE")))
            .condition_expression("#o = :owner")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        // Not held: expired and taken by someone else, or already gone; not ours to delete.
        held(result.map_err(dynamo("DeleteItem"))).map(|_| ())
    }

    async fn renew_lease(
        &self,
        name: &str,
        owner: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::lease(name), "LEASE")))
            .update_expression("SET expires_at = :until, expires_epoch = :epoch")
            .condition_expression("#o = :owner AND expires_at > :now")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":now", s(time::format(now)))
            .expression_attribute_values(":until", s(time::format(until)))
            .expression_attribute_values(":epoch", n(until.timestamp()))
            .send()
            .await;
        held(result.map_err(dynamo("UpdateItem")))
    }

    async fn claim_delivery(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
        keep_for: Duration,
    ) -> Result<DeliveryClaim, Error> {
        let delivery = Delivery {
            delivery_id: delivery_id.to_owned(),
            status: DeliveryStatus::Received,
            received_at: now,
            expires_at: now + keep_for,
        };
        let item = with_expiry(
            with_keys(to_item("delivery", &delivery)?, keys::delivery(delivery_id), "DELIVERY".into(), "delivery"),
            delivery.expires_at,
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", s(time::format(now)))
            .send()
            .await;
        match result.map_err(dynamo("PutItem")) {
            Ok(_) => Ok(DeliveryClaim::New),
            Err(e) if condition_failed(&e) => match self.get(key(keys::delivery(delivery_id), "DELIVERY")).await? {
                Some(item) => Ok(DeliveryClaim::Seen(from_item("delivery", item)?)),
                // Forgotten between our write and our read: the sender will redeliver.
                None => Err(Error::Conflict("delivery".into())),
            },
            Err(e) => Err(e),
        }
    }

    async fn mark_delivery_enqueued(&self, delivery_id: &str) -> Result<(), Error> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::delivery(delivery_id), "DELIVERY")))
            .update_expression("SET #s = :enqueued")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":enqueued", s("ENQUEUED"))
            .send()
            .await
            .map_err(dynamo("UpdateItem"))
            .map_err(|e| if condition_failed(&e) { Error::NotFound("delivery".into()) } else { e })?;
        Ok(())
    }

    async fn forget_delivery(&self, delivery_id: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::delivery(delivery_id), "DELIVERY")))
            .send()
            .await
            .map_err(dynamo("DeleteItem"))?;
        Ok(())
    }

    async fn get_sync_record(
        &self,
        key: &ConnectionKey,
        invoice: &PlatformInvoiceId,
    ) -> Result<Option<SyncRecord>, Error> {
        let item = self.get(self::key(keys::org(key), keys::invoice(invoice))).await?;
        item.map(|i| from_item("sync record", i)).transpose()
    }

    async fn save_sync_record(&self, record: &SyncRecord) -> Result<SyncRecord, Error> {
        let mut next = record.clone();
        next.version = record.version + 1;
        let conn = ConnectionKey { account_id: next.account_id.clone(), tenant_id: next.tenant_id };
        let item =
            with_keys(to_item("sync record", &next)?, keys::org(&conn), keys::invoice(&next.invoice_id), "sync_record");
        // The reference first: it is true as soon as Xero has the invoice, and a record that
        // names a Xero id always has its reference (a lone reference is harmless and reused).
        if let Some(xero_id) = next.xero_invoice_id {
            let mut reference = key(keys::org(&conn), keys::xero_invoice(&xero_id));
            reference.insert("kind".into(), s("xero_invoice_ref"));
            reference.insert("xero_id".into(), s(xero_id.to_string()));
            reference.insert("invoice_id".into(), s(next.invoice_id.as_str()));
            self.put(reference).await?;
        }
        self.put_versioned(item, record.version, "sync record").await?;
        Ok(next)
    }

    async fn invoices_for_xero_ids(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PlatformInvoiceId>, Error> {
        let refs = self.refs(key, xero_ids.iter().map(keys::xero_invoice).collect(), "invoice_id").await?;
        refs.into_iter()
            .map(|(xero, id)| {
                PlatformInvoiceId::parse(id)
                    .map(|id| (xero, id))
                    .map_err(|e| Error::Corrupt { what: "Xero invoice reference", reason: e.to_string() })
            })
            .collect()
    }

    async fn get_job_state(&self, name: &str) -> Result<Option<String>, Error> {
        let item = self.get(key(keys::job(name), "JOB")).await?;
        Ok(item.and_then(|i| i.get("state").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn put_job_state(&self, name: &str, state: Option<&str>) -> Result<(), Error> {
        match state {
            Some(state) => {
                let mut item = key(keys::job(name), "JOB");
                item.insert("kind".into(), s("job_state"));
                item.insert("state".into(), s(state));
                self.put(item).await
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::job(name), "JOB")))
                    .send()
                    .await
                    .map_err(dynamo("DeleteItem"))?;
                Ok(())
            }
        }
    }

    async fn park_push(&self, key: &ConnectionKey, parked: &ParkedPush) -> Result<(), Error> {
        let item =
            with_keys(to_item("parked push", parked)?, keys::org(key), keys::parked(&parked.invoice_id), "parked");
        // Newer as the push orders events: by sequence when both have one, else by time.
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_values(":at", s(time::format(parked.occurred_at)));
        req = match parked.sequence {
            Some(seq) => req
                .condition_expression(
                    "attribute_not_exists(pk) OR (attribute_exists(#seq) AND #seq <= :seq) \
                     OR (attribute_not_exists(#seq) AND occurred_at <= :at)",
                )
                .expression_attribute_names("#seq", "sequence")
                .expression_attribute_values(":seq", n(seq)),
            None => req.condition_expression("attribute_not_exists(pk) OR occurred_at <= :at"),
        };
        let result = req.send().await;
        // Not held: a newer event for the invoice is parked already, and it carries everything.
        held(result.map_err(dynamo("PutItem"))).map(|_| ())
    }

    async fn parked_pushes(&self, key: &ConnectionKey) -> Result<Vec<ParkedPush>, Error> {
        let items = self.query_all(keys::org(key), Some("PARKED#")).await?;
        items.into_iter().map(|i| from_item("parked push", i)).collect()
    }

    async fn unpark_push(&self, key: &ConnectionKey, parked: &ParkedPush) -> Result<(), Error> {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::org(key), keys::parked(&parked.invoice_id))))
            .expression_attribute_names("#seq", "sequence")
            .expression_attribute_values(":at", s(time::format(parked.occurred_at)));
        req = match parked.sequence {
            Some(seq) => req
                .condition_expression("occurred_at = :at AND #seq = :seq")
                .expression_attribute_values(":seq", n(seq)),
            None => req.condition_expression("occurred_at = :at AND attribute_not_exists(#seq)"),
        };
        held(req.send().await.map_err(dynamo("DeleteItem"))).map(|_| ())
    }

    async fn get_contact_mapping(
        &self,
        key: &ConnectionKey,
        customer: &PlatformCustomerId,
    ) -> Result<Option<ContactMapping>, Error> {
        let item = self.get(self::key(keys::org(key), keys::contact(customer))).await?;
        item.map(|i| from_item("contact mapping", i)).transpose()
    }

    async fn put_contact_mapping(&self, key: &ConnectionKey, mapping: &ContactMapping) -> Result<(), Error> {
        let forward = with_keys(
            to_item("contact mapping", mapping)?,
            keys::org(key),
            keys::contact(&mapping.customer_id),
            "contact_mapping",
        );
        let mut reverse = self::key(keys::org(key), keys::xero_contact(&mapping.xero_contact_id));
        reverse.insert("kind".into(), s("xero_contact_ref"));
        reverse.insert("xero_id".into(), s(mapping.xero_contact_id.to_string()));
        reverse.insert("customer_id".into(), s(mapping.customer_id.as_str()));
        // Reverse first, as for sync records: a mapping always has its reference.
        self.put(reverse).await?;
        self.put(forward).await
    }

    async fn customers_for_xero_ids(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PlatformCustomerId>, Error> {
        let refs = self.refs(key, xero_ids.iter().map(keys::xero_contact).collect(), "customer_id").await?;
        refs.into_iter()
            .map(|(xero, id)| {
                PlatformCustomerId::parse(id)
                    .map(|id| (xero, id))
                    .map_err(|e| Error::Corrupt { what: "Xero contact reference", reason: e.to_string() })
            })
            .collect()
    }

    async fn get_cursor(&self, key: &ConnectionKey, resource: &str) -> Result<Option<ImportCursor>, Error> {
        let item = self.get(self::key(keys::org(key), keys::cursor(resource))).await?;
        item.map(|i| from_item("import cursor", i)).transpose()
    }

    async fn save_cursor(&self, key: &ConnectionKey, cursor: &ImportCursor) -> Result<ImportCursor, Error> {
        let mut next = cursor.clone();
        next.version = cursor.version + 1;
        let item =
            with_keys(to_item("import cursor", &next)?, keys::org(key), keys::cursor(&next.resource), "import_cursor");
        self.put_versioned(item, cursor.version, "import cursor").await?;
        Ok(next)
    }

    async fn get_reference_data(&self, key: &ConnectionKey) -> Result<Option<ReferenceData>, Error> {
        let Some(item) = self.get(self::key(keys::org(key), "REFDATA")).await? else { return Ok(None) };
        let json = item
            .get("data")
            .and_then(|v| v.as_s().ok())
            .ok_or(Error::Corrupt { what: "reference data", reason: "no data attribute".into() })?;
        serde_json::from_str(json)
            .map(Some)
            .map_err(|e| Error::Corrupt { what: "reference data", reason: e.to_string() })
    }

    async fn put_reference_data(&self, key: &ConnectionKey, data: &ReferenceData) -> Result<bool, Error> {
        let json = serde_json::to_string(data)
            .map_err(|e| Error::Corrupt { what: "reference data", reason: e.to_string() })?;
        if json.len() > MAX_SNAPSHOT_BYTES {
            tracing::info!(bytes = json.len(), "reference data too large to keep; it will be read from Xero each time");
            return Ok(false);
        }
        let mut item = self::key(keys::org(key), "REFDATA");
        item.insert("kind".into(), s("reference_data"));
        item.insert("read_at".into(), s(time::format(data.read_at)));
        item.insert("data".into(), s(json));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(dynamo("PutItem"))?;
        Ok(true)
    }

    async fn get_settings(&self, key: &ConnectionKey) -> Result<VersionedSettings, Error> {
        let item = self.get(self::key(keys::account(&key.account_id), keys::settings(&key.tenant_id))).await?;
        Ok(item.map(|i| from_item("settings", i)).transpose()?.unwrap_or_default())
    }

    async fn put_settings(
        &self,
        key: &ConnectionKey,
        expected_version: u64,
        settings: &ConnectionSettings,
    ) -> Result<VersionedSettings, Error> {
        let next = VersionedSettings { version: expected_version + 1, settings: settings.clone() };
        let item = with_keys(
            to_item("settings", &next)?,
            keys::account(&key.account_id),
            keys::settings(&key.tenant_id),
            "settings",
        );
        self.put_versioned(item, expected_version, "settings").await?;
        Ok(next)
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
