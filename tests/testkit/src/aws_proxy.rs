//! An HTTP proxy in front of moto that records every AWS call (service, operation, size) and
//! can make AWS unreachable for a stretch of calls, as while moto restarts: those connections
//! are dropped without an answer. It can also fail one operation (SES down, Secrets Manager
//! refusing writes) and hold one call back until the test lets it go, to place a race exactly.
//! The bench counts calls per invoice with it; the resilience tests cut AWS off mid-run with it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::write_units::{Meter, WriteUnits};

/// One call that reached the proxy.
#[derive(Debug, Clone)]
pub struct AwsCall {
    /// The signing name: `dynamodb`, `secretsmanager`, `sqs`, `events`, `ses`, ...
    pub service: String,
    /// The operation: `GetItem`, `SendMessage`, ...; for REST APIs (SES v2) the method and path.
    pub operation: String,
    /// The JSON body of SQS calls, to read what a function asked of the queue.
    pub sqs_body: Option<Value>,
    /// Whether the proxy dropped it (AWS unreachable).
    pub dropped: bool,
    /// A DynamoDB write's units as DynamoDB bills them, indexes included, once
    /// [`AwsProxy::measure_write_units`] is on.
    pub write_units: Option<WriteUnits>,
}

impl AwsCall {
    /// A DynamoDB call that writes an item (and is billed write units).
    pub fn is_dynamodb_write(&self) -> bool {
        self.service == "dynamodb" && ["PutItem", "UpdateItem", "DeleteItem"].contains(&self.operation.as_str())
    }
}

#[derive(Default)]
struct Outage {
    /// Calls numbered in `from..until` (counting from the proxy's start) are dropped.
    from: u64,
    until: u64,
}

/// Calls of one operation (or of every operation of a service) that are dropped.
struct Failing {
    /// An operation (`PutSecretValue`) or a service's signing name (`ses`).
    what: String,
    left: u64,
}

/// A call held back until the test releases it.
struct Held {
    operation: String,
    body_contains: String,
    gate: Arc<GateInner>,
}

#[derive(Default)]
struct GateInner {
    arrived: tokio::sync::Notify,
    has_arrived: std::sync::atomic::AtomicBool,
    released: tokio::sync::Notify,
    is_released: std::sync::atomic::AtomicBool,
}

/// One held call: [`ProxyGate::arrived`] resolves once the call reached the proxy, and the call
/// goes on to AWS only after [`ProxyGate::release`].
#[derive(Clone)]
pub struct ProxyGate(Arc<GateInner>);

impl ProxyGate {
    pub async fn arrived(&self) {
        loop {
            let notified = self.0.arrived.notified();
            if self.0.has_arrived.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    pub fn release(&self) {
        self.0.is_released.store(true, Ordering::SeqCst);
        self.0.released.notify_waiters();
    }

    async fn pass(&self) {
        self.0.has_arrived.store(true, Ordering::SeqCst);
        self.0.arrived.notify_waiters();
        loop {
            let notified = self.0.released.notified();
            if self.0.is_released.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    calls: Mutex<Vec<AwsCall>>,
    seen: AtomicU64,
    outage: Mutex<Outage>,
    failing: Mutex<Vec<Failing>>,
    held: Mutex<Vec<Held>>,
    /// IAM actions allowed (`dynamodb:GetItem`); everything when `None`.
    allowed: Mutex<Option<Vec<String>>>,
    measuring: AtomicBool,
    meter: Meter,
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
        let upstream = upstream.trim_end_matches('/').to_owned();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            meter: Meter::new(upstream.clone(), client.clone()),
            measuring: AtomicBool::new(false),
            upstream,
            client,
            calls: Mutex::new(Vec::new()),
            seen: AtomicU64::new(0),
            outage: Mutex::new(Outage::default()),
            failing: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            allowed: Mutex::new(None),
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

    /// Drops the next `times` calls of `what`: an operation (`PutSecretValue`) or every
    /// operation of a service, by its signing name (`ses`, `secretsmanager`).
    pub fn fail(&self, what: &str, times: u64) {
        lock(&self.shared.failing).push(Failing { what: what.to_owned(), left: times });
    }

    /// Answers AccessDenied, as IAM would, to every call whose action is not in `actions`
    /// (`dynamodb:GetItem`, `ses:SendEmail` ...): moto enforces no IAM, so this stands in for a
    /// function's role.
    pub fn allow_only(&self, actions: Vec<String>) {
        *lock(&self.shared.allowed) = Some(actions);
    }

    /// From now on, measures each DynamoDB write's units (table and indexes) by reading its
    /// item before and after it: two reads the calls do not show, for the bench only.
    pub fn measure_write_units(&self) {
        self.shared.measuring.store(true, Ordering::SeqCst);
    }

    /// Stops failing what [`AwsProxy::fail`] was told to fail.
    pub fn stop_failing(&self) {
        lock(&self.shared.failing).clear();
    }

    /// Holds back the next call of `operation` whose body contains `body_contains`, until the
    /// returned gate is released.
    pub fn hold(&self, operation: &str, body_contains: &str) -> ProxyGate {
        let gate = Arc::new(GateInner::default());
        lock(&self.shared.held).push(Held {
            operation: operation.to_owned(),
            body_contains: body_contains.to_owned(),
            gate: gate.clone(),
        });
        ProxyGate(gate)
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
    let held = {
        let mut held = lock(&shared.held);
        let body_text = String::from_utf8_lossy(&body);
        let position =
            held.iter().position(|h| h.operation == call.operation && body_text.contains(h.body_contains.as_str()));
        position.map(|at| ProxyGate(held.remove(at).gate))
    };
    if let Some(gate) = held {
        gate.pass().await;
    }
    let action = iam_action(&call);
    let denied = lock(&shared.allowed).as_ref().is_some_and(|allowed| !allowed.contains(&action));
    if denied {
        shared.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
        let body =
            serde_json::json!({ "__type": "AccessDeniedException", "message": format!("not allowed: {action}") });
        return Response::builder()
            .status(400)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amzn-errortype", "AccessDeniedException")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|_| Dropped);
    }
    let dropped = {
        let outage = shared.outage.lock().unwrap_or_else(|e| e.into_inner());
        let failing = lock(&shared.failing)
            .iter_mut()
            .find(|f| f.left > 0 && (f.what == call.operation || f.what == call.service))
            .map(|f| f.left -= 1)
            .is_some();
        (outage.from..outage.until).contains(&number) || failing
    };
    call.dropped = dropped;
    let measured = !dropped && shared.measuring.load(Ordering::SeqCst) && call.is_dynamodb_write();
    let pending = if measured { shared.meter.before(&parts.headers, &body).await } else { None };
    // A measured call is recorded with its units, once it is done.
    let mut unrecorded = match pending {
        Some(_) => Some(call),
        None => {
            lock(&shared.calls).push(call);
            None
        }
    };
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
        Err(_) => {
            lock(&shared.calls).extend(unrecorded);
            return Err(Dropped);
        }
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != hyper::header::TRANSFER_ENCODING && name != hyper::header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await;
    if let (Some(mut call), Some(pending)) = (unrecorded.take(), pending) {
        call.write_units = shared.meter.after(&parts.headers, pending).await;
        lock(&shared.calls).push(call);
    }
    response.body(Full::new(bytes.map_err(|_| Dropped)?)).map_err(|_| Dropped)
}

/// The IAM action a call needs: the signing name and the operation, named as IAM names them
/// (SES v2's REST path is `ses:SendEmail`; SQS batch calls need the single call's action).
fn iam_action(call: &AwsCall) -> String {
    match (call.service.as_str(), call.operation.as_str()) {
        ("ses", op) if op.starts_with("POST /v2/email/outbound-emails") => "ses:SendEmail".into(),
        ("sqs", op) => format!("sqs:{}", op.strip_suffix("Batch").unwrap_or(op)),
        (service, op) => format!("{service}:{op}"),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn classify(parts: &hyper::http::request::Parts, body: &Bytes) -> AwsCall {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    // The credential scope names the service: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
    // A presigned URL (an upload) carries it in the query: X-Amz-Credential=KEY%2FDATE%2F...
    let query =
        percent_encoding::percent_decode_str(parts.uri.query().unwrap_or_default()).decode_utf8_lossy().into_owned();
    let credential = header("authorization")
        .split("Credential=")
        .nth(1)
        .map(str::to_owned)
        .or_else(|| query.split("X-Amz-Credential=").nth(1).map(str::to_owned));
    let service = credential.as_deref().and_then(|c| c.split('/').nth(3)).unwrap_or("unknown").to_owned();
    let target = header("x-amz-target");
    let operation = match (target.rsplit_once('.'), service.as_str()) {
        (Some((_, op)), _) => op.to_owned(),
        // S3's REST calls on one object, named as IAM names them.
        (None, "s3") if parts.uri.path().matches('/').count() >= 2 => match parts.method.as_str() {
            "PUT" => "PutObject".to_owned(),
            "GET" | "HEAD" => "GetObject".to_owned(),
            "DELETE" => "DeleteObject".to_owned(),
            other => format!("{other} {}", parts.uri.path()),
        },
        _ => format!("{} {}", parts.method, parts.uri.path()),
    };
    let sqs_body = (service == "sqs").then(|| serde_json::from_slice(body).ok()).flatten();
    AwsCall { service, operation, sqs_body, dropped: false, write_units: None }
}

/// An item's size by DynamoDB's rules: each attribute's name plus its value (a string's UTF-8
/// bytes, a number's significant digits halved plus one, 1 for a boolean or null, and 3 plus
/// one per element for a list or map, besides the elements).
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
pub fn item_size(item: &serde_json::Map<String, Value>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|m| m.iter().next()) else { return 0 };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        ("B", Value::String(b)) => binary_size(b),
        ("N", Value::String(n)) => number_size(n),
        ("BOOL", _) | ("NULL", _) => 1,
        ("SS", Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::len).sum(),
        ("BS", Value::Array(list)) => list.iter().filter_map(Value::as_str).map(binary_size).sum(),
        ("NS", Value::Array(list)) => list.iter().filter_map(Value::as_str).map(number_size).sum(),
        ("L", Value::Array(list)) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        ("M", Value::Object(map)) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}

/// Significant digits halved, plus one (DynamoDB's approximation for a number).
fn number_size(n: &str) -> usize {
    n.trim_start_matches('-').replace('.', "").trim_matches('0').len().div_ceil(2) + 1
}

/// Binary travels as base64; DynamoDB counts the raw bytes.
fn binary_size(b: &str) -> usize {
    (b.len() / 4) * 3 - b.bytes().rev().take_while(|c| *c == b'=').count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_is_sized_as_dynamodb_counts_it_not_as_its_json() {
        let item = json!({
            "pk": {"S": "ORG#a"},            // 2 + 5
            "n": {"N": "154.170"},           // 1 + (5 significant digits → 3) + 1
            "ok": {"BOOL": true},            // 2 + 1
            "gone": {"NULL": true},          // 4 + 1
            "list": {"L": [{"S": "ab"}]},    // 4 + 3 + 1 + 2
            "map": {"M": {"k": {"S": "v"}}}, // 3 + 3 + 1 + 1 + 1
            "b": {"B": "aGVsbG8="}           // 1 + 5 ("hello")
        });
        assert_eq!(item_size(item.as_object().unwrap()), 7 + 5 + 3 + 5 + 10 + 9 + 6);
    }
}
