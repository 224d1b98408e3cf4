//! The Accounting API (`/api.xro/2.0`): routing, list queries, batched writes and the response
//! envelopes.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::documents::{
    allocate, contact_json, create_contact, create_payment, delete_payment, document_json, find_contact_for_update,
    find_document, payment_json, save_document, update_contact,
};
use crate::http::{Reply, Req};
use crate::identity::TokenCtx;
use crate::query;
use crate::server::Shared;
use crate::state::{DocKind, IdempotentResponse, State, Tenant};
use crate::util::{field, ms_date, parse_datetime};

/// The longest Idempotency-Key Xero accepts
/// (https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/).
const MAX_IDEMPOTENCY_KEY: usize = 128;

pub fn handle(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant: Uuid) -> Reply {
    let is_write = matches!(req.method.as_str(), "POST" | "PUT" | "DELETE");
    let key = if is_write { req.header("idempotency-key").map(str::to_string) } else { None };
    let Some(key) = key else { return route(state, shared, req, ctx, tenant) };
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Reply::validation_message("The Idempotency-Key header must be between 1 and 128 characters long.");
    }
    let mut hasher = Sha256::new();
    hasher.update(req.method.as_str().as_bytes());
    hasher.update(req.lower_path().as_bytes());
    let mut query = req.query.clone();
    query.sort();
    hasher.update(format!("{query:?}").as_bytes());
    hasher.update(&req.body);
    let fingerprint = format!("{:x}", hasher.finalize());
    if let Some(previous) = state.idempotency.get(&(tenant, key.clone())) {
        return if previous.fingerprint == fingerprint {
            previous.reply.clone()
        } else {
            Reply::validation_message(
                "The Idempotency-Key has already been used for a different request. Use a new key for a new request.",
            )
        };
    }
    let reply = route(state, shared, req, ctx, tenant);
    if reply.status < 500 {
        state.idempotency.insert((tenant, key), IdempotentResponse { fingerprint, reply: reply.clone() });
    }
    reply
}

fn envelope(
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
enum Resource {
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
            _ => return None,
        })
    }

    fn key(self) -> &'static str {
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
        Resource::Items => t.items.iter().filter_map(|x| serde_json::to_value(x).ok().map(with_updated)).collect(),
        Resource::Currencies => t.currencies.iter().filter_map(|x| serde_json::to_value(x).ok()).collect(),
        Resource::TrackingCategories => {
            t.tracking_categories.iter().filter_map(|x| serde_json::to_value(x).ok()).collect()
        }
    }
}

pub fn dump(state: &State, tenant: Uuid, resource: &str, _now: DateTime<Utc>) -> Option<Vec<Value>> {
    let t = state.tenant(tenant)?;
    let r = Resource::parse(&resource.to_ascii_lowercase())?;
    Some(collection(t, r, false, true))
}

fn route(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant_id: Uuid) -> Reply {
    if req.lower.get(1).map(String::as_str) != Some("2.0") {
        return Reply::not_found();
    }
    let Some(resource) = req.lower.get(2).and_then(|s| Resource::parse(s)) else { return Reply::not_found() };
    let id = req.segs.get(3).cloned();
    let sub = req.lower.get(4).cloned();
    if req.segs.len() > 5
        || (sub.is_some() && !(matches!(resource, Resource::CreditNotes) && sub.as_deref() == Some("allocations")))
    {
        return Reply::not_found();
    }
    let now = shared.clock.now();
    match (req.method.as_str(), resource, id, sub) {
        ("GET", r, None, None) => list(state, shared, req, ctx, tenant_id, r),
        ("GET", r, Some(id), None) => get_one(state, shared, ctx, tenant_id, r, &id),
        ("PUT", Resource::CreditNotes, Some(id), Some(_)) => allocations(state, shared, req, ctx, tenant_id, &id, now),
        (
            "PUT" | "POST",
            r @ (Resource::Contacts | Resource::Invoices | Resource::CreditNotes | Resource::Payments),
            id,
            None,
        ) => write(state, shared, req, ctx, tenant_id, r, id, now),
        (m, _, _, _) => Reply::text(405, &format!("The requested resource does not support http method '{m}'.")),
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
    if let Some(id_field) = r.id_field() {
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
    let items = collection(t, r, false, true);
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

/// The array a write sends: `{"Invoices": [...]}`, a bare array, or one bare object.
fn elements(body: &Value, key: &str) -> Vec<Value> {
    match body {
        Value::Object(map) => match map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, Value::Array(items))) => items.clone(),
            Some((_, other)) => vec![other.clone()],
            None => vec![body.clone()],
        },
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn with_errors(element: &Value, r: Resource, errors: &[String]) -> Value {
    let mut v = if element.is_object() { element.clone() } else { json!({}) };
    v["ValidationErrors"] = json!(errors.iter().map(|m| json!({"Message": m})).collect::<Vec<_>>());
    v["StatusAttributeString"] = json!("ERROR");
    match r {
        Resource::Contacts | Resource::Payments => v["HasValidationErrors"] = json!(true),
        _ => v["HasErrors"] = json!(true),
    }
    v
}

fn object_json(t: &Tenant, r: Resource, id: Uuid) -> Value {
    let found = match r {
        Resource::Contacts => t.contact(id).map(contact_json),
        Resource::Invoices => t.invoices.iter().find(|d| d.id == id).map(|d| document_json(t, d, false, true)),
        Resource::CreditNotes => t.credit_notes.iter().find(|d| d.id == id).map(|d| document_json(t, d, false, true)),
        Resource::Payments => t.payments.iter().find(|p| p.id == id).map(|p| payment_json(t, p)),
        _ => None,
    };
    found.unwrap_or(Value::Null)
}

#[allow(clippy::too_many_arguments)]
fn write(
    state: &mut State,
    shared: &Shared,
    req: &Req,
    ctx: &TokenCtx,
    tenant_id: Uuid,
    r: Resource,
    path_id: Option<String>,
    now: DateTime<Utc>,
) -> Reply {
    let body = match req.json() {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let summarize = !req.query("summarizeErrors").is_some_and(|s| s.eq_ignore_ascii_case("false"));
    let is_put = req.method.as_str() == "PUT";
    let unit_dp = if req.query("unitdp") == Some("4") { 4 } else { 2 };
    let Some(tenant) = state.tenant_mut(tenant_id) else { return Reply::not_found() };
    // A path id names the object being updated; find it before touching anything.
    let target = match (&path_id, r) {
        (None, _) => None,
        (Some(id), Resource::Contacts) => {
            let by_id = Uuid::parse_str(id).ok().and_then(|u| tenant.contact(u).map(|c| c.id));
            let found =
                by_id.or_else(|| tenant.contacts.iter().find(|c| c.get_str("ContactNumber") == Some(id)).map(|c| c.id));
            match found {
                Some(f) => Some(f),
                None => return Reply::not_found(),
            }
        }
        (Some(id), Resource::Invoices | Resource::CreditNotes) => {
            let kind = if matches!(r, Resource::Invoices) { DocKind::Invoice } else { DocKind::CreditNote };
            let found = tenant
                .docs(kind)
                .iter()
                .find(|d| d.id.to_string().eq_ignore_ascii_case(id) || d.number.as_deref() == Some(id.as_str()))
                .map(|d| d.id);
            match found {
                Some(f) => Some(f),
                None => return Reply::not_found(),
            }
        }
        (Some(id), Resource::Payments) => {
            match Uuid::parse_str(id).ok().filter(|u| tenant.payments.iter().any(|p| p.id == *u)) {
                Some(f) => Some(f),
                None => return Reply::not_found(),
            }
        }
        _ => return Reply::not_found(),
    };
    if is_put && target.is_some() {
        return Reply::text(405, "The requested resource does not support http method 'PUT'.");
    }
    let mut work = tenant.clone();
    let items = elements(&body, r.key());
    let mut results: Vec<Result<Uuid, Vec<String>>> = vec![];
    for element in &items {
        let result = match r {
            Resource::Contacts => {
                match target.or_else(|| if is_put { None } else { find_contact_for_update(&work, element) }) {
                    Some(id) => update_contact(&mut work, id, element, now).map(|_| id),
                    None => create_contact(&mut work, element, now),
                }
            }
            Resource::Invoices | Resource::CreditNotes => {
                let kind = if matches!(r, Resource::Invoices) { DocKind::Invoice } else { DocKind::CreditNote };
                let existing = match target {
                    Some(t) => Ok(Some(t)),
                    None if is_put => Ok(None),
                    None => find_document(&work, kind, element),
                };
                match existing {
                    Ok(existing) => save_document(&mut work, kind, element, existing, unit_dp, now),
                    Err(e) => Err(vec![e]),
                }
            }
            Resource::Payments => match target {
                Some(id) => delete_payment(&mut work, id, element, now).map(|_| id),
                None => create_payment(&mut work, element, now),
            },
            _ => Err(vec!["This resource cannot be written.".into()]),
        };
        results.push(result);
    }
    let failed = results.iter().any(Result::is_err);
    if failed && summarize {
        let elements = items
            .iter()
            .zip(&results)
            .filter_map(|(e, res)| res.as_ref().err().map(|errors| with_errors(e, r, errors)))
            .map(|mut e| {
                if let Some(map) = e.as_object_mut() {
                    map.remove("StatusAttributeString");
                }
                e
            })
            .collect();
        return Reply::validation(elements);
    }
    *tenant = work;
    let out: Vec<Value> = items
        .iter()
        .zip(&results)
        .map(|(element, res)| match res {
            Ok(id) => {
                let mut v = object_json(tenant, r, *id);
                if !summarize {
                    v["StatusAttributeString"] = json!("OK");
                }
                v
            }
            Err(errors) => with_errors(element, r, errors),
        })
        .collect();
    Reply::json(200, envelope(state, shared, ctx, r.key(), out, None))
}

fn allocations(
    state: &mut State,
    shared: &Shared,
    req: &Req,
    ctx: &TokenCtx,
    tenant_id: Uuid,
    credit_note: &str,
    now: DateTime<Utc>,
) -> Reply {
    let body = match req.json() {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let Some(tenant) = state.tenant_mut(tenant_id) else { return Reply::not_found() };
    let Some(cn) = tenant
        .credit_notes
        .iter()
        .find(|c| c.id.to_string().eq_ignore_ascii_case(credit_note) || c.number.as_deref() == Some(credit_note))
        .map(|c| c.id)
    else {
        return Reply::not_found();
    };
    let mut work = tenant.clone();
    let items = elements(&body, "Allocations");
    let mut created = vec![];
    let mut failures = vec![];
    for element in &items {
        match allocate(&mut work, cn, element, now) {
            Ok(id) => created.push(id),
            Err(errors) => {
                let mut e = element.clone();
                e["ValidationErrors"] = json!(errors.iter().map(|m| json!({"Message": m})).collect::<Vec<_>>());
                failures.push(e);
            }
        }
    }
    if !failures.is_empty() {
        return Reply::validation(failures);
    }
    *tenant = work;
    let out: Vec<Value> = created
        .iter()
        .filter_map(|id| tenant.allocations.iter().find(|a| a.id == *id))
        .map(|a| {
            let inv = tenant.invoices.iter().find(|i| i.id == a.invoice_id);
            let cn = tenant.credit_notes.iter().find(|c| c.id == a.credit_note_id);
            json!({
                "AllocationID": a.id,
                "Amount": crate::util::money(a.amount),
                "Date": crate::util::ms_date_of_day(a.date),
                "Invoice": inv.map(|i| document_json(tenant, i, true, false)),
                "CreditNote": cn.map(|c| document_json(tenant, c, true, false)),
            })
        })
        .collect();
    Reply::json(200, envelope(state, shared, ctx, "Allocations", out, None))
}
