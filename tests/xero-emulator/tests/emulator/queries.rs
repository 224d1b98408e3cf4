//! String literals in `where` and the comma-separated `InvoiceNumbers` list.

use crate::accounting::url_encode;
use crate::helpers::*;

fn numbers(resp: &Resp) -> Vec<String> {
    assert_eq!(resp.status, 200, "{}", resp.text);
    let mut out: Vec<String> = resp.body["Invoices"]
        .as_array()
        .expect("invoices")
        .iter()
        .map(|i| i["InvoiceNumber"].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_where_literal_may_hold_commas_and_quotes_while_invoice_numbers_split_on_commas() {
    let emu = start().await;
    let api = connected_api(&emu).await;
    for number in ["INV,1", "INV", "1", "Q\"1,2"] {
        create_invoice(&api, invoice(number, "10")).await;
    }
    let w = url_encode(r#"InvoiceNumber=="INV,1""#);
    assert_eq!(numbers(&api.get(&format!("/Invoices?where={w}")).await), vec!["INV,1"]);
    // Xero's filter language escapes a quote inside a string by doubling it.
    let w = url_encode(r#"InvoiceNumber=="Q""1,2" OR InvoiceNumber=="INV,1""#);
    assert_eq!(numbers(&api.get(&format!("/Invoices?where={w}")).await), vec!["INV,1", "Q\"1,2"]);
    // InvoiceNumbers is a plain comma-separated list, so "INV,1" names two invoices.
    assert_eq!(numbers(&api.get("/Invoices?InvoiceNumbers=INV,1").await), vec!["1", "INV"]);
    assert_eq!(numbers(&api.get("/Invoices?InvoiceNumbers=INV%2C1").await), vec!["1", "INV"]);
}
