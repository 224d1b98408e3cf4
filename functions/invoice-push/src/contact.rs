//! Which Xero contact stands for a platform customer, in at most one Xero call: the stored
//! mapping; else, from one `where` query, a contact whose ContactNumber is the customer's id
//! (as we set it on contacts we create), else one with the customer's email, else one with
//! exactly its name. Archived contacts are passed over: Xero refuses invoices for them.

use std::collections::HashMap;

use serde::Deserialize;
use uuid::Uuid;
use xero_sync_core::App;
use xero_sync_core::model::{Connection, ContactMapping, ContactMatch, PlatformCustomerId};
use xero_sync_core::token_provider::TokenError;
use xero_sync_core::xero::ApiRequest;

use crate::event::Customer;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XeroContact {
    #[serde(rename = "ContactID")]
    contact_id: Uuid,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    contact_number: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
    #[serde(default)]
    contact_status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Contacts {
    #[serde(rename = "Contacts", default)]
    contacts: Vec<XeroContact>,
}

/// A string literal in Xero's `where` syntax.
fn literal(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `where` clause that finds every candidate in one call.
pub fn where_clause(customer: &Customer) -> String {
    let mut terms = vec![format!("ContactNumber=={}", literal(customer.id.as_str()))];
    if let Some(email) = &customer.email {
        terms.push(format!("EmailAddress=={}", literal(email)));
    }
    terms.push(format!("Name=={}", literal(customer.name.trim())));
    terms.join(" OR ")
}

fn best(candidates: &[XeroContact], customer: &Customer) -> Option<(Uuid, ContactMatch)> {
    let active: Vec<&XeroContact> =
        candidates.iter().filter(|c| c.contact_status.as_deref().is_none_or(|s| s == "ACTIVE")).collect();
    let by = |matches: &dyn Fn(&XeroContact) -> bool| active.iter().find(|c| matches(c)).map(|c| c.contact_id);
    if let Some(id) = by(&|c| c.contact_number.as_deref() == Some(customer.id.as_str())) {
        return Some((id, ContactMatch::ContactNumber));
    }
    if let Some(email) = &customer.email {
        if let Some(id) = by(&|c| c.email_address.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email))) {
            return Some((id, ContactMatch::Email));
        }
    }
    by(&|c| c.name.as_deref() == Some(customer.name.trim())).map(|id| (id, ContactMatch::Name))
}

/// How many customers one `where` query looks for: keeps the URL well inside what Xero accepts.
const CUSTOMERS_PER_QUERY: usize = 10;

/// The contact to invoice, remembered for next time; `None` when Xero has none, in which case
/// the invoice carries the customer's details and Xero creates the contact with it.
pub async fn find(app: &App, connection: &Connection, customer: &Customer) -> Result<Option<Uuid>, TokenError> {
    Ok(find_many(app, connection, &[customer]).await?.remove(&customer.id).flatten())
}

/// [`find`] for many customers: stored mappings first, then one Xero query per ten customers
/// that have none.
pub async fn find_many(
    app: &App,
    connection: &Connection,
    customers: &[&Customer],
) -> Result<HashMap<PlatformCustomerId, Option<Uuid>>, TokenError> {
    let key = connection.key();
    let store = &app.services.store;
    let mut found = HashMap::new();
    let mut unmapped: Vec<&Customer> = Vec::new();
    let lookups =
        futures::future::try_join_all(customers.iter().map(|c| store.get_contact_mapping(&key, &c.id))).await?;
    for (customer, mapping) in customers.iter().zip(lookups) {
        match mapping {
            Some(m) => {
                found.insert(customer.id.clone(), Some(m.xero_contact_id));
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
        let candidates: Contacts = app.tokens.get(connection, &request).await?.body;
        for customer in chunk {
            let Some((id, matched_by)) = best(&candidates.contacts, customer) else {
                found.insert(customer.id.clone(), None);
                continue;
            };
            let mapping = ContactMapping {
                customer_id: customer.id.clone(),
                xero_contact_id: id,
                matched_by,
                mapped_at: app.now(),
            };
            // Remembering is a saving, not a must: another push may be writing the same mapping.
            if let Err(e) = store.put_contact_mapping(&key, &mapping).await {
                tracing::warn!(customer = %customer.id, error = %e, "contact mapping not kept");
            }
            found.insert(customer.id.clone(), Some(id));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, name: &str, email: Option<&str>) -> Customer {
        serde_json::from_value(serde_json::json!({ "id": id, "name": name, "email": email })).unwrap()
    }

    fn contact(number: Option<&str>, name: &str, email: Option<&str>, status: &str) -> XeroContact {
        XeroContact {
            contact_id: Uuid::new_v4(),
            name: Some(name.into()),
            contact_number: number.map(Into::into),
            email_address: email.map(Into::into),
            contact_status: Some(status.into()),
        }
    }

    #[test]
    fn quotes_and_backslashes_in_values_are_escaped() {
        let c = customer("cust-1", "The \"Best\" Plumbers \\ Co", None);
        assert_eq!(where_clause(&c), r#"ContactNumber=="cust-1" OR Name=="The \"Best\" Plumbers \\ Co""#);
    }

    #[test]
    fn number_beats_email_beats_name_and_archived_contacts_are_skipped() {
        let c = customer("cust-1", "Acme", Some("a@acme.example"));
        let by_name = contact(None, "Acme", None, "ACTIVE");
        let by_email = contact(None, "Other", Some("A@ACME.example"), "ACTIVE");
        let by_number = contact(Some("cust-1"), "Renamed", None, "ACTIVE");
        let archived = contact(Some("cust-1"), "Acme", Some("a@acme.example"), "ARCHIVED");
        assert_eq!(best(&[by_name, by_email, by_number], &c).map(|(_, m)| m), Some(ContactMatch::ContactNumber));
        let by_name = contact(None, "Acme", None, "ACTIVE");
        let by_email = contact(None, "Other", Some("A@ACME.example"), "ACTIVE");
        assert_eq!(best(&[by_name, by_email], &c).map(|(_, m)| m), Some(ContactMatch::Email));
        assert_eq!(best(&[archived], &c), None);
    }
}
