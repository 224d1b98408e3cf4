use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use xero_emulator::{ClientSeed, EmulatorConfig, LimitsConfig, demo};

use crate::helpers::*;
use crate::spec::{SpecFile, assert_valid};

fn consent_id(html: &str) -> String {
    let marker = "name=\"consent_id\" value=\"";
    let start = html.find(marker).expect("consent form") + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_string()
}

async fn consent_page(emu: &xero_emulator::Emulator) -> String {
    let resp = http().get(authorize_url(emu, demo::CLIENT_ID, REDIRECT, "xyz", None)).send().await.expect("page");
    assert_eq!(resp.status(), 200);
    resp.text().await.expect("html")
}

async fn answer(emu: &xero_emulator::Emulator, form: &[(&str, &str)]) -> reqwest::Response {
    http().post(emu.authorize_url()).form(form).send().await.expect("answer")
}

async fn consenting_emulator() -> xero_emulator::Emulator {
    start_with(EmulatorConfig::default().limits(LimitsConfig::disabled())).await
}

#[tokio::test]
async fn the_consent_page_lists_the_users_organisations_and_approving_redirects_with_code_and_state() {
    let emu = consenting_emulator().await;
    let html = consent_page(&emu).await;
    assert!(html.contains("Demo Company (NZ)") && html.contains("Demo Company (AU)"), "{html}");
    assert!(html.contains("demo@example.com"));
    assert!(html.contains("value=\"approve\"") && html.contains("value=\"deny\""));
    let id = consent_id(&html);
    let nz = NZ.to_string();
    let resp = answer(&emu, &[("consent_id", &id), ("tenant", &nz), ("action", "approve")]).await;
    let (base, params) = location_params(&resp);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&params, "state"), Some("xyz"));
    let code = param(&params, "code").expect("code");
    let (status, tokens) = exchange(&emu, code).await;
    assert_eq!(status, 200, "{tokens}");
    let conns = emu.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["tenantId"], nz);
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied_and_the_state() {
    let emu = consenting_emulator().await;
    let id = consent_id(&consent_page(&emu).await);
    let resp = answer(&emu, &[("consent_id", &id), ("action", "deny")]).await;
    let (base, params) = location_params(&resp);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("xyz"));
    assert_eq!(param(&params, "code"), None);
    // The consent cannot be answered twice.
    let again = answer(&emu, &[("consent_id", &id), ("action", "approve")]).await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn picking_several_organisations_connects_each_of_them_under_one_auth_event() {
    let emu = consenting_emulator().await;
    let id = consent_id(&consent_page(&emu).await);
    let (nz, au) = (NZ.to_string(), AU.to_string());
    let resp = answer(&emu, &[("consent_id", &id), ("tenant", &nz), ("tenant", &au), ("action", "approve")]).await;
    let (_, params) = location_params(&resp);
    let (status, tokens) = exchange(&emu, param(&params, "code").expect("code")).await;
    assert_eq!(status, 200);
    let conns = http()
        .get(format!("{}/connections", emu.base_url()))
        .bearer_auth(tokens["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect("connections")
        .json::<Value>()
        .await
        .expect("json");
    assert_valid(SpecFile::Identity, "[]Connection", &conns);
    let list = conns.as_array().expect("array");
    assert_eq!(list.len(), 2);
    let names: Vec<&str> = list.iter().map(|c| c["tenantName"].as_str().unwrap_or_default()).collect();
    assert!(names.contains(&"Demo Company (NZ)") && names.contains(&"Demo Company (AU)"));
    assert_eq!(list[0]["authEventId"], list[1]["authEventId"]);
    assert!(list.iter().all(|c| c["tenantType"] == "ORGANISATION"));
}

#[tokio::test]
async fn approving_without_choosing_an_organisation_shows_the_page_again() {
    let emu = consenting_emulator().await;
    let id = consent_id(&consent_page(&emu).await);
    let resp = answer(&emu, &[("consent_id", &id), ("action", "approve")]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.expect("html").contains("Select at least one organisation"));
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_client_shows_an_error_page_without_redirecting() {
    let emu = consenting_emulator().await;
    let bad_redirect = http()
        .get(authorize_url(&emu, demo::CLIENT_ID, "https://evil.example/cb", "s", None))
        .send()
        .await
        .expect("call");
    assert_eq!(bad_redirect.status(), 400);
    assert!(bad_redirect.headers().get("location").is_none());
    assert!(bad_redirect.text().await.expect("html").contains("redirect_uri"));
    let bad_client = http().get(authorize_url(&emu, "NOPE", REDIRECT, "s", None)).send().await.expect("call");
    assert_eq!(bad_client.status(), 400);
    assert!(bad_client.headers().get("location").is_none());
}

#[tokio::test]
async fn auto_approve_redirects_at_once_and_can_be_limited_to_some_tenants() {
    let emu = start_with(EmulatorConfig::default().auto_approve(true).approve_tenants(vec![AU])).await;
    let code = get_code(&emu, None).await;
    let (status, _) = exchange(&emu, &code).await;
    assert_eq!(status, 200);
    let conns = emu.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["tenantId"], AU.to_string());
}

#[tokio::test]
async fn the_signed_in_user_is_configurable() {
    let emu = start().await;
    emu.add_user(xero_emulator::UserSeed {
        user_id: None,
        email: "second@example.com".into(),
        given_name: "Second".into(),
        family_name: "Person".into(),
        organisations: vec![AU],
    })
    .expect("user");
    emu.set_signed_in_user(Some("second@example.com"));
    let tokens = connect(&emu).await;
    let id = jwt_claims(tokens.raw["id_token"].as_str().expect("id token"));
    assert_eq!(id["email"], "second@example.com");
    assert_eq!(id["given_name"], "Second");
    assert_eq!(emu.connections().len(), 1);
    assert_eq!(emu.connections()[0]["tenantId"], AU.to_string());
}

#[tokio::test]
async fn exchanging_a_code_returns_a_jwt_access_token_a_refresh_token_and_an_id_token() {
    let emu = start().await;
    let tokens = connect(&emu).await;
    let raw = &tokens.raw;
    assert_eq!(raw["token_type"], "Bearer");
    assert_eq!(raw["expires_in"], 1800);
    assert_eq!(raw["scope"], SCOPE);
    assert_valid(SpecFile::Identity, "AccessToken", raw);
    let claims = jwt_claims(&tokens.access);
    for claim in ["authentication_event_id", "xero_userid", "sub", "client_id", "scope", "exp", "nbf", "iat", "jti"] {
        assert!(!claims[claim].is_null(), "missing {claim} in {claims}");
    }
    assert_eq!(claims["client_id"], demo::CLIENT_ID);
    assert_eq!(claims["xero_userid"], demo::USER_ID.to_string());
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 1800);
    let conns = emu.connections();
    assert_eq!(claims["authentication_event_id"], conns[0]["authEventId"]);
    let id = jwt_claims(raw["id_token"].as_str().expect("id_token"));
    assert_eq!(id["email"], demo::USER_EMAIL);
    assert_eq!(id["given_name"], "Demo");
    assert_eq!(id["family_name"], "User");
}

#[tokio::test]
async fn a_code_exchange_with_a_wrong_client_secret_is_invalid_client() {
    let emu = start().await;
    let code = get_code(&emu, None).await;
    let (status, body) = token_request(
        &emu,
        Some(&basic(demo::CLIENT_ID, "wrong")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) =
        token_request(&emu, None, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)])
            .await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn a_code_exchange_with_a_different_redirect_uri_is_invalid_grant() {
    let emu = start().await;
    let code = get_code(&emu, None).await;
    let (status, body) = token_request(
        &emu,
        Some(&demo_basic()),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", demo::REDIRECT_URIS[1])],
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn pkce_is_verified_when_a_challenge_was_sent() {
    let emu = start().await;
    let (verifier, challenge) = pkce_pair();
    let code = get_code(&emu, Some(&challenge)).await;
    let form =
        |v: &'static str| vec![("grant_type", "authorization_code"), ("redirect_uri", REDIRECT), ("code_verifier", v)];
    let mut wrong = form("not-the-verifier");
    wrong.push(("code", &code));
    let (status, body) = token_request(&emu, Some(&demo_basic()), &wrong).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    // A failed attempt burns the code, as a replayed code would; a fresh one with the right verifier works.
    let code = get_code(&emu, Some(&challenge)).await;
    let (status, body) = token_request(
        &emu,
        Some(&demo_basic()),
        &[
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let missing = get_code(&emu, Some(&challenge)).await;
    let (status, _) = exchange(&emu, &missing).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_code_can_be_used_only_once() {
    let emu = start().await;
    let code = get_code(&emu, None).await;
    assert_eq!(exchange(&emu, &code).await.0, 200);
    let (status, body) = exchange(&emu, &code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_code_expires_after_five_minutes() {
    let emu = start().await;
    let fresh = get_code(&emu, None).await;
    let stale = get_code(&emu, None).await;
    emu.clock().advance(Duration::from_secs(4 * 60 + 59));
    assert_eq!(exchange(&emu, &fresh).await.0, 200);
    emu.clock().advance(Duration::from_secs(2));
    let (status, body) = exchange(&emu, &stale).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token_and_the_old_one_works_during_the_grace_period() {
    let emu = start().await;
    let tokens = connect(&emu).await;
    let (status, first) = refresh(&emu, &tokens.refresh).await;
    assert_eq!(status, 200, "{first}");
    let new_refresh = first["refresh_token"].as_str().expect("rotated").to_string();
    assert_ne!(new_refresh, tokens.refresh);
    assert_ne!(first["access_token"], tokens.raw["access_token"]);
    emu.clock().advance(Duration::from_secs(29 * 60));
    let (status, again) = refresh(&emu, &tokens.refresh).await;
    assert_eq!(status, 200, "the old token still works inside the grace period: {again}");
    assert_eq!(refresh(&emu, &new_refresh).await.0, 200);
}

#[tokio::test]
async fn a_refresh_token_used_twice_after_the_grace_period_is_invalid_grant() {
    let emu = start().await;
    let tokens = connect(&emu).await;
    let (status, rotated) = refresh(&emu, &tokens.refresh).await;
    assert_eq!(status, 200);
    emu.clock().advance(Duration::from_secs(30 * 60 + 1));
    let (status, body) = refresh(&emu, &tokens.refresh).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(refresh(&emu, rotated["refresh_token"].as_str().expect("new")).await.0, 200);
}

#[tokio::test]
async fn an_unused_refresh_token_expires_after_sixty_days() {
    let emu = start().await;
    let a = connect(&emu).await;
    let b = connect(&emu).await;
    emu.clock().advance(Duration::from_secs(60 * 24 * 3600 - 60));
    assert_eq!(refresh(&emu, &a.refresh).await.0, 200);
    emu.clock().advance(Duration::from_secs(120));
    let (status, body) = refresh(&emu, &b.refresh).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn an_access_token_expires_after_thirty_minutes() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    assert_eq!(api.get("/Organisation").await.status, 200);
    emu.clock().advance(Duration::from_secs(30 * 60));
    let resp = api.get("/Organisation").await;
    assert_eq!(resp.status, 401);
    assert!(resp.body["Detail"].as_str().unwrap_or_default().starts_with("TokenExpired"), "{}", resp.text);
}

#[tokio::test]
async fn revoking_a_refresh_token_stops_its_tokens_and_removes_its_connections() {
    let emu = start().await;
    let tokens = connect(&emu).await;
    let api = Api::new(&emu, &tokens, NZ);
    assert_eq!(api.get("/Organisation").await.status, 200);
    let resp = http()
        .post(format!("{}/connect/revocation", emu.base_url()))
        .header("authorization", demo_basic())
        .form(&[("token", tokens.refresh.as_str())])
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 200);
    assert_eq!(refresh(&emu, &tokens.refresh).await.1["error"], "invalid_grant");
    assert_eq!(api.get("/Organisation").await.status, 401);
    assert!(emu.connections().is_empty());
    let unauthenticated = http()
        .post(format!("{}/connect/revocation", emu.base_url()))
        .form(&[("token", "whatever")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn connections_can_be_filtered_by_auth_event_id_and_deleted() {
    let emu = start().await;
    emu.set_auto_approve(true, Some(vec![NZ]));
    let first = connect(&emu).await;
    emu.set_auto_approve(true, Some(vec![AU]));
    let second = connect(&emu).await;
    let event = jwt_claims(&second.access)["authentication_event_id"].as_str().expect("event").to_string();
    let client = http();
    let url = format!("{}/connections", emu.base_url());
    let all: Value = client.get(&url).bearer_auth(&first.access).send().await.expect("get").json().await.expect("json");
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let filtered: Value = client
        .get(format!("{url}?authEventId={event}"))
        .bearer_auth(&first.access)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_valid(SpecFile::Identity, "[]Connection", &filtered);
    let filtered = filtered.as_array().expect("array");
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["tenantId"], AU.to_string());
    let id = filtered[0]["id"].as_str().expect("id");
    let deleted = client.delete(format!("{url}/{id}")).bearer_auth(&first.access).send().await.expect("delete");
    assert_eq!(deleted.status(), 204);
    let again = client.delete(format!("{url}/{id}")).bearer_auth(&first.access).send().await.expect("delete");
    assert_eq!(again.status(), 404);
    let unknown =
        client.delete(format!("{url}/{}", Uuid::new_v4())).bearer_auth(&first.access).send().await.expect("delete");
    assert_eq!(unknown.status(), 404);
    assert_eq!(Api::new(&emu, &second, AU).get("/Organisation").await.status, 403);
    assert_eq!(client.get(&url).send().await.expect("get").status(), 401);
}

#[tokio::test]
async fn paths_are_case_insensitive_but_ids_keep_their_value() {
    let emu = start().await;
    let tokens = connect(&emu).await;
    let client = http();
    for path in ["/connections", "/Connections", "/CONNECTIONS"] {
        let resp =
            client.get(format!("{}{path}", emu.base_url())).bearer_auth(&tokens.access).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
    }
    let api = Api::new(&emu, &tokens, NZ);
    create_invoice(&api, invoice("inv-Lower", "10")).await;
    for path in ["/Invoices/inv-Lower", "/invoices/inv-Lower", "/INVOICES/inv-Lower"] {
        let resp = api.get(path).await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.body["Invoices"][0]["InvoiceNumber"], "inv-Lower");
    }
    assert_eq!(api.get("/Invoices/INV-LOWER").await.status, 404);
    let lower_api = Api { base: format!("{}/API.XRO/2.0", emu.base_url()), ..api.for_tenant(NZ) };
    assert_eq!(lower_api.get("/organisation").await.status, 200);
    let token = client
        .post(format!("{}/Connect/Token", emu.base_url()))
        .header("authorization", demo_basic())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", tokens.refresh.as_str())])
        .send()
        .await
        .expect("token");
    assert_eq!(token.status(), 200);
}

#[tokio::test]
async fn an_api_call_needs_a_connected_tenant_header_and_a_valid_token() {
    let emu = start().await;
    emu.set_auto_approve(true, Some(vec![NZ]));
    let tokens = connect(&emu).await;
    let api = Api::new(&emu, &tokens, NZ);
    assert_eq!(api.get("/Organisation").await.status, 200);
    let not_connected = api.for_tenant(AU).get("/Organisation").await;
    assert_eq!(not_connected.status, 403);
    assert_eq!(not_connected.body["Detail"], "AuthenticationUnsuccessful");
    assert_eq!(api.for_tenant(Uuid::new_v4()).get("/Organisation").await.status, 403);
    let no_header =
        http().get(format!("{}/Organisation", emu.api_url())).bearer_auth(&tokens.access).send().await.expect("get");
    assert_eq!(no_header.status(), 403);
    let mut forged = tokens.access.clone();
    forged.push('x');
    let bad = Api { token: forged, ..api.for_tenant(NZ) }.get("/Organisation").await;
    assert_eq!(bad.status, 401);
    let none = http()
        .get(format!("{}/Organisation", emu.api_url()))
        .header("xero-tenant-id", NZ.to_string())
        .send()
        .await
        .expect("get");
    assert_eq!(none.status(), 401);
}

#[tokio::test]
async fn a_public_client_can_exchange_a_code_with_pkce_and_no_secret() {
    let emu = start().await;
    emu.add_client(ClientSeed {
        client_id: "PUBLIC".into(),
        client_secret: "unused".into(),
        redirect_uris: vec!["http://localhost:5000/cb".into()],
        name: None,
    })
    .expect("client");
    let (verifier, challenge) = pkce_pair();
    let resp = http()
        .get(authorize_url(&emu, "PUBLIC", "http://localhost:5000/cb", "s", Some(&challenge)))
        .send()
        .await
        .expect("a");
    let (_, params) = location_params(&resp);
    let code = param(&params, "code").expect("code").to_string();
    let (status, body) = token_request(
        &emu,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "PUBLIC"),
            ("code", &code),
            ("redirect_uri", "http://localhost:5000/cb"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn client_credentials_in_basic_auth_may_be_form_encoded() {
    let emu = start().await;
    emu.add_client(ClientSeed {
        client_id: "ENCODED".into(),
        client_secret: "p+q/r s".into(),
        redirect_uris: vec![REDIRECT.into()],
        name: None,
    })
    .expect("client");
    let resp = http().get(authorize_url(&emu, "ENCODED", REDIRECT, "s", None)).send().await.expect("authorize");
    let (_, params) = location_params(&resp);
    let code = param(&params, "code").expect("code").to_string();
    let encoded: String = url::form_urlencoded::byte_serialize(b"p+q/r s").collect();
    let (status, body) = token_request(
        &emu,
        Some(&basic("ENCODED", &encoded)),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
