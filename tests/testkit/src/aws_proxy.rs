//! An HTTP proxy in front of moto that records every AWS call (service, operation, size) and
//! can make AWS unreachable for a stretch of calls, as while moto restarts: those connections
//! are dropped without an answer. The bench counts calls per invoice with it; the resilience
//! tests cut AWS off mid-run with it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One call that reached the proxy.
#[derive(Debug, Clone)]
pub struct AwsCall {
    /// The signing name: `dynamodb`, `secretsmanager`, `sqs`, `events`, `ses`, ...
    pub service: String,
    /// The operation: `GetItem`, `SendMessage`, ...; for REST APIs (SES v2) the method and path.
    pub operation: String,
    /// The request body's length, from which DynamoDB's write units are estimated.
    pub request_bytes: usize,
    /// The JSON body of SQS calls, to read what a function asked of the queue.
    pub sqs_body: Option<Value>,
    /// Whether the proxy dropped it (AWS unreachable).
    pub dropped: bool,
}

#[derive(Default)]
struct Outage {
    /// Calls numbered in `from..until` (counting from the proxy's start) are dropped.
    from: u64,
    until: u64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    calls: Mutex<Vec<AwsCall>>,
    seen: AtomicU64,
    outage: Mutex<Outage>,
}

pub struct AwsProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AWS unreachable")
    }
}

impl std::error::Error for Dropped {}

impl AwsProxy {
    /// A proxy on a free local port forwarding to `upstream` (moto's endpoint).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?,
            calls: Mutex::new(Vec::new()),
            seen: AtomicU64::new(0),
            outage: Mutex::new(Outage::default()),
        });
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| forward(shared.clone(), request));
                    // A dropped call ends its connection mid-request, which is the point.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, shared, task })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `sdk` with its endpoint moved to this proxy.
    pub fn sdk_config(&self, sdk: &SdkConfig) -> SdkConfig {
        sdk.to_builder().endpoint_url(self.endpoint()).build()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<AwsCall> {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets the calls recorded so far.
    pub fn reset(&self) {
        self.shared.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Drops the `lasting` calls that come after the next `after` ones.
    pub fn outage(&self, after: u64, lasting: u64) {
        let start = self.shared.seen.load(Ordering::SeqCst) + after;
        *self.shared.outage.lock().unwrap_or_else(|e| e.into_inner()) = Outage { from: start, until: start + lasting };
    }

    /// Whether an outage set with [`AwsProxy::outage`] has begun and ended.
    pub fn outage_over(&self) -> bool {
        let outage = self.shared.outage.lock().unwrap_or_else(|e| e.into_inner());
        self.shared.seen.load(Ordering::SeqCst) >= outage.until
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let number = shared.seen.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let mut call = classify(&parts, &body);
    let dropped = {
        let outage = shared.outage.lock().unwrap_or_else(|e| e.into_inner());
        (outage.from..outage.until).contains(&number)
    };
    call.dropped = dropped;
    shared.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    if dropped {
        return Err(Dropped);
    }
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut upstream = shared.client.request(parts.method.clone(), format!("{}{path}", shared.upstream));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(body).send().await {
        Ok(answer) => answer,
        Err(_) => return Err(Dropped),
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != hyper::header::TRANSFER_ENCODING && name != hyper::header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.map_err(|_| Dropped)?;
    response.body(Full::new(bytes)).map_err(|_| Dropped)
}

fn classify(parts: &hyper::http::request::Parts, body: &Bytes) -> AwsCall {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    // The credential scope names the service: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned();
    let target = header("x-amz-target");
    let operation = match target.rsplit_once('.') {
        Some((_, op)) => op.to_owned(),
        None => format!("{} {}", parts.method, parts.uri.path()),
    };
    let sqs_body = (service == "sqs").then(|| serde_json::from_slice(body).ok()).flatten();
    AwsCall { service, operation, request_bytes: body.len(), sqs_body, dropped: false }
}
