//! DynamoDB write units as DynamoDB bills them, for the bench: a write is charged for the larger
//! of the item's size before and after it, and every global secondary index the write touches is
//! charged again. Neither can be read off a request (an update carries no item, and whether an
//! item is in an index depends on what it held), so the proxy reads the item just before and just
//! after the write, outside the recorded calls, and applies DynamoDB's rules to the two images:
//! https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations
//!
//! The two reads are not atomic with the write: two overlapping writes to one item may each see
//! the other's change. The bench's writes that can overlap are the governor's buckets, which are
//! small and in no index: one unit each however the images fall.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hyper::HeaderMap;
use serde_json::{Map, Value, json};

use crate::aws_proxy::item_size;

type Item = Map<String, Value>;

/// What one write cost: the table's units and those of its index entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteUnits {
    pub table: u64,
    pub indexes: u64,
}

impl WriteUnits {
    pub fn total(&self) -> u64 {
        self.table + self.indexes
    }
}

/// A global secondary index: its key attributes and the attributes it projects.
#[derive(Debug, Clone, PartialEq)]
struct Index {
    keys: Vec<String>,
    /// `None` projects every attribute (`ALL`); else the table's and index's keys plus these.
    projects: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Table {
    keys: Vec<String>,
    indexes: Vec<Index>,
}

impl Table {
    fn from_description(described: &Value) -> Option<Self> {
        let key_names = |schema: &Value| -> Option<Vec<String>> {
            schema.as_array()?.iter().map(|k| k["AttributeName"].as_str().map(str::to_owned)).collect()
        };
        let table = &described["Table"];
        let keys = key_names(&table["KeySchema"])?;
        let mut indexes = Vec::new();
        for index in table["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
            let projection = &index["Projection"];
            let projects = match projection["ProjectionType"].as_str() {
                Some("ALL") | None => None,
                Some(_) => Some(
                    projection["NonKeyAttributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect(),
                ),
            };
            indexes.push(Index { keys: key_names(&index["KeySchema"])?, projects });
        }
        Some(Self { keys, indexes })
    }

    /// The index's entry for an item, if the item carries every key of the index.
    fn entry(&self, index: &Index, item: Option<&Item>) -> Option<Item> {
        let item = item?;
        if !index.keys.iter().all(|k| item.contains_key(k)) {
            return None;
        }
        Some(match &index.projects {
            None => item.clone(),
            Some(extra) => item
                .iter()
                .filter(|(name, _)| self.keys.contains(name) || index.keys.contains(name) || extra.contains(name))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// DynamoDB's rules for one write, from the item before and after it.
    fn units(&self, before: Option<&Item>, after: Option<&Item>) -> WriteUnits {
        let size = |item: Option<&Item>| item.map(item_size).unwrap_or(0);
        let mut indexes = 0;
        for index in &self.indexes {
            indexes += match (self.entry(index, before), self.entry(index, after)) {
                (None, None) => 0,
                // Put into, or deleted from, the index.
                (None, Some(entry)) | (Some(entry), None) => units(item_size(&entry)),
                // A changed index key moves the entry: a delete and a put.
                (Some(old), Some(new)) if index.keys.iter().any(|k| old.get(k) != new.get(k)) => {
                    units(item_size(&old)) + units(item_size(&new))
                }
                (Some(old), Some(new)) if old != new => units(item_size(&new)),
                _ => 0,
            };
        }
        WriteUnits { table: units(size(before).max(size(after))), indexes }
    }
}

/// One started KiB, and at least one unit, per write.
fn units(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(1024).max(1)
}

/// A write about to go to DynamoDB, with its item as it was.
pub(crate) struct Pending {
    table: Arc<Table>,
    table_name: String,
    key: Item,
    before: Option<Item>,
}

/// Reads tables' key schemas (once each) and items, straight from moto.
pub(crate) struct Meter {
    upstream: String,
    client: reqwest::Client,
    tables: Mutex<HashMap<String, Arc<Table>>>,
}

impl Meter {
    pub(crate) fn new(upstream: String, client: reqwest::Client) -> Self {
        Self { upstream, client, tables: Mutex::new(HashMap::new()) }
    }

    /// Reads the item a `PutItem`, `UpdateItem` or `DeleteItem` is about to write.
    pub(crate) async fn before(&self, headers: &HeaderMap, request: &[u8]) -> Option<Pending> {
        let request: Value = serde_json::from_slice(request).ok()?;
        let table_name = request["TableName"].as_str()?.to_owned();
        let table = self.table(headers, &table_name).await?;
        let source = request.get("Key").or_else(|| request.get("Item"))?.as_object()?;
        let key: Item = table.keys.iter().filter_map(|k| source.get(k).map(|v| (k.clone(), v.clone()))).collect();
        let before = self.item(headers, &table_name, &key).await?;
        Some(Pending { table, table_name, key, before })
    }

    /// The write's units, once it is done.
    pub(crate) async fn after(&self, headers: &HeaderMap, pending: Pending) -> Option<WriteUnits> {
        let after = self.item(headers, &pending.table_name, &pending.key).await?;
        Some(pending.table.units(pending.before.as_ref(), after.as_ref()))
    }

    async fn table(&self, headers: &HeaderMap, name: &str) -> Option<Arc<Table>> {
        if let Some(table) = self.tables.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Some(table.clone());
        }
        let described = self.call(headers, "DescribeTable", json!({ "TableName": name })).await?;
        let table = Arc::new(Table::from_description(&described)?);
        self.tables.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), table.clone());
        Some(table)
    }

    /// The item as it is now: `Some(None)` when there is none, `None` when moto did not answer.
    async fn item(&self, headers: &HeaderMap, table: &str, key: &Item) -> Option<Option<Item>> {
        let answer =
            self.call(headers, "GetItem", json!({ "TableName": table, "Key": key, "ConsistentRead": true })).await?;
        Some(answer.get("Item").and_then(Value::as_object).cloned())
    }

    /// A DynamoDB call with the measured call's credentials (moto reads the account and region
    /// from them and checks no signature).
    async fn call(&self, headers: &HeaderMap, operation: &str, body: Value) -> Option<Value> {
        let mut request = self
            .client
            .post(format!("{}/", self.upstream))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", format!("DynamoDB_20120810.{operation}"));
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let answer = request.body(body.to_string()).send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        answer.json().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table::from_description(&json!({ "Table": {
            "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }, { "AttributeName": "sk", "KeyType": "RANGE" }],
            "GlobalSecondaryIndexes": [
                { "IndexName": "gsi1", "Projection": { "ProjectionType": "ALL" },
                  "KeySchema": [{ "AttributeName": "gsi1pk", "KeyType": "HASH" }, { "AttributeName": "gsi1sk", "KeyType": "RANGE" }] },
                { "IndexName": "gsi2", "Projection": { "ProjectionType": "KEYS_ONLY" },
                  "KeySchema": [{ "AttributeName": "gsi2pk", "KeyType": "HASH" }, { "AttributeName": "gsi2sk", "KeyType": "RANGE" }] },
            ],
        }}))
        .unwrap()
    }

    fn item(pairs: &[(&str, &str)]) -> Item {
        pairs.iter().map(|(k, v)| (k.to_string(), json!({ "S": v }))).collect()
    }

    #[test]
    fn a_write_is_billed_for_the_larger_image_and_once_more_for_each_index_it_touches() {
        let t = table();
        let big = "x".repeat(1500);
        let plain = item(&[("pk", "a"), ("sk", "b"), ("body", &big)]);
        assert_eq!(t.units(None, Some(&plain)), WriteUnits { table: 2, indexes: 0 }, "in no index");
        assert_eq!(t.units(Some(&plain), None), WriteUnits { table: 2, indexes: 0 }, "a delete: the old item's size");

        let logged = item(&[("pk", "a"), ("sk", "b"), ("body", &big), ("gsi1pk", "L"), ("gsi1sk", "1")]);
        assert_eq!(t.units(None, Some(&logged)), WriteUnits { table: 2, indexes: 2 }, "put into gsi1 in full");
        assert_eq!(t.units(Some(&logged), Some(&logged)), WriteUnits { table: 2, indexes: 0 }, "unchanged");
        let mut edited = logged.clone();
        edited.insert("body".into(), json!({ "S": "short" }));
        assert_eq!(t.units(Some(&logged), Some(&edited)), WriteUnits { table: 2, indexes: 1 }, "entry rewritten");
        let mut moved = edited.clone();
        moved.insert("gsi1sk".into(), json!({ "S": "2" }));
        assert_eq!(t.units(Some(&edited), Some(&moved)), WriteUnits { table: 1, indexes: 2 }, "a delete and a put");
        assert_eq!(t.units(Some(&logged), Some(&plain)), WriteUnits { table: 2, indexes: 2 }, "left the index");

        let failed = item(&[("pk", "a"), ("sk", "b"), ("body", &big), ("gsi2pk", "F"), ("gsi2sk", "1")]);
        let mut refailed = failed.clone();
        refailed.insert("body".into(), json!({ "S": "other" }));
        assert_eq!(t.units(None, Some(&failed)), WriteUnits { table: 2, indexes: 1 }, "keys only: a small entry");
        assert_eq!(t.units(Some(&failed), Some(&refailed)).indexes, 0, "no projected attribute changed");
    }
}
