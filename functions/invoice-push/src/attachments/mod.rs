//! Files attached to invoices and credit notes in Xero.
//!
//! 1. **Offer** (`api`): the platform declares the file (name, type, size, checked against what
//!    Xero accepts) and gets a 15-minute upload URL to our bucket, under `uploads/{upload id}`.
//! 2. **Land** (`landing`): the bucket tells the push queue that an object was created; the
//!    worker reads which document and file the upload is for. A repeated notification, or an
//!    upload replaced by a newer one of the same name, ends there with no Xero call.
//! 3. **Wait**: a document not yet in Xero holds the file back, as payments wait for their
//!    invoice (`crate::follow`); an organisation whose consent lacks `accounting.attachments`
//!    parks it until a reconnection grants it.
//! 4. **Attach**: one `PUT /{Invoices|CreditNotes}/{id}/Attachments/{FileName}` with the file
//!    as the body and an Idempotency-Key of the upload. Xero keeps one file per name, so a
//!    repeat after a lost answer replaces the file with itself: never two.
//! 5. **Record and tell**: the document's files record which upload is in Xero, the upload is
//!    deleted from the bucket, and the platform gets `attachment.synced` or
//!    `attachment.sync_failed`.

pub mod api;
pub mod landing;

use std::time::Duration as StdDuration;

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use xero_sync_aws::Uploads;
use xero_sync_domain::Error;
use xero_sync_domain::attachment::{
    DocumentAttachments, DocumentKind, FileState, MAX_FILE_BYTES, UploadRef, object_key,
};
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{Connection, PlatformCreditNoteId, PlatformInvoiceId};
use xero_sync_domain::scopes::Feature;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_runtime::{App, ConfigError, Env};
use xero_sync_xero::{ApiRequest, FileBody, XeroError};

use crate::follow::{Following, following};
use crate::message::{AttachmentMessage, QueueMessage};
use crate::push::{Gate, ParkedUnder, PushError, PushPolicy, blocked_without, gate, later_for, park_items, parked};

pub use api::RECONNECT_FOR_ATTACHMENTS;

/// The uploads bucket as the template names it (`UPLOADS_BUCKET`); `S3_PATH_STYLE=true` for an
/// S3-compatible server without a host name per bucket (moto, locally).
pub fn uploads(app: &App, env: &Env) -> Result<Uploads, ConfigError> {
    Ok(Uploads::new(&app.sdk, env.required("UPLOADS_BUCKET")?, env.flag("S3_PATH_STYLE")?))
}

/// What became of one landed upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachOutcome {
    Attached {
        xero_attachment_id: Uuid,
    },
    /// Already in Xero: a repeated notification.
    AlreadyAttached,
    /// A newer upload of the same name took its place.
    Superseded,
    /// No upload of ours (expired, or never offered).
    Unknown,
    Failed {
        reason: String,
    },
    /// Held until a reconnection grants `accounting.attachments`.
    Parked,
    NotConnected,
}

pub type AttachResult = Result<AttachOutcome, PushError>;

/// Attaches one landed upload; see the module's steps.
pub async fn attach(app: &App, uploads: &Uploads, policy: &PushPolicy, upload_id: Uuid) -> AttachResult {
    let store = &app.services.store;
    let Some(upload) = store.get_upload(upload_id, app.now()).await? else {
        tracing::warn!(%upload_id, "an object landed for no upload of ours; removed");
        uploads.remove(&object_key(upload_id)).await?;
        return Ok(AttachOutcome::Unknown);
    };
    let key = upload.key();
    let connection = match gate(app, &key, Feature::Attachments).await? {
        Gate::Go(connection) => *connection,
        Gate::Park => return park(app, &upload).await,
        Gate::NotConnected => return Ok(AttachOutcome::NotConnected),
    };
    let Some(files) = store.get_attachments(&key, upload.document, &upload.document_id).await? else {
        return Ok(AttachOutcome::Unknown);
    };
    match files.file(&upload.file_name) {
        Some(file) if file.attached_upload == Some(upload_id) => {
            uploads.remove(&object_key(upload_id)).await?;
            return Ok(AttachOutcome::AlreadyAttached);
        }
        Some(file) if file.upload_id == upload_id => {}
        _ => {
            uploads.remove(&object_key(upload_id)).await?;
            return Ok(AttachOutcome::Superseded);
        }
    }
    let xero_id = match in_xero(app, &upload).await? {
        Following::InXero { xero_invoice_id, .. } => xero_invoice_id,
        Following::Hold { reason, after } => {
            settle(app, &connection, &upload, Settled::Waiting(reason.clone()), policy).await?;
            return Err(PushError::Held { reason, after });
        }
        Following::TooLate(reason) => return fail(app, uploads, &connection, &upload, reason, policy).await,
    };
    let Some(landed) = uploads.read(&object_key(upload_id)).await? else {
        let reason = "the upload is no longer in the bucket: upload the file again".to_owned();
        return fail(app, uploads, &connection, &upload, reason, policy).await;
    };
    let declared = files.file(&upload.file_name).map_or(0, |f| f.size);
    let size = landed.bytes.len() as u64;
    if size != declared || size > MAX_FILE_BYTES {
        let reason = format!("the upload was {size} bytes, not the {declared} declared");
        return fail(app, uploads, &connection, &upload, reason, policy).await;
    }
    let content_type = files.file(&upload.file_name).map(|f| f.content_type.clone()).unwrap_or_default();
    let settings = store.get_settings(&key).await?.settings;
    let path = format!(
        "/{}/{xero_id}/Attachments/{}",
        upload.document.xero_collection(),
        percent_encoding::utf8_percent_encode(&upload.file_name, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut request = ApiRequest::new(&path);
    request.query = vec![("IncludeOnline", settings.attachments_online.to_string())];
    request.idempotency_key = Some(format!("attachment-{upload_id}"));
    request.file = Some(FileBody { bytes: landed.bytes.into(), content_type });
    let answered = match app.tokens.put_file::<Answer>(&connection, &request).await {
        Ok(answer) => answer.body.attachments.into_iter().find_map(|a| a.attachment_id),
        Err(TokenError::Reconnect | TokenError::Xero(XeroError::NotGranted)) => return park(app, &upload).await,
        Err(TokenError::Xero(XeroError::NotFound(_))) => {
            let reason = format!("Xero no longer has the {}", upload.document.as_str().replace('_', " "));
            return fail(app, uploads, &connection, &upload, reason, policy).await;
        }
        Err(TokenError::Xero(XeroError::Validation { messages, .. })) => {
            return fail(app, uploads, &connection, &upload, messages.join("; "), policy).await;
        }
        Err(e) if !e.is_retryable() => return fail(app, uploads, &connection, &upload, e.to_string(), policy).await,
        Err(e) => return Err(later_for(&e)),
    };
    let Some(xero_attachment_id) = answered else {
        // Xero took the file but its answer named none: the next try replaces it with itself.
        return Err(PushError::later("Xero's answer named no attachment", StdDuration::from_secs(30)));
    };
    settle(app, &connection, &upload, Settled::Attached(xero_attachment_id), policy).await?;
    uploads.remove(&object_key(upload_id)).await?;
    tracing::info!(
        account = %key.account_id, tenant = %key.tenant_id, document = upload.document.as_str(), %upload_id,
        size, "file attached"
    );
    Ok(AttachOutcome::Attached { xero_attachment_id })
}

#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(rename = "Attachments", default)]
    attachments: Vec<Answered>,
}

#[derive(Debug, Default, Deserialize)]
struct Answered {
    #[serde(rename = "AttachmentID", default)]
    attachment_id: Option<Uuid>,
}

/// Where the upload's document stands in Xero.
async fn in_xero(app: &App, upload: &UploadRef) -> Result<Following, PushError> {
    let store = &app.services.store;
    let key = upload.key();
    let waited = app.now() - upload.requested_at;
    let outcome = "the file was not attached";
    let bad = |e: xero_sync_domain::model::InvalidId| Error::Corrupt { what: "upload", reason: e.to_string() };
    Ok(match upload.document {
        DocumentKind::Invoice => {
            let id = PlatformInvoiceId::parse(upload.document_id.as_str()).map_err(bad)?;
            let record = store.get_sync_record(&key, &id).await?;
            following(&id, record.as_ref(), waited, outcome)
        }
        DocumentKind::CreditNote => {
            let id = PlatformCreditNoteId::parse(upload.document_id.as_str()).map_err(bad)?;
            let record = store.get_credit_note_record(&key, &id).await?;
            match record.and_then(|r| r.xero_credit_note_id) {
                Some(xero_id) => Following::InXero { xero_invoice_id: xero_id, status: None },
                None => crate::follow::waiting(&format!("credit note {id}"), waited, outcome),
            }
        }
    })
}

async fn fail(
    app: &App,
    uploads: &Uploads,
    connection: &Connection,
    upload: &UploadRef,
    reason: String,
    policy: &PushPolicy,
) -> AttachResult {
    settle(app, connection, upload, Settled::Failed(reason.clone()), policy).await?;
    uploads.remove(&object_key(upload.upload_id)).await?;
    tracing::info!(account = %connection.account_id, tenant = %connection.tenant_id, upload = %upload.upload_id, "file not attached");
    Ok(AttachOutcome::Failed { reason })
}

enum Settled {
    Attached(Uuid),
    Waiting(String),
    Failed(String),
}

/// Records what became of the upload in its document's files, and tells the platform of an
/// attachment or a failure. A newer upload of the name recorded meanwhile is left alone.
async fn settle(
    app: &App,
    connection: &Connection,
    upload: &UploadRef,
    settled: Settled,
    policy: &PushPolicy,
) -> Result<(), PushError> {
    let store = &app.services.store;
    let key = upload.key();
    for _ in 0..3 {
        let Some(mut files) = store.get_attachments(&key, upload.document, &upload.document_id).await? else {
            return Ok(());
        };
        let now = app.now();
        let Some(file) = files.file_mut(&upload.file_name).filter(|f| f.upload_id == upload.upload_id) else {
            return Ok(());
        };
        let replaced = file.attached_upload.is_some_and(|earlier| earlier != upload.upload_id);
        match &settled {
            Settled::Waiting(reason) if file.state == FileState::Waiting && file.reason.as_ref() == Some(reason) => {
                return Ok(());
            }
            Settled::Waiting(reason) => {
                file.state = FileState::Waiting;
                file.reason = Some(reason.clone());
            }
            Settled::Attached(id) => {
                file.state = FileState::Attached;
                file.attached_upload = Some(upload.upload_id);
                file.xero_attachment_id = Some(*id);
                file.reason = None;
            }
            Settled::Failed(reason) => {
                file.state = FileState::Failed;
                file.reason = Some(reason.clone());
            }
        }
        file.updated_at = now;
        match store.save_attachments(&files).await {
            Ok(_) => {}
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        if let Some(event) = announcement(connection, upload, &settled, replaced, &files) {
            app.services.events.publish(&[event]).await?;
        }
        return Ok(());
    }
    Err(PushError::later("another upload is changing the document's files", policy.busy_retry))
}

fn announcement(
    connection: &Connection,
    upload: &UploadRef,
    settled: &Settled,
    replaced: bool,
    files: &DocumentAttachments,
) -> Option<PlatformEvent> {
    let (kind, data) = match settled {
        Settled::Waiting(_) => return None,
        Settled::Attached(xero_attachment_id) => (
            EventKind::AttachmentSynced,
            json!({
                "document": upload.document,
                "document_id": upload.document_id,
                "file_name": upload.file_name,
                "upload_id": upload.upload_id,
                "xero_attachment_id": xero_attachment_id,
                "replaced": replaced,
                "files": files.files.iter().filter(|f| f.attached_upload.is_some()).count(),
            }),
        ),
        Settled::Failed(reason) => (
            EventKind::AttachmentSyncFailed,
            json!({
                "document": upload.document,
                "document_id": upload.document_id,
                "file_name": upload.file_name,
                "upload_id": upload.upload_id,
                "reasons": [reason],
            }),
        ),
    };
    Some(PlatformEvent::new(
        kind,
        connection.account_id.clone(),
        Some(connection.tenant_id),
        &upload.upload_id.to_string(),
        upload.requested_at,
        data,
    ))
}

/// Parks the upload until the organisation is reconnected with a consent that allows
/// attachments; the file says so meanwhile.
async fn park(app: &App, upload: &UploadRef) -> AttachResult {
    let key = upload.key();
    let message = QueueMessage::Attachment(AttachmentMessage { upload_id: upload.upload_id });
    let order = crate::event::EventOrder { occurred_at: upload.requested_at, sequence: None };
    let item = parked(ParkedUnder::Upload(upload.upload_id), order, &message)?;
    let store = &*app.services.store;
    if !park_items(store, &key, &[item], blocked_without(Feature::Attachments)).await? {
        return Err(crate::push::reconnected_meanwhile());
    }
    if let Some(connection) = store.get_connection(&key).await? {
        let reason = RECONNECT_FOR_ATTACHMENTS.to_owned();
        settle(app, &connection, upload, Settled::Waiting(reason), &PushPolicy::default()).await?;
    }
    Ok(AttachOutcome::Parked)
}

/// The files of a document as the invoice API shows them.
pub fn listed(files: Option<&DocumentAttachments>, now: chrono::DateTime<chrono::Utc>) -> Vec<serde_json::Value> {
    files
        .into_iter()
        .flat_map(|d| d.files.iter())
        .filter(|f| f.holds_a_place(now) || f.state == FileState::Failed)
        .map(|f| {
            json!({
                "file_name": f.file_name,
                "content_type": f.content_type,
                "size": f.size,
                "state": f.state,
                "xero_attachment_id": f.xero_attachment_id,
                "reason": f.reason,
                "updated_at": xero_sync_domain::time::format(f.updated_at),
            })
        })
        .collect()
}
