//! Connections (their statuses, activity, the connected and clean-up indexes, who shares a
//! Xero connection) and grant releases.

use super::*;

#[async_trait]
impl ConnectionStore for DynamoStore {
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
            self.delete(row).await?;
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

    async fn sharing_xero_connection(&self, id: XeroConnectionId) -> Result<Vec<ConnectionKey>, Error> {
        let items = self.query_all(keys::xero_connection(&id), None).await?;
        connection_keys("Xero connection user", &items)
    }

    async fn holding_tenant(&self, tenant: TenantId) -> Result<Vec<ConnectionKey>, Error> {
        let items = self.query_all(keys::tenant(&tenant), None).await?;
        connection_keys("tenant connection", &items)
    }

    async fn index_connection(&self, connection: &Connection) -> Result<(), Error> {
        self.track_xero_connection(connection).await
    }
}

/// The connections a collection's rows name.
fn connection_keys(what: &'static str, items: &[Item]) -> Result<Vec<ConnectionKey>, Error> {
    let corrupt = |e: xero_sync_domain::model::InvalidId| Error::Corrupt { what, reason: e.to_string() };
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

#[async_trait]
impl GrantReleaseStore for DynamoStore {
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
        self.delete(key(keys::release(&grant), "RELEASE")).await?;
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
}
