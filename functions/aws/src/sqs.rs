//! One SQS queue, as our functions write to it: single messages, batches within
//! SendMessageBatch's limits with refused entries sent again, and a message's visibility.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use xero_sync_domain::error::{AwsError, Error};

use crate::sdk_error;

/// SendMessageBatch takes at most ten messages and 256 KiB in all.
const MAX_ENTRIES: usize = 10;
const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Refused entries are sent again this many times in all, 200 ms, 400 ms, 800 ms apart.
const ATTEMPTS: u32 = 4;
/// SQS holds a message back for at most twelve hours.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// SQS delays a message at most fifteen minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug)]
pub struct Queue {
    client: Client,
    url: String,
    max_delay: Duration,
}

/// A message sent again to be worked later: its body, its attributes, and how long SQS holds it.
#[derive(Debug, Clone)]
pub struct Later {
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub delay: Duration,
}

impl Queue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into(), max_delay: MAX_DELAY }
    }

    /// Caps the delay SQS holds a message sent by [`Queue::send_later`] for: tests that move a
    /// clock rather than wait set it to zero and read the message's own `not_before`.
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay.min(MAX_DELAY);
        self
    }

    /// Sends messages to be worked after their delay (string attributes with them), batched
    /// within SendMessageBatch's limits; returns the positions of those SQS did not take.
    pub async fn send_later(&self, messages: &[Later]) -> Vec<usize> {
        let mut refused = Vec::new();
        let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
        for batch in batches(&bodies) {
            let entries: Result<Vec<_>, _> = batch
                .iter()
                .map(|&at| {
                    let m = &messages[at];
                    // Rounded up: a message delivered before it is due would only be held again.
                    let delay = m.delay.min(self.max_delay).as_millis().div_ceil(1000) as i32;
                    let mut entry = SendMessageBatchRequestEntry::builder()
                        .id(at.to_string())
                        .message_body(&m.body)
                        .delay_seconds(delay);
                    for (name, value) in &m.attributes {
                        let value = MessageAttributeValue::builder().data_type("String").string_value(value).build();
                        entry = entry.message_attributes(name, value.map_err(|e| e.to_string())?);
                    }
                    entry.build().map_err(|e| e.to_string())
                })
                .collect();
            let sent = match entries {
                Ok(entries) => {
                    self.client.send_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await
                }
                Err(reason) => {
                    tracing::warn!(reason, "a message to send again did not build");
                    refused.extend(batch);
                    continue;
                }
            };
            match sent {
                Ok(out) => refused.extend(out.failed.iter().filter_map(|f| f.id.parse::<usize>().ok())),
                Err(e) => {
                    tracing::warn!(error = %sdk_error("SQS", "SendMessageBatch", &e), "messages not sent again");
                    refused.extend(batch);
                }
            }
        }
        refused
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn send(&self, body: &str) -> Result<(), Error> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::Aws(sdk_error("SQS", "SendMessage", &e)))?;
        Ok(())
    }

    /// Sends every body, batched, sending entries SQS refused again a few times. Returns the
    /// positions (in `bodies`) of those still refused after that, so a caller can keep exactly
    /// what was not sent; empty when all were.
    pub async fn send_all(&self, bodies: &[String]) -> Result<Vec<usize>, Error> {
        self.send_all_delayed(bodies, &[]).await
    }

    /// [`Queue::send_all`], each body delivered only after its delay (SQS's `DelaySeconds`, at
    /// most fifteen minutes); a body without one (`delays` shorter) is delivered at once.
    pub async fn send_all_delayed(&self, bodies: &[String], delays: &[Duration]) -> Result<Vec<usize>, Error> {
        let mut refused = Vec::new();
        for batch in batches(bodies) {
            refused.extend(self.send_batch(bodies, delays, batch).await?);
        }
        Ok(refused)
    }

    /// [`Queue::send_all`], failing (retryably) unless every body was sent.
    pub async fn send_every(&self, bodies: &[String]) -> Result<(), Error> {
        self.send_every_delayed(bodies, &[]).await
    }

    /// [`Queue::send_all_delayed`], failing (retryably) unless every body was sent.
    pub async fn send_every_delayed(&self, bodies: &[String], delays: &[Duration]) -> Result<(), Error> {
        let refused = self.send_all_delayed(bodies, delays).await?;
        if refused.is_empty() {
            return Ok(());
        }
        Err(Error::Aws(AwsError {
            service: "SQS",
            operation: "SendMessageBatch",
            code: Some("BatchEntryFailed".into()),
            message: Some(format!("{} message(s) not accepted", refused.len())),
            retryable: true,
        }))
    }

    async fn send_batch(
        &self,
        bodies: &[String],
        delays: &[Duration],
        mut pending: Vec<usize>,
    ) -> Result<Vec<usize>, Error> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|&at| {
                    let delay = delays.get(at).map(|d| (*d).min(MAX_DELAY).as_secs() as i32);
                    SendMessageBatchRequestEntry::builder()
                        .id(at.to_string())
                        .message_body(&bodies[at])
                        .set_delay_seconds(delay.filter(|d| *d > 0))
                        .build()
                        .map_err(|e| Error::Corrupt { what: "queue message", reason: e.to_string() })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| Error::Aws(sdk_error("SQS", "SendMessageBatch", &e)))?;
            let failed: Vec<&str> = out.failed.iter().map(|f| f.id.as_str()).collect();
            pending.retain(|at| failed.contains(&at.to_string().as_str()));
            if pending.is_empty() {
                break;
            }
        }
        Ok(pending)
    }

    /// Holds a received message back for `after` (at most SQS's twelve hours). A failure is
    /// only logged: the queue's own visibility timeout applies instead, sooner, not lost.
    pub async fn delay(&self, receipt_handle: &str, after: Duration) {
        let seconds = after.min(MAX_VISIBILITY).as_secs().max(1) as i32;
        let changed = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await;
        if let Err(e) = changed {
            tracing::warn!(error = %sdk_error("SQS", "ChangeMessageVisibility", &e), "could not delay the retry");
        }
    }
}

/// Positions of `bodies`, in order, grouped into batches of at most ten and 256 KiB.
fn batches(bodies: &[String]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for (at, body) in bodies.iter().enumerate() {
        match out.last_mut() {
            Some(batch) if batch.len() < MAX_ENTRIES && bytes + body.len() <= MAX_BATCH_BYTES => batch.push(at),
            _ => {
                out.push(vec![at]);
                bytes = 0;
            }
        }
        bytes += body.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_messages_and_256_kib() {
        let small: Vec<String> = (0..23).map(|n| n.to_string()).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3]);
        let big: Vec<String> = (0..3).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(batches(&big), [vec![0, 1], vec![2]]);
    }
}
