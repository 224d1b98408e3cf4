//! Contacts, our invoices' payment status and payments, as Xero lists them, turned into the
//! platform's events.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use uuid::Uuid;
use xero_sync_domain::Error;
use xero_sync_domain::events::{EventKind, PlatformEvent};
use xero_sync_domain::model::{PlatformInvoiceId, SyncRecord};
use xero_sync_domain::payment::{PaymentRecord, PaymentSyncStatus};
use xero_sync_domain::settings::ContactsSentBack;
use xero_sync_domain::xero::{Contact, ContactStatus, Invoice, InvoiceStatus, Payment, PaymentStatus, payment_state};
use xero_sync_runtime::contact_groups;

use super::{ImportError, Item, Run};

impl Run<'_> {
    pub(super) async fn contact_events(&mut self, items: &[&Item]) -> Result<Vec<PlatformEvent>, ImportError> {
        let contacts: Vec<ListedContact> = self.parse(items, ListedContact::read);
        let ids: Vec<Uuid> = contacts.iter().map(|c| c.id).collect();
        let owners = self.app.services.store.contact_owners(&self.key, &ids).await?;
        // Which contacts the platform asked to hear of: contacts left out now are not sent
        // later when the choice changes (only when they change again).
        let settings = self.app.services.store.get_settings(&self.key).await?.settings;
        let sent_back = settings.contacts_sent_back;
        let members = match sent_back {
            ContactsSentBack::Groups if !contacts.is_empty() => {
                contact_groups::members(self.app, &self.connection, &settings.contact_groups)
                    .await
                    .map_err(super::import_error)?
            }
            _ => Default::default(),
        };
        Ok(contacts
            .iter()
            .filter(|c| {
                let w = &c.wire;
                sent_back.sends(w.is_customer, w.is_supplier, owners.contains_key(&c.id), members.contains(&c.id))
            })
            // Our own write coming back (a customer pushed from the platform) is no news to it;
            // an edit made in Xero since carries a later UpdatedDateUTC.
            .filter(|c| owners.get(&c.id).and_then(|o| o.pushed_updated_at).is_none_or(|at| c.updated > at))
            .map(|c| {
                let data = contact_data(c, owners.get(&c.id).map(|o| o.customer_id.as_str()));
                let dedup = format!("{}|{}", c.id, xero_sync_domain::time::format(c.updated));
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
        let invoices: Vec<Billed> = self.parse(items, Billed::read);
        let ids: Vec<Uuid> = invoices.iter().map(|i| i.invoice_id).collect();
        let store = &self.app.services.store;
        let ours = store.invoices_for_xero_ids(&self.key, &ids).await?;
        let mut events = Vec::new();
        let mut changes = Vec::new();
        for invoice in &invoices {
            let Some(platform_id) = ours.get(&invoice.invoice_id) else { continue };
            // A reference without its record (its write failed): nothing was announced for it.
            let Some(record) = store.get_sync_record(&self.key, platform_id).await? else { continue };
            let state = invoice.state();
            if record.payment_state.as_deref() == Some(state.as_str()) {
                continue;
            }
            events.push(self.state_event(invoice, platform_id));
            changes.push(StateChange { record, state, status: invoice.status, payments: None });
        }
        Ok((events, changes))
    }

    /// `invoice.payment_status_changed` for one of our invoices.
    pub(super) fn state_event(&self, invoice: &Billed, platform_id: &PlatformInvoiceId) -> PlatformEvent {
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
            "currency": invoice.currency,
            "fully_paid_on": invoice.fully_paid_on_date.map(|d| d.format("%Y-%m-%d").to_string()),
            "updated_at": updated,
        });
        // The time is in the id: PAID, payment deleted, PAID again is three facts.
        let dedup = format!("{}|{}|{updated}", invoice.invoice_id, invoice.state());
        self.event(EventKind::InvoicePaymentStatusChanged, &dedup, data)
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
                next.xero_status = Some(change.status);
                if let Some(payments) = &change.payments {
                    next.announced_payments = payments.clone();
                }
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
        let payments: Vec<Paid> = self.parse(items, Paid::read);
        let ids: Vec<Uuid> = payments.iter().filter_map(|p| p.invoice_id).collect();
        let ours = self.app.services.store.invoices_for_xero_ids(&self.key, &ids).await?;
        let pushed = self.pushed_payments(&payments).await?;
        Ok(payments
            .iter()
            .filter(|p| !is_echo(p, &pushed))
            .filter_map(|p| {
                p.invoice_id.and_then(|invoice| ours.get(&invoice)).map(|platform| self.payment_event(p, platform))
            })
            .collect())
    }

    /// The payments among `payments` that the platform sent us (see [`is_echo`]).
    pub(super) async fn pushed_payments(&self, payments: &[Paid]) -> Result<HashMap<Uuid, PaymentRecord>, ImportError> {
        let ids: Vec<Uuid> = payments.iter().map(|p| p.id).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.app.services.store.payments_for_xero_ids(&self.key, &ids).await?)
    }

    /// `payment.recorded` or `payment.reversed` for a payment on one of our invoices.
    pub(super) fn payment_event(&self, p: &Paid, platform_id: &PlatformInvoiceId) -> PlatformEvent {
        let invoice = p.wire.invoice.as_ref();
        let kind = match p.status {
            PaymentStatus::Authorised => EventKind::PaymentRecorded,
            PaymentStatus::Deleted => EventKind::PaymentReversed,
        };
        let data = json!({
            "xero_payment_id": p.id,
            "xero_invoice_id": p.invoice_id,
            "invoice_id": platform_id,
            "invoice_number": invoice.and_then(|i| i.invoice_number.as_deref()),
            "amount": p.amount.normalize().to_string(),
            "currency": invoice.and_then(|i| i.currency_code.as_deref()),
            "date": p.date.format("%Y-%m-%d").to_string(),
            "reference": p.wire.reference.clone().filter(|r| !r.is_empty()),
            "status": p.status,
            "updated_at": xero_sync_domain::time::format(p.updated),
        });
        self.event(kind, &format!("{}|{}", p.id, p.status), data)
    }
}

/// A payment the platform itself sent us is no news when Xero shows it back: neither its
/// creation nor, once the platform voided it, its deletion. Deleted in Xero by someone else, it
/// is news (`payment.reversed`).
pub(super) fn is_echo(p: &Paid, pushed: &HashMap<Uuid, PaymentRecord>) -> bool {
    pushed.get(&p.id).is_some_and(|record| match p.status {
        PaymentStatus::Authorised => true,
        PaymentStatus::Deleted => record.status == PaymentSyncStatus::Voided,
    })
}

/// A payment state to record once its event is published.
pub(super) struct StateChange {
    /// As read when the change was found; saved conditionally on its version.
    pub(super) record: SyncRecord,
    pub(super) state: String,
    pub(super) status: InvoiceStatus,
    /// The payments now announced, when the change says (Xero's webhooks do).
    pub(super) payments: Option<Vec<Uuid>>,
}

/// A listed contact with what its event needs: its id and when it changed.
pub(super) struct ListedContact {
    pub(super) id: Uuid,
    pub(super) updated: DateTime<Utc>,
    pub(super) wire: Contact,
}

impl ListedContact {
    fn read(wire: Contact) -> Result<Self, &'static str> {
        Ok(Self { id: wire.contact_id.ok_or("ContactID")?, updated: wire.updated.ok_or("UpdatedDateUTC")?, wire })
    }
}

/// One of our invoices' payment state as Xero lists it.
pub(super) struct Billed {
    pub(super) invoice_id: Uuid,
    pub(super) invoice_number: Option<String>,
    pub(super) status: InvoiceStatus,
    pub(super) total: Decimal,
    pub(super) amount_due: Decimal,
    pub(super) amount_paid: Decimal,
    pub(super) amount_credited: Decimal,
    pub(super) currency: String,
    pub(super) fully_paid_on_date: Option<NaiveDate>,
    pub(super) updated: DateTime<Utc>,
    /// Its payments, when Xero listed them.
    pub(super) payments: Vec<Payment>,
}

impl Billed {
    pub(super) fn read(wire: Invoice) -> Result<Self, &'static str> {
        Ok(Self {
            invoice_id: wire.invoice_id.ok_or("InvoiceID")?,
            status: wire.status.ok_or("Status")?,
            total: wire.total.ok_or("Total")?,
            amount_due: wire.amount_due.ok_or("AmountDue")?,
            amount_paid: wire.amount_paid.ok_or("AmountPaid")?,
            amount_credited: wire.amount_credited.unwrap_or_default(),
            currency: wire.currency_code.ok_or("CurrencyCode")?,
            updated: wire.updated.ok_or("UpdatedDateUTC")?,
            fully_paid_on_date: wire.fully_paid_on_date,
            invoice_number: wire.invoice_number,
            payments: wire.payments,
        })
    }

    /// What is compared with the state last announced (`status|paid|credited|due`).
    pub(super) fn state(&self) -> String {
        payment_state(self.status, self.amount_paid, self.amount_credited, self.amount_due)
    }
}

/// A payment with what its event needs.
pub(super) struct Paid {
    pub(super) id: Uuid,
    pub(super) amount: Decimal,
    pub(super) date: NaiveDate,
    pub(super) status: PaymentStatus,
    pub(super) updated: DateTime<Utc>,
    /// The invoice it pays, when Xero names one (a prepayment's payment does not).
    pub(super) invoice_id: Option<Uuid>,
    pub(super) wire: Payment,
}

impl Paid {
    /// A payment as an invoice lists it (an id, a date and an amount): authorised, since a
    /// deleted one leaves the list, and as new as the invoice.
    pub(super) fn on_invoice(wire: &Payment, invoice: &Billed) -> Option<Self> {
        let mut wire = wire.clone();
        wire.invoice = Some(Invoice {
            invoice_id: Some(invoice.invoice_id),
            invoice_number: invoice.invoice_number.clone(),
            currency_code: Some(invoice.currency.clone()),
            ..Invoice::default()
        });
        Some(Self {
            id: wire.payment_id?,
            amount: wire.amount?,
            date: wire.date?,
            status: PaymentStatus::Authorised,
            updated: invoice.updated,
            invoice_id: Some(invoice.invoice_id),
            wire,
        })
    }

    pub(super) fn read(wire: Payment) -> Result<Self, &'static str> {
        Ok(Self {
            id: wire.payment_id.ok_or("PaymentID")?,
            amount: wire.amount.ok_or("Amount")?,
            date: wire.date.ok_or("Date")?,
            status: wire.status.ok_or("Status")?,
            updated: wire.updated.ok_or("UpdatedDateUTC")?,
            // An invoice named without its id is a record we cannot read, kept to try again.
            invoice_id: match &wire.invoice {
                Some(invoice) => Some(invoice.invoice_id.ok_or("Invoice.InvoiceID")?),
                None => None,
            },
            wire,
        })
    }
}

pub(super) fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A contact as the platform takes it. Xero often has only a name while the platform wants a
/// first and last name: then the first word is the first name and the rest the last ("Jane van
/// Dyk" → "Jane", "van Dyk"); a one-word name is a first name.
pub(super) fn contact_data(listed: &ListedContact, customer_id: Option<&str>) -> Value {
    let c = &listed.wire;
    let (mut first, mut last) = (non_empty(&c.first_name), non_empty(&c.last_name));
    let name = c.name.as_deref().unwrap_or_default();
    if first.is_none() && last.is_none() {
        let name = name.trim();
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
        "xero_contact_id": listed.id,
        "customer_id": customer_id,
        "name": name,
        "first_name": first,
        "last_name": last,
        "email": non_empty(&c.email_address),
        "phones": phones,
        "addresses": addresses,
        "archived": c.contact_status == Some(ContactStatus::Archived),
        "is_customer": c.is_customer,
        "updated_at": xero_sync_domain::time::format(listed.updated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_alone_is_split_into_first_and_last() {
        let contact: Contact = serde_json::from_value(json!({
            "ContactID": "00000000-0000-0000-0000-000000000001",
            "Name": "Jane van Dyk",
            "UpdatedDateUTC": "/Date(1573755038314+0000)/"
        }))
        .unwrap();
        let data = contact_data(&ListedContact::read(contact).unwrap(), None);
        assert_eq!((data["first_name"].as_str(), data["last_name"].as_str()), (Some("Jane"), Some("van Dyk")));
    }

    #[test]
    fn a_listed_record_without_what_its_event_needs_names_the_field() {
        let invoice: Invoice = serde_json::from_value(json!({
            "InvoiceID": "00000000-0000-0000-0000-000000000002",
            "Status": "PAID", "Total": 10, "AmountDue": 0, "AmountPaid": 10,
            "UpdatedDateUTC": "/Date(1573755038314+0000)/"
        }))
        .unwrap();
        assert_eq!(Billed::read(invoice).err(), Some("CurrencyCode"));
        let payment: Payment =
            serde_json::from_value(json!({ "PaymentID": "00000000-0000-0000-0000-000000000003" })).unwrap();
        assert_eq!(Paid::read(payment).err(), Some("Amount"));
        let unnamed: Payment = serde_json::from_value(json!({
            "PaymentID": "00000000-0000-0000-0000-000000000003", "Amount": 5, "Date": "/Date(1573689600000+0000)/",
            "Status": "AUTHORISED", "UpdatedDateUTC": "/Date(1573755038314+0000)/", "Invoice": { "InvoiceNumber": "INV-1" }
        }))
        .unwrap();
        assert_eq!(Paid::read(unnamed).err(), Some("Invoice.InvoiceID"));
        assert_eq!(ListedContact::read(Contact::default()).err(), Some("ContactID"));
    }
}
