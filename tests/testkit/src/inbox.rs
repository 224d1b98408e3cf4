//! Reading back what the functions sent: events (through a rule on the bus into a queue, as
//! the platform would subscribe) and emails (moto keeps what SES was asked to send).

use anyhow::Context;
use aws_config::SdkConfig;
use serde_json::Value;

use crate::template::Stack;

/// A queue subscribed to everything xero-sync puts on the stack's bus.
pub struct EventInbox {
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    rule: String,
    bus: String,
    queue_url: String,
    queue_arn: String,
}

impl EventInbox {
    pub async fn subscribe(sdk: &SdkConfig, stack: &Stack, bus_logical_id: &str) -> anyhow::Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let events = aws_sdk_eventbridge::Client::new(sdk);
        let bus = stack.reference(bus_logical_id);
        let name = format!("{}-inbox", stack.name);
        let queue_url = sqs.create_queue().queue_name(&name).send().await?.queue_url.context("queue url")?;
        let queue_arn = format!("arn:aws:sqs:{}:{}:{name}", crate::moto::REGION, crate::moto::ACCOUNT);
        events.put_rule().name(&name).event_bus_name(bus).event_pattern(r#"{"source":["xero-sync"]}"#).send().await?;
        events
            .put_targets()
            .rule(&name)
            .event_bus_name(bus)
            .targets(aws_sdk_eventbridge::types::Target::builder().id("inbox").arn(&queue_arn).build()?)
            .send()
            .await?;
        Ok(Self { sqs, events, rule: name, bus: bus.to_owned(), queue_url, queue_arn })
    }

    /// Stops (or resumes) collecting: a test that publishes thousands of events and counts them
    /// another way spares moto from queueing them all. (moto delivers for disabled rules too, so
    /// the target itself is removed.)
    pub async fn set_collecting(&self, on: bool) -> anyhow::Result<()> {
        if on {
            let target = aws_sdk_eventbridge::types::Target::builder().id("inbox").arn(&self.queue_arn).build()?;
            self.events.put_targets().rule(&self.rule).event_bus_name(&self.bus).targets(target).send().await?;
        } else {
            self.events.remove_targets().rule(&self.rule).event_bus_name(&self.bus).ids("inbox").send().await?;
        }
        Ok(())
    }

    /// Every event delivered so far (the whole EventBridge envelope, `detail` parsed), oldest
    /// first, removing them from the queue.
    pub async fn drain(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let received =
                self.sqs.receive_message().queue_url(&self.queue_url).max_number_of_messages(10).send().await?;
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(out);
            }
            let mut done = Vec::new();
            for (n, m) in messages.iter().enumerate() {
                let mut event: Value = serde_json::from_str(m.body().unwrap_or("null"))?;
                if let Some(Value::String(detail)) = event.get("detail") {
                    event["detail"] = serde_json::from_str(detail)?;
                }
                out.push(event);
                if let Some(handle) = m.receipt_handle() {
                    done.push(
                        aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                            .id(n.to_string())
                            .receipt_handle(handle)
                            .build()?,
                    );
                }
            }
            self.sqs.delete_message_batch().queue_url(&self.queue_url).set_entries(Some(done)).send().await?;
        }
    }
}

/// moto's dump of its models. moto checks each attribute serialises, then serialises them all
/// at the end; a table that gets its first item from another test in between makes the final
/// step fail with a 500 (moto 5.2, `model_data`). The read changes nothing, so it is asked again.
async fn model_data(moto_endpoint: &str) -> anyhow::Result<Value> {
    const ATTEMPTS: u32 = 20;
    let url = format!("{moto_endpoint}/moto-api/data.json");
    for attempt in 1.. {
        let response = reqwest::get(&url).await?;
        if response.status().is_server_error() && attempt < ATTEMPTS {
            tokio::task::yield_now().await;
            continue;
        }
        return Ok(response.error_for_status()?.json().await?);
    }
    unreachable!("the loop returns by the last attempt")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// The emails SES was asked to send to `to`, from moto's record of them.
pub async fn sent_emails(moto_endpoint: &str, to: &str) -> anyhow::Result<Vec<SentEmail>> {
    let data = model_data(moto_endpoint).await?;
    let messages = data.pointer("/ses/Message").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(messages
        .iter()
        .map(|m| SentEmail {
            from: m["source"].as_str().unwrap_or_default().to_owned(),
            to: m
                .pointer("/destinations/ToAddresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            subject: m["subject"].as_str().unwrap_or_default().to_owned(),
            body: m["body"].as_str().unwrap_or_default().to_owned(),
        })
        .filter(|m| m.to.iter().any(|t| t == to))
        .collect())
}
