//! Issue 8: idle connections are warned, then disconnected, against moto and the emulator.
//! Connections are made at different emulator times, each by its own Xero user (so each has its
//! own connection at Xero), and the clock is moved to the day of the sweep.

use std::time::Duration;

use inactivity_sweep::{SweepConfig, SweepSummary, sweep};
use xero_emulator::{FaultAction, FaultRule, demo};
use xero_sync_domain::model::{AccountId, Connection, ConnectionStatus, GrantId, TenantId, XeroConnectionId};
use xero_sync_testkit::{Moto, sent_emails};

use crate::helpers::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn owner(account: &str) -> String {
    format!("owner@{account}.example")
}

/// Connects `account` as its own Xero user, with its own email for notices.
async fn connect_as(w: &World, account: &str) -> Connection {
    let user = format!("{account}@xero-users.example");
    w.emu
        .add_user(xero_emulator::UserSeed {
            user_id: None,
            email: user.clone(),
            given_name: "Idle".into(),
            family_name: account.into(),
            organisations: vec![demo::NZ_TENANT_ID],
        })
        .unwrap();
    w.emu.set_signed_in_user(Some(&user));
    let link = w.link(account, Some(RETURN_TO), Some(&owner(account)), w.now().timestamp() + 600);
    let callback = w.consent(&link).await;
    let done = w.get_callback(&callback).await;
    assert_eq!(done.status(), 302, "{}", body(&done));
    w.connections(account).await.remove(0)
}

/// Moves the clock, refreshing every live connection's tokens on the way as the half-hourly
/// import does (a quiet import refreshes tokens without counting as activity).
async fn pass_days(w: &World, days: u64, accounts: &[String]) {
    let mut left = days;
    while left > 0 {
        let step = left.min(30);
        left -= step;
        w.emu.clock().advance(DAY * step as u32);
        for account in accounts {
            for connection in w.connections(account).await {
                if connection.status == ConnectionStatus::Connected {
                    w.connect.app.tokens.access_token(&connection).await.unwrap();
                }
            }
        }
    }
}

async fn run(w: &World) -> SweepSummary {
    sweep(&w.connect.app, &SweepConfig::default()).await.unwrap()
}

fn xero_connection_ids(w: &World) -> Vec<String> {
    w.emu.connections().iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect()
}

async fn emails_to(account: &str) -> Vec<xero_sync_testkit::SentEmail> {
    sent_emails(Moto::shared().endpoint(), &owner(account)).await.unwrap()
}

#[tokio::test]
async fn idle_connections_are_warned_once_then_disconnected_and_activity_starts_the_clock_again() {
    let w = World::new().await;
    let idle_days = [75u64, 60, 59, 57, 46, 13];
    let mut made: Vec<String> = Vec::new();
    let mut connected = std::collections::HashMap::new();
    for (n, idle) in idle_days.iter().enumerate() {
        if n > 0 {
            pass_days(&w, idle_days[n - 1] - idle, &made).await;
        }
        let account = format!("acct-idle-{idle}");
        connected.insert(*idle, connect_as(&w, &account).await);
        made.push(account);
    }
    pass_days(&w, 13, &made).await;
    w.inbox.drain().await.unwrap();
    assert!(xero_connection_ids(&w).contains(&connected[&75].xero_connection_id.to_string()));

    let summary = run(&w).await;
    assert_eq!((summary.disconnected, summary.warned, summary.failures.len()), (2, 3, 0), "{summary:?}");
    for idle in [75, 60] {
        let c = &w.connections(&format!("acct-idle-{idle}")).await[0];
        assert_eq!(c.status, ConnectionStatus::DisconnectedInactive, "{idle} days");
        assert!(c.last_error.as_deref().unwrap().contains("No activity since"));
        assert!(!xero_connection_ids(&w).contains(&c.xero_connection_id.to_string()), "removed at Xero");
        assert!(w.connect.app.services.vault.load(&c.grant_id).await.unwrap().is_none(), "tokens deleted");
        let emails = emails_to(&format!("acct-idle-{idle}")).await;
        assert_eq!(emails.len(), 1);
        assert!(emails[0].subject.starts_with("Xero disconnected"), "{}", emails[0].subject);
    }
    for idle in [59, 57, 46, 13] {
        assert_eq!(w.connections(&format!("acct-idle-{idle}")).await[0].status, ConnectionStatus::Connected);
    }
    for (idle, warned) in [(59, 1), (57, 1), (46, 1), (13, 0)] {
        let emails = emails_to(&format!("acct-idle-{idle}")).await;
        assert_eq!(emails.len(), warned, "{idle} days");
    }
    let drained = w.inbox.drain().await.unwrap();
    for e in &drained {
        xero_sync_testkit::event_schemas::assert_valid(&e["detail"]);
    }
    let count = |kind: &str| drained.iter().filter(|e| e["detail-type"] == kind).count();
    assert_eq!((count("connection.inactivity_warning"), count("connection.disconnected")), (3, 2));

    let again = run(&w).await;
    assert_eq!((again.disconnected, again.warned), (0, 0), "a rerun the same day changes nothing");
    assert!(w.inbox.drain().await.unwrap().is_empty());
    assert_eq!(emails_to("acct-idle-46").await.len(), 1);

    // The account uses the 46-day connection: its clock starts again.
    let path = format!("/accounts/acct-idle-46/connections/{}/test", demo::NZ_TENANT_ID);
    assert_eq!(w.api("POST", &path).await.status(), 200);
    let live: Vec<String> = ["acct-idle-46", "acct-idle-13"].map(String::from).to_vec();
    pass_days(&w, 40, &live).await;
    let later = run(&w).await;
    assert_eq!(w.connections("acct-idle-46").await[0].status, ConnectionStatus::Connected);
    assert_eq!(emails_to("acct-idle-46").await.len(), 1, "no warning: 40 days idle since the test call");
    // The 59- and 57-day ones, untouched, are gone; the 13-day one, now 53, is warned.
    assert_eq!((later.disconnected, later.warned), (2, 1), "{later:?}");
}

#[tokio::test]
async fn a_xero_failure_on_one_connection_does_not_stop_the_others_and_is_finished_next_run() {
    let w = World::new().await;
    let failing = connect_as(&w, "acct-fails").await;
    let fine = connect_as(&w, "acct-fine").await;
    let gone = connect_as(&w, "acct-gone").await;
    // Removed at Xero already (in Xero's own settings, say).
    let token = w.connect.app.tokens.access_token(&gone).await.unwrap();
    assert!(w.connect.app.xero.delete_connection(&token, gone.xero_connection_id).await.unwrap());
    let accounts: Vec<String> = ["acct-fails", "acct-fine", "acct-gone"].map(String::from).to_vec();
    pass_days(&w, 61, &accounts).await;
    let fault = w.emu.faults().add(FaultRule::new(
        Some("DELETE"),
        &format!("/connections/{}", failing.xero_connection_id),
        FaultAction::Status { status: 500, body: None, retry_after: None },
    ));

    let first = run(&w).await;
    assert_eq!(first.disconnected, 2, "{first:?}");
    assert_eq!(first.failures.len(), 1);
    assert_eq!(first.failures[0].account_id, "acct-fails");
    assert_eq!(w.connections("acct-fine").await[0].status, ConnectionStatus::DisconnectedInactive);
    assert_eq!(w.connections("acct-gone").await[0].status, ConnectionStatus::DisconnectedInactive, "a 404 is done");
    assert!(xero_connection_ids(&w).contains(&failing.xero_connection_id.to_string()));
    assert!(!xero_connection_ids(&w).contains(&fine.xero_connection_id.to_string()));

    w.emu.faults().remove(fault);
    let second = run(&w).await;
    assert!(second.failures.is_empty(), "{second:?}");
    assert!(!xero_connection_ids(&w).contains(&failing.xero_connection_id.to_string()), "finished");
    assert_eq!(emails_to("acct-fails").await.len(), 1, "told once, when it was done");
    let disconnected = events_of(&w.inbox, "connection.disconnected").await;
    assert_eq!(disconnected.len(), 3, "one event each");
    assert!(run(&w).await.failures.is_empty());
}

#[tokio::test]
async fn a_sweep_over_1000_connections_pages_through_the_index_and_continues_next_run() {
    let w = World::new().await;
    let store = w.aws.store();
    let now = w.now();
    let idle_since = now - chrono::Duration::days(50);
    for n in 0..1000 {
        let connection = Connection {
            account_id: AccountId::parse(format!("acct-bulk-{n:04}")).unwrap(),
            tenant_id: TenantId(uuid::Uuid::new_v4()),
            xero_connection_id: XeroConnectionId(uuid::Uuid::new_v4()),
            grant_id: GrantId(uuid::Uuid::new_v4()),
            status: ConnectionStatus::Connected,
            organisation_name: format!("Bulk Org {n}"),
            notify_email: None,
            connected_at: idle_since,
            last_activity_at: idle_since,
            last_sync_at: None,
            status_changed_at: idle_since,
            last_error: None,
            cleanup_pending: false,
            email_refused: None,
            scopes: None,
            short_code: None,
        };
        store.put_connection(&connection).await.unwrap();
    }
    w.inbox.set_collecting(false).await.unwrap();
    let config = SweepConfig { max_per_run: 400, page_size: 100, ..SweepConfig::default() };
    let mut runs = Vec::new();
    loop {
        let summary = sweep(&w.connect.app, &config).await.unwrap();
        runs.push((summary.examined, summary.warned));
        if summary.complete {
            break;
        }
        assert!(runs.len() < 5, "{runs:?}");
    }
    assert_eq!(runs.iter().map(|r| r.1).sum::<usize>(), 1000, "each warned once: {runs:?}");
    // A run stops after the page that reaches its bound (pages here are one index shard each).
    assert!(runs.len() >= 2 && runs.iter().all(|r| r.0 < 1000), "bounded, and carried on: {runs:?}");
    let again = sweep(&w.connect.app, &SweepConfig { max_per_run: 2000, ..config }).await.unwrap();
    assert_eq!((again.examined, again.warned), (1000, 0));
}

#[tokio::test]
async fn a_warning_that_could_not_be_sent_is_sent_next_run_and_never_ends_the_connection() {
    let w = World::new().await;
    connect_as(&w, "acct-warn-fails").await;
    pass_days(&w, 50, &["acct-warn-fails".to_owned()]).await;

    let (mail_down, _proxy) = w.new_app_with_mail_down().await;
    let first = sweep(&mail_down, &SweepConfig::default()).await.unwrap();
    assert_eq!((first.warned, first.failures.len()), (0, 1), "{first:?}");
    assert!(emails_to("acct-warn-fails").await.is_empty());

    let second = run(&w).await;
    assert_eq!((second.warned, second.disconnected, second.failures.len()), (1, 0, 0), "{second:?}");
    assert_eq!(w.connections("acct-warn-fails").await[0].status, ConnectionStatus::Connected);
    assert_eq!(emails_to("acct-warn-fails").await.len(), 1);
}
