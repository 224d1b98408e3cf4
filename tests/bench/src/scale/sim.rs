//! A whole stack's day in simulated time. The parts that decide the figures are the real ones:
//! the fan-out's schedule (`scheduled_import::schedule`), the governor (`xero_sync_runtime`'s,
//! over an in-memory bucket store), and Xero's limits (the emulator's limiter). What is
//! modelled is what costs no decision: each Lambda is a task, the queues are SQS with delays
//! and batching windows, a Xero call takes a few hundred ms, and the work of an import run is
//! the number of calls the real import made against the emulator (see `connection.rs`).
//!
//! The clock is tokio's, paused: it jumps to the next timer whenever every task waits, so a
//! day takes as long as the calls take to count, not a day.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use scheduled_import::Cadence;
use scheduled_import::schedule::{due_in, offset, window};
use tokio::time::Instant;
use xero_emulator::{Limiter, LimitsConfig};
use xero_sync_domain::Error;
use xero_sync_domain::governor::{Bucket, GovernorLimits, Limit, Priority, Wait};
use xero_sync_domain::model::TenantId;
use xero_sync_domain::store::BucketStore;
use xero_sync_domain::time::Clock;
use xero_sync_runtime::governor::Governor;
use xero_sync_xero::{RateLimits, XeroError, XeroResponse};

use super::queue::SimQueue;

/// The stack as `infra/template.yaml` deploys it.
pub const FANOUT_EVERY: Duration = Duration::from_secs(15 * 60); // FanoutEveryMinutes
pub const LAMBDA_CONCURRENCY: usize = 20; // MaximumConcurrency of each queue's event source
const PUSH_BATCH: usize = 50;
const PUSH_WINDOW: Duration = Duration::from_secs(2);
const PUSH_LOTS_AT_ONCE: usize = 4; // invoice-push's CONCURRENCY
const CHANGES_BATCH: usize = 10;
const CHANGES_WINDOW: Duration = Duration::from_secs(1);
/// Xero's answer time, drawn evenly from this range ("a few hundred ms" in production).
const XERO_MS: (u64, u64) = (150, 650);
/// Our own AWS work around the calls (DynamoDB, EventBridge, SQS) per message or lot.
const AWS_WORK: Duration = Duration::from_millis(60);
/// One DynamoDB read or write of a governor bucket.
const STORE_MS: Duration = Duration::from_millis(4);
/// How long Xero takes to send the webhook for a change (outside our reach; not measured).
const XERO_WEBHOOK_DELAY: Duration = Duration::from_secs(5);
/// The import's `ImportPolicy::max_wait`: a shorter Retry-After is waited out in the Lambda.
const IMPORT_MAX_WAIT: Duration = Duration::from_secs(10);
const DAY: Duration = Duration::from_secs(86_400);

/// Xero calls one scheduled import run makes for an idle organisation, measured on the stack.
#[derive(Debug, Clone, Copy)]
pub struct RunPlan {
    pub incremental: u32,
    /// Added once a day, when the reference data is read.
    pub reference: u32,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub connections: u32,
    pub import_concurrency: usize,
    pub plan: RunPlan,
    /// Xero webhooks (a payment on an invoice) per connection per day.
    pub changes_per_day: f64,
    /// Invoices pushed per connection per day.
    pub pushes_per_day: f64,
    pub length: Duration,
    /// Whether the scheduled import runs at all (not for the quiet stack's push figures).
    pub imports: bool,
    /// The first fan-out follows an outage longer than a period, so that every organisation is
    /// due at once: the largest import wave the schedule can make.
    pub wave: bool,
    /// Whether calls go through the governor (off only to show what it prevents).
    pub governed: bool,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub calls: BTreeMap<&'static str, u64>,
    /// Most calls Xero counted for the app in any 60 seconds.
    pub peak_app_minute: u32,
    /// Xero's 429s by work and problem.
    pub refused: BTreeMap<(&'static str, &'static str), u64>,
    /// Messages held (sent back delayed) by work and the limit they waited for.
    pub held: BTreeMap<(&'static str, &'static str), u64>,
    /// Webhook received → platform event published.
    pub change_latency: Vec<Duration>,
    /// Invoice received → answered by Xero, with when it was received.
    pub push_latency: Vec<(Duration, Duration)>,
    /// When the last import of the first fan-out finished.
    pub wave_done: Option<Duration>,
    /// Imports due by the end and not finished then, and how overdue the oldest is.
    pub backlog: usize,
    pub oldest_backlog: Duration,
}

const WORK: [&str; 3] = ["import", "change", "push"];

#[derive(Default)]
struct Buckets(Mutex<HashMap<String, (Bucket, u64)>>);

#[async_trait]
impl BucketStore for Buckets {
    async fn get_bucket(&self, name: &str) -> Result<(Bucket, u64), Error> {
        tokio::time::sleep(STORE_MS).await;
        Ok(self.0.lock().unwrap().get(name).cloned().unwrap_or_default())
    }

    async fn put_bucket(&self, name: &str, bucket: &Bucket, version: u64, _: DateTime<Utc>) -> Result<bool, Error> {
        tokio::time::sleep(STORE_MS).await;
        let mut all = self.0.lock().unwrap();
        let now = all.get(name).map_or(0, |(_, v)| *v);
        if now != version {
            return Ok(false);
        }
        all.insert(name.to_owned(), (bucket.clone(), version + 1));
        Ok(true)
    }
}

struct SimClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + Instant::now().duration_since(self.start)
    }
}

/// SplitMix64: a seeded stream, so that a run's workload is the same every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Import {
    org: usize,
    due: Duration,
    first_wave: bool,
}

struct Change {
    org: usize,
    at: Duration,
    /// Our own push coming back: read and recognised, never published.
    echo: bool,
}

/// Why a call did not go ahead.
enum Stop {
    /// The governor said wait.
    Governed(Wait),
    /// Xero answered 429.
    Refused(Wait),
}

impl Stop {
    fn wait(&self) -> Wait {
        match self {
            Stop::Governed(wait) | Stop::Refused(wait) => *wait,
        }
    }
}

struct Push {
    org: usize,
    at: Duration,
}

struct Sim {
    start: Instant,
    clock: Arc<SimClock>,
    governor: Governor,
    xero: Mutex<Limiter>,
    limits: LimitsConfig,
    tenants: Vec<TenantId>,
    latency: Mutex<Rng>,
    plan: RunPlan,
    governed: bool,
    /// When each organisation's reference data is next due.
    reference_due: Mutex<Vec<Duration>>,
    out: Mutex<Outcome>,
    wave_left: AtomicU64,
    imports: SimQueue<Import>,
    changes: SimQueue<Change>,
    pushes: SimQueue<Push>,
}

impl Sim {
    fn elapsed(&self) -> Duration {
        Instant::now().duration_since(self.start)
    }

    /// One Xero call through the governor, answered by the emulator's limiter.
    async fn call(&self, org: usize, priority: Priority, work: &'static str) -> Result<(), Stop> {
        let tenant = self.tenants[org];
        let permit = match self.governed {
            true => Some(self.governor.acquire(tenant, priority).await.map_err(Stop::Governed)?),
            false => None,
        };
        let took = {
            let mut rng = self.latency.lock().unwrap();
            Duration::from_millis(XERO_MS.0 + rng.below(XERO_MS.1 - XERO_MS.0))
        };
        let verdict = self.xero.lock().unwrap().acquire(&self.limits, tenant.0, self.clock.now());
        match verdict {
            Ok(left) => {
                {
                    let mut out = self.out.lock().unwrap();
                    *out.calls.entry(work).or_default() += 1;
                    out.peak_app_minute = out.peak_app_minute.max(self.limits.app_per_minute - left.app_minute);
                }
                tokio::time::sleep(took).await;
                self.xero.lock().unwrap().release(tenant.0);
                let limits = RateLimits {
                    minute_remaining: Some(left.minute),
                    day_remaining: Some(left.day),
                    app_minute_remaining: Some(left.app_minute),
                };
                if let Some(permit) = permit {
                    self.governor.finish(permit, &Ok(XeroResponse { body: (), limits, bytes: 0 })).await;
                }
                Ok(())
            }
            Err(refusal) => {
                *self.out.lock().unwrap().refused.entry((work, refusal.problem)).or_default() += 1;
                let after = Duration::from_secs(refusal.retry_after_secs.max(1) as u64);
                let answer: Result<XeroResponse<()>, XeroError> =
                    Err(XeroError::RateLimited { retry_after: after, problem: refusal.problem.into() });
                if let Some(permit) = permit {
                    self.governor.finish(permit, &answer).await;
                }
                Err(Stop::Refused(Wait { after, limit: Limit::parse(refusal.problem).unwrap_or(Limit::Minute) }))
            }
        }
    }

    /// How long a held message is delayed: whole seconds, rounded up, as `queue::respond` does.
    fn hold(&self, work: &'static str, wait: Wait, messages: usize) -> Duration {
        *self.out.lock().unwrap().held.entry((work, wait.limit.as_str())).or_default() += messages as u64;
        Duration::from_secs(wait.after.as_millis().div_ceil(1000).max(1) as u64)
    }

    async fn import_worker(self: Arc<Self>) {
        loop {
            let Some(run) = self.imports.receive(1, Duration::ZERO).await.pop() else { continue };
            tokio::time::sleep(AWS_WORK).await;
            // Reference data is due a day after it was last read, which only a finished run records.
            let reference = self.reference_due.lock().unwrap()[run.org] <= self.elapsed();
            let mut left = self.plan.incremental + if reference { self.plan.reference } else { 0 };
            let mut held = None;
            while left > 0 {
                match self.call(run.org, Priority::Import, "import").await {
                    Ok(()) => left -= 1,
                    // The import waits out a short Retry-After itself (ImportPolicy::max_wait).
                    Err(Stop::Refused(wait)) if wait.after <= IMPORT_MAX_WAIT => tokio::time::sleep(wait.after).await,
                    Err(stop) => {
                        held = Some(self.hold("import", stop.wait(), 1));
                        break;
                    }
                }
            }
            if let Some(delay) = held {
                // A held run starts again from the top: each resource is asked again from its
                // cursor, and the reference lists again whole if they were not finished.
                self.imports.send(delay, run);
                continue;
            }
            if reference {
                self.reference_due.lock().unwrap()[run.org] = self.elapsed() + DAY;
            }
            if run.first_wave && self.wave_left.fetch_sub(1, Ordering::Relaxed) == 1 {
                self.out.lock().unwrap().wave_done = Some(self.elapsed());
            }
        }
    }

    async fn changes_worker(self: Arc<Self>) {
        loop {
            // Each message is one organisation's delivery, read by `IDs=` in one call.
            for change in self.changes.receive(CHANGES_BATCH, CHANGES_WINDOW).await {
                tokio::time::sleep(AWS_WORK).await;
                match self.call(change.org, Priority::Import, "change").await {
                    Ok(()) if change.echo => {}
                    Ok(()) => {
                        tokio::time::sleep(AWS_WORK).await; // published to EventBridge
                        let took = self.elapsed() - change.at;
                        self.out.lock().unwrap().change_latency.push(took);
                    }
                    Err(stop) => {
                        let delay = self.hold("change", stop.wait(), 1);
                        self.changes.send(delay, change);
                    }
                }
            }
        }
    }

    async fn push_worker(self: Arc<Self>) {
        loop {
            let batch = self.pushes.receive(PUSH_BATCH, PUSH_WINDOW).await;
            let mut lots: BTreeMap<usize, Vec<Push>> = BTreeMap::new();
            for push in batch {
                lots.entry(push.org).or_default().push(push);
            }
            let lots: Vec<Vec<Push>> = lots.into_values().collect();
            for wave in lots.chunks(PUSH_LOTS_AT_ONCE) {
                let pushed = wave.iter().map(|lot| self.push_lot(lot));
                for (lot, result) in wave.iter().zip(futures::future::join_all(pushed).await) {
                    let now = self.elapsed();
                    match result {
                        Ok(()) => {
                            self.out.lock().unwrap().push_latency.extend(lot.iter().map(|p| (p.at, now - p.at)));
                            // Xero tells us of our own write by webhook, a little later.
                            let echo = Change { org: lot[0].org, at: now, echo: true };
                            self.changes.send(XERO_WEBHOOK_DELAY, echo);
                        }
                        Err(delay) => {
                            for push in lot {
                                self.pushes.send(delay, Push { org: push.org, at: push.at });
                            }
                        }
                    }
                }
            }
        }
    }

    /// One organisation's invoices of a batch, known customers: one call for up to 50.
    async fn push_lot(&self, lot: &[Push]) -> Result<(), Duration> {
        let tenant = self.tenants[lot[0].org];
        if let Err(wait) = self.governor.ready(tenant, Priority::Push).await
            && self.governed
        {
            return Err(self.hold("push", wait, lot.len()));
        }
        tokio::time::sleep(AWS_WORK).await;
        self.call(lot[0].org, Priority::Push, "push").await.map_err(|stop| self.hold("push", stop.wait(), lot.len()))
    }
}

/// Arrival instants of `per_day` events per connection over `length`, each with its organisation.
fn arrivals(rng: &mut Rng, connections: u32, per_day: f64, length: Duration) -> Vec<(Duration, usize)> {
    let count = (connections as f64 * per_day * length.as_secs_f64() / 86_400.0).round() as u64;
    let mut out: Vec<(Duration, usize)> = (0..count)
        .map(|_| (Duration::from_millis(rng.below(length.as_millis() as u64)), rng.below(connections as u64) as usize))
        .collect();
    out.sort();
    out
}

/// Runs one workload to its end in simulated time (call inside a runtime with paused time).
pub async fn run(load: Workload) -> Outcome {
    let start = Instant::now();
    let base: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().expect("a valid instant");
    let clock = Arc::new(SimClock { base, start });
    let xero_timeout = Duration::from_secs(30);
    let governor = Governor::new(
        Arc::new(Buckets::default()),
        clock.clone(),
        GovernorLimits::xeros(chrono::Duration::from_std(xero_timeout + Duration::from_secs(10)).expect("seconds")),
    );
    let mut rng = Rng(load.seed);
    let tenants: Vec<TenantId> =
        (0..load.connections).map(|_| TenantId(uuid::Uuid::from_u64_pair(rng.next(), rng.next()))).collect();
    // After the outage every organisation's reference data is due; otherwise the last read fell
    // somewhere in the day before.
    let reference_due = (0..load.connections)
        .map(|_| if load.wave { Duration::ZERO } else { Duration::from_millis(rng.below(86_400_000)) })
        .collect();
    let sim = Arc::new(Sim {
        start,
        clock: clock.clone(),
        governor,
        xero: Mutex::new(Limiter::default()),
        limits: LimitsConfig::default(),
        tenants,
        latency: Mutex::new(Rng(load.seed ^ 0xA5A5)),
        plan: load.plan,
        governed: load.governed,
        reference_due: Mutex::new(reference_due),
        out: Mutex::new(Outcome::default()),
        wave_left: AtomicU64::new(0),
        imports: SimQueue::new(start),
        changes: SimQueue::new(start),
        pushes: SimQueue::new(start),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..load.import_concurrency {
        tasks.spawn(sim.clone().import_worker());
    }
    for _ in 0..LAMBDA_CONCURRENCY {
        tasks.spawn(sim.clone().changes_worker());
        tasks.spawn(sim.clone().push_worker());
    }
    if load.imports {
        tasks.spawn(fan_out(sim.clone(), load.clone()));
    }
    for (work, per_day) in [("change", load.changes_per_day), ("push", load.pushes_per_day)] {
        let due = arrivals(&mut rng, load.connections, per_day, load.length);
        let sim = sim.clone();
        tasks.spawn(async move {
            for (at, org) in due {
                tokio::time::sleep_until(start + at).await;
                match work {
                    "change" => sim.changes.send(Duration::ZERO, Change { org, at, echo: false }),
                    _ => sim.pushes.send(Duration::ZERO, Push { org, at }),
                }
            }
        });
    }
    tokio::time::sleep(load.length).await;
    tasks.abort_all();
    let mut out = std::mem::take(&mut *sim.out.lock().unwrap());
    let end = sim.elapsed();
    let pending: Vec<Duration> = sim.imports.drain().into_iter().map(|run| run.due).filter(|due| *due <= end).collect();
    out.backlog = pending.len();
    out.oldest_backlog = pending.iter().map(|due| end.saturating_sub(*due)).max().unwrap_or_default();
    out
}

/// The fan-out: every 15 minutes, each organisation due in the window is sent, delayed to its
/// instant, exactly as `scheduled_import`'s fan-out computes it.
async fn fan_out(sim: Arc<Sim>, load: Workload) {
    let cadence = Cadence::with_webhooks();
    let every = chrono::Duration::from_std(FANOUT_EVERY).expect("minutes");
    let offsets: Vec<chrono::Duration> = sim.tenants.iter().map(|t| offset(*t, cadence.period)).collect();
    let now = sim.clock.now();
    // An outage of a day: the window reaches one period back, so every organisation is due now.
    let mut last_end = load.wave.then(|| now - chrono::Duration::days(1));
    let mut first = true;
    loop {
        let now = sim.clock.now();
        let (from, to) = window(last_end, now, every, cadence.period);
        for (org, off) in offsets.iter().enumerate() {
            if let Some(due) = due_in(*off, cadence.period, from, to) {
                let delay = (due - now).to_std().unwrap_or_default();
                let first_wave = first && load.wave && due <= now;
                if first_wave {
                    sim.wave_left.fetch_add(1, Ordering::Relaxed);
                }
                let due = sim.elapsed() + delay;
                sim.imports.send(delay, Import { org, due, first_wave });
            }
        }
        last_end = Some(to);
        first = false;
        tokio::time::sleep(FANOUT_EVERY).await;
    }
}

impl Outcome {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    pub fn calls_of(&self, work: &str) -> u64 {
        self.calls.get(work).copied().unwrap_or(0)
    }

    pub fn describe_refused(&self) -> String {
        describe(&self.refused)
    }

    pub fn describe_held(&self) -> String {
        describe(&self.held)
    }
}

fn describe(counts: &BTreeMap<(&'static str, &'static str), u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    WORK.iter()
        .flat_map(|work| counts.iter().filter(move |((w, _), _)| w == work))
        .map(|((w, limit), n)| format!("{w} {limit} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
