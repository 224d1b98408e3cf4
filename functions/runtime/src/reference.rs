//! Reading an organisation's reference data from Xero (the snapshot type is the domain's).

use chrono::{DateTime, Utc};
use xero_sync_domain::model::Connection;
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::xero::{Accounts, Currencies, Items, TaxRates, TrackingCategories};
use xero_sync_xero::ApiRequest;

use crate::token_provider::{TokenError, TokenProvider};

/// Reads all five from Xero now (five calls, one after another: Xero allows five concurrent
/// calls per organisation, and other work may be using some).
pub async fn read_from_xero(
    tokens: &TokenProvider,
    connection: &Connection,
    now: DateTime<Utc>,
) -> Result<ReferenceData, TokenError> {
    let accounts: Accounts = tokens.get(connection, &ApiRequest::new("/Accounts")).await?.body;
    let tax_rates: TaxRates = tokens.get(connection, &ApiRequest::new("/TaxRates")).await?.body;
    let tracking: TrackingCategories = tokens.get(connection, &ApiRequest::new("/TrackingCategories")).await?.body;
    let items: Items = tokens.get(connection, &ApiRequest::new("/Items")).await?.body;
    let currencies: Currencies = tokens.get(connection, &ApiRequest::new("/Currencies")).await?.body;
    Ok(ReferenceData {
        read_at: now,
        accounts: accounts.accounts,
        tax_rates: tax_rates.tax_rates,
        tracking_categories: tracking.tracking_categories,
        items: items.items,
        currencies: currencies.currencies,
    })
}
