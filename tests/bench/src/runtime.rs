//! A small Lambda runtime API, enough to run a function's real `bootstrap` the way Lambda does:
//! the process polls `/next`, gets one event, answers on `/response` (or `/error`). It measures
//! the cold start (process start to the first poll), each invocation's handler time, and the
//! process's peak RSS.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

/// What a function answered.
#[derive(Debug)]
pub struct Answer {
    /// From handing the event over to the answer.
    pub took: Duration,
    pub body: Value,
    /// Whether the function reported an error rather than a response.
    pub error: bool,
}

type Pending = (Value, oneshot::Sender<Answer>);

struct Shared {
    queue: Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, (Instant, oneshot::Sender<Answer>)>>,
    first_poll: Mutex<Option<oneshot::Sender<Instant>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// One function process behind its own runtime API.
pub struct Function {
    events: mpsc::Sender<Pending>,
    child: tokio::process::Child,
    pub cold_start: Duration,
    server: tokio::task::JoinHandle<()>,
}

impl Function {
    /// Starts `binary` with `env` and waits for its first poll.
    pub async fn start(binary: &std::path::Path, name: &str, env: &[(String, String)]) -> anyhow::Result<Self> {
        let (events, queue) = mpsc::channel(1);
        let (first_tx, first_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            waiting: Mutex::new(HashMap::new()),
            first_poll: Mutex::new(Some(first_tx)),
            next_id: Default::default(),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let lambda_env = [
            ("AWS_LAMBDA_RUNTIME_API", addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_owned()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ("RUST_LOG", "warn".to_owned()),
        ];
        let started = Instant::now();
        let child = tokio::process::Command::new(binary)
            .env_clear()
            .envs(env.iter().cloned())
            .envs(lambda_env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let polled = tokio::time::timeout(Duration::from_secs(30), first_rx)
            .await
            .with_context(|| format!("{name} did not poll within 30 s"))??;
        Ok(Self { events, child, cold_start: polled - started, server })
    }

    pub async fn invoke(&self, event: Value) -> anyhow::Result<Answer> {
        let (tx, rx) = oneshot::channel();
        self.events.send((event, tx)).await.context("the runtime API stopped")?;
        tokio::time::timeout(Duration::from_secs(900), rx).await.context("no answer within 900 s")?.context("no answer")
    }

    /// The most memory the process has held (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the process has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM")?;
        let kb: u64 = line.split_whitespace().nth(1).context("no value")?.parse()?;
        Ok(kb * 1024)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if let Some(first) = shared.first_poll.lock().await.take() {
        let _ = first.send(Instant::now());
    }
    let pending = shared.queue.lock().await.recv().await;
    let Some((event, answer)) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let id = format!("bench-{}", shared.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 900_000)
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    headers.insert("lambda-runtime-aws-request-id", value(id.clone()));
    headers.insert("lambda-runtime-deadline-ms", value(deadline.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-00000000-000000000000000000000000"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    shared.waiting.lock().await.insert(id, (Instant::now(), answer));
    (StatusCode::OK, headers, event.to_string())
}

async fn finish(shared: &Shared, id: &str, body: &str, error: bool) -> StatusCode {
    let Some((since, answer)) = shared.waiting.lock().await.remove(id) else { return StatusCode::NOT_FOUND };
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    let _ = answer.send(Answer { took: since.elapsed(), body, error });
    StatusCode::ACCEPTED
}

async fn response(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: String) -> StatusCode {
    finish(&shared, &id, &body, false).await
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: String) -> StatusCode {
    finish(&shared, &id, &body, true).await
}

async fn init_error(body: String) -> StatusCode {
    eprintln!("init error: {body}");
    StatusCode::ACCEPTED
}

/// p50 and p99 of some durations.
pub fn percentiles(mut took: Vec<Duration>) -> anyhow::Result<(Duration, Duration)> {
    if took.is_empty() {
        bail!("no invocations");
    }
    took.sort();
    let at = |p: f64| took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1];
    Ok((at(0.50), at(0.99)))
}
