//! Issue 10's resilience suite, the part not next to the flows it stresses: AWS itself going
//! away mid-run. (A thousand invoices through Xero's faults are in `push.rs`; fifty token
//! requests at expiry in `connect.rs`; a hundred redeliveries in `webhook.rs`.)

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use xero_emulator::demo;
use xero_sync_domain::model::{PlatformInvoiceId, SyncStatus};
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_testkit::AwsProxy;

use crate::helpers::*;

fn invoice(n: usize) -> Value {
    let customer = new_customer(&format!("cust-o{}", n % 5), &format!("Outage {}", n % 5));
    event("acct-outage", &format!("dlv-outage-{n:04}"), &format!("inv-o{n}"), &format!("O-{n:04}"), customer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_unreachable_mid_run_as_when_moto_restarts_loses_and_duplicates_nothing() {
    let mut w =
        ready_with("acct-outage", NewInvoiceStatus::Draft, Options { own_moto: true, ..Default::default() }).await;
    let proxy = AwsProxy::start(w.moto().endpoint()).await.expect("proxy starts");
    w.reach_aws_through(&proxy);

    for n in 0..100 {
        deliver(&w, &invoice(n)).await;
    }
    // AWS goes away while the platform is still delivering: whatever is not accepted is
    // answered with a retryable status, so the platform sends it again.
    proxy.outage(0, 40);
    let mut refused = Vec::new();
    for n in 100..120 {
        let response = w.post_webhook(&invoice(n).to_string(), None).await;
        match response.status().as_u16() {
            202 => {}
            status => {
                assert!(status >= 500, "{status}: {}", body(&response));
                refused.push(n);
            }
        }
    }
    assert!(!refused.is_empty(), "the outage refused some deliveries");
    assert!(proxy.outage_over(), "the outage is over");
    // The platform retries later; a delivery whose acceptance was cut midway is taken over
    // once its claim is stale.
    w.emu.clock().advance(Duration::from_secs(6 * 60));
    for n in refused {
        let response = w.post_webhook(&invoice(n).to_string(), None).await;
        assert!([200, 202].contains(&response.status().as_u16()), "{}", body(&response));
    }

    // And again, in the middle of pushing.
    proxy.outage(150, 60);
    let run = w.work_push_queue().await;
    assert!(proxy.outage_over(), "the outage happened during the push: {run:?}");
    assert!(proxy.calls().iter().any(|c| c.dropped), "calls were dropped");

    let mut per_number = HashMap::<String, usize>::new();
    for invoice in w.emu.invoices(demo::NZ_TENANT_ID) {
        *per_number.entry(invoice["InvoiceNumber"].as_str().unwrap_or("").to_owned()).or_default() += 1;
    }
    for n in 0..120 {
        assert_eq!(per_number.get(&format!("O-{n:04}")), Some(&1), "O-{n:04} is in Xero exactly once");
        let id = PlatformInvoiceId::parse(format!("inv-o{n}")).unwrap();
        let record = w.aws.store().get_sync_record(&key("acct-outage"), &id).await.unwrap().unwrap();
        assert_eq!(record.status, SyncStatus::Synced, "inv-o{n}");
    }
    // Events are at least once: a repeat carries the same id, so the platform can drop it.
    let synced = events_of(&w.inbox, "invoice.synced").await;
    let mut ids: Vec<&str> = synced.iter().map(|e| e["detail"]["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 120, "one invoice.synced id per invoice");
}
