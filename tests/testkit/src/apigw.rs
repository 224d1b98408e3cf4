//! API Gateway HTTP API (payload 2.0) events, as the functions receive them in Lambda.

use lambda_http::Request;
use serde_json::json;

/// A request as API Gateway would hand it to the function, from `path_and_query` as the caller
/// sent it: headers lower-cased, the body as text, and the path percent-decoded, since HTTP
/// APIs deliver `rawPath` decoded (the query string stays as sent).
pub fn request(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let (sent_path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let decoded = percent_encoding::percent_decode_str(sent_path).decode_utf8_lossy();
    event(method, decoded.as_ref(), query, headers, body)
}

/// [`request`] with the path left as sent, as a REST API or a Lambda function URL delivers it.
pub fn request_undecoded(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    event(method, path, query, headers, body)
}

fn event(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: Option<&str>) -> Request {
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), json!("xero-sync.test"));
    for (k, v) in headers {
        header_map.insert(k.to_ascii_lowercase(), json!(v));
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "xero-sync.test",
            "domainPrefix": "xero-sync",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "testkit" },
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "21/Nov/2026:06:00:00 +0000",
            "timeEpoch": 0
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).expect("a well-formed API Gateway v2 event")
}

/// The response body as text.
pub fn body_text(response: &lambda_http::Response<lambda_http::Body>) -> String {
    match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}
