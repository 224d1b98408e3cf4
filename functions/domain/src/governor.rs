//! The rules that keep Xero calls inside Xero's limits, shared by every process through the
//! store: each organisation's 60 a minute, 5 at once and its day budget, and the app's 10,000
//! a minute across all organisations.
//!
//! Each limit is a token bucket: `burst` tokens at most, refilled at `per_minute`. Any 60
//! seconds then hold at most `burst + per_minute` takes, whatever window Xero counts in, so
//! the sum is set to the limit (per organisation) or under it (the app, which aims at 90 %).
//! Pushes go first: an import leaves `reserve` calls and one of the five slots to them (and
//! the import itself stops short of the day's last 500 calls).
//! Xero's own headers correct the count (a bucket never holds more than Xero says is left),
//! and a 429 for the minute or the day stops the bucket until Xero's `Retry-After`.
//!
//! No header reports calls in flight, so each call holds a slot, named by its taker, until it
//! ends; a slot whose holder died lapses after `slot_lease` of real time.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Who is calling: pushes (and people waiting on a page) before the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Push,
    Import,
}

/// Which of Xero's limits a wait is for, in `X-Rate-Limit-Problem`'s words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The organisation's calls a minute.
    Minute,
    /// The organisation's calls in flight.
    Concurrent,
    /// The organisation's day budget.
    Day,
    /// The app's calls a minute across organisations.
    AppMinute,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Concurrent => "concurrent",
            Self::Day => "day",
            Self::AppMinute => "appminute",
        }
    }

    /// Xero's `X-Rate-Limit-Problem` value; `None` for one we do not know.
    pub fn parse(problem: &str) -> Option<Self> {
        match problem.trim().to_ascii_lowercase().as_str() {
            "minute" => Some(Self::Minute),
            "concurrent" => Some(Self::Concurrent),
            "day" => Some(Self::Day),
            "appminute" => Some(Self::AppMinute),
            _ => None,
        }
    }
}

/// A call that must wait: for how long, and for which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub after: std::time::Duration,
    pub limit: Limit,
}

/// One bucket's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
    /// Tokens an import leaves for pushes.
    pub reserve: u32,
    /// Counted as Xero counts an organisation's minute: at most `per_minute` calls in any 60
    /// seconds, by a log of the calls' times (no burst then). The app's shards are token
    /// buckets instead: a log of thousands of calls is too large to rewrite on every call.
    pub rolling: bool,
    /// How far under Xero's own limit `per_minute` is kept (what Xero's `Remaining` counts from).
    pub margin: u32,
}

/// Xero's limits as this app meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GovernorLimits {
    pub org: Rate,
    /// Calls in flight per organisation; an import leaves one slot to pushes.
    pub org_concurrent: u32,
    /// One shard of the app-wide bucket; there are `app_shards` of them.
    pub app_shard: Rate,
    pub app_shards: u32,
    /// How long a slot outlives a holder that never gave it back.
    pub slot_lease: Duration,
    /// How long a caller waits in-process for a token before the wait goes back to the queue
    /// (a slot, freed as soon as another call ends, is waited for a few seconds regardless).
    pub token_wait: std::time::Duration,
}

impl GovernorLimits {
    /// For an organisation limit of `org_per_minute`, `org_concurrent` calls at once, and an
    /// app-wide limit of `app_per_minute`, of which 90 % is used.
    pub fn new(org_per_minute: u32, org_concurrent: u32, app_per_minute: u32, slot_lease: Duration) -> Self {
        // Xero counts a call when it arrives, a little after we send it: keep a call or two clear.
        let org_cap = org_per_minute.saturating_sub((org_per_minute / 30).max(1)).max(1);
        let app_target = (app_per_minute as u64 * 9 / 10).max(1) as u32;
        // A shard must hold a few tokens to be of use; 500 a minute each means 16 at 10,000.
        let app_shards = (app_target / 500).clamp(1, 16);
        let shard_target = app_target / app_shards;
        let shard_burst = (shard_target / 9).max(1);
        Self {
            org: Rate {
                burst: 0,
                per_minute: org_cap,
                reserve: (org_cap / 10).min(org_cap - 1),
                rolling: true,
                margin: org_per_minute - org_cap,
            },
            org_concurrent: org_concurrent.max(1),
            app_shard: Rate {
                burst: shard_burst,
                per_minute: shard_target.saturating_sub(shard_burst).max(1),
                reserve: shard_burst / 4,
                rolling: false,
                margin: 0,
            },
            app_shards,
            slot_lease,
            token_wait: std::time::Duration::from_secs(2),
        }
    }

    /// Xero's published limits: 60 a minute and 5 at once per organisation, 10,000 a minute
    /// for the app.
    pub fn xeros(slot_lease: Duration) -> Self {
        Self::new(60, 5, 10_000, slot_lease)
    }
}

/// One bucket as stored: tokens in thousandths so that a refill of part of a token is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Thousandths of a token, at `at`.
    milli: i64,
    /// When `milli` was last brought up to date (the app's clock, in ms).
    at: i64,
    /// Xero asked us to stop until then (ms), for `blocked_for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked_for: Option<String>,
    /// Calls in flight: taker → when the slot lapses (real time, in ms) and when its call was
    /// counted (the app's clock, in ms).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    slots: BTreeMap<String, (i64, i64)>,
    /// Whether this bucket was ever written: a new bucket starts full.
    #[serde(default)]
    started: bool,
    /// A rolling bucket's calls of the last minute (the app's clock, in ms).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    calls: Vec<i64>,
}

const MINUTE_MS: i64 = 60_000;

/// What a finished call tells the bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observed {
    /// `X-MinLimit-Remaining` (or `X-AppMinLimit-Remaining` for the app's shards).
    pub minute_left: Option<u32>,
    /// A 429 for one of the limits, with its `Retry-After`.
    pub refused: Option<(Limit, std::time::Duration)>,
}

impl Bucket {
    /// Takes one token (and, with `slot`, a slot in flight), or says how long to wait.
    /// `now` is the app's clock; `real_ms` the wall clock, which slot leases are kept in.
    pub fn take(
        &mut self,
        rate: Rate,
        priority: Priority,
        slot: Option<(&str, u32, Duration)>,
        now: DateTime<Utc>,
        real_ms: i64,
    ) -> Result<(), Wait> {
        let now_ms = now.timestamp_millis();
        self.refill(rate, now_ms);
        if let Some(until) = self.blocked_until.filter(|until| *until > now_ms) {
            let limit = self.blocked_for.as_deref().and_then(Limit::parse).unwrap_or(Limit::Minute);
            // Xero stopped the whole organisation for the minute; pushes too, it would refuse them.
            return Err(Wait { after: ms(until - now_ms), limit });
        }
        if let Some((taker, concurrent, lease)) = slot {
            self.slots.retain(|_, (lapses, _)| *lapses > real_ms);
            let allowed = match priority {
                Priority::Push => concurrent,
                Priority::Import => concurrent.saturating_sub(1).max(1),
            };
            if self.slots.len() as u32 >= allowed {
                return Err(Wait { after: std::time::Duration::from_millis(500), limit: Limit::Concurrent });
            }
            self.take_token(rate, priority, now_ms)?;
            self.slots.insert(taker.to_owned(), (real_ms + lease.num_milliseconds(), now_ms));
            return Ok(());
        }
        self.take_token(rate, priority, now_ms)
    }

    fn take_token(&mut self, rate: Rate, priority: Priority, now_ms: i64) -> Result<(), Wait> {
        let keep = match priority {
            Priority::Push => 0,
            Priority::Import => rate.reserve as i64 * 1000,
        };
        if rate.rolling {
            let allowed = (rate.per_minute as i64 * 1000 - keep) / 1000;
            if self.calls.len() as i64 >= allowed.max(0) {
                // The wait until enough of the minute's calls have aged out.
                let over = self.calls.len() - allowed.max(0) as usize;
                let oldest = self.calls.get(over).copied().unwrap_or(now_ms);
                return Err(Wait { after: ms((oldest + MINUTE_MS - now_ms).max(1)), limit: Limit::Minute });
            }
            self.calls.push(now_ms);
            return Ok(());
        }
        let need = 1000 + keep;
        if self.milli < need {
            let per_ms = rate.per_minute as f64 * 1000.0 / 60_000.0;
            let wait = ((need - self.milli) as f64 / per_ms).ceil() as i64;
            return Err(Wait { after: ms(wait.max(1)), limit: Limit::Minute });
        }
        self.milli -= 1000;
        Ok(())
    }

    /// Gives back the slot and the call `taker` took for a call that was never made; `false`
    /// when it holds none (never taken, or given back already), so nothing is given twice.
    pub fn give_back(&mut self, rate: Rate, taker: &str) -> bool {
        let Some((_, taken_at)) = self.slots.remove(taker) else { return false };
        if rate.rolling {
            if let Some(at) = self.calls.iter().position(|at| *at == taken_at) {
                self.calls.remove(at);
            }
        } else {
            self.milli = (self.milli + 1000).min(rate.burst as i64 * 1000);
        }
        true
    }

    /// Ends `taker`'s call (its slot is freed), with what Xero's answer said; `false` when
    /// nothing changed, so nothing need be written.
    pub fn finish(&mut self, rate: Rate, taker: Option<&str>, observed: Observed, now: DateTime<Utc>) -> bool {
        let freed = taker.is_some_and(|taker| self.slots.remove(taker).is_some());
        let news = self.would_change(rate, observed, now);
        if news {
            self.observe(rate, observed, now);
        }
        freed || news
    }

    /// Xero's view wins where it is lower than ours: its count includes what we did not count.
    pub fn observe(&mut self, rate: Rate, observed: Observed, now: DateTime<Utc>) {
        let now_ms = now.timestamp_millis();
        self.refill(rate, now_ms);
        if let Some(left) = observed.minute_left {
            if rate.rolling {
                // Calls Xero counted that we did not: as many as it says we have fewer left
                // (Xero counts down from its limit, ours is `margin` lower).
                let ours = (rate.per_minute as usize).saturating_sub(self.calls.len());
                let theirs = left.saturating_sub(rate.margin) as usize;
                for _ in 0..ours.saturating_sub(theirs) {
                    self.calls.push(now_ms);
                }
            } else {
                self.milli = self.milli.min(left as i64 * 1000);
            }
        }
        if let Some((limit, after)) = observed.refused {
            let until = now_ms.saturating_add(after.as_millis().min(i64::MAX as u128) as i64);
            if limit != Limit::Concurrent && self.blocked_until.is_none_or(|b| b < until) {
                self.blocked_until = Some(until);
                self.blocked_for = Some(limit.as_str().to_owned());
                self.milli = 0;
            }
        }
    }

    /// Whether writing `observed` would change anything: most answers do not, and cost no write.
    pub fn would_change(&self, rate: Rate, observed: Observed, now: DateTime<Utc>) -> bool {
        let before = self.refilled(rate, now);
        let mut after = before.clone();
        after.observe(rate, observed, now);
        after.milli != before.milli
            || after.calls.len() != before.calls.len()
            || after.blocked_until != before.blocked_until
    }

    fn refilled(&self, rate: Rate, now: DateTime<Utc>) -> Bucket {
        let mut b = self.clone();
        b.refill(rate, now.timestamp_millis());
        b
    }

    fn refill(&mut self, rate: Rate, now_ms: i64) {
        self.calls.retain(|at| *at > now_ms - MINUTE_MS);
        // Processes' clocks differ a little and corrections are added late: keep it in order,
        // as the wait in `take_token` reads it.
        self.calls.sort_unstable();
        let full = rate.burst as i64 * 1000;
        if !self.started {
            *self = Bucket { milli: full, at: now_ms, started: true, ..std::mem::take(self) };
            return;
        }
        if now_ms > self.at {
            let gained = (now_ms - self.at) as i128 * rate.per_minute as i128 * 1000 / 60_000;
            self.milli = (self.milli as i128 + gained).min(full as i128) as i64;
            self.at = now_ms;
        }
        if self.blocked_until.is_some_and(|until| until <= now_ms) {
            self.blocked_until = None;
            self.blocked_for = None;
        }
    }

    /// Calls in flight now (slots not yet lapsed at `real_ms`).
    #[cfg(test)]
    fn in_flight(&self, real_ms: i64) -> usize {
        self.slots.values().filter(|(lapses, _)| *lapses > real_ms).count()
    }
}

fn ms(n: i64) -> std::time::Duration {
    std::time::Duration::from_millis(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::seconds(40);

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn limits() -> GovernorLimits {
        GovernorLimits::xeros(LEASE)
    }

    #[test]
    fn xeros_limits_become_buckets_that_never_pass_them_in_any_minute() {
        let l = limits();
        assert_eq!(l.org.per_minute, 58, "a call or two clear of Xero's 60");
        assert_eq!(l.app_shards, 16);
        assert!((l.app_shard.burst + l.app_shard.per_minute) * l.app_shards <= 9_000);
        let small = GovernorLimits::new(30, 5, 50, LEASE);
        assert_eq!(small.app_shards, 1);
        assert!(small.app_shard.burst + small.app_shard.per_minute <= 45);
        assert!(small.org.per_minute < 30);
    }

    #[test]
    fn a_minute_of_takes_stays_within_the_organisations_sixty() {
        let l = limits();
        let mut bucket = Bucket::default();
        let mut taken = 0;
        // One attempt every 100 ms for a minute: no more than 60 get through.
        for tenth in 0..600 {
            let now = at(0) + Duration::milliseconds(tenth * 100);
            if bucket.take(l.org, Priority::Push, None, now, 0).is_ok() {
                taken += 1;
            }
        }
        assert_eq!(taken, 58, "the first 58 at once, then none until the first ages out");
        // The minute after: each call that aged out makes room for one.
        assert!(bucket.take(l.org, Priority::Push, None, at(60), 0).is_ok());
    }

    #[test]
    fn imports_leave_tokens_and_a_slot_to_pushes() {
        let l = limits();
        let mut bucket = Bucket::default();
        let mut imports = 0;
        while bucket.take(l.org, Priority::Import, None, at(0), 0).is_ok() {
            imports += 1;
        }
        assert_eq!(imports, l.org.per_minute - l.org.reserve);
        let wait = bucket.take(l.org, Priority::Import, None, at(0), 0).unwrap_err();
        assert_eq!(wait.limit, Limit::Minute);
        assert!(wait.after > std::time::Duration::ZERO);
        assert!(bucket.take(l.org, Priority::Push, None, at(0), 0).is_ok(), "a push still goes");

        let mut slots = Bucket::default();
        for n in 0..4 {
            let taker = format!("import-{n}");
            slots.take(l.org, Priority::Import, Some((&taker, 5, LEASE)), at(0), 0).unwrap();
        }
        let busy = slots.take(l.org, Priority::Import, Some(("import-5", 5, LEASE)), at(0), 0);
        assert_eq!(busy.unwrap_err().limit, Limit::Concurrent);
        slots.take(l.org, Priority::Push, Some(("push", 5, LEASE)), at(0), 0).unwrap();
        let full = slots.take(l.org, Priority::Push, Some(("push-2", 5, LEASE)), at(0), 0);
        assert_eq!(full.unwrap_err().limit, Limit::Concurrent);
        assert!(slots.finish(l.org, Some("import-0"), Observed::default(), at(0)));
        assert!(!slots.finish(l.org, Some("import-0"), Observed::default(), at(0)), "freed once");
        assert!(slots.take(l.org, Priority::Push, Some(("push-2", 5, LEASE)), at(0), 0).is_ok());
    }

    #[test]
    fn a_call_given_back_is_exactly_the_one_taken_and_only_once() {
        let l = limits();
        let mut bucket = Bucket::default();
        bucket.take(l.org, Priority::Push, Some(("early", 5, LEASE)), at(0), 0).unwrap();
        bucket.take(l.org, Priority::Push, Some(("late", 5, LEASE)), at(30), 0).unwrap();
        assert!(bucket.give_back(l.org, "early"));
        assert!(!bucket.give_back(l.org, "early"), "given back once");
        assert!(!bucket.give_back(l.org, "never"), "nothing taken, nothing given");
        // The late call still counts until it is a minute old, the early one no longer.
        assert_eq!(bucket.calls, vec![at(30).timestamp_millis()]);
    }

    #[test]
    fn a_slot_whose_holder_died_lapses_in_real_time() {
        let l = limits();
        let mut bucket = Bucket::default();
        for n in 0..5 {
            bucket.take(l.org, Priority::Push, Some((&n.to_string(), 5, LEASE)), at(0), 0).unwrap();
        }
        assert_eq!(bucket.in_flight(0), 5);
        let still = bucket.take(l.org, Priority::Push, Some(("late", 5, LEASE)), at(0), 39_999);
        assert_eq!(still.unwrap_err().limit, Limit::Concurrent);
        // The app's clock has not moved (a test's frozen clock); the slots lapse all the same.
        assert!(bucket.take(l.org, Priority::Push, Some(("late", 5, LEASE)), at(0), 40_001).is_ok());
        assert_eq!(bucket.in_flight(40_001), 1);
    }

    #[test]
    fn xeros_headers_and_429s_correct_the_count() {
        let l = limits();
        let mut bucket = Bucket::default();
        bucket.take(l.org, Priority::Push, None, at(0), 0).unwrap();
        // Xero counts down from its 60: 3 left there is 1 left of our 58.
        let few = Observed { minute_left: Some(3), ..Default::default() };
        assert!(bucket.would_change(l.org, few, at(0)));
        bucket.observe(l.org, few, at(0));
        bucket.take(l.org, Priority::Push, None, at(0), 0).unwrap();
        assert!(bucket.take(l.org, Priority::Push, None, at(0), 0).is_err());
        let plenty = Observed { minute_left: Some(59), refused: None };
        assert!(!bucket.would_change(l.org, plenty, at(0)), "nothing to write");

        let refused = Observed { refused: Some((Limit::Minute, std::time::Duration::from_secs(30))), ..plenty };
        bucket.observe(l.org, refused, at(10));
        let wait = bucket.take(l.org, Priority::Push, None, at(20), 0).unwrap_err();
        assert_eq!(wait, Wait { after: std::time::Duration::from_secs(20), limit: Limit::Minute });
        assert!(bucket.take(l.org, Priority::Push, None, at(41), 0).is_err(), "the minute's calls still count");
        assert!(bucket.take(l.org, Priority::Push, None, at(61), 0).is_ok(), "they aged out");
    }

    #[test]
    fn a_429_for_the_day_stops_everyone_until_xeros_retry_after() {
        let l = limits();
        let mut bucket = Bucket::default();
        let day = Observed { refused: Some((Limit::Day, std::time::Duration::from_secs(3600))), ..Default::default() };
        assert!(bucket.finish(l.org, None, day, at(0)));
        let wait = bucket.take(l.org, Priority::Push, None, at(60), 0).unwrap_err();
        assert_eq!(wait, Wait { after: std::time::Duration::from_secs(3540), limit: Limit::Day });
        assert!(bucket.take(l.org, Priority::Import, None, at(3600), 0).is_ok(), "Xero's day allows it again");
    }

    #[test]
    fn a_bucket_reads_back_as_it_was_written() {
        let l = limits();
        let mut bucket = Bucket::default();
        bucket.take(l.org, Priority::Push, Some(("a", 5, LEASE)), at(0), 5).unwrap();
        bucket.observe(l.org, Observed { minute_left: Some(3), ..Default::default() }, at(1));
        let text = serde_json::to_string(&bucket).unwrap();
        assert_eq!(serde_json::from_str::<Bucket>(&text).unwrap(), bucket);
    }
}
