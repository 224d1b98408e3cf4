//! The Xero half of the payment push: drafts approved when asked, uncertain creates looked up,
//! creates in one `PUT /Payments`, deletes one by one, retried within the invocation.

use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::model::Connection;
use xero_sync_domain::settings::ConnectionSettings;
use xero_sync_domain::xero::{Invoices, Payment, PaymentStatus, Payments, refusal_reasons};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::plan::{PaymentOutcome, Plan};
use super::{Job, refund, xero_invoice};
use crate::mapping::number;
use crate::push::{PushError, PushPolicy, RoundJob, Rounds, idempotency_key, maybe_applied};

/// Payments per `PUT /Payments`, as Xero batches writes.
const BATCH: usize = 50;

impl RoundJob for Job {
    fn is_open(&self) -> bool {
        self.claimed && self.result.is_none() && self.plan.writes()
    }

    fn refuse(&mut self, reasons: Option<Vec<String>>) {
        self.result = Some(Ok(match reasons {
            None => PaymentOutcome::Parked,
            Some(reasons) => PaymentOutcome::Failed { reasons },
        }));
    }

    fn wait(&mut self, error: PushError) {
        self.result = Some(Err(error));
    }
}

pub(super) async fn to_xero(
    app: &App,
    policy: &PushPolicy,
    connection: &Connection,
    settings: &ConnectionSettings,
    jobs: &mut [Job],
) {
    let mut rounds = Rounds::default();
    while let Some(open) = rounds.next(jobs) {
        let round = once(app, connection, settings, jobs, &open).await;
        if !rounds.after(policy, jobs, &open, round).await {
            break;
        }
    }
}

/// One round over the open jobs; each answered job gets its result.
async fn once(
    app: &App,
    connection: &Connection,
    settings: &ConnectionSettings,
    jobs: &mut [Job],
    open: &[usize],
) -> Result<(), TokenError> {
    let drafts: Vec<usize> = open
        .iter()
        .copied()
        .filter(|i| matches!(jobs[*i].plan, Plan::Create { approve_first: true, .. }) && !jobs[*i].approved)
        .collect();
    if !drafts.is_empty() {
        approve(app, connection, jobs, &drafts).await?;
    }
    let uncertain = |refunds: bool| -> Vec<usize> {
        let record = |i: usize| &jobs[i].record;
        open.iter()
            .copied()
            .filter(|i| jobs[*i].result.is_none() && record(*i).uncertain && record(*i).refund == refunds)
            .filter(|i| refunds || record(*i).xero_payment_id.is_none())
            .collect()
    };
    let (payments, refunds) = (uncertain(false), uncertain(true));
    if !payments.is_empty() {
        look_up(app, connection, settings, jobs, &payments).await?;
    }
    if !refunds.is_empty() {
        refund::look_up(app, connection, jobs, &refunds).await?;
    }
    refund::contacts(app, connection, jobs).await?;
    refund::credit_notes(app, connection, settings, jobs, open).await?;
    let creates: Vec<usize> = open
        .iter()
        .copied()
        .filter(|i| jobs[*i].result.is_none() && matches!(jobs[*i].plan, Plan::Create { .. } | Plan::Refund { .. }))
        .collect();
    for chunk in creates.chunks(BATCH) {
        create(app, connection, jobs, chunk).await?;
    }
    for &i in open {
        if jobs[i].result.is_some() || !matches!(jobs[i].plan, Plan::Delete) {
            continue;
        }
        let job = &mut jobs[i];
        match job.record.xero_payment_id {
            Some(id) => delete(app, connection, job, id).await?,
            // Looked up, and it never reached Xero.
            None => job.result = Some(Ok(PaymentOutcome::Voided { xero_payment_id: None })),
        }
        // A refund's credit note goes too once its payment is gone, or it would hold the credit.
        if let (Some(credit_note), Some(Ok(PaymentOutcome::Voided { .. }))) =
            (job.record.xero_credit_note_id, &job.result)
        {
            job.result = None;
            refund::void(app, connection, job, credit_note).await?;
        }
    }
    Ok(())
}

pub(super) fn deliveries<'a>(jobs: &'a [Job], which: &[usize]) -> Vec<&'a str> {
    which.iter().map(|i| jobs[*i].event.delivery_id.as_str()).collect()
}

/// Approves the draft invoices payments are waiting on, as the settings allow.
async fn approve(app: &App, connection: &Connection, jobs: &mut [Job], which: &[usize]) -> Result<(), TokenError> {
    let mut ids: Vec<Uuid> = which.iter().filter_map(|i| xero_invoice(&jobs[*i])).collect();
    ids.sort();
    ids.dedup();
    let body = json!({ "Invoices": ids.iter().map(|id| json!({ "InvoiceID": id, "Status": "AUTHORISED" })).collect::<Vec<_>>() });
    let mut request = ApiRequest::new("/Invoices");
    request.query = vec![("summarizeErrors", "false".into())];
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, "POST", &body, &deliveries(jobs, which)));
    let answer: Invoices = app.tokens.post(connection, &request, &body).await?.body;
    for &i in which {
        let id = xero_invoice(&jobs[i]);
        match answer.invoices.iter().find(|a| a.invoice_id == id) {
            Some(a) if !a.is_refused() => jobs[i].approved = true,
            Some(a) => {
                let mut reasons: Vec<String> = a.validation_errors.iter().map(|m| m.message.clone()).collect();
                reasons.insert(0, "the draft invoice could not be approved for the payment".into());
                jobs[i].result = Some(Ok(PaymentOutcome::Failed { reasons }));
            }
            None => {
                jobs[i].result =
                    Some(Ok(PaymentOutcome::Failed { reasons: vec!["Xero did not answer for the invoice".into()] }))
            }
        }
    }
    Ok(())
}

/// The payment's element in `PUT /Payments`: against the invoice, or for a refund out of its
/// credit note once that is written.
fn element(job: &Job) -> Option<Value> {
    let (key, paid, account_id) = match &job.plan {
        Plan::Create { xero_invoice_id, account_id, .. } => {
            ("Invoice", json!({ "InvoiceID": xero_invoice_id }), account_id)
        }
        Plan::Refund { account_id, .. } => {
            ("CreditNote", json!({ "CreditNoteID": job.record.xero_credit_note_id? }), account_id)
        }
        _ => return None,
    };
    let p = &job.event.payment;
    let mut v = json!({
        key: paid,
        "Account": { "AccountID": account_id },
        "Date": p.date?.format("%Y-%m-%d").to_string(),
        "Amount": number(p.amount?),
    });
    if let Some(reference) = p.reference.as_ref().filter(|r| !r.trim().is_empty()) {
        v["Reference"] = json!(reference);
    }
    Some(v)
}

async fn create(app: &App, connection: &Connection, jobs: &mut [Job], chunk: &[usize]) -> Result<(), TokenError> {
    let batch: Vec<(usize, Value)> = chunk.iter().filter_map(|i| element(&jobs[*i]).map(|v| (*i, v))).collect();
    if batch.is_empty() {
        return Ok(());
    }
    let body = json!({ "Payments": batch.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>() });
    let mut request = ApiRequest::new("/Payments");
    request.query = vec![("summarizeErrors", "false".into())];
    let which: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, "PUT", &body, &deliveries(jobs, &which)));
    let answer: Payments = match app.tokens.put(connection, &request, &body).await {
        Ok(answer) => answer.body,
        Err(e) => {
            if maybe_applied(&e) {
                which.iter().for_each(|i| jobs[*i].record.uncertain = true);
            }
            return Err(e);
        }
    };
    if answer.payments.len() != which.len() {
        which.iter().for_each(|i| jobs[*i].record.uncertain = true);
        let e = XeroError::Unexpected(format!("{} payments sent, {} answered", which.len(), answer.payments.len()));
        return Err(TokenError::Xero(e));
    }
    for (i, answered) in which.into_iter().zip(answer.payments) {
        record_answer(&mut jobs[i], answered, false);
    }
    Ok(())
}

fn record_answer(job: &mut Job, answered: Payment, deleting: bool) {
    match answered.id() {
        Some(id) if !answered.is_refused() => {
            job.record.xero_payment_id = Some(id);
            job.record.uncertain = false;
            job.invoice_after = answered.invoice;
            job.result = Some(Ok(match deleting {
                true => PaymentOutcome::Voided { xero_payment_id: Some(id) },
                false => PaymentOutcome::Synced { xero_payment_id: id },
            }));
        }
        _ => {
            let reasons = refusal_reasons(answered.validation_errors, "payment");
            job.result = Some(Ok(PaymentOutcome::Failed { reasons }));
        }
    }
}

async fn delete(app: &App, connection: &Connection, job: &mut Job, id: Uuid) -> Result<(), TokenError> {
    let path = format!("/Payments/{id}");
    let body = json!({ "Status": "DELETED" });
    let mut request = ApiRequest::new(&path);
    let keyed = json!({ "path": path, "body": body });
    request.idempotency_key =
        Some(idempotency_key(connection.tenant_id, "POST", &keyed, &[job.event.delivery_id.as_str()]));
    match app.tokens.post::<_, Payments>(connection, &request, &body).await {
        Ok(answer) => match answer.body.payments.into_iter().next() {
            Some(answered) => record_answer(job, answered, true),
            None => return Err(TokenError::Xero(XeroError::Unexpected("no payment in the answer".into()))),
        },
        // Refused: perhaps because an earlier attempt, whose answer was lost, deleted it.
        Err(TokenError::Xero(XeroError::Validation { messages, .. })) => {
            let listed: Payments = app.tokens.get(connection, &ApiRequest::new(&path)).await?.body;
            match listed.payments.into_iter().next() {
                Some(p) if p.status == Some(PaymentStatus::Deleted) => {
                    job.invoice_after = p.invoice;
                    job.result = Some(Ok(PaymentOutcome::Voided { xero_payment_id: Some(id) }));
                }
                _ => job.result = Some(Ok(PaymentOutcome::Failed { reasons: messages })),
            }
        }
        Err(e) => {
            if maybe_applied(&e) {
                job.record.uncertain = true;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// After an outcome we could not see, whether Xero has the payment after all: one query over
/// the invoices concerned. A payment there with the same account, date and amount that no other
/// record of ours names is this one.
async fn look_up(
    app: &App,
    connection: &Connection,
    settings: &ConnectionSettings,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let mut invoices: Vec<Uuid> = which.iter().filter_map(|i| xero_invoice(&jobs[*i])).collect();
    invoices.sort();
    invoices.dedup();
    let mut listed: Vec<Payment> = Vec::new();
    if !invoices.is_empty() {
        let terms: Vec<String> = invoices.iter().map(|id| format!("Invoice.InvoiceID==Guid(\"{id}\")")).collect();
        let mut request = ApiRequest::new("/Payments");
        request.query = vec![
            ("where", format!("Status==\"AUTHORISED\" AND ({})", terms.join(" OR "))),
            ("page", "1".into()),
            ("pageSize", "1000".into()),
        ];
        listed = app.tokens.get::<Payments>(connection, &request).await?.body.payments;
    }
    let ids: Vec<Uuid> = listed.iter().filter_map(Payment::id).collect();
    let key = connection.key();
    let ours = app.services.store.payments_for_xero_ids(&key, &ids).await.map_err(TokenError::from)?;
    let mut taken: Vec<Uuid> = ours.keys().copied().collect();
    for &i in which {
        let job = &jobs[i];
        let account = job.event.payment.method.and_then(|m| settings.payment_accounts.get(&m).copied());
        let (amount, date) = (job.record.amount, job.record.date);
        let invoice = xero_invoice(job);
        let hit = listed.iter().find(|p| {
            p.id().is_some_and(|id| !taken.contains(&id))
                && p.invoice.as_ref().and_then(|inv| inv.invoice_id) == invoice
                && p.amount.is_some()
                && p.amount == amount
                && p.date.is_some()
                && p.date == date
                && (account.is_none() || p.account.as_ref().and_then(|a| a.account_id) == account)
        });
        let job = &mut jobs[i];
        if let Some(hit) = hit.and_then(Payment::id) {
            taken.push(hit);
            job.record.xero_payment_id = Some(hit);
            if matches!(job.plan, Plan::Create { .. }) {
                job.result = Some(Ok(PaymentOutcome::Synced { xero_payment_id: hit }));
            }
        }
        job.record.uncertain = false;
    }
    Ok(())
}
