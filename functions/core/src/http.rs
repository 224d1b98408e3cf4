//! HTTP answers for the API Gateway functions: every error becomes its status here, in one
//! place, with a JSON body that names what was wrong.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::Error;

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

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input: the listed fields are missing, mistyped or out of range.
    #[error("invalid request")]
    BadRequest(Vec<Problem>),
    /// A missing, forged or stale signature.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: String },
    /// The request was based on a version that has changed since.
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but the organisation or the current state refuses it.
    #[error("request refused")]
    Unprocessable(Vec<Problem>),
    #[error(transparent)]
    Internal(#[from] Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    problems: &'a [Problem],
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            // A retryable failure (AWS throttling, a timeout) tells the caller to come back;
            // anything else is our fault.
            Self::Internal(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable(_) => "unprocessable",
            Self::Internal(e) if e.is_retryable() => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let (message, problems) = match &self {
            Self::BadRequest(p) | Self::Unprocessable(p) => {
                (p.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "), p.as_slice())
            }
            // Internal details stay in our logs; the caller learns only whether to retry.
            Self::Internal(e) => {
                tracing::error!(error = %e, retryable = e.is_retryable(), "request failed");
                let message = if e.is_retryable() { "temporarily unavailable, retry later" } else { "internal error" };
                (message.to_owned(), &[][..])
            }
            other => (other.to_string(), &[][..]),
        };
        json(status, &ErrorBody { error: self.code(), message, problems })
    }
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Text(text))
        .expect("static headers are valid")
}

/// The answer for a path no route serves.
pub fn no_route(method: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AwsError;

    fn body(r: &Response<Body>) -> serde_json::Value {
        match r.body() {
            Body::Text(t) => serde_json::from_str(t).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn bad_input_names_every_problem() {
        let r = ApiError::BadRequest(vec![
            Problem::new("invoice.number", "is required"),
            Problem::new("invoice.lines[0].quantity", "must be a decimal"),
        ])
        .into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let b = body(&r);
        assert_eq!(b["error"], "bad_request");
        assert_eq!(b["message"], "invoice.number: is required; invoice.lines[0].quantity: must be a decimal");
        assert_eq!(b["problems"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_retryable_failure_is_503_and_hides_details() {
        let aws = AwsError {
            service: "DynamoDB",
            operation: "PutItem",
            code: Some("ThrottlingException".into()),
            message: Some("table xyz".into()),
            retryable: true,
        };
        let r = ApiError::Internal(Error::Aws(aws)).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!body(&r).to_string().contains("xyz"));
        let r = ApiError::Internal(Error::Corrupt { what: "token set", reason: "bad".into() }).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn unknown_routes_are_404_naming_the_route() {
        let r = no_route("GET", "/nope").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(&r)["message"], "no route for GET /nope");
    }
}
