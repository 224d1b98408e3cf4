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
        // As Lambda hands them over: the message's own attributes, by name.
        for (name, value) in m.message_attributes.iter().flatten() {
            let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
            attribute.string_value = value.string_value.clone();
            attribute.data_type = Some(value.data_type.clone());
            record.message_attributes.insert(name.clone(), attribute);
        }
        event.records.push(record);
    }
    event
}

/// One batch as Lambda's SQS poller gathers it: up to `batch_size` messages, received ten at a
/// time (SQS's most per call) until the queue has no more visible ones.
pub async fn receive_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    batch_size: usize,
) -> Result<
    Vec<aws_sdk_sqs::types::Message>,
    aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::receive_message::ReceiveMessageError>,
> {
    let mut batch = Vec::new();
    while batch.len() < batch_size {
        let want = (batch_size - batch.len()).min(10) as i32;
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(want)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        batch.extend(messages);
    }
    Ok(batch)
}

/// Deletes the messages a batch finished with, ten to a call, as Lambda's SQS poller does.
pub async fn delete_done(sqs: &aws_sdk_sqs::Client, queue_url: &str, receipt_handles: &[String]) -> anyhow::Result<()> {
    for chunk in receipt_handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, handle)| {
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(handle)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sqs.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await?;
    }
    Ok(())
}
