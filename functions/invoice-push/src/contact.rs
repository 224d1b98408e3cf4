//! Which Xero contact stands for a platform customer, in at most one Xero call: the stored
//! mapping; else, from one `where` query, a contact whose ContactNumber is the customer's
//! number (see [`crate::mapping::contact_number`], as we set it on contacts we create), else one
//! with the customer's email, else one with exactly its name. Archived contacts are passed over:
//! Xero refuses invoices for them. A contact that already stands for another platform customer
//! (our mapping says so) is never matched by email or name: two customers may share an email
//! or a name, and each gets its own contact. When the one to create would share its name with
//! an active contact, it gets a distinct name, since Xero requires active names to be unique.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;
use xero_sync_domain::model::{Connection, ContactMapping, ContactMatch, PlatformCustomerId};
use xero_sync_domain::store::ContactMappingStore;
use xero_sync_domain::xero::{Contact, Contacts, Invoices};
use xero_sync_runtime::token_provider::{TokenError, TokenProvider};
use xero_sync_xero::ApiRequest;

use crate::event::Customer;
use crate::mapping::contact_number;

/// What Xero has for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Contact(Uuid),
    /// No contact stands for the customer; `name_taken` when an active one has its name.
    Missing {
        name_taken: bool,
    },
}

/// A string literal in Xero's `where` syntax, which doubles a quote to escape it (a backslash
/// is an ordinary character there).
pub fn literal(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// The `where` clause that finds every candidate in one call.
pub fn where_clause(customer: &Customer) -> String {
    let mut terms = vec![format!("ContactNumber=={}", literal(&contact_number(&customer.id)))];
    if let Some(email) = &customer.email {
        terms.push(format!("EmailAddress=={}", literal(email)));
    }
    terms.push(format!("Name=={}", literal(customer.name.trim())));
    terms.join(" OR ")
}

/// The best candidate for `customer`; `others` are contacts that stand for other customers.
pub(crate) fn best(
    candidates: &[Contact],
    customer: &Customer,
    others: &HashSet<Uuid>,
) -> Result<(Uuid, ContactMatch), Found> {
    let active: Vec<(Uuid, &Contact)> =
        candidates.iter().filter(|c| c.is_active()).filter_map(|c| Some((c.contact_id?, c))).collect();
    let number = contact_number(&customer.id);
    if let Some((id, _)) = active.iter().find(|(_, c)| c.contact_number.as_deref() == Some(number.as_str())) {
        return Ok((*id, ContactMatch::ContactNumber));
    }
    let free: Vec<&(Uuid, &Contact)> = active.iter().filter(|(id, _)| !others.contains(id)).collect();
    if let Some(email) = &customer.email {
        if let Some((id, _)) =
            free.iter().find(|(_, c)| c.email_address.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)))
        {
            return Ok((*id, ContactMatch::Email));
        }
    }
    let name = customer.name.trim();
    if let Some((id, _)) = free.iter().find(|(_, c)| c.name.as_deref() == Some(name)) {
        return Ok((*id, ContactMatch::Name));
    }
    let name_taken = active.iter().any(|(_, c)| c.name.as_deref().is_some_and(|n| n.trim().eq_ignore_ascii_case(name)));
    Err(Found::Missing { name_taken })
}

/// How many customers one `where` query looks for: keeps the URL well inside what Xero accepts.
const CUSTOMERS_PER_QUERY: usize = 10;

/// The contact to invoice for each customer, stored mappings first, then one Xero query per
/// ten customers that have none. What is found is remembered for next time; a customer Xero
/// does not have is [`Found::Missing`], and its details go with the invoice so that Xero
/// creates the contact with it.
pub async fn find_many(
    mappings: &dyn ContactMappingStore,
    tokens: &TokenProvider,
    connection: &Connection,
    customers: &[&Customer],
    now: DateTime<Utc>,
) -> Result<HashMap<PlatformCustomerId, Found>, TokenError> {
    let key = connection.key();
    let store = mappings;
    let mut found = HashMap::new();
    let mut unmapped: Vec<&Customer> = Vec::new();
    let lookups =
        futures::future::try_join_all(customers.iter().map(|c| store.get_contact_mapping(&key, &c.id))).await?;
    for (customer, mapping) in customers.iter().zip(lookups) {
        match mapping {
            Some(m) => {
                found.insert(customer.id.clone(), Found::Contact(m.xero_contact_id));
            }
            None if !found.contains_key(&customer.id) && !unmapped.iter().any(|u| u.id == customer.id) => {
                unmapped.push(customer)
            }
            None => {}
        }
    }
    for chunk in unmapped.chunks(CUSTOMERS_PER_QUERY) {
        let clause = chunk.iter().map(|c| format!("({})", where_clause(c))).collect::<Vec<_>>().join(" OR ");
        let mut request = ApiRequest::new("/Contacts");
        request.query = vec![("where", clause), ("page", "1".into())];
        let candidates: Contacts = tokens.get(connection, &request).await?.body;
        let ids: Vec<Uuid> = candidates.contacts.iter().filter_map(|c| c.contact_id).collect();
        let owners = if ids.is_empty() { HashMap::new() } else { store.customers_for_xero_ids(&key, &ids).await? };
        for customer in chunk {
            let others: HashSet<Uuid> =
                owners.iter().filter(|(_, owner)| **owner != customer.id).map(|(id, _)| *id).collect();
            let (id, matched_by) = match best(&candidates.contacts, customer, &others) {
                Ok(hit) => hit,
                Err(missing) => {
                    found.insert(customer.id.clone(), missing);
                    continue;
                }
            };
            let mapping = ContactMapping::new(customer.id.clone(), id, matched_by, now);
            // Remembering is a saving, not a must: another push may be writing the same mapping.
            if let Err(e) = store.put_contact_mapping(&key, &mapping).await {
                tracing::warn!(customer = %customer.id, error = %e, "contact mapping not kept");
            }
            found.insert(customer.id.clone(), Found::Contact(id));
        }
    }
    Ok(found)
}

/// The contacts the Xero invoices `ids` are made out to, in one read: for a credit note or a
/// refund that goes to its invoice's customer, when the invoice's record does not say.
pub async fn of_invoices(
    tokens: &TokenProvider,
    connection: &Connection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Uuid>, TokenError> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut request = ApiRequest::new("/Invoices");
    request.query = vec![("IDs", ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","))];
    let answer: Invoices = tokens.get(connection, &request).await?.body;
    Ok(answer.invoices.iter().filter_map(|i| Some((i.invoice_id?, i.contact.as_ref()?.contact_id?))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, name: &str, email: Option<&str>) -> Customer {
        serde_json::from_value(serde_json::json!({ "id": id, "name": name, "email": email })).unwrap()
    }

    fn contact(number: Option<&str>, name: &str, email: Option<&str>, status: &str) -> Contact {
        Contact {
            contact_id: Some(Uuid::new_v4()),
            name: Some(name.into()),
            contact_number: number.map(Into::into),
            email_address: email.map(Into::into),
            contact_status: Some(status.parse().unwrap()),
            ..Contact::default()
        }
    }

    #[test]
    fn quotes_in_values_are_doubled_as_xeros_where_syntax_escapes_them() {
        let c = customer("cust-1", "The \"Best\" Plumbers \\ Co", None);
        assert_eq!(where_clause(&c), r#"ContactNumber=="cust-1" OR Name=="The ""Best"" Plumbers \ Co""#);
    }

    #[test]
    fn number_beats_email_beats_name_and_archived_contacts_are_skipped() {
        let none = HashSet::new();
        let c = customer("cust-1", "Acme", Some("a@acme.example"));
        let by_name = contact(None, "Acme", None, "ACTIVE");
        let by_email = contact(None, "Other", Some("A@ACME.example"), "ACTIVE");
        let by_number = contact(Some("cust-1"), "Renamed", None, "ACTIVE");
        let archived = contact(Some("cust-1"), "Acme", Some("a@acme.example"), "ARCHIVED");
        assert_eq!(best(&[by_name, by_email, by_number], &c, &none).map(|(_, m)| m), Ok(ContactMatch::ContactNumber));
        let by_name = contact(None, "Acme", None, "ACTIVE");
        let by_email = contact(None, "Other", Some("A@ACME.example"), "ACTIVE");
        assert_eq!(best(&[by_name, by_email], &c, &none).map(|(_, m)| m), Ok(ContactMatch::Email));
        assert_eq!(best(&[archived], &c, &none), Err(Found::Missing { name_taken: false }));
    }

    #[test]
    fn a_contact_of_another_customer_is_never_matched_by_email_or_name() {
        let c = customer("cust-2", "John Smith", Some("office@smith.example"));
        let theirs = contact(Some("cust-1"), "John Smith", Some("office@smith.example"), "ACTIVE");
        let others = HashSet::from([theirs.contact_id.unwrap()]);
        assert_eq!(best(&[theirs], &c, &others), Err(Found::Missing { name_taken: true }));
        let mine = contact(Some("cust-2"), "John Smith (cust-2)", None, "ACTIVE");
        let id = mine.contact_id.unwrap();
        assert_eq!(best(&[mine], &c, &others), Ok((id, ContactMatch::ContactNumber)));
    }
}
