//! The server: the in-process handle and the request pipeline (its configuration is in `config`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

use crate::attachments::AttachmentView;
use crate::clock::Clock;
pub use crate::config::{CallCount, Counters, EmulatorConfig, Settings, WebhookSubscription};
use crate::faults::{FaultPlan, Faults};
use crate::http::{Reply, Req, set_header};
use crate::limits::{Limiter, LimitsConfig, Remaining};
use crate::seed::{ClientSeed, OrgSeed, Seed, UserSeed};
use crate::spec::Spec;
use crate::state::State;
use crate::webhooks::{IntentToReceiveReport, WebhookDelivery, WebhookEvent};

type CounterKey = (String, String, Option<Uuid>);

pub(crate) struct Shared {
    pub clock: Clock,
    pub jwt_key: Vec<u8>,
    pub faults: Faults,
    pub spec: Arc<Spec>,
    state: Mutex<State>,
    settings: Mutex<Settings>,
    limiter: Mutex<Limiter>,
    /// Calls, calls refused for a rate limit, and bytes of answer bodies sent.
    counters: Mutex<HashMap<CounterKey, (u64, u64, u64)>>,
    base_url: OnceLock<String>,
    shutdown: watch::Receiver<bool>,
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Handlers never leave state half-written across a panic point, so a poisoned lock is safe.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        relock(&self.state)
    }

    pub fn settings(&self) -> Settings {
        relock(&self.settings).clone()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        f(&mut relock(&self.settings))
    }

    pub fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    pub fn counters(&self) -> Counters {
        let mut calls: Vec<CallCount> = relock(&self.counters)
            .iter()
            .map(|((method, endpoint, tenant_id), (calls, rate_limited, bytes))| CallCount {
                method: method.clone(),
                endpoint: endpoint.clone(),
                tenant_id: *tenant_id,
                calls: *calls,
                rate_limited: *rate_limited,
                bytes: *bytes,
            })
            .collect();
        calls.sort_by(|a, b| (&a.endpoint, &a.method, a.tenant_id).cmp(&(&b.endpoint, &b.method, b.tenant_id)));
        Counters { calls }
    }

    pub fn reset_counters(&self) {
        relock(&self.counters).clear();
    }

    fn count(&self, method: &str, endpoint: &str, tenant: Option<Uuid>, rate_limited: bool) {
        let mut counters = relock(&self.counters);
        let entry = counters.entry((method.to_string(), endpoint.to_string(), tenant)).or_default();
        entry.0 += 1;
        if rate_limited {
            entry.1 += 1;
        }
    }

    /// Adds the size of an answer's body (what Xero bills as egress) to its call's counter.
    fn count_bytes(&self, method: &str, endpoint: &str, tenant: Option<Uuid>, response: &Response) {
        let bytes = axum::body::HttpBody::size_hint(response.body()).exact().unwrap_or(0);
        let mut counters = relock(&self.counters);
        counters.entry((method.to_string(), endpoint.to_string(), tenant)).or_default().2 += bytes;
    }

    /// Waits (real time) unless the emulator is shutting down.
    pub async fn sleep(&self, millis: u64) {
        let mut rx = self.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(millis)) => {}
            _ = rx.wait_for(|down| *down) => {}
        }
    }

    async fn apply_plan_before(&self, plan: &FaultPlan) {
        if plan.latency_ms > 0 {
            self.sleep(plan.latency_ms).await;
        }
        for gate in &plan.gates {
            let mut rx = self.shutdown.clone();
            tokio::select! {
                _ = gate.pass() => {}
                _ = rx.wait_for(|down| *down) => {}
            }
        }
    }

    async fn apply_plan_after(&self, plan: &FaultPlan, resp: Response) -> Response {
        if let Some(hang) = plan.timeout_after_write {
            let millis = hang.unwrap_or_else(|| self.settings().timeout_hang_millis);
            self.sleep(millis).await;
        }
        if plan.rewrites.is_empty() && !plan.garbled {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        let mut bytes = to_bytes(body, usize::MAX).await.map(|b| b.to_vec()).unwrap_or_default();
        if !plan.rewrites.is_empty()
            && let Ok(mut v) = serde_json::from_slice::<Value>(&bytes)
        {
            for (pointer, value) in &plan.rewrites {
                if let Some(slot) = v.pointer_mut(pointer) {
                    *slot = value.clone();
                }
            }
            bytes = v.to_string().into_bytes();
        }
        if plan.garbled {
            bytes = garble(&bytes).into_bytes();
            parts.status = StatusCode::OK;
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from(bytes))
    }
}

/// The first half of the answer, which a JSON parser cannot read: what arrives when the
/// connection drops part-way through Xero's reply.
fn garble(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = text[..cut].to_string();
    if out.trim().is_empty() || serde_json::from_str::<Value>(&out).is_ok() {
        out.push_str("{\"");
    }
    out
}

const LITERALS: &[&str] = &[
    "identity",
    "connect",
    "authorize",
    "token",
    "revocation",
    "connections",
    "api.xro",
    "2.0",
    "organisation",
    "organisations",
    "contacts",
    "invoices",
    "payments",
    "creditnotes",
    "allocations",
    "taxrates",
    "accounts",
    "items",
    "currencies",
    "trackingcategories",
    "contactgroups",
    "attachments",
];

fn endpoint_key(req: &Req) -> String {
    let segs: Vec<&str> =
        req.lower.iter().map(|s| if LITERALS.contains(&s.as_str()) { s.as_str() } else { "{id}" }).collect();
    format!("/{}", segs.join("/"))
}

fn fault_reply(status: u16, body: Option<Value>, retry_after: Option<u64>) -> Response {
    let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let body = body.unwrap_or_else(|| json!({"ErrorNumber": status, "Type": reason, "Message": reason}));
    let mut resp = Reply::json(status, body).into_response();
    if let Some(secs) = retry_after {
        set_header(&mut resp, "retry-after", secs);
    }
    resp
}

fn rate_headers(resp: &mut Response, r: Remaining) {
    set_header(resp, "x-minlimit-remaining", r.minute);
    set_header(resp, "x-daylimit-remaining", r.day);
    set_header(resp, "x-appminlimit-remaining", r.app_minute);
}

/// Gives the in-flight slot back however the request ends (including a dropped connection).
struct InFlight {
    shared: Arc<Shared>,
    tenant: Uuid,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        relock(&self.shared.limiter).release(self.tenant);
    }
}

async fn dispatch(axum::extract::State(shared): axum::extract::State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, 32 * 1024 * 1024).await else {
        return Reply::error(413, "PostDataInvalidException", "The request body is too large").into_response();
    };
    let req = Req::new(parts.method, &parts.uri, parts.headers, bytes);
    match req.lower.first().map(String::as_str) {
        Some("_emulator") => crate::control::handle(&shared, &req).await,
        Some("api.xro") => api(shared, req).await,
        _ => identity(shared, req).await,
    }
}

async fn identity(shared: Arc<Shared>, req: Req) -> Response {
    let key = endpoint_key(&req);
    shared.count(req.method.as_str(), &key, None, false);
    let plan = shared.faults.plan(req.method.as_str(), &req.lower_path(), None);
    shared.apply_plan_before(&plan).await;
    if let Some((status, body, retry)) = plan.status {
        return fault_reply(status, body, retry);
    }
    let lower: Vec<&str> = req.lower.iter().map(String::as_str).collect();
    let resp = match (&req.method, lower.as_slice()) {
        (&Method::GET, ["identity", "connect", "authorize"]) => crate::identity::authorize_get(&shared, &req),
        (&Method::POST, ["identity", "connect", "authorize"]) => crate::identity::authorize_post(&shared, &req),
        (&Method::POST, ["connect", "token"]) => crate::identity::token(&shared, &req),
        (&Method::POST, ["connect", "revocation"]) => crate::identity::revoke(&shared, &req),
        (_, ["connections"]) | (_, ["connections", _]) => crate::identity::connections(&shared, &req).into_response(),
        _ => Reply::not_found().into_response(),
    };
    shared.apply_plan_after(&plan, resp).await
}

async fn api(shared: Arc<Shared>, req: Req) -> Response {
    let key = endpoint_key(&req);
    let method = req.method.as_str().to_string();
    let checked = {
        let state = shared.lock();
        crate::identity::authenticate(&shared, &state, &req).and_then(|ctx| {
            let tenant = req.header("xero-tenant-id").and_then(|t| Uuid::parse_str(t.trim()).ok());
            match tenant {
                Some(t) if crate::identity::connected_tenants(&state, &ctx).contains(&t) => Ok((ctx, t)),
                _ => Err(Reply::problem(403, "Forbidden", "AuthenticationUnsuccessful")),
            }
        })
    };
    let (ctx, tenant) = match checked {
        Ok(ok) => ok,
        Err(reply) => {
            shared.count(&method, &key, None, false);
            return reply.into_response();
        }
    };
    let settings = shared.settings();
    let acquired = relock(&shared.limiter).acquire(&settings.limits, tenant, shared.clock.now());
    let remaining = match acquired {
        Ok(r) => r,
        Err(rejection) => {
            shared.count(&method, &key, Some(tenant), true);
            let mut resp = Reply::problem(429, "Too Many Requests", "Rate limit exceeded").into_response();
            set_header(&mut resp, "retry-after", rejection.retry_after_secs);
            set_header(&mut resp, "x-rate-limit-problem", rejection.problem);
            rate_headers(&mut resp, rejection.remaining);
            return resp;
        }
    };
    shared.count(&method, &key, Some(tenant), false);
    let _in_flight = InFlight { shared: shared.clone(), tenant };
    let plan = shared.faults.plan(&method, &req.lower_path(), Some(tenant));
    shared.apply_plan_before(&plan).await;
    let mut resp = match plan.status.clone() {
        Some((status, body, retry)) => fault_reply(status, body, retry),
        None => {
            let reply = {
                let mut state = shared.lock();
                let watch = settings.webhooks.is_some() && req.method != Method::GET;
                let before = watch.then(|| state.tenant(tenant).cloned()).flatten();
                let reply = crate::idempotency::handle(&mut state, &shared, &req, &ctx, tenant);
                if let (Some(before), Some(after)) = (before, state.tenant(tenant)) {
                    let events = crate::webhooks::changes(&before, after, &shared.base_url(), shared.clock.now());
                    state.webhook_outbox.extend(events);
                }
                reply
            };
            shared.apply_plan_after(&plan, reply.into_response()).await
        }
    };
    rate_headers(&mut resp, remaining);
    // Xero tags every API response with a correlation id for support requests.
    set_header(&mut resp, "xero-correlation-id", Uuid::new_v4());
    shared.count_bytes(&method, &key, Some(tenant), &resp);
    resp
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Emulator {
    /// Fails when Xero's OpenAPI file cannot be read (the error names the path and
    /// `XERO_OPENAPI_DIR`) or the port cannot be bound.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        let dir = crate::spec::spec_dir(config.openapi_dir.as_deref());
        let spec = tokio::task::spawn_blocking(move || Spec::load(&dir)).await.map_err(std::io::Error::other)??;
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.host, config.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, shutdown) = watch::channel(false);
        let mut key = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
        let clock = config.start_time.map(Clock::new).unwrap_or_else(Clock::starting_now);
        let shared = Arc::new(Shared {
            faults: Faults::new(config.rng_seed),
            spec,
            jwt_key: key,
            state: Mutex::new(State::default()),
            settings: Mutex::new(config.settings),
            limiter: Mutex::new(Limiter::default()),
            counters: Mutex::new(HashMap::new()),
            base_url: OnceLock::new(),
            shutdown: shutdown.clone(),
            clock,
        });
        let host = match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let _ = shared.base_url.set(format!("http://{host}:{}", addr.port()));
        if let Some(seed) = config.seed {
            let now = shared.clock.now();
            crate::seed::apply(&mut shared.lock(), seed, now).map_err(std::io::Error::other)?;
        }
        let app = Router::new().fallback(dispatch).with_state(shared.clone());
        let mut down = shutdown;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = down.wait_for(|d| *d).await;
                })
                .await;
        });
        Ok(Emulator { shared, addr, stop })
    }

    /// `http://127.0.0.1:PORT`: the identity base, the API base and the authorize host.
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/identity/connect/authorize", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/connect/token", self.base_url())
    }

    pub fn api_url(&self) -> String {
        format!("{}/api.xro/2.0", self.base_url())
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    pub fn reset_counters(&self) {
        self.shared.reset_counters()
    }

    pub fn settings(&self) -> Settings {
        self.shared.settings()
    }

    pub fn update_settings(&self, f: impl FnOnce(&mut Settings)) {
        self.shared.update_settings(f)
    }

    pub fn set_auto_approve(&self, on: bool, only_tenants: Option<Vec<Uuid>>) {
        self.update_settings(|s| {
            s.auto_approve = on;
            s.approve_tenants = only_tenants;
        })
    }

    pub fn set_signed_in_user(&self, email: Option<&str>) {
        self.update_settings(|s| s.signed_in_user = email.map(str::to_string))
    }

    pub fn set_limits(&self, limits: LimitsConfig) {
        self.update_settings(|s| s.limits = limits)
    }

    pub fn seed(&self, seed: Seed) -> Result<(), String> {
        let now = self.shared.clock.now();
        crate::seed::apply(&mut self.shared.lock(), seed, now)
    }

    pub fn seed_org(&self, org: OrgSeed) -> Result<(), String> {
        self.seed(Seed { organisations: vec![org], ..Seed::default() })
    }

    pub fn add_user(&self, user: UserSeed) -> Result<(), String> {
        self.seed(Seed { users: vec![user], ..Seed::default() })
    }

    pub fn add_client(&self, client: ClientSeed) -> Result<(), String> {
        self.seed(Seed { clients: vec![client], ..Seed::default() })
    }

    /// One resource collection of a tenant in Xero's JSON shape: `invoices`, `contacts`,
    /// `payments`, `creditnotes`, `accounts`, `taxrates`, `items`, `currencies`,
    /// `trackingcategories` or `organisation`. `None` for an unknown tenant or resource.
    pub fn objects(&self, tenant: Uuid, resource: &str) -> Option<Vec<Value>> {
        let state = self.shared.lock();
        crate::accounting::dump(&state, tenant, resource, self.shared.clock.now())
    }

    pub fn invoices(&self, tenant: Uuid) -> Vec<Value> {
        self.objects(tenant, "invoices").unwrap_or_default()
    }

    pub fn contacts(&self, tenant: Uuid) -> Vec<Value> {
        self.objects(tenant, "contacts").unwrap_or_default()
    }

    pub fn payments(&self, tenant: Uuid) -> Vec<Value> {
        self.objects(tenant, "payments").unwrap_or_default()
    }

    pub fn credit_notes(&self, tenant: Uuid) -> Vec<Value> {
        self.objects(tenant, "creditnotes").unwrap_or_default()
    }

    /// The files attached to an invoice or a credit note, by file name; none for an unknown
    /// tenant or document.
    pub fn attachments(&self, tenant: Uuid, document_id: Uuid) -> Vec<AttachmentView> {
        crate::attachments::views(&self.shared.lock(), tenant, document_id)
    }

    /// Until the emulator clock reaches `visible_at`, the object `id` of `resource`
    /// (`contacts`, `invoices`, `payments` or `creditnotes`) is left out of the API's lists and
    /// GET-by-id of that resource, with or without If-Modified-Since, while it keeps its own
    /// UpdatedDateUTC: Xero can make a record visible to queries after the time it carries.
    /// [`Emulator::objects`] still shows it.
    pub fn delay_visibility(
        &self,
        tenant: Uuid,
        resource: &str,
        id: Uuid,
        visible_at: DateTime<Utc>,
    ) -> Result<(), String> {
        let now = self.shared.clock.now();
        crate::accounting::delay_visibility(&mut self.shared.lock(), tenant, resource, id, visible_at, now)
    }

    /// Every connection of every client and user, in the identity API's shape plus `clientId`.
    pub fn connections(&self) -> Vec<Value> {
        crate::control::connections_dump(&self.shared.lock())
    }

    pub async fn send_webhook(
        &self,
        url: &str,
        key: &str,
        events: Vec<WebhookEvent>,
    ) -> Result<WebhookDelivery, String> {
        crate::webhooks::send(url, key, events, true).await
    }

    pub async fn intent_to_receive(&self, url: &str, key: &str) -> Result<IntentToReceiveReport, String> {
        crate::webhooks::intent_to_receive(url, key).await
    }

    /// Delivers the webhook events that changes made since the last delivery produced (and
    /// any the receiver refused before), in one signed batch, as Xero does; Xero batches and
    /// delays on its own schedule, so tests and `./dev run` say when. `None` when nothing was
    /// pending or [`Settings::webhooks`] is not set.
    pub async fn deliver_webhooks(&self) -> Result<Option<WebhookDelivery>, String> {
        crate::webhooks::deliver_pending(&self.shared).await
    }

    /// How many webhook events wait to be delivered.
    pub fn pending_webhooks(&self) -> usize {
        self.shared.lock().webhook_outbox.len()
    }

    /// A webhook event about an object of this emulator, with its `resourceUrl` on this host.
    pub fn webhook_event(&self, tenant: Uuid, category: &str, event_type: &str, resource_id: Uuid) -> WebhookEvent {
        WebhookEvent::new(&self.base_url(), tenant, category, event_type, resource_id, self.shared.clock.now())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
