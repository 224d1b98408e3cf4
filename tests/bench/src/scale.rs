//! The scale section: what one idle connection costs on the real stack, then 1,000, 10,000 and
//! 50,000 of them for a simulated day (see `scale/sim.rs` for what is real and what modelled).

mod connection;
mod queue;
mod sim;

use std::time::Duration;

use crate::Report;
use crate::runtime::percentiles;
use sim::{LAMBDA_CONCURRENCY, Outcome, RunPlan, Workload};

const DAY: Duration = Duration::from_secs(86_400);
/// Webhooks (a payment on an invoice) and invoices pushed, per connection per day.
const CHANGES_PER_DAY: f64 = 4.0;
const PUSHES_PER_DAY: f64 = 8.0;

pub async fn scale(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("scale: idle connections on the stack ...");
    let demo = connection::idle_week("demo", None).await?;
    let large = connection::idle_week(
        "large (1,000 accounts, 5,000 items, 50 tax rates)",
        Some(connection::large_organisation()?),
    )
    .await?;
    report.section(
        "One idle connection, webhooks on (the real import against the emulator, 7 simulated days)",
        &[
            "organisation",
            "Accounting API calls / day",
            "with token refreshes",
            "egress / quiet day (KB)",
            "egress / day, week's average (KB)",
            "first import (KB)",
        ],
    );
    let kb = |bytes: u64| format!("{:.1}", bytes as f64 / 1024.0);
    for idle in [&demo, &large] {
        report.row(&[
            idle.organisation.into(),
            idle.calls_day.to_string(),
            idle.all_calls_day.to_string(),
            kb(idle.bytes_day),
            kb(idle.bytes_week / 7),
            kb(idle.bytes_first_import),
        ]);
    }
    report.note(&format!(
        "A day is four safety-net runs ({} calls each: contacts, invoices, payments) and one read of the \
         five reference lists ({} calls; Accounts and Items by If-Modified-Since). Once a week the \
         reference read is whole, for deletions; the week's average includes it. Egress is the bytes of \
         Xero's answers, as the emulator counts them per tenant. A quiet day's egress by endpoint: \
         demo {}; large {}.",
        demo.plan.incremental, demo.plan.reference, demo.day_by_endpoint, large.day_by_endpoint
    ));

    report.section(
        "A simulated day of the whole stack (Xero's limits: 60 a minute and 5 at once per organisation, 10,000 a minute for the app)",
        &[
            "connections",
            "import Lambdas",
            "Xero calls in 24 h (imports / webhooks / pushes)",
            "peak app-wide calls in any 60 s",
            "Xero 429s",
            "holds",
            "first wave of imports done after",
            "imports due and not started at 24 h",
            "webhook → platform p50 / p99 (s)",
            "push p99 in the wave / quiet stack (s)",
            "time to simulate (s)",
        ],
    );
    let plan = demo.plan;
    let rows = [
        (1_000, LAMBDA_CONCURRENCY, true),
        (10_000, LAMBDA_CONCURRENCY, true),
        (50_000, LAMBDA_CONCURRENCY, true),
        (50_000, 100, true),
        (50_000, 100, false),
    ];
    for (connections, import_concurrency, governed) in rows {
        eprintln!("scale: {connections} connections, {import_concurrency} import Lambdas, governed: {governed} ...");
        let started = std::time::Instant::now();
        let day = simulate(Workload { governed, ..workload(connections, import_concurrency, plan, true, DAY) })?;
        let quiet = simulate(workload(connections, import_concurrency, plan, false, Duration::from_secs(2 * 3600)))?;
        let took = started.elapsed();
        let lambdas =
            if governed { import_concurrency.to_string() } else { format!("{import_concurrency}, no governor") };
        row(report, connections, &lambdas, &day, &quiet, took)?;
    }
    report.note(
        "Each run starts with the largest import wave the schedule can make: the fan-out's first \
         window follows an outage of a day, so every organisation is due at once, its reference \
         data too. After it, each organisation runs at its offset (a hash of its tenant id) every 6 \
         hours, and its reference data a day after the last read. Webhooks and pushes arrive evenly \
         over the day (4 and 8 per connection per day; a push lot is one call, known customers), \
         and each push comes back 5 s later as Xero's webhook, which costs a call and publishes \
         nothing. A held import starts again from the top, as the real one does; a Retry-After of \
         10 s or less it waits out. The quiet stack is the same pushes for 2 hours with no import. \
         Real code: the fan-out's schedule, the governor (over an in-memory bucket store whose reads \
         and writes take 4 ms, so that compare-and-set races happen) and Xero's limits (the \
         emulator's limiter). Modelled: Lambda concurrency, SQS delays and batching windows, each \
         Xero call taking 150 to 650 ms and our own AWS work 60 ms per message. The workload is \
         seeded; the governor's choice of app shard is random, so figures move a little between \
         runs. Holds count messages; a held message may be held again. The last two rows raise the \
         import's Lambda concurrency to 100: with the governor, and without it, to show what it \
         prevents.",
    );
    Ok(())
}

fn workload(connections: u32, import_concurrency: usize, plan: RunPlan, imports: bool, length: Duration) -> Workload {
    Workload {
        connections,
        import_concurrency,
        plan,
        changes_per_day: CHANGES_PER_DAY,
        pushes_per_day: PUSHES_PER_DAY,
        length,
        imports,
        wave: imports,
        governed: true,
        seed: 17 + connections as u64,
    }
}

/// One workload on a runtime of its own whose clock is paused, so time moves only when every
/// task waits.
fn simulate(load: Workload) -> anyhow::Result<Outcome> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
        Ok(runtime.block_on(sim::run(load)))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the simulation panicked"))?
}

fn row(
    report: &mut Report,
    connections: u32,
    lambdas: &str,
    day: &Outcome,
    quiet: &Outcome,
    took: Duration,
) -> anyhow::Result<()> {
    let secs = |d: Duration| format!("{:.1}", d.as_secs_f64());
    let (change_p50, change_p99) = percentiles(day.change_latency.clone())?;
    let wave_end = day.wave_done.unwrap_or(DAY);
    let in_wave: Vec<Duration> =
        day.push_latency.iter().filter(|(at, _)| *at < wave_end).map(|(_, took)| *took).collect();
    let wave_pushes = in_wave.len();
    let wave_p99 = if in_wave.is_empty() { "no pushes".into() } else { secs(percentiles(in_wave)?.1) };
    let (_, quiet_p99) = percentiles(quiet.push_latency.iter().map(|(_, took)| *took).collect())?;
    report.row(&[
        format!("{connections}"),
        lambdas.to_owned(),
        format!(
            "{} ({} / {} / {})",
            day.total_calls(),
            day.calls_of("import"),
            day.calls_of("change"),
            day.calls_of("push")
        ),
        day.peak_app_minute.to_string(),
        day.describe_refused(),
        day.describe_held(),
        day.wave_done.map_or("not in 24 h".into(), |d| format!("{:.0} min", d.as_secs_f64() / 60.0)),
        if day.backlog == 0 {
            "0".into()
        } else {
            format!("{} (oldest {} min overdue)", day.backlog, day.oldest_backlog.as_secs() / 60)
        },
        format!("{} / {}", secs(change_p50), secs(change_p99)),
        format!("{wave_p99} ({wave_pushes} pushes) / {}", secs(quiet_p99)),
        secs(took),
    ]);
    Ok(())
}
