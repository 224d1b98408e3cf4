//! The uploads bucket: upload URLs handed to the platform, and the files read back once they
//! land. Files are the platform's customers' documents, so S3's messages (which may quote keys)
//! never reach our errors.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use xero_sync_domain::error::{AwsError, Error};

use crate::sdk_error;

#[derive(Clone, Debug)]
pub struct Uploads {
    client: Client,
    bucket: String,
}

/// Where and how to upload one file: a PUT to `url` with exactly these headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadUrl {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// A file as it landed.
#[derive(Clone, Debug)]
pub struct Landed {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

impl Uploads {
    /// `path_style` is for S3-compatible servers without a host name per bucket (moto, locally);
    /// AWS itself takes virtual-hosted addresses.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>, path_style: bool) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build();
        Self { client: Client::from_conf(config), bucket: bucket.into() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A URL that takes one PUT of `size` bytes of `content_type` at `key` within `valid_for`.
    /// The type and length are signed, so an upload of anything else is refused by S3.
    pub async fn upload_url(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        valid_for: Duration,
    ) -> Result<UploadUrl, Error> {
        let presigning = PresigningConfig::expires_in(valid_for).map_err(|e| {
            Error::Aws(AwsError {
                service: "S3",
                operation: "PutObject",
                code: Some("Presigning".into()),
                message: Some(e.to_string()),
                retryable: false,
            })
        })?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(presigning)
            .await
            .map_err(|e| Error::Aws(sdk_error("S3", "PutObject", &e).without_message()))?;
        let headers = request.headers().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        Ok(UploadUrl { url: request.uri().to_owned(), headers })
    }

    /// The file at `key`; `None` when it is not there (already taken, or expired).
    pub async fn read(&self, key: &str) -> Result<Option<Landed>, Error> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(Error::Aws(sdk_error("S3", "GetObject", &e).without_message())),
        };
        let content_type = out.content_type.clone();
        let bytes = out.body.collect().await.map_err(|_| {
            Error::Aws(AwsError {
                service: "S3",
                operation: "GetObject",
                code: Some("ResponseError".into()),
                message: None,
                retryable: true,
            })
        })?;
        Ok(Some(Landed { bytes: bytes.to_vec(), content_type }))
    }

    /// Removes the file at `key` (nothing when it is already gone).
    pub async fn remove(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::Aws(sdk_error("S3", "DeleteObject", &e).without_message()))?;
        Ok(())
    }
}
