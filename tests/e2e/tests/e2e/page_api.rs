//! Issue 20, the hosted integration page at the HTTP level: how a session is opened and
//! refused, the cookie and headers that keep it to one browser and to the allowed frames, and
//! forms refused without their CSRF token. The page's use in a browser is in `page_browser`.

use std::time::Duration;

use lambda_http::{Body, Response};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_domain::signing::{Signed, sign};
use xero_sync_testkit::apigw;

use crate::helpers::*;

pub fn session_body() -> Value {
    json!({
        "tax_rates": [
            { "id": "gst", "name": "GST 15%", "rate": "15" },
            { "id": "zero", "name": "Zero rated", "rate": "0" },
        ],
        "job_attributes": ["zone", "Job type"],
        "payment_methods": ["card", "bank_transfer"],
        "user_display_name": "Ana Bookkeeper",
        "return_url": "https://platform.example.com/settings/xero",
        "locale": "en-NZ",
    })
}

/// The platform's signed call; the answer as it came.
pub async fn open_session(w: &World, account: &str, body: &Value) -> Response<Body> {
    let path = format!("/accounts/{account}/integration-sessions");
    let body = body.to_string();
    let header =
        sign(&w.platform, w.now(), &Signed::Api { method: "POST", path_and_query: &path, body: body.as_bytes() });
    let headers = [("x-xerosync-signature", header.as_str()), ("content-type", "application/json")];
    integration_page::handle(&w.page, apigw::request("POST", &path, &headers, Some(&body))).await
}

/// The single-use URL the platform is given, path and query only.
pub async fn session_url(w: &World, account: &str) -> String {
    let response = open_session(w, account, &session_body()).await;
    assert_eq!(response.status(), 201, "{}", body(&response));
    let url = url::Url::parse(json(&response)["url"].as_str().unwrap()).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap())
}

async fn get(w: &World, path: &str, cookie: Option<&str>) -> Response<Body> {
    let cookie = cookie.map(|c| format!("{}={c}", integration_page::SESSION_COOKIE));
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
    integration_page::handle(&w.page, apigw::request("GET", path, &headers, None)).await
}

async fn post_form(w: &World, path: &str, cookie: &str, form: &str) -> Response<Body> {
    let cookie = format!("{}={cookie}", integration_page::SESSION_COOKIE);
    let headers = [("cookie", cookie.as_str()), ("content-type", "application/x-www-form-urlencoded")];
    integration_page::handle(&w.page, apigw::request("POST", path, &headers, Some(form))).await
}

fn header<'a>(r: &'a Response<Body>, name: &str) -> &'a str {
    r.headers().get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

/// Opens the URL as a browser would: the session cookie's value.
async fn opened(w: &World, url: &str) -> String {
    let response = get(w, url, None).await;
    assert_eq!((response.status().as_u16(), header(&response, "location")), (303, "/integration"));
    let cookie = header(&response, "set-cookie");
    cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

#[tokio::test]
async fn a_session_url_opens_the_page_once_for_one_browser_with_a_partitioned_secure_cookie() {
    let account = "acct-page-open";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let url = session_url(&w, account).await;
    assert!(url.starts_with("/integration?session="), "{url}");

    let response = get(&w, &url, None).await;
    assert_eq!(response.status(), 303);
    let cookie = header(&response, "set-cookie");
    for attribute in ["__Host-xero-sync-page=", "Path=/", "HttpOnly", "Secure", "SameSite=None", "Partitioned"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;

    let page = get(&w, "/integration", Some(value)).await;
    assert_eq!(page.status(), 200);
    let html = body(&page);
    assert!(html.contains("Demo Company (NZ)") && html.contains("Connected"), "the status card");
    assert!(html.contains("Ana Bookkeeper"), "the user's name");
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("frame-ancestors https://platform.example.com"), "{csp}");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");

    // The same URL again (a replay, or a second browser): refused, and no new session.
    let replay = get(&w, &url, None).await;
    assert_eq!(replay.status(), 401);
    assert!(header(&replay, "set-cookie").is_empty());
    assert!(body(&replay).contains("already been used"));
}

#[tokio::test]
async fn an_expired_or_forged_session_url_and_a_missing_cookie_are_refused() {
    let account = "acct-page-refused";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let url = session_url(&w, account).await;
    w.emu.clock().advance(Duration::from_secs(6 * 60));
    let expired = get(&w, &url, None).await;
    assert_eq!(expired.status(), 401);
    assert!(body(&expired).contains("expired"), "{}", body(&expired));

    let forged = get(&w, "/integration?session=Zm9yZ2VkLXRva2VuLW5vdC1pc3N1ZWQtYnktdXM", None).await;
    assert_eq!(forged.status(), 401);

    let no_cookie = get(&w, "/integration", None).await;
    assert_eq!(no_cookie.status(), 401);
    assert!(body(&no_cookie).contains("session has ended"));
    let made_up = get(&w, "/integration", Some("made-up-session-id")).await;
    assert_eq!(made_up.status(), 401);
}

#[tokio::test]
async fn a_session_outlives_no_more_than_its_lifetime() {
    let account = "acct-page-lifetime";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    assert_eq!(get(&w, "/integration", Some(&cookie)).await.status(), 200);
    w.emu.clock().advance(Duration::from_secs(2 * 3600 + 1));
    assert_eq!(get(&w, "/integration", Some(&cookie)).await.status(), 401, "ended: TTL is not trusted");
}

#[tokio::test]
async fn the_session_call_is_signed_and_names_every_problem_in_what_it_sends() {
    let account = "acct-page-api";
    let w = World::new().await;
    let path = format!("/accounts/{account}/integration-sessions");
    let unsigned = integration_page::handle(&w.page, apigw::request("POST", &path, &[], Some("{}"))).await;
    assert_eq!(unsigned.status(), 401);

    let mut bad = session_body();
    bad["user_display_name"] = json!("");
    bad["tax_rates"][1]["rate"] = json!("150");
    bad["return_url"] = json!("https://elsewhere.example.net/");
    bad["locale"] = json!("not a locale");
    let refused = open_session(&w, account, &bad).await;
    assert_eq!(refused.status(), 400);
    let fields: Vec<String> = json(&refused)["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["user_display_name", "tax_rates[1].rate", "locale", "return_url"]);

    let mut unknown = session_body();
    unknown["password"] = json!("x");
    let refused = open_session(&w, account, &unknown).await;
    assert_eq!(refused.status(), 400);
    assert!(body(&refused).contains("unknown field"), "{}", body(&refused));
}

#[tokio::test]
async fn a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing() {
    let account = "acct-page-csrf";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    let tenant = demo::NZ_TENANT_ID;
    let before = w.aws.store().get_settings(&key(account)).await.unwrap();

    let form = "version=1&default_sales_account_code=400&new_invoice_status=DRAFT";
    let without = post_form(&w, &format!("/integration/connections/{tenant}/settings"), &cookie, form).await;
    assert_eq!(without.status(), 403);
    let wrong =
        post_form(&w, &format!("/integration/connections/{tenant}/settings"), &cookie, &format!("csrf=guess&{form}"))
            .await;
    assert_eq!(wrong.status(), 403);
    let disconnect = post_form(&w, &format!("/integration/connections/{tenant}/disconnect"), &cookie, "").await;
    assert_eq!(disconnect.status(), 403);

    assert_eq!(w.aws.store().get_settings(&key(account)).await.unwrap(), before, "nothing saved");
    assert!(w.connections(account).await[0].status.is_live(), "still connected");
}

#[tokio::test]
async fn a_session_sees_only_its_own_accounts_organisations() {
    let w = ready("acct-page-mine", NewInvoiceStatus::Authorised).await;
    let cookie = opened(&w, &session_url(&w, "acct-page-other").await).await;
    let page = body(&get(&w, "/integration", Some(&cookie)).await);
    assert!(!page.contains("Demo Company (NZ)"), "another account's organisation is not shown");
    assert!(page.contains("Connect to Xero"));
    let tenant = demo::NZ_TENANT_ID;
    let confirm = get(&w, &format!("/integration/connections/{tenant}/disconnect"), Some(&cookie)).await;
    assert_eq!(confirm.status(), 404, "not this session's connection");
}

/// The `href` of the page's first Connect or Reconnect button.
fn connect_href(html: &str) -> String {
    let at = html.find("class=\"button xero connect\" href=\"").expect("a connect button");
    let rest = &html[at + "class=\"button xero connect\" href=\"".len()..];
    rest[..rest.find('"').unwrap()].replace("&amp;", "&")
}

#[tokio::test]
async fn the_pages_connect_button_mints_a_fresh_link_until_the_session_ends_and_cannot_be_forged() {
    let account = "acct-page-connect";
    let w = World::new().await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    let html = body(&get(&w, "/integration", Some(&cookie)).await);
    let href = connect_href(&html);
    assert!(href.starts_with("/integration/connect?account=acct-page-connect&expires="), "{href}");

    // Without the cookie (a popup from an embedded page): a fresh connect link coming back to the page.
    let minted = get(&w, &href, None).await;
    assert_eq!(minted.status(), 303);
    let link = url::Url::parse(header(&minted, "location")).unwrap();
    assert_eq!(link.path(), "/connect");
    let query: std::collections::HashMap<_, _> = link.query_pairs().into_owned().collect();
    assert_eq!(query["account_id"], account);
    assert!(query["return_to"].ends_with("/integration/connected"), "{query:?}");
    // An hour later the button still works: each click makes its own link.
    w.emu.clock().advance(Duration::from_secs(3600));
    assert_eq!(get(&w, &href, None).await.status(), 303);
    let fresh = url::Url::parse(header(&get(&w, &href, None).await, "location")).unwrap();
    let connected = w.consent(&format!("{}?{}", fresh.path(), fresh.query().unwrap())).await;
    assert!(connected.starts_with("/oauth/callback?"), "{connected}");

    let forged = href.replace("acct-page-connect", "acct-someone-else");
    assert_eq!(get(&w, &forged, None).await.status(), 401, "the ticket is for one account");
    w.emu.clock().advance(Duration::from_secs(3601));
    let late = get(&w, &href, None).await;
    assert_eq!(late.status(), 401, "not after the session ends");
    assert!(body(&late).contains("expired"));
}

#[tokio::test]
async fn when_xero_cannot_be_read_the_card_keeps_its_status_log_and_buttons_and_says_why_settings_are_missing() {
    let account = "acct-page-xero-down";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    // The snapshot is too old to draw the settings from, and Xero answers every read with a 503.
    w.emu.clock().advance(Duration::from_secs(2 * 3600 - 60));
    let down = w.emu.faults().error_rate(Some("GET"), "/api.xro/2.0/*", 503, 1.0);
    let page = get(&w, "/integration", Some(&cookie)).await;
    assert!(w.emu.faults().fired(down) > 0, "Xero was asked");
    assert_eq!(page.status(), 200, "{}", body(&page));
    let html = body(&page);
    assert!(html.contains("The settings cannot be shown now, because Xero could not be read"), "{html}");
    assert!(html.contains("Demo Company (NZ)") && html.contains("Sync log") && html.contains("Disconnect from Xero"));
    assert!(!html.contains("Save settings"));
}

/// The page's CSRF token, as its forms carry it.
fn csrf(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn a_save_based_on_settings_someone_else_changed_since_says_so_and_saves_nothing() {
    let account = "acct-page-stale";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    let html = body(&get(&w, "/integration", Some(&cookie)).await);
    assert!(html.contains("name=\"version\" value=\"1\""), "the form is based on version 1");
    // Meanwhile, through the API (or another browser):
    let current = w.aws.store().get_settings(&key(account)).await.unwrap();
    let changed = w.aws.store().put_settings(&key(account), 1, &current.settings).await.unwrap();
    assert_eq!(changed.version, 2);

    let tenant = demo::NZ_TENANT_ID;
    let form = format!("csrf={}&version=1&default_sales_account_code=260&new_invoice_status=DRAFT", csrf(&html));
    let stale = post_form(&w, &format!("/integration/connections/{tenant}/settings"), &cookie, &form).await;
    assert_eq!(stale.status(), 409);
    let page = body(&stale);
    assert!(page.contains("Someone else changed these settings"), "{page}");
    assert!(page.contains("name=\"version\" value=\"2\""), "shown again as they are now");
    assert_eq!(w.aws.store().get_settings(&key(account)).await.unwrap(), changed, "nothing saved");
}

#[tokio::test]
async fn each_organisation_of_the_account_has_its_own_card_and_its_own_settings() {
    let account = "acct-page-two";
    let w = World::with(Options { multi_org: true, ..Options::default() }).await;
    w.emu.set_auto_approve(true, Some(vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID]));
    w.connect_account(account).await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    let html = body(&get(&w, "/integration", Some(&cookie)).await);
    for (tenant, name) in [(demo::NZ_TENANT_ID, "Demo Company (NZ)"), (demo::AU_TENANT_ID, "Demo Company (AU)")] {
        assert!(html.contains(&format!("id=\"org-{tenant}-name\">{name}</h2>")), "a card for {name}");
        assert!(html.contains(&format!("action=\"/integration/connections/{tenant}/settings\"")), "{name}'s settings");
    }
    assert!(html.contains("Connect another organisation"), "several organisations are allowed");

    // Saving one organisation's settings leaves the other's alone.
    let au = demo::AU_TENANT_ID;
    let form = format!("csrf={}&version=0&new_invoice_status=AUTHORISED", csrf(&html));
    let saved = post_form(&w, &format!("/integration/connections/{au}/settings"), &cookie, &form).await;
    assert_eq!(saved.status(), 303, "{}", body(&saved));
    let au_key =
        xero_sync_domain::model::ConnectionKey { tenant_id: xero_sync_domain::model::TenantId(au), ..key(account) };
    assert_eq!(w.aws.store().get_settings(&au_key).await.unwrap().version, 1);
    assert_eq!(w.aws.store().get_settings(&key(account)).await.unwrap().version, 0, "the NZ settings untouched");
}

#[tokio::test]
async fn a_log_page_or_a_form_address_that_was_tampered_with_gets_a_400_page_naming_it_and_changes_nothing() {
    use base64::Engine;
    let account = "acct-page-tampered";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let cookie = opened(&w, &session_url(&w, account).await).await;
    let tenant = demo::NZ_TENANT_ID;
    let html = body(&get(&w, "/integration", Some(&cookie)).await);
    let before = w.aws.store().get_settings(&key(account)).await.unwrap();

    // A page token of another connection's log, well formed otherwise, and one that is not a token.
    let foreign = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        json!({ "pk": "x", "sk": "y", "gsi1pk": "LOG#acct-other#00000000-0000-0000-0000-000000000000", "gsi1sk": "z" })
            .to_string(),
    );
    for from in [foreign.as_str(), "not-a-token!"] {
        let page = get(&w, &format!("/integration?log={tenant}&from={from}"), Some(&cookie)).await;
        assert_eq!(page.status(), 400, "{from}");
        assert!(body(&page).contains("not one this page offered"), "{}", body(&page));
    }

    let form = format!("csrf={}&version=1&default_sales_account_code=260&new_invoice_status=DRAFT", csrf(&html));
    let not_a_tenant = post_form(&w, "/integration/connections/not-a-uuid/settings", &cookie, &form).await;
    assert_eq!(not_a_tenant.status(), 400);
    assert!(body(&not_a_tenant).contains("not a Xero organisation id"), "{}", body(&not_a_tenant));
    let retry = format!("/integration/connections/{tenant}/invoices/{}/retry", "i".repeat(129));
    let not_an_invoice = post_form(&w, &retry, &cookie, &format!("csrf={}", csrf(&html))).await;
    assert_eq!(not_an_invoice.status(), 400);
    assert!(body(&not_an_invoice).contains("not an invoice id"), "{}", body(&not_an_invoice));

    assert_eq!(w.aws.store().get_settings(&key(account)).await.unwrap(), before, "nothing saved");
}
