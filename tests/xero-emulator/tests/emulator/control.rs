use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = http().request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("control call");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_control_api_over_http_seeds_steers_and_reads_the_emulator() {
    let emu = start_with(xero_emulator::EmulatorConfig::empty()).await;
    let c = |path: &str| format!("{}/_emulator{path}", emu.base_url());
    use reqwest::Method;
    let tenant = Uuid::new_v4();
    let seed = json!({
        "organisations": [{
            "tenant_id": tenant, "name": "Http Seeded Ltd", "base_currency": "NZD",
            "accounts": [{"Code": "200", "Name": "Sales", "Type": "REVENUE", "TaxType": "OUTPUT2"},
                         {"Code": "090", "Name": "Bank", "Type": "BANK"}],
            "tax_rates": [{"Name": "GST", "TaxType": "OUTPUT2", "TaxComponents": [{"Name": "GST", "Rate": 15}]},
                          {"Name": "None", "TaxType": "NONE", "TaxComponents": [{"Name": "GST", "Rate": 0}]}],
            "contacts": [{"Name": "Seeded Contact", "ContactNumber": "S-1"}]
        }],
        "users": [{"email": "http@example.com", "given_name": "Http", "family_name": "User", "organisations": [tenant]}],
        "clients": [{"client_id": "HTTPCLIENT", "client_secret": "s3cret", "redirect_uris": ["http://localhost:7000/cb"]}]
    });
    assert_eq!(call(Method::POST, c("/seed"), Some(seed)).await.0, 200);
    let (_, info) = call(Method::GET, c("/info"), None).await;
    assert_eq!(info["tenants"][0]["name"], "Http Seeded Ltd");
    assert_eq!(info["clients"][0]["clientId"], "HTTPCLIENT");
    assert_eq!(call(Method::POST, c("/seed"), Some(json!({"users": "nope"}))).await.0, 400);

    let (status, settings) =
        call(Method::PUT, c("/settings"), Some(json!({"auto_approve": true, "limits": {"per_minute": 5}}))).await;
    assert_eq!(status, 200);
    assert_eq!(settings["auto_approve"], true);
    assert_eq!(settings["limits"]["per_minute"], 5);
    assert_eq!(settings["limits"]["per_day"], 5000, "a partial update keeps the other settings");

    let before = emu.clock().now();
    let (_, clock) = call(Method::POST, c("/clock/advance"), Some(json!({"seconds": 90}))).await;
    assert_eq!(clock["nowMillis"].as_i64(), Some((before + chrono::TimeDelta::seconds(90)).timestamp_millis()));
    let (_, clock) = call(Method::POST, c("/clock/set"), Some(json!({"now": "2030-01-02T03:04:05Z"}))).await;
    assert_eq!(clock["now"], "2030-01-02T03:04:05.000Z");
    assert_eq!(emu.clock().now().to_rfc3339(), "2030-01-02T03:04:05+00:00");

    // Connect through the OAuth flow with the seeded client, then use the API.
    let url = {
        let mut u = url::Url::parse(&emu.authorize_url()).expect("url");
        u.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "HTTPCLIENT")
            .append_pair("redirect_uri", "http://localhost:7000/cb")
            .append_pair("scope", "offline_access accounting.transactions")
            .append_pair("state", "s");
        u.to_string()
    };
    let (_, params) = location_params(&http().get(url).send().await.expect("authorize"));
    let code = param(&params, "code").expect("code").to_string();
    let (status, tokens) = token_request(
        &emu,
        Some(&basic("HTTPCLIENT", "s3cret")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://localhost:7000/cb")],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("id_token").is_none(), "no openid scope, no id_token");
    let api =
        Api { client: http(), base: emu.api_url(), token: tokens["access_token"].as_str().unwrap().into(), tenant };

    let (status, fault) = call(
        Method::POST,
        c("/faults"),
        Some(json!({"method": "GET", "path": "/api.xro/2.0/organisation", "action": {"status": {"status": 503}}, "trigger": {"nth_call": {"n": 1}}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(api.get("/Organisation").await.status, 503);
    assert_eq!(api.get("/Organisation").await.status, 200);
    let (_, faults) = call(Method::GET, c("/faults"), None).await;
    assert_eq!(faults[0]["id"], fault["id"]);
    assert_eq!(call(Method::DELETE, c(&format!("/faults/{}", fault["id"])), None).await.0, 200);
    assert_eq!(call(Method::GET, c("/faults"), None).await.1, json!([]));

    let mut inv = invoice("HTTP-1", "10");
    inv["Contact"] = json!({"ContactNumber": "S-1"});
    create_invoice(&api, inv).await;
    let (_, invoices) = call(Method::GET, c(&format!("/tenants/{tenant}/invoices")), None).await;
    assert_eq!(invoices[0]["InvoiceNumber"], "HTTP-1");
    assert_eq!(invoices[0]["Contact"]["Name"], "Seeded Contact");
    let (_, contacts) = call(Method::GET, c(&format!("/tenants/{tenant}/contacts")), None).await;
    assert_eq!(contacts.as_array().map(Vec::len), Some(1));
    assert_eq!(call(Method::GET, c(&format!("/tenants/{}/invoices", Uuid::new_v4())), None).await.0, 404);

    let (_, counters) = call(Method::GET, c("/counters"), None).await;
    let calls: u64 = counters["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["endpoint"] == "/api.xro/2.0/organisation")
        .map(|x| x["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(calls, 2);
    let (_, conns) = call(Method::GET, c("/connections"), None).await;
    assert_eq!(conns[0]["tenantId"], tenant.to_string());
    assert_eq!(call(Method::GET, c("/nothing-here"), None).await.0, 404);
    assert_eq!(call(Method::POST, c("/seed/demo"), None).await.0, 200);
    assert_eq!(call(Method::GET, c("/tenants"), None).await.1.as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn webhooks_can_be_triggered_over_the_control_api() {
    let emu = start().await;
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{}/_emulator/webhooks/intent-to-receive", emu.base_url()),
        Some(json!({"url": format!("{}/_emulator/health", emu.base_url()), "key": "k"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["passed"], false, "a health endpoint answers 200 to a bad signature");
    let (status, body) = call(
        reqwest::Method::POST,
        format!("{}/_emulator/webhooks/send", emu.base_url()),
        Some(json!({"url": format!("{}/_emulator/health", emu.base_url()), "key": "k",
                    "events": [{"tenant_id": NZ, "category": "CONTACT", "event_type": "CREATE", "resource_id": Uuid::new_v4()}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payload"]["events"][0]["eventCategory"], "CONTACT");
}
