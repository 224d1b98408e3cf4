//! Request parsing and the response shapes Xero uses for errors.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A request with its path split into segments; `lower` is for matching routes (Xero's paths are
/// case-insensitive), `segs` keeps the original spelling for ids and invoice numbers.
pub struct Req {
    pub method: Method,
    pub path: String,
    pub segs: Vec<String>,
    pub lower: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn new(method: Method, uri: &axum::http::Uri, headers: HeaderMap, body: Bytes) -> Req {
        let path = uri.path().to_string();
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        let lower = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let query =
            uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        Req { method, path, segs, lower, query, headers, body }
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn lower_path(&self) -> String {
        format!("/{}", self.lower.join("/"))
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn json(&self) -> Result<Value, Reply> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(Reply::error(400, "PostDataInvalidException", "The request body is empty"));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Reply::error(400, "PostDataInvalidException", &format!("Invalid JSON in request body: {e}")))
    }
}

/// A response the accounting handlers build while holding the state lock; it is also what the
/// idempotency store replays.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: ReplyBody,
}

#[derive(Clone, Debug)]
pub enum ReplyBody {
    Json(Value),
    Text(String),
    /// A file as it was stored (an attachment's content), with its own content type.
    Bytes {
        content_type: String,
        data: Bytes,
    },
    Empty,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: ReplyBody::Json(body) }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply { status, body: ReplyBody::Text(body.to_string()) }
    }

    /// Xero's Error schema: ErrorNumber, Type, Message (and Elements for validation).
    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        let number = match kind {
            "ValidationException" => 10,
            "PostDataInvalidException" => 14,
            "QueryParseException" => 16,
            "ObjectNotFoundException" => 17,
            _ => 0,
        };
        Reply::json(status, json!({"ErrorNumber": number, "Type": kind, "Message": message}))
    }

    pub fn validation(elements: Vec<Value>) -> Reply {
        Reply::json(
            400,
            json!({
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": elements,
            }),
        )
    }

    pub fn validation_message(message: &str) -> Reply {
        Reply::validation(vec![json!({"ValidationErrors": [{"Message": message}]})])
    }

    pub fn bytes(status: u16, content_type: &str, data: Bytes) -> Reply {
        Reply { status, body: ReplyBody::Bytes { content_type: content_type.to_string(), data } }
    }

    /// A 204: done, nothing to say (Xero's answer to a deleted item).
    pub fn no_content() -> Reply {
        Reply { status: 204, body: ReplyBody::Empty }
    }

    pub fn not_found() -> Reply {
        Reply::text(404, "The resource you're looking for cannot be found")
    }

    /// The problem-details body Xero's gateway answers 401 and 403 with.
    pub fn problem(status: u16, title: &str, detail: &str) -> Reply {
        Reply::json(
            status,
            json!({"Type": null, "Title": title, "Status": status, "Detail": detail, "Instance": uuid::Uuid::new_v4().to_string(), "Extensions": {}}),
        )
    }

    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self.body {
            ReplyBody::Json(v) => {
                (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
            }
            ReplyBody::Text(t) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response(),
            ReplyBody::Bytes { content_type, data } => {
                let kind = HeaderValue::from_str(&content_type)
                    .unwrap_or(HeaderValue::from_static("application/octet-stream"));
                (status, [(header::CONTENT_TYPE, kind)], data).into_response()
            }
            ReplyBody::Empty => (status, Body::empty()).into_response(),
        }
    }
}

pub fn oauth_error(status: u16, error: &str) -> Response {
    Reply::json(status, json!({"error": error})).into_response()
}

pub fn set_header(resp: &mut Response, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        resp.headers_mut().insert(name, v);
    }
}

pub fn html(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

pub fn redirect(location: &str) -> Response {
    let mut resp = (StatusCode::FOUND, Body::empty()).into_response();
    set_header(&mut resp, "location", location);
    resp
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}
