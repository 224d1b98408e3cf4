//! Xero and AWS calls per customer and per item (issue 19), on the stack as deployed: the
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

fn base() -> chrono::DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().expect("a time")
}

pub(crate) async fn calls_per_record(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("calls per customer and item ...");
    let mut w = ready(ACCOUNT, NewInvoiceStatus::Authorised).await;
    let proxy = AwsProxy::start(w.moto().endpoint()).await?;
    w.reach_aws_through(&proxy);
    w.inbox.set_collecting(false).await?;
    report.section(
        "Calls per customer and item (webhook and push worker)",
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
    report.note(
        "A changed or new customer costs a lookup (one `where` query per ten customers, which also \
         reads the mapped contact's UpdatedDateUTC for the conflict rule) and a write (one \
         `POST /Contacts` per fifty); unchanged details cost nothing. Items go fifty to a \
         `POST /Items`; a deletion is one `DELETE /Items/{ItemID}` (Xero has no batch delete). \
         Attachments are not measured yet.",
    );
    Ok(())
}
