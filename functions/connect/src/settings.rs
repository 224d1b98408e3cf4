//! Sync settings over the connection API: what can be chosen (options), what is chosen
//! (settings, versioned), and whether what is chosen still exists in Xero (validate).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Deserialize;
use serde_json::json;
use xero_sync_domain::model::{Connection, ConnectionKey};
use xero_sync_domain::problem::Problem;
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::scopes::Feature;
use xero_sync_domain::settings::{ConnectionSettings, ContactsSentBack, VersionedSettings, check, validate_in_use};
use xero_sync_http::{ApiError, json};
use xero_sync_runtime::reference::read_from_xero;

use crate::Connect;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsWrite {
    /// The version the admin's form was based on (0 for never written).
    version: u64,
    settings: ConnectionSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateRequest {
    /// GL account codes the platform uses itself (say, on products), checked too.
    #[serde(default)]
    account_codes: Vec<String>,
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    xero_sync_http::parse_json(body).map_err(|p| ApiError::BadRequest(vec![p]))
}

/// From the latest snapshot while fresh, else from Xero (and kept for next time).
pub async fn reference_data(
    connect: &Connect,
    connection: &Connection,
    prefer_snapshot: bool,
) -> Result<(ReferenceData, &'static str), ApiError> {
    let app = &connect.app;
    let key = connection.key();
    if prefer_snapshot {
        if let Some(snapshot) = app.services.store.get_reference_data(&key).await? {
            if snapshot.is_fresh(app.now()) {
                return Ok((snapshot, "snapshot"));
            }
        }
    }
    let data = read_from_xero(&app.tokens, connection, app.now()).await?;
    app.services.store.put_reference_data(&key, &data).await?;
    Ok((data, "xero"))
}

pub async fn options(connect: &Connect, connection: &Connection) -> Result<Response<Body>, ApiError> {
    let (data, source) = reference_data(connect, connection, true).await?;
    let tax_rates: Vec<_> = data
        .tax_rates
        .iter()
        .filter(|t| t.usable_for_sales())
        .map(|t| {
            json!({
                "name": t.name,
                "tax_type": t.tax_type,
                "effective_rate": t.effective().normalize().to_string(),
                "components": t.tax_components.iter().map(|c| json!({"name": c.name, "rate": c.rate.normalize().to_string(), "compound": c.is_compound})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let accounts: Vec<_> = data
        .accounts
        .iter()
        .filter(|a| a.usable_for_sales())
        .map(|a| json!({"code": a.code, "name": a.name, "type": a.account_type, "class": a.class, "payments_enabled": a.enable_payments_to_account}))
        .collect();
    let tracking: Vec<_> = data
        .tracking_categories
        .iter()
        .filter(|c| c.is_active())
        .map(|c| {
            let options: Vec<_> = c.options.iter().filter(|o| o.is_active()).map(|o| &o.name).collect();
            json!({"id": c.tracking_category_id, "name": c.name, "options": options})
        })
        .collect();
    let items: Vec<_> = data
        .items
        .iter()
        .filter(|i| i.is_sold != Some(false))
        .map(|i| json!({"code": i.code, "name": i.name, "sales_account_code": i.sales_details.as_ref().and_then(|d| d.account_code.clone())}))
        .collect();
    // Where payments may go (`settings.payment_accounts`): bank accounts, and any account with
    // payments enabled, as Xero's payment mapping asks.
    let payment_accounts: Vec<_> = data
        .accounts
        .iter()
        .filter(|a| a.takes_payments())
        .map(|a| json!({"id": a.account_id, "code": a.code, "name": a.name, "type": a.account_type}))
        .collect();
    let currencies: Vec<_> =
        data.currencies.iter().map(|c| json!({"code": c.code, "description": c.description})).collect();
    // What `contact_groups` may name (a consent without the contacts scope offers none).
    let groups: Vec<_> = if contacts_allowed(connection) {
        let listed = xero_sync_runtime::contact_groups::listed(&connect.app, connection).await?;
        listed.groups.iter().map(|g| json!({"id": g.id, "name": g.name})).collect()
    } else {
        Vec::new()
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "read_at": xero_sync_domain::time::format(data.read_at),
            "source": source,
            "sales_accounts": accounts,
            "payment_accounts": payment_accounts,
            "payment_methods": ["card", "cash", "bank_transfer", "cheque", "online", "other"],
            "tax_rates": tax_rates,
            "tracking_categories": tracking,
            "items": items,
            "currencies": currencies,
            "contact_groups": groups,
            "contacts_sent_back": ["all", "customers", "groups"],
        }),
    ))
}

pub async fn get(connect: &Connect, key: &ConnectionKey) -> Result<Response<Body>, ApiError> {
    let current = connect.app.services.store.get_settings(key).await?;
    Ok(json(StatusCode::OK, &current))
}

/// A settings document is a few kilobytes; this leaves room and keeps it inside an item.
const MAX_SETTINGS_BODY: usize = 128 * 1024;

pub async fn put(connect: &Connect, connection: &Connection, body: &[u8]) -> Result<Response<Body>, ApiError> {
    if body.len() > MAX_SETTINGS_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_SETTINGS_BODY });
    }
    let write: SettingsWrite = parse_body(body)?;
    let saved = save(connect, connection, write.version, &write.settings).await?;
    Ok(json(StatusCode::OK, &saved))
}

/// The one versioned settings write, for the API and the integration page: a stale version is
/// a 409, a broken rule a 422 listing every problem, and nothing is saved unless all is well.
pub async fn save(
    connect: &Connect,
    connection: &Connection,
    version: u64,
    settings: &ConnectionSettings,
) -> Result<VersionedSettings, ApiError> {
    let key = connection.key();
    let store = &connect.app.services.store;
    // Refuse a stale write before spending Xero calls on checking it.
    let current = store.get_settings(&key).await?;
    if current.version != version {
        return Err(stale(version, current.version));
    }
    // Checked against Xero as it is now, not a snapshot: an account archived since the last
    // import must not be accepted.
    let (data, _) = reference_data(connect, connection, false).await?;
    let mut problems = check(settings, &data);
    problems.extend(group_problems(connect, connection, settings).await?);
    if !problems.is_empty() {
        return Err(ApiError::Unprocessable(problems));
    }
    let saved = match store.put_settings(&key, version, settings).await {
        Ok(saved) => saved,
        Err(xero_sync_domain::Error::Conflict(_)) => {
            let now_at = store.get_settings(&key).await?.version;
            return Err(stale(version, now_at));
        }
        Err(e) => return Err(e.into()),
    };
    store.record_activity(&key, connect.app.now()).await?;
    Ok(saved)
}

pub fn contacts_allowed(connection: &Connection) -> bool {
    connection.scopes.as_deref().is_none_or(|s| Feature::Contacts.allowed_by(s))
}

/// Sending back the members of contact groups needs groups that exist in Xero now.
async fn group_problems(
    connect: &Connect,
    connection: &Connection,
    settings: &ConnectionSettings,
) -> Result<Vec<Problem>, ApiError> {
    if settings.contacts_sent_back != ContactsSentBack::Groups {
        return Ok(Vec::new());
    }
    if settings.contact_groups.is_empty() {
        return Ok(vec![Problem::new("contact_groups", "names no group, and contacts_sent_back is groups")]);
    }
    if !contacts_allowed(connection) {
        return Ok(vec![Problem::new(
            "contacts_sent_back",
            format!("needs the {} scope: reconnect to allow contacts", Feature::Contacts.scope()),
        )]);
    }
    let mut listed = xero_sync_runtime::contact_groups::listed(&connect.app, connection).await?;
    if settings.contact_groups.iter().any(|id| !listed.groups.iter().any(|g| g.id == *id)) {
        // Made in Xero since the list was read, perhaps: ask Xero before refusing.
        listed = xero_sync_runtime::contact_groups::read_list(&connect.app, connection, Some(listed)).await?;
    }
    Ok(settings
        .contact_groups
        .iter()
        .enumerate()
        .filter(|(_, id)| !listed.groups.iter().any(|g| g.id == **id))
        .map(|(i, id)| {
            Problem::new(format!("contact_groups[{i}]"), format!("contact group {id} does not exist in Xero"))
        })
        .collect())
}

fn stale(based_on: u64, current: u64) -> ApiError {
    ApiError::Conflict(format!(
        "the settings changed since version {based_on} (now version {current}); reload them and apply your change again"
    ))
}

pub async fn validate(connect: &Connect, connection: &Connection, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let request: ValidateRequest =
        if body.iter().all(u8::is_ascii_whitespace) { ValidateRequest::default() } else { parse_body(body)? };
    let (problems, checked_at) = validate_now(connect, connection, &request.account_codes).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "ok": problems.is_empty(), "problems": problems, "checked_at": xero_sync_domain::time::format(checked_at) }),
    ))
}

/// "Validate accounts": what the saved settings (and `account_codes`) use, checked against Xero
/// as it is now; the problems, and when Xero was read.
pub async fn validate_now(
    connect: &Connect,
    connection: &Connection,
    account_codes: &[String],
) -> Result<(Vec<Problem>, chrono::DateTime<chrono::Utc>), ApiError> {
    let key = connection.key();
    let (data, _) = reference_data(connect, connection, false).await?;
    let settings = connect.app.services.store.get_settings(&key).await?.settings;
    let problems = validate_in_use(&settings, account_codes, &data);
    connect.app.services.store.record_activity(&key, connect.app.now()).await?;
    Ok((problems, data.read_at))
}
