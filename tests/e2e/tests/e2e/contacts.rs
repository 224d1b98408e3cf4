//! Issue 6: finding the Xero contact for a platform customer, against the emulator's demo
//! organisation (Acme Plumbing Ltd C-1001, Bayside Property Management C-1002, Jane Citizen).

use invoice_push::contact::{Found, find_many};
use invoice_push::event::Customer;
use serde_json::json;
use xero_sync_domain::model::ContactMatch;

use crate::helpers::*;

fn customer(id: &str, name: &str, email: Option<&str>) -> Customer {
    serde_json::from_value(json!({ "id": id, "name": name, "email": email })).unwrap()
}

/// The contact Xero has for one customer, through the worker's lookup.
async fn find(
    app: &xero_sync_runtime::App,
    connection: &xero_sync_domain::model::Connection,
    customer: &Customer,
) -> Result<Option<uuid::Uuid>, xero_sync_runtime::token_provider::TokenError> {
    let mut found = find_many(&*app.services.store, &app.tokens, connection, &[customer], app.now()).await?;
    Ok(match found.remove(&customer.id) {
        Some(Found::Contact(id)) => Some(id),
        _ => None,
    })
}

fn contact_id(w: &World, name: &str) -> String {
    let contacts = w.emu.contacts(xero_emulator::demo::NZ_TENANT_ID);
    contacts.iter().find(|c| c["Name"] == name).unwrap()["ContactID"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_customer_is_found_by_number_then_email_then_name_in_one_call_and_remembered() {
    let w = World::new().await;
    w.connect_account("acct-contacts").await;
    let connection = w.connections("acct-contacts").await.remove(0);
    let app = &w.worker.app;
    let store = w.aws.store();

    for (customer, expected, matched_by) in [
        (customer("C-1001", "Acme (renamed in the platform)", None), "Acme Plumbing Ltd", ContactMatch::ContactNumber),
        (customer("cust-jane", "J. Citizen", Some("JANE@citizen.example")), "Jane Citizen", ContactMatch::Email),
        (customer("cust-bay", "Bayside Property Management", None), "Bayside Property Management", ContactMatch::Name),
    ] {
        w.emu.reset_counters();
        let found = find(app, &connection, &customer).await.unwrap();
        assert_eq!(found.map(|id| id.to_string()), Some(contact_id(&w, expected)), "{expected}");
        assert_eq!(w.emu.counters().total_calls(), 1, "one Xero call for {expected}");
        let mapping = store.get_contact_mapping(&connection.key(), &customer.id).await.unwrap().unwrap();
        assert_eq!(mapping.matched_by, matched_by);

        w.emu.reset_counters();
        assert_eq!(find(app, &connection, &customer).await.unwrap(), found);
        assert_eq!(w.emu.counters().total_calls(), 0, "the mapping answers next time");
    }
}

#[tokio::test]
async fn a_customer_xero_does_not_know_is_not_found_even_with_quotes_in_its_name() {
    let w = World::new().await;
    w.connect_account("acct-new-contact").await;
    let connection = w.connections("acct-new-contact").await.remove(0);
    let unknown = customer("cust-new", "The \"Best\" Plumbers", Some("new@best.example"));
    assert_eq!(find(&w.webhook.app, &connection, &unknown).await.unwrap(), None);
    assert!(w.aws.store().get_contact_mapping(&connection.key(), &unknown.id).await.unwrap().is_none());
}
