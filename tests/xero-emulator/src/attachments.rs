//! Attachments of invoices and credit notes (`/Invoices/{id}/Attachments`,
//! `/CreditNotes/{id}/Attachments`), as Xero answers them: the list, one file by its
//! AttachmentID or its FileName (the bytes, with its MimeType), and uploads that send the file's
//! bytes as the body, `PUT .../Attachments/{FileName}?IncludeOnline=` and
//! `POST .../Attachments/{FileName}`. A name the document already has is replaced, keeping its
//! AttachmentID. Xero's limits (https://developer.xero.com/documentation/api/accounting/attachments):
//! 10 MB a file, 10 files a document, only the file types in `TYPES`.

use axum::body::Bytes;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::{Reply, Req};
use crate::identity::TokenCtx;
use crate::server::Shared;
use crate::state::{Attachment, DocKind, Document, State, Tenant};

const MAX_BYTES: usize = 10 * 1024 * 1024;
const MAX_PER_DOCUMENT: usize = 10;

/// Xero publishes no limit on a name; 255 is what the file systems its users upload from keep
/// to. Counted in UTF-16 units, as .NET counts a string's length.
const MAX_NAME_LENGTH: usize = 255;

/// Path separators and the characters Windows reserves: a name holding one cannot be saved
/// back to disk as it was uploaded.
const RESERVED: &[char] = &['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// The file types Xero accepts, with the MimeType a file gets when the upload names none.
const TYPES: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("bmp", "image/bmp"),
    ("csv", "text/csv"),
    ("doc", "application/msword"),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("eml", "message/rfc822"),
    ("gif", "image/gif"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("keynote", "application/vnd.apple.keynote"),
    ("msg", "application/vnd.ms-outlook"),
    ("numbers", "application/vnd.apple.numbers"),
    ("odf", "application/vnd.oasis.opendocument.formula"),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("pages", "application/vnd.apple.pages"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("ppt", "application/vnd.ms-powerpoint"),
    ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ("rar", "application/vnd.rar"),
    ("rtf", "application/rtf"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("txt", "text/plain"),
    ("xls", "application/vnd.ms-excel"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("zip", "application/zip"),
];

/// One stored attachment, for tests to inspect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentView {
    pub attachment_id: Uuid,
    pub file_name: String,
    pub mime_type: String,
    pub content_length: usize,
    pub include_online: bool,
    pub content: Vec<u8>,
}

/// The attachments of a document, by file name; none for an unknown tenant or document.
pub fn views(state: &State, tenant: Uuid, document: Uuid) -> Vec<AttachmentView> {
    let files = state.tenant(tenant).and_then(|t| t.attachments.get(&document));
    let mut out: Vec<AttachmentView> = files
        .into_iter()
        .flatten()
        .map(|a| AttachmentView {
            attachment_id: a.id,
            file_name: a.file_name.clone(),
            mime_type: a.mime_type.clone(),
            content_length: a.content.len(),
            include_online: a.include_online,
            content: a.content.to_vec(),
        })
        .collect();
    out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    out
}

pub fn has_any(tenant: &Tenant, document: Uuid) -> bool {
    tenant.attachments.get(&document).is_some_and(|files| !files.is_empty())
}

/// The scopes Xero's spec lists for these operations; none of the broad accounting scopes
/// covers attachments.
fn allowed(write: bool, scope: &str) -> bool {
    let granted = |wanted: &[&str]| scope.split_whitespace().any(|s| wanted.contains(&s));
    match write {
        true => granted(&["accounting.attachments"]),
        false => granted(&["accounting.attachments", "accounting.attachments.read"]),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn route(
    state: &mut State,
    shared: &Shared,
    req: &Req,
    ctx: &TokenCtx,
    tenant_id: Uuid,
    kind: DocKind,
    id: &str,
    file: Option<&str>,
) -> Reply {
    let method = req.method.as_str();
    if !allowed(method != "GET", &ctx.scope) {
        return Reply::problem(401, "Unauthorized", "AuthorizationUnsuccessful");
    }
    match (method, file) {
        ("GET", None) => {
            let Some((tenant, doc)) = document(state, tenant_id, kind, id) else { return Reply::not_found() };
            let base = shared.base_url();
            let files = tenant.attachments.get(&doc.id).into_iter().flatten();
            let out = files.map(|a| attachment_json(&base, kind, doc.id, a)).collect();
            Reply::json(200, crate::accounting::envelope(state, shared, ctx, "Attachments", out, None))
        }
        ("GET", Some(file)) => {
            let Some((tenant, doc)) = document(state, tenant_id, kind, id) else { return Reply::not_found() };
            let by_id = Uuid::parse_str(file).ok();
            let files = tenant.attachments.get(&doc.id).into_iter().flatten();
            match files.clone().find(|a| Some(a.id) == by_id).or_else(|| find(files, file)) {
                Some(a) => Reply::bytes(200, &a.mime_type, a.content.clone()),
                None => Reply::not_found(),
            }
        }
        ("PUT" | "POST", file) => upload(state, shared, req, ctx, tenant_id, kind, id, file.unwrap_or_default()),
        (m, _) => Reply::text(405, &format!("The requested resource does not support http method '{m}'.")),
    }
}

/// The tenant and the document a path names (by its id, as the spec's paths do).
fn document<'a>(state: &'a State, tenant: Uuid, kind: DocKind, id: &str) -> Option<(&'a Tenant, &'a Document)> {
    let tenant = state.tenant(tenant)?;
    let doc = tenant.docs(kind).iter().find(|d| d.id.to_string().eq_ignore_ascii_case(id))?;
    Some((tenant, doc))
}

/// Names are matched case-blind, as the rest of Xero's paths are.
fn find<'a>(mut files: impl Iterator<Item = &'a Attachment>, name: &str) -> Option<&'a Attachment> {
    files.find(|a| a.file_name.eq_ignore_ascii_case(name))
}

fn attachment_json(base: &str, kind: DocKind, document: Uuid, a: &Attachment) -> Value {
    json!({
        "AttachmentID": a.id,
        "FileName": a.file_name,
        "Url": url(base, kind, document, &a.file_name),
        "MimeType": a.mime_type,
        "ContentLength": a.content.len(),
        "IncludeOnline": a.include_online,
    })
}

fn url(base: &str, kind: DocKind, document: Uuid, name: &str) -> String {
    let collection = match kind {
        DocKind::Invoice => "Invoices",
        DocKind::CreditNote => "CreditNotes",
    };
    let folder = format!("{base}/api.xro/2.0/{collection}/{document}/Attachments");
    let Ok(mut url) = url::Url::parse(&folder) else { return format!("{folder}/{name}") };
    // Pushing a segment percent-encodes it, so the Url can be fetched as given.
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.push(name);
    }
    url.to_string()
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())
}

fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("The FileName field is required.".into());
    }
    if name.encode_utf16().count() > MAX_NAME_LENGTH {
        return Err(format!("The FileName must not be more than {MAX_NAME_LENGTH} characters long."));
    }
    if name.chars().any(|c| RESERVED.contains(&c) || c.is_control()) {
        return Err("The FileName must not contain / \\ : * ? \" < > | or control characters.".into());
    }
    if !extension(name).is_some_and(|ext| TYPES.iter().any(|(t, _)| *t == ext)) {
        let types: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
        return Err(format!(
            "The file type of '{name}' is not supported. Supported file types are: {}.",
            types.join(", ")
        ));
    }
    Ok(())
}

/// The type the upload says the file is; a generic octet-stream says nothing, so the
/// extension decides.
fn mime_type(req: &Req, name: &str) -> String {
    let sent = req.header("content-type").and_then(|t| t.split(';').next()).map(|t| t.trim().to_ascii_lowercase());
    match sent.filter(|t| !t.is_empty() && t != "application/octet-stream") {
        Some(t) => t,
        None => {
            let ext = extension(name).unwrap_or_default();
            let known = TYPES.iter().find(|(t, _)| *t == ext).map(|(_, m)| *m);
            known.unwrap_or("application/octet-stream").to_string()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn upload(
    state: &mut State,
    shared: &Shared,
    req: &Req,
    ctx: &TokenCtx,
    tenant_id: Uuid,
    kind: DocKind,
    id: &str,
    name: &str,
) -> Reply {
    if req.body.len() > MAX_BYTES {
        return Reply::error(
            413,
            "PostDataInvalidException",
            &format!("The file is too large. An attachment can be at most 10 MB ({MAX_BYTES} bytes)."),
        );
    }
    let Some((tenant, doc)) = document(state, tenant_id, kind, id) else { return Reply::not_found() };
    if let Err(message) = check_name(name) {
        return Reply::validation_message(&message);
    }
    if req.body.is_empty() {
        return Reply::error(
            400,
            "PostDataInvalidException",
            "The request body is empty: it must be the file's bytes.",
        );
    }
    let is_put = req.method.as_str() == "PUT";
    let asked_online = match req.query("IncludeOnline").map(str::to_ascii_lowercase).as_deref() {
        _ if !is_put => None,
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some(_) => return Reply::validation_message("IncludeOnline must be true or false."),
    };
    let files = tenant.attachments.get(&doc.id).map(Vec::as_slice).unwrap_or_default();
    let existing = find(files.iter(), name);
    if existing.is_none() && files.len() >= MAX_PER_DOCUMENT {
        return Reply::validation_message(&format!("At most {MAX_PER_DOCUMENT} attachments are allowed per document."));
    }
    // Only a customer sees the online invoice, so Xero keeps the flag on sales documents alone.
    let sales = matches!(doc.doc_type.as_str(), "ACCREC" | "ACCRECCREDIT");
    let attachment = Attachment {
        id: existing.map(|a| a.id).unwrap_or_else(Uuid::new_v4),
        file_name: name.to_string(),
        mime_type: mime_type(req, name),
        content: Bytes::clone(&req.body),
        include_online: sales && asked_online.or(existing.map(|a| a.include_online)).unwrap_or(false),
    };
    let doc = doc.id;
    let tenant = state.tenant_mut(tenant_id).expect("found above");
    let files = tenant.attachments.entry(doc).or_default();
    match files.iter_mut().find(|a| a.id == attachment.id) {
        Some(slot) => *slot = attachment.clone(),
        None => files.push(attachment.clone()),
    }
    let out = vec![attachment_json(&shared.base_url(), kind, doc, &attachment)];
    Reply::json(200, crate::accounting::envelope(state, shared, ctx, "Attachments", out, None))
}
