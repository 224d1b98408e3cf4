use std::time::{Duration, Instant};

use serde_json::json;
use xero_emulator::{EmulatorConfig, FaultAction, FaultRule, LimitsConfig, Trigger};

use crate::helpers::*;

async fn statuses(seed: u64) -> Vec<u16> {
    let emu =
        start_with(EmulatorConfig::default().auto_approve(true).limits(LimitsConfig::disabled()).rng_seed(seed)).await;
    let api = connected_api(&emu).await;
    emu.faults().error_rate(None, "/api.xro/2.0/invoices*", 503, 0.5);
    let mut out = vec![];
    for _ in 0..20 {
        out.push(api.get("/Invoices").await.status);
    }
    out
}

#[tokio::test]
async fn an_error_rate_fault_is_repeatable_with_the_same_seed() {
    let first = statuses(7).await;
    let second = statuses(7).await;
    assert_eq!(first, second);
    assert!(first.contains(&503) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn a_status_on_the_nth_call_fails_only_that_call_and_applies_nothing() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    emu.faults().status_on_nth_call(Some("PUT"), "/api.xro/2.0/invoices", 2, 500);
    assert_eq!(api.put("/Invoices", &json!({"Invoices": [invoice("N-1", "1")]})).await.status, 200);
    let failed = api.put("/Invoices", &json!({"Invoices": [invoice("N-2", "1")]})).await;
    assert_eq!(failed.status, 500);
    assert_eq!(api.put("/Invoices", &json!({"Invoices": [invoice("N-3", "1")]})).await.status, 200);
    let numbers: Vec<String> =
        emu.invoices(NZ).iter().map(|i| i["InvoiceNumber"].as_str().unwrap_or_default().into()).collect();
    assert_eq!(numbers, vec!["N-1", "N-3"]);
}

#[tokio::test]
async fn faults_can_hit_the_identity_endpoints_and_carry_retry_after() {
    let emu = start().await;
    emu.faults().add(
        FaultRule::new(
            Some("POST"),
            "/connect/token",
            FaultAction::Status { status: 503, body: None, retry_after: Some(7) },
        )
        .trigger(Trigger::FirstCalls { n: 1 }),
    );
    let code = get_code(&emu, None).await;
    let resp = http()
        .post(emu.token_url())
        .header("authorization", demo_basic())
        .form(&[("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(exchange(&emu, &code).await.0, 200, "the failed call did not use the code");
}

#[tokio::test]
async fn a_timeout_after_the_write_applies_it_while_the_client_gives_up() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    emu.faults().timeout_after_write(Some("PUT"), "/api.xro/2.0/invoices", Some(20_000));
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(400)).build().expect("client");
    let body = json!({"Invoices": [invoice("TO-1", "10")]});
    let err = impatient
        .put(format!("{}/Invoices", emu.api_url()))
        .bearer_auth(&api.token)
        .header("xero-tenant-id", NZ.to_string())
        .header("Idempotency-Key", "retry-me")
        .json(&body)
        .send()
        .await
        .expect_err("the client times out");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(emu.invoices(NZ).len(), 1, "the write was applied");
    let retry = api.send("PUT", "/Invoices", Some(&body), &[("Idempotency-Key", "retry-me")]).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.body["Invoices"][0]["InvoiceNumber"], "TO-1");
    assert_eq!(emu.invoices(NZ).len(), 1, "the retry with the same key did not apply again");
}

#[tokio::test]
async fn latency_delays_matching_calls_only() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    emu.faults().latency(Some("GET"), "/api.xro/2.0/organisation", 250);
    let started = Instant::now();
    assert_eq!(api.get("/Organisation").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(250));
    emu.faults().clear();
    assert!(emu.faults().list().is_empty());
}

#[tokio::test]
async fn counters_count_calls_per_endpoint_and_tenant_and_the_429s() {
    let emu = start_with(EmulatorConfig::default().auto_approve(true).limits(LimitsConfig {
        per_minute: 2,
        per_day: 100,
        concurrent: 5,
        app_per_minute: 100,
        enabled: true,
    }))
    .await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("C-1", "10")).await;
    api.get(&format!("/invoices/{}", inv["InvoiceID"].as_str().unwrap())).await;
    assert_eq!(api.get("/Invoices").await.status, 429);
    api.for_tenant(AU).get("/Invoices").await;
    let counters = emu.counters();
    assert_eq!(counters.calls_to("PUT", "/api.xro/2.0/invoices"), 1);
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/invoices/{id}"), 1);
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/invoices"), 2);
    assert_eq!(counters.calls_for_tenant(NZ), 3);
    assert_eq!(counters.calls_for_tenant(AU), 1);
    assert_eq!(counters.rate_limited(), 1);
    assert_eq!(counters.calls_to("POST", "/connect/token"), 1);
    emu.reset_counters();
    assert_eq!(emu.counters().total_calls(), 0);
}
