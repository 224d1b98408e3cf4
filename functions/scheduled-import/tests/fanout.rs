use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use scheduled_import::{FanoutConfig, ImportRequest, fan_out};
use uuid::Uuid;
use xero_sync_domain::model::*;
use xero_sync_testkit::LocalAws;

#[tokio::test]
async fn every_connected_connection_gets_exactly_one_import_message() {
    let aws = LocalAws::provision("fanout").await;
    let store = aws.store();
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 6, 30, 0).unwrap();
    let mut expected = HashSet::new();
    for n in 0..50 {
        let status = if n % 5 == 0 { ConnectionStatus::NeedsReconnect } else { ConnectionStatus::Connected };
        let c = Connection {
            account_id: AccountId::parse(format!("acct-{n}")).unwrap(),
            tenant_id: TenantId(Uuid::new_v4()),
            xero_connection_id: XeroConnectionId(Uuid::new_v4()),
            grant_id: GrantId(Uuid::new_v4()),
            status,
            organisation_name: format!("Org {n}"),
            notify_email: None,
            connected_at: now,
            last_activity_at: now,
            last_sync_at: None,
            status_changed_at: now,
            last_error: None,
            cleanup_pending: false,
            email_refused: None,
        };
        if status == ConnectionStatus::Connected {
            expected.insert((c.account_id.clone(), c.tenant_id));
        }
        store.put_connection(&c).await.unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
    let config = FanoutConfig { import_queue_url: aws.stack.reference("ImportQueue").to_owned(), page_size: 7 };

    let summary = fan_out(store.as_ref(), &sqs, &config, now).await.unwrap();

    assert_eq!(summary.connections, 40);
    let mut received = Vec::new();
    loop {
        let out =
            sqs.receive_message().queue_url(&config.import_queue_url).max_number_of_messages(10).send().await.unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let request: ImportRequest = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(request.requested_at, now);
            received.push((request.account_id, request.tenant_id));
            sqs.delete_message()
                .queue_url(&config.import_queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(received.len(), 40, "one message per connected connection, none for NEEDS_RECONNECT");
    assert_eq!(received.into_iter().collect::<HashSet<_>>(), expected);
}
