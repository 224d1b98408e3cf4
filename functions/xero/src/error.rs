use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// What went wrong talking to Xero, and whether trying again can help.
///
/// Messages carry Xero's own validation wording (it names codes and numbers the account chose),
/// never tokens; they are shown to the account, and logged only by kind.
#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    /// The refresh token was refused: only the account re-authorising fixes it.
    #[error("Xero refused the refresh token (invalid_grant); the organisation must be reconnected")]
    InvalidGrant,
    /// The access token was refused; a fresh one may work.
    #[error("Xero did not accept the access token (401)")]
    Unauthorized,
    /// The token is good but its consent did not grant what the call needs (Xero's 401
    /// `AuthorizationUnsuccessful`): only a reconnection asking for the scope helps.
    #[error("the organisation's consent does not allow this call (401 AuthorizationUnsuccessful)")]
    NotGranted,
    #[error("Xero refused access to the organisation (403): {0}")]
    Forbidden(String),
    #[error("Xero has no {0}")]
    NotFound(String),
    #[error("Xero's {problem} rate limit is reached; retry after {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration, problem: String },
    #[error("Xero refused the request: {}", messages.join("; "))]
    Validation { messages: Vec<String>, body: Value },
    #[error("Xero answered {status}")]
    Server { status: u16 },
    /// No answer. For a write, `maybe_applied` says the request may have reached Xero, so the
    /// caller must look before writing again.
    #[error("Xero did not answer: {message}")]
    Transport { message: String, maybe_applied: bool },
    /// A 2xx whose body did not parse (cut short on the way, say). For a write,
    /// `maybe_applied` says Xero did apply it: look before writing again.
    #[error("Xero's answer from {what} did not parse: {reason}")]
    Unreadable { what: String, reason: String, maybe_applied: bool },
    #[error("Xero sent something unexpected: {0}")]
    Unexpected(String),
    /// Our own configuration rules the call out (a function without the client secret).
    #[error("{0}")]
    NotConfigured(&'static str),
    /// An OAuth error other than invalid_grant (invalid_client, unauthorized_client, ...).
    #[error("Xero's identity service refused the request: {0}")]
    OAuth(String),
}

impl XeroError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Transport { .. }
                | Self::Unreadable { .. }
                | Self::Unauthorized
        )
    }

    /// Whether a failed write may have been applied by Xero all the same.
    pub fn maybe_applied(&self) -> bool {
        matches!(
            self,
            Self::Server { .. }
                | Self::Transport { maybe_applied: true, .. }
                | Self::Unreadable { maybe_applied: true, .. }
        )
    }

    /// How long Xero asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub(crate) fn from_transport(e: &reqwest::Error, is_write: bool) -> Self {
        // A refused connection never reached Xero; anything later might have.
        let maybe_applied = is_write && !e.is_connect();
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "the connection failed"
        };
        Self::Transport { message: kind.to_owned(), maybe_applied }
    }

    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8], what: &str) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
                // Xero always sends Retry-After with a 429; a minute is its longest window otherwise.
                // A day is Xero's longest window: a larger wait is no Xero answer to honour.
                let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok()).unwrap_or(60).min(86_400);
                let problem = header("x-rate-limit-problem").unwrap_or("unknown").to_owned();
                Self::RateLimited { retry_after: Duration::from_secs(retry_after), problem }
            }
            StatusCode::UNAUTHORIZED
                if ["Detail", "detail"]
                    .iter()
                    .any(|k| json.get(*k).and_then(Value::as_str) == Some("AuthorizationUnsuccessful")) =>
            {
                Self::NotGranted
            }
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden(
                ["Detail", "Title", "Message"]
                    .iter()
                    .find_map(|k| json.get(*k).and_then(Value::as_str))
                    .unwrap_or("forbidden")
                    .to_owned(),
            ),
            StatusCode::NOT_FOUND => Self::NotFound(what.trim_start_matches('/').to_owned()),
            StatusCode::BAD_REQUEST => {
                let mut messages = Vec::new();
                collect_validation_messages(&json, &mut messages);
                if messages.is_empty() {
                    if let Some(m) = json.get("Message").and_then(Value::as_str) {
                        messages.push(m.to_owned());
                    } else {
                        messages.push("bad request".to_owned());
                    }
                }
                messages.dedup();
                Self::Validation { messages, body: json }
            }
            s if s.is_server_error() => Self::Server { status: s.as_u16() },
            s => Self::Unexpected(format!("HTTP {s} from {what}")),
        }
    }
}

/// Xero nests `ValidationErrors` under each element and again under its line items.
fn collect_validation_messages(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "ValidationErrors" {
                    for e in v.as_array().into_iter().flatten() {
                        if let Some(m) = e.get("Message").and_then(Value::as_str) {
                            out.push(m.to_owned());
                        }
                    }
                } else {
                    collect_validation_messages(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_validation_messages(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn a_401_for_a_scope_not_granted_is_not_taken_for_an_expired_token() {
        let scope = br#"{"Type":null,"Title":"Unauthorized","Status":401,"Detail":"AuthorizationUnsuccessful"}"#;
        let e = XeroError::from_response(StatusCode::UNAUTHORIZED, &HeaderMap::new(), scope, "/Payments");
        assert!(matches!(e, XeroError::NotGranted) && !e.is_retryable(), "{e:?}");
        let token = br#"{"Title":"Unauthorized","Status":401,"Detail":"AuthenticationUnsuccessful"}"#;
        let e = XeroError::from_response(StatusCode::UNAUTHORIZED, &HeaderMap::new(), token, "/Payments");
        assert!(matches!(e, XeroError::Unauthorized), "{e:?}");
    }

    #[test]
    fn a_validation_exception_lists_every_message() {
        let body = br#"{"ErrorNumber":10,"Type":"ValidationException","Message":"A validation exception occurred",
            "Elements":[{"ValidationErrors":[{"Message":"Account code '999' is not a valid code for this document."}],
            "LineItems":[{"ValidationErrors":[{"Message":"The TaxType code XYZ does not exist or cannot be used for this type of transaction."}]}]}]}"#;
        match XeroError::from_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), body, "/Invoices") {
            XeroError::Validation { messages, .. } => assert_eq!(messages.len(), 2, "{messages:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_429_carries_retry_after_and_the_problem() {
        let mut h = HeaderMap::new();
        h.insert("Retry-After", HeaderValue::from_static("17"));
        h.insert("X-Rate-Limit-Problem", HeaderValue::from_static("minute"));
        let e = XeroError::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"", "/Invoices");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
        assert!(e.is_retryable());
        assert_eq!(e.to_string(), "Xero's minute rate limit is reached; retry after 17 s");
    }

    #[test]
    fn a_retry_after_past_a_day_waits_a_day() {
        let mut h = HeaderMap::new();
        h.insert("Retry-After", HeaderValue::from_static("18446744073709551615"));
        let e = XeroError::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"", "/Invoices");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn client_errors_are_final_and_server_errors_retryable() {
        let h = HeaderMap::new();
        assert!(!XeroError::from_response(StatusCode::BAD_REQUEST, &h, b"{}", "/x").is_retryable());
        assert!(!XeroError::from_response(StatusCode::FORBIDDEN, &h, b"{}", "/x").is_retryable());
        assert!(XeroError::from_response(StatusCode::BAD_GATEWAY, &h, b"<html>", "/x").is_retryable());
    }
}
