//! Per-organisation records: sync records, parked pushes, contact mappings, import cursors,
//! the reference snapshot and settings.

use xero_sync_domain::model::SyncStatus;
use xero_sync_domain::payment::PaymentSyncStatus;
use xero_sync_domain::sync_log::LogKind;

use super::sync_log::with_log_keys;
use super::*;

#[async_trait]
impl SyncRecordStore for DynamoStore {
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
        let failed = next.status == SyncStatus::Failed;
        let item = with_log_keys(item, &conn, LogKind::Invoice, next.invoice_id.as_str(), next.updated_at, failed);
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
}

#[async_trait]
impl PaymentRecordStore for DynamoStore {
    async fn get_payment_record(
        &self,
        key: &ConnectionKey,
        invoice: &PlatformInvoiceId,
        payment: &PlatformPaymentId,
    ) -> Result<Option<PaymentRecord>, Error> {
        let item = self.get(self::key(keys::org(key), keys::payment(invoice, payment))).await?;
        item.map(|i| from_item("payment record", i)).transpose()
    }

    async fn save_payment_record(&self, record: &PaymentRecord) -> Result<PaymentRecord, Error> {
        let mut next = record.clone();
        next.version = record.version + 1;
        let conn = next.key();
        let sk = keys::payment(&next.invoice_id, &next.payment_id);
        let item = with_keys(to_item("payment record", &next)?, keys::org(&conn), sk.clone(), "payment_record");
        let (kind, failed) =
            (if next.refund { LogKind::Refund } else { LogKind::Payment }, next.status == PaymentSyncStatus::Failed);
        let id = format!("{}#{}", next.invoice_id, next.payment_id);
        let item = with_log_keys(item, &conn, kind, &id, next.updated_at, failed);
        // As for sync records: the reference first, true as soon as Xero has the payment.
        if let Some(xero_id) = next.xero_payment_id {
            let mut reference = key(keys::org(&conn), keys::xero_payment(&xero_id));
            reference.insert("kind".into(), s("xero_payment_ref"));
            reference.insert("xero_id".into(), s(xero_id.to_string()));
            reference.insert("record_sk".into(), s(sk));
            self.put(reference).await?;
        }
        self.put_versioned(item, record.version, "payment record").await?;
        Ok(next)
    }

    async fn invoice_payments(
        &self,
        key: &ConnectionKey,
        invoice: &PlatformInvoiceId,
    ) -> Result<Vec<PaymentRecord>, Error> {
        let items = self.query_all(keys::org(key), Some(&keys::payments_of(invoice))).await?;
        let mut records: Vec<PaymentRecord> =
            items.into_iter().map(|i| from_item("payment record", i)).collect::<Result<_, _>>()?;
        records.sort_by_key(|r| r.first_seen_at);
        Ok(records)
    }

    async fn payments_for_xero_ids(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, PaymentRecord>, Error> {
        let refs = self.refs(key, xero_ids.iter().map(keys::xero_payment).collect(), "record_sk").await?;
        let pk = keys::org(key);
        let items = self.batch_get(refs.values().map(|sk| self::key(pk.clone(), sk.clone())).collect()).await?;
        let mut out = HashMap::with_capacity(items.len());
        for item in items {
            let record: PaymentRecord = from_item("payment record", item)?;
            // A reference whose record moved on to another Xero payment is not this one's.
            if let Some(id) = record.xero_payment_id.filter(|id| refs.contains_key(id)) {
                out.insert(id, record);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl CreditNoteRecordStore for DynamoStore {
    async fn get_credit_note_record(
        &self,
        key: &ConnectionKey,
        credit_note: &PlatformCreditNoteId,
    ) -> Result<Option<CreditNoteRecord>, Error> {
        let item = self.get(self::key(keys::org(key), keys::credit_note(credit_note))).await?;
        item.map(|i| from_item("credit note record", i)).transpose()
    }

    async fn save_credit_note_record(&self, record: &CreditNoteRecord) -> Result<CreditNoteRecord, Error> {
        let mut next = record.clone();
        next.version = record.version + 1;
        let sk = keys::credit_note(&next.credit_note_id);
        let item = with_keys(to_item("credit note record", &next)?, keys::org(&next.key()), sk, "credit_note_record");
        let failed = next.status == PaymentSyncStatus::Failed;
        let item = with_log_keys(
            item,
            &next.key(),
            LogKind::CreditNote,
            next.credit_note_id.as_str(),
            next.updated_at,
            failed,
        );
        self.put_versioned(item, record.version, "credit note record").await?;
        Ok(next)
    }
}

#[async_trait]
impl ParkedPushStore for DynamoStore {
    async fn park_push(&self, key: &ConnectionKey, parked: &ParkedPush) -> Result<(), Error> {
        let item = with_keys(to_item("parked push", parked)?, keys::org(key), keys::parked(parked), "parked");
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
            .set_key(Some(self::key(keys::org(key), keys::parked(parked))))
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
}

#[async_trait]
impl ContactMappingStore for DynamoStore {
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
        if let Some(at) = mapping.pushed_updated_at {
            // On the reference too: the import asks it of every contact it reads back.
            reverse.insert("pushed_updated_at".into(), s(time::format(at)));
        }
        // Reverse first, as for sync records: a mapping always has its reference.
        self.put(reverse).await?;
        self.put(forward).await
    }

    async fn contact_owners(
        &self,
        key: &ConnectionKey,
        xero_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, ContactOwner>, Error> {
        let refs = self.ref_items(key, xero_ids.iter().map(keys::xero_contact).collect()).await?;
        let corrupt = |reason: String| Error::Corrupt { what: "Xero contact reference", reason };
        let mut owners = HashMap::with_capacity(refs.len());
        for (xero, item) in refs {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
            let customer_id = text("customer_id").ok_or_else(|| corrupt("missing customer_id".into()))?;
            let customer_id = PlatformCustomerId::parse(customer_id.clone()).map_err(|e| corrupt(e.to_string()))?;
            let pushed_updated_at =
                text("pushed_updated_at").map(|t| time::parse(t).map_err(|e| corrupt(e.to_string()))).transpose()?;
            owners.insert(xero, ContactOwner { customer_id, pushed_updated_at });
        }
        Ok(owners)
    }
}

#[async_trait]
impl CursorStore for DynamoStore {
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
}

#[async_trait]
impl ReferenceDataStore for DynamoStore {
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
}

#[async_trait]
impl SettingsStore for DynamoStore {
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

/// A day's usage is kept this long, then DynamoDB's TTL removes it.
const KEEP_USAGE_DAYS: i64 = 90;

#[async_trait]
impl UsageStore for DynamoStore {
    async fn add_usage(&self, key: &ConnectionKey, day: chrono::NaiveDate, usage: XeroUsage) -> Result<(), Error> {
        let expires =
            day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default() + Duration::days(KEEP_USAGE_DAYS);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self::key(keys::org(key), keys::usage(day))))
            .update_expression("ADD calls :calls, bytes :bytes SET kind = :kind, expires_epoch = :epoch")
            .expression_attribute_values(":calls", n(usage.calls))
            .expression_attribute_values(":bytes", n(usage.bytes))
            .expression_attribute_values(":kind", s("xero_usage"))
            .expression_attribute_values(":epoch", n(expires.timestamp()))
            .send()
            .await
            .map_err(dynamo("UpdateItem"))?;
        Ok(())
    }

    async fn usage(
        &self,
        key: &ConnectionKey,
        days: &[chrono::NaiveDate],
    ) -> Result<Vec<(chrono::NaiveDate, XeroUsage)>, Error> {
        let mut out = Vec::with_capacity(days.len());
        for day in days {
            let item = self.get(self::key(keys::org(key), keys::usage(*day))).await?;
            let count = |name: &str| {
                item.as_ref()
                    .and_then(|i| i.get(name))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            out.push((*day, XeroUsage { calls: count("calls"), bytes: count("bytes") }));
        }
        Ok(out)
    }
}
