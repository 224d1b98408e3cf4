//! Issue 5: sync settings chosen from, and checked against, the organisation in Xero.

use serde_json::{Value, json};
use xero_emulator::demo;

use crate::helpers::*;

async fn connected(account: &str) -> (World, String) {
    let w = World::new().await;
    w.connect_account(account).await;
    let base = format!("/accounts/{account}/connections/{}", demo::NZ_TENANT_ID);
    (w, base)
}

fn settings(version: u64, settings: Value) -> String {
    json!({ "version": version, "settings": settings }).to_string()
}

fn codes(list: &Value, key: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v[key].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn options_offer_only_what_a_sales_invoice_can_use_and_are_served_from_the_snapshot() {
    let (w, base) = connected("acct-options").await;
    let first = json(&w.api("GET", &format!("{base}/options")).await);
    assert_eq!(first["source"], "xero");
    let accounts = codes(&first["sales_accounts"], "code");
    assert!(accounts.contains(&"200".to_owned()) && accounts.contains(&"615".to_owned()), "{accounts:?}");
    for never in ["090", "205", "400", "310"] {
        assert!(!accounts.contains(&never.to_owned()), "{never} must not be offered: {accounts:?}");
    }
    let tax = first["tax_rates"].as_array().unwrap();
    let levy = tax.iter().find(|t| t["tax_type"] == "TAX001").unwrap();
    assert_eq!(levy["effective_rate"], "17.5");
    assert_eq!(levy["components"].as_array().unwrap().len(), 2);
    assert!(
        !codes(&first["tax_rates"], "tax_type").contains(&"INPUT2".to_owned()),
        "purchase-only rates are not offered"
    );
    assert_eq!(first["tracking_categories"][0]["name"], "Region");
    assert!(first["currencies"].as_array().unwrap().iter().any(|c| c["code"] == "NZD"));
    assert!(first["read_at"].as_str().unwrap().ends_with('Z'));

    w.emu.reset_counters();
    let second = json(&w.api("GET", &format!("{base}/options")).await);
    assert_eq!(second["source"], "snapshot");
    assert_eq!(second["read_at"], first["read_at"]);
    assert_eq!(w.emu.counters().total_calls(), 0, "a fresh snapshot costs no Xero call");
}

#[tokio::test]
async fn settings_are_versioned_and_a_stale_write_is_refused() {
    let (w, base) = connected("acct-settings").await;
    let fresh = json(&w.api("GET", &format!("{base}/settings")).await);
    assert_eq!(fresh["version"], 0);
    assert_eq!(fresh["settings"]["new_invoice_status"], "DRAFT");

    let wanted = json!({
        "default_sales_account_code": "200",
        "default_tax_type": "OUTPUT2",
        "new_invoice_status": "AUTHORISED",
        "tax_mapping": [
            { "platform_tax_rate_id": "gst", "rate": 15, "xero_tax_type": "OUTPUT2" },
            { "platform_tax_rate_id": "gst-levy", "rate": "17.50", "components": [2.5, 15], "xero_tax_type": "TAX001" }
        ],
        "tracking_mapping": [{ "xero_category_id": Value::Null, "job_attribute": "zone", "options": { "N": "North" } }],
        "match_items_by_code": true
    });
    let options = json(&w.api("GET", &format!("{base}/options")).await);
    let mut wanted = wanted;
    wanted["tracking_mapping"][0]["xero_category_id"] = options["tracking_categories"][0]["id"].clone();

    let saved = w.api_json("PUT", &format!("{base}/settings"), &settings(0, wanted.clone())).await;
    assert_eq!(saved.status(), 200, "{}", body(&saved));
    assert_eq!(json(&saved)["version"], 1);
    let read = json(&w.api("GET", &format!("{base}/settings")).await);
    assert_eq!(read["version"], 1);
    assert_eq!(read["settings"]["tax_mapping"][1]["rate"], "17.50");

    let stale = w.api_json("PUT", &format!("{base}/settings"), &settings(0, wanted.clone())).await;
    assert_eq!(stale.status(), 409, "{}", body(&stale));
    assert!(json(&stale)["message"].as_str().unwrap().contains("since version 0 (now version 1)"));
    assert_eq!(json(&w.api("GET", &format!("{base}/settings")).await)["version"], 1, "nothing merged");
    assert_eq!(w.api_json("PUT", &format!("{base}/settings"), &settings(1, wanted)).await.status(), 200);
}

#[tokio::test]
async fn a_write_that_breaks_the_rules_lists_every_problem_and_saves_nothing() {
    let (w, base) = connected("acct-rules").await;
    let broken = json!({
        "default_sales_account_code": "090",
        "default_tax_type": "INPUT2",
        "tax_mapping": [
            { "platform_tax_rate_id": "gst", "rate": 12.5, "xero_tax_type": "OUTPUT2" },
            { "platform_tax_rate_id": "levy", "rate": 17.5, "components": [10, 7.5], "xero_tax_type": "TAX001" }
        ]
    });
    let response = w.api_json("PUT", &format!("{base}/settings"), &settings(0, broken)).await;
    assert_eq!(response.status(), 422, "{}", body(&response));
    let problems = json(&response)["problems"].clone();
    let by_field = |f: &str| {
        problems.as_array().unwrap().iter().find(|p| p["field"] == f).map(|p| p["message"].as_str().unwrap().to_owned())
    };
    assert_eq!(
        by_field("settings.default_sales_account_code").unwrap(),
        "account 090 is a bank account and cannot take sales"
    );
    assert_eq!(by_field("settings.default_tax_type").unwrap(), "tax rate INPUT2 cannot be used on sales");
    assert_eq!(by_field("settings.tax_mapping[0].rate").unwrap(), "12.5% does not match OUTPUT2 (15%, effective)");
    assert_eq!(
        by_field("settings.tax_mapping[1].components").unwrap(),
        "components 7.5% + 10% do not match TAX001's 2.5% + 15%"
    );
    assert_eq!(json(&w.api("GET", &format!("{base}/settings")).await)["version"], 0, "nothing saved");

    let archived = w
        .api_json("PUT", &format!("{base}/settings"), &settings(0, json!({"default_sales_account_code": "205"})))
        .await;
    assert_eq!(archived.status(), 422);
    assert!(body(&archived).contains("account 205 is archived in Xero"));
}

#[tokio::test]
async fn a_malformed_settings_body_is_a_400_naming_the_field() {
    let (w, base) = connected("acct-malformed").await;
    for (payload, field, says) in [
        ("{\"settings\": {}}".to_owned(), "body", "missing field `version`"),
        (
            settings(0, json!({"new_invoice_status": "PAID"})),
            "settings.new_invoice_status",
            "unknown variant, expected `DRAFT` or `AUTHORISED`",
        ),
        (
            settings(
                0,
                json!({"tax_mapping": [{"platform_tax_rate_id": "x", "rate": "lots", "xero_tax_type": "OUTPUT2"}]}),
            ),
            "settings.tax_mapping[0].rate",
            "is not a decimal number",
        ),
        (settings(0, json!({"colour": "blue"})), "settings.colour", "unknown field, expected one of"),
        ("not json".to_owned(), "body", "expected"),
    ] {
        let response = w.api_json("PUT", &format!("{base}/settings"), &payload).await;
        assert_eq!(response.status(), 400, "{payload}: {}", body(&response));
        let problem = &json(&response)["problems"][0];
        assert_eq!(problem["field"], field, "{payload}");
        assert!(problem["message"].as_str().unwrap().contains(says), "{payload}: {problem}");
        // The message describes the value's kind, never the value (issue 15, item 17).
        for value in ["PAID", "lots", "blue"] {
            assert!(!problem["message"].as_str().unwrap().contains(value), "{payload}: {problem}");
        }
    }
}

#[tokio::test]
async fn validate_reports_an_account_archived_in_xero_since_it_was_chosen() {
    let (w, base) = connected("acct-validate").await;
    let chosen = json!({"default_sales_account_code": "200", "default_tax_type": "OUTPUT2"});
    assert_eq!(w.api_json("PUT", &format!("{base}/settings"), &settings(0, chosen)).await.status(), 200);
    let clean = json(&w.api_json("POST", &format!("{base}/validate"), r#"{"account_codes": ["260"]}"#).await);
    assert_eq!(clean["ok"], true, "{clean}");

    // Someone archives account 200 in Xero.
    let mut nz = demo::seed().organisations.into_iter().find(|o| o.tenant_id == demo::NZ_TENANT_ID).unwrap();
    nz.accounts.iter_mut().filter(|a| a.code == "200").for_each(|a| a.status = "ARCHIVED".into());
    w.emu.seed_org(nz).unwrap();

    let report = json(&w.api_json("POST", &format!("{base}/validate"), r#"{"account_codes": ["260", "999"]}"#).await);
    assert_eq!(report["ok"], false);
    let messages: Vec<&str> =
        report["problems"].as_array().unwrap().iter().map(|p| p["message"].as_str().unwrap()).collect();
    assert!(messages.contains(&"account 200 is archived in Xero"), "{messages:?}");
    assert!(messages.contains(&"account 999 does not exist in Xero"), "{messages:?}");
    assert!(!messages.iter().any(|m| m.contains("260")));
    let options = json(&w.api("GET", &format!("{base}/options")).await);
    assert!(!codes(&options["sales_accounts"], "code").contains(&"200".to_owned()), "validate refreshed the snapshot");
}
