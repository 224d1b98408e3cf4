//! Xero's API rate limits, measured on the emulator clock.
//! https://developer.xero.com/documentation/guides/oauth2/limits/ : per tenant 60 calls a
//! minute, 5,000 a day and 5 in flight; per app 10,000 a minute. A rejected call gets 429 with
//! `Retry-After` and `X-Rate-Limit-Problem`; every response carries the remaining counts.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LimitsConfig {
    pub enabled: bool,
    pub per_minute: u32,
    pub per_day: u32,
    pub concurrent: u32,
    pub app_per_minute: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { enabled: true, per_minute: 60, per_day: 5000, concurrent: 5, app_per_minute: 10_000 }
    }
}

impl LimitsConfig {
    pub fn disabled() -> Self {
        LimitsConfig { enabled: false, ..Self::default() }
    }
}

#[derive(Default)]
struct TenantWindow {
    minute: VecDeque<DateTime<Utc>>,
    day: VecDeque<DateTime<Utc>>,
    in_flight: u32,
}

#[derive(Default)]
pub struct Limiter {
    tenants: HashMap<Uuid, TenantWindow>,
    app_minute: VecDeque<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug)]
pub struct Remaining {
    pub minute: u32,
    pub day: u32,
    pub app_minute: u32,
}

#[derive(Clone, Debug)]
pub struct Rejection {
    pub problem: &'static str,
    pub retry_after_secs: i64,
    pub remaining: Remaining,
}

fn prune(q: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, window: TimeDelta) {
    while q.front().is_some_and(|t| *t + window <= now) {
        q.pop_front();
    }
}

/// Seconds until the oldest call in a full window falls out of it, never less than one.
fn retry_after(q: &VecDeque<DateTime<Utc>>, now: DateTime<Utc>, window: TimeDelta) -> i64 {
    q.front().map(|t| (*t + window - now).num_milliseconds()).map(|ms| (ms + 999) / 1000).unwrap_or(1).max(1)
}

impl Limiter {
    fn remaining(&self, cfg: &LimitsConfig, tenant: Uuid) -> Remaining {
        let w = self.tenants.get(&tenant);
        let used = |q: Option<&VecDeque<DateTime<Utc>>>| q.map(|q| q.len() as u32).unwrap_or(0);
        Remaining {
            minute: cfg.per_minute.saturating_sub(used(w.map(|w| &w.minute))),
            day: cfg.per_day.saturating_sub(used(w.map(|w| &w.day))),
            app_minute: cfg.app_per_minute.saturating_sub(self.app_minute.len() as u32),
        }
    }

    /// Counts a call and marks it in flight, or says which limit it hit.
    pub fn acquire(&mut self, cfg: &LimitsConfig, tenant: Uuid, now: DateTime<Utc>) -> Result<Remaining, Rejection> {
        let minute = TimeDelta::minutes(1);
        let day = TimeDelta::days(1);
        prune(&mut self.app_minute, now, minute);
        let w = self.tenants.entry(tenant).or_default();
        prune(&mut w.minute, now, minute);
        prune(&mut w.day, now, day);
        if cfg.enabled {
            let rejection = if w.in_flight >= cfg.concurrent {
                Some(("concurrent", 1))
            } else if w.minute.len() as u32 >= cfg.per_minute {
                Some(("minute", retry_after(&w.minute, now, minute)))
            } else if w.day.len() as u32 >= cfg.per_day {
                Some(("day", retry_after(&w.day, now, day)))
            } else if self.app_minute.len() as u32 >= cfg.app_per_minute {
                Some(("appminute", retry_after(&self.app_minute, now, minute)))
            } else {
                None
            };
            if let Some((problem, retry_after_secs)) = rejection {
                return Err(Rejection { problem, retry_after_secs, remaining: self.remaining(cfg, tenant) });
            }
        }
        let w = self.tenants.entry(tenant).or_default();
        w.minute.push_back(now);
        w.day.push_back(now);
        w.in_flight += 1;
        self.app_minute.push_back(now);
        Ok(self.remaining(cfg, tenant))
    }

    pub fn release(&mut self, tenant: Uuid) {
        if let Some(w) = self.tenants.get_mut(&tenant) {
            w.in_flight = w.in_flight.saturating_sub(1);
        }
    }
}
