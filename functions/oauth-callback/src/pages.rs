//! What the browser sees at the end of the consent: a redirect back to the platform with the
//! outcome, or, with no return address, a small page saying what happened.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use url::Url;
use xero_sync_domain::model::PendingChoice;
use xero_sync_http::{CONSENT_COOKIE, escape_html, html_response_posting_to, page, redirect};

use crate::Outcome;

const START_AGAIN: &str = "Go back to the platform and click Connect to Xero again.";

pub fn problem_page(status: StatusCode, what: &str) -> Response<Body> {
    page(status, "Xero could not be connected", &[what, START_AGAIN])
}

/// The flow is over: the browser's consent cookie is no longer needed.
fn forget_consent(mut response: Response<Body>) -> Response<Body> {
    let expired = format!("{CONSENT_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax");
    response.headers_mut().insert("set-cookie", expired.parse().expect("a fixed cookie is a valid header"));
    response
}

pub fn outcome_response(return_to: Option<&str>, outcome: &Outcome) -> Response<Body> {
    forget_consent(outcome_response_inner(return_to, outcome))
}

fn outcome_response_inner(return_to: Option<&str>, outcome: &Outcome) -> Response<Body> {
    if let Some(mut url) = return_to.and_then(|r| Url::parse(r).ok()) {
        {
            let mut q = url.query_pairs_mut();
            match outcome {
                Outcome::Connected { tenants, .. } => {
                    q.append_pair("xero", "connected");
                    for t in tenants {
                        q.append_pair("tenant_id", &t.to_string());
                    }
                }
                Outcome::Denied => {
                    q.append_pair("xero", "denied");
                }
                Outcome::Failed { reason, .. } => {
                    q.append_pair("xero", "error");
                    q.append_pair("reason", reason);
                }
            }
        }
        return redirect(url.as_str());
    }
    match outcome {
        Outcome::Connected { names, .. } => page(
            StatusCode::OK,
            "Connected to Xero",
            &[&format!("Your account is now connected to {}.", names.join(", ")), "You can close this window."],
        ),
        Outcome::Denied => page(
            StatusCode::OK,
            "Xero was not connected",
            &["You chose not to give access to Xero, so nothing was connected.", START_AGAIN],
        ),
        Outcome::Failed { message, .. } => problem_page(StatusCode::BAD_GATEWAY, message),
    }
}

pub fn choose_page(choice: &PendingChoice) -> Response<Body> {
    let options: String = choice
        .organisations
        .iter()
        .enumerate()
        .map(|(i, o)| {
            format!(
                "<label><input type=\"radio\" name=\"tenant_id\" value=\"{}\"{}> {}</label>",
                o.tenant_id,
                if i == 0 { " checked" } else { "" },
                escape_html(&o.name)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>Choose an organisation</title><style>body{{font-family:\
         system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1f2933;line-height:1.5}}.card{{\
         border:1px solid #d9e2ec;border-radius:8px;padding:1.5rem 2rem}}label{{display:block;margin:.4rem 0}}button{{\
         font-size:1rem;padding:.5rem 1.2rem;border-radius:6px;border:0;background:#0078c8;color:#fff}}</style></head>\
         <body><main class=\"card\"><h1>Choose an organisation</h1><p>You gave access to more than one Xero \
         organisation. This account connects to one; choose which.</p><form method=\"post\" action=\"/oauth/choose\">\
         <input type=\"hidden\" name=\"choice\" value=\"{}\">{options}<p><button type=\"submit\" id=\"keep\">Connect \
         this organisation</button></p></form></main></body></html>",
        escape_html(&choice.token)
    );
    let origin = choice.return_to.as_deref().and_then(|r| Url::parse(r).ok()).map(|u| u.origin().ascii_serialization());
    html_response_posting_to(StatusCode::OK, html, origin.as_deref())
}
