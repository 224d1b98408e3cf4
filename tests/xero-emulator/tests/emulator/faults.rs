use std::time::{Duration, Instant};

use serde_json::json;
use xero_emulator::{EmulatorConfig, FaultAction, FaultRule, LimitsConfig, Trigger};

use crate::helpers::*;
use crate::spec::accounting as spec;

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

#[tokio::test]
async fn a_garbled_answer_after_the_write_hides_the_outcome_until_the_keyed_retry() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    emu.faults().garbled_after_write(Some("PUT"), "/api.xro/2.0/invoices");
    let body = json!({"Invoices": [invoice("GARBLED-1", "10")]});
    let key = [("Idempotency-Key", "lost-answer")];
    let garbled = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(garbled.status, 200);
    assert!(garbled.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    assert!(serde_json::from_str::<serde_json::Value>(&garbled.text).is_err(), "{}", garbled.text);
    assert!(garbled.text.starts_with('{'), "{}", garbled.text);
    assert_eq!(emu.invoices(NZ).len(), 1, "the write was applied");
    let retry = api.send("PUT", "/Invoices", Some(&body), &key).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    spec("Invoices", &retry.body);
    assert_eq!(retry.body["Invoices"][0]["InvoiceNumber"], "GARBLED-1");
    assert_eq!(retry.body["Invoices"][0]["InvoiceID"], emu.invoices(NZ)[0]["InvoiceID"]);
    assert_eq!(emu.invoices(NZ).len(), 1, "the retry replayed the real answer");
}

#[tokio::test]
async fn a_rewritten_answer_spoils_one_value_and_leaves_the_rest() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let rule = json!({"method": "GET", "path": "/api.xro/2.0/contacts",
        "action": {"rewrite_response": {"pointer": "/Contacts/0/UpdatedDateUTC", "value": "not a date"}}});
    let faults = format!("{}/_emulator/faults", emu.base_url());
    let added: serde_json::Value =
        http().post(&faults).json(&rule).send().await.expect("add").json().await.expect("json");
    let listed: serde_json::Value = http().get(&faults).send().await.expect("list").json().await.expect("json");
    assert_eq!(listed[0]["rule"]["action"], rule["action"]);
    let contacts = api.get("/Contacts").await.body["Contacts"].as_array().expect("contacts").clone();
    assert_eq!(contacts[0]["UpdatedDateUTC"], "not a date");
    assert!(contacts[1..].iter().all(|c| c["UpdatedDateUTC"].as_str().is_some_and(|d| d.starts_with("/Date("))));
    assert!(emu.contacts(NZ).iter().all(|c| c["UpdatedDateUTC"] != "not a date"), "only the answer changed");
    let id = added["id"].as_u64().expect("id");
    assert!(emu.faults().remove(id));
    let clean = api.get("/Contacts").await;
    assert!(clean.body["Contacts"][0]["UpdatedDateUTC"].as_str().is_some_and(|d| d.starts_with("/Date(")));

    // From Rust, on a write: the write is applied and only its answer is rewritten.
    emu.faults().rewrite_response(Some("PUT"), "/api.xro/2.0/contacts", "/Contacts/0/Name", json!(42));
    let created = api.put("/Contacts", &json!({"Name": "Rewritten Ltd"})).await;
    assert_eq!(created.body["Contacts"][0]["Name"], 42);
    assert!(emu.contacts(NZ).iter().any(|c| c["Name"] == "Rewritten Ltd"));
    let garbled = json!({"path": "/connect/token", "action": {"garbled_after_write": {}}});
    assert_eq!(http().post(&faults).json(&garbled).send().await.expect("add").status(), 200);
    let code = get_code(&emu, None).await;
    let (status, body) = exchange(&emu, &code).await;
    assert_eq!((status, body), (200, serde_json::Value::Null), "the token answer cannot be read");
}
