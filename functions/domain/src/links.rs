//! Links both ways: the platform's page for an invoice, which Xero shows as "Go to …" on the
//! invoice (its `Url`), and Xero's deep links, which open a document in the right organisation
//! (picked by the organisation's ShortCode, as Xero documents deep links).

use uuid::Uuid;

/// What a settings template names the platform's invoice id by.
pub const INVOICE_ID: &str = "{invoice_id}";
/// Longer than any page address a browser keeps reliably; Xero states no limit of its own.
pub const MAX_URL: usize = 2000;
/// The longest platform id (`PlatformInvoiceId`), encoded: the template must fit with it.
const LONGEST_ID: usize = 128 * 3;

/// Why `template` cannot be the platform's invoice page, or `None` when it can.
pub fn template_problem(template: &str) -> Option<String> {
    let Some((scheme, rest)) = template.split_once("://") else {
        return Some("must be an absolute https address".into());
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match scheme {
        "https" => {}
        "http" if is_local(host) => {}
        "http" => return Some("must be an https address (http only for localhost)".into()),
        _ => return Some("must be an absolute https address".into()),
    }
    if host.is_empty() || host.starts_with(INVOICE_ID) {
        return Some("must name the platform's host before {invoice_id}".into());
    }
    if template.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces".into());
    }
    if !template.contains(INVOICE_ID) {
        return Some("must contain {invoice_id}, where the invoice's id goes".into());
    }
    if template.replace(INVOICE_ID, "").contains(['{', '}']) {
        return Some("knows only the placeholder {invoice_id}".into());
    }
    let longest = template.len() + template.matches(INVOICE_ID).count() * LONGEST_ID;
    if longest > MAX_URL {
        return Some(format!("is too long: with the longest invoice id it would exceed {MAX_URL} characters"));
    }
    None
}

fn is_local(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host });
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The platform's page for the invoice: `template` with the id in place, percent-encoded
/// beyond the characters a path segment takes as they are.
pub fn platform_page(template: &str, invoice_id: &str) -> String {
    template.replace(INVOICE_ID, &path_segment(invoice_id))
}

/// A platform id as one path segment: percent-encoded beyond the characters a segment takes as
/// they are.
pub fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A document a deep link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XeroDocument {
    Invoice(Uuid),
    CreditNote(Uuid),
    Payment(Uuid),
    Contact(Uuid),
}

/// Whether Xero's answer is a ShortCode we put in a link: `!` and a few letters and digits.
pub fn is_short_code(code: &str) -> bool {
    (2..=16).contains(&code.len())
        && code.starts_with('!')
        && code[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Opens `document` in the organisation whose ShortCode is `short_code`; `None` for a code
/// that is not one (it came from Xero's answer and goes into a link).
pub fn deep_link(short_code: &str, document: XeroDocument) -> Option<String> {
    if !is_short_code(short_code) {
        return None;
    }
    let page = match document {
        XeroDocument::Invoice(id) => format!("/AccountsReceivable/View.aspx?InvoiceID={id}"),
        XeroDocument::CreditNote(id) => format!("/AccountsPayable/ViewCreditNote.aspx?creditNoteID={id}"),
        XeroDocument::Payment(id) => format!("/Bank/ViewTransaction.aspx?bankTransactionID={id}"),
        XeroDocument::Contact(id) => format!("/Contacts/View/{id}"),
    };
    Some(format!("https://go.xero.com/organisationlogin/default.aspx?shortcode={short_code}&redirecturl={page}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_an_https_address_with_the_placeholder() {
        assert_eq!(template_problem("https://app.example.com/invoices/{invoice_id}"), None);
        assert_eq!(template_problem("http://localhost:3000/invoices/{invoice_id}"), None);
        assert_eq!(template_problem("https://app.example.com/jobs?invoice={invoice_id}&tab=money"), None);
        let refused = [
            ("http://app.example.com/invoices/{invoice_id}", "https"),
            ("app.example.com/invoices/{invoice_id}", "absolute"),
            ("javascript:alert(1)//{invoice_id}", "absolute"),
            ("https://{invoice_id}", "host"),
            ("https://app.example.com/invoices", "{invoice_id}"),
            ("https://app.example.com/{account}/invoices/{invoice_id}", "only"),
            ("https://app.example.com/in voices/{invoice_id}", "spaces"),
        ];
        for (template, says) in refused {
            let problem = template_problem(template).unwrap_or_else(|| panic!("{template} was taken"));
            assert!(problem.contains(says), "{template}: {problem}");
        }
        let long = format!("https://app.example.com/{}/{INVOICE_ID}", "a".repeat(MAX_URL));
        assert!(template_problem(&long).unwrap().contains("too long"));
    }

    #[test]
    fn the_invoice_id_is_encoded_into_the_page() {
        let page = platform_page("https://app.example.com/invoices/{invoice_id}", "job:42@site");
        assert_eq!(page, "https://app.example.com/invoices/job%3A42%40site");
    }

    #[test]
    fn deep_links_follow_xeros_documented_form_and_refuse_odd_short_codes() {
        let id = Uuid::from_u128(0x1cf1a11c_a067_4a05_9c8b_06f281f7afed);
        assert_eq!(
            deep_link("!NLglS", XeroDocument::Invoice(id)).unwrap(),
            "https://go.xero.com/organisationlogin/default.aspx?shortcode=!NLglS\
             &redirecturl=/AccountsReceivable/View.aspx?InvoiceID=1cf1a11c-a067-4a05-9c8b-06f281f7afed"
        );
        assert!(
            deep_link("!NLglS", XeroDocument::CreditNote(id)).unwrap().contains("ViewCreditNote.aspx?creditNoteID=")
        );
        for odd in ["", "NLglS", "!NL&x=1", "!<script>", "!aaaaaaaaaaaaaaaaaaaa"] {
            assert_eq!(deep_link(odd, XeroDocument::Payment(id)), None, "{odd}");
        }
    }
}
