//! The benchmark: the real function code against moto and the Xero emulator, printing the
//! figures BENCHMARKS.md keeps. `cargo run -p bench --release` (all sections) or with section
//! names: `calls money catalogue rate import functions scale sizes`.
//!
//! Xero calls and AWS calls are counted where they arrive (the emulator's counters, a proxy in
//! front of moto). Time in the rate section is the emulator's clock, moved only when every
//! message waits for Xero, so it measures how well the push uses Xero's limits rather than
//! how fast this machine is.

mod catalogue;
mod money;
mod runtime;
mod scale;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use xero_emulator::{LimitsConfig, demo};
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_domain::signing::{Signed, sign};
use xero_sync_e2e::*;
use xero_sync_testkit::{AwsCall, AwsProxy, lambda};

use crate::runtime::{Function, percentiles};

// US East (N. Virginia) list prices, November 2026.
const PRICE_API_PER_M: f64 = 1.00; // HTTP API, per million requests
const PRICE_LAMBDA_PER_M: f64 = 0.20; // per million requests
const PRICE_LAMBDA_GB_S_ARM: f64 = 0.000_013_333_4; // per GB-second, arm64
const PRICE_DDB_WRITE_PER_M: f64 = 0.625; // on-demand, per million write request units
const PRICE_DDB_READ_PER_M: f64 = 0.125; // on-demand, per million read request units
const PRICE_SQS_PER_M: f64 = 0.40; // standard queue, per million requests
const PRICE_EVENTS_PER_M: f64 = 1.00; // custom events, per million
const PRICE_SECRETS_PER_10K: f64 = 0.05; // per 10,000 API calls
const PRICE_SES_PER_1K: f64 = 0.10; // per 1,000 emails
const MEMORY_GB: f64 = 0.256;

#[derive(Default)]
struct Report {
    lines: Vec<String>,
    /// AWS calls per invoice for the common case (a known customer), by service and operation.
    aws_known: BTreeMap<String, f64>,
    ddb_write_units_known: f64,
    /// Handler p50 of the webhook and the push worker, for Lambda's duration cost.
    handler_p50_ms: BTreeMap<String, f64>,
    /// Payments, refunds and credit notes: what each case cost per document.
    money: Vec<money::MoneyCase>,
}

impl Report {
    fn section(&mut self, title: &str, header: &[&str]) {
        self.lines.push(String::new());
        self.lines.push(format!("### {title}"));
        self.lines.push(String::new());
        self.lines.push(format!("| {} |", header.join(" | ")));
        self.lines.push(format!("|{}|", header.iter().map(|_| "---").collect::<Vec<_>>().join("|")));
    }

    fn row(&mut self, cells: &[String]) {
        let line = format!("| {} |", cells.join(" | "));
        println!("{line}");
        self.lines.push(line);
    }

    fn note(&mut self, text: &str) {
        self.lines.push(String::new());
        self.lines.push(text.to_owned());
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    let mut report = Report::default();
    if run("calls") {
        calls_per_invoice(&mut report).await?;
    }
    if run("money") {
        money::calls_per_document(&mut report).await?;
    }
    if run("catalogue") {
        catalogue::calls_per_record(&mut report).await?;
    }
    if run("rate") {
        sustained_rate(&mut report).await?;
    }
    if run("import") {
        import_contacts(&mut report).await?;
    }
    if run("functions") {
        functions(&mut report).await?;
    }
    if run("scale") {
        scale::scale(&mut report).await?;
    }
    if run("sizes") {
        sizes(&mut report)?;
    }
    if (run("calls") || run("money")) && run("functions") {
        cost(&mut report);
    }
    println!("\n{}", report.lines.join("\n"));
    Ok(())
}

fn kind(call: &AwsCall) -> String {
    format!("{} {}", call.service, call.operation)
}

fn tally(calls: &[AwsCall]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for call in calls {
        *out.entry(kind(call)).or_default() += 1;
    }
    out
}

fn describe(calls: &[AwsCall], per: f64) -> String {
    tally(calls).into_iter().map(|(k, n)| format!("{k} {:.2}", n as f64 / per)).collect::<Vec<_>>().join(", ")
}

/// DynamoDB write units as billed: each write's larger image, one unit per started KiB, and
/// again for every index entry it puts, rewrites or deletes (measured by the proxy).
fn write_units(calls: &[AwsCall]) -> u64 {
    calls
        .iter()
        .filter(|c| c.is_dynamodb_write())
        .map(|c| c.write_units.unwrap_or_else(|| panic!("{} was not measured", c.operation)).total())
        .sum()
}

fn customer(n: usize, prefix: &str) -> Value {
    new_customer(&format!("cust-{prefix}{n}"), &format!("Bench {prefix} {n}"))
}

/// Xero and AWS calls per invoice in the push's common cases.
async fn calls_per_invoice(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("calls per invoice ...");
    let mut w = ready("bench-calls", NewInvoiceStatus::Draft).await;
    let proxy = AwsProxy::start(w.moto().endpoint()).await?;
    proxy.measure_write_units();
    w.reach_aws_through(&proxy);
    w.inbox.set_collecting(false).await?;
    report.section(
        "Calls per invoice (webhook and push worker)",
        &["case", "invoices", "Xero calls / invoice", "AWS calls / invoice", "DynamoDB write units / invoice"],
    );
    let measure = async |w: &World, name: &str, invoices: usize, work: Vec<Value>, report: &mut Report| {
        w.emu.reset_counters();
        proxy.reset();
        for delivery in &work {
            let response = w.post_webhook(&delivery.to_string(), None).await;
            assert!(response.status().is_success(), "{}", body(&response));
        }
        w.work_push_queue().await;
        let xero = w.emu.counters().total_calls() as f64 / invoices as f64;
        let calls = proxy.calls();
        let per = invoices as f64;
        report.row(&[
            name.to_owned(),
            invoices.to_string(),
            format!("{xero:.3}"),
            format!("{:.2} ({})", calls.len() as f64 / per, describe(&calls, per)),
            format!("{:.2}", write_units(&calls) as f64 / per),
        ]);
        calls
    };
    let first = event("bench-calls", "dlv-c-000001", "inv-c1", "C-0001", customer(1, "c"));
    measure(&w, "new contact", 1, vec![first], report).await;
    let known = event("bench-calls", "dlv-c-000002", "inv-c2", "C-0002", customer(1, "c"));
    let calls = measure(&w, "known contact", 1, vec![known.clone()], report).await;
    for (k, n) in tally(&calls) {
        report.aws_known.insert(k, n as f64);
    }
    report.ddb_write_units_known = write_units(&calls) as f64;
    measure(&w, "redelivered webhook", 1, vec![known], report).await;
    let burst: Vec<Value> = (0..500)
        .map(|n| {
            event(
                "bench-calls",
                &format!("dlv-b-{n:06}"),
                &format!("inv-b{n}"),
                &format!("B-{n:04}"),
                customer(n % 10, "b"),
            )
        })
        .collect();
    measure(&w, "burst of 500 (10 new customers)", 500, burst, report).await;

    // A backfill goes through the invoice API, fifty to a queue message.
    w.emu.reset_counters();
    proxy.reset();
    let example = event("bench-calls", "unused", "x", "x", json!({}));
    let items: Vec<Value> = (0..500)
        .map(|n| {
            let mut invoice = example["invoice"].clone();
            invoice["id"] = json!(format!("inv-k{n}"));
            invoice["number"] = json!(format!("K-{n:04}"));
            json!({ "invoice": invoice, "customer": customer(n % 10, "b"), "updated_at": "2026-11-20T10:00:00Z" })
        })
        .collect();
    let path = format!("/accounts/bench-calls/connections/{}/backfill", demo::NZ_TENANT_ID);
    let response = w.invoice_api("POST", &path, &json!({ "invoices": items }).to_string()).await;
    if response.status() != 202 {
        bail!("backfill refused: {}", body(&response));
    }
    w.work_push_queue().await;
    let calls = proxy.calls();
    report.row(&[
        "backfill of 500 (known customers)".into(),
        "500".into(),
        format!("{:.3}", w.emu.counters().total_calls() as f64 / 500.0),
        format!("{:.2} ({})", calls.len() as f64 / 500.0, describe(&calls, 500.0)),
        format!("{:.2}", write_units(&calls) as f64 / 500.0),
    ]);
    report.note(
        "AWS calls are those of our code (the webhook and the worker). Lambda's SQS poller adds a \
         ReceiveMessage and a DeleteMessageBatch per batch, which are not counted here.",
    );

    // Secrets Manager: a warm push worker reads the grant once and then only when it refreshes.
    proxy.reset();
    w.emu.reset_counters();
    let hours = 4;
    for n in 0..(hours * 12) {
        let body = event(
            "bench-calls",
            &format!("dlv-s-{n:06}"),
            &format!("inv-s{n}"),
            &format!("S-{n:04}"),
            customer(1, "c"),
        );
        let response = w.post_webhook(&body.to_string(), None).await;
        assert!(response.status().is_success());
        w.work_push_queue().await;
        w.emu.clock().advance(Duration::from_secs(5 * 60));
    }
    let secrets: Vec<AwsCall> = proxy.calls().into_iter().filter(|c| c.service == "secretsmanager").collect();
    let lifetimes = (hours * 60 / 30) as f64;
    let reads = secrets.iter().filter(|c| c.operation == "GetSecretValue").count() as f64;
    let writes = secrets.iter().filter(|c| c.operation == "PutSecretValue").count() as f64;
    report.note(&format!(
        "Secrets Manager, one warm push worker over {hours} hours (an invoice every 5 minutes; \
         tokens live 30 minutes, so {lifetimes} lifetimes): {} calls ({}), that is {:.2} reads and \
         {:.2} writes per token lifetime. The write stores the rotated refresh token; the extra \
         read is the cold start's.",
        secrets.len(),
        describe(&secrets, 1.0),
        reads / lifetimes,
        writes / lifetimes,
    ));
    Ok(())
}

/// One organisation's sustained push rate under Xero's limits (60 calls a minute, 5 at once),
/// in simulated time: a message the worker hands back waits exactly as long as it asked.
async fn sustained_rate(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("sustained rate ...");
    let mut w = ready("bench-rate", NewInvoiceStatus::Draft).await;
    w.emu.set_limits(LimitsConfig::default());
    // Every wait goes through the queue, so simulated time accounts for all of them.
    w.worker.policy = invoice_push::push::PushPolicy { max_wait: Duration::ZERO, ..Default::default() };
    w.inbox.set_collecting(false).await?;
    let invoices = 1000;
    // Every invoice for a customer Xero has not seen: the most calls an invoice can need.
    for n in 0..invoices {
        let body =
            event("bench-rate", &format!("dlv-r-{n:06}"), &format!("inv-r{n}"), &format!("R-{n:04}"), customer(n, "r"));
        let response = w.post_webhook(&body.to_string(), None).await;
        assert!(response.status().is_success());
    }
    w.emu.reset_counters();
    let started = w.now();
    // Time moves only when every message waits (for the governor or Xero), to the first due.
    let run = w.work_push_queue_in_exact_time().await;
    let last_progress = w.now();
    let in_xero = w
        .emu
        .invoices(demo::NZ_TENANT_ID)
        .iter()
        .filter(|i| i["InvoiceNumber"].as_str().is_some_and(|n| n.starts_with("R-")))
        .count();
    if in_xero != invoices {
        bail!("{in_xero} of {invoices} invoices reached Xero");
    }
    let counters = w.emu.counters();
    let answered = counters.total_calls() - counters.rate_limited();
    // Until the last call's minute has passed: the window the limit is counted in.
    let minutes = ((last_progress - started).num_milliseconds() as f64 / 60_000.0) + 1.0;
    let rate = invoices as f64 / minutes;
    let ceiling = 60.0 * invoices as f64 / answered as f64;
    let held = run.held;
    report.section(
        "Sustained push rate, one organisation, Xero's limits (60 a minute, 5 at once)",
        &[
            "invoices",
            "Xero calls answered",
            "429s",
            "messages held",
            "simulated minutes",
            "invoices / minute",
            "ceiling (60 × invoices per call)",
            "of ceiling",
        ],
    );
    report.row(&[
        format!("{invoices} (each for a new customer)"),
        answered.to_string(),
        counters.rate_limited().to_string(),
        held.to_string(),
        format!("{minutes:.2}"),
        format!("{rate:.0}"),
        format!("{ceiling:.0}"),
        format!("{:.0} %", 100.0 * rate / ceiling),
    ]);
    report.note(
        "Minutes run from the first call until the last call's minute window has closed. The \
         governor lets at most 58 calls through in any 60 seconds (2 clear of Xero's 60) and holds \
         every message that must wait, so Xero refuses nothing; calls past a multiple of 58 open \
         another minute window. With customers already mapped a call carries 50 invoices and the \
         ceiling is 3,000 invoices a minute.",
    );
    Ok(())
}

/// The first import of 10,000 contacts, and the next run with nothing changed.
async fn import_contacts(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("import ...");
    let w = World::new().await;
    w.emu.set_limits(LimitsConfig::default());
    w.connect_account("bench-import").await;
    w.add_contacts("bench-import", 10_000, 500).await;
    w.inbox.set_collecting(false).await?;
    report.section("Import of 10,000 contacts", &["run", "Xero calls", "events", "time (s)"]);
    let policy = scheduled_import::import::ImportPolicy::default();
    for run in ["first", "nothing changed"] {
        w.emu.reset_counters();
        let started = Instant::now();
        let summary = scheduled_import::import::import(&w.importer.app, &policy, &key("bench-import"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let took = started.elapsed();
        report.row(&[
            run.into(),
            w.emu.counters().total_calls().to_string(),
            summary.events.to_string(),
            format!("{:.1}", took.as_secs_f64()),
        ]);
        w.emu.clock().advance(Duration::from_secs(30 * 60));
    }
    report.note(
        "Time is this machine's against moto, whose EventBridge dominates it (10,000 events in \
         batches of 10); the import's own pacing never waits at 60 calls a minute for these counts.",
    );
    Ok(())
}

/// The release binaries, built if needed.
fn release_binaries() -> anyhow::Result<PathBuf> {
    let root = xero_sync_testkit::workspace_root();
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--bins"])
        .args([
            "-p",
            "connect",
            "-p",
            "oauth-callback",
            "-p",
            "invoice-push",
            "-p",
            "scheduled-import",
            "-p",
            "inactivity-sweep",
        ])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("the release build failed");
    }
    Ok(root.join("target/release"))
}

fn http_event(method: &str, path_and_query: &str, headers: &[(&str, &str)], body: Option<&str>) -> Value {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let cookies: Vec<&str> = headers.iter().filter(|(k, _)| *k == "cookie").map(|(_, v)| *v).collect();
    let headers: serde_json::Map<String, Value> =
        headers.iter().filter(|(k, _)| *k != "cookie").map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "cookies": cookies,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.example", "domainPrefix": "bench",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench" },
            "requestId": "bench", "routeKey": "$default", "stage": "$default", "time": "21/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

fn scheduled_event() -> Value {
    json!({ "version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "account": "123456789012", "time": "2026-11-21T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {} })
}

/// Each function's release binary behind a local runtime API: cold start, handler time over
/// 1,000 invocations, and peak RSS.
async fn functions(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("functions: building the release binaries ...");
    let bin = release_binaries()?;
    let w = ready("bench-fn", NewInvoiceStatus::Draft).await;
    w.emu.set_limits(LimitsConfig::disabled());
    w.inbox.set_collecting(false).await?;
    let moto = w.moto();
    // As deployed, each function reads the secrets it needs from Secrets Manager at start-up,
    // one secret per purpose, each holding the value itself.
    let xero_secret = xero_sync_testkit::unique_name("bench-xero-client-secret");
    let platform_secret = xero_sync_testkit::unique_name("bench-platform-signing-secrets");
    let secrets = aws_sdk_secretsmanager::Client::new(&w.aws.sdk);
    for (name, value) in [(&xero_secret, demo::CLIENT_SECRET), (&platform_secret, PLATFORM_SECRET)] {
        secrets.create_secret().name(name).secret_string(value).send().await?;
    }
    let base = w.emu.base_url();
    let authorize = format!("{base}/identity/connect/authorize");
    let overrides = [
        ("XERO_CLIENT_ID", demo::CLIENT_ID),
        ("XERO_AUTHORIZE_URL", authorize.as_str()),
        ("XERO_IDENTITY_URL", base.as_str()),
        ("XERO_API_URL", base.as_str()),
        // Both named for every function, as a superset of the template's: each reads only its own.
        ("XERO_CLIENT_SECRET_ID", xero_secret.as_str()),
        ("PLATFORM_SIGNING_SECRETS_ID", platform_secret.as_str()),
        ("OAUTH_REDIRECT_URI", REDIRECT_URI),
        ("RETURN_TO_ALLOWLIST", "https://platform.example.com/settings/"),
        ("MULTI_ORG", "false"),
        ("PUSH_QUEUE_URL", w.aws.stack.reference("PushQueue")),
        ("IMPORT_QUEUE_URL", w.aws.stack.reference("ImportQueue")),
    ];
    let mut env = w.aws.function_env(&overrides);
    env.extend(moto.aws_env());
    let sqs = aws_sdk_sqs::Client::new(&w.aws.sdk);
    let count: usize = std::env::var("BENCH_INVOCATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    report.section(
        &format!("Functions (release build, local runtime API, {count} invocations each)"),
        &["function", "cold start p50 / max (ms)", "handler p50 (ms)", "handler p99 (ms)", "peak RSS (MiB)"],
    );
    // Mapped first, so each push is the common case: one Xero call.
    deliver(&w, &event("bench-fn", "dlv-fn-warm-0001", "inv-fn-warm", "FN-WARM", customer(0, "fn"))).await;
    w.work_push_queue().await;

    // The scheduled functions first, while the table is small: moto's Query reads the whole
    // table, which DynamoDB does not, so a full table would time moto rather than our code.
    let only = std::env::var("BENCH_FUNCTIONS").unwrap_or_default();
    let names = [
        "import-fanout",
        "import-worker",
        "inactivity-sweep",
        "connect",
        "invoice-webhook",
        "invoice-push-worker",
        "oauth-callback",
    ];
    for name in names.into_iter().filter(|n| only.is_empty() || only.split(',').any(|o| o == *n)) {
        eprintln!("  {name}");
        if name != "import-worker" {
            // The processes read the real clock; the import's schedule moved the emulator's on.
            w.emu.clock().set(chrono::Utc::now());
        }
        let path = bin.join(name);
        let mut colds = Vec::new();
        for _ in 0..4 {
            let f = Function::start(&path, name, &env).await?;
            colds.push(f.cold_start);
            f.stop().await;
        }
        let function = Function::start(&path, name, &env).await?;
        colds.push(function.cold_start);
        let mut took = Vec::with_capacity(count);
        for n in 0..count {
            let event = match name {
                "connect" => http_event("GET", &w.valid_link(&format!("bench-link-{n}")), &[], None),
                "invoice-webhook" => {
                    let body = event(
                        "bench-fn",
                        &format!("dlv-fn-{n:06}"),
                        &format!("inv-fn{n}"),
                        &format!("FN-{n:04}"),
                        customer(n % 10, "fn"),
                    )
                    .to_string();
                    let header = sign(&w.platform, w.now(), &Signed::Webhook { body: body.as_bytes() });
                    http_event(
                        "POST",
                        "/webhooks/invoices",
                        &[("x-xerosync-signature", &header), ("content-type", "application/json")],
                        Some(&body),
                    )
                }
                "invoice-push-worker" => sqs_one(&sqs, w.aws.stack.reference("PushQueue")).await?,
                "import-worker" => {
                    // As scheduled: one run every 30 minutes, so Xero's day limit is met as in
                    // production and tokens expire between runs.
                    w.emu.clock().advance(Duration::from_secs(30 * 60));
                    let queue = w.aws.stack.reference("ImportQueue");
                    match sqs_one(&sqs, queue).await {
                        Ok(event) => event,
                        // Run on its own, the fan-out's messages are not there: send one.
                        Err(_) => {
                            fan_out(&w).await?;
                            sqs_one(&sqs, queue).await?
                        }
                    }
                }
                "oauth-callback" => {
                    let callback = w.consent(&w.valid_link(&format!("bench-cb-{n}"))).await;
                    let cookie = w
                        .cookie
                        .lock()
                        .map_err(|_| anyhow::anyhow!("poisoned"))?
                        .clone()
                        .context("a consent cookie")?;
                    let cookie = format!("{}={cookie}", xero_sync_http::CONSENT_COOKIE);
                    http_event("GET", &callback, &[("cookie", &cookie)], None)
                }
                _ => scheduled_event(),
            };
            let answer = function.invoke(event).await?;
            if answer.error {
                bail!("{name} failed: {}", answer.body);
            }
            if let Some(status) = answer.body.get("statusCode").and_then(Value::as_u64) {
                if status >= 400 {
                    bail!("{name} answered {status}: {}", answer.body);
                }
            }
            if let Some(failures) = answer.body.get("batchItemFailures").and_then(Value::as_array) {
                if !failures.is_empty() {
                    bail!("{name} handed messages back: {}", answer.body);
                }
            }
            took.push(answer.took);
        }
        let rss = function.peak_rss()?;
        function.stop().await;
        let (p50, p99) = percentiles(took)?;
        let (cold_p50, _) = percentiles(colds.clone())?;
        let cold_max = colds.iter().max().copied().unwrap_or_default();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        report.handler_p50_ms.insert(name.to_owned(), ms(p50));
        report.row(&[
            name.to_owned(),
            format!("{:.0} / {:.0}", ms(cold_p50), ms(cold_max)),
            format!("{:.1}", ms(p50)),
            format!("{:.1}", ms(p99)),
            format!("{:.1}", rss as f64 / (1024.0 * 1024.0)),
        ]);
    }
    report.note(
        "Cold start is process start to the first poll of the runtime API: configuration, the SDK \
         clients and the secrets the function needs read from Secrets Manager. Handler time is \
         from handing the event over to the answer, including moto's and the emulator's time; the \
         emulator answers locally, so Xero's own latency (hundreds of ms in production) is not in \
         it. The push worker gets one message per invocation here, its slowest case per invoice.",
    );
    Ok(())
}

/// What the fan-out sends when the connection's moment in the period comes: its import.
async fn fan_out(w: &World) -> anyhow::Result<()> {
    let connection = w.connections("bench-fn").await.into_iter().next().context("bench-fn is connected")?;
    let request = scheduled_import::ImportRequest {
        account_id: connection.account_id,
        tenant_id: connection.tenant_id,
        requested_at: w.now(),
    };
    let sqs = aws_sdk_sqs::Client::new(&w.aws.sdk);
    let queue = xero_sync_aws::Queue::new(sqs, w.aws.stack.reference("ImportQueue"));
    queue.send(&serde_json::to_string(&request)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// The next message on a queue, as the one-message SQS event Lambda would deliver; the message
/// is deleted as Lambda would after a successful invocation (checked by the caller).
async fn sqs_one(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<Value> {
    let messages = lambda::receive_batch(sqs, url, 1).await?;
    let Some(message) = messages.first() else { bail!("{url} is empty") };
    if let Some(handle) = message.receipt_handle() {
        sqs.delete_message().queue_url(url).receipt_handle(handle).send().await?;
    }
    Ok(serde_json::to_value(lambda::sqs_event(&messages))?)
}

/// The arm64 bootstraps `cargo lambda build --release --arm64` leaves in target/lambda.
fn sizes(report: &mut Report) -> anyhow::Result<()> {
    let dir = xero_sync_testkit::workspace_root().join("target/lambda");
    report.section("Binary size, arm64, stripped", &["function", "bootstrap (MB)"]);
    let mut found = 0;
    for name in [
        "connect",
        "oauth-callback",
        "invoice-webhook",
        "invoice-push-worker",
        "import-fanout",
        "import-worker",
        "xero-webhook",
        "xero-changes-worker",
        "inactivity-sweep",
    ] {
        let path = dir.join(name).join("bootstrap");
        if let Ok(meta) = std::fs::metadata(&path) {
            found += 1;
            report.row(&[name.into(), format!("{:.1}", meta.len() as f64 / 1e6)]);
        }
    }
    if found == 0 {
        report.note("No bootstraps found: run `cargo lambda build --release --arm64` first.");
    }
    Ok(())
}

/// What one document costs AWS, per item at list prices: `aws` its calls by service and
/// operation, `writes` its DynamoDB write units, `seconds` its Lambda time.
fn priced(aws: &BTreeMap<String, f64>, writes: f64, seconds: f64) -> [(&'static str, f64, f64); 9] {
    // `+ 0.0` turns the empty sum's -0.0 into 0.0.
    let per = |op: &str| aws.iter().filter(|(k, _)| k.ends_with(op)).map(|(_, n)| n).sum::<f64>() + 0.0;
    let service = |s: &str| aws.iter().filter(|(k, _)| k.starts_with(s)).map(|(_, n)| n).sum::<f64>() + 0.0;
    let reads = per("GetItem") + per("Query") + per("BatchGetItem");
    // Our SQS calls plus the poller's receive and delete for the one message.
    let sqs = service("sqs ") + 2.0;
    let (events, secrets, emails) = (per("PutEvents"), service("secretsmanager "), per("outbound-emails"));
    let million = 1.0;
    [
        ("API Gateway HTTP API", 1.0, PRICE_API_PER_M * million),
        ("Lambda requests", 2.0, PRICE_LAMBDA_PER_M * 2.0),
        ("Lambda duration (arm64, 256 MB)", seconds, seconds * 1e6 * MEMORY_GB * PRICE_LAMBDA_GB_S_ARM),
        ("DynamoDB reads (request units)", reads, reads * PRICE_DDB_READ_PER_M),
        ("DynamoDB writes (request units)", writes, writes * PRICE_DDB_WRITE_PER_M),
        ("SQS requests", sqs, sqs * PRICE_SQS_PER_M),
        ("EventBridge events", events, events * PRICE_EVENTS_PER_M),
        ("Secrets Manager calls", secrets, secrets * PRICE_SECRETS_PER_10K * 100.0),
        ("SES emails", emails, emails * PRICE_SES_PER_1K * 1000.0),
    ]
}

/// AWS cost per million invoices at list prices, from the known-contact case's calls and the
/// handlers' p50 times; then per million payments, refunds and credit notes.
fn cost(report: &mut Report) {
    // Each handler's p50 plus 300 ms for Xero's latency; a document making more Xero calls
    // waits for each.
    let handlers = ["invoice-webhook", "invoice-push-worker"]
        .iter()
        .map(|f| report.handler_p50_ms.get(*f).copied().unwrap_or_default() / 1000.0)
        .sum::<f64>();
    let seconds = handlers + 0.6;
    if !report.aws_known.is_empty() {
        let lines = priced(&report.aws_known, report.ddb_write_units_known, seconds);
        report.section(
            "AWS cost per million invoices (known customer, one webhook each)",
            &["item", "per invoice", "USD per million"],
        );
        let mut total = 0.0;
        for (item, count, usd) in lines {
            total += usd;
            report.row(&[item.into(), format!("{count:.2}"), format!("{usd:.2}")]);
        }
        report.row(&["total".into(), String::new(), format!("{total:.2}")]);
    }
    if !report.money.is_empty() {
        report.section(
            "AWS cost per million payments, refunds and credit notes (one webhook each)",
            &["case", "Xero calls", "USD per million"],
        );
        let rows: Vec<[String; 3]> = report
            .money
            .iter()
            .map(|case| {
                let seconds = handlers + 0.3 + 0.3 * case.xero;
                let usd: f64 = priced(&case.aws, case.write_units, seconds).iter().map(|(_, _, usd)| usd).sum();
                [case.name.clone(), format!("{:.2}", case.xero), format!("{usd:.2}")]
            })
            .collect();
        for row in rows {
            report.row(&row);
        }
    }
    report.note(
        "Prices: US East (N. Virginia) list prices — HTTP API $1.00/M requests; Lambda $0.20/M \
         requests and $0.0000133334 per GB-s on arm64; DynamoDB on-demand $0.625/M write and \
         $0.125/M read request units; SQS $0.40/M requests; EventBridge $1.00/M events; Secrets \
         Manager $0.05 per 10,000 calls (plus $0.40 a month per connected organisation's secret); \
         SES $0.10 per 1,000 emails. Lambda duration is each handler's p50 plus 300 ms for Xero's \
         latency. Reads are priced as strongly consistent. CloudWatch Logs and free tiers are left out.",
    );
}
