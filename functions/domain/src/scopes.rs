//! What a connection may do, from the scopes its consent granted. Apps created since March
//! 2026 get Xero's granular scopes; older ones may still hold the broad ones, which cover the
//! same endpoints.

use serde::Serialize;

/// Something xero-sync does that needs a scope of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Invoices to Xero, and their status back.
    Invoices,
    /// Payments to Xero (create, delete).
    PushPayments,
    /// Payments made in Xero, back to the platform.
    ReadPayments,
    Contacts,
    /// Accounts, tax rates, tracking, items: what settings are chosen from.
    Settings,
    /// Items written from the platform's products: Xero's granular `accounting.invoices` covers
    /// items, and among the broad scopes `accounting.settings` does.
    Items,
    /// Files attached to invoices and credit notes.
    Attachments,
}

impl Feature {
    pub const ALL: [Feature; 7] = [
        Feature::Invoices,
        Feature::PushPayments,
        Feature::ReadPayments,
        Feature::Contacts,
        Feature::Settings,
        Feature::Items,
        Feature::Attachments,
    ];

    /// Any one of these grants the feature.
    fn granted_by(self) -> &'static [&'static str] {
        match self {
            Feature::Invoices => &["accounting.invoices", "accounting.transactions"],
            Feature::PushPayments => &["accounting.payments", "accounting.transactions"],
            Feature::ReadPayments => &[
                "accounting.payments",
                "accounting.payments.read",
                "accounting.transactions",
                "accounting.transactions.read",
            ],
            Feature::Contacts => &["accounting.contacts"],
            Feature::Settings => &["accounting.settings", "accounting.settings.read"],
            Feature::Items => &["accounting.invoices", "accounting.settings"],
            Feature::Attachments => &["accounting.attachments"],
        }
    }

    /// The scope a reconnection asks for to allow it.
    pub fn scope(self) -> &'static str {
        self.granted_by()[0]
    }

    pub fn allowed_by(self, scopes: &[String]) -> bool {
        self.granted_by().iter().any(|needed| scopes.iter().any(|s| s == needed))
    }
}

/// The features `scopes` allow, in [`Feature::ALL`]'s order.
pub fn features(scopes: &[String]) -> Vec<Feature> {
    Feature::ALL.into_iter().filter(|f| f.allowed_by(scopes)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn reading_payments_does_not_allow_pushing_them() {
        let old_default = scopes("offline_access accounting.invoices accounting.payments.read accounting.contacts");
        assert!(!Feature::PushPayments.allowed_by(&old_default));
        assert!(Feature::ReadPayments.allowed_by(&old_default));
        assert!(Feature::PushPayments.allowed_by(&scopes("offline_access accounting.payments")));
    }

    #[test]
    fn items_are_written_with_the_granular_invoices_scope_or_the_broad_settings_one() {
        assert!(Feature::Items.allowed_by(&scopes("offline_access accounting.invoices")));
        assert!(Feature::Items.allowed_by(&scopes("offline_access accounting.transactions accounting.settings")));
        let read_only = scopes("offline_access accounting.transactions accounting.settings.read");
        assert!(!Feature::Items.allowed_by(&read_only), "reading settings writes no items");
        assert_eq!(Feature::Items.scope(), "accounting.invoices");
    }

    #[test]
    fn the_broad_scopes_of_older_apps_allow_what_the_granular_ones_do() {
        let broad = scopes(
            "offline_access accounting.transactions accounting.contacts accounting.settings accounting.attachments",
        );
        assert_eq!(features(&broad), Feature::ALL.to_vec());
    }
}
