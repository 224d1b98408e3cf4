//! The customers' Xero calls: one lookup per ten customers, then one write for them all.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::model::{Connection, ContactMatch};
use xero_sync_domain::settings::CustomerConflicts;
use xero_sync_domain::xero::{Contact, Contacts, refusal_reasons};
use xero_sync_runtime::App;
use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::{ApiRequest, XeroError};

use super::{CustomerOutcome, Job, last_written};
use crate::contact::{Found, best, literal, where_clause};
use crate::event::Customer;
use crate::mapping::{ContactRef, contact_json, contact_number};
use crate::push::{PushError, idempotency_key, later_for};

/// How many customers one `where` query looks for, as the invoice push's lookup does.
const CUSTOMERS_PER_QUERY: usize = 10;

/// What the write left in Xero for one customer.
#[derive(Debug, Clone)]
pub(super) struct Written {
    pub(super) contact_id: Uuid,
    pub(super) matched_by: ContactMatch,
    /// The contact's UpdatedDateUTC as Xero answered our write; none when nothing was written.
    pub(super) updated_at: Option<DateTime<Utc>>,
}

/// What one customer needs from Xero, once its candidates are known.
enum Target {
    Update { id: Uuid, matched_by: ContactMatch, current: Box<Contact> },
    Create,
    Keep { id: Uuid, matched_by: ContactMatch, reason: String },
}

/// Looks up and writes every job still without a result.
pub(super) async fn to_xero(app: &App, connection: &Connection, rule: CustomerConflicts, jobs: &mut [Job]) {
    let pending: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].result.is_none()).collect();
    let mut writes: Vec<(usize, Value, ContactMatch)> = Vec::new();
    // Names given to contacts created or renamed by this write: Xero refuses a second one.
    let mut names_taken: HashSet<String> = HashSet::new();
    for chunk in pending.chunks(CUSTOMERS_PER_QUERY) {
        let candidates = match lookup(app, connection, jobs, chunk).await {
            Ok(found) => found,
            Err(e) => {
                for &i in chunk {
                    jobs[i].result = Some(failure(&e));
                }
                continue;
            }
        };
        for &i in chunk {
            let job = &mut jobs[i];
            match target(job, &candidates, rule) {
                Target::Keep { id, matched_by, reason } => {
                    job.written = Some(Written { contact_id: id, matched_by, updated_at: None });
                    job.result = Some(Ok(CustomerOutcome::KeptXero { xero_contact_id: id, reason }))
                }
                Target::Create => {
                    let c = &job.event.customer;
                    let taken = candidates.namesake(c, None) || !names_taken.insert(key(&c.name));
                    let element = contact_json(ContactRef::New { customer: c, distinct_name: taken });
                    if taken {
                        names_taken.insert(key(&crate::mapping::distinct_name(c)));
                    }
                    writes.push((i, element, ContactMatch::Created));
                }
                Target::Update { id, matched_by, current } => {
                    let c = &job.event.customer;
                    let taken = candidates.namesake(c, Some(id)) || names_taken.contains(&key(&c.name));
                    let mut element = contact_json(ContactRef::New { customer: c, distinct_name: taken });
                    element["ContactID"] = json!(id);
                    // Another system's number on a contact we adopted stays: it is how that
                    // system finds it. Ours is set only where there is none.
                    if current.contact_number.as_deref().is_some_and(|n| !n.is_empty() && n != contact_number(&c.id)) {
                        if let Some(m) = element.as_object_mut() {
                            m.remove("ContactNumber");
                        }
                    }
                    writes.push((i, element, matched_by));
                }
            }
        }
    }
    if writes.is_empty() {
        return;
    }
    let deliveries: Vec<&str> = writes.iter().map(|(i, ..)| jobs[*i].event.delivery_id.as_str()).collect();
    let elements: Vec<Value> = writes.iter().map(|(_, e, _)| e.clone()).collect();
    match send(app, connection, elements, &deliveries).await {
        Ok(answers) => {
            for ((i, _, matched_by), answer) in writes.into_iter().zip(answers) {
                jobs[i].result = Some(answered(&mut jobs[i], answer, matched_by));
            }
        }
        Err(e) => {
            for (i, ..) in writes {
                jobs[i].result = Some(failure(&e));
            }
        }
    }
}

fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The contacts a lookup found, and whose they are.
struct Candidates {
    contacts: Vec<Contact>,
    /// Contacts that stand for platform customers, and which.
    owners: HashMap<Uuid, xero_sync_domain::model::PlatformCustomerId>,
}

impl Candidates {
    /// Whether an active contact other than `except` carries the customer's name.
    fn namesake(&self, customer: &Customer, except: Option<Uuid>) -> bool {
        let name = key(&customer.name);
        self.contacts
            .iter()
            .filter(|c| c.is_active() && c.contact_id.is_some() && c.contact_id != except)
            .any(|c| c.name.as_deref().is_some_and(|n| key(n) == name))
    }
}

/// One `where` query for the customers `chunk`: each one's mapped contact by id, and the
/// contacts the invoice push would match it to (its number, email, name).
async fn lookup(app: &App, connection: &Connection, jobs: &[Job], chunk: &[usize]) -> Result<Candidates, TokenError> {
    let clause = chunk
        .iter()
        .map(|&i| {
            let job = &jobs[i];
            let mut terms = Vec::new();
            if let Some(m) = &job.mapping {
                terms.push(format!("ContactID==Guid({})", literal(&m.xero_contact_id.to_string())));
            }
            terms.push(where_clause(&job.event.customer));
            format!("({})", terms.join(" OR "))
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut request = ApiRequest::new("/Contacts");
    request.query = vec![("where", clause), ("page", "1".into())];
    let found: Contacts = app.tokens.get(connection, &request).await?.body;
    let ids: Vec<Uuid> = found.contacts.iter().filter_map(|c| c.contact_id).collect();
    let owners = if ids.is_empty() {
        HashMap::new()
    } else {
        app.services.store.customers_for_xero_ids(&connection.key(), &ids).await.map_err(TokenError::from)?
    };
    Ok(Candidates { contacts: found.contacts, owners })
}

/// Which contact the customer's details go to, or why they do not.
fn target(job: &Job, candidates: &Candidates, rule: CustomerConflicts) -> Target {
    let customer = &job.event.customer;
    let mapped = job.mapping.as_ref().and_then(|m| {
        let contact = candidates.contacts.iter().find(|c| c.contact_id == Some(m.xero_contact_id))?;
        Some((m, contact))
    });
    // A mapped contact Xero no longer lists (merged away, say) is looked for again as a new one.
    let (id, matched_by, contact, since) = match mapped {
        Some((m, contact)) => (m.xero_contact_id, m.matched_by, contact, last_written(m)),
        None => {
            let others: HashSet<Uuid> =
                candidates.owners.iter().filter(|(_, owner)| **owner != customer.id).map(|(id, _)| *id).collect();
            match best(&candidates.contacts, customer, &others) {
                Err(Found::Missing { .. } | Found::Contact(_)) => return Target::Create,
                Ok((id, matched_by)) => {
                    let Some(contact) = candidates.contacts.iter().find(|c| c.contact_id == Some(id)) else {
                        return Target::Create;
                    };
                    // Found by our own number: a create of ours whose answer was lost, not
                    // someone's contact.
                    let ours = matched_by == ContactMatch::ContactNumber;
                    (id, matched_by, contact, if ours { contact.updated } else { None })
                }
            }
        }
    };
    if !contact.is_active() {
        return Target::Keep { id, matched_by, reason: "the contact is archived in Xero".into() };
    }
    let edited_at = contact.updated.filter(|at| since.is_none_or(|since| at > &since));
    if let Some(at) = edited_at {
        if !rule.platform_prevails(job.event.occurred_at, at) {
            let why = match rule {
                CustomerConflicts::XeroWins => "the settings keep edits made in Xero",
                _ => "it was edited in Xero after the platform's change",
            };
            let at = xero_sync_domain::time::format(at);
            return Target::Keep { id, matched_by, reason: format!("the contact was edited in Xero at {at}; {why}") };
        }
    }
    Target::Update { id, matched_by, current: Box::new(contact.clone()) }
}

/// One `POST /Contacts` for creates and updates alike, answered element by element.
async fn send(
    app: &App,
    connection: &Connection,
    elements: Vec<Value>,
    deliveries: &[&str],
) -> Result<Vec<Contact>, TokenError> {
    let count = elements.len();
    let body = json!({ "Contacts": elements });
    let mut request = ApiRequest::new("/Contacts");
    request.query = vec![("summarizeErrors", "false".into())];
    request.idempotency_key = Some(idempotency_key(connection.tenant_id, "POST", &body, deliveries));
    let answer: Contacts = app.tokens.post(connection, &request, &body).await?.body;
    if answer.contacts.len() != count {
        return Err(TokenError::Xero(XeroError::Unreadable {
            what: "/Contacts".into(),
            reason: format!("{count} contacts sent, {} answered", answer.contacts.len()),
            maybe_applied: true,
        }));
    }
    Ok(answer.contacts)
}

/// One element of Xero's answer as the customer's outcome.
fn answered(job: &mut Job, answer: Contact, matched_by: ContactMatch) -> super::CustomerResult {
    if answer.is_refused() {
        let reasons = refusal_reasons(answer.validation_errors, "contact");
        // Someone took the name between our lookup and our write: the next look sees them.
        if reasons.iter().any(|r| r.contains("already assigned to another contact")) {
            return Err(PushError::later(
                "a contact of that name appeared meanwhile",
                std::time::Duration::from_secs(5),
            ));
        }
        return Ok(CustomerOutcome::Failed { reasons });
    }
    let Some(contact_id) = answer.contact_id else {
        return Err(PushError::later(
            "Xero answered a contact without its ContactID",
            std::time::Duration::from_secs(30),
        ));
    };
    job.written = Some(Written { contact_id, matched_by, updated_at: answer.updated });
    let created =
        matched_by == ContactMatch::Created && job.mapping.as_ref().is_none_or(|m| m.xero_contact_id != contact_id);
    Ok(match created {
        true => CustomerOutcome::Created { xero_contact_id: contact_id },
        false => CustomerOutcome::Updated { xero_contact_id: contact_id },
    })
}

/// A failed call as the outcome of every customer it was for: what Xero refuses for good fails
/// them, a lost grant parks them, the rest is tried again.
fn failure(e: &TokenError) -> super::CustomerResult {
    match e {
        TokenError::Reconnect | TokenError::Xero(XeroError::NotGranted) => Ok(CustomerOutcome::Parked),
        TokenError::Xero(XeroError::Validation { messages, .. }) => {
            Ok(CustomerOutcome::Failed { reasons: messages.clone() })
        }
        e => Err(later_for(e)),
    }
}
