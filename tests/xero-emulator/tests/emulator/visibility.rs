//! A record can reach list queries after the UpdatedDateUTC it carries.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use xero_emulator::{EmulatorConfig, LimitsConfig};

use crate::helpers::*;

fn ms_date(t: DateTime<Utc>) -> String {
    format!("/Date({}+0000)/", t.timestamp_millis())
}

fn names(resp: &Resp) -> Vec<String> {
    resp.body["Contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["Name"].as_str().unwrap_or("").into())
        .collect()
}

#[tokio::test]
async fn a_contact_hidden_for_30_seconds_appears_later_with_its_own_updated_date() {
    let seeded: DateTime<Utc> = "2026-11-02T09:15:20.250Z".parse().expect("time");
    let config = EmulatorConfig::default().auto_approve(true).limits(LimitsConfig::disabled()).start_time(seeded);
    let emu = start_with(config).await;
    let api = connected_api(&emu).await;
    emu.clock().advance(Duration::from_secs(60));
    let t = emu.clock().now();
    let created = api.put("/Contacts", &json!({"Name": "Late Arrival Ltd"})).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let id: Uuid = created.body["Contacts"][0]["ContactID"].as_str().and_then(|s| s.parse().ok()).expect("id");
    emu.delay_visibility(NZ, "contacts", id, t + TimeDelta::seconds(30)).expect("delayed");

    emu.clock().advance(Duration::from_secs(10));
    let since = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let modified = api.send("GET", "/Contacts", None, &[("If-Modified-Since", &since)]).await;
    assert_eq!(modified.status, 200);
    assert!(names(&modified).is_empty(), "{:?}", names(&modified));
    assert!(!names(&api.get("/Contacts").await).contains(&"Late Arrival Ltd".to_string()));
    assert_eq!(api.get(&format!("/Contacts/{id}")).await.status, 404);
    assert!(emu.contacts(NZ).iter().any(|c| c["Name"] == "Late Arrival Ltd"), "the store still has it");

    emu.clock().advance(Duration::from_secs(21));
    let modified = api.send("GET", "/Contacts", None, &[("If-Modified-Since", &since)]).await;
    assert_eq!(names(&modified), vec!["Late Arrival Ltd"]);
    assert_eq!(modified.body["Contacts"][0]["UpdatedDateUTC"], ms_date(t));
    assert_eq!(api.get(&format!("/Contacts/{id}")).await.status, 200);
}

#[tokio::test]
async fn visibility_can_be_delayed_over_the_control_api() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    let inv = create_invoice(&api, invoice("LATE-1", "10")).await;
    let id = inv["InvoiceID"].as_str().expect("id");
    let at = emu.clock().now() + TimeDelta::seconds(5);
    let url = format!("{}/_emulator/visibility", emu.base_url());
    let call = |body: Value| http().post(&url).json(&body).send();
    let resp = call(json!({"tenant_id": NZ, "resource": "Invoices", "id": id, "visible_at": at.to_rfc3339()}))
        .await
        .expect("control call");
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.expect("json");
    assert_eq!(answer["resource"], "invoices");
    assert_eq!(api.get("/Invoices").await.body["Invoices"], json!([]));
    assert_eq!(api.get("/Invoices/LATE-1").await.status, 404);
    emu.clock().advance(Duration::from_secs(5));
    assert_eq!(api.get("/Invoices/LATE-1").await.status, 200);
    let bad = call(json!({"tenant_id": NZ, "resource": "accounts", "id": id, "visible_at": at.to_rfc3339()}));
    assert_eq!(bad.await.expect("control call").status(), 400);
    assert!(emu.delay_visibility(Uuid::new_v4(), "payments", Uuid::new_v4(), at).is_err());
}
