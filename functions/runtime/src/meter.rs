//! What this process received from Xero, per connection. Every Accounting API call passes the
//! token provider, which counts it here; when a handler finishes, [`flush`] adds each
//! connection's count to its day in the store (shown in the connection API) and publishes the
//! totals as CloudWatch metrics in the Embedded Metric Format: one log line, no API call.
//! Metrics carry no per-connection dimension (50,000 connections would be 50,000 metrics);
//! the per-connection figures are in the store, and a connection whose day budget runs low
//! is counted in `XeroDayBudgetLow` and named in a warning.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde_json::json;
use xero_sync_domain::model::{ConnectionKey, XeroUsage};
use xero_sync_xero::RateLimits;

use crate::App;

/// Fewer of an organisation's daily calls left than this is worth an alarm: the import
/// already stops there, leaving them to pushes.
pub const DAY_BUDGET_LOW: u32 = 500;
/// The metrics' namespace in CloudWatch.
pub const NAMESPACE: &str = "xero-sync";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub usage: XeroUsage,
    /// The fewest calls left today that Xero reported.
    pub day_remaining: Option<u32>,
}

#[derive(Debug, Default)]
pub struct Meter {
    seen: Mutex<HashMap<ConnectionKey, Seen>>,
}

impl Meter {
    /// One call for `key`: `bytes` of answer, and what Xero said of its limits.
    pub fn record(&self, key: ConnectionKey, bytes: usize, limits: Option<&RateLimits>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(key).or_default();
        entry.usage.add(XeroUsage { calls: 1, bytes: bytes as u64 });
        if let Some(left) = limits.and_then(|l| l.day_remaining) {
            entry.day_remaining = Some(entry.day_remaining.map_or(left, |was| was.min(left)));
        }
    }

    /// What was counted since the last take, which starts again from nothing.
    pub fn take(&self) -> HashMap<ConnectionKey, Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The Embedded Metric Format line for `function`'s totals.
pub fn metrics_line(function: &str, usage: XeroUsage, low: u64, at: DateTime<Utc>) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [
                    { "Name": "XeroCalls", "Unit": "Count" },
                    { "Name": "XeroBytes", "Unit": "Bytes" },
                    { "Name": "XeroDayBudgetLow", "Unit": "Count" },
                ],
            }],
        },
        "Function": function,
        "XeroCalls": usage.calls,
        "XeroBytes": usage.bytes,
        "XeroDayBudgetLow": low,
    })
    .to_string()
}

/// Adds what the process counted to each connection's day and logs the metrics line. A count
/// that cannot be stored is logged and dropped: it is a figure, not data anyone waits for.
pub async fn flush(app: &App, function: &str) {
    let taken = app.tokens.meter().take();
    if taken.is_empty() {
        return;
    }
    let now = app.now();
    let mut total = XeroUsage::default();
    let mut low = 0;
    for (key, seen) in taken {
        total.add(seen.usage);
        if let Err(e) = app.services.store.add_usage(&key, now.date_naive(), seen.usage).await {
            tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, error = %e, "Xero usage not recorded");
        }
        if let Some(left) = seen.day_remaining.filter(|left| *left < DAY_BUDGET_LOW) {
            low += 1;
            tracing::warn!(account = %key.account_id, tenant = %key.tenant_id, left, "the organisation's Xero calls for today are running low");
        }
    }
    let line = metrics_line(function, total, low, now);
    // In Lambda the line goes to stdout, where CloudWatch reads the metrics from; on this
    // machine (`./dev run`, tests) it is a debug log, not noise among the output.
    if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        println!("{line}");
    } else {
        tracing::debug!(metrics = %line, "Xero usage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xero_sync_domain::model::{AccountId, TenantId};

    #[test]
    fn calls_and_bytes_add_up_per_connection_and_the_lowest_budget_is_kept() {
        let meter = Meter::default();
        let key = ConnectionKey { account_id: AccountId::parse("a").unwrap(), tenant_id: TenantId(uuid::Uuid::nil()) };
        let limits = |day| RateLimits { day_remaining: Some(day), ..RateLimits::default() };
        meter.record(key.clone(), 100, Some(&limits(900)));
        meter.record(key.clone(), 20, Some(&limits(400)));
        meter.record(key.clone(), 0, None);
        let taken = meter.take();
        assert_eq!(taken[&key], Seen { usage: XeroUsage { calls: 3, bytes: 120 }, day_remaining: Some(400) });
        assert!(meter.take().is_empty());
    }

    #[test]
    fn the_metrics_line_is_embedded_metric_format() {
        let at = DateTime::from_timestamp(1_764_547_200, 0).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(&metrics_line("import-worker", XeroUsage { calls: 3, bytes: 120 }, 1, at)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(line.get(metric["Name"].as_str().unwrap()).is_some(), "{metric} has its value");
        }
        assert_eq!(
            (&line["XeroCalls"], &line["XeroBytes"], &line["XeroDayBudgetLow"]),
            (&json!(3), &json!(120), &json!(1))
        );
        assert_eq!(line["_aws"]["Timestamp"], 1_764_547_200_000i64);
    }
}
