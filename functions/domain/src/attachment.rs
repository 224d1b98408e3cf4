//! Files the platform attaches to its invoices and credit notes in Xero: what Xero accepts, and
//! what became of each file.
//!
//! A file is uploaded to our bucket first (a short-lived upload URL), then attached to the Xero
//! document once that document is in Xero. Xero keeps one file per name on a document: a file
//! uploaded again under the same name replaces the one before, in Xero as here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::{AccountId, ConnectionKey, TenantId};
use crate::problem::Problem;

/// Xero's limit on one attachment.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Xero's limit on the attachments of one document.
pub const MAX_PER_DOCUMENT: usize = 10;
/// Longest file name taken (Xero states no limit; its own uploads stop well short of this).
pub const MAX_FILE_NAME: usize = 255;

/// The file types Xero accepts, by extension, and the content types each may be declared as.
const ACCEPTED: &[(&str, &[&str])] = &[
    ("pdf", &["application/pdf"]),
    ("png", &["image/png"]),
    ("jpg", &["image/jpeg", "image/jpg"]),
    ("jpeg", &["image/jpeg", "image/jpg"]),
    ("gif", &["image/gif"]),
    ("bmp", &["image/bmp"]),
    ("tif", &["image/tiff"]),
    ("tiff", &["image/tiff"]),
    ("txt", &["text/plain"]),
    ("csv", &["text/csv", "text/plain"]),
    ("rtf", &["application/rtf", "text/rtf"]),
    ("doc", &["application/msword"]),
    ("docx", &["application/vnd.openxmlformats-officedocument.wordprocessingml.document"]),
    ("xls", &["application/vnd.ms-excel"]),
    ("xlsx", &["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]),
    ("ppt", &["application/vnd.ms-powerpoint"]),
    ("pptx", &["application/vnd.openxmlformats-officedocument.presentationml.presentation"]),
    ("odt", &["application/vnd.oasis.opendocument.text"]),
    ("ods", &["application/vnd.oasis.opendocument.spreadsheet"]),
    ("odf", &["application/vnd.oasis.opendocument.formula"]),
    ("eml", &["message/rfc822"]),
    ("msg", &["application/vnd.ms-outlook"]),
    ("zip", &["application/zip"]),
    ("7z", &["application/x-7z-compressed"]),
    ("rar", &["application/vnd.rar", "application/x-rar-compressed"]),
    ("keynote", &["application/vnd.apple.keynote"]),
    ("numbers", &["application/vnd.apple.numbers"]),
    ("pages", &["application/vnd.apple.pages"]),
];

/// Characters Xero refuses in a file name, and path separators, which would let a name reach
/// somewhere other than the document it is for.
const REFUSED_CHARACTERS: &[char] = &['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// Which kind of platform document a file is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Invoice,
    CreditNote,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::CreditNote => "credit_note",
        }
    }

    /// The Xero collection the document is in.
    pub fn xero_collection(self) -> &'static str {
        match self {
            Self::Invoice => "Invoices",
            Self::CreditNote => "CreditNotes",
        }
    }
}

/// A file the platform is about to upload, as it declared it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDeclaration {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
}

impl FileDeclaration {
    /// Everything Xero would refuse about the file, named by field.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let name = self.file_name.as_str();
        if let Some(problem) = file_name_problem(name) {
            problems.push(Problem::new("file_name", problem));
        }
        let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match extension.as_deref().and_then(|e| ACCEPTED.iter().find(|(x, _)| *x == e)) {
            None if problems.is_empty() => problems.push(Problem::new(
                "file_name",
                format!(
                    "has a type Xero does not accept; it takes {}",
                    ACCEPTED.iter().map(|(e, _)| *e).collect::<Vec<_>>().join(", ")
                ),
            )),
            None => {}
            Some((extension, types)) => {
                let declared = self.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
                if !types.contains(&declared.as_str()) {
                    problems.push(Problem::new(
                        "content_type",
                        format!("does not match a .{extension} file; declare {}", types[0]),
                    ));
                }
            }
        }
        if self.size == 0 {
            problems.push(Problem::new("size", "is zero: Xero refuses an empty file"));
        } else if self.size > MAX_FILE_BYTES {
            problems.push(Problem::new(
                "size",
                format!("is over Xero's limit of {} MB a file", MAX_FILE_BYTES / (1024 * 1024)),
            ));
        }
        problems
    }
}

fn file_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        return Some("is empty".into());
    }
    if name.chars().count() > MAX_FILE_NAME {
        return Some(format!("is longer than {MAX_FILE_NAME} characters"));
    }
    if let Some(c) = name.chars().find(|c| REFUSED_CHARACTERS.contains(c) || c.is_control()) {
        let shown = if c.is_control() { "a control character".to_owned() } else { format!("'{c}'") };
        return Some(format!("holds {shown}: a file name has no path and none of / \\ : * ? \" < > |"));
    }
    if name.starts_with('.') || name.ends_with('.') || name.ends_with(' ') || name.starts_with(' ') {
        return Some("starts or ends with a dot or a space".into());
    }
    None
}

/// Where one file stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// An upload URL was handed out; nothing has landed yet.
    AwaitingUpload,
    /// Uploaded; waiting for the document to reach Xero, or for a consent that allows it.
    Waiting,
    Attached,
    Failed,
}

/// One file of a document, under its name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedFile {
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    /// The newest upload under this name: only it is attached; an older one landing late is
    /// dropped.
    pub upload_id: Uuid,
    #[serde(with = "crate::time::fixed")]
    pub requested_at: DateTime<Utc>,
    /// The upload URL's end: an upload that never came stops counting against the ten.
    #[serde(with = "crate::time::fixed")]
    pub upload_by: DateTime<Utc>,
    pub state: FileState,
    /// The upload that is in Xero now.
    #[serde(default)]
    pub attached_upload: Option<Uuid>,
    #[serde(default)]
    pub xero_attachment_id: Option<Uuid>,
    /// Why it waits or failed, in Xero's words or ours.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(with = "crate::time::fixed")]
    pub updated_at: DateTime<Utc>,
}

impl AttachedFile {
    /// Whether it takes one of the document's ten places in Xero, now or soon.
    pub fn holds_a_place(&self, now: DateTime<Utc>) -> bool {
        self.attached_upload.is_some()
            || matches!(self.state, FileState::Waiting)
            || (self.state == FileState::AwaitingUpload && now <= self.upload_by)
    }
}

/// A document's files. Writes are conditional on `version`, so two uploads at once cannot
/// both take the tenth place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentAttachments {
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    /// Not `kind`: the store's own attribute of that name says what an item is.
    pub document: DocumentKind,
    pub document_id: String,
    #[serde(default)]
    pub files: Vec<AttachedFile>,
    #[serde(default)]
    pub version: u64,
}

impl DocumentAttachments {
    pub fn new(key: &ConnectionKey, kind: DocumentKind, document_id: &str) -> Self {
        Self {
            account_id: key.account_id.clone(),
            tenant_id: key.tenant_id,
            document: kind,
            document_id: document_id.to_owned(),
            files: Vec::new(),
            version: 0,
        }
    }

    pub fn key(&self) -> ConnectionKey {
        ConnectionKey { account_id: self.account_id.clone(), tenant_id: self.tenant_id }
    }

    pub fn file(&self, name: &str) -> Option<&AttachedFile> {
        self.files.iter().find(|f| f.file_name == name)
    }

    pub fn file_mut(&mut self, name: &str) -> Option<&mut AttachedFile> {
        self.files.iter_mut().find(|f| f.file_name == name)
    }

    /// Takes a new upload of `declared`: a new name needs one of the ten places; a known name
    /// is replaced. `Err` says why it cannot be taken.
    pub fn offer(
        &mut self,
        declared: &FileDeclaration,
        upload_id: Uuid,
        now: DateTime<Utc>,
        upload_by: DateTime<Utc>,
    ) -> Result<Offered, String> {
        if let Some(file) = self.file_mut(&declared.file_name) {
            file.content_type = declared.content_type.clone();
            file.size = declared.size;
            file.upload_id = upload_id;
            file.requested_at = now;
            file.upload_by = upload_by;
            file.state = FileState::AwaitingUpload;
            file.reason = None;
            file.updated_at = now;
            return Ok(Offered::Replaces);
        }
        let taken = self.files.iter().filter(|f| f.holds_a_place(now)).count();
        if taken >= MAX_PER_DOCUMENT {
            return Err(format!(
                "the {} already has {MAX_PER_DOCUMENT} files, Xero's most a document holds; upload one again under \
                 its name to replace it",
                self.document.as_str().replace('_', " ")
            ));
        }
        // A name whose upload never came gives its place to this one.
        self.files.retain(|f| f.holds_a_place(now));
        self.files.push(AttachedFile {
            file_name: declared.file_name.clone(),
            content_type: declared.content_type.clone(),
            size: declared.size,
            upload_id,
            requested_at: now,
            upload_by,
            state: FileState::AwaitingUpload,
            attached_upload: None,
            xero_attachment_id: None,
            reason: None,
            updated_at: now,
        });
        Ok(Offered::New)
    }
}

/// What an accepted upload does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    New,
    /// Replaces the file of that name, in Xero too once uploaded.
    Replaces,
}

/// Which document and file an upload is for: read when the upload lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRef {
    pub upload_id: Uuid,
    pub account_id: AccountId,
    pub tenant_id: TenantId,
    pub document: DocumentKind,
    pub document_id: String,
    pub file_name: String,
    #[serde(with = "crate::time::fixed")]
    pub requested_at: DateTime<Utc>,
}

impl UploadRef {
    pub fn key(&self) -> ConnectionKey {
        ConnectionKey { account_id: self.account_id.clone(), tenant_id: self.tenant_id }
    }
}

/// The bucket key an upload lands under: only the upload's id, so nothing the platform chose
/// (a file name) becomes a key.
pub fn object_key(upload_id: Uuid) -> String {
    format!("{UPLOAD_PREFIX}{upload_id}")
}

/// The upload an object key stands for, if it is one of ours.
pub fn upload_of(object_key: &str) -> Option<Uuid> {
    object_key.strip_prefix(UPLOAD_PREFIX).and_then(|id| Uuid::parse_str(id).ok())
}

/// Where uploads land in the bucket; the bucket tells the push queue of objects under it only.
pub const UPLOAD_PREFIX: &str = "uploads/";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn pdf(name: &str, size: u64) -> FileDeclaration {
        FileDeclaration { file_name: name.into(), content_type: "application/pdf".into(), size }
    }

    fn fields(d: &FileDeclaration) -> Vec<String> {
        d.problems().into_iter().map(|p| p.field).collect::<Vec<_>>()
    }

    #[test]
    fn a_pdf_within_ten_megabytes_is_accepted_and_one_byte_more_is_not() {
        assert!(pdf("Job 1042 sheet.pdf", MAX_FILE_BYTES).problems().is_empty());
        assert_eq!(fields(&pdf("job.pdf", MAX_FILE_BYTES + 1)), ["size"]);
        assert_eq!(fields(&pdf("job.pdf", 0)), ["size"]);
    }

    #[test]
    fn a_file_name_with_a_path_or_a_character_xero_refuses_is_named() {
        for bad in ["../job.pdf", "jobs/job.pdf", "C:job.pdf", "job?.pdf", "job\u{7}.pdf", "", ".pdf", "job.pdf "] {
            let problems = pdf(bad, 10).problems();
            assert_eq!(problems[0].field, "file_name", "{bad:?}");
        }
        assert_eq!(fields(&pdf(&"a".repeat(MAX_FILE_NAME + 1), 10)), ["file_name"]);
    }

    #[test]
    fn a_type_xero_refuses_or_a_content_type_that_does_not_match_the_name_is_named() {
        let exe = FileDeclaration { file_name: "setup.exe".into(), content_type: "application/pdf".into(), size: 9 };
        let problems = exe.problems();
        assert_eq!(problems[0].field, "file_name");
        assert!(problems[0].message.contains("pdf, png"), "{}", problems[0].message);
        let mismatched =
            FileDeclaration { file_name: "photo.PNG".into(), content_type: "application/pdf".into(), size: 9 };
        assert_eq!(fields(&mismatched), ["content_type"]);
        let jpeg =
            FileDeclaration { file_name: "photo.jpg".into(), content_type: "image/jpeg; charset=x".into(), size: 9 };
        assert!(jpeg.problems().is_empty());
    }

    #[test]
    fn the_eleventh_name_is_refused_but_a_known_name_replaces_and_an_upload_that_never_came_frees_its_place() {
        let key = ConnectionKey { account_id: AccountId::parse("acct").unwrap(), tenant_id: TenantId(Uuid::nil()) };
        let mut doc = DocumentAttachments::new(&key, DocumentKind::Invoice, "inv-1");
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let by = now + Duration::minutes(15);
        for n in 0..MAX_PER_DOCUMENT {
            assert_eq!(doc.offer(&pdf(&format!("f{n}.pdf"), 1), Uuid::new_v4(), now, by), Ok(Offered::New));
        }
        let refused = doc.offer(&pdf("f10.pdf", 1), Uuid::new_v4(), now, by).unwrap_err();
        assert!(refused.contains("already has 10 files"), "{refused}");
        assert_eq!(doc.offer(&pdf("f3.pdf", 2), Uuid::new_v4(), now, by), Ok(Offered::Replaces));
        assert_eq!(doc.files.len(), MAX_PER_DOCUMENT);
        let later = by + Duration::seconds(1);
        assert_eq!(doc.offer(&pdf("f10.pdf", 1), Uuid::new_v4(), later, later), Ok(Offered::New));
        assert_eq!(doc.files.len(), 1, "the ten that never came are dropped");
    }

    #[test]
    fn only_our_upload_keys_name_an_upload() {
        let id = Uuid::new_v4();
        assert_eq!(upload_of(&object_key(id)), Some(id));
        assert_eq!(upload_of("elsewhere/x"), None);
        assert_eq!(upload_of("uploads/not-a-uuid"), None);
    }
}
