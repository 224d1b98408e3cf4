//! Xero and AWS calls per customer, per item and per attachment (issue 19), on the stack as deployed: the
//! webhook and the push worker against moto (through the counting proxy) and the emulator.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_e2e::*;
use xero_sync_testkit::AwsProxy;

use crate::Report;
use crate::money::deliver_and_count;

const ACCOUNT: &str = "bench-catalogue";

fn customer(delivery: &str, id: &str, street: &str, minutes: i64) -> Value {
    let mut e = contract_example("customer-upserted.json", ACCOUNT, delivery);
    e.as_object_mut().map(|o| o.remove("sequence"));
    e["customer"]["id"] = json!(id);
    e["customer"]["name"] = json!(format!("Bench customer {id}"));
    // Each its own: the example's email is a contact the demo organisation has already.
    e["customer"]["email"] = json!(format!("{id}@bench.example"));
    e["customer"]["addresses"][1]["line1"] = json!(street);
    e["occurred_at"] = json!((base() + Duration::minutes(minutes)).to_rfc3339());
    e
}

fn item(delivery: &str, kind: &str, id: &str, price: &str, minutes: i64) -> Value {
    let mut e = contract_example("item-upserted.json", ACCOUNT, delivery);
    e.as_object_mut().map(|o| o.remove("sequence"));
    e["event"] = json!(kind);
    e["item"]["id"] = json!(id);
    e["item"]["code"] = json!(format!("B-{id}"));
    e["item"]["unit_price"] = json!(price);
    e["occurred_at"] = json!((base() + Duration::minutes(minutes)).to_rfc3339());
    e
}

/// Declares and uploads a 100 KB file of each name for invoice `inv-1001`, then works the queue:
/// the Xero and AWS calls per file, the upload included.
async fn attach_and_count(w: &World, proxy: &AwsProxy, name: &str, files: &[&str], report: &mut Report) {
    w.emu.reset_counters();
    proxy.reset();
    let path =
        format!("/accounts/{ACCOUNT}/connections/{}/invoices/inv-1001/attachments", xero_emulator::demo::NZ_TENANT_ID);
    let bytes = vec![b'%'; 100 * 1024];
    for file in files {
        let declared = json!({ "file_name": file, "content_type": "application/pdf", "size": bytes.len() });
        let response = w.invoice_api("POST", &path, &declared.to_string()).await;
        assert_eq!(response.status(), 201, "{}", body(&response));
        let offered = json(&response);
        let mut upload = reqwest::Client::new().put(offered["url"].as_str().unwrap_or_default()).body(bytes.clone());
        for (header, value) in offered["headers"].as_object().into_iter().flatten() {
            if header != "content-length" {
                upload = upload.header(header.as_str(), value.as_str().unwrap_or_default());
            }
        }
        assert!(upload.send().await.is_ok_and(|r| r.status().is_success()), "the bucket takes the file");
    }
    w.work_push_queue().await;
    let per = files.len() as f64;
    let calls = proxy.calls();
    report.row(&[
        name.to_owned(),
        files.len().to_string(),
        format!("{:.3}", w.emu.counters().total_calls() as f64 / per),
        format!("{:.2} ({})", calls.len() as f64 / per, crate::describe(&calls, per)),
        format!("{:.2}", crate::write_units(&calls) as f64 / per),
    ]);
}

fn base() -> chrono::DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().expect("a time")
}

pub(crate) async fn calls_per_record(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("calls per customer, item and attachment ...");
    let mut w = ready(ACCOUNT, NewInvoiceStatus::Authorised).await;
    let proxy = AwsProxy::start(w.moto().endpoint()).await?;
    proxy.measure_write_units();
    w.reach_aws_through(&proxy);
    w.inbox.set_collecting(false).await?;
    report.section(
        "Calls per customer, item and attachment (webhook and push worker)",
        &["case", "records", "Xero calls / record", "AWS calls / record", "DynamoDB write units / record"],
    );
    let (w, proxy) = (&w, &proxy);
    let mut case = async |name: &str, work: Vec<Value>| {
        deliver_and_count(w, proxy, name, &work, report).await;
    };
    case("new customer", vec![customer("dlv-bc-0", "c-0", "1 Queen St", 0)]).await;
    case("customer's address changed", vec![customer("dlv-bc-1", "c-0", "2 Queen St", 1)]).await;
    case("customer's details unchanged", vec![customer("dlv-bc-2", "c-0", "2 Queen St", 2)]).await;
    let burst = (1..51).map(|n| customer(&format!("dlv-bc-b{n}"), &format!("c-{n}"), "1 Queen St", 0));
    case("burst of 50 new customers", burst.collect()).await;
    case("new item", vec![item("dlv-bi-0", "item.upserted", "i-0", "12.40", 0)]).await;
    case("item repriced", vec![item("dlv-bi-1", "item.upserted", "i-0", "13.10", 1)]).await;
    case("item unchanged", vec![item("dlv-bi-2", "item.upserted", "i-0", "13.10", 2)]).await;
    case("item deleted", vec![item("dlv-bi-3", "item.deleted", "i-0", "13.10", 3)]).await;
    let burst = (1..51).map(|n| item(&format!("dlv-bi-b{n}"), "item.upserted", &format!("i-{n}"), "5.00", 0));
    case("burst of 50 items", burst.collect()).await;
    // The invoice the files go to, not counted.
    let invoice = w.post_webhook(&example_event(ACCOUNT, "dlv-bf-inv").to_string(), None).await;
    assert!(invoice.status().is_success(), "{}", body(&invoice));
    w.work_push_queue().await;
    attach_and_count(w, proxy, "file attached (100 KB)", &["job.pdf"], report).await;
    attach_and_count(w, proxy, "same name uploaded again (replaces)", &["job.pdf"], report).await;
    let names: Vec<String> = (1..10).map(|n| format!("photo-{n}.pdf")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    attach_and_count(w, proxy, "nine files at once", &names, report).await;
    report.note(
        "A changed or new customer costs a lookup (one `where` query per ten customers, which also \
         reads the mapped contact's UpdatedDateUTC for the conflict rule) and a write (one \
         `POST /Contacts` per fifty); unchanged details cost nothing. Items go fifty to a \
         `POST /Items`; a deletion is one `DELETE /Items/{ItemID}` (Xero has no batch delete). \
         A file is declared (the invoice API), uploaded to the bucket, and attached with one \
         `PUT .../Attachments/{FileName}` (Xero takes one file a call); its notification delivered \
         again costs no Xero call. The AWS calls include the upload itself (S3 PutObject).",
    );
    Ok(())
}
