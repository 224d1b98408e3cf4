//! `POST /accounts/{account}/connections/{tenant}/invoices/{invoice}/attachments` (and
//! `.../credit-notes/{credit_note}/attachments`): the platform declares a file and gets a
//! short-lived URL to upload it to. When the upload lands, the worker attaches it to the Xero
//! document (see [`super`]).

use std::time::Duration as StdDuration;

use chrono::Duration;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::attachment::{
    DocumentAttachments, DocumentKind, FileDeclaration, Offered, UploadRef, object_key,
};
use xero_sync_domain::model::{ConnectionKey, PlatformCreditNoteId, PlatformInvoiceId};
use xero_sync_domain::scopes::Feature;
use xero_sync_http::{ApiError, Problem, json, parse_json};

use crate::webhook::Webhook;

/// How long an upload URL works: enough for 10 MB over a slow line, short enough that a leaked
/// URL is soon of no use.
pub const UPLOAD_URL_LIFETIME: StdDuration = StdDuration::from_secs(15 * 60);
/// How long an upload is remembered: a file held for its invoice waits up to three days.
const REMEMBER_UPLOADS: Duration = Duration::days(30);
/// The declaration is a few fields; anything larger is not one.
const MAX_BODY: usize = 4 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    file_name: String,
    content_type: String,
    size: u64,
}

/// Answers 201 with the upload URL, or names what is wrong with the file or the document.
pub async fn request_upload(
    webhook: &Webhook,
    key: &ConnectionKey,
    kind: DocumentKind,
    document: &str,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let request: UploadRequest = parse_json(body).map_err(|p| ApiError::BadRequest(vec![p]))?;
    let declared =
        FileDeclaration { file_name: request.file_name, content_type: request.content_type, size: request.size };
    let problems = declared.problems();
    if !problems.is_empty() {
        return Err(ApiError::BadRequest(problems));
    }
    let app = &webhook.app;
    let store = &app.services.store;
    let connection = store.get_connection(key).await?.filter(|c| c.status.is_live()).ok_or_else(|| {
        ApiError::NotFound(format!(
            "account {} is not connected to Xero organisation {}",
            key.account_id, key.tenant_id
        ))
    })?;
    known_document(webhook, key, kind, document).await?;

    let now = app.now();
    let upload_id = Uuid::new_v4();
    let upload_by = now + Duration::from_std(UPLOAD_URL_LIFETIME).unwrap_or_default();
    let mut offered = None;
    for _ in 0..3 {
        let mut files = store
            .get_attachments(key, kind, document)
            .await?
            .unwrap_or_else(|| DocumentAttachments::new(key, kind, document));
        let taken = files.offer(&declared, upload_id, now, upload_by).map_err(ApiError::Conflict)?;
        match store.save_attachments(&files).await {
            Ok(_) => {
                offered = Some(taken);
                break;
            }
            // Another upload for this document was declared at the same moment: decide again.
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let offered = offered.ok_or_else(|| ApiError::Conflict("the document's files are changing; try again".into()))?;
    let upload = UploadRef {
        upload_id,
        account_id: key.account_id.clone(),
        tenant_id: key.tenant_id,
        document: kind,
        document_id: document.to_owned(),
        file_name: declared.file_name.clone(),
        requested_at: now,
    };
    store.put_upload(&upload, now + REMEMBER_UPLOADS).await?;
    let url = webhook
        .uploads
        .upload_url(&object_key(upload_id), &declared.content_type, declared.size, UPLOAD_URL_LIFETIME)
        .await?;
    let headers: serde_json::Map<String, serde_json::Value> =
        url.headers.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    let scopes = connection.scopes.as_deref().unwrap_or_default();
    let held = (!Feature::Attachments.allowed_by(scopes)).then_some(RECONNECT_FOR_ATTACHMENTS);
    tracing::info!(
        account = %key.account_id, tenant = %key.tenant_id, document = kind.as_str(), %upload_id,
        size = declared.size, "upload offered"
    );
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "upload_id": upload_id,
            "method": "PUT",
            "url": url.url,
            "headers": headers,
            "expires_at": xero_sync_domain::time::format(upload_by),
            "file_name": declared.file_name,
            "replaces": offered == Offered::Replaces,
            "held": held,
        }),
    ))
}

/// Why an organisation's files wait, as the API and the held work say it.
pub const RECONNECT_FOR_ATTACHMENTS: &str = "reconnect to allow attachments: the organisation was connected without \
     Xero's accounting.attachments scope";

/// The document must have been sent to this organisation: a file for one we never saw would
/// wait for nothing.
async fn known_document(
    webhook: &Webhook,
    key: &ConnectionKey,
    kind: DocumentKind,
    document: &str,
) -> Result<(), ApiError> {
    let store = &webhook.app.services.store;
    let field = kind.as_str();
    let bad_id = |e: xero_sync_domain::model::InvalidId| ApiError::BadRequest(vec![Problem::new(field, e.to_string())]);
    let known = match kind {
        DocumentKind::Invoice => {
            store.get_sync_record(key, &PlatformInvoiceId::parse(document).map_err(bad_id)?).await?.is_some()
        }
        DocumentKind::CreditNote => {
            store.get_credit_note_record(key, &PlatformCreditNoteId::parse(document).map_err(bad_id)?).await?.is_some()
        }
    };
    if known {
        return Ok(());
    }
    let what = kind.as_str().replace('_', " ");
    Err(ApiError::NotFound(format!(
        "{what} {document} has not been sent to this Xero organisation: send its {what} event first (it is known here \
         once the push worker has taken it, usually within seconds)"
    )))
}
