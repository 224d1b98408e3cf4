//! The Xero half of the push: contacts found, uncertain creates looked up, creates and updates
//! written fifty at a time with idempotency keys, retried within the invocation.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xero_sync_domain::Error;
use xero_sync_domain::digest::hex;
use xero_sync_domain::model::{Connection, PlatformCustomerId, TenantId};
use xero_sync_domain::settings::ConnectionSettings;
use xero_sync_domain::store::SyncRecordStore;
use xero_sync_domain::xero::{Invoice, InvoiceStatus, Invoices, TrackingCategory, refusal_reasons};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::job::{ContactTarget, Job, Written, clone_error, later_for, maybe_applied};
use super::plan::{Outcome, Plan, PushError, PushPolicy};
use crate::contact::Found;
use crate::mapping::{ContactRef, InXero, to_xero, withdrawal};

/// Xero takes at most this many invoices in one request.
pub const XERO_BATCH: usize = 50;

/// An Idempotency-Key naming exactly this request for these deliveries: a retry of it gets
/// Xero's first answer replayed, while the same content sent again by a later delivery (a change
/// undone, say A → B → A) is a new request and is applied.
pub(crate) fn idempotency_key(tenant: TenantId, method: &str, body: &Value, deliveries: &[&str]) -> String {
    let mut digest = Sha256::new()
        .chain_update(tenant.to_string())
        .chain_update(b"|")
        .chain_update(method)
        .chain_update(b"|")
        .chain_update(body.to_string());
    for delivery in deliveries {
        digest.update(b"|");
        digest.update(delivery.as_bytes());
    }
    format!("xero-sync-{}", hex(&digest.finalize()))
}

/// What each invoice is mapped with: the connection's settings and Xero's tracking categories.
#[derive(Clone, Copy)]
pub(super) struct Mapping<'a> {
    pub(super) settings: &'a ConnectionSettings,
    pub(super) tracking: &'a [TrackingCategory],
    /// Item codes we pushed that Xero has: lines naming one carry it.
    pub(super) items: &'a std::collections::HashSet<String>,
}

/// Contacts, lookups and writes for every claimed job; every outcome becomes the job's
/// result. Xero refusing the grant midway leaves the jobs not yet written `Parked`.
pub(super) async fn write_to_xero(
    app: &App,
    policy: &PushPolicy,
    connection: &Connection,
    mapping: Mapping<'_>,
    jobs: &mut [Job],
) {
    let writes: Vec<usize> = (0..jobs.len()).filter(|i| matches!(jobs[*i].plan, Plan::Write { .. })).collect();
    if !writes.is_empty() {
        let customers: Vec<&crate::event::Customer> = writes.iter().map(|i| &jobs[*i].event.customer).collect();
        let found =
            match crate::contact::find_many(&*app.services.store, &app.tokens, connection, &customers, app.now()).await
            {
                Ok(found) => found,
                Err(TokenError::Reconnect) => return park_open(jobs),
                Err(e) if e.is_retryable() => {
                    let error = later_for(&e);
                    for i in writes {
                        jobs[i].result = Some(Err(clone_error(&error)));
                    }
                    return;
                }
                // A lookup Xero will never answer (a query it refuses): the customers' details go
                // with the invoices, and Xero matches them by number or name, or creates them.
                Err(e) => {
                    tracing::warn!(error = %e, "contact lookup refused; sending the customers' details instead");
                    Default::default()
                }
            };
        // Two new customers of one name in one request: Xero would give the second the first
        // one's contact, so the second is created under a distinct name too.
        let mut new_names: HashMap<String, PlatformCustomerId> = HashMap::new();
        for i in &writes {
            let customer = &jobs[*i].event.customer;
            jobs[*i].contact = Some(match found.get(&customer.id) {
                Some(Found::Contact(id)) => ContactTarget::Existing(*id),
                missing => {
                    let name_taken = matches!(missing, Some(Found::Missing { name_taken: true }));
                    let first =
                        new_names.entry(customer.name.trim().to_lowercase()).or_insert_with(|| customer.id.clone());
                    ContactTarget::New { distinct_name: name_taken || *first != customer.id }
                }
            });
        }
    }
    let pending: Vec<usize> = (0..jobs.len())
        .filter(|i| jobs[*i].result.is_none() && matches!(jobs[*i].plan, Plan::Write { .. } | Plan::Void))
        .collect();
    for chunk in pending.chunks(XERO_BATCH) {
        if write_chunk(app, policy, connection, mapping, jobs, chunk).await.is_err() {
            return park_open(jobs);
        }
    }
}

/// Every job still waiting for Xero waits for the reconnection instead.
pub(super) fn park_open(jobs: &mut [Job]) {
    for job in jobs.iter_mut() {
        if job.result.is_none() && matches!(job.plan, Plan::Write { .. } | Plan::Void) {
            job.result = Some(Ok(Outcome::Parked));
        }
    }
}

/// Makes sure each open job's claim outlasts the next Xero round (lookup and two writes, each
/// up to the timeout), extending it when it would not: a claim that ran out while we waited
/// could let a redelivery write at the same time. A claim lost to another pusher ends the job.
pub(super) async fn keep_claims(
    records: &dyn SyncRecordStore,
    xero_timeout: StdDuration,
    now: DateTime<Utc>,
    policy: &PushPolicy,
    jobs: &mut [Job],
    open: &[usize],
) -> Result<(), Error> {
    let timeout = Duration::from_std(xero_timeout).unwrap_or(Duration::seconds(30));
    let needed = timeout * 3 + Duration::seconds(10);
    for &i in open {
        let job = &mut jobs[i];
        if job.record.claimed_until.is_some_and(|until| until - now > needed) {
            continue;
        }
        let mut renewed = job.record.clone();
        renewed.claimed_until = Some(now + policy.claim_for.max(needed * 2));
        match records.save_sync_record(&renewed).await {
            Ok(saved) => job.record = saved,
            Err(Error::Conflict(_)) => {
                job.claimed = false;
                job.result = Some(Err(PushError::later("another push took this invoice over", policy.busy_retry)));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes one chunk, retrying what may succeed later; `Err` only when Xero refused the grant.
pub(super) async fn write_chunk(
    app: &App,
    policy: &PushPolicy,
    connection: &Connection,
    mapping: Mapping<'_>,
    jobs: &mut [Job],
    chunk: &[usize],
) -> Result<(), TokenError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let open: Vec<usize> = chunk.iter().copied().filter(|i| jobs[*i].result.is_none()).collect();
        let timeout = app.xero.config().request_timeout;
        if let Err(e) = keep_claims(&*app.services.store, timeout, app.now(), policy, jobs, &open).await {
            for &i in &open {
                jobs[i].result = Some(Err(PushError::later(e.to_string(), StdDuration::from_secs(5))));
            }
            return Ok(());
        }
        let open: Vec<usize> = open.into_iter().filter(|i| jobs[*i].result.is_none()).collect();
        if open.is_empty() {
            return Ok(());
        }
        let Err(e) = write_once(app, connection, mapping, jobs, &open).await else { continue };
        let still_open: Vec<usize> = open.iter().copied().filter(|i| jobs[*i].result.is_none()).collect();
        let refused = match &e {
            TokenError::Reconnect => return Err(TokenError::Reconnect),
            // Xero's own refusal of the request: what the account must change.
            TokenError::Xero(XeroError::Validation { messages, .. }) => Some(messages.clone()),
            TokenError::Xero(XeroError::Forbidden(_) | XeroError::NotFound(_)) => Some(vec![e.to_string()]),
            _ => None,
        };
        if let Some(reasons) = refused {
            for i in still_open {
                jobs[i].result = Some(Ok(Outcome::Failed { reasons: reasons.clone() }));
            }
            return Ok(());
        }
        let wait = e.retry_after().unwrap_or_else(|| policy.backoff * 2u32.saturating_pow(attempt - 1));
        // The governor has waited all it should here already.
        let governed = matches!(e, TokenError::Governed { .. });
        if governed || !e.is_retryable() || attempt >= policy.attempts || wait > policy.max_wait {
            tracing::info!(error = %e, attempt, "Xero write deferred to the queue");
            let after = if e.is_retryable() { wait } else { StdDuration::from_secs(30) };
            for i in still_open {
                jobs[i].result = Some(Err(PushError::waiting(&e, after.max(StdDuration::from_secs(1)))));
            }
            return Ok(());
        }
        tracing::info!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "Xero write retried");
        tokio::time::sleep(wait).await;
    }
}

/// One round: look up uncertain creates, then one PUT of creates and one POST of updates.
/// Jobs that got an answer have their result set; on an error the rest stay open, marked
/// uncertain if the error leaves the write's fate unknown.
pub(super) async fn write_once(
    app: &App,
    connection: &Connection,
    mapping: Mapping<'_>,
    jobs: &mut [Job],
    open: &[usize],
) -> Result<(), TokenError> {
    let uncertain_creates: Vec<usize> = open
        .iter()
        .copied()
        .filter(|i| jobs[*i].record.uncertain && jobs[*i].record.xero_invoice_id.is_none())
        .collect();
    if !uncertain_creates.is_empty() {
        look_up_by_number(app, connection, jobs, &uncertain_creates).await?;
    }
    let (mut creates, mut updates) = (Vec::new(), Vec::new());
    for &i in open {
        let job = &jobs[i];
        match (&job.plan, job.record.xero_invoice_id) {
            (Plan::Void, None) => {
                // Never reached Xero (and, if it was uncertain, the lookup found nothing).
                jobs[i].result = Some(Ok(Outcome::Voided { xero_invoice_id: None }));
            }
            (Plan::Void, Some(id)) => {
                updates.push((i, withdrawal(InXero { id, status: job.record.xero_status })));
            }
            (Plan::Write { .. }, existing) => {
                let contact = match job.contact {
                    Some(ContactTarget::Existing(id)) => ContactRef::Existing(id),
                    Some(ContactTarget::New { distinct_name }) => {
                        ContactRef::New { customer: &job.event.customer, distinct_name }
                    }
                    None => ContactRef::new(&job.event.customer),
                };
                let existing = existing.map(|id| InXero { id, status: job.record.xero_status });
                let body =
                    to_xero(&job.event, mapping.settings, mapping.tracking, contact, existing).map(|mut body| {
                        crate::mapping::carry_item_codes(&mut body, &job.event.invoice.lines, mapping.items);
                        body
                    });
                match body {
                    Ok(body) if existing.is_some() => updates.push((i, body)),
                    Ok(body) => creates.push((i, body)),
                    // The planner mapped the same event with the same settings, so this is not
                    // reached; if it were, the account is told what to fix.
                    Err(problems) => {
                        let reasons = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
                        jobs[i].result = Some(Ok(Outcome::Failed { reasons }));
                    }
                }
            }
            (Plan::Done(_) | Plan::Fail { .. } | Plan::Retell, _) => {}
        }
    }
    for (method, batch) in [("PUT", creates), ("POST", updates)] {
        if batch.is_empty() {
            continue;
        }
        let body = json!({ "Invoices": batch.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>() });
        let mut request = ApiRequest::new("/Invoices");
        // Per-invoice results, and unit prices kept to the four places the platform may send.
        request.query = vec![("summarizeErrors", "false".into()), ("unitdp", "4".into())];
        let deliveries: Vec<&str> = batch.iter().map(|(i, _)| jobs[*i].event.delivery_id.as_str()).collect();
        request.idempotency_key = Some(idempotency_key(connection.tenant_id, method, &body, &deliveries));
        let response: Result<Invoices, TokenError> = if method == "PUT" {
            app.tokens.put(connection, &request, &body).await.map(|r| r.body)
        } else {
            app.tokens.post(connection, &request, &body).await.map(|r| r.body)
        };
        let answer = match response {
            Ok(answer) => answer,
            Err(e) => {
                if maybe_applied(&e) {
                    for (i, _) in &batch {
                        jobs[*i].record.uncertain = true;
                    }
                }
                return Err(e);
            }
        };
        if answer.invoices.len() != batch.len() {
            let e = XeroError::Unexpected(format!("{} invoices sent, {} answered", batch.len(), answer.invoices.len()));
            for (i, _) in &batch {
                jobs[*i].record.uncertain = true;
            }
            return Err(TokenError::Xero(e));
        }
        for ((i, _), answered) in batch.iter().zip(answer.invoices) {
            record_answer(&mut jobs[*i], answered, method == "PUT");
        }
    }
    Ok(())
}

pub(super) fn record_answer(job: &mut Job, answered: Invoice, created: bool) {
    match answered.id() {
        Some(id) if !answered.is_refused() => {
            let untouched = answered.amount_paid.is_some_and(|p| p.is_zero())
                && answered.amount_credited.is_none_or(|c| c.is_zero());
            job.written = Some(Written {
                xero_invoice_id: id,
                xero_status: answered.status,
                payment_state: answered.payment_state().filter(|_| untouched),
                contact_id: answered.contact.and_then(|c| c.contact_id),
            });
            job.result = Some(Ok(match (&job.plan, created) {
                (Plan::Void, _) => Outcome::Voided { xero_invoice_id: Some(id) },
                (_, true) => Outcome::Created { xero_invoice_id: id },
                (_, false) => Outcome::Updated { xero_invoice_id: id },
            }));
        }
        _ => {
            let reasons = refusal_reasons(answered.validation_errors, "invoice");
            job.result = Some(Ok(Outcome::Failed { reasons }));
        }
    }
}

/// After an unknown outcome, whether Xero has the invoice after all: one query for the chunk.
pub(super) async fn look_up_by_number(
    app: &App,
    connection: &Connection,
    jobs: &mut [Job],
    which: &[usize],
) -> Result<(), TokenError> {
    let numbers: Vec<String> = which.iter().map(|i| jobs[*i].event.invoice.number.trim().to_owned()).collect();
    // InvoiceNumbers= is split on commas, so a number holding one is asked for by `where`.
    let (plain, with_commas): (Vec<&String>, Vec<&String>) = numbers.iter().partition(|n| !n.contains(','));
    let mut found = Invoices::default();
    if !plain.is_empty() {
        let mut request = ApiRequest::new("/Invoices");
        let joined = plain.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(",");
        request.query = vec![("InvoiceNumbers", joined), ("page", "1".into()), ("summaryOnly", "true".into())];
        found.invoices.extend(app.tokens.get::<Invoices>(connection, &request).await?.body.invoices);
    }
    if !with_commas.is_empty() {
        let terms: Vec<String> =
            with_commas.iter().map(|n| format!("InvoiceNumber=={}", crate::contact::literal(n))).collect();
        let mut request = ApiRequest::new("/Invoices");
        request.query = vec![
            ("where", format!("Type==\"ACCREC\" AND ({})", terms.join(" OR "))),
            ("page", "1".into()),
            ("summaryOnly", "true".into()),
        ];
        found.invoices.extend(app.tokens.get::<Invoices>(connection, &request).await?.body.invoices);
    }
    for &i in which {
        let number = jobs[i].event.invoice.number.trim().to_owned();
        let hit = found.invoices.iter().find(|x| {
            x.is_sales()
                && x.invoice_number.as_deref() == Some(number.as_str())
                && !x.status.is_some_and(InvoiceStatus::is_gone)
        });
        let job = &mut jobs[i];
        if let Some(hit) = hit {
            job.record.xero_invoice_id = hit.id();
            job.record.xero_status = hit.status;
        }
        // Looked: whatever the next write does, it does knowingly.
        job.record.uncertain = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use uuid::Uuid;
    use xero_sync_domain::model::{ConnectionKey, SyncRecord};

    #[test]
    fn idempotency_keys_name_the_request_and_its_deliveries_and_fit_xero_limit() {
        let tenant = TenantId(Uuid::nil());
        let body = |n: &str| json!({ "Invoices": [{ "InvoiceNumber": n }] });
        let a = idempotency_key(tenant, "PUT", &body("INV-1"), &["d1"]);
        assert_eq!(a, idempotency_key(tenant, "PUT", &body("INV-1"), &["d1"]), "a retry replays");
        assert_ne!(a, idempotency_key(tenant, "POST", &body("INV-1"), &["d1"]));
        assert_ne!(a, idempotency_key(tenant, "PUT", &body("INV-2"), &["d1"]));
        assert_ne!(a, idempotency_key(tenant, "PUT", &body("INV-1"), &["d3"]), "A -> B -> A is applied");
        assert!(a.len() <= 128);
    }

    #[test]
    fn a_failed_answer_keeps_xero_messages() {
        let answered: Invoice = serde_json::from_value(json!({
            "InvoiceID": "00000000-0000-0000-0000-000000000000",
            "StatusAttributeString": "ERROR",
            "ValidationErrors": [{ "Message": "Account code '999' is not a valid code for this document." }]
        }))
        .unwrap();
        let event = crate::event::example();
        let key = ConnectionKey { account_id: event.account_id.clone(), tenant_id: TenantId(Uuid::nil()) };
        let record = SyncRecord::new(&key, event.invoice.id.clone(), "INV-1", Utc::now());
        let mut job =
            Job { event, record, plan: Plan::Void, contact: None, result: None, written: None, claimed: false };
        record_answer(&mut job, answered, true);
        assert_eq!(
            job.result.unwrap().unwrap(),
            Outcome::Failed { reasons: vec!["Account code '999' is not a valid code for this document.".into()] }
        );
    }
}
