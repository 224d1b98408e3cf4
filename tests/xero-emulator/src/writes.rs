//! Batched writes (PUT and POST of contacts, invoices, credit notes, payments, allocations):
//! each element is checked against Xero's spec, then against the business rules, and the batch
//! is answered the way `summarizeErrors` asks.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::accounting::{Resource, envelope};
use crate::documents::{
    allocate, contact_json, create_contact, create_payment, delete_payment, document_json, find_contact_for_update,
    find_document, payment_json, save_document, update_contact,
};
use crate::http::{Reply, Req};
use crate::identity::TokenCtx;
use crate::server::Shared;
use crate::spec;
use crate::state::{DocKind, State, Tenant};

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

fn error_list(errors: &[String]) -> Value {
    json!(errors.iter().map(|m| json!({"Message": m})).collect::<Vec<_>>())
}

fn with_errors(element: &Value, r: Resource, errors: &[String]) -> Value {
    let mut v = if element.is_object() { element.clone() } else { json!({}) };
    v["ValidationErrors"] = error_list(errors);
    v["StatusAttributeString"] = json!("ERROR");
    match r {
        Resource::Contacts | Resource::Payments => v["HasValidationErrors"] = json!(true),
        // Xero's Item has no flag beside its ValidationErrors.
        Resource::Items => {}
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
        Resource::Items => crate::items::item_json(t, id),
        _ => None,
    };
    found.unwrap_or(Value::Null)
}

/// One element's spec check. On failure `echo` becomes what is sent back with the errors.
struct SpecCheck<'a> {
    shared: &'a Shared,
    schema: Option<&'a str>,
}

impl SpecCheck<'_> {
    fn run(&self, element: &Value, update: bool, echo: &mut Value) -> Result<(), Vec<String>> {
        let Some(schema) = self.schema else { return Ok(()) };
        let problems = self.shared.spec.check(schema, element, update);
        if problems.is_empty() {
            return Ok(());
        }
        *echo = spec::without_bad_values(element, &problems);
        Err(spec::messages(&problems))
    }
}

fn spec_check<'a>(shared: &'a Shared, req: &Req) -> SpecCheck<'a> {
    let path = req.lower.get(2..).unwrap_or_default();
    SpecCheck { shared, schema: shared.spec.element_schema(req.method.as_str(), path) }
}

fn kind_of(r: Resource) -> DocKind {
    if matches!(r, Resource::Invoices) { DocKind::Invoice } else { DocKind::CreditNote }
}

#[allow(clippy::too_many_arguments)]
pub fn write(
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
    let check = spec_check(shared, req);
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
            let found = tenant
                .docs(kind_of(r))
                .iter()
                .find(|d| d.id.to_string().eq_ignore_ascii_case(id) || d.number.as_deref() == Some(id.as_str()))
                .map(|d| d.id);
            match found {
                Some(f) => Some(f),
                None => return Reply::not_found(),
            }
        }
        (Some(id), Resource::Items) => match crate::items::find(tenant, id) {
            Some(f) => Some(f),
            None => return Reply::not_found(),
        },
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
    let mut echoes = items.clone();
    let mut results: Vec<Result<Uuid, Vec<String>>> = vec![];
    for (element, echo) in items.iter().zip(echoes.iter_mut()) {
        // Whether the element updates a stored object decides which `required` rules apply.
        let result = match r {
            Resource::Contacts => {
                let existing = target.or_else(|| if is_put { None } else { find_contact_for_update(&work, element) });
                check.run(element, existing.is_some(), echo).and_then(|()| match existing {
                    Some(id) => update_contact(&mut work, id, element, now).map(|_| id),
                    None => create_contact(&mut work, element, now),
                })
            }
            Resource::Invoices | Resource::CreditNotes => {
                let kind = kind_of(r);
                let existing = match target {
                    Some(t) => Ok(Some(t)),
                    None if is_put => Ok(None),
                    None => find_document(&work, kind, element),
                };
                match existing {
                    Ok(existing) => check
                        .run(element, existing.is_some(), echo)
                        .and_then(|()| save_document(&mut work, kind, element, existing, unit_dp, now)),
                    Err(e) => Err(vec![e]),
                }
            }
            Resource::Items => {
                let existing = match target {
                    Some(t) => Ok(Some(t)),
                    None => crate::items::existing(&work, element, is_put),
                };
                existing.map_err(|e| vec![e]).and_then(|existing| {
                    check
                        .run(element, existing.is_some(), echo)
                        .and_then(|()| crate::items::save(&mut work, element, existing, now))
                })
            }
            Resource::Payments => check.run(element, target.is_some(), echo).and_then(|()| match target {
                Some(id) => delete_payment(&mut work, id, element, now).map(|_| id),
                None => create_payment(&mut work, element, now),
            }),
            _ => Err(vec!["This resource cannot be written.".into()]),
        };
        results.push(result);
    }
    let failed = results.iter().any(Result::is_err);
    if failed && summarize {
        let elements = echoes
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
    let out: Vec<Value> = echoes
        .iter()
        .zip(&results)
        .map(|(echo, res)| match res {
            Ok(id) => {
                let mut v = object_json(tenant, r, *id);
                if !summarize {
                    v["StatusAttributeString"] = json!("OK");
                }
                v
            }
            Err(errors) => with_errors(echo, r, errors),
        })
        .collect();
    Reply::json(200, envelope(state, shared, ctx, r.key(), out, None))
}

pub fn allocations(
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
    let check = spec_check(shared, req);
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
        let mut echo = element.clone();
        match check.run(element, false, &mut echo).and_then(|()| allocate(&mut work, cn, element, now)) {
            Ok(id) => created.push(id),
            Err(errors) => {
                if !echo.is_object() {
                    echo = json!({});
                }
                echo["ValidationErrors"] = error_list(&errors);
                failures.push(echo);
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

/// `DELETE /CreditNotes/{id}/Allocations/{AllocationID}`: the allocation is taken back, and the
/// invoice and the credit note owe and hold what they did before it. Xero answers the
/// allocation itself, `IsDeleted` true.
pub fn remove_allocation(
    state: &mut State,
    tenant_id: Uuid,
    credit_note: &str,
    allocation: &str,
    now: DateTime<Utc>,
) -> Reply {
    let Some(tenant) = state.tenant_mut(tenant_id) else { return Reply::not_found() };
    let Some(cn) =
        tenant.credit_notes.iter().find(|c| c.id.to_string().eq_ignore_ascii_case(credit_note)).map(|c| c.id)
    else {
        return Reply::not_found();
    };
    let Some(at) = tenant
        .allocations
        .iter()
        .position(|a| a.credit_note_id == cn && a.id.to_string().eq_ignore_ascii_case(allocation))
    else {
        return Reply::not_found();
    };
    let removed = tenant.allocations.remove(at);
    crate::documents::unallocate(tenant, &removed, now);
    let invoice = tenant.invoices.iter().find(|i| i.id == removed.invoice_id);
    Reply::json(
        200,
        json!({
            "AllocationID": removed.id,
            "Amount": crate::util::money(removed.amount),
            "Date": crate::util::ms_date_of_day(removed.date),
            "Invoice": invoice.map(|i| document_json(tenant, i, true, false)),
            "IsDeleted": true,
        }),
    )
}
