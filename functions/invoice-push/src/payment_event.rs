//! The payment events of the platform's webhook: the contract in
//! `docs/contracts/payment-webhook.schema.json`, as types, plus what a schema cannot say.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use xero_sync_domain::decimal;
use xero_sync_domain::model::{AccountId, PlatformInvoiceId, PlatformPaymentId, TenantId};
use xero_sync_domain::payment::PaymentMethod;
use xero_sync_http::Problem;

use crate::event::{EventOrder, delivery_id_problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEventType {
    /// Money taken against an invoice (the outbound `payment.recorded` is Xero's side).
    #[serde(rename = "payment.created")]
    Created,
    /// The payment was taken back: Xero's payment is deleted and the invoice is due again.
    #[serde(rename = "payment.voided")]
    Voided,
    /// Money given back on a paid invoice; `payment.id` is the refund's own id. Xero shows it as
    /// a credit note for the amount, paid out from the method's account.
    #[serde(rename = "payment.refunded")]
    Refunded,
}

impl PaymentEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "payment.created",
            Self::Voided => "payment.voided",
            Self::Refunded => "payment.refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub id: PlatformPaymentId,
    pub invoice_id: PlatformInvoiceId,
    /// Required for `payment.created`.
    #[serde(default, deserialize_with = "decimal::option::deserialize", skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<PaymentMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentEvent {
    pub delivery_id: String,
    pub event: PaymentEventType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    pub account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xero_tenant_id: Option<TenantId>,
    pub payment: Payment,
}

/// Xero keeps a payment's amount to the cent, and its Reference to 255 characters.
const MAX_AMOUNT_DP: u32 = 2;
pub const MAX_REFERENCE: usize = 255;

impl PaymentEvent {
    pub fn order(&self) -> EventOrder {
        EventOrder { occurred_at: self.occurred_at, sequence: self.sequence }
    }

    /// What the types cannot say; every problem at once.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        p.extend(delivery_id_problem(&self.delivery_id));
        let pay = &self.payment;
        if self.event != PaymentEventType::Voided {
            let missing = [
                ("payment.amount", pay.amount.is_none()),
                ("payment.currency", pay.currency.is_none()),
                ("payment.date", pay.date.is_none()),
                ("payment.method", pay.method.is_none()),
            ];
            for (field, absent) in missing {
                if absent {
                    p.push(Problem::new(field, format!("is required for {}", self.event.as_str())));
                }
            }
        }
        if let Some(amount) = pay.amount {
            if amount <= Decimal::ZERO {
                p.push(Problem::new("payment.amount", "must be more than zero"));
            } else if amount.normalize().scale() > MAX_AMOUNT_DP {
                p.push(Problem::new("payment.amount", "has more than 2 decimal places"));
            }
        }
        if let Some(currency) = &pay.currency {
            if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
                p.push(Problem::new("payment.currency", "must be a three-letter ISO 4217 code such as NZD"));
            }
        }
        if let Some(reference) = &pay.reference {
            if reference.chars().count() > MAX_REFERENCE {
                p.push(Problem::new("payment.reference", format!("is longer than {MAX_REFERENCE} characters")));
            }
        }
        p
    }
}

/// Parses a body, naming the exact field that is missing or of the wrong type.
pub fn parse(body: &[u8]) -> Result<PaymentEvent, Problem> {
    let mut event: PaymentEvent = xero_sync_http::parse_json(body)?;
    event.occurred_at = event.occurred_at.trunc_subsecs(6);
    Ok(event)
}

/// The contract's example `payment.created`, as the unit tests' starting point.
#[cfg(test)]
pub(crate) fn example() -> PaymentEvent {
    parse(include_bytes!("../../../docs/contracts/examples/payment-created.json")).expect("the example parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_payment_names_everything_it_lacks_and_a_void_needs_only_the_ids() {
        let mut event = example();
        event.payment.amount = Some(Decimal::new(-5, 0));
        (event.payment.currency, event.payment.date, event.payment.method) = (None, None, None);
        let fields: Vec<String> = event.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(fields, ["payment.currency", "payment.date", "payment.method", "payment.amount"]);
        event.event = PaymentEventType::Refunded;
        let refund = event.problems();
        assert_eq!(refund[0].message, "is required for payment.refunded");
        assert_eq!(refund.len(), 4);
        event.event = PaymentEventType::Voided;
        event.payment.amount = None;
        assert!(event.problems().is_empty(), "{:?}", event.problems());
    }

    #[test]
    fn an_amount_in_fractions_of_a_cent_is_refused() {
        let mut event = example();
        event.payment.amount = Some(Decimal::new(10005, 3));
        assert_eq!(event.problems()[0].message, "has more than 2 decimal places");
        event.payment.amount = Some(Decimal::new(100500, 4));
        assert!(event.problems().is_empty(), "trailing zeros are no fraction of a cent");
    }
}
