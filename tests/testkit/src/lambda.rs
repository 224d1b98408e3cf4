//! What Lambda hands a function, built from what moto returned.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};

/// The event Lambda's SQS trigger delivers for messages received from a queue.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for m in messages {
        let mut record = SqsMessage::default();
        record.message_id = m.message_id.clone();
        record.receipt_handle = m.receipt_handle.clone();
        record.body = m.body.clone();
        event.records.push(record);
    }
    event
}
