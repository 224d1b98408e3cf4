//! Fault injection: error statuses, latency, "timeout after the write", answers garbled or
//! rewritten on their way back, and gates that hold requests in flight. Probabilistic rules draw
//! from a seeded RNG so runs repeat exactly.

use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Case-insensitive path pattern; `*` matches any run of characters, so
    /// `/api.xro/2.0/invoices*` covers the list and every invoice.
    pub path: String,
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    pub action: FaultAction,
    #[serde(default)]
    pub trigger: Trigger,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status instead of handling the request (nothing is applied).
    Status {
        status: u16,
        #[serde(default)]
        body: Option<Value>,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Wait this long (real time) before handling the request.
    Latency { millis: u64 },
    /// Apply the request, then hold the response back for `hang_millis` (default: the configured
    /// `timeout_hang_millis`) so the client gives up without learning the outcome.
    TimeoutAfterWrite {
        #[serde(default)]
        hang_millis: Option<u64>,
    },
    /// Apply the request, then answer 200 with a body cut short so it is not valid JSON: the
    /// answer was lost in transit after Xero applied the write. An idempotency record keeps the
    /// real answer, so a retry with the same key learns what happened.
    GarbledAfterWrite {},
    /// Apply the request, then set the value at `pointer` (a JSON Pointer such as
    /// `/Contacts/0/UpdatedDateUTC`) in the JSON answer; an answer without it is left alone.
    RewriteResponse { pointer: String, value: Value },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    #[default]
    Always,
    /// Fires on each matching call with this probability (seeded RNG).
    Rate { probability: f64 },
    /// Fires only on the n-th matching call (1-based) after the rule was added.
    NthCall { n: u64 },
    /// Fires on the first n matching calls.
    FirstCalls { n: u64 },
}

impl FaultRule {
    pub fn new(method: Option<&str>, path: &str, action: FaultAction) -> Self {
        FaultRule {
            method: method.map(str::to_string),
            path: path.into(),
            tenant_id: None,
            action,
            trigger: Trigger::Always,
        }
    }

    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    pub fn tenant(mut self, tenant_id: Uuid) -> Self {
        self.tenant_id = Some(tenant_id);
        self
    }

    fn matches(&self, method: &str, path: &str, tenant: Option<Uuid>) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.tenant_id.is_none_or(|t| Some(t) == tenant)
            && glob(&self.path.to_ascii_lowercase(), path)
    }
}

pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Holds matching requests until released, so a test can have exactly N requests in flight.
#[derive(Clone)]
pub struct Gate {
    arrived: Arc<watch::Sender<usize>>,
    released: Arc<watch::Sender<bool>>,
}

impl Gate {
    fn new() -> Self {
        Gate { arrived: Arc::new(watch::channel(0).0), released: Arc::new(watch::channel(false).0) }
    }

    /// How many requests have reached the gate so far.
    pub fn arrived(&self) -> usize {
        *self.arrived.borrow()
    }

    pub async fn wait_for_arrivals(&self, n: usize) {
        let mut rx = self.arrived.subscribe();
        // The sender lives as long as the gate, so this only ends when the count is reached.
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    pub fn release(&self) {
        self.released.send_replace(true);
    }

    pub(crate) async fn pass(&self) {
        let mut rx = self.released.subscribe();
        self.arrived.send_modify(|c| *c += 1);
        let _ = rx.wait_for(|open| *open).await;
    }
}

struct Entry {
    id: u64,
    rule: FaultRule,
    matched: u64,
    fired: u64,
}

struct Inner {
    rng: StdRng,
    next_id: u64,
    rules: Vec<Entry>,
    gates: Vec<(Option<String>, String, Gate)>,
}

/// The fault rules of one emulator; cloning shares them.
#[derive(Clone)]
pub struct Faults(Arc<Mutex<Inner>>);

#[derive(Default)]
pub(crate) struct FaultPlan {
    pub latency_ms: u64,
    pub gates: Vec<Gate>,
    pub status: Option<(u16, Option<Value>, Option<u64>)>,
    pub timeout_after_write: Option<Option<u64>>,
    pub garbled: bool,
    pub rewrites: Vec<(String, Value)>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults(Arc::new(Mutex::new(Inner {
            rng: StdRng::seed_from_u64(seed),
            next_id: 1,
            rules: vec![],
            gates: vec![],
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule and returns its id (for [`Faults::remove`]).
    pub fn add(&self, rule: FaultRule) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.rules.push(Entry { id, rule, matched: 0, fired: 0 });
        id
    }

    pub fn remove(&self, id: u64) -> bool {
        let mut inner = self.lock();
        let before = inner.rules.len();
        inner.rules.retain(|e| e.id != id);
        inner.rules.len() < before
    }

    /// Removes every rule and opens every gate.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.rules.clear();
        for (_, _, gate) in inner.gates.drain(..) {
            gate.release();
        }
    }

    /// How many calls rule `id` has acted on so far (0 for a rule not there).
    pub fn fired(&self, id: u64) -> u64 {
        self.lock().rules.iter().find(|e| e.id == id).map_or(0, |e| e.fired)
    }

    pub fn list(&self) -> Vec<(u64, FaultRule)> {
        self.lock().rules.iter().map(|e| (e.id, e.rule.clone())).collect()
    }

    /// Re-seeds the RNG used by `Trigger::Rate`.
    pub fn reseed(&self, seed: u64) {
        self.lock().rng = StdRng::seed_from_u64(seed);
    }

    pub fn error_rate(&self, method: Option<&str>, path: &str, status: u16, probability: f64) -> u64 {
        self.add(
            FaultRule::new(method, path, FaultAction::Status { status, body: None, retry_after: None })
                .trigger(Trigger::Rate { probability }),
        )
    }

    pub fn status_on_nth_call(&self, method: Option<&str>, path: &str, n: u64, status: u16) -> u64 {
        self.add(
            FaultRule::new(method, path, FaultAction::Status { status, body: None, retry_after: None })
                .trigger(Trigger::NthCall { n }),
        )
    }

    pub fn latency(&self, method: Option<&str>, path: &str, millis: u64) -> u64 {
        self.add(FaultRule::new(method, path, FaultAction::Latency { millis }))
    }

    pub fn timeout_after_write(&self, method: Option<&str>, path: &str, hang_millis: Option<u64>) -> u64 {
        self.add(
            FaultRule::new(method, path, FaultAction::TimeoutAfterWrite { hang_millis })
                .trigger(Trigger::FirstCalls { n: 1 }),
        )
    }

    /// The first matching request is applied and answered with a 200 whose body is not JSON.
    pub fn garbled_after_write(&self, method: Option<&str>, path: &str) -> u64 {
        self.add(FaultRule::new(method, path, FaultAction::GarbledAfterWrite {}).trigger(Trigger::FirstCalls { n: 1 }))
    }

    /// Every matching answer carries `value` at `pointer` until the rule is removed.
    pub fn rewrite_response(&self, method: Option<&str>, path: &str, pointer: &str, value: Value) -> u64 {
        self.add(FaultRule::new(method, path, FaultAction::RewriteResponse { pointer: pointer.into(), value }))
    }

    /// Every matching request waits at the returned gate (after it has been counted and has
    /// taken its rate-limit slot) until [`Gate::release`].
    pub fn hold(&self, method: Option<&str>, path: &str) -> Gate {
        let gate = Gate::new();
        self.lock().gates.push((method.map(str::to_string), path.to_ascii_lowercase(), gate.clone()));
        gate
    }

    pub(crate) fn plan(&self, method: &str, path: &str, tenant: Option<Uuid>) -> FaultPlan {
        let mut inner = self.lock();
        let mut plan = FaultPlan::default();
        let Inner { rng, rules, gates, .. } = &mut *inner;
        for entry in rules.iter_mut() {
            if !entry.rule.matches(method, path, tenant) {
                continue;
            }
            entry.matched += 1;
            let fire = match entry.rule.trigger {
                Trigger::Always => true,
                Trigger::Rate { probability } => {
                    rng.gen_bool(if probability.is_finite() { probability.clamp(0.0, 1.0) } else { 0.0 })
                }
                Trigger::NthCall { n } => entry.matched == n,
                Trigger::FirstCalls { n } => entry.matched <= n,
            };
            if !fire {
                continue;
            }
            entry.fired += 1;
            match &entry.rule.action {
                FaultAction::Status { status, body, retry_after } => {
                    plan.status.get_or_insert((*status, body.clone(), *retry_after));
                }
                FaultAction::Latency { millis } => plan.latency_ms += millis,
                FaultAction::TimeoutAfterWrite { hang_millis } => plan.timeout_after_write = Some(*hang_millis),
                FaultAction::GarbledAfterWrite {} => plan.garbled = true,
                FaultAction::RewriteResponse { pointer, value } => plan.rewrites.push((pointer.clone(), value.clone())),
            }
        }
        for (m, p, gate) in gates.iter() {
            if m.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method)) && glob(p, path) {
                plan.gates.push(gate.clone());
            }
        }
        plan
    }
}
