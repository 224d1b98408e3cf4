//! The daily inactivity sweep: warns about, then disconnects, connections idle for 60 days.
//!
//! Xero counts every connection against the app's tier limit until it is removed, so one nobody
//! uses is ended: at Xero (unless another platform account shares it), in the vault, and in our
//! records, which otherwise stay so a reconnect picks up where it left off.
//!
//! * **Idle** is measured from the connection's last activity (see `xero_sync_domain::store`: a
//!   successful push, an import that delivered changes, an action through the connection API).
//! * The connected index is sorted by last activity, so one Query per shard finds exactly the
//!   connections idle long enough to warn, oldest first; nothing scans.
//! * **Warnings** go out a configurable number of days before (14 and 3 by default), each once
//!   per idle period: its once-key names the last activity, so any activity starts afresh.
//! * **Bounded**: at most `max_per_run` connections and `time_budget` a run; where it stopped is
//!   kept after every page, and the next
//!   run carries on. A connection whose clean-up failed (Xero 5xx, say) stays in the clean-up
//!   index and is tried again next run, and never stops the others; a connection already gone at
//!   Xero counts as done.
//! * **Clean-ups** left unfinished by anyone (a disconnect by the account that failed midway,
//!   a replaced connection) are finished first, and so are the grants due for release (consents
//!   abandoned at the organisation choice or failing after the code exchange).
//! * **Races**: a connection is ended only if its last activity is still the one the sweep read,
//!   so activity recorded meanwhile wins.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{Connection, ConnectionStatus};
use xero_sync_domain::notify::Notice;
use xero_sync_domain::store::{ConnectedQuery, PageToken, at_most_once};
use xero_sync_runtime::lease::Lease;
use xero_sync_runtime::{App, ConfigError, Env, lifecycle, mail};

/// Where a bounded run stopped in the index.
const CONTINUE_AT: &str = "inactivity-sweep:continue";

#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub limit: Duration,
    /// How long before the disconnect each warning goes out, longest first.
    pub warnings: Vec<Duration>,
    pub page_size: i32,
    pub max_per_run: usize,
    /// Wall-clock time a run may take before it stops and leaves the rest to the next
    /// (well inside the function's timeout).
    pub time_budget: std::time::Duration,
}

impl SweepConfig {
    pub fn from(env: &Env) -> Result<Self, ConfigError> {
        let days = |d: i64| Duration::days(d);
        let limit: i64 = env.parse_or("INACTIVITY_LIMIT_DAYS", 60)?;
        let warnings = match env.optional("INACTIVITY_WARNING_DAYS") {
            None => vec![14, 3],
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|d| d.parse::<i64>().ok().filter(|d| *d > 0 && *d < limit))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ConfigError::Invalid {
                    name: "INACTIVITY_WARNING_DAYS",
                    reason: format!("must be whole days between 1 and {} apart by commas", limit - 1),
                })?,
        };
        if limit < 1 {
            return Err(ConfigError::Invalid { name: "INACTIVITY_LIMIT_DAYS", reason: "must be at least 1".into() });
        }
        let mut warnings: Vec<Duration> = warnings.into_iter().map(days).collect();
        warnings.sort_by(|a, b| b.cmp(a));
        warnings.dedup();
        Ok(Self {
            limit: days(limit),
            warnings,
            page_size: env.parse_or("SWEEP_PAGE_SIZE", 100)?,
            max_per_run: env.parse_or("SWEEP_MAX_PER_RUN", 2000)?,
            time_budget: std::time::Duration::from_secs(env.parse_or("SWEEP_TIME_BUDGET_SECONDS", 600)?),
        })
    }
}

impl Default for SweepConfig {
    fn default() -> Self {
        Self {
            limit: Duration::days(60),
            warnings: vec![Duration::days(14), Duration::days(3)],
            page_size: 100,
            max_per_run: 2000,
            time_budget: std::time::Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    pub examined: usize,
    pub warned: usize,
    pub disconnected: usize,
    pub failures: Vec<Failure>,
    /// Whether the run reached the end of the index (otherwise the next run carries on).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub account_id: String,
    pub tenant_id: String,
    pub error: String,
}

/// One run at a time: a second (a retried schedule, say) finds the lease held and does nothing.
const LEASE: &str = "inactivity-sweep";

pub async fn sweep(app: &App, config: &SweepConfig) -> Result<SweepSummary, Error> {
    let now = app.now();
    let owner = uuid::Uuid::new_v4().to_string();
    let lease_for = Duration::from_std(config.time_budget).unwrap_or(Duration::minutes(10)) + Duration::minutes(5);
    let Some(lease) = Lease::try_take(app.services.store.as_ref(), LEASE, &owner, lease_for, now).await? else {
        tracing::info!("another inactivity sweep is running");
        return Ok(SweepSummary::default());
    };
    let result = run(app, config, now).await;
    lease.release().await;
    result
}

async fn run(app: &App, config: &SweepConfig, now: DateTime<Utc>) -> Result<SweepSummary, Error> {
    let store = &app.services.store;
    let started = std::time::Instant::now();
    let mut summary = SweepSummary::default();

    // Clean-ups nobody finished (this sweep's own, the account's, replaced connections) and
    // grants due for release, before anything new is ended.
    // At most half the run's time, so a Xero outage cannot keep idle connections from being looked at.
    let cleanups =
        lifecycle::finish_cleanups(&app.services, &app.tokens, now, config.max_per_run, config.time_budget / 2).await?;
    for released in &cleanups.released {
        if let Err(e) = tell_disconnected(app, released, now).await {
            summary.failures.push(failure(released, &e));
        }
    }
    for (account_id, tenant_id, error) in cleanups.failed {
        summary.failures.push(Failure { account_id, tenant_id, error });
    }

    let earliest = config.warnings.first().copied().unwrap_or_default();
    // Idle at least `limit - earliest` (the index condition is strict; times are to the µs).
    let idle_before = now - config.limit + earliest + Duration::microseconds(1);
    let query = ConnectedQuery { idle_before: Some(idle_before), page_size: config.page_size };
    let mut token = store.get_job_state(CONTINUE_AT).await?.map(PageToken);
    loop {
        let page = match store.connected_page(query, token.as_ref()).await {
            Ok(page) => page,
            // A stored position that no longer reads (a layout change): start from the top.
            Err(Error::Corrupt { .. }) if token.is_some() => {
                tracing::warn!("the sweep's stored position did not read; starting from the beginning");
                token = None;
                continue;
            }
            Err(e) => return Err(e),
        };
        for connection in &page.items {
            summary.examined += 1;
            match examine(app, config, connection, now).await {
                Ok(Done::Warned) => summary.warned += 1,
                Ok(Done::Disconnected) => summary.disconnected += 1,
                Ok(Done::Nothing) => {}
                // A failed disconnect stays in the clean-up index: the next run finishes it.
                Err(Failed::Warning(e) | Failed::Disconnect(e)) => summary.failures.push(failure(connection, &e)),
            }
        }
        token = page.next;
        // Progress is kept page by page: a run cut short loses at most a page.
        store.put_job_state(CONTINUE_AT, token.as_ref().map(|t| t.0.as_str())).await?;
        if token.is_none() || summary.examined >= config.max_per_run || started.elapsed() >= config.time_budget {
            break;
        }
    }
    summary.complete = token.is_none();
    tracing::info!(
        examined = summary.examined,
        warned = summary.warned,
        disconnected = summary.disconnected,
        failures = summary.failures.len(),
        complete = summary.complete,
        "inactivity sweep done"
    );
    Ok(summary)
}

enum Failed {
    /// Telling the account failed; the once-key lets the next run try again.
    Warning(String),
    /// Ending the connection failed midway; the next run finishes it.
    Disconnect(String),
}

fn failure(connection: &Connection, e: &dyn std::fmt::Display) -> Failure {
    Failure {
        account_id: connection.account_id.to_string(),
        tenant_id: connection.tenant_id.to_string(),
        error: e.to_string(),
    }
}

enum Done {
    Nothing,
    Warned,
    Disconnected,
}

async fn examine(app: &App, config: &SweepConfig, connection: &Connection, now: DateTime<Utc>) -> Result<Done, Failed> {
    let idle = now - connection.last_activity_at;
    if idle >= config.limit {
        // The index lags the table a little: activity just recorded must win over the sweep.
        let current =
            app.services.store.get_connection(&connection.key()).await.map_err(|e| Failed::Warning(e.to_string()))?;
        let still_idle =
            |c: &Connection| c.status == ConnectionStatus::Connected && now - c.last_activity_at >= config.limit;
        let Some(current) = current.filter(still_idle) else { return Ok(Done::Nothing) };
        let ended = finish_disconnect(app, &current, now).await.map_err(Failed::Disconnect)?;
        return Ok(if ended { Done::Disconnected } else { Done::Nothing });
    }
    let left = config.limit - idle;
    // The nearest warning due: a connection first seen 2 days before gets the 3-day warning only.
    let Some(warning) = config.warnings.iter().rev().find(|w| left <= **w) else { return Ok(Done::Nothing) };
    let disconnect_on = (connection.last_activity_at + config.limit).date_naive();
    let once = format!(
        "inactivity-warning#{}#{}#{}#{}",
        connection.account_id,
        connection.tenant_id,
        xero_sync_domain::time::format(connection.last_activity_at),
        warning.num_days()
    );
    let sent = at_most_once(app.services.store.as_ref(), &once, now, config.limit, || async {
        let event = PlatformEvent::new(
            EventKind::ConnectionInactivityWarning,
            connection.account_id.clone(),
            Some(connection.tenant_id),
            &once,
            now,
            json!({
                "organisation_name": connection.organisation_name,
                "last_activity_at": xero_sync_domain::time::format(connection.last_activity_at),
                "disconnect_on": disconnect_on.format("%Y-%m-%d").to_string(),
            }),
        );
        app.services.events.publish(&[event]).await?;
        {
            let notice = Notice {
                subject: format!(
                    "Xero will be disconnected on {}: {}",
                    disconnect_on.format("%-d %B %Y"),
                    connection.organisation_name
                ),
                organisation: connection.organisation_name.clone(),
                what_happened: format!(
                    "Nothing has gone between the platform and this Xero organisation for {} days. Connections unused \
                    for {} days are disconnected, so this one will be on {}.",
                    idle.num_days(),
                    config.limit.num_days(),
                    disconnect_on.format("%-d %B %Y")
                ),
                details: vec![("Last activity".into(), connection.last_activity_at.format("%-d %B %Y").to_string())],
                what_to_do:
                    "Nothing, if you no longer use Xero with the platform. To keep it, send an invoice to Xero \
                    or open the Xero settings in the platform and click Test connection before that date."
                        .into(),
            };
            mail::tell(&app.services, std::slice::from_ref(connection), notice, now).await?;
        }
        Ok(())
    })
    .await
    .map_err(|e| Failed::Warning(e.to_string()))?;
    Ok(if sent { Done::Warned } else { Done::Nothing })
}

/// Ends an idle connection, unless it was used since it was read; returns whether it ended.
async fn finish_disconnect(app: &App, connection: &Connection, now: DateTime<Utc>) -> Result<bool, String> {
    let reason = format!(
        "No activity since {}: connections unused for this long are disconnected.",
        connection.last_activity_at.format("%Y-%m-%d")
    );
    let ending = lifecycle::Ending {
        to: ConnectionStatus::DisconnectedInactive,
        reason: &reason,
        if_last_activity: Some(connection.last_activity_at),
    };
    let ended =
        lifecycle::disconnect(&app.services, &app.tokens, connection, &ending, now).await.map_err(|e| e.to_string())?;
    if ended.status.is_live() {
        tracing::info!(account = %ended.account_id, tenant = %ended.tenant_id, "used meanwhile; not ended");
        return Ok(false);
    }
    tell_disconnected(app, &ended, now).await?;
    Ok(true)
}

/// Emails the account once that the sweep ended its connection (not when it was ended some
/// other way, as by the account itself).
async fn tell_disconnected(app: &App, ended: &Connection, now: DateTime<Utc>) -> Result<(), String> {
    if ended.status != ConnectionStatus::DisconnectedInactive {
        return Ok(());
    }
    let once = format!(
        "inactivity-disconnect#{}#{}#{}",
        ended.account_id,
        ended.tenant_id,
        xero_sync_domain::time::format(ended.last_activity_at)
    );
    let notice = Notice {
        subject: format!("Xero disconnected: {}", ended.organisation_name),
        organisation: ended.organisation_name.clone(),
        what_happened: format!(
            "Nothing had gone between the platform and this Xero organisation since {}, so the connection was ended. \
            Invoices are no longer sent to Xero and nothing is imported from it. Your history is kept.",
            ended.last_activity_at.format("%-d %B %Y")
        ),
        details: vec![("Idle since".into(), ended.last_activity_at.format("%-d %B %Y").to_string())],
        what_to_do: "To use Xero with the platform again, open the Xero settings in the platform and click Connect to \
            Xero. Your settings, and the invoices and contacts already linked, are picked up where they were."
            .into(),
    };
    at_most_once(app.services.store.as_ref(), &once, now, Duration::days(365), || async {
        mail::tell(&app.services, std::slice::from_ref(ended), notice, now).await.map(|_| ())
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_and_warnings_come_from_the_environment_longest_warning_first() {
        let env = Env::from_pairs([("INACTIVITY_LIMIT_DAYS", "30"), ("INACTIVITY_WARNING_DAYS", "2, 7")]);
        let config = SweepConfig::from(&env).unwrap();
        assert_eq!(config.limit, Duration::days(30));
        assert_eq!(config.warnings, vec![Duration::days(7), Duration::days(2)]);
        let defaults = SweepConfig::from(&Env::from_pairs(Vec::<(String, String)>::new())).unwrap();
        assert_eq!(
            (defaults.limit, defaults.warnings),
            (Duration::days(60), vec![Duration::days(14), Duration::days(3)])
        );
    }

    #[test]
    fn a_warning_outside_the_limit_is_refused_by_name() {
        let env = Env::from_pairs([("INACTIVITY_WARNING_DAYS", "14,90")]);
        let e = SweepConfig::from(&env).unwrap_err().to_string();
        assert!(e.contains("INACTIVITY_WARNING_DAYS"), "{e}");
    }
}
