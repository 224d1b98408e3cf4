//! The bucket's notifications, as S3 writes them to the push queue: which uploads landed.
//!
//! S3 sends `{"Records": [...]}` for created objects and, once when the notification is set
//! up, `{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}`. Only objects created in our
//! bucket under `uploads/` count; anything else in such a message is dropped, logged.

use serde::Deserialize;
use uuid::Uuid;
use xero_sync_domain::attachment::upload_of;

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Record {
    #[serde(rename = "eventSource", default)]
    source: String,
    #[serde(rename = "eventName", default)]
    name: String,
    s3: S3,
}

#[derive(Debug, Deserialize)]
struct S3 {
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Object {
    key: String,
}

/// What a queue message from the bucket says.
#[derive(Debug, PartialEq, Eq)]
pub enum Landing {
    /// Uploads that landed in `bucket`.
    Uploads(Vec<Uuid>),
    /// S3's test message, or records of nothing we attach.
    Nothing,
}

/// `None` when the body is not a message from S3 at all.
pub fn read(body: &str, bucket: &str) -> Option<Landing> {
    let notification: Notification = serde_json::from_str(body).ok()?;
    if notification.event.as_deref() == Some("s3:TestEvent") {
        return Some(Landing::Nothing);
    }
    if notification.records.is_empty() {
        return None;
    }
    let mut uploads = Vec::new();
    for record in notification.records {
        let key = decode(&record.s3.object.key);
        let ours =
            record.source == "aws:s3" && record.name.starts_with("ObjectCreated:") && record.s3.bucket.name == bucket;
        match upload_of(&key).filter(|_| ours) {
            Some(id) => uploads.push(id),
            None => tracing::warn!(event = %record.name, "a bucket notification for nothing we attach; dropped"),
        }
    }
    Some(if uploads.is_empty() { Landing::Nothing } else { Landing::Uploads(uploads) })
}

/// S3 writes keys URL-encoded, spaces as `+`.
fn decode(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn created(bucket: &str, key: &str) -> String {
        json!({ "Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": { "bucket": { "name": bucket }, "object": { "key": key, "size": 3 } }
        }]})
        .to_string()
    }

    #[test]
    fn an_object_created_under_uploads_in_our_bucket_is_an_upload() {
        let id = Uuid::new_v4();
        assert_eq!(read(&created("files", &format!("uploads%2F{id}")), "files"), Some(Landing::Uploads(vec![id])));
    }

    #[test]
    fn s3s_test_message_another_bucket_or_another_key_is_nothing_and_our_own_messages_are_not_s3s() {
        let id = Uuid::new_v4();
        let test = json!({ "Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "files" }).to_string();
        assert_eq!(read(&test, "files"), Some(Landing::Nothing));
        assert_eq!(read(&created("other", &format!("uploads/{id}")), "files"), Some(Landing::Nothing));
        assert_eq!(read(&created("files", "elsewhere/x.pdf"), "files"), Some(Landing::Nothing));
        assert_eq!(read(r#"{"kind":"attachment","upload_id":"x"}"#, "files"), None);
        assert_eq!(read("not json", "files"), None);
    }
}
