//! Reading an organisation's reference data from Xero (the snapshot type is the domain's):
//! which lists, how each is asked for, and how their answers become one snapshot. The settings
//! page and the push read it here whole; the import sends the same requests through its own
//! rate-limited loop and hands the answers to [`assemble`].

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use xero_sync_domain::error::without_values;
use xero_sync_domain::model::Connection;
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::xero::{Accounts, Currencies, Items, TaxRates, TrackingCategories};
use xero_sync_xero::{ApiRequest, XeroError};

use crate::token_provider::{TokenError, TokenProvider};

/// The five lists, in the order [`assemble`] takes their answers.
pub const LISTS: [&str; 5] = ["/Accounts", "/TaxRates", "/TrackingCategories", "/Items", "/Currencies"];

/// The request for one of [`LISTS`]. Archived tracking categories are listed too: a mapping to
/// one must be reported as archived, not as gone.
pub fn request(path: &'static str) -> ApiRequest<'static> {
    let mut request = ApiRequest::new(path);
    if path == "/TrackingCategories" {
        request.query = vec![("includeArchived", "true".into())];
    }
    request
}

/// A list that did not parse is the client's own `Unreadable` (retryable), naming the list,
/// never its content.
fn parse<T: DeserializeOwned>(bodies: &[Box<RawValue>], n: usize, what: &str) -> Result<T, XeroError> {
    let unreadable = |reason: String| XeroError::Unreadable { what: what.to_owned(), reason, maybe_applied: false };
    let body = bodies.get(n).ok_or_else(|| unreadable("no answer".into()))?;
    serde_json::from_str(body.get()).map_err(|e| unreadable(without_values(&e.to_string())))
}

/// The snapshot from the answers to [`LISTS`], in that order. All or nothing: a partial
/// snapshot would read as deletions.
pub fn assemble(bodies: &[Box<RawValue>], now: DateTime<Utc>) -> Result<ReferenceData, XeroError> {
    let accounts: Accounts = parse(bodies, 0, "accounts")?;
    let tax_rates: TaxRates = parse(bodies, 1, "tax rates")?;
    let tracking: TrackingCategories = parse(bodies, 2, "tracking categories")?;
    let items: Items = parse(bodies, 3, "items")?;
    let currencies: Currencies = parse(bodies, 4, "currencies")?;
    Ok(ReferenceData {
        read_at: now,
        accounts: accounts.accounts,
        tax_rates: tax_rates.tax_rates,
        tracking_categories: tracking.tracking_categories,
        items: items.items,
        currencies: currencies.currencies,
    })
}

/// Whether Xero honours `If-Modified-Since` on the list (the spec lists it for Accounts and
/// Items; TaxRates, TrackingCategories and Currencies always answer whole).
pub fn takes_if_modified_since(path: &str) -> bool {
    matches!(path, "/Accounts" | "/Items")
}

/// The snapshot from `kept` and the answers to [`LISTS`] asked with `If-Modified-Since` where
/// Xero takes it: the changed accounts and items replace or join the kept ones (by id), the
/// other lists are whole.
pub fn assemble_onto(
    kept: &ReferenceData,
    bodies: &[Box<RawValue>],
    now: DateTime<Utc>,
) -> Result<ReferenceData, XeroError> {
    let mut data = assemble(bodies, now)?;
    data.accounts = merge(&kept.accounts, std::mem::take(&mut data.accounts), |a| a.account_id);
    data.items = merge(&kept.items, std::mem::take(&mut data.items), |i| i.item_id);
    Ok(data)
}

/// `kept` with each of `changed` in place of the one with its id, or added, in `kept`'s order.
fn merge<T: Clone>(kept: &[T], changed: Vec<T>, id: impl Fn(&T) -> uuid::Uuid) -> Vec<T> {
    let mut out: Vec<T> = kept.to_vec();
    for one in changed {
        match out.iter_mut().find(|k| id(k) == id(&one)) {
            Some(slot) => *slot = one,
            None => out.push(one),
        }
    }
    out
}

/// Reads all five from Xero now (five calls, one after another: Xero allows five concurrent
/// calls per organisation, and other work may be using some).
pub async fn read_from_xero(
    tokens: &TokenProvider,
    connection: &Connection,
    now: DateTime<Utc>,
) -> Result<ReferenceData, TokenError> {
    let mut bodies = Vec::with_capacity(LISTS.len());
    for path in LISTS {
        bodies.push(tokens.get::<Box<RawValue>>(connection, &request(path)).await?.body);
    }
    assemble(&bodies, now).map_err(TokenError::Xero)
}
