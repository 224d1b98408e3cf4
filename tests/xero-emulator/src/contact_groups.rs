//! Contact groups (`/ContactGroups`), as Xero answers them: the list names each active group
//! (no members); one group by its id lists its contacts (ContactID and Name); `PUT` creates
//! groups, `POST /ContactGroups/{id}` renames or deletes one (`Status` `DELETED`),
//! `PUT /ContactGroups/{id}/Contacts` adds contacts and `DELETE .../Contacts/{ContactID}` (or all,
//! without one) takes them out.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::{Reply, Req};
use crate::identity::TokenCtx;
use crate::server::Shared;
use crate::state::{ContactGroup, State, Tenant};
use crate::util::{field, str_field, uuid_field};

fn group_json(tenant: &Tenant, group: &ContactGroup, with_contacts: bool) -> Value {
    let contacts: Vec<Value> = match with_contacts {
        true => group
            .members
            .iter()
            .filter_map(|id| tenant.contact(*id))
            .map(|c| json!({ "ContactID": c.id, "Name": c.name() }))
            .collect(),
        false => Vec::new(),
    };
    json!({ "ContactGroupID": group.id, "Name": group.name, "Status": group.status, "Contacts": contacts })
}

fn envelope(state: &State, shared: &Shared, ctx: &TokenCtx, key: &str, items: Vec<Value>) -> Reply {
    Reply::json(200, crate::accounting::envelope(state, shared, ctx, key, items, None))
}

fn list_of(body: &Value, key: &str) -> Vec<Value> {
    match field(body, key) {
        Some(Value::Array(items)) => items.clone(),
        Some(one) => vec![one.clone()],
        None => vec![body.clone()],
    }
}

#[allow(clippy::too_many_arguments)]
pub fn route(
    state: &mut State,
    shared: &Shared,
    req: &Req,
    ctx: &TokenCtx,
    tenant_id: Uuid,
    id: Option<String>,
    sub: Option<String>,
    member: Option<String>,
) -> Reply {
    let method = req.method.as_str().to_owned();
    if state.tenant(tenant_id).is_none() {
        return Reply::not_found();
    }
    let group = id.as_deref().map(|id| {
        let tenant = state.tenant(tenant_id).expect("checked above");
        Uuid::parse_str(id).ok().filter(|g| tenant.contact_groups.iter().any(|c| c.id == *g && c.status == "ACTIVE"))
    });
    match (method.as_str(), group, sub.as_deref(), member) {
        ("GET", None, None, None) => {
            let tenant = state.tenant(tenant_id).expect("checked above");
            let mut groups: Vec<Value> = tenant
                .contact_groups
                .iter()
                .filter(|g| g.status == "ACTIVE")
                .map(|g| group_json(tenant, g, false))
                .collect();
            if let Some(clause) = req.query("where") {
                match crate::query::parse_where(clause) {
                    Ok(expr) => groups.retain(|g| crate::query::eval(&expr, g)),
                    Err(e) => return Reply::error(400, "QueryParseException", &e),
                }
            }
            envelope(state, shared, ctx, "ContactGroups", groups)
        }
        (_, Some(None), ..) => Reply::not_found(),
        ("GET", Some(Some(g)), None, None) => {
            let tenant = state.tenant(tenant_id).expect("checked above");
            let found = tenant.contact_groups.iter().find(|c| c.id == g).map(|c| group_json(tenant, c, true));
            envelope(state, shared, ctx, "ContactGroups", found.into_iter().collect())
        }
        ("PUT", None, None, None) => create(state, shared, req, ctx, tenant_id),
        ("POST", Some(Some(g)), None, None) => update(state, shared, req, ctx, tenant_id, g),
        ("PUT", Some(Some(g)), Some("contacts"), None) => add(state, shared, req, ctx, tenant_id, g),
        ("DELETE", Some(Some(g)), Some("contacts"), member) => {
            let tenant = state.tenant_mut(tenant_id).expect("checked above");
            let Some(group) = tenant.contact_groups.iter_mut().find(|c| c.id == g) else { return Reply::not_found() };
            match member.map(|m| Uuid::parse_str(&m)) {
                None => group.members.clear(),
                Some(Ok(m)) if group.members.contains(&m) => group.members.retain(|x| *x != m),
                Some(_) => return Reply::not_found(),
            }
            Reply::no_content()
        }
        (m, ..) => Reply::text(405, &format!("The requested resource does not support http method '{m}'.")),
    }
}

fn body(req: &Req) -> Result<Value, Reply> {
    req.json()
}

fn name_taken(tenant: &Tenant, name: &str, except: Option<Uuid>) -> bool {
    tenant
        .contact_groups
        .iter()
        .any(|g| g.status == "ACTIVE" && Some(g.id) != except && g.name.trim().eq_ignore_ascii_case(name.trim()))
}

fn create(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant_id: Uuid) -> Reply {
    let body = match body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let tenant = state.tenant_mut(tenant_id).expect("checked by the caller");
    let mut created = Vec::new();
    for element in list_of(&body, "ContactGroups") {
        let name = str_field(&element, "Name").unwrap_or_default();
        if name.trim().is_empty() {
            return Reply::validation_message("The contact group name must be specified.");
        }
        if name_taken(tenant, &name, None) {
            return Reply::validation_message(&format!("The contact group name '{name}' is already in use."));
        }
        let group = ContactGroup { id: Uuid::new_v4(), name, status: "ACTIVE".into(), members: Vec::new() };
        created.push(group.id);
        tenant.contact_groups.push(group);
    }
    let tenant = state.tenant(tenant_id).expect("checked by the caller");
    let out = tenant
        .contact_groups
        .iter()
        .filter(|g| created.contains(&g.id))
        .map(|g| group_json(tenant, g, false))
        .collect();
    envelope(state, shared, ctx, "ContactGroups", out)
}

fn update(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant_id: Uuid, id: Uuid) -> Reply {
    let body = match body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let element = list_of(&body, "ContactGroups").into_iter().next().unwrap_or(Value::Null);
    let tenant = state.tenant_mut(tenant_id).expect("checked by the caller");
    if let Some(name) = str_field(&element, "Name") {
        if name_taken(tenant, &name, Some(id)) {
            return Reply::validation_message(&format!("The contact group name '{name}' is already in use."));
        }
    }
    let Some(group) = tenant.contact_groups.iter_mut().find(|g| g.id == id) else { return Reply::not_found() };
    if let Some(name) = str_field(&element, "Name") {
        group.name = name;
    }
    match str_field(&element, "Status").as_deref() {
        None | Some("ACTIVE") => {}
        Some("DELETED") => group.status = "DELETED".into(),
        Some(other) => return Reply::validation_message(&format!("Status '{other}' is not valid.")),
    }
    let tenant = state.tenant(tenant_id).expect("checked by the caller");
    let out = tenant.contact_groups.iter().filter(|g| g.id == id).map(|g| group_json(tenant, g, false)).collect();
    envelope(state, shared, ctx, "ContactGroups", out)
}

fn add(state: &mut State, shared: &Shared, req: &Req, ctx: &TokenCtx, tenant_id: Uuid, id: Uuid) -> Reply {
    let body = match body(req) {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let tenant = state.tenant_mut(tenant_id).expect("checked by the caller");
    let mut added = Vec::new();
    for element in list_of(&body, "Contacts") {
        match uuid_field(&element, "ContactID") {
            Some(Ok(c)) if tenant.contact(c).is_some() => added.push(c),
            _ => {
                return Reply::validation_message(
                    "A contact to add must be given by the ContactID of an existing contact.",
                );
            }
        }
    }
    let Some(group) = tenant.contact_groups.iter_mut().find(|g| g.id == id) else { return Reply::not_found() };
    for c in &added {
        if !group.members.contains(c) {
            group.members.push(*c);
        }
    }
    let tenant = state.tenant(tenant_id).expect("checked by the caller");
    let out = added
        .iter()
        .filter_map(|c| tenant.contact(*c))
        .map(|c| json!({ "ContactID": c.id, "Name": c.name() }))
        .collect();
    envelope(state, shared, ctx, "Contacts", out)
}
