use std::time::Duration;

use xero_emulator::{EmulatorConfig, LimitsConfig};

use crate::helpers::*;

async fn limited(limits: LimitsConfig) -> (xero_emulator::Emulator, Api) {
    let emu = start_with(EmulatorConfig::default().auto_approve(true).limits(limits)).await;
    let api = connected_api(&emu).await;
    (emu, api)
}

fn generous() -> LimitsConfig {
    LimitsConfig { enabled: true, per_minute: 1000, per_day: 100_000, concurrent: 50, app_per_minute: 100_000 }
}

#[tokio::test]
async fn every_api_response_carries_the_remaining_limit_headers() {
    let (_emu, api) = limited(LimitsConfig::default()).await;
    let first = api.get("/Organisation").await;
    assert_eq!(first.header("x-minlimit-remaining").as_deref(), Some("59"));
    assert_eq!(first.header("x-daylimit-remaining").as_deref(), Some("4999"));
    assert_eq!(first.header("x-appminlimit-remaining").as_deref(), Some("9999"));
    let second = api.get("/Invoices").await;
    assert_eq!(second.header("x-minlimit-remaining").as_deref(), Some("58"));
    let failed = api.get("/Invoices/not-there").await;
    assert_eq!(failed.status, 404);
    assert_eq!(failed.header("x-minlimit-remaining").as_deref(), Some("57"));
}

#[tokio::test]
async fn the_minute_limit_returns_429_with_retry_after_and_the_minute_problem() {
    let (emu, api) = limited(LimitsConfig { per_minute: 3, ..generous() }).await;
    for remaining in ["2", "1", "0"] {
        let resp = api.get("/Organisation").await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("x-minlimit-remaining").as_deref(), Some(remaining));
    }
    let limited = api.get("/Organisation").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after").as_deref(), Some("60"));
    assert_eq!(limited.header("x-rate-limit-problem").as_deref(), Some("minute"));
    assert_eq!(limited.header("x-minlimit-remaining").as_deref(), Some("0"));
    emu.clock().advance(Duration::from_secs(45));
    let still = api.get("/Organisation").await;
    assert_eq!((still.status, still.header("retry-after").as_deref()), (429, Some("15")));
    emu.clock().advance(Duration::from_secs(15));
    assert_eq!(api.get("/Organisation").await.status, 200);
    assert_eq!(emu.counters().rate_limited(), 2);
}

#[tokio::test]
async fn the_day_limit_returns_429_with_the_day_problem_until_a_day_has_passed() {
    let (emu, api) = limited(LimitsConfig { per_day: 3, ..generous() }).await;
    for _ in 0..3 {
        assert_eq!(api.get("/Organisation").await.status, 200);
    }
    emu.clock().advance(Duration::from_secs(120));
    let limited = api.get("/Organisation").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-rate-limit-problem").as_deref(), Some("day"));
    assert_eq!(limited.header("retry-after").as_deref(), Some(&*(86_400 - 120).to_string()));
    assert_eq!(limited.header("x-daylimit-remaining").as_deref(), Some("0"));
    // The limit is per tenant: the other organisation is unaffected.
    assert_eq!(api.for_tenant(AU).get("/Organisation").await.status, 200);
    emu.clock().advance(Duration::from_secs(86_400 - 120));
    // The access token has expired by now; a refreshed one sees the day window reopened.
    let tokens = connect(&emu).await;
    assert_eq!(Api::new(&emu, &tokens, NZ).get("/Organisation").await.status, 200);
}

#[tokio::test]
async fn the_concurrent_limit_rejects_a_call_while_too_many_are_in_flight() {
    let (emu, api) = limited(LimitsConfig { concurrent: 2, ..generous() }).await;
    let gate = emu.faults().hold(Some("GET"), "/api.xro/2.0/organisation");
    let api = std::sync::Arc::new(api);
    let held: Vec<_> = (0..2)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.get("/Organisation").await.status })
        })
        .collect();
    gate.wait_for_arrivals(2).await;
    let rejected = api.get("/Accounts").await;
    assert_eq!(rejected.status, 429);
    assert_eq!(rejected.header("x-rate-limit-problem").as_deref(), Some("concurrent"));
    assert!(rejected.header("retry-after").is_some());
    assert_eq!(api.for_tenant(AU).get("/Accounts").await.status, 200, "another tenant has its own slots");
    gate.release();
    for h in held {
        assert_eq!(h.await.expect("join"), 200);
    }
    assert_eq!(api.get("/Accounts").await.status, 200);
}

#[tokio::test]
async fn the_app_minute_limit_spans_all_tenants() {
    let (_emu, api) = limited(LimitsConfig { app_per_minute: 3, ..generous() }).await;
    assert_eq!(api.get("/Organisation").await.status, 200);
    assert_eq!(api.get("/Organisation").await.status, 200);
    let au = api.for_tenant(AU);
    let last = au.get("/Organisation").await;
    assert_eq!((last.status, last.header("x-appminlimit-remaining").as_deref()), (200, Some("0")));
    let limited = au.get("/Organisation").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("x-rate-limit-problem").as_deref(), Some("appminute"));
    assert_eq!(limited.header("retry-after").as_deref(), Some("60"));
}

#[tokio::test]
async fn limits_can_be_switched_off_and_on_while_running() {
    let (emu, api) = limited(LimitsConfig { per_minute: 1, ..LimitsConfig::disabled() }).await;
    for _ in 0..3 {
        assert_eq!(api.get("/Organisation").await.status, 200);
    }
    emu.set_limits(LimitsConfig { per_minute: 1, ..generous() });
    assert_eq!(api.get("/Organisation").await.status, 429);
}

#[tokio::test]
async fn the_bytes_of_every_answer_are_counted_per_tenant() {
    let (emu, api) = limited(generous()).await;
    emu.reset_counters();
    let contacts = api.get("/Contacts").await;
    let accounts = api.get("/Accounts").await;
    assert_eq!(contacts.status, 200);
    let sent = (contacts.text.len() + accounts.text.len()) as u64;
    assert!(sent > 0);
    assert_eq!(emu.counters().bytes_for_tenant(NZ), sent);
    assert_eq!(emu.counters().total_bytes(), sent);
}
