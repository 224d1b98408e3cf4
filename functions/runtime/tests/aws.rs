//! The store, vault, notifier and event publisher against a real moto server, with the
//! resources created from infra/template.yaml.

use std::collections::HashSet;
use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;
use xero_sync_aws::{DynamoStore, EventBridgePublisher, SecretsManagerVault, SesNotifier};
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, EventPublisher, PlatformEvent};
use xero_sync_domain::model::*;
use xero_sync_domain::notify::{Notice, Notifier};
use xero_sync_domain::settings::{ConnectionSettings, NewInvoiceStatus};
// Every port: these tests drive the DynamoDB adapter itself.
use xero_sync_domain::store::*;
use xero_sync_domain::tokens::{AccessToken, RefreshToken, TokenSet};
use xero_sync_domain::vault::TokenVault;
use xero_sync_runtime::app::Needs;
use xero_sync_testkit::{EventInbox, LocalAws, Moto, Stack, sent_emails};

struct TestStack {
    sdk: SdkConfig,
    stack: Stack,
    store: DynamoStore,
}

async fn stack() -> TestStack {
    let LocalAws { sdk, stack } = LocalAws::provision("core").await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), stack.reference("Table"));
    TestStack { sdk, stack, store }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
}

fn account(n: usize) -> AccountId {
    AccountId::parse(format!("acct-{n}")).unwrap()
}

fn connection(account_id: AccountId, status: ConnectionStatus, last_activity_at: DateTime<Utc>) -> Connection {
    Connection {
        account_id,
        tenant_id: TenantId(Uuid::new_v4()),
        xero_connection_id: XeroConnectionId(Uuid::new_v4()),
        grant_id: GrantId(Uuid::new_v4()),
        status,
        organisation_name: "Demo Company (NZ)".into(),
        notify_email: Some("owner@example.com".into()),
        connected_at: last_activity_at,
        last_activity_at,
        last_sync_at: None,
        status_changed_at: last_activity_at,
        last_error: None,
        cleanup_pending: false,
        email_refused: None,
        scopes: None,
        short_code: None,
    }
}

fn oauth_state(state: &str, expires_at: DateTime<Utc>) -> OAuthState {
    OAuthState {
        state: state.into(),
        account_id: account(1),
        return_to: Some("https://platform.example.com/settings/xero".into()),
        pkce_verifier: xero_sync_domain::secret::PkceVerifier::new(
            "verifier-value-that-is-long-enough-for-pkce-rules-0123".into(),
        ),
        notify_email: None,
        created_at: expires_at - Duration::minutes(10),
        expires_at,
    }
}

/// All connected connections, page by page.
async fn all_connected(store: &DynamoStore, query: ConnectedQuery) -> (Vec<Connection>, usize) {
    let mut token = None;
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.connected_page(query, token.as_ref()).await.unwrap();
        pages += 1;
        items.extend(page.items);
        match page.next {
            Some(next) => token = Some(next),
            None => return (items, pages),
        }
    }
}

#[tokio::test]
async fn a_connection_is_stored_and_listed_under_its_account() {
    let s = stack().await;
    let a = connection(account(1), ConnectionStatus::Connected, t0());
    let b = connection(account(1), ConnectionStatus::NeedsReconnect, t0());
    let other = connection(account(2), ConnectionStatus::Connected, t0());
    for c in [&a, &b, &other] {
        s.store.put_connection(c).await.unwrap();
    }
    assert_eq!(s.store.get_connection(&a.key()).await.unwrap(), Some(a.clone()));
    let listed: HashSet<_> =
        s.store.account_connections(&account(1)).await.unwrap().into_iter().map(|c| c.tenant_id).collect();
    assert_eq!(listed, HashSet::from([a.tenant_id, b.tenant_id]));
    let missing = ConnectionKey { account_id: account(3), tenant_id: a.tenant_id };
    assert_eq!(s.store.get_connection(&missing).await.unwrap(), None);
}

#[tokio::test]
async fn the_connected_index_pages_through_every_connected_connection_once() {
    let s = stack().await;
    let mut connected = HashSet::new();
    for n in 0..25 {
        let c = connection(account(n), ConnectionStatus::Connected, t0() - Duration::days(n as i64));
        connected.insert(c.tenant_id);
        s.store.put_connection(&c).await.unwrap();
    }
    for n in 0..5 {
        s.store.put_connection(&connection(account(100 + n), ConnectionStatus::Disconnected, t0())).await.unwrap();
    }
    let (items, pages) = all_connected(&s.store, ConnectedQuery { idle_before: None, page_size: 2 }).await;
    let seen: Vec<_> = items.iter().map(|c| c.tenant_id).collect();
    assert_eq!(seen.len(), 25, "each connected connection exactly once");
    assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), connected);
    assert!(pages > 8, "25 items at 2 a page over 8 shards take many pages, got {pages}");
}

#[tokio::test]
async fn idle_connections_are_found_by_last_activity() {
    let s = stack().await;
    for days in [13, 46, 57, 59, 60, 75] {
        s.store
            .put_connection(&connection(account(days), ConnectionStatus::Connected, t0() - Duration::days(days as i64)))
            .await
            .unwrap();
    }
    let query = ConnectedQuery { idle_before: Some(t0() - Duration::days(59)), page_size: 100 };
    let (items, _) = all_connected(&s.store, query).await;
    let mut idle: Vec<_> = items.iter().map(|c| (t0() - c.last_activity_at).num_days()).collect();
    idle.sort();
    assert_eq!(idle, vec![60, 75]);
}

#[tokio::test]
async fn a_status_change_leaves_and_rejoins_the_connected_index() {
    let s = stack().await;
    let c = connection(account(1), ConnectionStatus::Connected, t0());
    s.store.put_connection(&c).await.unwrap();
    let to =
        |to, only_from: Vec<ConnectionStatus>| StatusChange::new(to, only_from, Some("refresh refused".into()), t0());

    let changed = s
        .store
        .set_connection_status(&c.key(), &to(ConnectionStatus::NeedsReconnect, vec![ConnectionStatus::Connected]))
        .await
        .unwrap();
    assert_eq!(changed.status, ConnectionStatus::NeedsReconnect);
    assert_eq!(changed.last_error.as_deref(), Some("refresh refused"));
    let everyone = ConnectedQuery { idle_before: None, page_size: 100 };
    assert!(all_connected(&s.store, everyone).await.0.is_empty());

    // The second of two racing "refresh failed" handlers loses, so the account is told once.
    let again = s
        .store
        .set_connection_status(&c.key(), &to(ConnectionStatus::NeedsReconnect, vec![ConnectionStatus::Connected]))
        .await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

    s.store.set_connection_status(&c.key(), &to(ConnectionStatus::Connected, vec![])).await.unwrap();
    let back = all_connected(&s.store, everyone).await.0;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].last_activity_at, c.last_activity_at);

    let nobody = ConnectionKey { account_id: account(9), tenant_id: c.tenant_id };
    let missing = s.store.set_connection_status(&nobody, &to(ConnectionStatus::Disconnected, vec![])).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

#[tokio::test]
async fn activity_only_moves_forward() {
    let s = stack().await;
    let c = connection(account(1), ConnectionStatus::Connected, t0() - Duration::days(70));
    s.store.put_connection(&c).await.unwrap();
    assert!(s.store.record_activity(&c.key(), t0()).await.unwrap());
    assert!(!s.store.record_activity(&c.key(), t0() - Duration::days(1)).await.unwrap());
    assert_eq!(s.store.get_connection(&c.key()).await.unwrap().unwrap().last_activity_at, t0());
    let idle = ConnectedQuery { idle_before: Some(t0() - Duration::days(60)), page_size: 10 };
    assert!(all_connected(&s.store, idle).await.0.is_empty(), "the index follows the new activity");
    s.store.record_sync(&c.key(), t0()).await.unwrap();
    assert_eq!(s.store.get_connection(&c.key()).await.unwrap().unwrap().last_sync_at, Some(t0()));
}

#[tokio::test]
async fn an_oauth_state_is_consumed_once() {
    let s = stack().await;
    s.store.create_oauth_state(&oauth_state("state-once", t0() + Duration::minutes(10))).await.unwrap();
    let first = s.store.consume_oauth_state("state-once", t0()).await.unwrap().unwrap();
    assert_eq!(first.account_id, account(1));
    assert_eq!(first.pkce_verifier.secret(), "verifier-value-that-is-long-enough-for-pkce-rules-0123");
    assert_eq!(s.store.consume_oauth_state("state-once", t0()).await.unwrap().unwrap_err(), StateRefusal::Unknown);
    assert_eq!(s.store.consume_oauth_state("never-issued", t0()).await.unwrap().unwrap_err(), StateRefusal::Unknown);
}

#[tokio::test]
async fn concurrent_callbacks_with_one_state_let_exactly_one_through() {
    let s = stack().await;
    s.store.create_oauth_state(&oauth_state("state-race", t0() + Duration::minutes(10))).await.unwrap();
    let store = Arc::new(s.store.clone());
    let attempts = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.consume_oauth_state("state-race", t0()).await.unwrap().is_ok() })
    });
    let winners = futures::future::join_all(attempts).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn an_expired_state_is_refused_although_still_stored() {
    let s = stack().await;
    s.store.create_oauth_state(&oauth_state("state-late", t0())).await.unwrap();
    assert_eq!(
        s.store.consume_oauth_state("state-late", t0() + Duration::seconds(1)).await.unwrap().unwrap_err(),
        StateRefusal::Expired
    );
}

#[tokio::test]
async fn issuing_the_same_state_twice_is_a_conflict() {
    let s = stack().await;
    s.store.create_oauth_state(&oauth_state("state-dup", t0())).await.unwrap();
    let again = s.store.create_oauth_state(&oauth_state("state-dup", t0())).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn a_lease_has_one_holder_until_released_or_expired() {
    let s = stack().await;
    let until = t0() + Duration::seconds(30);
    assert!(s.store.try_acquire_lease("grant-1", "a", until, t0()).await.unwrap());
    assert!(!s.store.try_acquire_lease("grant-1", "b", until, t0() + Duration::seconds(29)).await.unwrap());
    s.store.release_lease("grant-1", "b").await.unwrap();
    assert!(!s.store.try_acquire_lease("grant-1", "b", until, t0()).await.unwrap(), "only the holder releases");
    assert!(s.store.try_acquire_lease("grant-1", "b", until + Duration::seconds(30), until).await.unwrap(), "expired");
    s.store.release_lease("grant-1", "b").await.unwrap();
    assert!(s.store.try_acquire_lease("grant-1", "c", until, t0()).await.unwrap());
}

#[tokio::test]
async fn a_delivery_is_new_once_then_seen_until_it_expires() {
    let s = stack().await;
    let keep = Duration::days(3);
    assert!(matches!(s.store.claim_delivery("d-1", t0(), keep).await.unwrap(), DeliveryClaim::New));
    match s.store.claim_delivery("d-1", t0() + Duration::hours(1), keep).await.unwrap() {
        DeliveryClaim::Seen(d) => assert_eq!(d.status, DeliveryStatus::Received),
        other => panic!("expected Seen, got {other:?}"),
    }
    s.store.mark_delivery_enqueued("d-1").await.unwrap();
    match s.store.claim_delivery("d-1", t0() + Duration::hours(2), keep).await.unwrap() {
        DeliveryClaim::Seen(d) => assert_eq!(d.status, DeliveryStatus::Enqueued),
        other => panic!("expected Seen, got {other:?}"),
    }
    assert!(matches!(s.store.claim_delivery("d-1", t0() + keep, keep).await.unwrap(), DeliveryClaim::New), "expired");
    s.store.forget_delivery("d-1").await.unwrap();
    assert!(matches!(s.store.claim_delivery("d-1", t0(), keep).await.unwrap(), DeliveryClaim::New));
    assert!(matches!(s.store.mark_delivery_enqueued("d-unknown").await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn sync_records_are_written_only_from_the_version_read() {
    let s = stack().await;
    let key = ConnectionKey { account_id: account(1), tenant_id: TenantId(Uuid::new_v4()) };
    let invoice = PlatformInvoiceId::parse("inv-1").unwrap();
    let record = SyncRecord::new(&key, invoice.clone(), "INV-1", t0());
    let v1 = s.store.save_sync_record(&record).await.unwrap();
    assert_eq!(v1.version, 1);
    assert!(matches!(s.store.save_sync_record(&record).await, Err(Error::Conflict(_))), "a second creator loses");

    let xero_id = Uuid::new_v4();
    let synced = SyncRecord { xero_invoice_id: Some(xero_id), status: SyncStatus::Synced, ..v1.clone() };
    let v2 = s.store.save_sync_record(&synced).await.unwrap();
    assert_eq!(s.store.get_sync_record(&key, &invoice).await.unwrap(), Some(v2.clone()));
    assert!(matches!(s.store.save_sync_record(&synced).await, Err(Error::Conflict(_))), "a stale writer loses");

    let found = s.store.invoices_for_xero_ids(&key, &[xero_id, Uuid::new_v4(), xero_id]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[&xero_id], invoice);
}

#[tokio::test]
async fn contact_mappings_are_found_both_ways_across_batch_pages() {
    let s = stack().await;
    let key = ConnectionKey { account_id: account(1), tenant_id: TenantId(Uuid::new_v4()) };
    let mut xero_ids = Vec::new();
    for n in 0..130 {
        let customer = PlatformCustomerId::parse(format!("cust-{n}")).unwrap();
        let mut mapping = ContactMapping::new(customer, Uuid::new_v4(), ContactMatch::Created, t0());
        mapping.pushed_updated_at = (n % 2 == 0).then(t0);
        xero_ids.push(mapping.xero_contact_id);
        s.store.put_contact_mapping(&key, &mapping).await.unwrap();
    }
    let customer = PlatformCustomerId::parse("cust-7").unwrap();
    assert_eq!(s.store.get_contact_mapping(&key, &customer).await.unwrap().unwrap().xero_contact_id, xero_ids[7]);
    xero_ids.push(Uuid::new_v4());
    let found = s.store.customers_for_xero_ids(&key, &xero_ids).await.unwrap();
    assert_eq!(found.len(), 130, "130 of 131 ids are ours, read over two BatchGetItem calls");
    assert_eq!(found[&xero_ids[129]].as_str(), "cust-129");
    let owners = s.store.contact_owners(&key, &xero_ids[..4]).await.unwrap();
    assert_eq!(owners[&xero_ids[2]].pushed_updated_at, Some(t0()), "our last write's time is on the reference");
    assert_eq!(owners[&xero_ids[3]].pushed_updated_at, None);
}

#[tokio::test]
async fn cursors_and_settings_refuse_stale_writes() {
    let s = stack().await;
    let key = ConnectionKey { account_id: account(1), tenant_id: TenantId(Uuid::new_v4()) };
    assert_eq!(s.store.get_cursor(&key, "Contacts").await.unwrap(), None);
    let cursor = ImportCursor { next_page: Some(3), ..ImportCursor::new("Contacts", t0()) };
    let saved = s.store.save_cursor(&key, &cursor).await.unwrap();
    assert!(matches!(s.store.save_cursor(&key, &cursor).await, Err(Error::Conflict(_))));
    let advanced = ImportCursor { modified_since: Some(t0()), next_page: None, ..saved };
    s.store.save_cursor(&key, &advanced).await.unwrap();
    assert_eq!(s.store.get_cursor(&key, "Contacts").await.unwrap().unwrap().modified_since, Some(t0()));

    let fresh = s.store.get_settings(&key).await.unwrap();
    assert_eq!(fresh.version, 0);
    let wanted = ConnectionSettings {
        default_sales_account_code: Some("200".into()),
        new_invoice_status: NewInvoiceStatus::Authorised,
        ..Default::default()
    };
    let v1 = s.store.put_settings(&key, 0, &wanted).await.unwrap();
    assert_eq!(s.store.get_settings(&key).await.unwrap(), v1);
    assert!(
        matches!(s.store.put_settings(&key, 0, &wanted).await, Err(Error::Conflict(_))),
        "written from version 0 again"
    );
    assert_eq!(s.store.put_settings(&key, 1, &ConnectionSettings::default()).await.unwrap().version, 2);
}

fn token_set(grant: GrantId, refresh: &str, at: DateTime<Utc>) -> TokenSet {
    TokenSet {
        grant_id: grant,
        access_token: AccessToken::new(format!("access-{refresh}")),
        refresh_token: RefreshToken::new(refresh.into()),
        expires_at: at + Duration::minutes(30),
        scopes: vec!["offline_access".into(), "accounting.invoices".into()],
        obtained_at: at,
    }
}

#[tokio::test]
async fn the_vault_keeps_the_newest_token_set_of_each_grant() {
    let s = stack().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&s.sdk);
    let vault = SecretsManagerVault::new(secrets.clone(), format!("xero-sync/{}/grants/", s.stack.name));
    let grant = GrantId(Uuid::new_v4());
    assert!(vault.load(&grant).await.unwrap().is_none());

    vault.store(&token_set(grant, "r1", t0())).await.unwrap();
    vault.store(&token_set(grant, "r1", t0())).await.unwrap(); // a retried write adds nothing
    vault.store(&token_set(grant, "r2", t0() + Duration::minutes(30))).await.unwrap();
    let loaded = vault.load(&grant).await.unwrap().unwrap();
    assert_eq!(loaded.refresh_token.secret(), "r2");
    assert_eq!(loaded.access_token.secret(), "access-r2");
    let versions = secrets.list_secret_version_ids().secret_id(vault.secret_name(&grant)).send().await.unwrap();
    assert_eq!(versions.versions().len(), 2, "one version per distinct token set");

    let other = GrantId(Uuid::new_v4());
    vault.store(&token_set(other, "o1", t0())).await.unwrap();
    vault.delete(&grant).await.unwrap();
    vault.delete(&grant).await.unwrap();
    assert!(vault.load(&grant).await.unwrap().is_none());
    assert_eq!(vault.load(&other).await.unwrap().unwrap().refresh_token.secret(), "o1");
}

#[tokio::test]
async fn an_unreadable_secret_is_reported_as_corrupt_without_its_content() {
    let s = stack().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&s.sdk);
    let vault = SecretsManagerVault::new(secrets.clone(), format!("xero-sync/{}/grants/", s.stack.name));
    let grant = GrantId(Uuid::new_v4());
    secrets
        .create_secret()
        .name(vault.secret_name(&grant))
        .secret_string("{\"refresh_token\": \"leaky\"")
        .send()
        .await
        .unwrap();
    let err = vault.load(&grant).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { what: "token set", .. }), "{err:?}");
    assert!(!err.to_string().contains("leaky"));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_email_reaches_ses_with_what_happened_and_what_to_do() {
    let s = stack().await;
    let to = format!("{}@example.com", s.stack.name);
    let notifier = SesNotifier::new(aws_sdk_sesv2::Client::new(&s.sdk), s.stack.parameter("SenderEmail"), None);
    let email = Notice {
        subject: "Reconnect Xero for Demo Company (NZ)".into(),
        organisation: "Demo Company (NZ)".into(),
        what_happened: "Xero no longer accepts this connection's sign-in.".into(),
        details: vec![],
        what_to_do: "Open Settings > Xero and click Reconnect.".into(),
    }
    .to(&to);
    notifier.send(&email).await.unwrap();
    let sent = sent_emails(Moto::shared().endpoint(), &to).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "Reconnect Xero for Demo Company (NZ)");
    assert_eq!(sent[0].from, "xero-sync@example.com");
    assert!(sent[0].body.contains("What to do next\nOpen Settings > Xero and click Reconnect."));
}

#[tokio::test]
async fn events_reach_the_bus_in_batches_of_ten() {
    let s = stack().await;
    let inbox = EventInbox::subscribe(&s.sdk, &s.stack, "EventBus").await.unwrap();
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&s.sdk), s.stack.reference("EventBus"));
    let events: Vec<_> = (0..23)
        .map(|n| {
            PlatformEvent::new(
                EventKind::ContactUpserted,
                account(1),
                None,
                &format!("contact-{n}"),
                t0(),
                serde_json::json!({"n": n}),
            )
        })
        .collect();
    publisher.publish(&events).await.unwrap();
    let received = inbox.drain().await.unwrap();
    assert_eq!(received.len(), 23);
    let ids: HashSet<_> = received.iter().map(|e| e["detail"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, events.iter().map(|e| e.id.to_string()).collect::<HashSet<_>>());
    assert!(received.iter().all(|e| e["detail-type"] == "contact.upserted" && e["source"] == "xero-sync"));
}

#[tokio::test]
async fn publishing_to_a_missing_bus_fails_instead_of_dropping_events() {
    let s = stack().await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&s.sdk), "no-such-bus");
    let event = PlatformEvent::new(EventKind::InvoiceSynced, account(1), None, "inv-1", t0(), serde_json::json!({}));
    assert!(publisher.publish(&[event]).await.is_err());
}

#[tokio::test]
async fn the_templates_function_environment_is_a_complete_configuration() {
    let aws = LocalAws::provision("config").await;
    // As the fan-out starts: the template's environment and no secret at all.
    let env = xero_sync_runtime::Env::from_pairs(aws.function_env(&[]));
    let (app, _) = xero_sync_runtime::App::start_with(Needs::default(), env, &aws.sdk).await.unwrap();
    let config = app.config;
    assert_eq!(config.aws.table_name, aws.stack.reference("Table"));
    assert_eq!(config.aws.event_bus_name, aws.stack.reference("EventBus"));
    assert_eq!(config.email.from, aws.stack.parameter("SenderEmail"));
    assert_eq!(config.xero.api_url.as_str(), "https://api.xero.com/");
    assert!(config.xero.client_secret.is_none());
}

#[tokio::test]
async fn each_function_reads_only_the_secrets_it_needs_each_from_the_secret_its_id_names() {
    let aws = LocalAws::provision("core-secrets").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws.sdk);
    let xero_name = format!("{}/xero-client-secret", aws.stack.name);
    let platform_name = format!("{}/platform-signing-secrets", aws.stack.name);
    let platform = "platform-signing-secret-from-secrets-manager-0001,platform-signing-secret-being-retired-0000";
    for (name, value) in [(&xero_name, "from-the-vault"), (&platform_name, platform)] {
        secrets.create_secret().name(name).secret_string(value).send().await.unwrap();
    }
    // Every call is counted, so a secret a function does not need is seen not to be read.
    let proxy = xero_sync_testkit::AwsProxy::start(Moto::shared().endpoint()).await.unwrap();
    let sdk = proxy.sdk_config(&aws.sdk);
    let reads = || proxy.calls().iter().filter(|c| c.operation == "GetSecretValue").count();
    let env = |extra: &[(&str, &str)]| {
        let mut vars = aws.function_env(&[("XERO_CLIENT_ID", "client")]);
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        xero_sync_runtime::Env::from_pairs(vars)
    };
    let both_ids =
        [("XERO_CLIENT_SECRET_ID", xero_name.as_str()), ("PLATFORM_SIGNING_SECRETS_ID", platform_name.as_str())];
    let both = Needs { xero_client_secret: true, platform_signing_secrets: true, xero_webhook_key: false };
    let xero_only = Needs { xero_client_secret: true, platform_signing_secrets: false, xero_webhook_key: false };
    let platform_only = Needs { xero_client_secret: false, platform_signing_secrets: true, xero_webhook_key: false };

    // connect: both, each from its own secret, as plain text.
    let (app, seen) = xero_sync_runtime::App::start_with(both, env(&both_ids), &sdk).await.unwrap();
    assert_eq!(app.config.xero.client_secret.as_ref().map(|s| s.secret().as_str()), Some("from-the-vault"));
    assert_eq!(seen.optional("PLATFORM_SIGNING_SECRETS").as_deref(), Some(platform));
    assert_eq!(xero_sync_runtime::config::platform_signing_secrets(&seen).unwrap().len(), 2);
    assert_eq!(reads(), 2);
    assert!(!format!("{:?}", app.config).contains("from-the-vault"), "the client secret never prints");

    // The workers: the Xero client secret only. The platform's is not read, even with its id
    // (or its value) in the environment, and is not handed on.
    proxy.reset();
    let mut vars = both_ids.to_vec();
    vars.push(("PLATFORM_SIGNING_SECRETS", platform));
    let (app, seen) = xero_sync_runtime::App::start_with(xero_only, env(&vars), &sdk).await.unwrap();
    assert!(app.config.xero.client_secret.is_some());
    assert_eq!(seen.optional("PLATFORM_SIGNING_SECRETS"), None);
    assert_eq!(reads(), 1);

    // The webhook: the platform's only; it starts without the Xero client secret and cannot
    // use Xero's identity service.
    proxy.reset();
    let mut vars = both_ids.to_vec();
    vars.push(("XERO_CLIENT_SECRET", "set-directly"));
    let (app, seen) = xero_sync_runtime::App::start_with(platform_only, env(&vars), &sdk).await.unwrap();
    assert!(app.config.xero.client_secret.is_none());
    assert_eq!(seen.optional("XERO_CLIENT_SECRET"), None);
    assert_eq!(seen.optional("PLATFORM_SIGNING_SECRETS").as_deref(), Some(platform));
    assert_eq!(reads(), 1);
    let grant = GrantId(Uuid::new_v4());
    let refused = app.xero.refresh(&token_set(grant, "r1", t0()), t0()).await.unwrap_err().to_string();
    assert!(refused.contains("no Xero client secret"), "{refused}");
    let callback = url::Url::parse("https://example.com/callback").unwrap();
    let verifier = xero_sync_domain::secret::PkceVerifier::new("v".repeat(43));
    let refused = app.xero.exchange_code(&callback, "code", verifier, t0()).await.unwrap_err().to_string();
    assert!(refused.contains("no Xero client secret"), "{refused}");

    // The fan-out: neither, and nothing read.
    proxy.reset();
    let (app, seen) = xero_sync_runtime::App::start_with(Needs::default(), env(&vars), &sdk).await.unwrap();
    assert!(app.config.xero.client_secret.is_none() && seen.optional("PLATFORM_SIGNING_SECRETS").is_none());
    assert_eq!(reads(), 0);

    // Locally and in tests the value may be set directly instead: nothing is read.
    let (app, _) =
        xero_sync_runtime::App::start_with(xero_only, env(&[("XERO_CLIENT_SECRET", "local")]), &sdk).await.unwrap();
    assert_eq!(app.config.xero.client_secret.as_ref().map(|s| s.secret().as_str()), Some("local"));
    assert_eq!(reads(), 0);

    // A needed secret that is neither named nor set stops the start, naming the variable.
    for (needs, set, missing) in [
        (xero_only, ("PLATFORM_SIGNING_SECRETS_ID", platform_name.as_str()), "XERO_CLIENT_SECRET_ID"),
        (platform_only, ("XERO_CLIENT_SECRET_ID", xero_name.as_str()), "PLATFORM_SIGNING_SECRETS_ID"),
    ] {
        let err = xero_sync_runtime::App::start_with(needs, env(&[set]), &sdk).await.err().unwrap().to_string();
        assert!(err.starts_with(&format!("missing environment variable {missing} ")), "{err}");
    }

    // A secret that is not there, or still in the old one-JSON-object layout, stops it too,
    // naming the variable and the secret but never a secret's value.
    let gone = xero_sync_runtime::App::start_with(xero_only, env(&[("XERO_CLIENT_SECRET_ID", "no-such-secret")]), &sdk)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(gone.contains("no-such-secret") && gone.contains("XERO_CLIENT_SECRET_ID"), "{gone}");
    let old = serde_json::json!({ "XERO_CLIENT_SECRET": "x", "PLATFORM_SIGNING_SECRETS": platform });
    secrets.put_secret_value().secret_id(&platform_name).secret_string(old.to_string()).send().await.unwrap();
    let refused =
        xero_sync_runtime::App::start_with(platform_only, env(&both_ids), &sdk).await.err().unwrap().to_string();
    assert!(refused.contains("PLATFORM_SIGNING_SECRETS_ID") && refused.contains("JSON"), "{refused}");
    assert!(!refused.contains(platform), "{refused}");
}

#[tokio::test]
async fn a_refresh_never_brings_back_a_deleted_grant() {
    let s = stack().await;
    let vault =
        SecretsManagerVault::new(aws_sdk_secretsmanager::Client::new(&s.sdk), format!("{}/grants/", s.stack.name));
    let grant = GrantId(Uuid::new_v4());
    assert!(!vault.replace(&token_set(grant, "r1", t0())).await.unwrap(), "nothing to replace");
    assert!(vault.load(&grant).await.unwrap().is_none(), "and nothing created");
    vault.store(&token_set(grant, "r1", t0())).await.unwrap();
    assert!(vault.replace(&token_set(grant, "r2", t0() + Duration::minutes(30))).await.unwrap());
    assert_eq!(vault.load(&grant).await.unwrap().unwrap().refresh_token.secret(), "r2");
}
