//! Single-use and exclusive claims: once-keys, consents, leases, webhook deliveries, job state,
//! and the governor's buckets.

use super::*;

/// A once-key's item: what was claimed, when, and until when it holds.
fn once_item(name: &str, value: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Item {
    let mut item = with_expiry(with_keys(Item::new(), keys::once(name), "ONCE".into(), "once"), until);
    item.insert("value".into(), s(value));
    item.insert("claimed_at".into(), s(time::format(now)));
    item
}

#[async_trait]
impl OnceStore for DynamoStore {
    async fn claim_once(
        &self,
        name: &str,
        value: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Claimed>, Error> {
        let item = once_item(name, value, until, now);
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
        let item = once_item(name, value, until, now);
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(dynamo("PutItem"))?;
        Ok(())
    }

    async fn forget_once(&self, name: &str) -> Result<(), Error> {
        self.delete(key(keys::once(name), "ONCE")).await?;
        Ok(())
    }
}

#[async_trait]
impl ConsentStore for DynamoStore {
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
}

#[async_trait]
impl LeaseStore for DynamoStore {
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
}

#[async_trait]
impl DeliveryStore for DynamoStore {
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
        self.delete(key(keys::delivery(delivery_id), "DELIVERY")).await?;
        Ok(())
    }
}

#[async_trait]
impl JobStateStore for DynamoStore {
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
                self.delete(key(keys::job(name), "JOB")).await?;
                Ok(())
            }
        }
    }
}

#[async_trait]
impl BucketStore for DynamoStore {
    async fn get_bucket(&self, name: &str) -> Result<(Bucket, u64), Error> {
        let Some(item) = self.get(key(keys::bucket(name), "GOV")).await? else { return Ok((Bucket::default(), 0)) };
        let version = item.get("version").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let state = item.get("state").and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("{}");
        // A bucket we cannot read is started afresh: it only ever holds counts.
        let bucket = serde_json::from_str(state).unwrap_or_default();
        Ok((bucket, version))
    }

    async fn put_bucket(
        &self,
        name: &str,
        bucket: &Bucket,
        version: u64,
        expires: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let state = serde_json::to_string(bucket)
            .map_err(|e| Error::Corrupt { what: "governor bucket", reason: e.to_string() })?;
        let mut item = key(keys::bucket(name), "GOV");
        item.insert("state".into(), s(state));
        item.insert("version".into(), n(version + 1));
        item.insert("kind".into(), s("governor"));
        item.insert("expires_epoch".into(), n(expires.timestamp()));
        let (condition, value) = version_condition(version);
        let mut request =
            self.client.put_item().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
        if let Some((name, value)) = value {
            request = request.expression_attribute_names("#v", "version").expression_attribute_values(name, value);
        }
        held(request.send().await.map_err(dynamo("PutItem")))
    }
}
