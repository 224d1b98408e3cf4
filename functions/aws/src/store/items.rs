//! Item records, the references from the codes of items we pushed to them, and the
//! organisation's contact groups.

use super::*;

#[async_trait]
impl ItemRecordStore for DynamoStore {
    async fn get_item_record(&self, key: &ConnectionKey, item: &PlatformItemId) -> Result<Option<ItemRecord>, Error> {
        let found = self.get(self::key(keys::org(key), keys::item(item))).await?;
        found.map(|i| from_item("item record", i)).transpose()
    }

    async fn save_item_record(&self, record: &ItemRecord, previous_code: Option<&str>) -> Result<ItemRecord, Error> {
        let mut next = record.clone();
        next.version = record.version + 1;
        let pk = keys::org(&next.key());
        let item = with_keys(to_item("item record", &next)?, pk.clone(), keys::item(&next.item_id), "item_record");
        self.put_versioned(item, record.version, "item record").await?;
        let live = next.live_code();
        // The old code first: an invoice line must never carry a code Xero no longer has.
        if let Some(old) = previous_code.filter(|old| Some(*old) != live) {
            self.delete(self::key(pk.clone(), keys::item_code(old))).await?;
        }
        if let Some(code) = live {
            let mut reference = self::key(pk, keys::item_code(code));
            reference.insert("kind".into(), s("item_code_ref"));
            reference.insert("item_id".into(), s(next.item_id.as_str()));
            reference.insert("code".into(), s(code));
            self.put(reference).await?;
        }
        Ok(next)
    }

    async fn live_item_codes(&self, key: &ConnectionKey, codes: &[String]) -> Result<HashSet<String>, Error> {
        let mut unique: Vec<&String> = codes.iter().collect();
        unique.sort();
        unique.dedup();
        if unique.is_empty() {
            return Ok(HashSet::new());
        }
        let pk = keys::org(key);
        let found = self.batch_get(unique.iter().map(|c| self::key(pk.clone(), keys::item_code(c))).collect()).await?;
        Ok(found.iter().filter_map(|i| i.get("code").and_then(|v| v.as_s().ok()).cloned()).collect())
    }
}

#[async_trait]
impl ContactGroupStore for DynamoStore {
    async fn get_contact_groups(&self, key: &ConnectionKey) -> Result<Option<ContactGroups>, Error> {
        let found = self.get(self::key(keys::org(key), "CONTACT_GROUPS")).await?;
        found.map(|i| from_item("contact groups", i)).transpose()
    }

    async fn put_contact_groups(&self, key: &ConnectionKey, groups: &ContactGroups) -> Result<(), Error> {
        let item =
            with_keys(to_item("contact groups", groups)?, keys::org(key), "CONTACT_GROUPS".into(), "contact_groups");
        self.put(item).await
    }
}
