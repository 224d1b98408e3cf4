//! The functions' HTTP handlers on a local port, behind an adapter that does what API Gateway
//! does: each request becomes a payload-2.0 event, each response goes back as it is. A browser
//! can then walk the connect flow, and `./dev run` can serve the functions.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body as AxumBody, to_bytes};
use axum::http::{HeaderValue, Request as AxumRequest, Response as AxumResponse, StatusCode};
use lambda_http::{Body, Request, Response};
use tokio::net::TcpListener;

/// What a function's `handle` looks like once bound to its process state.
pub type Handler = Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync>;

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub struct LocalApi {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LocalApi {
    /// Binds 127.0.0.1 on a free port now, so the URL is known before the handler is built.
    pub async fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        Ok(Self { listener: Some(listener), addr, stop: None })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `handler` until this value is dropped.
    pub fn serve(&mut self, handler: Handler) {
        let listener = self.listener.take().expect("serve is called once");
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.stop = Some(tx);
        let app = axum::Router::new().fallback(move |request: AxumRequest<AxumBody>| {
            let handler = handler.clone();
            async move { forward(handler, request).await }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
    }
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn forward(handler: Handler, request: AxumRequest<AxumBody>) -> AxumResponse<AxumBody> {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let text = String::from_utf8_lossy(&bytes);
    let event = crate::apigw::request(
        parts.method.as_str(),
        path_and_query,
        &header_refs,
        (!bytes.is_empty()).then_some(&*text),
    );
    let response = handler(event).await;
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Text(t) => AxumBody::from(t),
        Body::Binary(b) => AxumBody::from(b),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}

fn plain(status: StatusCode, text: &'static str) -> AxumResponse<AxumBody> {
    let mut response = AxumResponse::new(AxumBody::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", HeaderValue::from_static("text/plain"));
    response
}
