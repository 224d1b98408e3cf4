//! Shared setup: an emulator, an HTTP client, the OAuth dance and an Accounting API client.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use xero_emulator::{Emulator, EmulatorConfig, LimitsConfig, demo};

pub const NZ: Uuid = demo::NZ_TENANT_ID;
pub const AU: Uuid = demo::AU_TENANT_ID;
pub const REDIRECT: &str = demo::REDIRECT_URIS[0];
pub const SCOPE: &str =
    "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings";

/// The demo seed, auto-approve on, rate limits off (the limit tests switch them on).
pub async fn start() -> Emulator {
    start_with(EmulatorConfig::default().auto_approve(true).limits(LimitsConfig::disabled())).await
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.expect("emulator starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn demo_basic() -> String {
    basic(demo::CLIENT_ID, demo::CLIENT_SECRET)
}

pub fn pkce_pair() -> (String, String) {
    let verifier = "a-long-enough-verifier-0123456789-abcdefghijklmnopqrstuvwxyz".to_string();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn authorize_url(emu: &Emulator, client_id: &str, redirect: &str, state: &str, challenge: Option<&str>) -> String {
    authorize_url_with_scope(emu, client_id, redirect, state, challenge, SCOPE)
}

pub fn authorize_url_with_scope(
    emu: &Emulator,
    client_id: &str,
    redirect: &str,
    state: &str,
    challenge: Option<&str>,
    scope: &str,
) -> String {
    let mut url = url::Url::parse(&emu.authorize_url()).expect("url");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("scope", scope)
            .append_pair("state", state);
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
        }
    }
    url.to_string()
}

/// The query parameters of a 302's Location.
pub fn location_params(resp: &reqwest::Response) -> (String, Vec<(String, String)>) {
    assert_eq!(resp.status(), 302, "expected a redirect");
    let location = resp.headers()["location"].to_str().expect("ascii").to_string();
    let url = url::Url::parse(&location).expect("absolute location");
    let base = location.split('?').next().unwrap_or_default().to_string();
    (base, url.query_pairs().into_owned().collect())
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Runs authorize with auto-approve on and returns the code.
pub async fn get_code(emu: &Emulator, challenge: Option<&str>) -> String {
    let resp =
        http().get(authorize_url(emu, demo::CLIENT_ID, REDIRECT, "st", challenge)).send().await.expect("authorize");
    let (_, params) = location_params(&resp);
    param(&params, "code").expect("code").to_string()
}

pub async fn token_request(emu: &Emulator, auth: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = http().post(emu.token_url()).form(form);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.expect("token call");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn exchange(emu: &Emulator, code: &str) -> (u16, Value) {
    token_request(
        emu,
        Some(&demo_basic()),
        &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)],
    )
    .await
}

pub async fn refresh(emu: &Emulator, refresh_token: &str) -> (u16, Value) {
    token_request(emu, Some(&demo_basic()), &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
}

pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub raw: Value,
}

/// The whole OAuth dance (auto-approve): tokens connected to both demo organisations.
pub async fn connect(emu: &Emulator) -> Tokens {
    let code = get_code(emu, None).await;
    let (status, body) = exchange(emu, &code).await;
    assert_eq!(status, 200, "{body}");
    Tokens {
        access: body["access_token"].as_str().expect("access").into(),
        refresh: body["refresh_token"].as_str().expect("refresh").into(),
        raw: body,
    }
}

pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    pub fn messages(&self) -> Vec<String> {
        let mut out = vec![];
        for e in self.body["Elements"].as_array().into_iter().flatten() {
            for m in e["ValidationErrors"].as_array().into_iter().flatten() {
                out.push(m["Message"].as_str().unwrap_or_default().to_string());
            }
        }
        out
    }
}

/// An Accounting API client for one token and tenant.
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
    pub tenant: Uuid,
}

impl Api {
    pub fn new(emu: &Emulator, tokens: &Tokens, tenant: Uuid) -> Api {
        Api { client: http(), base: emu.api_url(), token: tokens.access.clone(), tenant }
    }

    pub fn for_tenant(&self, tenant: Uuid) -> Api {
        Api { client: self.client.clone(), base: self.base.clone(), token: self.token.clone(), tenant }
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<&Value>, headers: &[(&str, &str)]) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token)
            .header("xero-tenant-id", self.tenant.to_string())
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("api call");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Resp { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, None, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, Some(body), &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, Some(body), &[]).await
    }
}

pub async fn connected_api(emu: &Emulator) -> Api {
    let tokens = connect(emu).await;
    Api::new(emu, &tokens, NZ)
}

/// An API client for the NZ demo organisation whose consent granted exactly `scope`.
pub async fn connected_api_with_scope(emu: &Emulator, scope: &str) -> Api {
    let url = authorize_url_with_scope(emu, demo::CLIENT_ID, REDIRECT, "st", None, scope);
    let (_, params) = location_params(&http().get(url).send().await.expect("authorize"));
    let (status, body) = exchange(emu, param(&params, "code").expect("code")).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().expect("access").to_string();
    Api { client: http(), base: emu.api_url(), token: access, tenant: NZ }
}

/// A valid ACCREC invoice for the NZ demo org.
pub fn invoice(number: &str, unit: &str) -> Value {
    json!({
        "Type": "ACCREC",
        "Contact": {"ContactNumber": "C-1001"},
        "Date": "2026-11-01",
        "DueDate": "2026-11-20",
        "InvoiceNumber": number,
        "Reference": "Job 42",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "LineItems": [{"Description": "Blocked drain", "Quantity": 1, "UnitAmount": unit.parse::<f64>().unwrap_or(0.0), "AccountCode": "200", "TaxType": "OUTPUT2"}],
    })
}

pub async fn create_invoice(api: &Api, body: Value) -> Value {
    let resp = api.put("/Invoices", &json!({"Invoices": [body]})).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.body["Invoices"][0].clone()
}
