//! `./dev run`: xero-sync on this machine. Starts moto and creates the stack from
//! infra/template.yaml, starts the Xero emulator (demo organisations), serves the HTTP functions
//! (connect, OAuth callback, invoice webhook and API, Xero's webhooks) behind a local stand-in
//! for API Gateway, subscribes the emulator's app to that webhook endpoint (delivering each
//! second), runs the push, import and changes workers off their queues as Lambda's SQS trigger
//! would, checks each AWS adapter, and prints a signed "Connect to Xero" link to open in a
//! browser. With `--once` it walks the connect flow, settings, an invoice through to Xero and a
//! payment made in Xero back to the platform by webhook, reports, and exits.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use xero_emulator::{ClientSeed, Emulator, EmulatorConfig, demo};
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::*;
use xero_sync_domain::notify::Notice;
use xero_sync_domain::signing::{Signed, SigningSecret, sign};
use xero_sync_domain::tokens::{AccessToken, RefreshToken, TokenSet};
use xero_sync_runtime::aws::Services;
use xero_sync_runtime::{App, Env};
use xero_sync_testkit::{EventInbox, LocalApi, LocalAws, Moto, sent_emails, workspace_root};

const STACK: &str = "xero-sync-local";
const ACCOUNT: &str = "local-demo";
const CLIENT_ID: &str = "LOCALXEROSYNC000000000000000000001";
const CLIENT_SECRET: &str = "local-xero-sync-client-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let once = std::env::args().skip(1).any(|a| a == "--once");
    println!("Starting moto (AWS on localhost) ...");
    let moto = Moto::start()?;
    let aws = LocalAws::provision_on(&moto, STACK).await.context("creating the stack from infra/template.yaml")?;
    let mut api = LocalApi::bind().await?;
    let base = api.base_url();
    let redirect_uri = format!("{base}/oauth/callback");
    // --once approves the consent by itself; interactively, a person ticks and approves.
    let emulator_config = EmulatorConfig::default().auto_approve(once).approve_tenants(vec![demo::NZ_TENANT_ID]);
    let emu = Arc::new(Emulator::start(emulator_config).await.context("starting the Xero emulator")?);
    emu.add_client(ClientSeed {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![redirect_uri.clone()],
        name: Some("xero-sync (local)".into()),
    })
    .map_err(anyhow::Error::msg)?;

    let xero = emu.base_url();
    let authorize = format!("{xero}/identity/connect/authorize");
    let platform_secret = format!("local-platform-secret-{}", uuid::Uuid::new_v4().simple());
    let webhook_key = format!("local-xero-webhook-key-{}", uuid::Uuid::new_v4().simple());
    let overrides = [
        ("XERO_CLIENT_ID", CLIENT_ID),
        ("XERO_CLIENT_SECRET", CLIENT_SECRET),
        ("XERO_AUTHORIZE_URL", authorize.as_str()),
        ("XERO_IDENTITY_URL", xero.as_str()),
        ("XERO_API_URL", xero.as_str()),
        ("PLATFORM_SIGNING_SECRETS", platform_secret.as_str()),
        ("OAUTH_REDIRECT_URI", redirect_uri.as_str()),
        ("PUSH_QUEUE_URL", aws.stack.reference("PushQueue")),
        ("IMPORT_QUEUE_URL", aws.stack.reference("ImportQueue")),
        ("CHANGES_QUEUE_URL", aws.stack.reference("ChangesQueue")),
        ("XERO_WEBHOOK_KEY", webhook_key.as_str()),
        // The link printed below is for a person who may open it later: it lives a day here
        // (15 minutes by default), and like every link it works once.
        ("CONNECT_LINK_MAX_MINUTES", "1440"),
        // Locally the secrets are plain settings above (XERO_CLIENT_SECRET,
        // PLATFORM_SIGNING_SECRETS), not in Secrets Manager: no XERO_CLIENT_SECRET_ID or
        // PLATFORM_SIGNING_SECRETS_ID, which only each function's own Environment in the
        // template sets.
    ];
    let env = Env::from_pairs(aws.function_env(&overrides));
    let config = aws.config(&overrides);
    let app = || App::new(config.clone(), &aws.sdk);
    let connect = Arc::new(connect::Connect::new(app()?, &env)?);
    let callback = Arc::new(oauth_callback::Callback::new(app()?, &env)?);
    let webhook = Arc::new(invoice_push::Webhook::new(app()?, &env)?);
    let page = Arc::new(integration_page::IntegrationPage::new(app()?, &env)?);
    let worker = Arc::new(invoice_push::Worker::new(app()?, &env)?);
    let xero_webhook = Arc::new(scheduled_import::webhook::XeroWebhook::new(aws_sdk_sqs::Client::new(&aws.sdk), &env)?);
    api.serve(Arc::new(move |request| {
        let (connect, callback, webhook, page) = (connect.clone(), callback.clone(), webhook.clone(), page.clone());
        let xero_webhook = xero_webhook.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if path == "/xero/webhooks" {
                let now = xero_sync_domain::time::now();
                return scheduled_import::webhook::handle_xero_webhook(&xero_webhook, request, now).await;
            }
            // As the template routes them.
            let invoice_api = path.starts_with("/accounts/")
                && (path.ends_with("/backfill") || path.contains("/invoices/") || path.contains("/credit-notes/"));
            let page_route = path == "/integration"
                || path.starts_with("/integration/")
                || (path.starts_with("/accounts/") && path.ends_with("/integration-sessions"));
            if page_route {
                integration_page::handle(&page, request).await
            } else if path.starts_with("/oauth/") {
                oauth_callback::handle(&callback, request).await
            } else if path.starts_with("/webhooks/") || invoice_api {
                invoice_push::handle_webhook(&webhook, request).await
            } else {
                connect::handle(&connect, request).await
            }
        })
    }));
    let importer = Arc::new(scheduled_import::worker::Worker::new(app()?, &env)?);
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
    let push_queue = worker.queue.url().to_owned();
    tokio::spawn(poll(sqs.clone(), push_queue, 50, move |event| {
        let worker = worker.clone();
        async move { invoice_push::handle_queue(&worker, event).await }
    }));
    let import_queue = importer.queue.url().to_owned();
    tokio::spawn(poll(sqs.clone(), import_queue, 1, move |event| {
        let importer = importer.clone();
        async move { scheduled_import::worker::handle(&importer, event).await }
    }));
    let changes = Arc::new(scheduled_import::changes::ChangesWorker::new(app()?, &env)?);
    let changes_queue = changes.queue.url().to_owned();
    tokio::spawn(poll(sqs, changes_queue, 10, move |event| {
        let changes = changes.clone();
        async move { scheduled_import::changes::handle(&changes, event).await }
    }));
    // Xero's app registration, pointed at this machine: changes made in the emulator are
    // delivered to /xero/webhooks, a batch each second, as Xero batches its own.
    let webhook_url = format!("{base}/xero/webhooks");
    emu.update_settings(|s| {
        s.webhooks = Some(xero_emulator::WebhookSubscription { url: webhook_url.clone(), key: webhook_key.clone() })
    });
    let deliverer = emu.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = deliverer.deliver_webhooks().await {
                eprintln!("the emulator's webhook delivery failed: {e}");
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });

    let services = Services::new(&config, &aws.sdk);
    println!("\nChecking each adapter against the local stack:");
    check_store(&services).await?;
    check_vault(&services).await?;
    check_email(&services, &moto).await?;
    check_events(&services, &aws).await?;

    let env_file = workspace_root().join(".local/functions.env");
    std::fs::create_dir_all(env_file.parent().expect("has a parent"))?;
    let mut vars = aws.function_env(&overrides);
    vars.extend(moto.aws_env());
    let mut file = std::fs::File::create(&env_file)?;
    for (k, v) in &vars {
        writeln!(file, "{k}={v}")?;
    }

    let secret = SigningSecret::new(platform_secret.as_bytes());
    let expires = xero_sync_domain::time::now().timestamp() + 24 * 3600;
    let link = connect::connect_link(
        &url::Url::parse(&format!("{base}/"))?,
        &secret,
        ACCOUNT,
        None,
        Some("owner@example.com"),
        expires,
    );

    println!("\nxero-sync is running locally:");
    let rows = [
        ("AWS (moto)", moto.endpoint().to_owned()),
        ("DynamoDB table", aws.stack.reference("Table").to_owned()),
        ("push queue", aws.stack.reference("PushQueue").to_owned()),
        ("import queue", aws.stack.reference("ImportQueue").to_owned()),
        ("changes queue", aws.stack.reference("ChangesQueue").to_owned()),
        ("Xero webhooks in", webhook_url.clone()),
        ("event bus", aws.stack.reference("EventBus").to_owned()),
        ("SES sender", aws.stack.parameter("SenderEmail").to_owned()),
        ("Xero (emulator)", xero.clone()),
        ("HTTP functions", base.clone()),
        ("functions' environment", env_file.display().to_string()),
    ];
    for (what, where_) in rows {
        println!("  {what:<24} {where_}");
    }
    if once {
        let inbox = EventInbox::subscribe(&aws.sdk, &aws.stack, "EventBus").await?;
        inbox.drain().await?;
        return tour(&base, &link, &secret, &emu, &inbox, &app()?, (&webhook_url, &webhook_key)).await;
    }
    println!(
        "\nConnect the demo account to Xero: open this link in a browser (it works once), tick Demo Company (NZ), approve."
    );
    println!("  {link}");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    // Chromium keeps a Secure cookie on plain http for localhost only.
    let page = page_session_url(&http, &base, &secret).await?.replace("127.0.0.1", "localhost");
    println!("\nThe hosted integration page, as the platform opens it for its user (works once, within 5 minutes):");
    println!("  {page}");
    println!("\nPress Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// What a person would do, done by this program: connect, look at the connection, choose the
/// settings, send an invoice and see it in Xero.
async fn tour(
    base: &str,
    link: &url::Url,
    secret: &SigningSecret,
    emu: &Emulator,
    inbox: &EventInbox,
    sweeper: &App,
    (webhook_url, webhook_key): (&str, &str),
) -> anyhow::Result<()> {
    println!(
        "\nWalking the connect flow, the first import, the settings, an invoice to Xero with a file attached, a payment back by webhook, the integration page and a sweep:"
    );
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let start = http.get(link.as_str()).send().await?;
    let cookie = start
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let to_xero = location(&start).context("/connect did not send the browser to Xero")?;
    let from_xero = location(&http.get(&to_xero).send().await?).context("Xero's consent did not redirect back")?;
    let mut back = http.get(&from_xero);
    if let Some(cookie) = cookie {
        back = back.header("cookie", cookie);
    }
    let page = back.send().await?.text().await?;
    if !page.contains("Connected to Xero") {
        bail!("the callback did not connect: {page}");
    }
    ok("connect link -> Xero consent (emulator, approved) -> callback: \"Connected to Xero\"");

    // connection.connected starts the first import; the import worker polls its queue.
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..100 {
        for event in inbox.drain().await? {
            *seen.entry(event["detail-type"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        }
        if seen.contains_key("tracking.changed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !seen.contains_key("contact.upserted") {
        bail!("the first import sent no contacts: {seen:?}");
    }
    let summary: Vec<String> = seen.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    ok(&format!("first import -> platform events: {}", summary.join(", ")));

    let path = format!("/accounts/{ACCOUNT}/connections");
    let header =
        sign(secret, xero_sync_domain::time::now(), &Signed::Api { method: "GET", path_and_query: &path, body: b"" });
    let listed: serde_json::Value =
        http.get(format!("{base}{path}")).header("x-xerosync-signature", header).send().await?.json().await?;
    let nz = demo::NZ_TENANT_ID.to_string();
    let connection = listed["connections"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["tenant_id"] == nz.as_str()))
        .context("the connection API does not list Demo Company (NZ)")?;
    if connection["status"] != "CONNECTED" {
        bail!("Demo Company (NZ) is {}, not CONNECTED", connection["status"]);
    }
    ok(&format!("connection API: {} is {}", connection["organisation_name"], connection["status"]));

    let settings_path = format!("/accounts/{ACCOUNT}/connections/{nz}/settings");
    let settings = serde_json::json!({ "version": 0, "settings": {
        "default_sales_account_code": "200",
        "new_invoice_status": "AUTHORISED",
        "tax_mapping": [{ "platform_tax_rate_id": "gst", "rate": "15", "xero_tax_type": "OUTPUT2" }],
    }})
    .to_string();
    let header = sign(
        secret,
        xero_sync_domain::time::now(),
        &Signed::Api { method: "PUT", path_and_query: &settings_path, body: settings.as_bytes() },
    );
    let saved =
        http.put(format!("{base}{settings_path}")).header("x-xerosync-signature", header).body(settings).send().await?;
    if !saved.status().is_success() {
        bail!("the settings were refused ({}): {}", saved.status(), saved.text().await?);
    }
    ok(
        "settings: sales account 200, new invoices approved, platform tax rate gst -> Xero OUTPUT2 (checked against Xero)",
    );

    let example = std::fs::read_to_string(workspace_root().join("docs/contracts/examples/invoice-created.json"))?;
    let mut event: serde_json::Value = serde_json::from_str(&example)?;
    event["account_id"] = serde_json::json!(ACCOUNT);
    let body = event.to_string();
    let header = sign(secret, xero_sync_domain::time::now(), &Signed::Webhook { body: body.as_bytes() });
    let accepted =
        http.post(format!("{base}/webhooks/invoices")).header("x-xerosync-signature", header).body(body).send().await?;
    if accepted.status().as_u16() != 202 {
        bail!("the invoice webhook answered {}: {}", accepted.status(), accepted.text().await?);
    }
    ok("invoice webhook INV-1001: 202 accepted and queued");

    let status_path = format!("/accounts/{ACCOUNT}/connections/{nz}/invoices/inv-1001");
    let mut status = serde_json::Value::Null;
    // The worker polls the queue in the background; give it a few seconds.
    for _ in 0..100 {
        let header = sign(
            secret,
            xero_sync_domain::time::now(),
            &Signed::Api { method: "GET", path_and_query: &status_path, body: b"" },
        );
        let response = http.get(format!("{base}{status_path}")).header("x-xerosync-signature", header).send().await?;
        if response.status().is_success() {
            status = response.json().await?;
            if status["status"] != "PENDING" {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if status["status"] != "SYNCED" {
        bail!("INV-1001 did not reach Xero: {status}");
    }
    let in_xero = emu
        .invoices(demo::NZ_TENANT_ID)
        .into_iter()
        .find(|i| i["InvoiceNumber"] == "INV-1001")
        .context("the emulator has no INV-1001")?;
    let synced = inbox.drain().await?.into_iter().any(|e| e["detail-type"] == "invoice.synced");
    if !synced {
        bail!("no invoice.synced event reached the platform");
    }
    ok(&format!(
        "push worker: INV-1001 is in Xero as {} for {}, total {} {} (InvoiceID {}); invoice.synced sent",
        in_xero["Status"],
        in_xero["Contact"]["Name"],
        in_xero["Total"],
        in_xero["CurrencyCode"].as_str().unwrap_or_default(),
        in_xero["InvoiceID"].as_str().unwrap_or_default()
    ));

    let invoice_id: uuid::Uuid = in_xero["InvoiceID"].as_str().unwrap_or_default().parse()?;
    attached_file(&http, base, secret, emu, inbox, invoice_id).await?;

    let itr = emu.intent_to_receive(webhook_url, webhook_key).await.map_err(anyhow::Error::msg)?;
    if !itr.passed {
        bail!("Xero's intent-to-receive check failed: {itr:?}");
    }
    ok("Xero webhooks: intent to receive passes (401 to a wrong signature, 200 to the right one)");
    paid_in_xero(emu, inbox, sweeper, &in_xero).await?;
    integration_page_opened(&http, base, secret).await?;

    let swept = inactivity_sweep::sweep(sweeper, &inactivity_sweep::SweepConfig::default()).await?;
    ok(&format!(
        "inactivity sweep: {} connection(s) idle long enough to look at, {} warned, {} disconnected, complete: {}",
        swept.examined, swept.warned, swept.disconnected, swept.complete
    ));
    Ok(())
}

/// The job sheet declared through the invoice API, uploaded to the bucket (moto), whose
/// notification brings it to the push worker, which attaches it to the invoice in Xero.
async fn attached_file(
    http: &reqwest::Client,
    base: &str,
    secret: &SigningSecret,
    emu: &Emulator,
    inbox: &EventInbox,
    invoice_id: uuid::Uuid,
) -> anyhow::Result<()> {
    let nz = demo::NZ_TENANT_ID;
    let path = format!("/accounts/{ACCOUNT}/connections/{nz}/invoices/inv-1001/attachments");
    let sheet = b"%PDF-1.7\n% the job sheet for INV-1001\n".to_vec();
    let declared =
        serde_json::json!({ "file_name": "Job sheet 1001.pdf", "content_type": "application/pdf", "size": sheet.len() })
            .to_string();
    let header = sign(
        secret,
        xero_sync_domain::time::now(),
        &Signed::Api { method: "POST", path_and_query: &path, body: declared.as_bytes() },
    );
    let offered =
        http.post(format!("{base}{path}")).header("x-xerosync-signature", header).body(declared).send().await?;
    if offered.status().as_u16() != 201 {
        bail!("the attachments API answered {}: {}", offered.status(), offered.text().await?);
    }
    let offered: serde_json::Value = offered.json().await?;
    let mut upload = http.put(offered["url"].as_str().unwrap_or_default()).body(sheet);
    for (name, value) in offered["headers"].as_object().into_iter().flatten() {
        upload = upload.header(name.as_str(), value.as_str().unwrap_or_default());
    }
    let uploaded = upload.send().await?;
    if !uploaded.status().is_success() {
        bail!("the bucket refused the upload: {}", uploaded.status());
    }
    // The worker polls the queue in the background: the file reaches Xero, then the platform
    // hears of it. Give it a few seconds.
    let mut told = false;
    for _ in 0..100 {
        told |= inbox.drain().await?.into_iter().any(|e| e["detail-type"] == "attachment.synced");
        if told {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !told {
        bail!("no attachment.synced event reached the platform");
    }
    let attached = emu.attachments(nz, invoice_id);
    if attached.len() != 1 {
        bail!("the job sheet was not attached once: {} attachments", attached.len());
    }
    ok(&format!(
        "attachments API -> upload URL -> bucket (moto) -> notification -> push worker: \"{}\" ({} bytes) attached to \
         INV-1001 in Xero; attachment.synced sent",
        attached[0].file_name, attached[0].content_length
    ));
    Ok(())
}

/// The platform opens the hosted integration page for its user: a signed call gives a
/// single-use URL, which the browser opens once for a session cookie and the page.
async fn integration_page_opened(http: &reqwest::Client, base: &str, secret: &SigningSecret) -> anyhow::Result<()> {
    let url = page_session_url(http, base, secret).await?;
    let opened = http.get(&url).send().await?;
    let cookie = opened
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .context("opening the page's URL set no session cookie")?;
    let page = http.get(format!("{base}/integration")).header("cookie", &cookie).send().await?;
    let status = page.status();
    let html = page.text().await?;
    if !status.is_success() || !html.contains("Demo Company (NZ)") || !html.contains("Sync log") {
        bail!("the integration page did not show the connection ({status})");
    }
    let again = http.get(&url).send().await?.status();
    if again.as_u16() != 401 {
        bail!("the page's URL opened twice ({again})");
    }
    ok(&format!(
        "integration page: a signed session call -> {base}/integration?session=… opened once -> status card for Demo \
         Company (NZ), its settings and sync log ({} KB of HTML); the URL refused a second time",
        html.len() / 1024
    ));
    Ok(())
}

/// The platform's signed call for an integration page session: its single-use URL.
async fn page_session_url(http: &reqwest::Client, base: &str, secret: &SigningSecret) -> anyhow::Result<String> {
    let path = format!("/accounts/{ACCOUNT}/integration-sessions");
    let body = serde_json::json!({
        "tax_rates": [{ "id": "gst", "name": "GST", "rate": "15" }],
        "job_attributes": ["Region"],
        "payment_methods": ["card"],
        "user_display_name": "Demo bookkeeper",
        "locale": "en-NZ",
    })
    .to_string();
    let header = sign(
        secret,
        xero_sync_domain::time::now(),
        &Signed::Api { method: "POST", path_and_query: &path, body: body.as_bytes() },
    );
    let offered = http.post(format!("{base}{path}")).header("x-xerosync-signature", header).body(body).send().await?;
    if offered.status().as_u16() != 201 {
        bail!("the integration session was refused ({}): {}", offered.status(), offered.text().await?);
    }
    let answer: serde_json::Value = serde_json::from_str(&offered.text().await?)?;
    Ok(answer["url"].as_str().context("the session call answered no url")?.to_owned())
}

/// A bookkeeper records a payment for the invoice in Xero: Xero's webhook (the emulator
/// delivers each second) brings it to the platform as `payment.recorded`, with no poll.
async fn paid_in_xero(
    emu: &Emulator,
    inbox: &EventInbox,
    app: &App,
    invoice: &serde_json::Value,
) -> anyhow::Result<()> {
    let key = ConnectionKey { account_id: AccountId::parse(ACCOUNT)?, tenant_id: TenantId(demo::NZ_TENANT_ID) };
    let connection = app.services.store.get_connection(&key).await?.context("the demo connection is gone")?;
    let payment = serde_json::json!({ "Payments": [{
        "Invoice": { "InvoiceID": invoice["InvoiceID"] }, "Account": { "Code": "090" },
        "Date": emu.clock().now().format("%Y-%m-%d").to_string(), "Amount": invoice["AmountDue"], "Reference": "Paid in Xero",
    }]});
    // The emulator's clock stands still in this tour, and Xero tells of a change by its
    // UpdatedDateUTC: the payment comes a minute after the invoice, as a bookkeeper's would.
    emu.clock().advance(std::time::Duration::from_secs(60));
    let started = std::time::Instant::now();
    let request = xero_sync_xero::ApiRequest::new("/Payments");
    app.tokens.put::<_, serde_json::Value>(&connection, &request, &payment).await?;
    for _ in 0..100 {
        let events = inbox.drain().await?;
        if let Some(recorded) = events.iter().find(|e| e["detail-type"] == "payment.recorded") {
            ok(&format!(
                "Xero webhook: a payment of {} made in Xero reached the platform as payment.recorded in {} ms (no poll)",
                recorded["detail"]["data"]["amount"].as_str().unwrap_or_default(),
                started.elapsed().as_millis()
            ));
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!("the payment made in Xero did not reach the platform")
}

/// Lambda's SQS trigger: polls the queue, hands batches (the template's size) to the function and
/// deletes what it did not report as failed.
async fn poll<F, Fut>(sqs: aws_sdk_sqs::Client, queue_url: String, batch_size: usize, handler: F)
where
    F: Fn(aws_lambda_events::sqs::SqsEvent) -> Fut,
    Fut: std::future::Future<Output = aws_lambda_events::sqs::SqsBatchResponse>,
{
    loop {
        let received = xero_sync_testkit::lambda::receive_batch(&sqs, &queue_url, batch_size).await;
        let messages = match received {
            Ok(messages) => messages,
            Err(e) => {
                eprintln!("{queue_url}: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        let event = xero_sync_testkit::lambda::sqs_event(&messages);
        let response = handler(event).await;
        for m in messages {
            let failed = response.batch_item_failures.iter().any(|f| Some(&f.item_identifier) == m.message_id.as_ref());
            if let (false, Some(handle)) = (failed, m.receipt_handle) {
                let _ = sqs.delete_message().queue_url(&queue_url).receipt_handle(handle).send().await;
            }
        }
    }
}

fn location(response: &reqwest::Response) -> Option<String> {
    response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn ok(what: &str) {
    println!("  ok  {what}");
}

async fn check_store(services: &Services) -> anyhow::Result<()> {
    let now = xero_sync_domain::time::now();
    let connection = Connection {
        account_id: AccountId::parse("local-adapter-check")?,
        tenant_id: TenantId(uuid::Uuid::new_v4()),
        xero_connection_id: XeroConnectionId(uuid::Uuid::new_v4()),
        grant_id: GrantId(uuid::Uuid::new_v4()),
        status: ConnectionStatus::Connected,
        organisation_name: "Demo Company (NZ)".into(),
        notify_email: None,
        connected_at: now,
        last_activity_at: now,
        last_sync_at: None,
        status_changed_at: now,
        last_error: None,
        cleanup_pending: false,
        email_refused: None,
        scopes: None,
        short_code: None,
    };
    services.store.put_connection(&connection).await?;
    let listed = services.store.account_connections(&connection.account_id).await?;
    if !listed.contains(&connection) {
        bail!("the connection written to DynamoDB was not read back");
    }
    ok("DynamoDB: a connection written and read back by its account");
    Ok(())
}

async fn check_vault(services: &Services) -> anyhow::Result<()> {
    let now = xero_sync_domain::time::now();
    let grant = GrantId(uuid::Uuid::new_v4());
    let tokens = TokenSet {
        grant_id: grant,
        access_token: AccessToken::new("local-access".into()),
        refresh_token: RefreshToken::new("local-refresh".into()),
        expires_at: now + chrono::Duration::minutes(30),
        scopes: vec![],
        obtained_at: now,
    };
    services.vault.store(&tokens).await?;
    let loaded = services.vault.load(&grant).await?.context("the stored token set is missing")?;
    services.vault.delete(&grant).await?;
    if loaded.refresh_token.secret() != "local-refresh" || services.vault.load(&grant).await?.is_some() {
        bail!("Secrets Manager did not keep or delete the token set");
    }
    ok("Secrets Manager: a token set stored, read and deleted");
    Ok(())
}

async fn check_email(services: &Services, moto: &Moto) -> anyhow::Result<()> {
    let to = "local-demo@example.com";
    let notice = Notice {
        subject: "xero-sync is running locally".into(),
        organisation: "Demo Company (NZ)".into(),
        what_happened: "The local stack started.".into(),
        details: vec![],
        what_to_do: "Nothing; this email proves SES works.".into(),
    };
    services.notifier.send(&notice.to(to)).await?;
    if sent_emails(moto.endpoint(), to).await?.is_empty() {
        bail!("SES did not record the email");
    }
    ok("SES v2: an email sent");
    Ok(())
}

async fn check_events(services: &Services, aws: &LocalAws) -> anyhow::Result<()> {
    let inbox = EventInbox::subscribe(&aws.sdk, &aws.stack, "EventBus").await?;
    let event = PlatformEvent::new(
        EventKind::ConnectionConnected,
        AccountId::parse("local-demo")?,
        None,
        "local-check",
        xero_sync_domain::time::now(),
        serde_json::json!({"check": true}),
    );
    services.events.publish(std::slice::from_ref(&event)).await?;
    let received = inbox.drain().await?;
    if !received.iter().any(|e| e["detail"]["id"] == event.id.to_string()) {
        bail!("the event did not reach the platform's subscription");
    }
    ok("EventBridge: an event published and delivered to a subscriber queue");
    Ok(())
}
