//! `./dev run`: the whole stack on this machine. Starts moto, creates the stack's resources
//! from infra/template.yaml, proves each AWS adapter works against them, writes the functions'
//! environment to `.local/functions.env` and keeps running until Ctrl-C (`--once`: exits).

use std::io::Write;

use anyhow::{Context, bail};
use xero_sync_core::aws::Services;
use xero_sync_core::events::{EventKind, PlatformEvent};
use xero_sync_core::model::*;
use xero_sync_core::notify::Notice;
use xero_sync_core::tokens::{AccessToken, RefreshToken, TokenSet};
use xero_sync_testkit::{EventInbox, LocalAws, Moto, sent_emails, workspace_root};

const STACK: &str = "xero-sync-local";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let once = std::env::args().skip(1).any(|a| a == "--once");
    println!("Starting moto (AWS on localhost) ...");
    let moto = Moto::start()?;
    let aws = LocalAws::provision_on(&moto, STACK).await.context("creating the stack from infra/template.yaml")?;
    let config = aws.config(&[]);
    let services = Services::new(&config, &aws.sdk);

    println!("\nChecking each adapter against the local stack:");
    check_store(&services).await?;
    check_vault(&services).await?;
    check_email(&services, &moto).await?;
    check_events(&services, &aws).await?;

    let env_file = workspace_root().join(".local/functions.env");
    std::fs::create_dir_all(env_file.parent().expect("has a parent"))?;
    let mut vars = aws.function_env(&[
        ("IMPORT_QUEUE_URL", aws.stack.reference("ImportQueue")),
        ("PUSH_QUEUE_URL", aws.stack.reference("PushQueue")),
    ]);
    vars.extend(moto.aws_env());
    let mut file = std::fs::File::create(&env_file)?;
    for (k, v) in &vars {
        writeln!(file, "{k}={v}")?;
    }

    println!("\nxero-sync is running locally:");
    let rows = [
        ("AWS (moto)", moto.endpoint().to_owned()),
        ("DynamoDB table", aws.stack.reference("Table").to_owned()),
        ("push queue", aws.stack.reference("PushQueue").to_owned()),
        ("import queue", aws.stack.reference("ImportQueue").to_owned()),
        ("event bus", aws.stack.reference("EventBus").to_owned()),
        ("SES sender", aws.stack.parameter("SenderEmail").to_owned()),
        ("functions' environment", env_file.display().to_string()),
    ];
    for (what, where_) in rows {
        println!("  {what:<24} {where_}");
    }
    if once {
        return Ok(());
    }
    println!("\nRun a function against it: set -a; . {}; set +a; cargo lambda watch", env_file.display());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn ok(what: &str) {
    println!("  ok  {what}");
}

async fn check_store(services: &Services) -> anyhow::Result<()> {
    let now = xero_sync_core::time::now();
    let connection = Connection {
        account_id: AccountId::parse("local-demo")?,
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
    let now = xero_sync_core::time::now();
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
        xero_sync_core::time::now(),
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
