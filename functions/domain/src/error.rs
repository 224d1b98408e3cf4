//! Errors that say whether they are worth retrying.
//!
//! Queue-driven functions use [`Error::is_retryable`] to choose between letting SQS redeliver a
//! message and recording a failure that no retry could fix.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A conditional write lost to another writer: re-read and decide again.
    #[error("{0} was changed by someone else")]
    Conflict(String),
    #[error("{0} was not found")]
    NotFound(String),
    /// A stored item or secret that no longer parses; retrying reads the same bytes.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// EventBridge kept refusing some entries after our own retries.
    #[error("EventBridge refused {failed} event(s): {code}")]
    EventsRejected { failed: usize, code: String },
    /// SES refused an email for good (the address, or our sending identity): sending it again
    /// would be refused the same way.
    #[error("SES refused the email ({code})")]
    EmailRefused { code: String },
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws(e) => e.retryable,
            Error::EventsRejected { .. } => true,
            Error::Conflict(_) | Error::NotFound(_) | Error::Corrupt { .. } | Error::EmailRefused { .. } => false,
        }
    }
}

/// A failed AWS call. The message is kept only where the service never echoes personal data
/// back (SES, for one, names the addresses it refused, so its message is dropped).
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation} failed{}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: Option<String>,
    pub retryable: bool,
}

impl AwsError {
    /// For services whose messages may quote personal data back to us.
    pub fn without_message(mut self) -> Self {
        self.message = None;
        self
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// A parser's error message without the input it quotes.
///
/// serde's messages repeat what they were given (`invalid type: string "jane@example.com",
/// expected u32`, ``unknown variant `x` ``), and inputs carry personal data and tokens. What
/// was expected is ours to show; what was found is described by its kind only.
pub fn without_values(message: &str) -> String {
    let message = match message.rfind(" at line ") {
        Some(at) if message[at..].contains(" column ") => &message[..at],
        _ => message,
    };
    // What was expected comes last and is ours (types, variant and field names); a value that
    // itself holds ", expected " comes before it.
    let (found, expected) = match message.rsplit_once(", expected ") {
        Some((found, expected)) => (found, Some(expected)),
        None => (message, None),
    };
    // Our own field names, which the message names when one is missing or repeated.
    if expected.is_none() && (found.starts_with("missing field `") || found.starts_with("duplicate field `")) {
        return found.to_owned();
    }
    // Whatever stands in quotes is what was found: keep the words before it (`invalid type:
    // string`, `unknown variant`), never the rest.
    let found = found.split(['"', '`']).next().unwrap_or_default().trim().trim_end_matches(':').trim();
    match expected {
        Some(expected) => format!("{found}, expected {expected}"),
        None => found.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_messages_keep_what_was_expected_and_drop_what_was_found() {
        for (message, expected) in [
            (
                "invalid type: string \"jane@example.com\", expected u32 at line 1 column 9",
                "invalid type: string, expected u32",
            ),
            ("invalid type: integer `98765`, expected a string", "invalid type: integer, expected a string"),
            (
                "unknown variant `invoice.s3cr3t`, expected one of `invoice.created`, `invoice.voided`",
                "unknown variant, expected one of `invoice.created`, `invoice.voided`",
            ),
            ("unknown field `s3cr3t`, expected `a` or `b`", "unknown field, expected `a` or `b`"),
            ("missing field `number`", "missing field `number`"),
            ("invalid character: found `s` at 1", "invalid character: found"),
            ("invalid type: string \"x, expected SECRET\", expected u64", "invalid type: string, expected u64"),
            ("unknown variant `x`SECRET`, expected `a`", "unknown variant, expected `a`"),
            ("input contains invalid characters", "input contains invalid characters"),
        ] {
            assert_eq!(without_values(message), expected);
        }
    }

    #[test]
    fn conflicts_and_corruption_are_not_worth_retrying() {
        assert!(!Error::Conflict("connection".into()).is_retryable());
        assert!(!Error::Corrupt { what: "token set", reason: "x".into() }.is_retryable());
        assert!(Error::EventsRejected { failed: 1, code: "InternalFailure".into() }.is_retryable());
    }

    #[test]
    fn aws_errors_print_service_operation_code_and_message() {
        let e = AwsError {
            service: "DynamoDB",
            operation: "PutItem",
            code: Some("ValidationException".into()),
            message: Some("bad key".into()),
            retryable: false,
        };
        assert_eq!(e.to_string(), "DynamoDB PutItem failed (ValidationException): bad key");
        assert_eq!(e.without_message().to_string(), "DynamoDB PutItem failed (ValidationException)");
    }
}
