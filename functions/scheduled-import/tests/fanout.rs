use std::collections::HashSet;

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{Duration, TimeZone, Utc};
use scheduled_import::schedule::{due_in, offset};
use scheduled_import::{Cadence, FanoutConfig, ImportRequest, fan_out};
use uuid::Uuid;
use xero_sync_domain::model::*;
use xero_sync_testkit::LocalAws;

#[tokio::test]
async fn every_connected_connection_gets_one_import_message_a_period_each_at_its_own_moment() {
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
            scopes: None,
            short_code: None,
        };
        if status == ConnectionStatus::Connected {
            expected.insert((c.account_id.clone(), c.tenant_id));
        }
        store.put_connection(&c).await.unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&aws.sdk);
    let config = FanoutConfig {
        import_queue_url: aws.stack.reference("ImportQueue").to_owned(),
        page_size: 7,
        every: Duration::minutes(15),
        cadence: Cadence::default(),
    };

    // Each run sends the organisations due in its fifteen minutes, each held back until its
    // moment; two runs cover the 30-minute period, and a run repeated within a window sends nothing.
    let first = fan_out(store.as_ref(), &sqs, &config, now).await.unwrap();
    let again = fan_out(store.as_ref(), &sqs, &config, now).await.unwrap();
    let second = fan_out(store.as_ref(), &sqs, &config, now + Duration::minutes(15)).await.unwrap();
    assert_eq!((first.connections, again.connections, second.connections), (40, 40, 40), "NEEDS_RECONNECT is not read");
    assert_eq!(again.sent, 0, "the window was covered");
    assert_eq!(first.sent + second.sent, 40, "one message per connected connection and period");
    assert!(first.sent > 5 && second.sent > 5, "spread over the period: {first:?} {second:?}");
    let expected_delays: Vec<Duration> = expected
        .iter()
        .filter_map(|(_, tenant)| {
            let period = config.cadence.period;
            due_in(offset(*tenant, period), period, now, now + Duration::minutes(15)).map(|due| due - now)
        })
        .collect();
    assert_eq!(expected_delays.len(), first.sent);
    assert!(expected_delays.iter().any(|d| *d > Duration::seconds(30)), "held back until due, not all at once");

    // What SQS holds: the messages, visible or held back.
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&config.import_queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let count = |name: QueueAttributeName| attributes.get(&name).map_or(0, |v| v.parse::<usize>().unwrap());
    assert_eq!(
        count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        40
    );
    let out =
        sqs.receive_message().queue_url(&config.import_queue_url).max_number_of_messages(10).send().await.unwrap();
    for m in out.messages.unwrap_or_default() {
        let request: ImportRequest = serde_json::from_str(m.body().unwrap()).unwrap();
        assert!(expected.contains(&(request.account_id, request.tenant_id)));
    }
}
