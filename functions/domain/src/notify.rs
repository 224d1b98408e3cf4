//! Plain emails to the account: what happened, to which organisation, what to do next.

use std::fmt;

use async_trait::async_trait;

use crate::error::Error;

/// One email. `Debug` leaves out the address: it is personal data.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email").field("to", &"[redacted]").field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// Every account email has the same three parts, so each reads the same way.
#[derive(Clone, Debug)]
pub struct Notice {
    pub subject: String,
    pub organisation: String,
    pub what_happened: String,
    /// Facts worth having at hand (an invoice number, a date), as label and value.
    pub details: Vec<(String, String)>,
    pub what_to_do: String,
}

impl Notice {
    pub fn to(self, address: impl Into<String>) -> Email {
        let mut text = format!("{}\n\nXero organisation: {}\n", self.what_happened, self.organisation);
        for (label, value) in &self.details {
            text.push_str(&format!("{label}: {value}\n"));
        }
        text.push_str(&format!(
            "\nWhat to do next\n{}\n\n-- \nxero-sync, the Xero integration of your field-service platform\n",
            self.what_to_do
        ));
        Email { to: address.into(), subject: self.subject, text }
    }
}

#[async_trait]
/// Sends one email (SES in AWS: see `xero_sync_aws::ses`). A refusal no retry can change is
/// [`Error::EmailRefused`].
pub trait Notifier: Send + Sync {
    async fn send(&self, email: &Email) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_says_what_happened_where_and_what_to_do() {
        let email = Notice {
            subject: "Invoice INV-123 did not reach Xero".into(),
            organisation: "Demo Company (NZ)".into(),
            what_happened: "Invoice INV-123 did not reach Xero because account code 999 does not exist.".into(),
            details: vec![("Invoice".into(), "INV-123".into())],
            what_to_do: "Choose an existing sales account in the Xero settings, then save the invoice again.".into(),
        }
        .to("owner@example.com");
        assert!(email.text.starts_with("Invoice INV-123 did not reach Xero because"));
        assert!(email.text.contains("Xero organisation: Demo Company (NZ)\nInvoice: INV-123\n"));
        assert!(email.text.contains("What to do next\nChoose an existing sales account"));
        assert!(!format!("{email:?}").contains("owner@example.com"));
    }
}
