//! Xero's enumerations as xero_accounting.yaml lists them. A value outside the list is refused
//! when read, like any other malformed field, rather than guessed at.

use serde::{Deserialize, Serialize};

/// A text that is none of an enumeration's values; names the enumeration, not the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not one of Xero's {0} values")]
pub struct UnknownValue(&'static str);

macro_rules! xero_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the spec's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as Xero spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownValue(stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

xero_enum! {
    /// An invoice's or a credit note's status (the two share the list).
    InvoiceStatus {
        Draft = "DRAFT",
        Submitted = "SUBMITTED",
        Deleted = "DELETED",
        Authorised = "AUTHORISED",
        Paid = "PAID",
        Voided = "VOIDED",
    }
}

impl InvoiceStatus {
    /// Voided or deleted: the document no longer counts in Xero.
    pub fn is_gone(self) -> bool {
        matches!(self, Self::Voided | Self::Deleted)
    }

    /// Submitted for approval or approved: Xero refuses to take it back to draft.
    pub fn is_approved(self) -> bool {
        matches!(self, Self::Submitted | Self::Authorised)
    }

    /// How Xero takes a document back: a draft or one awaiting approval is deleted, an
    /// approved one voided.
    pub fn withdrawn(self) -> Self {
        match self {
            Self::Draft | Self::Submitted => Self::Deleted,
            _ => Self::Voided,
        }
    }
}

xero_enum! {
    /// Which kind of document an invoice is: ACCREC is a sales invoice, the only kind xero-sync writes.
    InvoiceType {
        AccPay = "ACCPAY",
        AccPayCredit = "ACCPAYCREDIT",
        ApOverpayment = "APOVERPAYMENT",
        ApPrepayment = "APPREPAYMENT",
        AccRec = "ACCREC",
        AccRecCredit = "ACCRECCREDIT",
        ArOverpayment = "AROVERPAYMENT",
        ArPrepayment = "ARPREPAYMENT",
    }
}

xero_enum! {
    /// A credit note to a customer (ACCRECCREDIT) or from a supplier (ACCPAYCREDIT).
    CreditNoteType {
        AccPayCredit = "ACCPAYCREDIT",
        AccRecCredit = "ACCRECCREDIT",
    }
}

xero_enum! {
    ContactStatus {
        Active = "ACTIVE",
        Archived = "ARCHIVED",
        /// Its personal data is being erased at the owner's request.
        GdprRequest = "GDPRREQUEST",
    }
}

xero_enum! {
    /// A payment is recorded (AUTHORISED) or reversed (DELETED); there is nothing between.
    PaymentStatus {
        Authorised = "AUTHORISED",
        Deleted = "DELETED",
    }
}

xero_enum! {
    /// An account's, a tracking category's or a tracking option's status.
    RecordStatus {
        Active = "ACTIVE",
        Archived = "ARCHIVED",
        Deleted = "DELETED",
    }
}

xero_enum! {
    TaxRateStatus {
        Active = "ACTIVE",
        Deleted = "DELETED",
        Archived = "ARCHIVED",
        Pending = "PENDING",
    }
}

xero_enum! {
    AccountClass {
        Asset = "ASSET",
        Equity = "EQUITY",
        Expense = "EXPENSE",
        Liability = "LIABILITY",
        Revenue = "REVENUE",
    }
}

xero_enum! {
    AccountType {
        Bank = "BANK",
        Current = "CURRENT",
        CurrentLiability = "CURRLIAB",
        Depreciation = "DEPRECIATN",
        DirectCosts = "DIRECTCOSTS",
        Equity = "EQUITY",
        Expense = "EXPENSE",
        Fixed = "FIXED",
        Inventory = "INVENTORY",
        Liability = "LIABILITY",
        NonCurrent = "NONCURRENT",
        OtherIncome = "OTHERINCOME",
        Overheads = "OVERHEADS",
        Prepayment = "PREPAYMENT",
        Revenue = "REVENUE",
        Sales = "SALES",
        TermLiability = "TERMLIAB",
        Payg = "PAYG",
    }
}

xero_enum! {
    /// How an invoice's line amounts treat tax.
    LineAmountTypes {
        Exclusive = "Exclusive",
        Inclusive = "Inclusive",
        NoTax = "NoTax",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_and_write_as_xero_spells_them_and_unknown_ones_are_refused() {
        let status: InvoiceStatus = serde_json::from_str("\"AUTHORISED\"").unwrap();
        assert_eq!(status, InvoiceStatus::Authorised);
        assert_eq!(serde_json::to_string(&ContactStatus::GdprRequest).unwrap(), "\"GDPRREQUEST\"");
        assert_eq!(AccountType::CurrentLiability.to_string(), "CURRLIAB");
        assert!(serde_json::from_str::<InvoiceStatus>("\"authorised\"").is_err());
        assert!(serde_json::from_str::<PaymentStatus>("\"VOIDED\"").is_err());
    }

    /// The spec's enum for `schema.property` (or the schema itself, when it is an enum).
    fn spec_enum(spec: &serde_yaml_ng::Value, schema: &str, property: Option<&str>) -> Vec<String> {
        let mut node = &spec["components"]["schemas"][schema];
        if let Some(property) = property {
            node = &node["properties"][property];
        }
        let values = node["enum"].as_sequence().unwrap_or_else(|| panic!("{schema}.{property:?} has an enum"));
        values.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn every_enumeration_is_the_one_xeros_spec_lists() {
        let dir = std::env::var_os("XERO_OPENAPI_DIR").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/xero-openapi"),
            std::path::PathBuf::from,
        );
        let text = std::fs::read_to_string(dir.join("xero_accounting.yaml")).expect("the spec (XERO_OPENAPI_DIR)");
        let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        fn ours<T: Copy + std::fmt::Display>(all: &[T]) -> Vec<String> {
            all.iter().map(ToString::to_string).collect()
        }
        assert_eq!(ours(InvoiceStatus::ALL), spec_enum(&spec, "Invoice", Some("Status")));
        assert_eq!(ours(InvoiceStatus::ALL), spec_enum(&spec, "CreditNote", Some("Status")));
        assert_eq!(ours(InvoiceType::ALL), spec_enum(&spec, "Invoice", Some("Type")));
        assert_eq!(ours(CreditNoteType::ALL), spec_enum(&spec, "CreditNote", Some("Type")));
        assert_eq!(ours(ContactStatus::ALL), spec_enum(&spec, "Contact", Some("ContactStatus")));
        assert_eq!(ours(PaymentStatus::ALL), spec_enum(&spec, "Payment", Some("Status")));
        assert_eq!(ours(RecordStatus::ALL), spec_enum(&spec, "Account", Some("Status")));
        assert_eq!(ours(RecordStatus::ALL), spec_enum(&spec, "TrackingCategory", Some("Status")));
        assert_eq!(ours(RecordStatus::ALL), spec_enum(&spec, "TrackingOption", Some("Status")));
        assert_eq!(ours(TaxRateStatus::ALL), spec_enum(&spec, "TaxRate", Some("Status")));
        assert_eq!(ours(AccountClass::ALL), spec_enum(&spec, "Account", Some("Class")));
        assert_eq!(ours(AccountType::ALL), spec_enum(&spec, "AccountType", None));
        assert_eq!(ours(LineAmountTypes::ALL), spec_enum(&spec, "LineAmountTypes", None));
    }

    #[test]
    fn a_draft_is_withdrawn_by_deleting_and_an_approved_invoice_by_voiding() {
        assert_eq!(InvoiceStatus::Draft.withdrawn(), InvoiceStatus::Deleted);
        assert_eq!(InvoiceStatus::Submitted.withdrawn(), InvoiceStatus::Deleted);
        assert_eq!(InvoiceStatus::Authorised.withdrawn(), InvoiceStatus::Voided);
        assert!(InvoiceStatus::Voided.is_gone() && InvoiceStatus::Deleted.is_gone());
        assert!(!InvoiceStatus::Paid.is_gone() && !InvoiceStatus::Paid.is_approved());
    }
}
