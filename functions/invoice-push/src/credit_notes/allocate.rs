//! A credit note and its invoice: what must come off the credit note before Xero lets it be
//! edited or voided, and allocating it to the invoice afterwards, for as much as the invoice
//! still has due. Each invoice's standing is carried from one credit note to the next, so two
//! credit notes for one invoice in one push share what it has due.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::model::Connection;
use xero_sync_domain::xero::{Allocations, CreditNote, InvoiceStatus, PaymentState, PaymentStatus, Payments};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::Job;
use super::plan::{CreditNoteOutcome, Plan};
use super::write::list;
use crate::mapping::number;
use crate::push::{idempotency_key, maybe_applied};

/// What we know of an invoice's payment state during a push: as its record last saw it, then
/// as our own removals and allocations moved it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Standing {
    status: Option<InvoiceStatus>,
    state: Option<PaymentState>,
    /// Moved by this push: the invoice's record is to take the new state.
    moved: bool,
}

/// Each credited invoice's standing, by its Xero id.
pub(super) type Standings = HashMap<Uuid, Standing>;

fn standing<'a>(standings: &'a mut Standings, job: &Job) -> Option<&'a mut Standing> {
    let invoice = job.invoice.as_ref().filter(|_| job.event.credit_note.invoice_id.is_some())?;
    let id = invoice.xero_invoice_id?;
    Some(standings.entry(id).or_insert_with(|| {
        let state = invoice.payment_state.as_deref().and_then(PaymentState::parse);
        Standing { status: state.map(|s| s.status).or(invoice.xero_status), state, moved: false }
    }))
}

impl Standing {
    fn credited_by(&mut self, amount: Decimal) {
        self.moved = true;
        match self.state.as_mut() {
            Some(state) => {
                *state = state.credited_by(amount);
                self.status = Some(state.status);
            }
            // Without the amounts, only what taking credit back does to a paid invoice is known.
            None if amount < Decimal::ZERO && self.status == Some(InvoiceStatus::Paid) => {
                self.status = Some(InvoiceStatus::Authorised)
            }
            None => {}
        }
    }
}

/// The payment state each job's invoice is left in, for its record, where this push moved it.
pub(super) fn settle_standings(jobs: &mut [Job], standings: &mut Standings) {
    for job in jobs.iter_mut() {
        if let Some(s) = standing(standings, job).filter(|s| s.moved) {
            job.invoice_state = s.state;
        }
    }
}

/// Before an edit or a void, what Xero requires gone, from one read of them all: a credit
/// note's allocations (taken back, and allocated again after an edit) and, for a void, the
/// refunds paid out of it. An edit of a credit note paid out is refused instead: removing a
/// refund would take money that left the bank out of the books.
pub(super) async fn clear(
    app: &App,
    connection: &Connection,
    standings: &mut Standings,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let ids: Vec<Uuid> = which.iter().filter_map(|i| jobs[*i].record.xero_credit_note_id).collect();
    let listed = list(app, connection, ids.iter().map(|id| format!("CreditNoteID==Guid(\"{id}\")")).collect()).await?;
    for &i in which {
        let found = listed.iter().find(|c| c.id().is_some() && c.id() == jobs[i].record.xero_credit_note_id);
        let Some(found) = found else {
            jobs[i].result = Some(Ok(CreditNoteOutcome::Failed {
                reasons: vec!["the credit note is no longer in Xero (deleted there?)".into()],
            }));
            continue;
        };
        if let Err(refusal) = clear_one(app, connection, standings, &mut jobs[i], found).await? {
            jobs[i].result = Some(Ok(CreditNoteOutcome::Failed { reasons: refusal }));
        }
    }
    Ok(())
}

/// One credit note's clearing: `Ok(Err(reasons))` when Xero refused it or it cannot be done,
/// which fails this credit note alone.
async fn clear_one(
    app: &App,
    connection: &Connection,
    standings: &mut Standings,
    job: &mut Job,
    found: &CreditNote,
) -> Result<Result<(), Vec<String>>, TokenError> {
    job.record.xero_status = found.status;
    if found.status.is_some_and(InvoiceStatus::is_gone) {
        job.result = Some(Ok(match job.plan {
            Plan::Void => CreditNoteOutcome::Voided { xero_credit_note_id: found.id() },
            _ => return Ok(Err(vec!["the credit note was voided in Xero, so it cannot be changed there".into()])),
        }));
        return Ok(Ok(()));
    }
    let refunds: Vec<Uuid> =
        found.payments.iter().filter(|p| p.status != Some(PaymentStatus::Deleted)).filter_map(|p| p.id()).collect();
    if !refunds.is_empty() && matches!(job.plan, Plan::Write { .. }) {
        return Ok(Err(vec![
            "the credit note was paid out in Xero (a refund), and Xero cannot change it while the \
            refund stands: remove the refund in Xero, then send the credit note again"
                .into(),
        ]));
    }
    if found.allocations.iter().any(|a| a.allocation_id.is_none()) {
        return Ok(Err(vec!["Xero listed an allocation of the credit note without its id".into()]));
    }
    let credit_note = found.id().unwrap_or_default();
    let ours = job.xero_invoice();
    for allocation in &found.allocations {
        let Some(id) = allocation.allocation_id else { continue };
        let path = format!("/CreditNotes/{credit_note}/Allocations/{id}");
        match app.tokens.delete::<Value>(connection, &ApiRequest::new(&path)).await {
            // Not found: removed already, by an attempt whose answer was lost.
            Ok(_) | Err(TokenError::Xero(XeroError::NotFound(_))) => {}
            Err(TokenError::Xero(XeroError::Validation { mut messages, .. })) => {
                messages.insert(0, "an allocation of the credit note could not be removed".into());
                return Ok(Err(messages));
            }
            Err(e) => return Err(e),
        }
        job.removed.allocations += 1;
        let to = allocation.invoice.as_ref().and_then(|inv| inv.invoice_id);
        if let (Some(amount), true) = (allocation.amount, to.is_some() && to == ours) {
            if let Some(s) = standing(standings, job) {
                s.credited_by(-amount);
            }
        }
    }
    for refund in refunds {
        let path = format!("/Payments/{refund}");
        let body = json!({ "Status": "DELETED" });
        let mut request = ApiRequest::new(&path);
        let keyed = json!({ "path": path, "body": body });
        request.idempotency_key =
            Some(idempotency_key(connection.tenant_id, "POST", &keyed, &[job.event.delivery_id.as_str()]));
        match app.tokens.post::<_, Payments>(connection, &request, &body).await {
            Ok(_) => {}
            Err(TokenError::Xero(XeroError::Validation { messages, .. }))
                if messages.iter().any(|m| m.contains("already been deleted")) => {}
            Err(TokenError::Xero(XeroError::Validation { mut messages, .. })) => {
                messages.insert(0, "a refund of the credit note could not be removed".into());
                return Ok(Err(messages));
            }
            Err(e) => return Err(e),
        }
        job.removed.refunds += 1;
    }
    job.record.allocated = None;
    job.record.uncertain = false;
    job.cleared = true;
    Ok(Ok(()))
}

/// After an allocation whose answer was lost: whether Xero made it, read with the credit notes.
pub(super) async fn adopt(
    app: &App,
    connection: &Connection,
    standings: &mut Standings,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let ids: Vec<Uuid> = which.iter().filter_map(|i| jobs[*i].record.xero_credit_note_id).collect();
    let listed = list(app, connection, ids.iter().map(|id| format!("CreditNoteID==Guid(\"{id}\")")).collect()).await?;
    for &i in which {
        let job = &mut jobs[i];
        let invoice = job.xero_invoice();
        let found = listed.iter().find(|c| c.id().is_some() && c.id() == job.record.xero_credit_note_id);
        let made: Decimal = found
            .iter()
            .flat_map(|c| &c.allocations)
            .filter(|a| a.invoice.as_ref().and_then(|inv| inv.invoice_id) == invoice)
            .filter_map(|a| a.amount)
            .sum();
        if made > Decimal::ZERO {
            job.record.allocated = Some(made);
            if let Some(s) = standing(standings, job) {
                s.credited_by(made);
            }
        }
        job.record.uncertain = false;
    }
    Ok(())
}

/// What of the credit note its invoice can take: all of it, or what the invoice still has due
/// when that is less. `Err` says why it stays unallocated; `Ok(None)`, there is nothing to do.
fn allocatable(job: &Job, standing: Option<&Standing>) -> Result<Option<(Uuid, Decimal)>, String> {
    let (Some(invoice), Some(standing)) = (job.xero_invoice(), standing) else { return Ok(None) };
    let Some(total) = job.record.total.filter(|t| *t > Decimal::ZERO) else { return Ok(None) };
    if job.record.xero_status != Some(InvoiceStatus::Authorised) || job.record.allocated.is_some() {
        return Ok(None);
    }
    let due = standing.state.map(|s| s.due);
    match standing.status {
        Some(InvoiceStatus::Draft | InvoiceStatus::Submitted) => {
            Err("the invoice is a draft in Xero, which takes no credit: the credit note is left unallocated".into())
        }
        Some(InvoiceStatus::Paid) => Err("the invoice is paid in full, so the credit stays with the customer".into()),
        Some(s) if s.is_gone() => Err("the invoice is voided in Xero, so the credit stays with the customer".into()),
        _ if due.is_some_and(|d| d <= Decimal::ZERO) => {
            Err("the invoice has nothing left due, so the credit stays with the customer".into())
        }
        // Without what is due, Xero checks the amount itself.
        _ => Ok(Some((invoice, due.map_or(total, |d| d.min(total))))),
    }
}

/// Allocates a written credit note to its invoice (its own call, on an AUTHORISED credit
/// note); a refusal leaves it unallocated with Xero's words, the credit note itself stands.
pub(super) async fn allocate(
    app: &App,
    connection: &Connection,
    standings: &mut Standings,
    job: &mut Job,
) -> Result<(), TokenError> {
    let Some(credit_note) = job.record.xero_credit_note_id else { return Ok(()) };
    let done = Some(Ok(CreditNoteOutcome::Synced { xero_credit_note_id: credit_note }));
    let target = allocatable(job, standing(standings, job).as_deref());
    let (invoice, amount) = match target {
        Ok(Some(target)) => target,
        Ok(None) => {
            if job.record.allocated.is_none() {
                job.record.reason = None;
            }
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
            job.record.allocated = Some(amount);
            let total = job.record.total.unwrap_or(amount);
            job.record.reason = (amount < total).then(|| {
                format!(
                    "the invoice had only {} left due: the other {} stays as credit with the customer",
                    amount.normalize(),
                    (total - amount).normalize()
                )
            });
            // Xero's own word on the invoice, when the answer carries it.
            let answered = answer.body.allocations.into_iter().next().and_then(|a| a.invoice);
            let state = answered.and_then(|i| i.payment_state()).as_deref().and_then(PaymentState::parse);
            if let Some(s) = standing(standings, job) {
                s.credited_by(amount);
                if let Some(state) = state {
                    (s.state, s.status) = (Some(state), Some(state.status));
                }
            }
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
