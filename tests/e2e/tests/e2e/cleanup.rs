//! Issue 15, "access and clean-up": a connection that is ended, replaced or abandoned leaves
//! nothing behind at Xero or in Secrets Manager, and one in use is never ended.

use std::time::Duration;

use inactivity_sweep::{SweepConfig, sweep};
use xero_emulator::{FaultAction, FaultRule, demo};
use xero_sync_domain::model::{Connection, ConnectionStatus};
use xero_sync_testkit::AwsProxy;

use crate::helpers::*;

fn nz() -> String {
    demo::NZ_TENANT_ID.to_string()
}

fn xero_connection_ids(w: &World) -> Vec<String> {
    w.emu.connections().iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect()
}

/// Connects `account` as its own Xero user (so it has its own connection at Xero).
async fn connect_as(w: &World, account: &str, user: &str) -> Connection {
    let _ = w.emu.add_user(xero_emulator::UserSeed {
        user_id: None,
        email: user.to_owned(),
        given_name: "Test".into(),
        family_name: account.into(),
        organisations: vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID],
    });
    w.emu.set_signed_in_user(Some(user));
    let done = w.connect_account(account).await;
    assert_eq!(done.status(), 302, "{}", body(&done));
    w.connections(account).await.into_iter().find(|c| c.status == ConnectionStatus::Connected).unwrap()
}

fn failing_delete(w: &World, connection: &Connection) -> u64 {
    w.emu.faults().add(FaultRule::new(
        Some("DELETE"),
        &format!("/connections/{}", connection.xero_connection_id),
        FaultAction::Status { status: 500, body: None, retry_after: None },
    ))
}

#[tokio::test]
async fn a_disconnect_that_failed_midway_is_finished_by_a_repeat_and_otherwise_by_the_sweep() {
    let w = World::new().await;
    let first = connect_as(&w, "acct-half", "half@xero-users.example").await;
    let path = format!("/accounts/acct-half/connections/{}/disconnect", nz());
    let fault = failing_delete(&w, &first);
    let refused = w.api("POST", &path).await;
    assert!(refused.status().is_server_error(), "{}: {}", refused.status(), body(&refused));
    assert!(xero_connection_ids(&w).contains(&first.xero_connection_id.to_string()));
    w.emu.faults().remove(fault);

    let repeat = w.api("POST", &path).await;
    assert_eq!(repeat.status(), 200, "{}", body(&repeat));
    assert!(!xero_connection_ids(&w).contains(&first.xero_connection_id.to_string()), "removed at Xero");
    assert!(w.connect.app.services.vault.load(&first.grant_id).await.unwrap().is_none(), "tokens deleted");

    // Nobody repeats it this time: the daily sweep finishes it.
    let second = connect_as(&w, "acct-half-2", "half-2@xero-users.example").await;
    let path = format!("/accounts/acct-half-2/connections/{}/disconnect", nz());
    let fault = failing_delete(&w, &second);
    assert!(w.api("POST", &path).await.status().is_server_error());
    assert!(w.connect.app.services.vault.load(&second.grant_id).await.unwrap().is_some());
    w.emu.faults().remove(fault);
    let summary = sweep(&w.connect.app, &SweepConfig::default()).await.unwrap();
    assert!(summary.failures.is_empty(), "{summary:?}");
    assert!(!xero_connection_ids(&w).contains(&second.xero_connection_id.to_string()), "removed at Xero");
    assert!(w.connect.app.services.vault.load(&second.grant_id).await.unwrap().is_none(), "tokens deleted");
    assert_eq!(w.connections("acct-half-2").await[0].status, ConnectionStatus::Disconnected);
    let again = sweep(&w.connect.app, &SweepConfig::default()).await.unwrap();
    assert!(again.failures.is_empty(), "nothing left to do: {again:?}");
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_vault_that_refuses_the_write() {
    let w = World::with(Options { own_moto: true, ..Default::default() }).await;
    w.connect_account("acct-rotate").await;
    let connection = w.connections("acct-rotate").await.remove(0);
    let proxy = AwsProxy::start(w.moto().endpoint()).await.unwrap();
    let app = w.new_app_via(&proxy.sdk_config(&w.aws.sdk));
    let stored = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();

    // Xero rotates the refresh token; every write of the new set fails for a while.
    w.emu.clock().advance(Duration::from_secs(31 * 60));
    proxy.fail("PutSecretValue", 1_000);
    let during = app.tokens.access_token(&connection).await;
    assert!(during.is_ok(), "the new access token works although it is not stored yet: {during:?}");
    // Half an hour on, it rotates again, and that set cannot be stored either.
    w.emu.clock().advance(Duration::from_secs(31 * 60));
    let again = app.tokens.access_token(&connection).await;
    assert!(again.is_ok(), "{again:?}");
    proxy.stop_failing();

    // Past the old refresh token's 30-minute grace: only the rotated set still works.
    w.emu.clock().advance(Duration::from_secs(31 * 60));
    let later = app.tokens.access_token(&connection).await;
    assert!(later.is_ok(), "{later:?}");
    assert_eq!(w.connections("acct-rotate").await[0].status, ConnectionStatus::Connected);
    let now_stored = w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().unwrap();
    assert_ne!(now_stored.refresh_token.secret(), stored.refresh_token.secret(), "the rotated set reached the vault");
    // Another process, reading only the vault, is fine too.
    let other = w.new_app();
    assert!(other.tokens.access_token(&connection).await.is_ok());
}

#[tokio::test]
async fn an_organisation_choice_nobody_makes_leaves_nothing_at_xero_or_in_the_vault() {
    let w = World::new().await;
    w.emu.set_auto_approve(true, Some(vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID]));
    let page = w.get_callback(&w.consent(&w.valid_link("acct-undecided")).await).await;
    assert_eq!(page.status(), 200, "the choose page");
    let at_xero = w.emu.connections();
    assert_eq!(at_xero.len(), 2);
    let grant = xero_sync_domain::model::GrantId::parse(at_xero[0]["authEventId"].as_str().unwrap()).unwrap();
    assert!(w.connect.app.services.vault.load(&grant).await.unwrap().is_some());

    w.emu.clock().advance(Duration::from_secs(11 * 60));
    let summary = sweep(&w.connect.app, &SweepConfig::default()).await.unwrap();
    assert!(summary.failures.is_empty(), "{summary:?}");
    assert!(w.emu.connections().is_empty(), "the abandoned consent's connections are removed at Xero");
    assert!(w.connect.app.services.vault.load(&grant).await.unwrap().is_none(), "and its tokens deleted");
    assert!(w.connections("acct-undecided").await.is_empty());
}

#[tokio::test]
async fn a_consent_that_fails_after_the_code_exchange_leaves_nothing_behind() {
    let w = World::new().await;
    let fault = w.emu.faults().add(FaultRule::new(
        Some("GET"),
        "/connections",
        FaultAction::Status { status: 500, body: None, retry_after: None },
    ));
    let failed = w.connect_account("acct-broken").await;
    assert!(location(&failed).contains("xero=error"), "{}", location(&failed));
    w.emu.faults().remove(fault);
    assert_eq!(w.emu.connections().len(), 1, "Xero made the connection before we failed");

    w.emu.clock().advance(Duration::from_secs(11 * 60));
    let summary = sweep(&w.connect.app, &SweepConfig::default()).await.unwrap();
    assert!(summary.failures.is_empty(), "{summary:?}");
    assert!(w.emu.connections().is_empty(), "removed at Xero");
    assert!(w.connections("acct-broken").await.is_empty());
}

#[tokio::test]
async fn reconnecting_as_another_xero_user_removes_the_first_users_connection_at_xero() {
    let w = World::new().await;
    let first = connect_as(&w, "acct-handover", "leaver@xero-users.example").await;
    let second = connect_as(&w, "acct-handover", "joiner@xero-users.example").await;
    assert_ne!(first.xero_connection_id, second.xero_connection_id, "each Xero user has their own");

    let ids = xero_connection_ids(&w);
    assert!(!ids.contains(&first.xero_connection_id.to_string()), "the replaced one is removed at Xero: {ids:?}");
    assert!(ids.contains(&second.xero_connection_id.to_string()));
    let users = w.aws.store().sharing_xero_connection(first.xero_connection_id).await.unwrap();
    assert!(users.is_empty(), "no stale user of the old Xero connection: {users:?}");
    assert!(w.connect.app.services.vault.load(&first.grant_id).await.unwrap().is_none());
    let tested = json(&w.api("POST", &format!("/accounts/acct-handover/connections/{}/test", nz())).await);
    assert_eq!(tested["ok"], true, "{tested}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_never_ends_a_connection_that_became_active_while_it_looked() {
    let w = World::with(Options { own_moto: true, ..Default::default() }).await;
    let connection = connect_as(&w, "acct-busy", "busy@xero-users.example").await;
    w.emu.clock().advance(Duration::from_secs(61 * 24 * 3600));
    let proxy = AwsProxy::start(w.moto().endpoint()).await.unwrap();
    let app = std::sync::Arc::new(w.new_app_via(&proxy.sdk_config(&w.aws.sdk)));
    // The sweep has read the connection as idle and is about to end it...
    let ending = proxy.hold("UpdateItem", "DISCONNECTED_INACTIVE");
    let running = tokio::spawn({
        let app = app.clone();
        async move { sweep(&app, &SweepConfig::default()).await }
    });
    ending.arrived().await;
    // ... when the account pushes an invoice.
    assert!(w.aws.store().record_activity(&connection.key(), w.now()).await.unwrap());
    ending.release();
    let summary = running.await.unwrap().unwrap();

    assert_eq!(summary.disconnected, 0, "{summary:?}");
    let now = w.connections("acct-busy").await.remove(0);
    assert_eq!(now.status, ConnectionStatus::Connected);
    assert!(xero_connection_ids(&w).contains(&connection.xero_connection_id.to_string()));
    assert!(w.connect.app.services.vault.load(&connection.grant_id).await.unwrap().is_some(), "tokens kept");
    assert!(events_of(&w.inbox, "connection.disconnected").await.is_empty());
}
