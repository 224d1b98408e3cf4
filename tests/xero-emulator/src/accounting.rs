//! The Accounting API (`/api.xro/2.0`): routing, reads (lists with their query features, one
//! object by id) and the response envelopes. Writes are in `writes`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::documents::{contact_json, document_json, payment_json};
use crate::http::{Reply, Req};
use crate::identity::TokenCtx;
use crate::query;
use crate::server::Shared;
use crate::state::{DocKind, State, Tenant};
use crate::util::{field, ms_date, parse_datetime};
use crate::writes::{allocations, remove_allocation, write};

pub(crate) fn envelope(
    state: &State,
    shared: &Shared,
    ctx: &TokenCtx,
    key: &str,
    items: Vec<Value>,
    pagination: Option<Value>,
) -> Value {
    let provider = state.clients.get(&ctx.client_id).map(|c| c.name.clone()).unwrap_or_default();
    let mut v = json!({
        "Id": Uuid::new_v4(),
        "Status": "OK",
        "ProviderName": provider,
        "DateTimeUTC": ms_date(shared.clock.now()),
        key: items,
    });
    if let Some(p) = pagination {
        v["pagination"] = p;
    }
    v
}

#[derive(Clone, Copy)]
pub(crate) enum Resource {
    Organisation,
    Contacts,
    Invoices,
    CreditNotes,
    Payments,
    TaxRates,
    Accounts,
    Items,
    Currencies,
    TrackingCategories,
    ContactGroups,
}

impl Resource {
    fn parse(s: &str) -> Option<Resource> {
        Some(match s {
            "organisation" | "organisations" => Resource::Organisation,
            "contacts" => Resource::Contacts,
            "invoices" => Resource::Invoices,
            "creditnotes" => Resource::CreditNotes,
            "payments" => Resource::Payments,
            "taxrates" => Resource::TaxRates,
            "accounts" => Resource::Accounts,
            "items" => Resource::Items,
            "currencies" => Resource::Currencies,
            "trackingcategories" => Resource::TrackingCategories,
            "contactgroups" => Resource::ContactGroups,
            _ => return None,
        })
    }

    pub fn key(self) -> &'static str {
        match self {
            Resource::Organisation => "Organisations",
            Resource::Contacts => "Contacts",
            Resource::Invoices => "Invoices",
            Resource::CreditNotes => "CreditNotes",
            Resource::Payments => "Payments",
            Resource::TaxRates => "TaxRates",
            Resource::Accounts => "Accounts",
            Resource::Items => "Items",
            Resource::Currencies => "Currencies",
            Resource::TrackingCategories => "TrackingCategories",
            Resource::ContactGroups => "ContactGroups",
        }
    }

    fn id_field(self) -> Option<&'static str> {
        match self {
            Resource::Contacts => Some("ContactID"),
            Resource::Invoices => Some("InvoiceID"),
            Resource::CreditNotes => Some("CreditNoteID"),
            Resource::Payments => Some("PaymentID"),
            Resource::Accounts => Some("AccountID"),
            Resource::Items => Some("ItemID"),
            Resource::TrackingCategories => Some("TrackingCategoryID"),
            Resource::Organisation => Some("OrganisationID"),
            Resource::TaxRates => Some("TaxType"),
            Resource::Currencies => Some("Code"),
            Resource::ContactGroups => Some("ContactGroupID"),
        }
    }

    /// The resources whose objects can be kept out of reads for a while.
    fn hideable(self) -> Option<&'static str> {
        match self {
            Resource::Contacts => Some("contacts"),
            Resource::Invoices => Some("invoices"),
            Resource::CreditNotes => Some("creditnotes"),
            Resource::Payments => Some("payments"),
            _ => None,
        }
    }

    fn paged(self) -> bool {
        matches!(self, Resource::Contacts | Resource::Invoices | Resource::CreditNotes | Resource::Payments)
    }
}

fn organisation_json(t: &Tenant) -> Value {
    let version =
        if ["NZ", "AU", "UK", "US"].contains(&t.country_code.as_str()) { t.country_code.as_str() } else { "GLOBAL" };
    json!({
        "OrganisationID": Uuid::new_v5(&t.id, b"organisation"),
        "APIKey": "",
        "Name": t.name,
        "LegalName": t.name,
        "PaysTax": true,
        "Version": version,
        "OrganisationType": "COMPANY",
        "OrganisationEntityType": "COMPANY",
        "BaseCurrency": t.base_currency,
        "CountryCode": t.country_code,
        "IsDemoCompany": false,
        "OrganisationStatus": "ACTIVE",
        "FinancialYearEndDay": 31,
        "FinancialYearEndMonth": 3,
        "SalesTaxBasis": "INVOICE",
        "SalesTaxPeriod": "TWOMONTHS",
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_date(t.created),
        "ShortCode": t.short_code,
        "Edition": "BUSINESS",
        "Class": "STANDARD",
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    })
}

/// The JSON of every object of a resource. `full` adds line items to unpaged invoice lists;
/// Xero leaves them out unless `page` is given or one invoice is fetched.
fn collection(t: &Tenant, r: Resource, summary_only: bool, with_lines: bool) -> Vec<Value> {
    let updated = ms_date(t.reference_updated);
    let with_updated = |mut v: Value| {
        v["UpdatedDateUTC"] = json!(updated);
        v
    };
    match r {
        Resource::Organisation => vec![organisation_json(t)],
        Resource::Contacts => t.contacts.iter().map(contact_json).collect(),
        Resource::Invoices | Resource::CreditNotes => {
            let kind = if matches!(r, Resource::Invoices) { DocKind::Invoice } else { DocKind::CreditNote };
            t.docs(kind).iter().map(|d| document_json(t, d, summary_only, with_lines)).collect()
        }
        Resource::Payments => t.payments.iter().map(|p| payment_json(t, p)).collect(),
        Resource::TaxRates => t.tax_rates.iter().filter_map(|x| serde_json::to_value(x).ok()).collect(),
        Resource::Accounts => t
            .accounts
            .iter()
            .filter_map(|a| {
                let mut v = serde_json::to_value(a).ok()?;
                v["Class"] = json!(a.class());
                v["HasAttachments"] = json!(false);
                Some(with_updated(v))
            })
            .collect(),
        Resource::Items => t
            .items
            .iter()
            .filter_map(|x| {
                let mut v = serde_json::to_value(x).ok()?;
                let at = t.item_updated.get(&x.item_id).copied().unwrap_or(t.reference_updated);
                v["UpdatedDateUTC"] = json!(ms_date(at));
                Some(v)
            })
            .collect(),
        Resource::Currencies => t.currencies.iter().filter_map(|x| serde_json::to_value(x).ok()).collect(),
        Resource::TrackingCategories => {
            t.tracking_categories.iter().filter_map(|x| serde_json::to_value(x).ok()).collect()
        }
        Resource::ContactGroups => t
            .contact_groups
            .iter()
            .map(|g| json!({ "ContactGroupID": g.id, "Name": g.name, "Status": g.status, "Contacts": g.members }))
            .collect(),
    }
}

pub fn dump(state: &State, tenant: Uuid, resource: &str, _now: DateTime<Utc>) -> Option<Vec<Value>> {
    let t = state.tenant(tenant)?;
    let r = Resource::parse(&resource.to_ascii_lowercase())?;
    Some(collection(t, r, false, true))
}

/// Keeps an object out of reads of its resource until the emulator clock reaches `visible_at`:
/// Xero's lists can lag behind the UpdatedDateUTC they report.
pub fn delay_visibility(
    state: &mut State,
    tenant: Uuid,
    resource: &str,
    id: Uuid,
    visible_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let Some(name) = Resource::parse(&resource.to_ascii_lowercase()).and_then(Resource::hideable) else {
        return Err(format!(
            "visibility can be delayed for contacts, invoices, creditnotes or payments, not '{resource}'"
        ));
    };
    if state.tenant(tenant).is_none() {
        return Err(format!("no tenant {tenant}"));
    }
    state.hidden_until.retain(|_, at| *at > now);
    state.hidden_until.insert((tenant, name, id), visible_at);
    Ok(())
}

fn drop_hidden(state: &State, tenant: Uuid, r: Resource, items: &mut Vec<Value>, now: DateTime<Utc>) {
    let (Some(name), Some(id_field)) = (r.hideable(), r.id_field()) else { return };
    if state.hidden_until.is_empty() {
        return;
    }
    items.retain(|v| {
        let id = v.get(id_field).and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok());
        !id.is_some_and(|id| state.is_hidden(tenant, name, id, now))
    });
}

pub(crate) fn route(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant_id: Uuid) -> Reply {
    if req.lower.get(1).map(String::as_str) != Some("2.0") {
        return Reply::not_found();
    }
    let Some(resource) = req.lower.get(2).and_then(|s| Resource::parse(s)) else { return Reply::not_found() };
    let id = req.segs.get(3).cloned();
    let sub = req.lower.get(4).cloned();
    let allocation = req.segs.get(5).cloned();
    if matches!(resource, Resource::ContactGroups) {
        if req.segs.len() > 6 {
            return Reply::not_found();
        }
        return crate::contact_groups::route(state, shared, req, ctx, tenant_id, id, sub, allocation);
    }
    if sub.as_deref() == Some("attachments") && req.segs.len() <= 6 {
        let kind = match resource {
            Resource::Invoices => DocKind::Invoice,
            Resource::CreditNotes => DocKind::CreditNote,
            _ => return Reply::not_found(),
        };
        let id = id.unwrap_or_default();
        return crate::attachments::route(state, shared, req, ctx, tenant_id, kind, &id, allocation.as_deref());
    }
    if req.segs.len() > 6
        || (sub.is_some() && !(matches!(resource, Resource::CreditNotes) && sub.as_deref() == Some("allocations")))
    {
        return Reply::not_found();
    }
    if !allowed(resource, req.method.as_str() != "GET", &ctx.scope) {
        // What Xero answers a token whose consent did not grant the endpoint's scope.
        return Reply::problem(401, "Unauthorized", "AuthorizationUnsuccessful");
    }
    let now = shared.clock.now();
    match (req.method.as_str(), resource, id, sub) {
        ("GET", r, None, None) => list(state, shared, req, ctx, tenant_id, r),
        ("GET", r, Some(id), None) => get_one(state, shared, ctx, tenant_id, r, &id),
        ("PUT", Resource::CreditNotes, Some(id), Some(_)) if allocation.is_none() => {
            allocations(state, shared, req, ctx, tenant_id, &id, now)
        }
        ("DELETE", Resource::CreditNotes, Some(id), Some(_)) => match allocation {
            Some(allocation) => remove_allocation(state, tenant_id, &id, &allocation, now),
            None => Reply::text(405, "The requested resource does not support http method 'DELETE'."),
        },
        (
            "PUT" | "POST",
            r
            @ (Resource::Contacts | Resource::Invoices | Resource::CreditNotes | Resource::Payments | Resource::Items),
            id,
            None,
        ) => write(state, shared, req, ctx, tenant_id, r, id, now),
        ("DELETE", Resource::Items, Some(id), None) => crate::items::delete(state, tenant_id, &id),
        (m, _, _, _) => Reply::text(405, &format!("The requested resource does not support http method '{m}'.")),
    }
}

/// Whether the consent's scopes cover the endpoint. Payments and item writes are checked: they
/// are the endpoints whose write scope a connection may lack while reading works, as
/// connections made before xero-sync pushed payments or items do (`accounting.payments.read`,
/// `accounting.settings.read`). Xero documents the granular `accounting.invoices` as covering
/// items, and among the broad scopes `accounting.settings`.
fn allowed(r: Resource, write: bool, scope: &str) -> bool {
    let granted = |wanted: &[&str]| scope.split_whitespace().any(|s| wanted.contains(&s));
    match (r, write) {
        (Resource::Payments, true) => granted(&["accounting.payments", "accounting.transactions"]),
        (Resource::Payments, false) => granted(&[
            "accounting.payments",
            "accounting.payments.read",
            "accounting.transactions",
            "accounting.transactions.read",
        ]),
        (Resource::Items, true) => granted(&["accounting.invoices", "accounting.settings"]),
        _ => true,
    }
}

fn list(state: &State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant_id: Uuid, r: Resource) -> Reply {
    let Some(t) = state.tenant(tenant_id) else { return Reply::not_found() };
    let summary_only = req.query("summaryOnly").is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let page = match req.query("page").map(str::parse::<u64>) {
        None => None,
        Some(Ok(p)) if p >= 1 => Some(p),
        Some(_) => return Reply::validation_message("The page parameter must be a positive whole number."),
    };
    let page_size = match req.query("pageSize").map(str::parse::<u64>) {
        None => 100,
        Some(Ok(s)) if s >= 1 => s.min(1000),
        Some(_) => return Reply::validation_message("The pageSize parameter must be between 1 and 1000."),
    };
    let with_lines = page.is_some() || !matches!(r, Resource::Invoices | Resource::CreditNotes);
    let mut items = collection(t, r, summary_only, with_lines && !summary_only);
    drop_hidden(state, tenant_id, r, &mut items, shared.clock.now());
    let csv = |name: &str| {
        req.query(name).map(|v| {
            v.split(',')
                .map(|s| s.trim().trim_matches('"').to_lowercase())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
    };
    let keep_in = |items: &mut Vec<Value>, path: &str, wanted: Option<Vec<String>>| {
        if let Some(wanted) = wanted {
            items.retain(|v| {
                query::lookup(v, path).and_then(Value::as_str).is_some_and(|s| wanted.contains(&s.to_lowercase()))
            });
        }
    };
    // As the spec lists the parameter: Contacts and Invoices take IDs=, and Xero ignores a
    // parameter an endpoint does not take (CreditNotes, Payments).
    if let Some(id_field) = r.id_field().filter(|_| matches!(r, Resource::Contacts | Resource::Invoices)) {
        keep_in(&mut items, id_field, csv("IDs"));
    }
    keep_in(&mut items, "InvoiceNumber", csv("InvoiceNumbers"));
    keep_in(&mut items, "Contact.ContactID", csv("ContactIDs"));
    let status_field = if matches!(r, Resource::Contacts) { "ContactStatus" } else { "Status" };
    keep_in(&mut items, status_field, csv("Statuses"));
    if let Some(w) = req.query("where").filter(|w| !w.trim().is_empty()) {
        match query::parse_where(w) {
            Ok(expr) => items.retain(|v| query::eval(&expr, v)),
            Err(e) => {
                return Reply::error(400, "QueryParseException", &format!("Unable to parse the where clause: {e}"));
            }
        }
    }
    if let Some(since) = req.header("if-modified-since") {
        let Some(since) = parse_datetime(since) else {
            return Reply::validation_message("The If-Modified-Since header is not a valid date.");
        };
        items.retain(|v| {
            v.get("UpdatedDateUTC").and_then(Value::as_str).and_then(parse_datetime).is_none_or(|u| u >= since)
        });
    }
    if matches!(r, Resource::Contacts) {
        if let Some(term) = req.query("searchTerm").map(str::to_lowercase).filter(|s| !s.is_empty()) {
            items.retain(|v| {
                ["Name", "FirstName", "LastName", "ContactNumber", "CompanyNumber", "EmailAddress"]
                    .iter()
                    .any(|f| field(v, f).and_then(Value::as_str).is_some_and(|s| s.to_lowercase().contains(&term)))
            });
        }
        if !req.query("includeArchived").is_some_and(|s| s.eq_ignore_ascii_case("true")) {
            items.retain(|v| v["ContactStatus"] != "ARCHIVED");
        }
    }
    if let Some(order) = req.query("order").filter(|o| !o.trim().is_empty())
        && let Err(e) = query::sort(&mut items, order)
    {
        return Reply::error(400, "QueryParseException", &format!("Unable to parse the order clause: {e}"));
    }
    let (items, pagination) = match page.filter(|_| r.paged()) {
        Some(page) => {
            let (items, p) = query::paginate(items, page, page_size);
            (items, Some(p))
        }
        None => (items, None),
    };
    Reply::json(200, envelope(state, shared, ctx, r.key(), items, pagination))
}

fn get_one(state: &State, shared: &Shared, ctx: &TokenCtx, tenant_id: Uuid, r: Resource, id: &str) -> Reply {
    let Some(t) = state.tenant(tenant_id) else { return Reply::not_found() };
    let mut items = collection(t, r, false, true);
    drop_hidden(state, tenant_id, r, &mut items, shared.clock.now());
    let alternate = match r {
        Resource::Invoices => Some("InvoiceNumber"),
        Resource::CreditNotes => Some("CreditNoteNumber"),
        Resource::Contacts => Some("ContactNumber"),
        Resource::Items => Some("Code"),
        _ => None,
    };
    let matches = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case(id));
    let found = items
        .iter()
        .find(|v| r.id_field().is_some_and(|f| matches(v, f)))
        .or_else(|| alternate.and_then(|f| items.iter().find(|v| v.get(f).and_then(Value::as_str) == Some(id))));
    match found {
        Some(v) => Reply::json(200, envelope(state, shared, ctx, r.key(), vec![v.clone()], None)),
        None => Reply::not_found(),
    }
}
