//! The Xero half of the credit note push, in rounds retried within the invocation: look up
//! uncertain creates, clear what Xero requires gone before an edit or a void, find contacts,
//! write, then allocate.

use std::time::Duration as StdDuration;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::model::Connection;
use xero_sync_domain::xero::{
    Allocation, Allocations, CreditNote, CreditNotes, InvoiceStatus, PaymentStatus, Payments,
};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::Job;
use super::plan::{CreditNoteOutcome, Plan};
use crate::contact::{Found, find_many, of_invoices};
use crate::mapping::{ContactRef, contact_json, number};
use crate::push::{PushError, PushPolicy, XERO_BATCH, idempotency_key, maybe_applied};

fn open(jobs: &[Job]) -> Vec<usize> {
    (0..jobs.len()).filter(|i| jobs[*i].claimed && jobs[*i].result.is_none() && jobs[*i].plan.writes()).collect()
}

pub(super) async fn to_xero(app: &App, policy: &PushPolicy, connection: &Connection, jobs: &mut [Job]) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now_open = open(jobs);
        if now_open.is_empty() {
            return;
        }
        let Err(e) = once(app, connection, jobs, &now_open).await else { continue };
        let still = open(jobs);
        let refused = match &e {
            TokenError::Reconnect | TokenError::Xero(XeroError::NotGranted) => Some(None),
            TokenError::Xero(XeroError::Validation { messages, .. }) => Some(Some(messages.clone())),
            TokenError::Xero(XeroError::Forbidden(_) | XeroError::NotFound(_)) => Some(Some(vec![e.to_string()])),
            _ => None,
        };
        if let Some(reasons) = refused {
            for i in still {
                jobs[i].result = Some(Ok(match &reasons {
                    None => CreditNoteOutcome::Parked,
                    Some(reasons) => CreditNoteOutcome::Failed { reasons: reasons.clone() },
                }));
            }
            return;
        }
        let wait = e.retry_after().unwrap_or_else(|| policy.backoff * 2u32.saturating_pow(attempt - 1));
        let governed = matches!(e, TokenError::Governed { .. });
        if governed || !e.is_retryable() || attempt >= policy.attempts.min(3) || wait > policy.max_wait {
            let after = if e.is_retryable() { wait } else { StdDuration::from_secs(30) };
            for i in still {
                jobs[i].result = Some(Err(PushError::waiting(&e, after.max(StdDuration::from_secs(1)))));
            }
            return;
        }
        tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "Xero credit note write retried");
        tokio::time::sleep(wait).await;
    }
}

/// One round over the open jobs; each answered job gets its result.
async fn once(app: &App, connection: &Connection, jobs: &mut [Job], open: &[usize]) -> Result<(), TokenError> {
    let pick = |jobs: &[Job], keep: &dyn Fn(&Job) -> bool| -> Vec<usize> {
        open.iter().copied().filter(|i| jobs[*i].result.is_none() && keep(&jobs[*i])).collect()
    };
    let lost = pick(jobs, &|j| j.record.uncertain && j.record.xero_credit_note_id.is_none());
    if !lost.is_empty() {
        look_up(app, connection, jobs, &lost).await?;
    }
    let to_clear = pick(jobs, &|j| j.record.xero_credit_note_id.is_some() && !j.cleared && j.written.is_none());
    if !to_clear.is_empty() {
        clear(app, connection, jobs, &to_clear).await?;
    }
    let to_write = pick(jobs, &|j| matches!(j.plan, Plan::Write { .. }) && j.written.is_none());
    contacts(app, connection, jobs, &to_write).await?;
    let creates = pick(jobs, &|j| {
        matches!(j.plan, Plan::Write { .. }) && j.written.is_none() && j.record.xero_credit_note_id.is_none()
    });
    let updates = pick(jobs, &|j| {
        matches!(j.plan, Plan::Write { .. }) && j.written.is_none() && j.record.xero_credit_note_id.is_some()
    });
    let voids = pick(jobs, &|j| matches!(j.plan, Plan::Void));
    for (method, which) in [("PUT", creates), ("POST", updates), ("POST", voids)] {
        for chunk in which.chunks(XERO_BATCH) {
            write(app, connection, jobs, method, chunk).await?;
        }
    }
    let recheck = pick(jobs, &|j| j.written.is_some() && j.record.uncertain);
    if !recheck.is_empty() {
        adopt_allocations(app, connection, jobs, &recheck).await?;
    }
    let to_allocate = pick(jobs, &|j| j.written.is_some());
    for i in to_allocate {
        allocate(app, connection, &mut jobs[i]).await?;
    }
    Ok(())
}

fn deliveries<'a>(jobs: &'a [Job], which: &[usize]) -> Vec<&'a str> {
    which.iter().map(|i| jobs[*i].event.delivery_id.as_str()).collect()
}

/// Credit notes by a `where` clause, with their allocations and payments (a numbered page
/// carries them).
async fn list(app: &App, connection: &Connection, terms: Vec<String>) -> Result<Vec<CreditNote>, TokenError> {
    let mut request = ApiRequest::new("/CreditNotes");
    request.query = vec![("where", terms.join(" OR ")), ("page", "1".into()), ("pageSize", "1000".into())];
    Ok(app.tokens.get::<CreditNotes>(connection, &request).await?.body.credit_notes)
}

/// After an outcome we could not see, whether Xero has the credit note after all: by number,
/// in one call for them all. One found is updated rather than created again.
async fn look_up(app: &App, connection: &Connection, jobs: &mut [Job], which: &[usize]) -> Result<(), TokenError> {
    let number = |job: &Job| job.event.credit_note.number.trim().to_owned();
    let terms = which.iter().map(|i| format!("CreditNoteNumber=={}", crate::contact::literal(&number(&jobs[*i]))));
    let listed = list(app, connection, terms.collect()).await?;
    for &i in which {
        let job = &mut jobs[i];
        let wanted = number(job);
        if let Some(found) = listed.iter().find(|c| c.credit_note_number.as_deref() == Some(wanted.as_str())) {
            job.record.xero_credit_note_id = found.id();
            job.record.xero_status = found.status;
        }
        job.record.uncertain = false;
    }
    Ok(())
}

/// After an allocation whose answer was lost: whether Xero made it, read with the credit notes.
async fn adopt_allocations(
    app: &App,
    connection: &Connection,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let ids: Vec<Uuid> = which.iter().filter_map(|i| jobs[*i].record.xero_credit_note_id).collect();
    let listed = list(app, connection, ids.iter().map(|id| format!("CreditNoteID==Guid(\"{id}\")")).collect()).await?;
    for &i in which {
        let job = &mut jobs[i];
        let invoice = job.xero_invoice();
        let found = listed.iter().find(|c| c.id() == job.record.xero_credit_note_id);
        let made: Decimal = found
            .iter()
            .flat_map(|c| &c.allocations)
            .filter(|a| a.invoice.as_ref().and_then(|inv| inv.invoice_id) == invoice)
            .filter_map(|a| a.amount)
            .sum();
        if made > Decimal::ZERO {
            job.record.allocated = Some(made);
        }
        job.record.uncertain = false;
    }
    Ok(())
}

/// Before an edit or a void, what Xero requires gone: the credit note's allocations and the
/// refunds paid out of it, each removed by its own call. One read for them all.
async fn clear(app: &App, connection: &Connection, jobs: &mut [Job], which: &[usize]) -> Result<(), TokenError> {
    let ids: Vec<Uuid> = which.iter().filter_map(|i| jobs[*i].record.xero_credit_note_id).collect();
    let listed = list(app, connection, ids.iter().map(|id| format!("CreditNoteID==Guid(\"{id}\")")).collect()).await?;
    for &i in which {
        let job = &mut jobs[i];
        let Some(found) = listed.iter().find(|c| c.id() == job.record.xero_credit_note_id) else {
            job.result = Some(Ok(CreditNoteOutcome::Failed {
                reasons: vec!["the credit note is no longer in Xero (deleted there?)".into()],
            }));
            continue;
        };
        job.record.xero_status = found.status;
        if found.status.is_some_and(InvoiceStatus::is_gone) {
            job.result = Some(Ok(match job.plan {
                Plan::Void => CreditNoteOutcome::Voided { xero_credit_note_id: found.id() },
                _ => CreditNoteOutcome::Failed {
                    reasons: vec!["the credit note was voided in Xero, so it cannot be changed there".into()],
                },
            }));
            continue;
        }
        let credit_note = found.id().unwrap_or_default();
        for allocation in found.allocations.iter().filter_map(|a| a.allocation_id) {
            remove_allocation(app, connection, credit_note, allocation).await?;
            job.removed.allocations += 1;
        }
        for payment in found.payments.iter().filter(|p| p.status != Some(PaymentStatus::Deleted)) {
            let Some(id) = payment.id() else { continue };
            remove_refund(app, connection, id, &job.event.delivery_id).await?;
            job.removed.refunds += 1;
        }
        job.record.allocated = None;
        job.record.uncertain = false;
        job.cleared = true;
    }
    Ok(())
}

async fn remove_allocation(
    app: &App,
    connection: &Connection,
    credit_note: Uuid,
    allocation: Uuid,
) -> Result<(), TokenError> {
    let path = format!("/CreditNotes/{credit_note}/Allocations/{allocation}");
    match app.tokens.delete::<Allocation>(connection, &ApiRequest::new(&path)).await {
        Ok(_) => Ok(()),
        // Removed already, by an attempt whose answer was lost.
        Err(TokenError::Xero(XeroError::NotFound(_))) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn remove_refund(app: &App, connection: &Connection, payment: Uuid, delivery: &str) -> Result<(), TokenError> {
    let path = format!("/Payments/{payment}");
    let body = json!({ "Status": "DELETED" });
    let mut request = ApiRequest::new(&path);
    let keyed = json!({ "path": path, "body": body });
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, "POST", &keyed, &[delivery]));
    match app.tokens.post::<_, Payments>(connection, &request, &body).await {
        Ok(_) => Ok(()),
        Err(TokenError::Xero(XeroError::Validation { messages, .. }))
            if messages.iter().any(|m| m.contains("already been deleted")) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Who each credit note to write is for: its invoice's contact (from the invoice's record, or
/// one read of the invoices), else the customer's, found as an invoice's is; a customer Xero
/// does not have travels with the credit note and Xero creates the contact.
async fn contacts(app: &App, connection: &Connection, jobs: &mut [Job], which: &[usize]) -> Result<(), TokenError> {
    let mut by_invoice: Vec<usize> = Vec::new();
    let mut by_customer: Vec<usize> = Vec::new();
    let unknown: Vec<usize> = which.iter().copied().filter(|i| jobs[*i].contact.is_none()).collect();
    for i in unknown {
        let known = jobs[i].invoice.as_ref().and_then(|inv| inv.xero_contact_id);
        match (jobs[i].xero_invoice(), known) {
            (Some(_), Some(contact)) => jobs[i].contact = Some(json!({ "ContactID": contact })),
            (Some(_), None) => by_invoice.push(i),
            (None, _) => by_customer.push(i),
        }
    }
    let ids: Vec<Uuid> = by_invoice.iter().filter_map(|i| jobs[*i].xero_invoice()).collect();
    let found = of_invoices(&app.tokens, connection, &ids).await?;
    for i in by_invoice {
        match jobs[i].xero_invoice().and_then(|id| found.get(&id)) {
            Some(contact) => jobs[i].contact = Some(json!({ "ContactID": contact })),
            // The invoice's customer is unknown; the event's own customer stands in.
            None => by_customer.push(i),
        }
    }
    if by_customer.is_empty() {
        return Ok(());
    }
    let customers: Vec<_> = by_customer.iter().map(|i| &jobs[*i].event.customer).collect();
    let found = find_many(&*app.services.store, &app.tokens, connection, &customers, app.now()).await?;
    for i in by_customer {
        let customer = &jobs[i].event.customer;
        let contact = match found.get(&customer.id) {
            Some(Found::Contact(id)) => contact_json(ContactRef::Existing(*id)),
            Some(Found::Missing { name_taken }) => {
                contact_json(ContactRef::New { customer, distinct_name: *name_taken })
            }
            None => contact_json(ContactRef::new(customer)),
        };
        jobs[i].contact = Some(contact);
    }
    Ok(())
}

/// The element a job writes: the credit note with its contact and id, or its void.
fn element(job: &Job) -> Option<Value> {
    let id = job.record.xero_credit_note_id;
    match &job.plan {
        Plan::Void => Some(json!({ "CreditNoteID": id?, "Status": "VOIDED" })),
        Plan::Write { body, .. } => {
            let mut v = body.clone();
            v["Contact"] = job.contact.clone()?;
            if let Some(id) = id {
                v["CreditNoteID"] = json!(id);
            }
            Some(v)
        }
        _ => None,
    }
}

async fn write(
    app: &App,
    connection: &Connection,
    jobs: &mut [Job],
    method: &str,
    chunk: &[usize],
) -> Result<(), TokenError> {
    let batch: Vec<(usize, Value)> = chunk.iter().filter_map(|i| element(&jobs[*i]).map(|v| (*i, v))).collect();
    if batch.is_empty() {
        return Ok(());
    }
    let which: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
    let body = json!({ "CreditNotes": batch.into_iter().map(|(_, v)| v).collect::<Vec<_>>() });
    let mut request = ApiRequest::new("/CreditNotes");
    request.query = vec![("summarizeErrors", "false".into())];
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, method, &body, &deliveries(jobs, &which)));
    let sent = if method == "PUT" {
        app.tokens.put::<_, CreditNotes>(connection, &request, &body).await
    } else {
        app.tokens.post::<_, CreditNotes>(connection, &request, &body).await
    };
    let answer = match sent {
        Ok(answer) => answer.body,
        Err(e) => {
            if maybe_applied(&e) {
                for &i in &which {
                    jobs[i].record.uncertain = true;
                    // A void that may have gone through is read again rather than sent again.
                    jobs[i].cleared &= !matches!(jobs[i].plan, Plan::Void);
                }
            }
            return Err(e);
        }
    };
    if answer.credit_notes.len() != which.len() {
        which.iter().for_each(|i| jobs[*i].record.uncertain = true);
        let e =
            XeroError::Unexpected(format!("{} credit notes sent, {} answered", which.len(), answer.credit_notes.len()));
        return Err(TokenError::Xero(e));
    }
    for (i, answered) in which.into_iter().zip(answer.credit_notes) {
        record_answer(&mut jobs[i], answered);
    }
    Ok(())
}

fn record_answer(job: &mut Job, answered: CreditNote) {
    let Some(id) = answered.id().filter(|_| !answered.is_refused()) else {
        let mut reasons: Vec<String> = answered.validation_errors.into_iter().map(|m| m.message).collect();
        if reasons.is_empty() {
            reasons.push("Xero refused the credit note without saying why".into());
        }
        job.result = Some(Ok(CreditNoteOutcome::Failed { reasons }));
        return;
    };
    let created = job.record.xero_credit_note_id.is_none();
    job.record.xero_credit_note_id = Some(id);
    job.record.xero_status = answered.status;
    job.record.uncertain = false;
    if matches!(job.plan, Plan::Void) {
        job.result = Some(Ok(CreditNoteOutcome::Voided { xero_credit_note_id: Some(id) }));
        return;
    }
    job.record.total = answered.total.or(job.record.total);
    if job.contact.as_ref().is_some_and(|c| c.get("ContactID").is_none()) {
        job.created_contact = answered.contact.and_then(|c| c.contact_id);
    }
    job.written = Some(if created { "created" } else { "updated" });
}

/// What of the credit note its invoice can take: all of it, or what the invoice still has due
/// when that is less. `Err` says why it stays unallocated.
fn allocatable(job: &Job) -> Result<Option<(Uuid, Decimal)>, String> {
    let Some(invoice) = job.invoice.as_ref().filter(|_| job.event.credit_note.invoice_id.is_some()) else {
        return Ok(None);
    };
    let (Some(xero_invoice), Some(total)) = (invoice.xero_invoice_id, job.record.total) else { return Ok(None) };
    if job.record.xero_status != Some(InvoiceStatus::Authorised) {
        return Ok(None);
    }
    // `status|paid|credited|due`, as last seen; without it, Xero checks the amount itself.
    let state: Vec<&str> = invoice.payment_state.as_deref().unwrap_or_default().split('|').collect();
    let status = state.first().and_then(|s| s.parse::<InvoiceStatus>().ok()).or(invoice.xero_status);
    let due = state.get(3).and_then(|d| d.parse::<Decimal>().ok());
    match status {
        Some(InvoiceStatus::Draft | InvoiceStatus::Submitted) => {
            Err("the invoice is a draft in Xero, which takes no credit: the credit note is left unallocated".into())
        }
        Some(InvoiceStatus::Paid) => Err("the invoice is paid in full, so the credit stays with the customer".into()),
        Some(s) if s.is_gone() => Err("the invoice is voided in Xero, so the credit stays with the customer".into()),
        _ if due.is_some_and(|d| d <= Decimal::ZERO) => {
            Err("the invoice has nothing left due, so the credit stays with the customer".into())
        }
        _ => Ok(Some((xero_invoice, due.map_or(total, |d| d.min(total))))),
    }
}

/// Allocates a written credit note to its invoice (its own call, on an AUTHORISED credit
/// note); a refusal leaves it unallocated with Xero's words, the credit note itself stands.
async fn allocate(app: &App, connection: &Connection, job: &mut Job) -> Result<(), TokenError> {
    let Some(credit_note) = job.record.xero_credit_note_id else { return Ok(()) };
    let done = Some(Ok(CreditNoteOutcome::Synced { xero_credit_note_id: credit_note }));
    let (invoice, amount) = match allocatable(job) {
        Ok(Some(target)) if job.record.allocated.is_none() => target,
        Ok(_) => {
            job.record.reason = None;
            job.result = done;
            return Ok(());
        }
        Err(why) => {
            job.record.reason = Some(why);
            job.result = done;
            return Ok(());
        }
    };
    let path = format!("/CreditNotes/{credit_note}/Allocations");
    let date = job.event.credit_note.issue_date.format("%Y-%m-%d").to_string();
    let body =
        json!({ "Allocations": [{ "Invoice": { "InvoiceID": invoice }, "Amount": number(amount), "Date": date }] });
    let mut request = ApiRequest::new(&path);
    let keyed = json!({ "path": path, "body": body });
    request.idempotency_key =
        Some(idempotency_key(connection.tenant_id, "PUT", &keyed, &[job.event.delivery_id.as_str()]));
    match app.tokens.put::<_, Allocations>(connection, &request, &body).await {
        Ok(answer) => {
            let made = answer.body.allocations.into_iter().next();
            job.invoice_after = made.and_then(|a| a.invoice);
            job.record.allocated = Some(amount);
            let total = job.record.total.unwrap_or(amount);
            job.record.reason = (amount < total).then(|| {
                format!(
                    "the invoice had only {} left due: the other {} stays as credit with the customer",
                    amount.normalize(),
                    (total - amount).normalize()
                )
            });
        }
        Err(TokenError::Xero(XeroError::Validation { messages, .. })) => {
            job.record.reason = Some(format!("left unallocated: {}", messages.join("; ")));
        }
        Err(e) => {
            // Whether it was allocated is read again before the next attempt.
            job.record.uncertain |= maybe_applied(&e);
            return Err(e);
        }
    }
    job.result = done;
    Ok(())
}
