//! One idle connection on the real stack (moto and the emulator), webhooks on: a week of the
//! safety-net import in moved time, counted by the emulator as Xero would bill it.

use std::time::Duration;

use anyhow::Context;
use scheduled_import::Cadence;
use scheduled_import::import::{ImportPolicy, import};
use xero_emulator::{Account, Item, OrgSeed, TaxRate, demo};
use xero_sync_e2e::{World, key};

use super::sim::RunPlan;

#[derive(Debug, Clone)]
pub struct Idle {
    pub organisation: &'static str,
    /// Accounting API calls on a quiet day (no weekly whole read), and with token refreshes.
    pub calls_day: u64,
    pub all_calls_day: u64,
    pub bytes_first_import: u64,
    pub bytes_day: u64,
    /// Over the week: six quiet days and the day of the weekly whole read.
    pub bytes_week: u64,
    pub plan: RunPlan,
    /// Egress of the quiet day by endpoint, largest first.
    pub day_by_endpoint: String,
}

/// `endpoint KB, ...` for one tenant, largest first.
fn by_endpoint(counters: &xero_emulator::Counters, tenant: uuid::Uuid) -> String {
    let mut bytes: std::collections::BTreeMap<String, u64> = Default::default();
    for c in counters.calls.iter().filter(|c| c.tenant_id == Some(tenant)) {
        *bytes.entry(c.endpoint.trim_start_matches("/api.xro/2.0/").to_owned()).or_default() += c.bytes;
    }
    let mut sorted: Vec<(String, u64)> = bytes.into_iter().collect();
    sorted.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    sorted.iter().map(|(e, b)| format!("{e} {:.1} KB", *b as f64 / 1024.0)).collect::<Vec<_>>().join(", ")
}

const RUNS_A_DAY: u64 = 4; // every SAFETY_NET_HOURS (6)
const REFERENCE: [&str; 5] = ["accounts", "items", "taxrates", "currencies", "trackingcategories"];

/// The demo organisation grown to 1,000 accounts, 5,000 items and 50 tax rates.
pub fn large_organisation() -> anyhow::Result<OrgSeed> {
    let mut org = demo::seed()
        .organisations
        .into_iter()
        .find(|o| o.tenant_id == demo::NZ_TENANT_ID)
        .context("the demo seed has its NZ organisation")?;
    let account = org.accounts.iter().find(|a| a.account_type == "REVENUE").context("a revenue account")?.clone();
    for n in org.accounts.len()..1000 {
        org.accounts.push(Account {
            account_id: uuid::Uuid::new_v4(),
            code: format!("{}", 5000 + n),
            name: format!("Revenue line {n}"),
            ..account.clone()
        });
    }
    let item = org.items.first().context("an item")?.clone();
    for n in org.items.len()..5000 {
        org.items.push(Item {
            item_id: uuid::Uuid::new_v4(),
            code: format!("ITEM-{n:05}"),
            name: format!("Part number {n}"),
            ..item.clone()
        });
    }
    let rate = org.tax_rates.first().context("a tax rate")?.clone();
    for n in org.tax_rates.len()..50 {
        org.tax_rates.push(TaxRate {
            name: format!("Regional rate {n}"),
            tax_type: format!("TAX{n:03}"),
            ..rate.clone()
        });
    }
    Ok(org)
}

pub async fn idle_week(organisation: &'static str, seed: Option<OrgSeed>) -> anyhow::Result<Idle> {
    let w = World::new().await;
    if let Some(org) = seed {
        w.emu.seed_org(org).map_err(|e| anyhow::anyhow!("seeding the organisation: {e}"))?;
    }
    w.inbox.set_collecting(false).await?;
    // The organisation's records are older than the first read, as in life: a record changed
    // within the import's 2-second overlap of a read is read again by the next one.
    w.emu.clock().advance(Duration::from_secs(60));
    w.emu.reset_counters();
    w.connect_account("bench-idle").await;
    w.work_import_queue().await; // the first import reads everything
    let tenant = demo::NZ_TENANT_ID;
    let bytes_first_import = w.emu.counters().bytes_for_tenant(tenant);
    let policy = ImportPolicy { cadence: Cadence::with_webhooks(), ..Default::default() };
    let mut day = None;
    w.emu.reset_counters();
    for run in 1..=7 * RUNS_A_DAY {
        w.emu.clock().advance(Duration::from_secs(6 * 3600));
        import(&w.importer.app, &policy, &key("bench-idle")).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if run == RUNS_A_DAY {
            day = Some(w.emu.counters());
        }
    }
    let day = day.context("a day ran")?;
    let week = w.emu.counters();
    let reference: u64 = REFERENCE.iter().map(|r| day.calls_to("GET", &format!("/api.xro/2.0/{r}"))).sum();
    let calls_day = day.calls_for_tenant(tenant);
    Ok(Idle {
        organisation,
        calls_day,
        all_calls_day: day.total_calls(),
        bytes_first_import,
        bytes_day: day.bytes_for_tenant(tenant),
        bytes_week: week.bytes_for_tenant(tenant),
        day_by_endpoint: by_endpoint(&day, tenant),
        plan: RunPlan { incremental: ((calls_day - reference) / RUNS_A_DAY) as u32, reference: reference as u32 },
    })
}
