//! What is wrong with an input, field by field: what domain rules return and the HTTP edge
//! answers with (400 or 422).

use serde::Serialize;

/// One thing wrong with a request, named so the caller can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: a JSON path, header or query parameter (`invoice.lines[2].quantity`, `X-Signature`).
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
