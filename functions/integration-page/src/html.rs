//! The page's frame: one layout, the response headers that keep it safe (a strict CSP whose
//! `frame-ancestors` names the origins allowed to embed it), and the static assets.

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Response};

pub use xero_sync_http::escape_html as esc;

use crate::text::Text;

pub const STYLESHEET: &str = include_str!("../assets/page.css");
pub const SCRIPT: &str = include_str!("../assets/page.js");
pub const CONNECTED_SCRIPT: &str = include_str!("../assets/connected.js");

/// Who may frame the page: `frame-ancestors` for the CSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    ancestors: Vec<String>,
}

impl Framing {
    pub fn new(ancestors: Vec<String>) -> Self {
        Self { ancestors }
    }

    fn csp(&self) -> String {
        let ancestors = if self.ancestors.is_empty() { "'none'".to_owned() } else { self.ancestors.join(" ") };
        // No inline script or style at all: the script and the stylesheet are files of ours.
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             base-uri 'none'; frame-ancestors {ancestors}"
        )
    }
}

/// A whole page: the body goes inside `<main>`.
pub fn document(text: &Text, title: &str, body: &str, script: Option<&str>) -> String {
    let script = script.map(|src| format!("<script src=\"{src}\" defer></script>")).unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/integration/assets/page.css\">{script}</head>\
         <body><main id=\"main\">{body}</main></body></html>",
        lang = text.lang,
        title = esc(title),
    )
}

pub fn respond(framing: &Framing, status: StatusCode, html: String) -> Response<Body> {
    with_headers(Response::builder().status(status), framing)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Body::Text(html))
        .expect("static headers are valid")
}

/// A 303 after a form: the browser shows the page again with GET, so a reload does not post twice.
pub fn see_other(framing: &Framing, location: &str, cookie: Option<String>) -> Response<Body> {
    let mut builder =
        with_headers(Response::builder().status(StatusCode::SEE_OTHER), framing).header(header::LOCATION, location);
    if let Some(cookie) = cookie {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder.body(Body::Empty).expect("a location we built is a valid header")
}

fn with_headers(
    builder: lambda_http::http::response::Builder,
    framing: &Framing,
) -> lambda_http::http::response::Builder {
    builder
        .header(header::CACHE_CONTROL, "no-store")
        .header("content-security-policy", framing.csp())
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
}

/// A short page with a heading and a few paragraphs: refusals and the end of a connect.
pub fn message(framing: &Framing, text: &Text, status: StatusCode, title: &str, paragraphs: &[&str]) -> Response<Body> {
    let body: String = paragraphs.iter().map(|p| format!("<p>{}</p>", esc(p))).collect();
    let html = document(text, title, &format!("<section class=\"card\"><h1>{}</h1>{body}</section>", esc(title)), None);
    respond(framing, status, html)
}

/// A static asset, cached for an hour (they change only with a deployment).
pub fn asset(name: &str) -> Option<Response<Body>> {
    let (content_type, body) = match name {
        "page.css" => ("text/css; charset=utf-8", STYLESHEET),
        "page.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "connected.js" => ("text/javascript; charset=utf-8", CONNECTED_SCRIPT),
        _ => return None,
    };
    Some(
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CACHE_CONTROL, "public, max-age=3600")
            .header("x-content-type-options", "nosniff")
            .body(Body::Text(body.to_owned()))
            .expect("static headers are valid"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_may_be_framed_only_by_the_origins_allowed() {
        assert!(Framing::new(vec![]).csp().ends_with("frame-ancestors 'none'"));
        let csp = Framing::new(vec!["https://app.example.com".into()]).csp();
        assert!(csp.ends_with("frame-ancestors https://app.example.com"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    #[test]
    fn the_layout_escapes_its_title() {
        let html = document(&crate::text::EN, "<b>x</b>", "", None);
        assert!(html.contains("<title>&lt;b&gt;x&lt;/b&gt;</title>"), "{html}");
    }
}
