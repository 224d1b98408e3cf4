//! The governor: every Accounting API call takes a token from its organisation's bucket and
//! one from a shard of the app's, in the store that every process shares, and gives its slot
//! back when Xero has answered (see [`xero_sync_domain::governor`] for the rules).
//!
//! A bucket is read and written by compare-and-set: four store operations per call to take
//! (the organisation's and a shard's) and two to give the slot back. Xero's headers are
//! written only when they change what the bucket says. Should the store fail, the call goes
//! ungoverned rather than not at all: Xero's own 429s still stand behind it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use chrono::Duration;
use xero_sync_domain::Error;
use xero_sync_domain::governor::{Bucket, GovernorLimits, Limit, Observed, Priority, Wait};
use xero_sync_domain::model::TenantId;
use xero_sync_domain::store::BucketStore;
use xero_sync_domain::time::Clock;
use xero_sync_xero::{RateLimits, XeroError};

/// Compare-and-set attempts on a contended bucket before giving up on it.
const RACES: u32 = 12;
/// How long a caller waits here for a slot before the wait goes back to the queue.
const SLOT_WAIT: StdDuration = StdDuration::from_secs(3);
/// Buckets are rebuilt from nothing after a day of no calls (TTL).
const KEEP: Duration = Duration::days(1);

pub struct Governor {
    store: Arc<dyn BucketStore>,
    clock: Arc<dyn Clock>,
    limits: GovernorLimits,
    /// Names this process's slots.
    owner: String,
    next: AtomicU64,
}

/// A call that may go ahead; give it back with [`Governor::finish`].
#[must_use]
pub struct Permit {
    org: String,
    shard: Option<String>,
    taker: String,
}

impl Governor {
    pub fn new(store: Arc<dyn BucketStore>, clock: Arc<dyn Clock>, limits: GovernorLimits) -> Self {
        Self { store, clock, limits, owner: uuid::Uuid::new_v4().simple().to_string(), next: AtomicU64::new(0) }
    }

    /// Waits (a few seconds at most) for the organisation and the app to allow a call.
    pub async fn acquire(&self, tenant: TenantId, priority: Priority) -> Result<Permit, Wait> {
        let taker = format!("{}-{}", self.owner, self.next.fetch_add(1, Ordering::Relaxed));
        let org = format!("org#{tenant}");
        let mut pause = StdDuration::from_millis(25);
        let mut waited = StdDuration::ZERO;
        loop {
            let wait = match self.take_org(&org, &taker, priority).await {
                Ok(()) => match self.take_app(priority).await {
                    Ok(shard) => return Ok(Permit { org, shard, taker }),
                    Err(wait) => {
                        self.give_back(&org, &taker).await;
                        wait
                    }
                },
                Err(wait) => wait,
            };
            // A slot frees up as soon as another call ends; a token only as the clock moves.
            let (here, longest) = match wait.limit {
                Limit::Concurrent => (pause, SLOT_WAIT),
                _ => (wait.after, self.limits.token_wait),
            };
            if waited + here > longest {
                return Err(wait);
            }
            tokio::time::sleep(here).await;
            waited += here;
            pause = (pause * 2).min(StdDuration::from_millis(400));
        }
    }

    /// Whether the organisation would let a call through now, without taking anything (one
    /// read): work that is sure to wait (a batch of pushes) is held before it costs anything.
    /// Calls in flight do not count here; they end within seconds.
    pub async fn ready(&self, tenant: TenantId, priority: Priority) -> Result<(), Wait> {
        let Ok((mut bucket, _)) = self.store.get_bucket(&format!("org#{tenant}")).await else { return Ok(()) };
        match bucket.take(self.limits.org, priority, None, self.clock.now(), real_ms()) {
            Err(wait) if wait.after > self.limits.token_wait => Err(wait),
            _ => Ok(()),
        }
    }

    /// Ends the call: its slot is freed and what Xero's answer said is kept.
    pub async fn finish<T>(&self, permit: Permit, result: &Result<xero_sync_xero::XeroResponse<T>, XeroError>) {
        let (limits, refused) = match result {
            Ok(response) => (Some(&response.limits), None),
            Err(XeroError::RateLimited { retry_after, problem }) => {
                (None, Limit::parse(problem).map(|l| (l, *retry_after)))
            }
            Err(_) => (None, None),
        };
        let org = Observed {
            minute_left: limits.and_then(|l| l.minute_remaining),
            refused: refused.filter(|(l, _)| *l != Limit::AppMinute),
        };
        let rate = self.limits.org;
        self.update(&permit.org, true, |bucket, now| bucket.finish(rate, Some(&permit.taker), org, now)).await;
        if let Some(shard) = &permit.shard {
            self.observe_app(shard, limits, refused).await;
        }
    }

    async fn take_org(&self, org: &str, taker: &str, priority: Priority) -> Result<(), Wait> {
        let rate = self.limits.org;
        let slot = Some((taker, self.limits.org_concurrent, self.limits.slot_lease));
        let mut verdict = Ok(());
        let real = real_ms();
        self.update(org, false, |bucket, now| {
            verdict = bucket.take(rate, priority, slot, now, real);
            verdict.is_ok()
        })
        .await;
        verdict
    }

    /// A shard at random, and a second one if the first is empty: shards drain unevenly.
    async fn take_app(&self, priority: Priority) -> Result<Option<String>, Wait> {
        let rate = self.limits.app_shard;
        let shards = self.limits.app_shards;
        let first = random_below(shards as u64) as u32;
        let mut tries = vec![first];
        if shards > 1 {
            tries.push((first + (1 + random_below(shards as u64 - 1)) as u32) % shards);
        }
        let mut last = None;
        for shard in tries {
            let name = format!("app#{shard}");
            let mut verdict = Ok(());
            let real = real_ms();
            self.update(&name, false, |bucket, now| {
                verdict = bucket.take(rate, priority, None, now, real);
                verdict.is_ok()
            })
            .await;
            match verdict {
                Ok(()) => return Ok(Some(name)),
                Err(wait) => last = Some(Wait { limit: Limit::AppMinute, ..wait }),
            }
        }
        Err(last.unwrap_or(Wait { after: StdDuration::from_secs(1), limit: Limit::AppMinute }))
    }

    async fn give_back(&self, org: &str, taker: &str) {
        let rate = self.limits.org;
        self.update(org, true, |bucket, _| bucket.give_back(rate, taker)).await;
    }

    async fn observe_app(&self, shard: &str, limits: Option<&RateLimits>, refused: Option<(Limit, StdDuration)>) {
        let rate = self.limits.app_shard;
        let shards = self.limits.app_shards;
        if let Some((Limit::AppMinute, after)) = refused {
            // Xero stopped the whole app: every shard waits.
            let observed = Observed { refused: Some((Limit::AppMinute, after)), ..Default::default() };
            for n in 0..shards {
                self.update(&format!("app#{n}"), false, |b, now| b.finish(rate, None, observed, now)).await;
            }
            return;
        }
        // Xero's count for the app, shared evenly, corrects this shard once it is lower than a
        // shard's burst: rarely, so most calls cost no write here.
        let Some(left) = limits.and_then(|l| l.app_minute_remaining) else { return };
        let observed = Observed { minute_left: Some(left / shards), ..Default::default() };
        if left / shards < rate.burst {
            self.update(shard, false, |b, now| b.finish(rate, None, observed, now)).await;
        }
    }

    /// Reads, changes and writes back one bucket until no other process wrote in between.
    /// `change` says whether there is anything to write. With `must`, a failed store is tried
    /// again for a while: a slot not given back holds up the organisation until it lapses.
    async fn update<F>(&self, name: &str, must: bool, mut change: F)
    where
        F: FnMut(&mut Bucket, chrono::DateTime<chrono::Utc>) -> bool,
    {
        let mut failures = 0u32;
        for race in 0..RACES {
            let attempt: Result<bool, Error> = async {
                let (mut bucket, version) = self.store.get_bucket(name).await?;
                let now = self.clock.now();
                if !change(&mut bucket, now) {
                    return Ok(true);
                }
                self.store.put_bucket(name, &bucket, version, now + KEEP).await
            }
            .await;
            match attempt {
                Ok(true) => return,
                Ok(false) => {
                    // Another process wrote first: read again after a moment, spread at random.
                    let jitter = 1 + random_below(5u64 << race.min(4));
                    tokio::time::sleep(StdDuration::from_millis(jitter)).await;
                }
                Err(e) => {
                    failures += 1;
                    if !must || failures >= 4 {
                        tracing::warn!(bucket = name, error = %e, "the governor's store failed; going on without it");
                        return;
                    }
                    tokio::time::sleep(StdDuration::from_millis(100 << failures)).await;
                }
            }
        }
        tracing::warn!(bucket = name, "the governor's bucket stayed contended; going on without it");
    }
}

fn real_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Enough randomness to spread retries and shards (a v4 uuid's random bits).
fn random_below(n: u64) -> u64 {
    (uuid::Uuid::new_v4().as_u128() % n.max(1) as u128) as u64
}
