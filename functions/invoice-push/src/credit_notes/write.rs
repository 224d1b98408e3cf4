//! The Xero half of the credit note push, in rounds retried within the invocation: look up
//! uncertain creates, clear what Xero requires gone before an edit or a void, find contacts,
//! write, then allocate.

use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::model::Connection;
use xero_sync_domain::xero::{CreditNote, CreditNotes, refusal_reasons};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::ApiRequest;

use super::Job;
use super::allocate::{self, Standings};
use super::plan::{CreditNoteOutcome, Plan};
use crate::contact::{Found, find_many, of_invoices};
use crate::mapping::{ContactRef, contact_json};
use crate::push::{PushError, PushPolicy, RoundJob, Rounds, XERO_BATCH, maybe_applied};

impl RoundJob for Job {
    fn is_open(&self) -> bool {
        self.claimed && self.result.is_none() && self.plan.writes()
    }

    fn refuse(&mut self, reasons: Option<Vec<String>>) {
        self.result = Some(Ok(match reasons {
            None => CreditNoteOutcome::Parked,
            Some(reasons) => CreditNoteOutcome::Failed { reasons },
        }));
    }

    fn wait(&mut self, error: PushError) {
        self.result = Some(Err(error));
    }
}

pub(super) async fn to_xero(app: &App, policy: &PushPolicy, connection: &Connection, jobs: &mut [Job]) {
    let mut standings = Standings::new();
    let mut rounds = Rounds::default();
    while let Some(open) = rounds.next(jobs) {
        let round = once(app, connection, &mut standings, jobs, &open).await;
        if !rounds.after(policy, jobs, &open, round).await {
            break;
        }
    }
    allocate::settle_standings(jobs, &mut standings);
}

/// One round over the open jobs; each answered job gets its result.
async fn once(
    app: &App,
    connection: &Connection,
    standings: &mut Standings,
    jobs: &mut [Job],
    open: &[usize],
) -> Result<(), TokenError> {
    let pick = |jobs: &[Job], keep: &dyn Fn(&Job) -> bool| -> Vec<usize> {
        open.iter().copied().filter(|i| jobs[*i].result.is_none() && keep(&jobs[*i])).collect()
    };
    let lost = pick(jobs, &|j| j.record.uncertain && j.record.xero_credit_note_id.is_none());
    if !lost.is_empty() {
        look_up(app, connection, jobs, &lost).await?;
    }
    let to_clear = pick(jobs, &|j| j.record.xero_credit_note_id.is_some() && !j.cleared && j.written.is_none());
    if !to_clear.is_empty() {
        allocate::clear(app, connection, standings, jobs, &to_clear).await?;
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
        allocate::adopt(app, connection, standings, jobs, &recheck).await?;
    }
    for i in pick(jobs, &|j| j.written.is_some()) {
        allocate::allocate(app, connection, standings, &mut jobs[i]).await?;
    }
    Ok(())
}

pub(super) fn deliveries<'a>(jobs: &'a [Job], which: &[usize]) -> Vec<&'a str> {
    which.iter().map(|i| jobs[*i].event.delivery_id.as_str()).collect()
}

/// Credit notes by a `where` clause, with their allocations and payments (a numbered page
/// carries them).
pub(super) async fn list(
    app: &App,
    connection: &Connection,
    terms: Vec<String>,
) -> Result<Vec<CreditNote>, TokenError> {
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
            // Its create went through unseen: the platform hears of it as created.
            job.created_unseen = true;
        } else if matches!(job.plan, Plan::Void) {
            // It never reached Xero: there is nothing to take back.
            job.result = Some(Ok(CreditNoteOutcome::Voided { xero_credit_note_id: None }));
        }
        job.record.uncertain = false;
    }
    Ok(())
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
    let (which, elements): (Vec<usize>, Vec<Value>) = batch.into_iter().unzip();
    match super::send(app, connection, method, elements, &deliveries(jobs, &which)).await {
        Ok(answered) => {
            for (i, answered) in which.into_iter().zip(answered) {
                record_answer(&mut jobs[i], answered);
            }
            Ok(())
        }
        Err(e) => {
            if maybe_applied(&e) {
                for &i in &which {
                    jobs[i].record.uncertain = true;
                    // A void that may have gone through is read again rather than sent again.
                    jobs[i].cleared &= !matches!(jobs[i].plan, Plan::Void);
                }
            }
            Err(e)
        }
    }
}

fn record_answer(job: &mut Job, answered: CreditNote) {
    let Some(id) = answered.id().filter(|_| !answered.is_refused()) else {
        let reasons = refusal_reasons(answered.validation_errors, "credit note");
        job.result = Some(Ok(CreditNoteOutcome::Failed { reasons }));
        return;
    };
    let created = job.record.xero_credit_note_id.is_none() || job.created_unseen;
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
