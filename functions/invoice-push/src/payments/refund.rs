//! The credit-note half of a refund (`payment.refunded`): Xero records money given back as an
//! AUTHORISED customer credit note for the amount, paid out by a payment against it. The credit
//! note is written here (`PUT /CreditNotes`, fifty to a call); its payment goes in the same
//! `PUT /Payments` as the payments (see `write`). Each credit note carries a number made from
//! the refund's id, so one whose write we could not see is found again by that number (with its
//! payment, which Xero lists on it) instead of being written twice.

use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::model::Connection;
use xero_sync_domain::settings::ConnectionSettings;
use xero_sync_domain::xero::{CreditNote, CreditNotes, InvoiceStatus, PaymentStatus, refusal_reasons};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::plan::{PaymentOutcome, Plan};
use super::write::deliveries;
use super::{Job, xero_invoice};
use crate::mapping::number;
use crate::push::{idempotency_key, maybe_applied};

/// Credit notes per `PUT /CreditNotes`, as Xero batches writes.
const BATCH: usize = 50;

/// The credit note's number: the refund's own id, so that it can be found again.
pub(super) fn credit_note_number(job: &Job) -> String {
    format!("RF-{}", job.event.payment.id)
}

/// Whether a job is a refund still waiting for its credit note.
fn needs_credit_note(job: &Job) -> bool {
    job.result.is_none() && matches!(job.plan, Plan::Refund { .. }) && job.record.xero_credit_note_id.is_none()
}

/// After an outcome we could not see: the refunds' credit notes by their numbers, with their
/// payments, in one call. What is found is taken up; what is not is written afresh.
pub(super) async fn look_up(
    app: &App,
    connection: &Connection,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let terms: Vec<String> =
        which.iter().map(|i| format!("CreditNoteNumber==\"{}\"", credit_note_number(&jobs[*i]))).collect();
    let mut request = ApiRequest::new("/CreditNotes");
    request.query = vec![("where", terms.join(" OR ")), ("page", "1".into()), ("pageSize", "1000".into())];
    let listed = app.tokens.get::<CreditNotes>(connection, &request).await?.body.credit_notes;
    for &i in which {
        let number = credit_note_number(&jobs[i]);
        let found = listed.iter().find(|c| {
            c.credit_note_number.as_deref() == Some(number.as_str()) && !c.status.is_some_and(InvoiceStatus::is_gone)
        });
        let job = &mut jobs[i];
        if let Some(found) = found {
            job.record.xero_credit_note_id = found.id().or(job.record.xero_credit_note_id);
            let paid = found.payments.iter().find(|p| p.status != Some(PaymentStatus::Deleted)).and_then(|p| p.id());
            if job.record.xero_payment_id.is_none() {
                job.record.xero_payment_id = paid;
            }
        }
        job.record.uncertain = false;
        if let (Plan::Refund { .. }, Some(paid)) = (&job.plan, job.record.xero_payment_id) {
            job.result = Some(Ok(PaymentOutcome::Synced { xero_payment_id: paid }));
        }
    }
    Ok(())
}

/// The contacts of the invoices that refunds wait on, for records made before the invoice's
/// contact was kept: one read of those invoices.
pub(super) async fn contacts(app: &App, connection: &Connection, jobs: &mut [Job]) -> Result<(), TokenError> {
    let missing: Vec<usize> =
        (0..jobs.len()).filter(|i| needs_credit_note(&jobs[*i]) && jobs[*i].contact.is_none()).collect();
    let ids: Vec<Uuid> = missing.iter().filter_map(|i| xero_invoice(&jobs[*i])).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found = crate::contact::of_invoices(&app.tokens, connection, &ids).await?;
    for i in missing {
        jobs[i].contact = xero_invoice(&jobs[i]).and_then(|id| found.get(&id).copied());
        if jobs[i].contact.is_none() {
            jobs[i].result = Some(Ok(PaymentOutcome::Failed {
                reasons: vec!["Xero did not say whom the invoice is made out to, so the refund has no contact".into()],
            }));
        }
    }
    Ok(())
}

/// The refund's credit note in `PUT /CreditNotes`: the amount tax-inclusive, on the sales
/// account, so Xero takes back the sale and its tax.
fn element(job: &Job, settings: &ConnectionSettings) -> Option<Value> {
    let Plan::Refund { sales_account, .. } = &job.plan else { return None };
    let p = &job.event.payment;
    let invoice_number = job.invoice.as_ref().map(|i| i.invoice_number.as_str()).unwrap_or_default();
    let mut line = json!({
        "Description": format!("Refund on invoice {invoice_number}"),
        "Quantity": 1,
        "UnitAmount": number(p.amount?),
        "AccountCode": sales_account,
    });
    if let Some(tax_type) = settings.default_tax_type.as_ref().filter(|t| !t.trim().is_empty()) {
        line["TaxType"] = json!(tax_type);
    }
    let mut reference = format!("Refund on {invoice_number}");
    if let Some(theirs) = p.reference.as_ref().filter(|r| !r.trim().is_empty()) {
        reference = format!("{reference}: {theirs}");
    }
    Some(json!({
        "Type": "ACCRECCREDIT",
        "Status": "AUTHORISED",
        "Contact": { "ContactID": job.contact? },
        "CreditNoteNumber": credit_note_number(job),
        "Reference": reference.chars().take(255).collect::<String>(),
        "Date": p.date?.format("%Y-%m-%d").to_string(),
        "CurrencyCode": p.currency.as_deref()?,
        "LineAmountTypes": "Inclusive",
        "LineItems": [line],
    }))
}

/// Writes the credit notes the open refunds still need.
pub(super) async fn credit_notes(
    app: &App,
    connection: &Connection,
    settings: &ConnectionSettings,
    jobs: &mut [Job],
    open: &[usize],
) -> Result<(), TokenError> {
    let batch: Vec<(usize, Value)> = open
        .iter()
        .filter(|i| needs_credit_note(&jobs[**i]))
        .filter_map(|i| element(&jobs[*i], settings).map(|v| (*i, v)))
        .collect();
    for chunk in batch.chunks(BATCH) {
        write(app, connection, jobs, chunk).await?;
    }
    Ok(())
}

async fn write(
    app: &App,
    connection: &Connection,
    jobs: &mut [Job],
    chunk: &[(usize, Value)],
) -> Result<(), TokenError> {
    let (which, elements): (Vec<usize>, Vec<Value>) = chunk.iter().cloned().unzip();
    match crate::credit_notes::send(app, connection, "PUT", elements, &deliveries(jobs, &which)).await {
        Ok(answered) => {
            for (i, answered) in which.into_iter().zip(answered) {
                record_answer(&mut jobs[i], answered);
            }
            Ok(())
        }
        Err(e) => {
            if maybe_applied(&e) {
                which.iter().for_each(|i| jobs[*i].record.uncertain = true);
            }
            Err(e)
        }
    }
}

fn record_answer(job: &mut Job, answered: CreditNote) {
    match answered.id() {
        Some(id) if !answered.is_refused() => job.record.xero_credit_note_id = Some(id),
        _ => {
            let mut reasons = refusal_reasons(answered.validation_errors, "refund's credit note");
            reasons.insert(0, "the refund's credit note was refused".into());
            job.result = Some(Ok(PaymentOutcome::Failed { reasons }));
        }
    }
}

/// Voids a voided refund's credit note once its payment is deleted, so it holds no credit.
pub(super) async fn void(app: &App, connection: &Connection, job: &mut Job, id: Uuid) -> Result<(), TokenError> {
    let path = format!("/CreditNotes/{id}");
    let body = json!({ "CreditNotes": [{ "CreditNoteID": id, "Status": "VOIDED" }] });
    let mut request = ApiRequest::new(&path);
    let keyed = json!({ "path": path, "body": body });
    request.idempotency_key =
        Some(idempotency_key(connection.tenant_id, "POST", &keyed, &[job.event.delivery_id.as_str()]));
    let voided = Some(Ok(PaymentOutcome::Voided { xero_payment_id: job.record.xero_payment_id }));
    match app.tokens.post::<_, CreditNotes>(connection, &request, &body).await {
        Ok(answer) if answer.body.credit_notes.first().is_some_and(|c| c.id() == Some(id)) => job.result = voided,
        Ok(_) => return Err(TokenError::Xero(XeroError::Unexpected("no credit note in the answer".into()))),
        // Refused: perhaps because an earlier attempt, whose answer was lost, voided it.
        Err(TokenError::Xero(XeroError::Validation { mut messages, .. })) => {
            let read: CreditNotes = app.tokens.get(connection, &ApiRequest::new(&path)).await?.body;
            match read.credit_notes.first().and_then(|c| c.status) {
                Some(status) if status.is_gone() => job.result = voided,
                _ => {
                    messages.insert(0, "the refund's credit note could not be voided".into());
                    job.result = Some(Ok(PaymentOutcome::Failed { reasons: messages }));
                }
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
