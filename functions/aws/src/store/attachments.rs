//! A document's files, and the uploads that bring them.

use super::*;

#[async_trait]
impl AttachmentStore for DynamoStore {
    async fn get_attachments(
        &self,
        key: &ConnectionKey,
        kind: DocumentKind,
        document_id: &str,
    ) -> Result<Option<DocumentAttachments>, Error> {
        let found = self.get(self::key(keys::org(key), keys::files(kind, document_id))).await?;
        found.map(|i| from_item("document's files", i)).transpose()
    }

    async fn save_attachments(&self, attachments: &DocumentAttachments) -> Result<DocumentAttachments, Error> {
        let mut next = attachments.clone();
        next.version = attachments.version + 1;
        let sk = keys::files(next.document, &next.document_id);
        let item = with_keys(to_item("document's files", &next)?, keys::org(&next.key()), sk, "files");
        self.put_versioned(item, attachments.version, "document's files").await?;
        Ok(next)
    }

    async fn put_upload(&self, upload: &UploadRef, expires: DateTime<Utc>) -> Result<(), Error> {
        let pk = keys::upload(upload.upload_id);
        let item = with_expiry(with_keys(to_item("upload", upload)?, pk, "UPLOAD".into(), "upload"), expires);
        self.put(item).await
    }

    async fn get_upload(&self, upload_id: Uuid, now: DateTime<Utc>) -> Result<Option<UploadRef>, Error> {
        let Some(item) = self.get(self::key(keys::upload(upload_id), "UPLOAD")).await? else { return Ok(None) };
        // DynamoDB's TTL deletes late (moto never): an expired upload is gone.
        let expired = item
            .get("expires_at")
            .and_then(|v| v.as_s().ok())
            .and_then(|t| time::parse(t).ok())
            .is_some_and(|at| at <= now);
        if expired {
            return Ok(None);
        }
        from_item("upload", item).map(Some)
    }
}
