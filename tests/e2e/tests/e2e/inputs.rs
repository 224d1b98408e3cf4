//! Issue 15, "inputs and secrets": what comes from outside is held to what every place it goes
//! can take, and nothing it carries is repeated into answers or logs.

use invoice_push::push::{Outcome, push};
use serde_json::json;
use xero_emulator::demo;
use xero_sync_domain::model::{PlatformInvoiceId, SyncStatus, TenantId};
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_domain::signing::{Signed, sign};
use xero_sync_testkit::apigw;

use crate::helpers::*;

fn nz() -> String {
    demo::NZ_TENANT_ID.to_string()
}

#[tokio::test]
async fn a_connect_link_works_once_and_for_fifteen_minutes_by_default() {
    let w = World::new().await;
    let link = w.valid_link("acct-once");
    let first = w.get_connect(&link).await;
    assert_eq!(first.status(), 302);
    // A double click gets the first click's answer: the same consent, only one can finish it.
    let double_click = w.get_connect(&link).await;
    assert_eq!((double_click.status(), location(&double_click)), (first.status(), location(&first)));
    w.emu.clock().advance(std::time::Duration::from_secs(31));
    let again = w.get_connect(&link).await;
    assert_eq!(again.status(), 401, "{}", body(&again));
    assert!(body(&again).contains("already been used"), "{}", body(&again));
    let upper =
        link.replace(&link[link.find("sig=").unwrap() + 4..], &link[link.find("sig=").unwrap() + 4..].to_uppercase());
    assert_ne!(upper, link);
    assert_eq!(w.get_connect(&upper).await.status(), 401, "another spelling of the signature is no new link");

    let in_twenty = w.link("acct-once", Some(RETURN_TO), None, w.now().timestamp() + 20 * 60);
    let long = w.get_connect(&in_twenty).await;
    assert_eq!(long.status(), 400);
    assert!(body(&long).contains("at most 15 minutes"), "{}", body(&long));
}

#[tokio::test]
async fn a_connect_link_with_a_malformed_email_is_refused() {
    let w = World::new().await;
    let expires = w.now().timestamp() + 600;
    for bad in ["a@b", "a@@b.example", "a b@c.example", "a@b..example", "@b.example", "a@-b.example", "a@b.example."] {
        let response = w.get_connect(&w.link("acct-mail", Some(RETURN_TO), Some(bad), expires)).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(body(&response).contains("email is not an email address"), "{bad}: {}", body(&response));
    }
    let good = w.link("acct-mail", Some(RETURN_TO), Some("first.last+xero@accounts.example.co.nz"), expires);
    assert_eq!(w.get_connect(&good).await.status(), 302);
}

#[tokio::test]
async fn an_address_ses_refuses_is_recorded_and_never_holds_up_the_push_or_its_activity() {
    let w = ready("acct-bounce", NewInvoiceStatus::Draft).await;
    let tenant = TenantId(demo::NZ_TENANT_ID);
    let good = event("acct-bounce", "dlv-bounce-0001", "inv-ok", "B-OK", new_customer("cust-ok", "Fine Ltd"));
    let mut bad = event("acct-bounce", "dlv-bounce-0002", "inv-bad", "B-BAD", new_customer("cust-bad", "Broken Ltd"));
    bad["invoice"]["lines"][1]["account_code"] = json!("999");
    let events = [good, bad].map(|e| serde_json::from_value::<invoice_push::event::InvoiceEvent>(e).unwrap());
    let before = w.connections("acct-bounce").await.remove(0).last_activity_at;
    w.emu.clock().advance(std::time::Duration::from_secs(60));

    // SES refuses every email of this process for good (its sender is not a verified identity).
    let refusing = w.new_app_with_unverified_sender();
    let results = push(&refusing, &w.worker.policy, tenant, events.to_vec()).await;
    assert!(matches!(results[0], Ok(Outcome::Created { .. })), "{results:?}");
    assert!(matches!(results[1], Ok(Outcome::Failed { .. })), "recorded and done, not handed back: {results:?}");
    let store = w.aws.store();
    let record = store.get_sync_record(&key("acct-bounce"), &PlatformInvoiceId::parse("inv-bad").unwrap()).await;
    let record = record.unwrap().unwrap();
    assert_eq!((record.status, record.untold), (SyncStatus::Failed, false));
    let connection = w.connections("acct-bounce").await.remove(0);
    assert!(connection.last_activity_at > before, "the push counts as activity");
    assert_eq!(events_of(&w.inbox, "invoice.sync_failed").await.len(), 1, "the platform is told");

    let listed = json(&w.api("GET", "/accounts/acct-bounce/connections").await);
    let email = &listed["connections"][0]["email"];
    assert_eq!(email["deliverable"], false, "{listed}");
    assert!(email["reason"].as_str().is_some_and(|r| r.contains("MessageRejected")), "{listed}");
    assert!(!listed.to_string().contains(OWNER), "the address itself is not shown");

    // A redelivery is not a retry of the email: the push is simply done.
    let again = push(&refusing, &w.worker.policy, tenant, vec![events[1].clone()]).await.remove(0);
    assert!(matches!(again, Ok(Outcome::Failed { .. })), "{again:?}");
}

#[tokio::test]
async fn a_webhook_body_too_large_for_the_queue_is_refused_with_413_naming_the_limit() {
    let w = ready("acct-big", NewInvoiceStatus::Draft).await;
    let stored = w.aws.item_count().await;
    let mut body = example_event("acct-big", "dlv-big-000001");
    let line = body["invoice"]["lines"][0].clone();
    body["invoice"]["lines"] = json!(
        (0..70)
            .map(|n| {
                let mut l = line.clone();
                l["description"] = json!(format!("{n} {}", "d".repeat(3990)));
                l
            })
            .collect::<Vec<_>>()
    );
    let text = body.to_string();
    assert!(text.len() > 256 * 1024 && text.len() < invoice_push::webhook::MAX_BODY * 4);
    let response = w.post_webhook(&text, None).await;
    assert_eq!(response.status(), 413, "{}", crate::helpers::body(&response));
    let limit = invoice_push::webhook::MAX_BODY.to_string();
    assert!(crate::helpers::body(&response).contains(&limit), "names the limit: {}", crate::helpers::body(&response));
    const { assert!(invoice_push::webhook::MAX_BODY <= 256 * 1024, "whatever is accepted fits a queue message") };
    assert!(w.queued_pushes().await.is_empty());
    assert_eq!(w.aws.item_count().await, stored, "nothing stored");
}

#[tokio::test]
async fn an_answer_about_bad_input_names_the_field_but_never_repeats_its_value() {
    let w = World::new().await;
    w.connect_account("acct-echo").await;
    let mut unknown_kind = example_event("acct-echo", "dlv-echo-000001");
    unknown_kind["event"] = json!("invoice.s3cr3t-marker");
    let mut wrong_type = example_event("acct-echo", "dlv-echo-000002");
    wrong_type["delivery_id"] = json!(98765432123u64);
    let mut bad_decimal = example_event("acct-echo", "dlv-echo-000003");
    bad_decimal["invoice"]["lines"][0]["quantity"] = json!("12.3.s3cr3t");
    let mut bad_date = example_event("acct-echo", "dlv-echo-000004");
    bad_date["invoice"]["issue_date"] = json!("s3cr3t-date");
    for (body, field, secret) in [
        (unknown_kind, "event", "s3cr3t-marker"),
        (wrong_type, "delivery_id", "98765432123"),
        (bad_decimal, "invoice.lines[0].quantity", "s3cr3t"),
        (bad_date, "invoice.issue_date", "s3cr3t"),
    ] {
        let response = w.post_webhook(&body.to_string(), None).await;
        assert_eq!(response.status(), 400, "{field}");
        let text = crate::helpers::body(&response);
        assert_eq!(json(&response)["problems"][0]["field"], field, "{text}");
        assert!(!text.contains(secret), "the value is repeated back: {text}");
    }
}

#[tokio::test]
async fn the_signed_path_is_the_decoded_one_and_an_id_with_a_space_is_refused_by_name() {
    let w = World::new().await;
    let link = w.link("acct@home", Some(RETURN_TO), None, w.now().timestamp() + 600);
    assert_eq!(w.get_callback(&w.consent(&link).await).await.status(), 302);
    let decoded = "/accounts/acct@home/connections";
    let signature =
        |signed: &str| sign(&w.platform, w.now(), &Signed::Api { method: "GET", path_and_query: signed, body: b"" });
    // Signed over the decoded path, however it is delivered: API Gateway's HTTP API hands
    // rawPath over decoded, a function URL or REST API as it was sent.
    let sent = "/accounts/acct%40home/connections";
    let header = signature(decoded);
    let headers = [("x-xerosync-signature", header.as_str())];
    for request in [apigw::request("GET", sent, &headers, None), apigw::request_undecoded("GET", sent, &headers, None)]
    {
        let response = connect::handle(&w.connect, request).await;
        assert_eq!(response.status(), 200, "{}", body(&response));
        assert_eq!(json(&response)["connections"][0]["tenant_id"], nz());
    }
    let header = signature(sent);
    let encoded_signature = apigw::request_undecoded("GET", sent, &[("x-xerosync-signature", header.as_str())], None);
    assert_eq!(
        connect::handle(&w.connect, encoded_signature).await.status(),
        401,
        "the encoded form is not what is signed"
    );

    let with_space = format!("/accounts/acct@home/connections/{}/invoices/inv 1", nz());
    let sent = format!("/accounts/acct@home/connections/{}/invoices/inv%201", nz());
    let response = w.invoice_api_signed_over("GET", &sent, &with_space).await;
    assert_eq!(response.status(), 400, "{}", body(&response));
    assert_eq!(json(&response)["problems"][0]["field"], "invoice");
}
