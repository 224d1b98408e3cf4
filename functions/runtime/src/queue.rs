//! What every queue consumer shares: reading a message (one of ours, or an event from our bus
//! that a rule routed to the queue) and answering Lambda with the messages to try again,
//! each held back first for as long as it asked (Xero's `Retry-After`, say).

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use serde::de::DeserializeOwned;
use serde_json::Value;
use xero_sync_aws::Queue;
use xero_sync_domain::error::without_values;
use xero_sync_domain::events::PlatformEvent;

/// A message's body, read.
#[derive(Debug)]
pub enum Incoming<T> {
    /// One of our own messages.
    Ours(T),
    /// An event from our bus, of a kind the consumer asked for.
    Event(PlatformEvent),
    /// An event from our bus of another kind: nothing to do.
    Other(String),
}

/// Why a message could not be read. It cannot succeed later: after the queue's receive limit it
/// waits in the dead-letter queue for a person. The reason holds the parser's words without the
/// values it quotes (customers' details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl Unreadable {
    fn from(reason: &str) -> Self {
        Self(without_values(reason))
    }
}

/// Reads a body: an EventBridge envelope (it has `detail-type`) of one of `kinds` becomes its
/// event, of another kind [`Incoming::Other`]; anything else is one of ours.
pub fn read<T: DeserializeOwned>(body: &str, kinds: &[&str]) -> Result<Incoming<T>, Unreadable> {
    let value: Value = serde_json::from_str(body).map_err(|e| Unreadable::from(&e.to_string()))?;
    let Some(kind) = value.get("detail-type") else {
        return serde_json::from_value(value).map(Incoming::Ours).map_err(|e| Unreadable::from(&e.to_string()));
    };
    let kind = kind.as_str().unwrap_or_default();
    if !kinds.contains(&kind) {
        return Ok(Incoming::Other(kind.to_owned()));
    }
    // EventBridge sends `detail` as an object; tools that relay it sometimes as a string.
    let detail = match value.get("detail") {
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| Unreadable::from(&e.to_string()))?,
        Some(other) => other.clone(),
        None => return Err(Unreadable("a bus event without detail".into())),
    };
    serde_json::from_value(detail).map(Incoming::Event).map_err(|e| Unreadable::from(&e.to_string()))
}

/// Why a message goes back to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// How long to hold it back; the queue's own visibility timeout when `None`.
    pub after: Option<Duration>,
}

impl Retry {
    /// The longer wait of the two: a message fails when any of its parts does.
    pub fn max(self, other: Retry) -> Retry {
        Retry { after: self.after.max(other.after) }
    }
}

impl From<Unreadable> for Retry {
    fn from(unreadable: Unreadable) -> Self {
        tracing::error!(reason = unreadable.0, "unreadable queue message");
        Retry { after: None }
    }
}

/// The partial-batch answer: each message whose result is a [`Retry`] is reported as failed,
/// after its visibility is set to the wait it asked for.
pub async fn respond(queue: &Queue, messages: &[SqsMessage], results: Vec<Result<(), Retry>>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for (message, result) in messages.iter().zip(results) {
        let Err(retry) = result else { continue };
        if let (Some(after), Some(handle)) = (retry.after, message.receipt_handle.as_deref()) {
            queue.delay(handle, after).await;
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Ours {
        n: u32,
    }

    const CONNECTED: &str = "connection.connected";

    fn event_json() -> Value {
        let account = xero_sync_domain::model::AccountId::parse("acct").unwrap();
        let event = PlatformEvent::new(
            xero_sync_domain::events::EventKind::ConnectionConnected,
            account,
            None,
            "grant",
            chrono::Utc::now(),
            serde_json::json!({}),
        );
        serde_json::to_value(event).unwrap()
    }

    #[test]
    fn our_messages_and_bus_events_are_told_apart() {
        assert!(matches!(read::<Ours>(r#"{"n": 3}"#, &[CONNECTED]), Ok(Incoming::Ours(Ours { n: 3 }))));
        let envelope = serde_json::json!({ "detail-type": CONNECTED, "detail": event_json() }).to_string();
        assert!(matches!(read::<Ours>(&envelope, &[CONNECTED]), Ok(Incoming::Event(_))));
        let as_text = serde_json::json!({ "detail-type": CONNECTED, "detail": event_json().to_string() }).to_string();
        assert!(matches!(read::<Ours>(&as_text, &[CONNECTED]), Ok(Incoming::Event(_))));
        let other = serde_json::json!({ "detail-type": "invoice.synced", "detail": {} }).to_string();
        assert!(matches!(read::<Ours>(&other, &[CONNECTED]), Ok(Incoming::Other(kind)) if kind == "invoice.synced"));
    }

    #[test]
    fn unreadable_messages_say_why_without_quoting_them() {
        let Err(Unreadable(reason)) = read::<Ours>(r#"{"n": "s3cr3t"}"#, &[]) else { panic!("read") };
        assert!(reason.starts_with("invalid type: string"), "{reason}");
        assert!(!reason.contains("s3cr3t"));
        let no_detail = serde_json::json!({ "detail-type": CONNECTED }).to_string();
        assert_eq!(
            read::<Ours>(&no_detail, &[CONNECTED]).unwrap_err(),
            Unreadable("a bus event without detail".into())
        );
    }

    #[test]
    fn a_retry_waits_for_the_longest_of_its_parts() {
        let soon = Retry { after: Some(Duration::from_secs(1)) };
        let later = Retry { after: Some(Duration::from_secs(60)) };
        assert_eq!(soon.max(later), later);
        assert_eq!(Retry { after: None }.max(soon), soon);
    }
}
