//! Issue 19, which contacts come back: all of them, everyone but suppliers, or the members of
//! chosen contact groups, as the settings say.

use std::time::Duration;

use scheduled_import::import::{ImportPolicy, import};
use serde_json::{Value, json};
use xero_emulator::demo;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_xero::ApiRequest;

use crate::helpers::*;

async fn run_import(w: &World, account: &str) {
    import(&w.importer.app, &ImportPolicy::default(), &key(account)).await.unwrap();
}

fn names(events: &[Value]) -> Vec<String> {
    let mut names: Vec<String> =
        events.iter().map(|e| e["detail"]["data"]["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

/// A bill from a new contact makes it a supplier in Xero, as Xero's read-only IsSupplier says.
async fn a_supplier(w: &World, account: &str, name: &str) {
    let connection = w.connections(account).await.remove(0);
    let bill = json!({ "Invoices": [{ "Type": "ACCPAY", "Contact": { "Name": name }, "Date": "2026-11-20",
        "DueDate": "2026-12-20", "LineAmountTypes": "Exclusive",
        "LineItems": [{ "Description": "Copper pipe, 50 m", "Quantity": 1, "UnitAmount": 300, "AccountCode": "400" }] }] });
    w.worker.app.tokens.put::<_, Value>(&connection, &ApiRequest::new("/Invoices"), &bill).await.unwrap();
}

async fn put_settings(w: &World, account: &str, change: impl Fn(&mut Value)) -> (u16, Value) {
    let path = format!("/accounts/{account}/connections/{}/settings", demo::NZ_TENANT_ID);
    let current = json(&w.api("GET", &path).await);
    let mut settings = current["settings"].clone();
    change(&mut settings);
    let body = json!({ "version": current["version"], "settings": settings });
    let response = w.api_json("PUT", &path, &body.to_string()).await;
    (response.status().as_u16(), json(&response))
}

#[tokio::test]
async fn a_customers_only_import_leaves_suppliers_out_but_not_new_customers_without_invoices() {
    let account = "acct-back-customers";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    a_supplier(&w, account, "Pipe Wholesale Ltd").await;
    let (status, saved) = put_settings(&w, account, |s| s["contacts_sent_back"] = json!("customers")).await;
    assert_eq!(status, 200, "{saved}");

    run_import(&w, account).await;
    let sent = names(&events_of(&w.inbox, "contact.upserted").await);
    assert!(!sent.contains(&"Pipe Wholesale Ltd".to_owned()), "a supplier stays out: {sent:?}");
    assert!(sent.contains(&"Jane Citizen".to_owned()), "no sales invoice yet, still a customer: {sent:?}");
    assert!(sent.contains(&"Acme Plumbing Ltd".to_owned()));

    // Back to everyone: what was left out is not sent now, only what changes from here on.
    let (status, _) = put_settings(&w, account, |s| s["contacts_sent_back"] = json!("all")).await;
    assert_eq!(status, 200);
    w.emu.clock().advance(Duration::from_secs(120));
    run_import(&w, account).await;
    assert!(events_of(&w.inbox, "contact.upserted").await.is_empty(), "changing the choice re-sends nothing");
}

#[tokio::test]
async fn with_groups_only_members_come_back_read_one_call_a_group_and_the_choice_is_checked_against_xero() {
    let account = "acct-back-groups";
    let w = ready(account, NewInvoiceStatus::Authorised).await;
    let connection = w.connections(account).await.remove(0);
    let tokens = &w.worker.app.tokens;
    let created: Value = tokens
        .put(&connection, &ApiRequest::new("/ContactGroups"), &json!({ "ContactGroups": [{ "Name": "Residential" }] }))
        .await
        .unwrap()
        .body;
    let group = created["ContactGroups"][0]["ContactGroupID"].as_str().unwrap().to_owned();
    let jane = w.emu.contacts(demo::NZ_TENANT_ID).into_iter().find(|c| c["Name"] == "Jane Citizen").unwrap();
    let path = format!("/ContactGroups/{group}/Contacts");
    let add = json!({ "Contacts": [{ "ContactID": jane["ContactID"] }] });
    tokens.put::<_, Value>(&connection, &ApiRequest::new(&path), &add).await.unwrap();

    let options = json(&w.api("GET", &format!("/accounts/{account}/connections/{}/options", demo::NZ_TENANT_ID)).await);
    assert_eq!(options["contact_groups"], json!([{ "id": group, "name": "Residential" }]), "{options}");

    let unknown = uuid::Uuid::new_v4();
    let (status, refused) = put_settings(&w, account, |s| {
        s["contacts_sent_back"] = json!("groups");
        s["contact_groups"] = json!([unknown]);
    })
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["problems"][0]["field"], "contact_groups[0]");
    let (status, _) = put_settings(&w, account, |s| {
        s["contacts_sent_back"] = json!("groups");
        s["contact_groups"] = json!([group]);
    })
    .await;
    assert_eq!(status, 200);

    w.emu.reset_counters();
    run_import(&w, account).await;
    assert_eq!(names(&events_of(&w.inbox, "contact.upserted").await), ["Jane Citizen"]);
    assert_eq!(w.emu.counters().calls_to("GET", "/api.xro/2.0/contactgroups/{id}"), 1, "one call a group");

    // Both change in Xero; within the day the members are not read again.
    w.emu.clock().advance(Duration::from_secs(120));
    for contact in w.emu.contacts(demo::NZ_TENANT_ID).into_iter().filter(|c| c["Name"] != "Bayside Property Management")
    {
        let edit = json!({ "Contacts": [{ "ContactID": contact["ContactID"], "Website": "https://example.com" }] });
        tokens.post::<_, Value>(&connection, &ApiRequest::new("/Contacts"), &edit).await.unwrap();
    }
    w.emu.clock().advance(Duration::from_secs(120));
    w.emu.reset_counters();
    run_import(&w, account).await;
    assert_eq!(names(&events_of(&w.inbox, "contact.upserted").await), ["Jane Citizen"]);
    assert_eq!(w.emu.counters().calls_to("GET", "/api.xro/2.0/contactgroups/{id}"), 0);
}
