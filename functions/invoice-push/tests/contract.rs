//! The documented contract (docs/contracts/invoice-webhook.schema.json) and the parser agree.

use invoice_push::event::parse;
use serde_json::{Value, json};

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo("docs/contracts/invoice-webhook.schema.json")).unwrap();
    jsonschema::options().should_validate_formats(true).build(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn example() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo("docs/contracts/examples/invoice-created.json")).unwrap())
        .unwrap()
}

#[test]
fn the_documented_example_is_valid_for_the_schema_and_the_parser() {
    let example = example();
    let errors: Vec<String> = schema().iter_errors(&example).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let event = parse(example.to_string().as_bytes()).unwrap();
    assert!(event.problems().is_empty(), "{:?}", event.problems());
    assert_eq!(event.invoice.lines[1].quantity.to_string(), "3.5");
}

/// A way to break the example, and what it is called.
type Breakage = (&'static str, Box<dyn Fn(&mut Value)>);

/// Each breakage of `example` is refused by the schema and by the parser (`refused`).
fn refused_alike(
    schema: &jsonschema::Validator,
    example: impl Fn() -> Value,
    broken: Vec<Breakage>,
    refused: impl Fn(&[u8]) -> bool,
) {
    for (what, break_it) in broken {
        let mut payload = example();
        break_it(&mut payload);
        assert!(!schema.is_valid(&payload), "the schema accepts {what}");
        assert!(refused(payload.to_string().as_bytes()), "the parser accepts {what}");
    }
}

#[test]
fn the_schema_and_the_parser_refuse_the_same_broken_payloads() {
    let schema = schema();
    let broken: Vec<Breakage> = vec![
        ("no delivery id", Box::new(|v| drop(v.as_object_mut().unwrap().remove("delivery_id")))),
        ("an unknown event", Box::new(|v| v["event"] = json!("invoice.paid"))),
        ("a lowercase currency", Box::new(|v| v["invoice"]["currency"] = json!("nzd"))),
        ("no lines", Box::new(|v| v["invoice"]["lines"] = json!([]))),
        ("a quantity that is not a number", Box::new(|v| v["invoice"]["lines"][0]["quantity"] = json!("two"))),
        ("an unknown field", Box::new(|v| v["invoice"]["colour"] = json!("red"))),
        ("a blank customer id", Box::new(|v| v["customer"]["id"] = json!(""))),
        ("an unknown amounts_are", Box::new(|v| v["invoice"]["amounts_are"] = json!("gross"))),
        ("a bad date", Box::new(|v| v["invoice"]["issue_date"] = json!("21/11/2026"))),
        ("a bad tenant id", Box::new(|v| v["xero_tenant_id"] = json!("not-a-uuid"))),
        ("a negative sequence", Box::new(|v| v["sequence"] = json!(-1))),
        ("a sequence that is not a whole number", Box::new(|v| v["sequence"] = json!(1.5))),
        (
            "a postal code longer than Xero takes",
            Box::new(|v| v["customer"]["addresses"][0]["postal_code"] = json!("9".repeat(51))),
        ),
    ];
    refused_alike(&schema, example, broken, |body| match parse(body) {
        Err(_) => true,
        Ok(event) => !event.problems().is_empty(),
    });
}

#[test]
fn semantic_problems_are_all_named() {
    let mut payload = example();
    payload["invoice"]["due_date"] = json!("2026-11-01");
    payload["invoice"]["lines"][0]["unit_price"] = json!("1.23456");
    payload["invoice"]["lines"][1]["discount_rate"] = json!(120);
    payload["customer"]["email"] = json!("not an email");
    let event = parse(payload.to_string().as_bytes()).unwrap();
    let fields: Vec<String> = event.problems().into_iter().map(|p| p.field).collect();
    assert_eq!(
        fields,
        vec!["invoice.due_date", "invoice.lines[0].unit_price", "invoice.lines[1].discount_rate", "customer.email"]
    );
}

mod payments {
    use invoice_push::payment_event::parse;
    use serde_json::{Value, json};

    use super::{Breakage, repo};

    fn schema() -> jsonschema::Validator {
        let text = std::fs::read_to_string(repo("docs/contracts/payment-webhook.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn example(name: &str) -> Value {
        let path = repo(&format!("docs/contracts/examples/{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_documented_payment_examples_are_valid_for_the_schema_and_the_parser() {
        for name in ["payment-created", "payment-voided", "payment-refunded"] {
            let example = example(name);
            let errors: Vec<String> = schema().iter_errors(&example).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: {errors:?}");
            let event = parse(example.to_string().as_bytes()).unwrap();
            assert!(event.problems().is_empty(), "{name}: {:?}", event.problems());
        }
        let created = parse(example("payment-created").to_string().as_bytes()).unwrap();
        assert_eq!(created.payment.amount.unwrap().to_string(), "154.17");
        let refunded = parse(example("payment-refunded").to_string().as_bytes()).unwrap();
        assert_eq!(refunded.event, invoice_push::payment_event::PaymentEventType::Refunded);
        assert_eq!(refunded.payment.amount.unwrap().to_string(), "40.00");
    }

    #[test]
    fn the_schema_and_the_parser_refuse_the_same_broken_payments() {
        let schema = schema();
        let broken: Vec<Breakage> = vec![
            ("no payment id", Box::new(|v| drop(v["payment"].as_object_mut().unwrap().remove("id")))),
            ("no invoice id", Box::new(|v| drop(v["payment"].as_object_mut().unwrap().remove("invoice_id")))),
            (
                "a created payment without an amount",
                Box::new(|v| drop(v["payment"].as_object_mut().unwrap().remove("amount"))),
            ),
            (
                "a created payment without a method",
                Box::new(|v| drop(v["payment"].as_object_mut().unwrap().remove("method"))),
            ),
            ("an unknown method", Box::new(|v| v["payment"]["method"] = json!("barter"))),
            ("a zero amount", Box::new(|v| v["payment"]["amount"] = json!("0.00"))),
            ("a negative amount", Box::new(|v| v["payment"]["amount"] = json!(-5))),
            ("fractions of a cent", Box::new(|v| v["payment"]["amount"] = json!("10.005"))),
            ("a lowercase currency", Box::new(|v| v["payment"]["currency"] = json!("nzd"))),
            ("a bad date", Box::new(|v| v["payment"]["date"] = json!("21/11/2026"))),
            ("an unknown field", Box::new(|v| v["payment"]["tip"] = json!("5"))),
            ("an unknown event", Box::new(|v| v["event"] = json!("payment.refunded.twice"))),
            ("a long reference", Box::new(|v| v["payment"]["reference"] = json!("r".repeat(256)))),
        ];
        // A refund needs what a payment needs.
        for (name, (what, break_it)) in
            ["payment-created", "payment-refunded"].iter().flat_map(|n| broken.iter().map(move |b| (n, b)))
        {
            let mut payload = example(name);
            break_it(&mut payload);
            assert!(!schema.is_valid(&payload), "the schema accepts {what} in {name}");
            let refused = match parse(payload.to_string().as_bytes()) {
                Err(_) => true,
                Ok(event) => !event.problems().is_empty(),
            };
            assert!(refused, "the parser accepts {what} in {name}");
        }
    }
}

mod credit_notes {
    use invoice_push::credit_note_event::parse;
    use serde_json::{Value, json};

    use super::{Breakage, refused_alike, repo};

    fn schema() -> jsonschema::Validator {
        let text = std::fs::read_to_string(repo("docs/contracts/credit-note-webhook.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn example() -> Value {
        let path = repo("docs/contracts/examples/credit-note-created.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_documented_credit_note_example_is_valid_for_the_schema_and_the_parser() {
        let example = example();
        let errors: Vec<String> = schema().iter_errors(&example).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let event = parse(example.to_string().as_bytes()).unwrap();
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        assert_eq!(event.credit_note.invoice_id.as_ref().map(|i| i.as_str()), Some("inv-1001"));
        assert_eq!(event.credit_note.lines[0].quantity.to_string(), "1.5");
    }

    #[test]
    fn the_schema_and_the_parser_refuse_the_same_broken_credit_notes() {
        let schema = schema();
        let broken: Vec<Breakage> = vec![
            ("no credit note id", Box::new(|v| drop(v["credit_note"].as_object_mut().unwrap().remove("id")))),
            ("no number", Box::new(|v| drop(v["credit_note"].as_object_mut().unwrap().remove("number")))),
            ("no customer", Box::new(|v| drop(v.as_object_mut().unwrap().remove("customer")))),
            ("an unknown event", Box::new(|v| v["event"] = json!("credit_note.refunded"))),
            ("a bad invoice id", Box::new(|v| v["credit_note"]["invoice_id"] = json!("inv 1001"))),
            (
                "a due date, which a credit note has not",
                Box::new(|v| v["credit_note"]["due_date"] = json!("2026-12-01")),
            ),
            ("no lines", Box::new(|v| v["credit_note"]["lines"] = json!([]))),
            ("a lowercase currency", Box::new(|v| v["credit_note"]["currency"] = json!("nzd"))),
            ("a price that is not a number", Box::new(|v| v["credit_note"]["lines"][0]["unit_price"] = json!("free"))),
            ("a blank number", Box::new(|v| v["credit_note"]["number"] = json!(""))),
        ];
        refused_alike(&schema, example, broken, |body| match parse(body) {
            Err(_) => true,
            Ok(event) => !event.problems().is_empty(),
        });
    }
}

mod customers {
    use invoice_push::customer_event::parse;
    use serde_json::{Value, json};

    use super::{Breakage, refused_alike, repo};

    fn schema() -> jsonschema::Validator {
        let text = std::fs::read_to_string(repo("docs/contracts/customer-webhook.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn example() -> Value {
        let path = repo("docs/contracts/examples/customer-upserted.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_documented_customer_example_is_valid_for_the_schema_and_the_parser() {
        let example = example();
        let errors: Vec<String> = schema().iter_errors(&example).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let event = parse(example.to_string().as_bytes()).unwrap();
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        assert_eq!(event.customer.tax_number.as_deref(), Some("123-456-789"));
    }

    #[test]
    fn the_schema_and_the_parser_refuse_the_same_broken_customers() {
        let schema = schema();
        let broken: Vec<Breakage> = vec![
            ("no customer", Box::new(|v| drop(v.as_object_mut().unwrap().remove("customer")))),
            ("no customer name", Box::new(|v| drop(v["customer"].as_object_mut().unwrap().remove("name")))),
            ("an unknown event", Box::new(|v| v["event"] = json!("customer.deleted"))),
            ("a tax number longer than Xero takes", Box::new(|v| v["customer"]["tax_number"] = json!("9".repeat(51)))),
            ("a blank tax number", Box::new(|v| v["customer"]["tax_number"] = json!(""))),
            ("an unknown field", Box::new(|v| v["customer"]["colour"] = json!("red"))),
            ("a bad delivery id", Box::new(|v| v["delivery_id"] = json!("short"))),
        ];
        refused_alike(&schema, example, broken, |body| match parse(body) {
            Err(_) => true,
            Ok(event) => !event.problems().is_empty(),
        });
    }
}

mod items {
    use invoice_push::item_event::parse;
    use serde_json::{Value, json};

    use super::{Breakage, refused_alike, repo};

    fn schema() -> jsonschema::Validator {
        let text = std::fs::read_to_string(repo("docs/contracts/item-webhook.schema.json")).unwrap();
        jsonschema::options().should_validate_formats(true).build(&serde_json::from_str(&text).unwrap()).unwrap()
    }

    fn example() -> Value {
        let path = repo("docs/contracts/examples/item-upserted.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn the_documented_item_example_is_valid_for_the_schema_and_the_parser_and_a_deletion_needs_only_the_code() {
        let example = example();
        let errors: Vec<String> = schema().iter_errors(&example).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let event = parse(example.to_string().as_bytes()).unwrap();
        assert!(event.problems().is_empty(), "{:?}", event.problems());
        assert_eq!(event.item.unit_price.map(|p| p.to_string()), Some("12.40".into()));
        let deleted = json!({ "delivery_id": "dlv_01J9ZD4M8R", "event": "item.deleted", "occurred_at": "2026-11-24T09:30:00Z",
            "account_id": "acct-42", "item": { "id": "prod-15", "code": "PIPE-CU-15" } });
        assert!(schema().is_valid(&deleted));
        assert!(parse(deleted.to_string().as_bytes()).unwrap().problems().is_empty());
    }

    #[test]
    fn the_schema_and_the_parser_refuse_the_same_broken_items() {
        let schema = schema();
        let broken: Vec<Breakage> = vec![
            ("a code longer than Xero's 30 characters", Box::new(|v| v["item"]["code"] = json!("C".repeat(31)))),
            ("a name longer than Xero's 50 characters", Box::new(|v| v["item"]["name"] = json!("N".repeat(51)))),
            ("an upsert without a name", Box::new(|v| drop(v["item"].as_object_mut().unwrap().remove("name")))),
            ("no code", Box::new(|v| drop(v["item"].as_object_mut().unwrap().remove("code")))),
            ("a blank code", Box::new(|v| v["item"]["code"] = json!("   "))),
            ("a price with five decimal places", Box::new(|v| v["item"]["unit_price"] = json!("1.23456"))),
            ("a price that is not a number", Box::new(|v| v["item"]["unit_price"] = json!("cheap"))),
            ("an unknown event", Box::new(|v| v["event"] = json!("item.archived"))),
            ("an unknown field", Box::new(|v| v["item"]["colour"] = json!("red"))),
        ];
        refused_alike(&schema, example, broken, |body| match parse(body) {
            Err(_) => true,
            Ok(event) => !event.problems().is_empty(),
        });
    }
}
