//! The resources read incrementally, and how each is asked for.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Incremental {
    Contacts,
    Invoices,
    Payments,
}

impl Incremental {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Contacts => "contacts",
            Self::Invoices => "invoices",
            Self::Payments => "payments",
        }
    }

    pub(super) fn path(self) -> &'static str {
        match self {
            Self::Contacts => "/Contacts",
            Self::Invoices => "/Invoices",
            Self::Payments => "/Payments",
        }
    }

    pub(super) fn key(self) -> &'static str {
        match self {
            Self::Contacts => "Contacts",
            Self::Invoices => "Invoices",
            Self::Payments => "Payments",
        }
    }

    pub(super) fn id_field(self) -> &'static str {
        match self {
            Self::Contacts => "ContactID",
            Self::Invoices => "InvoiceID",
            Self::Payments => "PaymentID",
        }
    }

    /// Invoices at the boundary are looked at again: their payment state is compared with what
    /// was announced, so a change made in the same instant is not missed and nothing repeats.
    pub(super) fn rechecks_boundary(self) -> bool {
        matches!(self, Self::Invoices)
    }

    pub(super) fn query(self) -> Vec<(&'static str, String)> {
        match self {
            // Archived contacts too: the platform must hear that one was archived.
            Self::Contacts => vec![("includeArchived", "true".into())],
            // createdByMyApp: only what we pushed; the references tell ours from another app's.
            Self::Invoices => vec![
                ("where", "Type==\"ACCREC\"".into()),
                ("summaryOnly", "true".into()),
                ("createdByMyApp", "true".into()),
            ],
            Self::Payments => vec![("where", "PaymentType==\"ACCRECPAYMENT\"".into())],
        }
    }
}
