//! Issue 17, part 3: one governor for Xero calls, shared by every process through DynamoDB.
//! Twenty processes (each its own App, as twenty Lambdas) call at once while the clock moves;
//! the emulator refuses anything over Xero's limits, so no refusal means none was passed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use xero_emulator::{LimitsConfig, demo};
use xero_sync_domain::model::Connection;
use xero_sync_runtime::App;
use xero_sync_xero::ApiRequest;

use crate::helpers::*;

/// Each app calls `/Organisation` `calls` times on each of `connections` in turn, trying a
/// governed call again once the clock has moved; meanwhile the clock moves two seconds every
/// 50 ms. Returns how far the clock moved.
async fn call_together(w: &World, apps: &[App], connections: &[Connection], calls: usize) -> chrono::Duration {
    let started = w.now();
    let done = AtomicBool::new(false);
    let workers = futures::future::join_all(apps.iter().enumerate().map(|(n, app)| async move {
        for call in 0..calls {
            let connection = &connections[(n + call) % connections.len()];
            loop {
                match app.tokens.get::<Value>(connection, &ApiRequest::new("/Organisation")).await {
                    Ok(_) => break,
                    Err(e) if e.is_rate_wait() => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(e) => panic!("an ungoverned failure: {e}"),
                }
            }
        }
    }));
    let clock = async {
        while !done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            w.emu.clock().advance(Duration::from_secs(2));
        }
    };
    let finish = async {
        workers.await;
        done.store(true, Ordering::SeqCst);
    };
    futures::join!(finish, clock);
    w.now() - started
}

#[tokio::test]
async fn twenty_processes_calling_one_organisation_stay_under_sixty_a_minute_and_five_at_once() {
    let w = World::new().await;
    w.connect_account("acct-gov-one").await;
    let connection = w.connections("acct-gov-one").await.remove(0);
    // Slow enough answers that the twenty overlap: the emulator refuses a sixth call in flight.
    w.emu.faults().latency(None, "/api.xro/2.0/*", 30);
    w.emu.reset_counters();
    let apps: Vec<App> = (0..20).map(|_| w.new_app_with(&[])).collect();

    let moved = call_together(&w, &apps, std::slice::from_ref(&connection), 8).await;

    let counters = w.emu.counters();
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/organisation"), 160, "every call made, once");
    assert_eq!(counters.rate_limited(), 0, "Xero refused nothing (minute or in flight): {counters:?}");
    // 160 calls at no more than 58 in any minute take over two minutes.
    assert!(moved >= chrono::Duration::minutes(2), "the governor spread them: {moved}");
}

#[tokio::test]
async fn twenty_processes_across_organisations_stay_under_the_app_wide_limit() {
    let w = World::with(Options { multi_org: true, ..Options::default() }).await;
    w.emu.set_auto_approve(true, Some(vec![demo::NZ_TENANT_ID, demo::AU_TENANT_ID]));
    w.connect_account("acct-gov-app").await;
    let connections = w.connections("acct-gov-app").await;
    assert_eq!(connections.len(), 2);
    // An app whose Xero limit is 50 a minute across organisations, each allowed 60 alone.
    w.emu.set_limits(LimitsConfig { app_per_minute: 50, ..LimitsConfig::default() });
    w.emu.reset_counters();
    let apps: Vec<App> = (0..20).map(|_| w.new_app_with(&[("XERO_APP_CALLS_PER_MINUTE", "50")])).collect();

    let moved = call_together(&w, &apps, &connections, 5).await;

    let counters = w.emu.counters();
    assert_eq!(counters.calls_to("GET", "/api.xro/2.0/organisation"), 100);
    assert_eq!(counters.rate_limited(), 0, "Xero refused nothing app-wide: {counters:?}");
    // 100 calls at the 45 a minute the governor aims for (90 % of 50) take over two minutes,
    // though each organisation alone would have allowed them in one.
    assert!(moved >= chrono::Duration::minutes(2), "{moved}");
}

#[tokio::test]
async fn an_import_held_for_xeros_limits_again_and_again_never_reaches_the_dead_letter_queue() {
    let w = World::new().await;
    w.connect_account("acct-gov-held").await;
    w.inbox.drain().await.unwrap();
    // Xero allows this organisation two calls a minute: too few for the import's five
    // reference lists in a row, so it is held minute after minute, more often than the
    // queue's receive limit of 6.
    w.emu.set_limits(LimitsConfig { per_minute: 2, ..LimitsConfig::default() });

    let run = w.work_import_queue_for(10).await; // connection.connected → the first import

    assert_eq!(run.handed_back, 0, "no wait used up a receive: {run:?}");
    assert!(run.held >= 10, "held each minute: {run:?}");
    assert_eq!(w.emu.counters().rate_limited(), 0, "held by Xero's headers, before Xero had to refuse");
    assert_eq!(w.aws.queue_depth("ImportDeadLetterQueue").await, 0, "nothing dead-lettered");
    assert_eq!(w.aws.queue_depth("ImportQueue").await, 1, "the import still waits its turn");

    // Once Xero allows it, the same message goes through.
    w.emu.set_limits(LimitsConfig::default());
    let run = w.work_import_queue().await;
    assert_eq!(run.handed_back, 0, "{run:?}");
    assert!(w.connections("acct-gov-held").await[0].last_sync_at.is_some(), "the import finished");
    assert!(!events_of(&w.inbox, "contact.upserted").await.is_empty(), "and published");
    assert_eq!(w.aws.queue_depth("ImportDeadLetterQueue").await, 0);
    assert_eq!(w.aws.queue_depth("ImportQueue").await, 0);
}
