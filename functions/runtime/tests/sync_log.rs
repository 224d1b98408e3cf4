//! The sync log on the DynamoDB adapter, against a real moto server with the table (and its
//! indexes) created from infra/template.yaml.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;
use xero_sync_aws::DynamoStore;
use xero_sync_domain::credit_note::{CreditNoteRecord, CreditNoteSyncStatus};
use xero_sync_domain::model::*;
use xero_sync_domain::payment::{PaymentRecord, PaymentSyncStatus};
use xero_sync_domain::store::*;
use xero_sync_domain::sync_log::{LogEntry, LogFilter, LogKind, LogStatus};
use xero_sync_testkit::LocalAws;

async fn store() -> DynamoStore {
    let LocalAws { sdk, stack } = LocalAws::provision("log").await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), stack.reference("Table"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
}

fn connection() -> ConnectionKey {
    ConnectionKey { account_id: AccountId::parse("acct-log").unwrap(), tenant_id: TenantId(Uuid::new_v4()) }
}

async fn all(store: &DynamoStore, key: &ConnectionKey, filter: LogFilter) -> Vec<LogEntry> {
    let (mut rows, mut from) = (Vec::new(), None);
    loop {
        let page = store.sync_log(key, filter, 2, from.as_ref()).await.unwrap();
        rows.extend(page.items);
        match page.next {
            Some(next) => from = Some(next),
            None => return rows,
        }
    }
}

fn rows(entries: &[LogEntry]) -> Vec<(LogKind, &str, LogStatus)> {
    entries.iter().map(|e| (e.kind, e.platform_id.as_str(), e.status)).collect()
}

#[tokio::test]
async fn the_log_pages_newest_first_and_a_record_leaves_the_failures_once_it_syncs() {
    let store = store().await;
    let key = connection();
    let invoice = PlatformInvoiceId::parse("inv-1").unwrap();
    let failed = SyncRecord {
        status: SyncStatus::Failed,
        last_error: Some("Account code '999' is not a valid code for this document.".into()),
        ..SyncRecord::new(&key, invoice.clone(), "INV-1", t0())
    };
    let failed = store.save_sync_record(&failed).await.unwrap();
    let mut paid = PaymentRecord::new(&key, PlatformPaymentId::parse("pay-1").unwrap(), invoice.clone(), t0());
    paid.status = PaymentSyncStatus::Synced;
    paid.updated_at = t0() + Duration::minutes(1);
    store.save_payment_record(&paid).await.unwrap();
    let mut credit = CreditNoteRecord::new(&key, PlatformCreditNoteId::parse("cn-1").unwrap(), "CN-1", t0());
    credit.status = CreditNoteSyncStatus::Failed;
    credit.reason = Some("the invoice it credits is voided".into());
    credit.updated_at = t0() + Duration::minutes(2);
    store.save_credit_note_record(&credit).await.unwrap();
    // Another organisation's records are not in this log.
    let elsewhere =
        SyncRecord { status: SyncStatus::Failed, ..SyncRecord::new(&connection(), invoice.clone(), "X", t0()) };
    store.save_sync_record(&elsewhere).await.unwrap();

    assert_eq!(
        rows(&all(&store, &key, LogFilter::All).await),
        [
            (LogKind::CreditNote, "cn-1", LogStatus::Failed),
            (LogKind::Payment, "pay-1", LogStatus::Synced),
            (LogKind::Invoice, "inv-1", LogStatus::Failed),
        ]
    );
    let failures = all(&store, &key, LogFilter::Failures).await;
    assert_eq!(
        rows(&failures),
        [(LogKind::CreditNote, "cn-1", LogStatus::Failed), (LogKind::Invoice, "inv-1", LogStatus::Failed)]
    );
    assert_eq!(failures[1].error.as_deref(), Some("Account code '999' is not a valid code for this document."));

    let xero_id = Uuid::new_v4();
    let synced = SyncRecord {
        status: SyncStatus::Synced,
        last_error: None,
        xero_invoice_id: Some(xero_id),
        updated_at: t0() + Duration::minutes(3),
        ..failed
    };
    store.save_sync_record(&synced).await.unwrap();
    assert_eq!(rows(&all(&store, &key, LogFilter::Failures).await), [(LogKind::CreditNote, "cn-1", LogStatus::Failed)]);
    let log = all(&store, &key, LogFilter::All).await;
    assert_eq!(rows(&log)[0], (LogKind::Invoice, "inv-1", LogStatus::Synced), "moved to the top, not repeated");
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].xero_id, Some(xero_id));
}
