//! Issue 4: the connect link, the OAuth callback, token refresh, status and disconnect.

use std::sync::Arc;
use std::time::Duration;

use xero_emulator::demo;
use xero_sync_domain::model::*;
use xero_sync_domain::signing::SigningSecret;
use xero_sync_testkit::sent_emails;
use xero_sync_xero::XeroError;

use crate::helpers::*;

fn nz() -> String {
    demo::NZ_TENANT_ID.to_string()
}

#[tokio::test]
async fn an_account_connects_and_lands_back_with_a_connected_organisation() {
    let w = World::new().await;
    let response = w.connect_account("acct-happy").await;

    assert_eq!(response.status(), 302, "{}", body(&response));
    let back = location(&response);
    assert!(back.starts_with(RETURN_TO), "{back}");
    assert!(back.contains("xero=connected") && back.contains(&nz()), "{back}");
    let connections = w.connections("acct-happy").await;
    assert_eq!(connections.len(), 1);
    let c = &connections[0];
    assert_eq!((c.status, c.organisation_name.as_str()), (ConnectionStatus::Connected, "Demo Company (NZ)"));
    assert_eq!(c.notify_email.as_deref(), Some("owner@example.com"));
    let tokens = w.connect.app.services.vault.load(&c.grant_id).await.unwrap().expect("tokens in Secrets Manager");
    assert_eq!(tokens.grant_id, c.grant_id);
    assert_eq!(events_of(&w.inbox, "connection.connected").await.len(), 1);

    let listed = json(&w.api("GET", "/accounts/acct-happy/connections").await);
    assert_eq!(listed["connections"][0]["status"], "CONNECTED");
    assert_eq!(listed["connections"][0]["organisation_name"], "Demo Company (NZ)");
    let text = listed.to_string();
    assert!(!text.contains("grant") && !text.contains("owner@example.com"), "no grant or email in the API: {text}");

    let tested = json(&w.api("POST", &format!("/accounts/acct-happy/connections/{}/test", nz())).await);
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["organisation"]["name"], "Demo Company (NZ)");
}

#[tokio::test]
async fn a_forged_tampered_or_expired_link_is_refused_and_stores_nothing() {
    let w = World::new().await;
    let now = w.now().timestamp();
    let base = url::Url::parse("https://xero-sync.test/").unwrap();
    let forged = connect::connect_link(
        &base,
        &SigningSecret::new("not-the-platform".as_bytes()),
        "acct-1",
        Some(RETURN_TO),
        None,
        now + 600,
    );
    let forged = format!("{}?{}", forged.path(), forged.query().unwrap());
    let tampered = w.valid_link("acct-1").replace("account_id=acct-1", "account_id=acct-2");
    let expired = w.link("acct-1", Some(RETURN_TO), None, now - 1);
    for (link, status, says) in [
        (forged, 401, "not valid"),
        (tampered, 401, "not valid"),
        (expired, 401, "has expired"),
        (w.link("acct-1", Some(RETURN_TO), None, now + 3 * 24 * 3600), 400, "too long"),
        ("/connect?account_id=acct-1".to_owned(), 400, "expires is missing; sig is missing"),
        ("/connect?account_id=a%23b&expires=1&sig=x".to_owned(), 400, "account_id: account id may hold only"),
    ] {
        let response = w.get_connect(&link).await;
        assert_eq!(response.status(), status, "{link}: {}", body(&response));
        assert!(body(&response).contains(says), "{link} should say {says:?}: {}", body(&response));
        assert!(response.headers().get("location").is_none());
    }
    assert_eq!(w.aws.item_count().await, 0, "no OAuth state was created");
}

#[tokio::test]
async fn a_return_address_outside_the_allow_list_is_refused() {
    let w = World::new().await;
    let exp = w.now().timestamp() + 600;
    for evil in [
        "https://evil.example.com/settings/xero",
        "https://platform.example.com/elsewhere",
        "http://platform.example.com/settings/x",
    ] {
        let response = w.get_connect(&w.link("acct-1", Some(evil), None, exp)).await;
        assert_eq!(response.status(), 400, "{evil}");
        assert!(body(&response).contains("does not allow"));
    }
    assert_eq!(w.aws.item_count().await, 0);
    let no_return = w.get_connect(&w.link("acct-1", None, None, exp)).await;
    assert_eq!(no_return.status(), 302, "a link without return_to ends on our own page");
}

#[tokio::test]
async fn a_state_is_refused_when_unknown_replayed_or_expired() {
    let w = World::new().await;
    let callback = w.consent(&w.valid_link("acct-state")).await;
    let cookie = w.cookie.lock().unwrap().clone();
    assert_eq!(w.get_callback(&callback).await.status(), 302);
    // Replayed even from the browser that started it (its cookie put back).
    *w.cookie.lock().unwrap() = cookie;
    let replay = w.get_callback(&callback).await;
    assert_eq!(replay.status(), 400);
    assert!(body(&replay).contains("already been used"));

    let unknown_state = "A".repeat(43);
    *w.cookie.lock().unwrap() = Some(xero_sync_http::consent_binding(&unknown_state));
    let unknown = w.get_callback(&format!("/oauth/callback?code=abc&state={unknown_state}")).await;
    assert_eq!(unknown.status(), 400);
    let malformed = w.get_callback("/oauth/callback?code=abc&state=%3Cscript%3E").await;
    assert_eq!(malformed.status(), 400);
    assert!(!body(&malformed).contains("<script>"));

    let late = w.consent(&w.valid_link("acct-late")).await;
    w.emu.clock().advance(Duration::from_secs(11 * 60));
    let expired = w.get_callback(&late).await;
    assert_eq!(expired.status(), 400);
    assert!(body(&expired).contains("longer than 10 minutes"));
    assert!(w.connections("acct-late").await.is_empty());
}

#[tokio::test]
async fn a_user_who_denies_consent_returns_to_the_platform_with_nothing_connected() {
    let w = World::new().await;
    let start = w.get_connect(&w.valid_link("acct-deny")).await;
    let authorize = url::Url::parse(&location(&start)).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let response = w.get_callback(&format!("/oauth/callback?error=access_denied&state={state}")).await;
    assert_eq!(response.status(), 302);
    assert!(location(&response).ends_with("xero=denied"), "{}", location(&response));
    assert!(w.connections("acct-deny").await.is_empty());
    assert_eq!(w.get_callback(&format!("/oauth/callback?error=access_denied&state={state}")).await.status(), 400);
}

#[tokio::test]
async fn an_error_from_xero_that_is_not_an_oauth_code_is_not_repeated_back() {
    let w = World::new().await;
    let start = w.get_connect(&w.link("acct-odd-error", None, None, w.now().timestamp() + 600)).await;
    let authorize = url::Url::parse(&location(&start)).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let odd = w.get_callback(&format!("/oauth/callback?error=%0Aforged%20log%20line%3Cb%3E&state={state}")).await;
    assert_eq!(odd.status(), 502);
    let page = body(&odd);
    assert!(page.contains("Xero reported an error (unrecognised)."), "{page}");
    assert!(!page.contains("forged"));
    assert!(w.connections("acct-odd-error").await.is_empty());
}

#[tokio::test]
async fn consenting_to_two_organisations_asks_which_one_to_keep() {
    let w = World::new().await;
    w.emu.set_auto_approve(true, Some(vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID]));
    let page = w.get_callback(&w.consent(&w.valid_link("acct-two")).await).await;
    assert_eq!(page.status(), 200);
    let html = body(&page);
    assert!(html.contains("Demo Company (NZ)") && html.contains("Demo Company (AU)"), "{html}");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' https://platform.example.com"), "the form may end at the platform: {csp}");
    let choice = html.split("name=\"choice\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    assert!(w.connections("acct-two").await.is_empty(), "nothing connected before the pick");

    let au = demo::AU_TENANT_ID.to_string();
    let response = w.post_choice(&format!("choice={choice}&tenant_id={au}")).await;
    assert_eq!(response.status(), 302, "{}", body(&response));
    assert!(location(&response).contains(&au));
    let connections = w.connections("acct-two").await;
    assert_eq!(connections.iter().map(|c| c.tenant_id.to_string()).collect::<Vec<_>>(), vec![au.clone()]);
    let at_xero: Vec<String> = w.emu.connections().iter().map(|c| c["tenantId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(at_xero, vec![au], "the organisation not chosen is removed at Xero");
    assert_eq!(w.post_choice(&format!("choice={choice}&tenant_id={}", nz())).await.status(), 400, "single use");
}

#[tokio::test]
async fn multi_organisation_mode_keeps_every_organisation_consented_to() {
    let w = World::with(Options { multi_org: true, ..Options::default() }).await;
    w.emu.set_auto_approve(true, Some(vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID]));
    let response = w.connect_account("acct-multi").await;
    assert_eq!(response.status(), 302);
    let mut names: Vec<_> = w.connections("acct-multi").await.into_iter().map(|c| c.organisation_name).collect();
    names.sort();
    assert_eq!(names, vec!["Demo Company (AU)", "Demo Company (NZ)"]);
    assert_eq!(events_of(&w.inbox, "connection.connected").await.len(), 2);
}

#[tokio::test]
async fn reconnecting_replaces_the_old_grant_and_the_new_connection_keeps_working() {
    let w = World::new().await;
    w.connect_account("acct-re").await;
    let first = w.connections("acct-re").await.remove(0);
    w.connect_account("acct-re").await;
    let second = w.connections("acct-re").await.remove(0);
    assert_ne!(first.grant_id, second.grant_id);
    assert_eq!(second.status, ConnectionStatus::Connected);
    assert!(w.connect.app.services.vault.load(&first.grant_id).await.unwrap().is_none(), "old tokens deleted");
    // Not revoked: Xero's revocation would remove this user's new connection as well.
    let tested = json(&w.api("POST", &format!("/accounts/acct-re/connections/{}/test", nz())).await);
    assert_eq!(tested["ok"], true, "{tested}");
}

#[tokio::test]
async fn disconnecting_one_of_two_accounts_sharing_a_xero_connection_leaves_the_other_working() {
    let w = World::new().await;
    // The same Xero user connects the same organisation to two platform accounts: Xero keeps
    // one connection for both.
    w.connect_account("acct-shop-a").await;
    w.connect_account("acct-shop-b").await;
    assert_eq!(w.emu.connections().len(), 1);
    let a = w.api("POST", &format!("/accounts/acct-shop-a/connections/{}/disconnect", nz())).await;
    assert_eq!(a.status(), 200, "{}", body(&a));
    assert_eq!(w.emu.connections().len(), 1, "still used by the other account");
    let tested = json(&w.api("POST", &format!("/accounts/acct-shop-b/connections/{}/test", nz())).await);
    assert_eq!(tested["ok"], true, "{tested}");
    w.api("POST", &format!("/accounts/acct-shop-b/connections/{}/disconnect", nz())).await;
    assert!(w.emu.connections().is_empty(), "the last user removes it");
}

#[tokio::test]
async fn a_callback_in_a_browser_that_did_not_start_the_consent_is_refused() {
    let w = World::new().await;
    let callback = w.consent(&w.valid_link("acct-victim")).await;
    let started_here = w.cookie.lock().unwrap().take();
    let elsewhere = w.get_callback(&callback).await;
    assert_eq!(elsewhere.status(), 400);
    assert!(body(&elsewhere).contains("started in another browser"));
    assert!(w.connections("acct-victim").await.is_empty());
    *w.cookie.lock().unwrap() = started_here;
    let here = w.get_callback(&callback).await;
    assert_eq!(here.status(), 302, "the browser that started it can still finish: {}", body(&here));
    assert_eq!(w.connections("acct-victim").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_token_requests_at_expiry_cause_exactly_one_refresh() {
    let w = World::new().await;
    w.connect_account("acct-race").await;
    let connection = w.connections("acct-race").await.remove(0);
    // Five warm Lambdas, each with its own cache, all about to find the token expiring.
    let lambdas: Vec<Arc<xero_sync_runtime::App>> = (0..5).map(|_| Arc::new(w.new_app())).collect();
    w.emu.clock().advance(Duration::from_secs(26 * 60));
    w.emu.reset_counters();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = lambdas[i % lambdas.len()].clone();
            let connection = connection.clone();
            tokio::spawn(async move { app.tokens.access_token(&connection).await.map(|t| t.secret().clone()) })
        })
        .collect();
    let tokens: Vec<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().expect("a token, never invalid_grant"))
        .collect();
    assert_eq!(w.emu.counters().calls_to("POST", "/connect/token"), 1, "exactly one refresh reached Xero");
    assert!(tokens.iter().all(|t| *t == tokens[0]), "everyone got the refreshed token");
    let stored = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    assert_eq!(stored.access_token.secret(), &tokens[0], "the rotated set was stored");
}

#[tokio::test]
async fn warm_lambdas_read_the_token_secret_once_per_token_lifetime() {
    let w = World::new().await;
    w.connect_account("acct-warm").await;
    let connection = w.connections("acct-warm").await.remove(0);
    let proxy = xero_sync_testkit::AwsProxy::start(w.moto().endpoint()).await.unwrap();
    let sdk = proxy.sdk_config(&w.aws.sdk);
    // Three warm Lambdas asking for a token every five minutes for two hours: four lifetimes.
    let lambdas: Vec<xero_sync_runtime::App> = (0..3).map(|_| w.new_app_via(&sdk)).collect();
    w.emu.reset_counters();
    for _ in 0..24 {
        for app in &lambdas {
            app.tokens.access_token(&connection).await.unwrap();
        }
        w.emu.clock().advance(Duration::from_secs(5 * 60));
    }
    let calls = proxy.calls();
    let count = |op: &str| calls.iter().filter(|c| c.service == "secretsmanager" && c.operation == op).count();
    // Each Lambda: one read when cold, then one per lifetime; one write per refresh, in all.
    assert!(count("GetSecretValue") <= 3 * (1 + 4), "reads: {}", count("GetSecretValue"));
    assert!(count("PutSecretValue") <= 4, "writes: {}", count("PutSecretValue"));
    assert_eq!(w.emu.counters().calls_to("POST", "/connect/token") as usize, count("PutSecretValue"));
}

#[tokio::test]
async fn a_refresh_whose_response_was_lost_is_recovered_with_the_previous_refresh_token() {
    let w = World::new().await;
    w.connect_account("acct-lost").await;
    let connection = w.connections("acct-lost").await.remove(0);
    let before = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    w.emu.clock().advance(Duration::from_secs(31 * 60));
    // Xero rotates the refresh token, but its answer never arrives (our timeout is 1 s).
    w.emu.faults().timeout_after_write(Some("POST"), "/connect/token", Some(3_000));

    let lost = w.connect.app.tokens.access_token(&connection).await;
    assert!(
        matches!(lost, Err(xero_sync_runtime::token_provider::TokenError::Xero(XeroError::Transport { .. }))),
        "{lost:?}"
    );
    let kept = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    assert_eq!(kept.refresh_token.secret(), before.refresh_token.secret(), "nothing half-written");

    let recovered = w
        .connect
        .app
        .tokens
        .access_token(&connection)
        .await
        .expect("the old refresh token still works within the grace period");
    let after = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    assert_eq!(after.access_token.secret(), recovered.secret());
    assert_ne!(after.refresh_token.secret(), before.refresh_token.secret(), "the newly rotated token is stored");
    assert_eq!(w.connections("acct-lost").await[0].status, ConnectionStatus::Connected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_grant_marks_the_connection_for_reconnection_once() {
    let w = World::new().await;
    let email = "revoked-owner@example.com";
    let link = w.link("acct-revoked", Some(RETURN_TO), Some(email), w.now().timestamp() + 600);
    w.get_callback(&w.consent(&link).await).await;
    let connection = w.connections("acct-revoked").await.remove(0);
    let tokens = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    w.revoke_at_xero(&tokens.refresh_token).await; // as if the user removed the app in Xero
    w.emu.clock().advance(Duration::from_secs(31 * 60));
    w.inbox.drain().await.unwrap();

    let path = format!("/accounts/acct-revoked/connections/{}/test", nz());
    let (a, b) = tokio::join!(w.api("POST", &path), w.api("POST", &path));
    for r in [a, b] {
        assert_eq!(json(&r)["ok"], false);
    }
    let after = w.connections("acct-revoked").await.remove(0);
    assert_eq!(after.status, ConnectionStatus::NeedsReconnect);
    assert!(after.last_error.is_some());
    assert_eq!(sent_emails(xero_sync_testkit::Moto::shared().endpoint(), email).await.unwrap().len(), 1, "one email");
    assert_eq!(events_of(&w.inbox, "connection.needs_reconnect").await.len(), 1, "one event");

    w.emu.reset_counters();
    let again = json(&w.api("POST", &path).await);
    assert_eq!(again["ok"], false);
    assert_eq!(w.emu.counters().total_calls(), 0, "no retry storm: Xero is not asked again");
    let listed = json(&w.api("GET", "/accounts/acct-revoked/connections").await);
    assert_eq!(listed["connections"][0]["status"], "NEEDS_RECONNECT");

    w.connect_account("acct-revoked").await;
    assert_eq!(w.connections("acct-revoked").await[0].status, ConnectionStatus::Connected, "a reconnect fixes it");
}

#[tokio::test]
async fn a_reconnect_email_that_failed_to_send_is_sent_by_the_next_attempt() {
    let w = World::new().await;
    let email = "retry-owner@example.com";
    let link = w.link("acct-retry", Some(RETURN_TO), Some(email), w.now().timestamp() + 600);
    w.get_callback(&w.consent(&link).await).await;
    let connection = w.connections("acct-retry").await.remove(0);
    let tokens = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    w.revoke_at_xero(&tokens.refresh_token).await;
    w.emu.clock().advance(Duration::from_secs(31 * 60));

    let (broken_mail, _proxy) = w.new_app_with_mail_down().await;
    let first = broken_mail.tokens.access_token(&connection).await;
    assert!(first.is_err());
    assert_eq!(w.connections("acct-retry").await[0].status, ConnectionStatus::NeedsReconnect);
    let moto = xero_sync_testkit::Moto::shared().endpoint();
    assert!(sent_emails(moto, email).await.unwrap().is_empty(), "SES was out of reach at the first attempt");

    let app = &w.connect.app;
    xero_sync_runtime::reconnect::needs_reconnect(&app.services, &connection.account_id, connection.grant_id, w.now())
        .await
        .unwrap();
    xero_sync_runtime::reconnect::needs_reconnect(&app.services, &connection.account_id, connection.grant_id, w.now())
        .await
        .unwrap();
    assert_eq!(sent_emails(moto, email).await.unwrap().len(), 1, "sent once, by the next attempt");
}

#[tokio::test]
async fn disconnect_leaves_no_usable_token_and_keeps_the_history() {
    let w = World::new().await;
    w.connect_account("acct-bye").await;
    let connection = w.connections("acct-bye").await.remove(0);
    let tokens = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    let history = SyncRecord {
        status: SyncStatus::Synced,
        attempts: 1,
        ..SyncRecord::new(&connection.key(), PlatformInvoiceId::parse("inv-1").unwrap(), "INV-1", w.now())
    };
    let store = w.aws.store();
    store.save_sync_record(&history).await.unwrap();
    w.inbox.drain().await.unwrap();

    let path = format!("/accounts/acct-bye/connections/{}/disconnect", nz());
    let response = w.api("POST", &path).await;
    assert_eq!(response.status(), 200, "{}", body(&response));
    assert_eq!(json(&response)["connection"]["status"], "DISCONNECTED");
    assert!(w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().is_none(), "secret deleted");
    let stale = w
        .connect
        .app
        .xero
        .call::<(), serde_json::Value>(
            reqwest::Method::GET,
            &tokens.access_token,
            connection.tenant_id,
            &xero_sync_xero::ApiRequest::new("/Organisation"),
            None,
        )
        .await;
    assert!(matches!(stale, Err(XeroError::Forbidden(_))), "the old token reaches nothing: {stale:?}");
    assert!(w.emu.connections().is_empty(), "removed at Xero");
    assert!(store.get_sync_record(&connection.key(), &history.invoice_id).await.unwrap().is_some(), "history kept");
    assert_eq!(events_of(&w.inbox, "connection.disconnected").await.len(), 1);

    let again = w.api("POST", &path).await;
    assert_eq!(again.status(), 200, "disconnecting twice is harmless");
    assert!(events_of(&w.inbox, "connection.disconnected").await.is_empty());
}

#[tokio::test]
async fn the_connection_api_refuses_unsigned_stale_and_misdirected_calls() {
    let w = World::new().await;
    let path = "/accounts/acct-1/connections";
    let unsigned = connect::handle(&w.connect, xero_sync_testkit::apigw::request("GET", path, &[], None)).await;
    assert_eq!(unsigned.status(), 401);
    assert!(json(&unsigned)["message"].as_str().unwrap().contains("missing"));
    let stale_at = w.now() - chrono::Duration::minutes(6);
    let stale = xero_sync_domain::signing::sign(
        &w.platform,
        stale_at,
        &xero_sync_domain::signing::Signed::Api { method: "GET", path_and_query: path, body: b"" },
    );
    let r = connect::handle(
        &w.connect,
        xero_sync_testkit::apigw::request("GET", path, &[("x-xerosync-signature", &stale)], None),
    )
    .await;
    assert_eq!(r.status(), 401);
    // Signed for one account, sent for another.
    let signed_for_1 = xero_sync_domain::signing::sign(
        &w.platform,
        w.now(),
        &xero_sync_domain::signing::Signed::Api { method: "GET", path_and_query: path, body: b"" },
    );
    let r = connect::handle(
        &w.connect,
        xero_sync_testkit::apigw::request(
            "GET",
            "/accounts/acct-2/connections",
            &[("x-xerosync-signature", &signed_for_1)],
            None,
        ),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(w.api("POST", &format!("/accounts/acct-1/connections/{}/test", nz())).await.status(), 404);
    assert_eq!(w.api("POST", "/accounts/acct-1/connections/not-a-uuid/test").await.status(), 400);
    assert_eq!(w.api("DELETE", "/accounts/acct-1/connections").await.status(), 405);
}

#[tokio::test]
async fn no_token_ever_reaches_the_logs() {
    use std::sync::Mutex;
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber =
        // The functions' own filter at its most verbose.
        tracing_subscriber::fmt()
            .with_env_filter(xero_sync_runtime::telemetry::filter("trace"))
            .with_writer(move || writer.clone())
            .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let w = World::new().await;
    // Another test's thread may have registered a callsite (found no subscriber: never
    // interested) just as this one's subscriber was set; ask every callsite again now.
    tracing::callsite::rebuild_interest_cache();
    w.connect_account("acct-logs").await;
    let connection = w.connections("acct-logs").await.remove(0);
    let first = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    w.emu.clock().advance(Duration::from_secs(31 * 60));
    w.api("POST", &format!("/accounts/acct-logs/connections/{}/test", nz())).await;
    let second = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    w.api("POST", &format!("/accounts/acct-logs/connections/{}/disconnect", nz())).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("refreshed Xero tokens"), "the flow was logged: {logs}");
    for secret in [
        first.access_token.secret(),
        first.refresh_token.secret(),
        second.access_token.secret(),
        second.refresh_token.secret(),
    ] {
        assert!(!logs.contains(secret.as_str()), "a token reached the logs");
    }
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains("owner@example.com")).collect();
    assert!(leaks.is_empty(), "an email address reached the logs: {leaks:#?}");
}
