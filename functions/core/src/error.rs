//! Errors that say whether they are worth retrying.
//!
//! Queue-driven functions use [`Error::is_retryable`] to choose between letting SQS redeliver a
//! message and recording a failure that no retry could fix.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
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
}

impl Error {
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Aws(e) => e.retryable,
            Error::EventsRejected { .. } => true,
            Error::Config(_) | Error::Conflict(_) | Error::NotFound(_) | Error::Corrupt { .. } => false,
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

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
    "ServiceUnavailable",
];

impl AwsError {
    pub fn new<E>(service: &'static str, operation: &'static str, err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata,
    {
        let (code, message, retryable) = match err {
            SdkError::ServiceError(service_err) => {
                let e = service_err.err();
                let code = e.code().map(str::to_owned);
                // A 5xx is the service's own trouble, whatever its code (or none).
                let retryable = code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c))
                    || service_err.raw().status().is_server_error();
                (code, e.message().map(str::to_owned), retryable)
            }
            // Timeouts, connection failures and unparseable responses may succeed next time;
            // a request we could not even build will not.
            SdkError::TimeoutError(_) => (Some("Timeout".into()), None, true),
            SdkError::DispatchFailure(_) => (Some("DispatchFailure".into()), None, true),
            SdkError::ResponseError(_) => (Some("ResponseError".into()), None, true),
            SdkError::ConstructionFailure(_) => (Some("ConstructionFailure".into()), None, false),
            _ => (None, None, true),
        };
        Self { service, operation, code, message, retryable }
    }

    /// For services whose messages may quote personal data back to us.
    pub fn without_message(mut self) -> Self {
        self.message = None;
        self
    }

    pub fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
