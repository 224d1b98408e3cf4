//! Xero and AWS calls per payment, refund and credit note (issue 18), on the stack as
//! deployed: the webhook and the push worker against moto (through the counting proxy) and the
//! emulator. Their AWS cost per million is priced in `cost` with the invoices'.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::payment::PaymentMethod;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_e2e::*;
use xero_sync_testkit::{AwsCall, AwsProxy};

use crate::{Report, describe, tally, write_units};

/// What one case cost per document, kept for the cost section.
pub(crate) struct MoneyCase {
    pub(crate) name: String,
    pub(crate) xero: f64,
    pub(crate) aws: BTreeMap<String, f64>,
    pub(crate) write_units: f64,
}

fn payment(delivery: &str, id: &str, invoice: &str, amount: &str) -> Value {
    let mut e = contract_example("payment-created.json", "bench-money", delivery);
    e["payment"]["id"] = json!(id);
    e["payment"]["invoice_id"] = json!(invoice);
    e["payment"]["amount"] = json!(amount);
    e
}

fn refund(delivery: &str, id: &str, invoice: &str, amount: &str) -> Value {
    let mut e = payment(delivery, id, invoice, amount);
    e["event"] = json!("payment.refunded");
    e
}

fn credit_note(delivery: &str, id: &str, invoice: Option<&str>) -> Value {
    let mut e = contract_example("credit-note-created.json", "bench-money", delivery);
    e["credit_note"]["id"] = json!(id);
    e["credit_note"]["number"] = json!(format!("BCN-{id}"));
    match invoice {
        Some(invoice) => e["credit_note"]["invoice_id"] = json!(invoice),
        None => drop(e["credit_note"].as_object_mut().map(|o| o.remove("invoice_id"))),
    }
    e["customer"] = new_customer("cust-m", "Bench Money");
    e
}

/// Delivers `work` to the webhook, runs the push worker, and adds a row of what it cost per
/// document in Xero calls, AWS calls and DynamoDB write units.
pub(crate) async fn deliver_and_count(
    w: &World,
    proxy: &AwsProxy,
    name: &str,
    work: &[Value],
    report: &mut Report,
) -> MoneyCase {
    w.emu.reset_counters();
    proxy.reset();
    for delivery in work {
        let response = w.post_webhook(&delivery.to_string(), None).await;
        assert!(response.status().is_success(), "{}", body(&response));
    }
    w.work_push_queue().await;
    let per = work.len() as f64;
    let xero = w.emu.counters().total_calls() as f64 / per;
    let calls: Vec<AwsCall> = proxy.calls();
    report.row(&[
        name.to_owned(),
        work.len().to_string(),
        format!("{xero:.3}"),
        format!("{:.2} ({})", calls.len() as f64 / per, describe(&calls, per)),
        format!("{:.2}", write_units(&calls) as f64 / per),
    ]);
    MoneyCase {
        name: name.to_owned(),
        xero,
        aws: tally(&calls).into_iter().map(|(k, n)| (k, n as f64 / per)).collect(),
        write_units: write_units(&calls) as f64 / per,
    }
}

/// Invoices `inv-m{n}` for `n` in `range`, in Xero and AUTHORISED, for one known customer.
async fn invoices(w: &World, range: std::ops::Range<usize>) {
    for n in range {
        let sent = event(
            "bench-money",
            &format!("dlv-mi-{n:06}"),
            &format!("inv-m{n}"),
            &format!("M-{n:04}"),
            new_customer("cust-m", "Bench Money"),
        );
        let response = w.post_webhook(&sent.to_string(), None).await;
        assert!(response.status().is_success(), "{}", body(&response));
    }
    w.work_push_queue().await;
}

pub(crate) async fn calls_per_document(report: &mut Report) -> anyhow::Result<()> {
    eprintln!("calls per payment, refund and credit note ...");
    let mut w = ready("bench-money", NewInvoiceStatus::Authorised).await;
    let bank = w.emu.objects(demo::NZ_TENANT_ID, "Accounts").unwrap_or_default();
    let bank = bank.iter().find(|a| a["Code"] == "090").and_then(|a| a["AccountID"].as_str()).unwrap_or_default();
    let mut s = settings(NewInvoiceStatus::Authorised);
    s.payment_accounts = [(PaymentMethod::Card, bank.parse()?)].into();
    w.aws.store().put_settings(&key("bench-money"), 1, &s).await?;
    invoices(&w, 0..160).await;
    let proxy = AwsProxy::start(w.moto().endpoint()).await?;
    proxy.measure_write_units();
    w.reach_aws_through(&proxy);
    w.inbox.set_collecting(false).await?;
    report.section(
        "Calls per payment, refund and credit note (webhook and push worker)",
        &["case", "documents", "Xero calls / document", "AWS calls / document", "DynamoDB write units / document"],
    );
    let measure = async |name: &str, work: Vec<Value>, report: &mut Report| {
        let case = deliver_and_count(&w, &proxy, name, &work, report).await;
        report.money.push(case);
    };
    measure("payment in full", vec![payment("dlv-mp-0", "pay-0", "inv-m0", "154.17")], report).await;
    measure("part payment", vec![payment("dlv-mp-1", "pay-1", "inv-m1", "50.00")], report).await;
    let burst = (10..60).map(|n| payment(&format!("dlv-mp-{n}"), &format!("pay-{n}"), &format!("inv-m{n}"), "20.00"));
    measure("burst of 50 payments (50 invoices)", burst.collect(), report).await;
    measure(
        "payment voided",
        vec![json!({ "delivery_id": "dlv-mp-void-1", "event": "payment.voided",
        "occurred_at": "2026-11-21T08:00:00Z", "account_id": "bench-money",
        "payment": { "id": "pay-1", "invoice_id": "inv-m1" } })],
        report,
    )
    .await;
    measure("refund of a paid invoice", vec![refund("dlv-mr-0", "rfd-0", "inv-m0", "40.00")], report).await;
    let burst = (10..60).map(|n| refund(&format!("dlv-mr-{n}"), &format!("rfd-{n}"), &format!("inv-m{n}"), "5.00"));
    measure("burst of 50 refunds", burst.collect(), report).await;
    measure("credit note, allocated to its invoice", vec![credit_note("dlv-mc-0", "cn-0", Some("inv-m100"))], report)
        .await;
    measure("credit note, no invoice (known customer)", vec![credit_note("dlv-mc-1", "cn-1", None)], report).await;
    let mut changed = credit_note("dlv-mc-2", "cn-0", Some("inv-m100"));
    changed["event"] = json!("credit_note.updated");
    changed["occurred_at"] = json!("2026-11-22T05:00:00Z");
    changed["credit_note"]["lines"][0]["quantity"] = json!("2");
    measure("allocated credit note updated", vec![changed], report).await;
    let burst = (110..160).map(|n| credit_note(&format!("dlv-mc-{n}"), &format!("cn-{n}"), Some(&format!("inv-m{n}"))));
    measure("burst of 50 allocated credit notes", burst.collect(), report).await;
    report.note(
        "Payments go fifty to a `PUT /Payments`; a refund is a credit note and its payment out, each \
         batched fifty to a call; a credit note is written fifty to a `PUT /CreditNotes` and then \
         allocated by a call of its own (Xero takes one credit note's allocations per call). An \
         update of an allocated credit note reads it, removes the allocation, writes it and \
         allocates it again.",
    );
    Ok(())
}
