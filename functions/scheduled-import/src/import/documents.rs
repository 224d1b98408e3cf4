//! Contacts, our invoices' payment status and payments, as Xero lists them, turned into the
//! platform's events.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::decimal;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::SyncRecord;
use xero_sync_domain::xero::date;

use super::{ImportError, Item, Run};

impl Run<'_> {
    pub(super) async fn contact_events(&mut self, items: &[&Item]) -> Result<Vec<PlatformEvent>, ImportError> {
        let contacts: Vec<XeroContact> = self.parse(items);
        let ids: Vec<Uuid> = contacts.iter().map(|c| c.contact_id).collect();
        let mapped = self.app.services.store.customers_for_xero_ids(&self.key, &ids).await?;
        Ok(contacts
            .iter()
            .map(|c| {
                let data = contact_data(c, mapped.get(&c.contact_id).map(|id| id.as_str()));
                let dedup = format!("{}|{}", c.contact_id, xero_sync_domain::time::format(c.updated));
                self.event(EventKind::ContactUpserted, &dedup, data)
            })
            .collect())
    }

    /// Our invoices only (Xero's other sales invoices are not the platform's business), and only
    /// when their payment state moved since it was last announced.
    pub(super) async fn invoice_events(
        &mut self,
        items: &[&Item],
    ) -> Result<(Vec<PlatformEvent>, Vec<StateChange>), ImportError> {
        let invoices: Vec<XeroInvoice> = self.parse(items);
        let ids: Vec<Uuid> = invoices.iter().map(|i| i.invoice_id).collect();
        let store = &self.app.services.store;
        let ours = store.invoices_for_xero_ids(&self.key, &ids).await?;
        let mut events = Vec::new();
        let mut changes = Vec::new();
        for invoice in &invoices {
            let Some(platform_id) = ours.get(&invoice.invoice_id) else { continue };
            // A reference without its record (its write failed): nothing was announced for it.
            let Some(record) = store.get_sync_record(&self.key, platform_id).await? else { continue };
            let state = format!(
                "{}|{}|{}|{}",
                invoice.status,
                invoice.amount_paid.normalize(),
                invoice.amount_credited.normalize(),
                invoice.amount_due.normalize()
            );
            if record.payment_state.as_deref() == Some(state.as_str()) {
                continue;
            }
            let updated = xero_sync_domain::time::format(invoice.updated);
            let data = json!({
                "xero_invoice_id": invoice.invoice_id,
                "invoice_id": platform_id,
                "invoice_number": invoice.invoice_number,
                "status": invoice.status,
                "total": invoice.total.normalize().to_string(),
                "amount_due": invoice.amount_due.normalize().to_string(),
                "amount_paid": invoice.amount_paid.normalize().to_string(),
                "amount_credited": invoice.amount_credited.normalize().to_string(),
                "currency": invoice.currency_code,
                "fully_paid_on": invoice.fully_paid_on_date.map(|d| d.format("%Y-%m-%d").to_string()),
                "updated_at": updated,
            });
            // The time is in the id: PAID, payment deleted, PAID again is three facts.
            let dedup = format!("{}|{state}|{updated}", invoice.invoice_id);
            events.push(self.event(EventKind::InvoicePaymentStatusChanged, &dedup, data));
            changes.push(StateChange { record, state, status: invoice.status.clone() });
        }
        Ok((events, changes))
    }

    /// Records announced payment states on the sync records (so the push knows a paid invoice
    /// cannot change, and the next run what is news).
    pub(super) async fn note_payment_states(&self, changes: Vec<StateChange>) -> Result<(), ImportError> {
        let store = &self.app.services.store;
        for change in changes {
            let mut record = Some(change.record);
            for _ in 0..3 {
                let Some(mut next) = record.take() else { break };
                next.payment_state = Some(change.state.clone());
                next.xero_status = Some(change.status.clone());
                match store.save_sync_record(&next).await {
                    Ok(_) => break,
                    // A push wrote meanwhile: read it again.
                    Err(Error::Conflict(_)) => record = store.get_sync_record(&self.key, &next.invoice_id).await?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    pub(super) async fn payment_events(&mut self, items: &[&Item]) -> Result<Vec<PlatformEvent>, ImportError> {
        let payments: Vec<XeroPayment> = self.parse(items);
        let ids: Vec<Uuid> = payments.iter().filter_map(|p| p.invoice.as_ref().map(|i| i.invoice_id)).collect();
        let ours = self.app.services.store.invoices_for_xero_ids(&self.key, &ids).await?;
        let mut events = Vec::new();
        for p in &payments {
            let Some(invoice) = &p.invoice else { continue };
            let Some(platform_id) = ours.get(&invoice.invoice_id) else { continue };
            let kind = match p.status.as_str() {
                "AUTHORISED" => EventKind::PaymentRecorded,
                "DELETED" => EventKind::PaymentReversed,
                _ => continue,
            };
            let data = json!({
                "xero_payment_id": p.payment_id,
                "xero_invoice_id": invoice.invoice_id,
                "invoice_id": platform_id,
                "invoice_number": invoice.invoice_number,
                "amount": p.amount.normalize().to_string(),
                "currency": invoice.currency_code,
                "date": p.date.format("%Y-%m-%d").to_string(),
                "reference": p.reference.clone().filter(|r| !r.is_empty()),
                "status": p.status,
                "updated_at": xero_sync_domain::time::format(p.updated),
            });
            events.push(self.event(kind, &format!("{}|{}", p.payment_id, p.status), data));
        }
        Ok(events)
    }
}

/// A payment state to record once its event is published.
pub(super) struct StateChange {
    /// As read when the change was found; saved conditionally on its version.
    pub(super) record: SyncRecord,
    pub(super) state: String,
    pub(super) status: String,
}

pub(super) fn xero_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.as_deref().and_then(date::parse))
}

/// The timestamps and dates the platform's events require: a Xero object without one is
/// skipped (and logged) rather than announced half-known.
pub(super) fn xero_time_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(d)?;
    date::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text} is not a Xero date")))
}

pub(super) fn xero_day<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Ok(xero_time(d)?.map(|t| t.date_naive()))
}

pub(super) fn xero_day_required<'de, D: serde::Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    Ok(xero_time_required(d)?.date_naive())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XeroPhone {
    #[serde(default)]
    pub(super) phone_type: Option<String>,
    #[serde(default)]
    pub(super) phone_number: Option<String>,
    #[serde(default)]
    pub(super) phone_area_code: Option<String>,
    #[serde(default)]
    pub(super) phone_country_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XeroAddress {
    #[serde(default)]
    pub(super) address_type: Option<String>,
    #[serde(default)]
    pub(super) address_line1: Option<String>,
    #[serde(default)]
    pub(super) address_line2: Option<String>,
    #[serde(default)]
    pub(super) city: Option<String>,
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) postal_code: Option<String>,
    #[serde(default)]
    pub(super) country: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XeroContact {
    #[serde(rename = "ContactID")]
    pub(super) contact_id: Uuid,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    pub(super) first_name: Option<String>,
    #[serde(default)]
    pub(super) last_name: Option<String>,
    #[serde(default)]
    pub(super) email_address: Option<String>,
    #[serde(default)]
    pub(super) contact_status: Option<String>,
    #[serde(default)]
    pub(super) is_customer: bool,
    #[serde(default)]
    pub(super) phones: Vec<XeroPhone>,
    #[serde(default)]
    pub(super) addresses: Vec<XeroAddress>,
    #[serde(rename = "UpdatedDateUTC", deserialize_with = "xero_time_required")]
    pub(super) updated: DateTime<Utc>,
}

pub(super) fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A contact as the platform takes it. Xero often has only a name while the platform wants a
/// first and last name: then the first word is the first name and the rest the last ("Jane van
/// Dyk" → "Jane", "van Dyk"); a one-word name is a first name.
pub(super) fn contact_data(c: &XeroContact, customer_id: Option<&str>) -> Value {
    let (mut first, mut last) = (non_empty(&c.first_name), non_empty(&c.last_name));
    if first.is_none() && last.is_none() {
        let name = c.name.trim();
        match name.split_once(char::is_whitespace) {
            Some((f, l)) => {
                first = Some(f.to_owned());
                last = Some(l.trim().to_owned());
            }
            None if !name.is_empty() => first = Some(name.to_owned()),
            None => {}
        }
    }
    let phones: Vec<Value> = c
        .phones
        .iter()
        .filter_map(|p| {
            let number = non_empty(&p.phone_number)?;
            let full = [non_empty(&p.phone_country_code), non_empty(&p.phone_area_code), Some(number)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some(json!({ "type": p.phone_type.clone().unwrap_or_else(|| "DEFAULT".into()), "number": full }))
        })
        .collect();
    let addresses: Vec<Value> = c
        .addresses
        .iter()
        .filter(|a| [&a.address_line1, &a.city, &a.postal_code, &a.country].iter().any(|f| non_empty(f).is_some()))
        .map(|a| {
            json!({
                // Xero's postal address is the billing address.
                "type": if a.address_type.as_deref() == Some("STREET") { "street" } else { "billing" },
                "line1": non_empty(&a.address_line1), "line2": non_empty(&a.address_line2),
                "city": non_empty(&a.city), "region": non_empty(&a.region),
                "postal_code": non_empty(&a.postal_code), "country": non_empty(&a.country),
            })
        })
        .collect();
    json!({
        "xero_contact_id": c.contact_id,
        "customer_id": customer_id,
        "name": c.name,
        "first_name": first,
        "last_name": last,
        "email": non_empty(&c.email_address),
        "phones": phones,
        "addresses": addresses,
        "archived": c.contact_status.as_deref() == Some("ARCHIVED"),
        "is_customer": c.is_customer,
        "updated_at": xero_sync_domain::time::format(c.updated),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XeroInvoice {
    #[serde(rename = "InvoiceID")]
    pub(super) invoice_id: Uuid,
    #[serde(default)]
    pub(super) invoice_number: Option<String>,
    pub(super) status: String,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub(super) total: Decimal,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub(super) amount_due: Decimal,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub(super) amount_paid: Decimal,
    #[serde(default, deserialize_with = "decimal::deserialize")]
    pub(super) amount_credited: Decimal,
    pub(super) currency_code: String,
    #[serde(default, deserialize_with = "xero_day")]
    pub(super) fully_paid_on_date: Option<NaiveDate>,
    #[serde(rename = "UpdatedDateUTC", deserialize_with = "xero_time_required")]
    pub(super) updated: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PaymentInvoice {
    #[serde(rename = "InvoiceID")]
    pub(super) invoice_id: Uuid,
    #[serde(default)]
    pub(super) invoice_number: Option<String>,
    #[serde(default)]
    pub(super) currency_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct XeroPayment {
    #[serde(rename = "PaymentID")]
    pub(super) payment_id: Uuid,
    #[serde(deserialize_with = "decimal::deserialize")]
    pub(super) amount: Decimal,
    #[serde(deserialize_with = "xero_day_required")]
    pub(super) date: NaiveDate,
    #[serde(default)]
    pub(super) reference: Option<String>,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) invoice: Option<PaymentInvoice>,
    #[serde(rename = "UpdatedDateUTC", deserialize_with = "xero_time_required")]
    pub(super) updated: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_alone_is_split_into_first_and_last() {
        let contact: XeroContact = serde_json::from_value(json!({
            "ContactID": "00000000-0000-0000-0000-000000000001",
            "Name": "Jane van Dyk",
            "UpdatedDateUTC": "/Date(1573755038314+0000)/"
        }))
        .unwrap();
        let data = contact_data(&contact, None);
        assert_eq!((data["first_name"].as_str(), data["last_name"].as_str()), (Some("Jane"), Some("van Dyk")));
    }
}
