//! The sync log in a card: the latest invoices, payments, refunds and credit notes, newest
//! first, a page at a time from the log index (never a scan), with Xero's words for a failure,
//! what to change, and Retry for a failed invoice.

use xero_sync_domain::integration::PageSession;
use xero_sync_domain::model::{Connection, ConnectionStatus, TenantId};
use xero_sync_domain::store::PageToken;
use xero_sync_domain::sync_log::{LogEntry, LogFilter, LogKind, LogStatus};

use crate::html::esc;
use crate::text::Text;
use crate::{IntegrationPage, PageError};

/// Rows a page of the log shows.
pub const PAGE_SIZE: i32 = 20;

/// Which card's log the query string pages or filters; the other cards show their first page.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub tenant: Option<TenantId>,
    pub failures: bool,
    pub from: Option<String>,
}

impl LogQuery {
    pub fn from_query(get: &impl Fn(&str) -> Option<String>) -> Self {
        Self {
            tenant: get("log").and_then(|t| TenantId::parse(&t).ok()),
            failures: get("only").as_deref() == Some("failures"),
            from: get("from").filter(|f| !f.is_empty() && f.len() <= 2048),
        }
    }

    fn for_card(&self, tenant: TenantId) -> (bool, Option<PageToken>) {
        match self.tenant {
            Some(t) if t == tenant => (self.failures, self.from.clone().map(PageToken)),
            _ => (false, None),
        }
    }
}

fn link(tenant: TenantId, failures: bool, from: Option<&str>) -> String {
    let mut url = url::Url::parse("http://page/integration").expect("a fixed URL parses");
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("log", &tenant.to_string());
        if failures {
            q.append_pair("only", "failures");
        }
        if let Some(from) = from {
            q.append_pair("from", from);
        }
    }
    format!("/integration?{}#log-{tenant}", url.query().unwrap_or_default())
}

/// What to change for a failure, from Xero's words (or ours) as the record keeps them.
fn hint(t: &Text, error: &str) -> &'static str {
    let e = error.to_lowercase();
    if e.contains("reconnect") {
        t.hint_reconnect
    } else if e.contains("tax") {
        t.hint_tax
    } else if e.contains("tracking") {
        t.hint_tracking
    } else if e.contains("payment method") || e.contains("payment_accounts") {
        t.hint_payment_account
    } else if e.contains("account") {
        t.hint_account
    } else {
        t.hint_other
    }
}

fn kind(t: &Text, k: LogKind) -> &'static str {
    match k {
        LogKind::Invoice => t.kind_invoice,
        LogKind::Payment => t.kind_payment,
        LogKind::Refund => t.kind_refund,
        LogKind::CreditNote => t.kind_credit_note,
    }
}

fn state(t: &Text, s: LogStatus) -> (&'static str, &'static str) {
    match s {
        LogStatus::Pending => (t.state_pending, "state-pending"),
        LogStatus::Held => (t.state_held, "state-pending"),
        LogStatus::Synced => (t.state_synced, "state-synced"),
        LogStatus::Voided => (t.state_voided, "state-synced"),
        LogStatus::Failed => (t.state_failed, "state-failed"),
    }
}

pub async fn render(
    page: &IntegrationPage,
    session: &PageSession,
    t: &Text,
    c: &Connection,
    query: &LogQuery,
) -> Result<String, PageError> {
    let tenant = c.tenant_id;
    let (failures, from) = query.for_card(tenant);
    let filter = if failures { LogFilter::Failures } else { LogFilter::All };
    let store = &page.connect.app.services.store;
    let listed = store.sync_log(&c.key(), filter, PAGE_SIZE, from.as_ref()).await.map_err(|e| match e {
        // The token came back from the browser's address bar.
        xero_sync_domain::Error::Corrupt { what: "page token", .. } => {
            PageError::refused(lambda_http::http::StatusCode::BAD_REQUEST, t.not_a_log_page)
        }
        other => PageError::from(other),
    })?;
    let mut out = format!(
        "<h3 id=\"log-{tenant}\">{}</h3><nav class=\"log-filter\" aria-label=\"{}\">",
        esc(t.sync_log),
        esc(t.sync_log)
    );
    for (on, label, href) in
        [(!failures, t.show_all, link(tenant, false, None)), (failures, t.show_failures, link(tenant, true, None))]
    {
        let current = if on { " aria-current=\"page\"" } else { "" };
        out.push_str(&format!("<a href=\"{}\"{current}>{}</a>", esc(&href), esc(label)));
    }
    out.push_str("</nav>");
    if listed.items.is_empty() {
        out.push_str(&format!("<p>{}</p>", esc(t.log_empty)));
        return Ok(out);
    }
    out.push_str(&format!(
        "<table><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        esc(t.document),
        esc(t.state),
        esc(t.xero_number),
        esc(t.when)
    ));
    for entry in &listed.items {
        out.push_str(&row(session, t, c, entry));
    }
    out.push_str("</tbody></table>");
    if let Some(next) = listed.next {
        out.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>",
            esc(&link(tenant, failures, Some(&next.0))),
            esc(t.older)
        ));
    }
    Ok(out)
}

fn row(session: &PageSession, t: &Text, c: &Connection, e: &LogEntry) -> String {
    let (state_text, class) = state(t, e.status);
    let name = match (&e.number, &e.invoice_id) {
        (Some(number), _) => number.clone(),
        (None, Some(invoice)) => format!("{} {invoice}", t.kind_invoice),
        (None, None) => e.platform_id.clone(),
    };
    let document = format!("{} {}", esc(kind(t, e.kind)), esc(&name));
    let mut state_cell = format!("<span class=\"{class}\">{}</span>", esc(state_text));
    if let Some(error) = &e.error {
        state_cell.push_str(&format!("<p class=\"xero-message\">{}</p>", esc(error)));
        if e.is_failure() {
            state_cell.push_str(&format!(
                "<p class=\"hint\"><strong>{}:</strong> {}</p>",
                esc(t.what_to_change),
                esc(hint(t, error))
            ));
        }
    }
    if e.is_failure() && e.kind == LogKind::Invoice && c.status == ConnectionStatus::Connected {
        state_cell.push_str(&format!(
            "<form method=\"post\" action=\"/integration/connections/{}/invoices/{}/retry\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">{}<span class=\"sr-only\"> {}</span></button></form>",
            c.tenant_id,
            esc(&xero_sync_domain::links::path_segment(&e.platform_id)),
            esc(&session.csrf),
            esc(t.retry),
            esc(&name)
        ));
    }
    let in_xero = match e.xero_document().and_then(|d| c.xero_link(d)) {
        Some(href) => format!(
            "<a href=\"{}\" target=\"_blank\" rel=\"noopener noreferrer\">{}<span class=\"sr-only\"> {}</span></a>",
            esc(&href),
            esc(t.open_in_xero),
            esc(&name)
        ),
        None => String::new(),
    };
    format!(
        "<tr><td>{document}</td><td>{state_cell}</td><td>{in_xero}</td><td>{}</td></tr>",
        esc(&t.when(e.updated_at))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_says_what_to_change() {
        let t = crate::text::Text::for_locale("en");
        assert_eq!(hint(t, "Account code '999' is not a valid code for this document."), t.hint_account);
        assert_eq!(hint(t, "line 2: platform tax rate vat is not mapped"), t.hint_tax);
        assert_eq!(hint(t, "Something else"), t.hint_other);
    }

    #[test]
    fn the_log_query_applies_to_its_own_card_only() {
        let tenant = TenantId(uuid::Uuid::new_v4());
        let other = TenantId(uuid::Uuid::new_v4());
        let q = LogQuery::from_query(&|name: &str| match name {
            "log" => Some(tenant.to_string()),
            "only" => Some("failures".into()),
            "from" => Some("abc".into()),
            _ => None,
        });
        assert_eq!(q.for_card(tenant), (true, Some(PageToken("abc".into()))));
        assert_eq!(q.for_card(other), (false, None));
    }
}
