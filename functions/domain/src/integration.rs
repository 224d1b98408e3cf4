//! The hosted integration page's sessions: what the platform tells the page when it opens one
//! (its tax rates, job attributes, payment methods, the user's name, where to go back to), the
//! single-use offer that carries it to the browser, and the browser's session.
//!
//! An offer's token and a session's id are bearer secrets: the store keeps only their digests,
//! so a read of the table cannot open anyone's page.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::AccountId;
use crate::payment::PaymentMethod;
use crate::problem::Problem;
use crate::store::StateRefusal;

/// How long the page's URL may wait to be opened: it travels through the platform's browser
/// once, moments after the platform asked for it.
pub const OFFER_LIFETIME: Duration = Duration::minutes(5);
/// How long a browser keeps the page open without opening a new session.
pub const SESSION_LIFETIME: Duration = Duration::hours(2);
/// Far beyond any real list; keeps a session well inside a DynamoDB item.
pub const MAX_TAX_RATES: usize = 200;
pub const MAX_JOB_ATTRIBUTES: usize = 100;
pub const MAX_NAME: usize = 200;

/// A tax rate as the platform knows it, offered for the tax mapping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformTaxRate {
    pub id: String,
    pub name: String,
    /// In percent.
    #[serde(deserialize_with = "crate::decimal::deserialize")]
    pub rate: Decimal,
    /// Component rates, in percent, for a multi-component tax.
    #[serde(default, deserialize_with = "crate::decimal::vec::deserialize")]
    pub components: Vec<Decimal>,
}

/// What the page cannot know by itself, sent by the platform with each session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageContext {
    #[serde(default)]
    pub tax_rates: Vec<PlatformTaxRate>,
    /// Job attributes a tracking category may be fed from.
    #[serde(default)]
    pub job_attributes: Vec<String>,
    /// How the platform's customers pay, for the payment-account mapping.
    #[serde(default)]
    pub payment_methods: Vec<PaymentMethod>,
    pub user_display_name: String,
    /// Where "Back to the platform" goes; must be under `RETURN_TO_ALLOWLIST`.
    #[serde(default)]
    pub return_url: Option<String>,
    /// A BCP 47 tag such as `en-NZ`; the page falls back to English.
    #[serde(default = "default_locale")]
    pub locale: String,
}

fn default_locale() -> String {
    "en".into()
}

impl PageContext {
    /// Every problem with what the platform sent, field by field (the return URL's allowlist is
    /// the caller's: it is configuration).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let text = |field: &str, value: &str, problems: &mut Vec<Problem>| {
            if value.trim().is_empty() {
                problems.push(Problem::new(field, "is empty"));
            } else if value.chars().count() > MAX_NAME {
                problems.push(Problem::new(field, format!("is longer than {MAX_NAME} characters")));
            } else if value.chars().any(char::is_control) {
                problems.push(Problem::new(field, "contains control characters"));
            }
        };
        text("user_display_name", &self.user_display_name, &mut problems);
        if self.tax_rates.len() > MAX_TAX_RATES {
            problems.push(Problem::new("tax_rates", format!("has more than {MAX_TAX_RATES} rates")));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, rate) in self.tax_rates.iter().enumerate() {
            text(&format!("tax_rates[{i}].id"), &rate.id, &mut problems);
            text(&format!("tax_rates[{i}].name"), &rate.name, &mut problems);
            if !ids.insert(rate.id.as_str()) {
                problems.push(Problem::new(format!("tax_rates[{i}].id"), "is listed twice"));
            }
            let percent = |d: Decimal| d >= Decimal::ZERO && d <= Decimal::ONE_HUNDRED;
            if !percent(rate.rate) {
                problems.push(Problem::new(format!("tax_rates[{i}].rate"), "must be 0 to 100 (percent)"));
            }
            if !rate.components.iter().all(|c| percent(*c)) {
                problems.push(Problem::new(format!("tax_rates[{i}].components"), "must each be 0 to 100 (percent)"));
            }
        }
        if self.job_attributes.len() > MAX_JOB_ATTRIBUTES {
            problems.push(Problem::new("job_attributes", format!("has more than {MAX_JOB_ATTRIBUTES} attributes")));
        }
        for (i, attribute) in self.job_attributes.iter().enumerate() {
            text(&format!("job_attributes[{i}]"), attribute, &mut problems);
        }
        let tag_ok = |t: &str| {
            (2..=35).contains(&t.len())
                && t.split('-').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        };
        if !tag_ok(&self.locale) {
            problems.push(Problem::new("locale", "is not a language tag such as en-NZ"));
        }
        problems
    }

    pub fn tax_rate(&self, id: &str) -> Option<&PlatformTaxRate> {
        self.tax_rates.iter().find(|r| r.id == id)
    }
}

/// The page's URL until a browser opens it: single use, short-lived.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionOffer {
    /// The SHA-256 of the token in the URL.
    pub token_digest: String,
    pub account_id: AccountId,
    pub context: PageContext,
    #[serde(with = "crate::time::fixed")]
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for SessionOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionOffer").field("account_id", &self.account_id).finish_non_exhaustive()
    }
}

/// A browser's session on the page, found by the digest of its cookie.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSession {
    pub id_digest: String,
    pub account_id: AccountId,
    pub context: PageContext,
    /// Every form carries it; a post without it (or with another) is refused.
    pub csrf: String,
    #[serde(with = "crate::time::fixed")]
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for PageSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageSession").field("account_id", &self.account_id).finish_non_exhaustive()
    }
}

/// Offers and sessions of the integration page.
#[async_trait]
pub trait PageSessionStore: Send + Sync {
    async fn create_offer(&self, offer: &SessionOffer) -> Result<(), Error>;
    /// Takes the offer away as it is read: of two browsers opening one URL, one gets it.
    async fn consume_offer(
        &self,
        token_digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<SessionOffer, StateRefusal>, Error>;
    async fn create_session(&self, session: &PageSession) -> Result<(), Error>;
    /// `None` for an unknown or expired session (the table's TTL is not trusted to have run).
    async fn get_session(&self, id_digest: &str, now: DateTime<Utc>) -> Result<Option<PageSession>, Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> PageContext {
        serde_json::from_value(serde_json::json!({
            "tax_rates": [{ "id": "gst", "name": "GST 15%", "rate": "15" }],
            "job_attributes": ["Region"],
            "payment_methods": ["card"],
            "user_display_name": "Ana Bookkeeper",
            "locale": "en-NZ",
        }))
        .unwrap()
    }

    #[test]
    fn a_complete_context_has_no_problems() {
        assert_eq!(context().problems(), vec![]);
    }

    #[test]
    fn each_problem_in_a_context_is_named_by_its_field() {
        let mut c = context();
        c.user_display_name = " ".into();
        c.tax_rates.push(c.tax_rates[0].clone());
        c.tax_rates[1].rate = Decimal::from(150);
        c.job_attributes.push("a\u{7}".into());
        c.locale = "en_NZ".into();
        let fields: Vec<String> = c.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            ["user_display_name", "tax_rates[1].id", "tax_rates[1].rate", "job_attributes[1]", "locale"],
        );
    }

    #[test]
    fn money_rates_are_read_as_decimals_not_floats() {
        let rate: PlatformTaxRate =
            serde_json::from_str(r#"{"id":"x","name":"x","rate":"12.345","components":["5","7.345"]}"#).unwrap();
        assert_eq!(rate.rate.to_string(), "12.345");
        assert_eq!(rate.components[1].to_string(), "7.345");
    }

    #[test]
    fn debug_output_leaves_out_the_token_and_the_csrf_value() {
        let session = PageSession {
            id_digest: "secret-digest".into(),
            account_id: AccountId::parse("acct").unwrap(),
            context: context(),
            csrf: "csrf-value".into(),
            expires_at: Utc::now(),
        };
        let shown = format!("{session:?}");
        assert!(!shown.contains("secret-digest") && !shown.contains("csrf-value"), "{shown}");
    }
}
