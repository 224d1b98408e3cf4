//! HTTP answers for the API Gateway functions: every error becomes its status here, in one
//! place, with a JSON body that names what was wrong.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use xero_sync_domain::error::Error;
pub use xero_sync_domain::problem::Problem;
use xero_sync_runtime::token_provider::TokenError;

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
    #[error("the body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{method} is not allowed here")]
    MethodNotAllowed { method: String },
    /// The request was based on a version that has changed since.
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but the organisation or the current state refuses it.
    #[error("request refused")]
    Unprocessable(Vec<Problem>),
    /// Xero failed us; retryable ones are 503, others 502.
    #[error("Xero: {message}")]
    Upstream { message: String, retryable: bool },
    #[error(transparent)]
    Internal(#[from] Error),
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Aws(e) => Self::Internal(e),
            TokenError::Reconnect => Self::Conflict("the Xero organisation must be reconnected first".into()),
            other => Self::Upstream { message: other.to_string(), retryable: other.is_retryable() },
        }
    }
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
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Upstream { retryable: true, .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream { retryable: false, .. } => StatusCode::BAD_GATEWAY,
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
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Conflict(_) => "conflict",
            Self::Unprocessable(_) => "unprocessable",
            Self::Upstream { .. } => "upstream",
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

/// A small, self-contained page for the browser steps of the consent flow.
pub fn page(status: StatusCode, title: &str, paragraphs: &[&str]) -> Response<Body> {
    let body: String = paragraphs.iter().map(|p| format!("<p>{}</p>", escape_html(p))).collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>body{{font-family:system-ui,\
         sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1f2933;line-height:1.5}}h1{{font-size:\
         1.4rem}}.card{{border:1px solid #d9e2ec;border-radius:8px;padding:1.5rem 2rem}}button{{font-size:1rem;\
         padding:.5rem 1.2rem;border-radius:6px;border:0;background:#13b5ea;color:#fff;cursor:pointer}}label{{display:\
         block;margin:.4rem 0}}</style></head><body><div class=\"card\"><h1>{title}</h1>{body}</div></body></html>",
        title = escape_html(title),
    );
    html_response(status, html)
}

pub fn html_response(status: StatusCode, html: String) -> Response<Body> {
    html_response_posting_to(status, html, None)
}

/// A page whose form may end, after our redirect, at `redirect_origin` (browsers hold a form's
/// redirects to `form-action` too).
pub fn html_response_posting_to(status: StatusCode, html: String, redirect_origin: Option<&str>) -> Response<Body> {
    let form_action = match redirect_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        // The pages run no script; nothing may frame them.
        .header(
            "content-security-policy",
            format!("default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'"),
        )
        .body(Body::Text(html))
        .expect("static headers are valid")
}

/// Binds a consent to the browser that started it: `/connect` sets this cookie to a hash of the
/// state, and the callback (and the organisation choice) accept only a request that carries it.
/// Without it, someone could start a consent for their own platform account and have a victim
/// finish it, attaching the victim's organisation to the wrong account.
pub const CONSENT_COOKIE: &str = "__Host-xero-sync-consent";

pub fn consent_binding(state: &str) -> String {
    xero_sync_domain::digest::sha256_hex(state)
}

pub fn consent_cookie(value: &str, max_age_seconds: i64) -> String {
    format!("{CONSENT_COOKIE}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax")
}

/// A cookie's value from the request's `Cookie` headers.
pub fn request_cookie<'a>(headers: &'a lambda_http::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A 302 to `location`, never cached.
pub fn redirect(location: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::Empty)
        .expect("a location that parsed as a URL is a valid header")
}

/// The request body as API Gateway delivered it (text or base64-decoded binary).
pub fn request_body(request: &lambda_http::Request) -> &[u8] {
    match request.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => b"",
    }
}

/// Parses a JSON body, naming the exact field that is missing or of the wrong type (`body`
/// when the text is not JSON at all). The message never repeats the value it refused.
pub fn parse_json<T: for<'de> serde::Deserialize<'de>>(body: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if matches!(path.as_str(), "." | "?" | "") { "body".to_owned() } else { path };
        Problem::new(field, xero_sync_domain::error::without_values(&e.into_inner().to_string()))
    })
}

/// The request's path, percent-decoded: what routes match and what signatures cover.
///
/// API Gateway's HTTP APIs hand `rawPath` over already decoded (`/accounts/acct@home`), while
/// a function URL or a REST API passes it as sent (`/accounts/acct%40home`); decoding here makes
/// both the same. No platform id may contain `%` (see [`xero_sync_domain::model`]), so decoding a decoded
/// path changes nothing that could be told apart.
pub fn request_path(request: &lambda_http::Request) -> String {
    use lambda_http::RequestExt;
    percent_encoding::percent_decode_str(request.raw_http_path()).decode_utf8_lossy().into_owned()
}

/// Checks a signed API call: the signature covers the method, the decoded path (see
/// [`request_path`]) with its query string as sent, and the body, so none of them can be
/// changed or replayed elsewhere.
pub fn verify_api_request(
    request: &lambda_http::Request,
    secrets: &[xero_sync_domain::signing::SigningSecret],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    let path = request_path(request);
    let path_and_query = match request.uri().query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    };
    let header = request.headers().get(xero_sync_domain::signing::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let signed = xero_sync_domain::signing::Signed::Api {
        method: request.method().as_str(),
        path_and_query: &path_and_query,
        body: request_body(request),
    };
    xero_sync_domain::signing::verify(header, secrets, now, &signed).map_err(|e| ApiError::Unauthorized(e.to_string()))
}

/// The connection a path names (`/accounts/{account}/connections/{tenant}/...`).
pub fn connection_key(account: &str, tenant: &str) -> Result<xero_sync_domain::model::ConnectionKey, ApiError> {
    let mut problems = Vec::new();
    let account_id = xero_sync_domain::model::AccountId::parse(account)
        .map_err(|e| problems.push(Problem::new("account", e.to_string())))
        .ok();
    let tenant_id = xero_sync_domain::model::TenantId::parse(tenant)
        .map_err(|_| problems.push(Problem::new("tenant", "is not a Xero tenant id (a UUID)")))
        .ok();
    match (account_id, tenant_id) {
        (Some(account_id), Some(tenant_id)) => Ok(xero_sync_domain::model::ConnectionKey { account_id, tenant_id }),
        _ => Err(ApiError::BadRequest(problems)),
    }
}

/// The answer for a path no route serves.
pub fn no_route(method: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {path}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xero_sync_domain::error::AwsError;

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
    fn pages_escape_what_they_show() {
        let r = page(StatusCode::BAD_REQUEST, "Oops <b>", &["a \"quoted\" <script>"]);
        let Body::Text(html) = r.body() else { panic!() };
        assert!(html.contains("Oops &lt;b&gt;"));
        assert!(html.contains("a &quot;quoted&quot; &lt;script&gt;"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn cookies_are_found_among_several_headers_and_pairs() {
        let mut headers = lambda_http::http::HeaderMap::new();
        headers.append(header::COOKIE, "a=1; __Host-xero-sync-consent=abc".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        assert_eq!(request_cookie(&headers, CONSENT_COOKIE), Some("abc"));
        assert_eq!(request_cookie(&headers, "b"), Some("2"));
        assert_eq!(request_cookie(&headers, "c"), None);
    }

    #[test]
    fn json_problems_name_the_field_or_the_body() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Doc {
            inner: Vec<u32>,
        }
        assert_eq!(parse_json::<Doc>(b"{not json").unwrap_err().field, "body");
        assert_eq!(parse_json::<Doc>(b"{}").unwrap_err().field, "body");
        assert_eq!(parse_json::<Doc>(br#"{"inner": [1, "x"]}"#).unwrap_err().field, "inner[1]");
    }

    #[test]
    fn unknown_routes_are_404_naming_the_route() {
        let r = no_route("GET", "/nope").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(&r)["message"], "no route for GET /nope");
    }
}
