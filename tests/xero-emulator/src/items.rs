//! Items written through the API, as Xero's `/Items` behaves: `PUT` creates, `POST` creates or
//! updates (by ItemID, else by Code), `DELETE /Items/{id}` removes one for good (Xero's items
//! have no archive). Codes are unique; a sales account and tax type must exist and be usable
//! for sales; an item no longer sold loses its sales details.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::http::Reply;
use crate::model::{Item, ItemDetails};
use crate::state::{State, Tenant};
use crate::util::{field, ms_date, parse_decimal, str_field, uuid_field};

/// The item a path names: its ItemID or its Code.
pub fn find(tenant: &Tenant, id: &str) -> Option<Uuid> {
    let by_id = Uuid::parse_str(id).ok().filter(|u| tenant.items.iter().any(|i| i.item_id == *u));
    by_id.or_else(|| tenant.items.iter().find(|i| i.code.eq_ignore_ascii_case(id)).map(|i| i.item_id))
}

/// The item an element updates: by its ItemID (which must exist), else, for a POST, by its Code.
/// A PUT whose code is taken is refused.
pub fn existing(tenant: &Tenant, v: &Value, is_put: bool) -> Result<Option<Uuid>, String> {
    if let Some(id) = uuid_field(v, "ItemID") {
        let id = id.map_err(|bad| format!("'{bad}' is not a valid ItemID."))?;
        return match tenant.items.iter().any(|i| i.item_id == id) {
            true if !is_put => Ok(Some(id)),
            true => Err(format!("Item {id} already exists.")),
            false => Err(format!("Item {id} could not be found.")),
        };
    }
    let code = str_field(v, "Code").unwrap_or_default();
    match tenant.items.iter().find(|i| i.code.eq_ignore_ascii_case(code.trim())) {
        Some(i) if is_put => Err(format!("Item code '{}' already exists.", i.code)),
        Some(i) => Ok(Some(i.item_id)),
        None => Ok(None),
    }
}

/// Creates or updates one item; what Xero would refuse comes back as its messages.
pub fn save(tenant: &mut Tenant, v: &Value, existing: Option<Uuid>, now: DateTime<Utc>) -> Result<Uuid, Vec<String>> {
    let mut item = match existing {
        Some(id) => tenant
            .items
            .iter()
            .find(|i| i.item_id == id)
            .cloned()
            .ok_or(vec![format!("Item {id} could not be found.")])?,
        None => Item {
            item_id: Uuid::new_v4(),
            code: String::new(),
            name: String::new(),
            description: None,
            is_sold: true,
            is_purchased: false,
            is_tracked_as_inventory: false,
            sales_details: ItemDetails::default(),
            purchase_details: ItemDetails::default(),
        },
    };
    let mut errors = Vec::new();
    if let Some(code) = str_field(v, "Code") {
        item.code = code.trim().to_owned();
    }
    if item.code.is_empty() {
        errors.push("Item code must be specified.".to_owned());
    } else if tenant.items.iter().any(|i| i.item_id != item.item_id && i.code.eq_ignore_ascii_case(&item.code)) {
        errors.push(format!("Item code '{}' already exists.", item.code));
    }
    if let Some(name) = str_field(v, "Name") {
        item.name = name;
    }
    if let Some(description) = str_field(v, "Description") {
        item.description = Some(description);
    }
    if let Some(sold) = field(v, "IsSold").and_then(Value::as_bool) {
        item.is_sold = sold;
    }
    if let Some(sales) = field(v, "SalesDetails") {
        if let Some(price) = field(sales, "UnitPrice") {
            match parse_decimal(price) {
                Some(p) => item.sales_details.unit_price = Some(p),
                None => errors.push("SalesDetails.UnitPrice must be a number.".into()),
            }
        }
        if let Some(code) = str_field(sales, "AccountCode") {
            match tenant.accounts.iter().find(|a| a.code == code) {
                Some(a) if a.status == "ACTIVE" && a.account_type != "BANK" => {
                    item.sales_details.account_code = Some(code)
                }
                _ => errors.push(format!("Account code '{code}' is not a valid code for this document.")),
            }
        }
        if let Some(tax) = str_field(sales, "TaxType") {
            match tenant.tax_rates.iter().find(|t| t.tax_type == tax) {
                Some(t) if t.status == "ACTIVE" => item.sales_details.tax_type = Some(tax),
                _ => errors.push(format!(
                    "The TaxType code '{tax}' does not exist or cannot be used for this type of transaction."
                )),
            }
        }
    }
    if !item.is_sold {
        // As Xero does: an item no longer sold keeps no sales details.
        item.sales_details = ItemDetails::default();
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = item.item_id;
    match tenant.items.iter_mut().find(|i| i.item_id == id) {
        Some(slot) => *slot = item,
        None => tenant.items.push(item),
    }
    tenant.item_updated.insert(id, now);
    Ok(id)
}

pub fn item_json(tenant: &Tenant, id: Uuid) -> Option<Value> {
    let item = tenant.items.iter().find(|i| i.item_id == id)?;
    let mut v = serde_json::to_value(item).ok()?;
    let at = tenant.item_updated.get(&id).copied().unwrap_or(tenant.reference_updated);
    v["UpdatedDateUTC"] = json!(ms_date(at));
    Some(v)
}

/// `DELETE /Items/{ItemID}`: gone for good; Xero answers 204 with no body.
pub fn delete(state: &mut State, tenant_id: Uuid, id: &str) -> Reply {
    let Some(tenant) = state.tenant_mut(tenant_id) else { return Reply::not_found() };
    let Some(found) = Uuid::parse_str(id).ok().filter(|u| tenant.items.iter().any(|i| i.item_id == *u)) else {
        return Reply::not_found();
    };
    tenant.items.retain(|i| i.item_id != found);
    tenant.item_updated.remove(&found);
    Reply::no_content()
}
