//! What every queue consumer shares: reading a message (one of ours, or an event from our bus
//! that a rule routed to the queue) and answering Lambda with the messages to try again,
//! each held back first for as long as it asked (Xero's `Retry-After`, say).

use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;
use xero_sync_aws::Queue;
use xero_sync_aws::sqs::Later;
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
    /// A wait for Xero's limits (the governor, a `Retry-After`, a busy organisation): nothing
    /// went wrong with the message, so it is sent again as a new message, delayed, rather than
    /// failed, and its receive count (what sends a message to the dead-letter queue) is not used.
    pub held: bool,
}

impl Retry {
    /// Something failed; try again after `after` (the queue's timeout when `None`).
    pub fn later(after: Option<Duration>) -> Self {
        Self { after, held: false }
    }

    /// A wait for Xero's limits, of `after`.
    pub fn held(after: Duration) -> Self {
        Self { after: Some(after), held: true }
    }

    /// The longer wait of the two: a message fails when any of its parts does, and is only
    /// held when all of its parts are.
    pub fn max(self, other: Retry) -> Retry {
        Retry { after: self.after.max(other.after), held: self.held && other.held }
    }
}

impl From<Unreadable> for Retry {
    fn from(unreadable: Unreadable) -> Self {
        tracing::error!(reason = unreadable.0, "unreadable queue message");
        Retry::later(None)
    }
}

/// The attribute a held message carries: not to be worked before then (RFC 3339, the app's
/// clock). SQS delays a message fifteen minutes at most; a longer hold is held again.
pub const NOT_BEFORE: &str = "xero-sync-not-before";
/// How many times a message was held. Past [`MAX_HOLDS`] a hold fails like any retry, so a
/// message that is never let through still reaches the dead-letter queue in the end.
pub const HOLDS: &str = "xero-sync-holds";
pub const MAX_HOLDS: u32 = 500;

fn attribute<'a>(message: &'a SqsMessage, name: &str) -> Option<&'a str> {
    message.message_attributes.get(name).and_then(|a| a.string_value.as_deref())
}

/// How long a held message still has to wait at `now`; `None` when it is due.
pub fn not_yet_due(message: &SqsMessage, now: DateTime<Utc>) -> Option<Duration> {
    let not_before = DateTime::parse_from_rfc3339(attribute(message, NOT_BEFORE)?).ok()?.with_timezone(&Utc);
    (not_before > now).then(|| (not_before - now).to_std().unwrap_or_default())
}

/// The partial-batch answer. A held message is sent again as a new message (delayed, with its
/// [`NOT_BEFORE`]) and this one reported done; every other [`Retry`] is reported as failed,
/// after its visibility is set to the wait it asked for. A held message SQS would not take
/// again fails instead, so nothing is lost.
pub async fn respond(
    queue: &Queue,
    messages: &[SqsMessage],
    results: Vec<Result<(), Retry>>,
    now: DateTime<Utc>,
) -> SqsBatchResponse {
    let mut failed: Vec<(&SqsMessage, Retry)> = Vec::new();
    let mut held: Vec<(&SqsMessage, Retry)> = Vec::new();
    for (message, result) in messages.iter().zip(results) {
        let Err(retry) = result else { continue };
        let holds = attribute(message, HOLDS).and_then(|h| h.parse::<u32>().ok()).unwrap_or(0);
        match (retry.held, retry.after, message.body.as_deref()) {
            (true, Some(_), Some(_)) if holds < MAX_HOLDS => held.push((message, retry)),
            _ => failed.push((message, retry)),
        }
    }
    let later: Vec<Later> = held
        .iter()
        .map(|(message, retry)| {
            let after = retry.after.unwrap_or_default();
            let not_before = now + chrono::Duration::from_std(after).unwrap_or_default();
            let holds = attribute(message, HOLDS).and_then(|h| h.parse::<u32>().ok()).unwrap_or(0) + 1;
            Later {
                body: message.body.clone().unwrap_or_default(),
                attributes: vec![
                    (NOT_BEFORE.to_owned(), not_before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    (HOLDS.to_owned(), holds.to_string()),
                ],
                delay: after,
            }
        })
        .collect();
    if !later.is_empty() {
        tracing::info!(held = later.len(), "messages held for Xero's limits");
    }
    for at in queue.send_later(&later).await {
        if let Some(&(message, retry)) = held.get(at) {
            failed.push((message, Retry { held: false, ..retry }));
        }
    }
    let mut response = SqsBatchResponse::default();
    for (message, retry) in failed {
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
        let soon = Retry::later(Some(Duration::from_secs(1)));
        let later = Retry::later(Some(Duration::from_secs(60)));
        assert_eq!(soon.max(later), later);
        assert_eq!(Retry::later(None).max(soon), soon);
    }

    #[test]
    fn a_message_is_held_only_when_every_part_waits_for_xeros_limits() {
        let held = Retry::held(Duration::from_secs(5));
        assert_eq!(held.max(Retry::held(Duration::from_secs(9))), Retry::held(Duration::from_secs(9)));
        assert!(!held.max(Retry::later(Some(Duration::from_secs(1)))).held);
    }

    #[test]
    fn a_held_message_is_not_due_before_its_time() {
        let now = chrono::Utc::now();
        let mut message = SqsMessage::default();
        assert_eq!(not_yet_due(&message, now), None, "never held");
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.string_value = Some((now + chrono::Duration::seconds(30)).to_rfc3339());
        message.message_attributes.insert(NOT_BEFORE.into(), attribute);
        let wait = not_yet_due(&message, now).unwrap();
        assert!(wait <= Duration::from_secs(30) && wait > Duration::from_secs(29), "{wait:?}");
        assert_eq!(not_yet_due(&message, now + chrono::Duration::seconds(31)), None);
    }
}
