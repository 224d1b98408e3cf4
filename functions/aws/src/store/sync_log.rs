//! The sync log: sync, payment and credit note records listed newest first through `gsi1`
//! (every one) and the sparse `gsi2` (failures only), whose keys each record carries from its
//! own put (see the layout in `xero_sync_domain::store`).
//!
//! Records last written before these keys existed are not listed until their next write:
//! going back over them would mean a scan, and their outcome is long told anyway.

use xero_sync_domain::store::SyncLogStore;
use xero_sync_domain::sync_log::{LogEntry, LogFilter, LogKind};

use super::*;

pub(super) const FAILURES_INDEX: &str = "gsi2";

fn log_partition(key: &ConnectionKey) -> String {
    format!("LOG#{}#{}", key.account_id, key.tenant_id)
}

fn failures_partition(key: &ConnectionKey) -> String {
    format!("FAILED#{}#{}", key.account_id, key.tenant_id)
}

/// Puts a record in the log (and, while it is failed, in the failures index). The item is
/// written whole by a put, so a record no longer failed leaves `gsi2` by that same put.
pub(super) fn with_log_keys(
    mut item: Item,
    key: &ConnectionKey,
    kind: LogKind,
    id: &str,
    updated_at: DateTime<Utc>,
    failed: bool,
) -> Item {
    // Time first, so the index sorts by it; kind and id keep two records of one instant apart.
    let sort = format!("{}#{}#{id}", time::format(updated_at), kind.as_str());
    if failed {
        item.insert("gsi2pk".into(), s(failures_partition(key)));
        item.insert("gsi2sk".into(), s(sort.clone()));
    }
    item.insert("gsi1pk".into(), s(log_partition(key)));
    item.insert("gsi1sk".into(), s(sort));
    item
}

#[async_trait]
impl SyncLogStore for DynamoStore {
    async fn sync_log(
        &self,
        key: &ConnectionKey,
        filter: LogFilter,
        page_size: i32,
        from: Option<&PageToken>,
    ) -> Result<Page<LogEntry>, Error> {
        let (index, partition_key, partition) = match filter {
            LogFilter::All => (CONNECTED_INDEX, "gsi1pk", log_partition(key)),
            LogFilter::Failures => (FAILURES_INDEX, "gsi2pk", failures_partition(key)),
        };
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", partition_key)
            .expression_attribute_values(":p", s(partition.clone()))
            .scan_index_forward(false)
            .limit(page_size.max(1));
        if let Some(token) = from {
            req = req.set_exclusive_start_key(Some(decode(token, partition_key, &partition)?));
        }
        let out = req.send().await.map_err(dynamo("Query"))?;
        let items = out.items.unwrap_or_default().into_iter().map(entry).collect::<Result<_, _>>()?;
        let next = out.last_evaluated_key.map(encode).transpose()?;
        Ok(Page { items, next })
    }
}

fn entry(item: Item) -> Result<LogEntry, Error> {
    let kind = item.get("kind").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    match kind.as_str() {
        "sync_record" => Ok(LogEntry::from(&from_item::<SyncRecord>("sync record", item)?)),
        "payment_record" => Ok(LogEntry::from(&from_item::<PaymentRecord>("payment record", item)?)),
        "credit_note_record" => Ok(LogEntry::from(&from_item::<CreditNoteRecord>("credit note record", item)?)),
        other => Err(Error::Corrupt { what: "sync log entry", reason: format!("an item of kind {other:?}") }),
    }
}

/// The index's last key, as an opaque token: every part of it is a string.
fn encode(last: Item) -> Result<PageToken, Error> {
    let start = last
        .into_iter()
        .map(|(k, v)| match v {
            AttributeValue::S(v) => Ok((k, v)),
            _ => Err(Error::Corrupt { what: "page token", reason: format!("{k} is not a string") }),
        })
        .collect::<Result<HashMap<String, String>, _>>()?;
    Ok(PageToken(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&start).expect("a map of strings serialises"))))
}

/// The start key a token holds, refused unless it is in the partition asked for: a token of
/// one connection (or of the other filter) never reads another's.
fn decode(token: &PageToken, partition_key: &str, partition: &str) -> Result<Item, Error> {
    let corrupt = |reason: String| Error::Corrupt { what: "page token", reason };
    let bytes = URL_SAFE_NO_PAD.decode(&token.0).map_err(|e| corrupt(e.to_string()))?;
    let start: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if start.get(partition_key).map(String::as_str) != Some(partition) {
        return Err(corrupt("not a page of this log".into()));
    }
    // Exactly the table's and the index's keys: anything else would reach DynamoDB as a
    // start key it refuses, a 5xx for what is a bad request.
    let sort_key = partition_key.replace("pk", "sk");
    let expected = ["pk", "sk", partition_key, sort_key.as_str()];
    if start.len() != expected.len() || !expected.iter().all(|k| start.contains_key(*k)) {
        return Err(corrupt("not a page of this log".into()));
    }
    Ok(start.into_iter().map(|(k, v)| (k, s(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(account: &str) -> ConnectionKey {
        ConnectionKey {
            account_id: AccountId::parse(account).unwrap(),
            tenant_id: TenantId::parse("4a6b6a0a-6a5b-4f6c-9d1c-6d3c1b0f9a11").unwrap(),
        }
    }

    #[test]
    fn a_page_token_reads_on_only_in_its_own_log() {
        let mine = key("acct-1");
        let last = HashMap::from([
            ("gsi1pk".to_owned(), s(log_partition(&mine))),
            ("gsi1sk".to_owned(), s("2026-11-21T06:00:00.000000Z#invoice#inv-1")),
            ("pk".to_owned(), s(keys::org(&mine))),
            ("sk".to_owned(), s("INVOICE#inv-1")),
        ]);
        let token = encode(last.clone()).unwrap();
        assert_eq!(decode(&token, "gsi1pk", &log_partition(&mine)).unwrap(), last);
        assert!(decode(&token, "gsi1pk", &log_partition(&key("acct-2"))).is_err(), "another account's log");
        assert!(decode(&token, "gsi2pk", &failures_partition(&mine)).is_err(), "the failures of the same log");
        assert!(decode(&PageToken("!!".into()), "gsi1pk", &log_partition(&mine)).is_err());
        let mut extra = last.clone();
        extra.insert("status".into(), s("FAILED"));
        assert!(decode(&encode(extra).unwrap(), "gsi1pk", &log_partition(&mine)).is_err(), "not the index's keys");
        let mut missing = last.clone();
        missing.remove("sk");
        assert!(decode(&encode(missing).unwrap(), "gsi1pk", &log_partition(&mine)).is_err(), "a key missing");
    }

    #[test]
    fn only_a_failed_record_is_in_the_failures_index_and_both_sort_by_time() {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 21, 6, 0, 0).unwrap();
        let failed = with_log_keys(Item::new(), &key("acct-1"), LogKind::Payment, "inv-1#pay-1", at, true);
        assert_eq!(failed["gsi1sk"], s("2026-11-21T06:00:00.000000Z#payment#inv-1#pay-1"));
        assert_eq!(failed["gsi2sk"], failed["gsi1sk"]);
        let synced = with_log_keys(Item::new(), &key("acct-1"), LogKind::Payment, "inv-1#pay-1", at, false);
        assert!(!synced.contains_key("gsi2pk") && !synced.contains_key("gsi2sk"));
    }
}
