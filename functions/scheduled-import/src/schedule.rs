//! When each organisation's scheduled import runs: once a period, at an offset in the period
//! that a hash of its tenant id fixes, so that imports are spread evenly over time instead of
//! all starting when the schedule fires (Xero's app-wide limit is per minute).
//!
//! The period is anchored at the Unix epoch: an organisation is due at every instant `t` with
//! `(t - epoch) mod period == offset`. Each fan-out run covers a window of time (from where the
//! last run's window ended to one schedule interval ahead) and sends the organisations due in it,
//! each held back (SQS `DelaySeconds`) until its instant.

use chrono::{DateTime, Duration, Utc};
use xero_sync_domain::model::TenantId;
use xero_sync_runtime::{ConfigError, Env};

/// How often the scheduled import reads each organisation, which depends on whether Xero's
/// webhooks bring changes in between (`XERO_WEBHOOKS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    pub webhooks: bool,
    /// Each organisation's incremental import runs once a period: rarely with webhooks on
    /// (`SAFETY_NET_HOURS`, 6), every `POLL_MINUTES` (30) without.
    pub period: Duration,
    /// Reference data is read this often with webhooks on (`REFERENCE_HOURS`, 24); every run
    /// without, as before.
    pub reference_every: Duration,
    /// And read whole (Accounts and Items too, which are otherwise read by
    /// `If-Modified-Since`, which never shows a deletion) this often (`REFERENCE_FULL_DAYS`, 7).
    pub reference_full_every: Duration,
}

impl Default for Cadence {
    /// Without webhooks: today's import, every 30 minutes, everything every time.
    fn default() -> Self {
        Self {
            webhooks: false,
            period: Duration::minutes(30),
            reference_every: Duration::zero(),
            reference_full_every: Duration::zero(),
        }
    }
}

impl Cadence {
    /// With webhooks on, the defaults the budget is measured with.
    pub fn with_webhooks() -> Self {
        Self {
            webhooks: true,
            period: Duration::hours(6),
            reference_every: Duration::hours(24),
            reference_full_every: Duration::days(7),
        }
    }

    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let positive = |name: &'static str, value: i64| {
            if value > 0 { Ok(value) } else { Err(ConfigError::Invalid { name, reason: "must be at least 1".into() }) }
        };
        if !env.parse_or("XERO_WEBHOOKS", false)? {
            let minutes = positive("POLL_MINUTES", env.parse_or("POLL_MINUTES", 30)?)?;
            return Ok(Self { period: Duration::minutes(minutes), ..Self::default() });
        }
        Ok(Self {
            webhooks: true,
            period: Duration::hours(positive("SAFETY_NET_HOURS", env.parse_or("SAFETY_NET_HOURS", 6)?)?),
            reference_every: Duration::hours(positive("REFERENCE_HOURS", env.parse_or("REFERENCE_HOURS", 24)?)?),
            reference_full_every: Duration::days(positive(
                "REFERENCE_FULL_DAYS",
                env.parse_or("REFERENCE_FULL_DAYS", 7)?,
            )?),
        })
    }
}

/// Where in `period` the organisation's import falls; the same for the same tenant and period.
pub fn offset(tenant: TenantId, period: Duration) -> Duration {
    let digest = xero_sync_domain::digest::sha256_hex(tenant.0.as_bytes());
    let first = u64::from_str_radix(&digest[..16], 16).expect("SHA-256 in hex is hex");
    let millis = period.num_milliseconds().max(1) as u64;
    Duration::milliseconds((first % millis) as i64)
}

/// The first instant in `[from, to)` at which an organisation at `offset` is due, if any.
pub fn due_in(offset: Duration, period: Duration, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let period_ms = period.num_milliseconds().max(1);
    let into_period = from.timestamp_millis().rem_euclid(period_ms);
    let wait = (offset.num_milliseconds() - into_period).rem_euclid(period_ms);
    let due = from + Duration::milliseconds(wait);
    (due < to).then_some(due)
}

/// The window a fan-out run at `now` covers: from where the last one ended (at most one period
/// back, so a long outage sends each organisation once, at once) to `every` ahead. Empty when
/// a run repeats within a window already covered.
pub fn window(
    last_end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    every: Duration,
    period: Duration,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = last_end.map_or(now, |end| end.max(now - period));
    (from, now + every)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn without_webhooks_the_import_runs_as_before_and_with_them_rarely() {
        let off = Cadence::from(&Env::from_pairs([("TABLE_NAME", "t")])).unwrap();
        assert_eq!(off, Cadence::default());
        let on = Cadence::from(&Env::from_pairs([("XERO_WEBHOOKS", "true")])).unwrap();
        assert_eq!(on, Cadence::with_webhooks());
        let bad = Cadence::from(&Env::from_pairs([("XERO_WEBHOOKS", "true"), ("SAFETY_NET_HOURS", "0")]));
        assert!(bad.unwrap_err().to_string().contains("SAFETY_NET_HOURS"));
        assert!(
            Cadence::from(&Env::from_pairs([("XERO_WEBHOOKS", "yes")]))
                .unwrap_err()
                .to_string()
                .contains("XERO_WEBHOOKS")
        );
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn each_organisation_is_due_once_a_period_whatever_the_windows() {
        let period = Duration::hours(6);
        let every = Duration::minutes(15);
        // Fixed tenants, spread by a multiplicative hash: the same every run.
        let spread =
            |n: u128| TenantId(Uuid::from_u128((n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)));
        let tenants: Vec<TenantId> = (0..500).map(spread).collect();
        let start = at("2026-12-01T00:07:13Z");
        let mut counts = vec![0; tenants.len()];
        let mut last_end = None;
        // A day of runs, each a little late, one of them missed; the last one on time, so that
        // the windows cover exactly the day (a late last run would reach a few seconds into
        // the next and rightly find a tenant due there a fifth time).
        for run in 0..96 {
            if run == 40 {
                continue;
            }
            let late = if run == 95 { 0 } else { run as i64 % 7 };
            let now = start + every * run + Duration::seconds(late);
            let (from, to) = window(last_end, now, every, period);
            for (n, tenant) in tenants.iter().enumerate() {
                if due_in(offset(*tenant, period), period, from, to).is_some() {
                    counts[n] += 1;
                }
            }
            last_end = Some(to);
        }
        assert!(counts.iter().all(|c| *c == 4), "four times a day each: {counts:?}");
    }

    #[test]
    fn offsets_are_stable_and_spread_over_the_period() {
        let period = Duration::hours(6);
        let tenant = TenantId(Uuid::new_v4());
        assert_eq!(offset(tenant, period), offset(tenant, period));
        let mut per_hour = [0; 6];
        for _ in 0..6000 {
            per_hour[offset(TenantId(Uuid::new_v4()), period).num_hours() as usize] += 1;
        }
        assert!(per_hour.iter().all(|n| (800..1200).contains(n)), "{per_hour:?}");
    }

    #[test]
    fn a_due_instant_lies_in_the_window_and_on_the_offset() {
        let period = Duration::minutes(30);
        let offset = Duration::minutes(20);
        let due = due_in(offset, period, at("2026-12-01T10:05:00Z"), at("2026-12-01T10:25:00Z"));
        assert_eq!(due, Some(at("2026-12-01T10:20:00Z")));
        assert_eq!(due_in(offset, period, at("2026-12-01T10:21:00Z"), at("2026-12-01T10:36:00Z")), None);
        let (from, to) =
            window(Some(at("2026-11-30T00:00:00Z")), at("2026-12-01T10:00:00Z"), Duration::minutes(15), period);
        assert_eq!((from, to), (at("2026-12-01T09:30:00Z"), at("2026-12-01T10:15:00Z")), "at most a period back");
    }
}
