//! The settings form read back into the same `ConnectionSettings` the API writes, and the
//! rules' problems placed next to the fields they are about. What the form did not show is kept
//! as it was, so the page and the API can both be used on one connection.

use std::collections::BTreeMap;

use uuid::Uuid;
use xero_sync_domain::integration::PageContext;
use xero_sync_domain::problem::Problem;
use xero_sync_domain::settings::{
    ConnectionSettings, ContactsSentBack, MAX_TRACKING, NewInvoiceStatus, TaxMapping, TrackingMapping,
};

use crate::forms::Fields;

/// Marks a form whose tracking fieldset was drawn: without it, tracking is kept as it was.
pub const TRACKING_DRAWN: &str = "tracking_drawn";

/// The form field a settings problem belongs to, so it is shown next to it; `None` for one
/// that belongs to the form as a whole.
pub fn field_of(problem: &Problem, settings: &ConnectionSettings) -> Option<String> {
    let path = problem.field.strip_prefix("settings.").unwrap_or(&problem.field);
    let indexed = |prefix: &str| -> Option<usize> {
        let rest = path.strip_prefix(prefix)?.strip_prefix('[')?;
        rest.split(']').next()?.parse().ok()
    };
    if let Some(i) = indexed("tax_mapping") {
        return settings.tax_mapping.get(i).map(|m| format!("tax:{}", m.platform_tax_rate_id));
    }
    if let Some(i) = indexed("tracking_mapping") {
        return Some(format!("tracking{i}"));
    }
    if let Some(method) = path.strip_prefix("payment_accounts.") {
        return Some(format!("payment:{method}"));
    }
    if path.starts_with("contact_groups") || path == "contacts_sent_back" {
        return Some("contacts_sent_back".into());
    }
    match path {
        "default_sales_account_code" | "default_tax_type" | "new_invoice_status" => Some(path.to_owned()),
        _ => None,
    }
}

/// Reads the form into settings, starting from `current` for what the form does not show, with
/// the problems only the form can have (a value given for two tracking options).
pub fn parse(
    fields: &Fields,
    current: &ConnectionSettings,
    context: &PageContext,
) -> (ConnectionSettings, Vec<Problem>) {
    let mut s = current.clone();
    let mut problems = Vec::new();
    let chosen = |name: &str| fields.one(name).filter(|v| !v.is_empty()).map(str::to_owned);
    s.default_sales_account_code = chosen("default_sales_account_code");
    s.default_tax_type = chosen("default_tax_type");
    s.new_invoice_status = match fields.one("new_invoice_status") {
        Some("AUTHORISED") => NewInvoiceStatus::Authorised,
        _ => NewInvoiceStatus::Draft,
    };
    // Rates the platform did not list this time keep their mapping.
    s.tax_mapping.retain(|m| context.tax_rate(&m.platform_tax_rate_id).is_none());
    for rate in &context.tax_rates {
        if let Some(tax_type) = chosen(&format!("tax:{}", rate.id)) {
            s.tax_mapping.push(TaxMapping {
                platform_tax_rate_id: rate.id.clone(),
                rate: rate.rate,
                components: rate.components.clone(),
                xero_tax_type: tax_type,
            });
        }
    }
    if fields.one(TRACKING_DRAWN).is_some() {
        s.tracking_mapping = Vec::new();
        for slot in 0..MAX_TRACKING {
            if let Some(mapping) = tracking_slot(fields, slot, s.tracking_mapping.len(), &mut problems) {
                s.tracking_mapping.push(mapping);
            }
        }
    }
    for method in &context.payment_methods {
        match chosen(&format!("payment:{}", method.as_str())).map(|v| v.parse::<Uuid>()) {
            Some(Ok(id)) => {
                s.payment_accounts.insert(*method, id);
            }
            // Not an id: kept as the nil id, which the rules then refuse by name.
            Some(Err(_)) => {
                s.payment_accounts.insert(*method, Uuid::nil());
            }
            None => {
                s.payment_accounts.remove(method);
            }
        }
    }
    if let Some(choice) = fields.one("contacts_sent_back") {
        s.contacts_sent_back = match choice {
            "customers" => ContactsSentBack::Customers,
            "groups" => ContactsSentBack::Groups,
            _ => ContactsSentBack::All,
        };
        s.contact_groups = fields.many("contact_group").filter_map(|g| g.parse().ok()).collect();
    }
    (s, problems)
}

/// One tracking slot of the form, the `index`-th mapping of the settings when chosen.
fn tracking_slot(fields: &Fields, slot: usize, index: usize, problems: &mut Vec<Problem>) -> Option<TrackingMapping> {
    let category = fields.one(&format!("tracking{slot}_category")).filter(|v| !v.is_empty())?;
    // An id that is not a UUID is kept as the nil id, which the rules then refuse by name.
    let xero_category_id = category.parse().unwrap_or(Uuid::nil());
    let job_attribute = fields.one(&format!("tracking{slot}_attribute")).unwrap_or_default().to_owned();
    // Option inputs belong to the category they were drawn for; another category chosen since
    // starts with no option mapping.
    let mut options = BTreeMap::new();
    if fields.one(&format!("tracking{slot}_options_for")) == Some(category) {
        let prefix = format!("tracking{slot}_option:");
        for (name, values) in fields.all() {
            let Some(option) = name.strip_prefix(&prefix) else { continue };
            for value in values.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                if let Some(other) = options.insert(value.to_owned(), option.to_owned()) {
                    if other != option {
                        problems.push(Problem::new(
                            format!("settings.tracking_mapping[{index}].options"),
                            format!("the value {value} is given for both {other} and {option}"),
                        ));
                    }
                }
            }
        }
    }
    Some(TrackingMapping { xero_category_id, job_attribute, options })
}

#[cfg(test)]
mod tests {
    use super::*;
    use xero_sync_domain::payment::PaymentMethod;

    fn context() -> PageContext {
        serde_json::from_value(serde_json::json!({
            "tax_rates": [{ "id": "gst", "name": "GST", "rate": "15" }, { "id": "zero", "name": "Zero", "rate": "0" }],
            "job_attributes": ["Region"],
            "payment_methods": ["card"],
            "user_display_name": "Ana",
        }))
        .unwrap()
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn a_form_becomes_settings_and_keeps_what_it_does_not_show() {
        let mut current = ConnectionSettings {
            invoice_url_template: Some("https://x.example/{invoice_id}".into()),
            ..Default::default()
        };
        current.tax_mapping.push(TaxMapping {
            platform_tax_rate_id: "old".into(),
            rate: 10.into(),
            components: vec![],
            xero_tax_type: "X".into(),
        });
        let category = Uuid::new_v4();
        let card = Uuid::new_v4();
        let f = fields(&[
            ("default_sales_account_code", "200"),
            ("default_tax_type", ""),
            ("new_invoice_status", "AUTHORISED"),
            ("tax:gst", "OUTPUT2"),
            ("tax:zero", ""),
            (TRACKING_DRAWN, "1"),
            ("tracking0_category", &category.to_string()),
            ("tracking0_attribute", "Region"),
            ("tracking0_options_for", &category.to_string()),
            ("tracking0_option:North", "N, Nth"),
            ("tracking0_option:South", " "),
            ("payment:card", &card.to_string()),
        ]);
        let (s, problems) = parse(&f, &current, &context());
        assert_eq!(problems, vec![]);
        assert_eq!(s.default_sales_account_code.as_deref(), Some("200"));
        assert_eq!(s.default_tax_type, None);
        assert_eq!(s.new_invoice_status, NewInvoiceStatus::Authorised);
        let mapped: Vec<_> =
            s.tax_mapping.iter().map(|m| (m.platform_tax_rate_id.as_str(), m.xero_tax_type.as_str())).collect();
        assert_eq!(mapped, [("old", "X"), ("gst", "OUTPUT2")], "a rate not listed this time keeps its mapping");
        assert_eq!(s.tracking_mapping.len(), 1);
        let north = |v: &str| (v.to_owned(), "North".to_owned());
        assert_eq!(s.tracking_mapping[0].options, BTreeMap::from([north("N"), north("Nth")]), "several values");
        assert_eq!(s.payment_accounts.get(&PaymentMethod::Card), Some(&card));
        assert_eq!(s.invoice_url_template, current.invoice_url_template, "not on the form, kept");
    }

    #[test]
    fn tracking_is_kept_when_the_form_did_not_show_it() {
        let current = ConnectionSettings {
            tracking_mapping: vec![TrackingMapping {
                xero_category_id: Uuid::new_v4(),
                job_attribute: "zone".into(),
                options: BTreeMap::from([("N".to_owned(), "North".to_owned())]),
            }],
            ..Default::default()
        };
        let (s, _) = parse(&fields(&[("default_sales_account_code", "200")]), &current, &context());
        assert_eq!(s.tracking_mapping, current.tracking_mapping);
    }

    #[test]
    fn one_value_for_two_options_is_a_problem_not_a_silent_choice() {
        let category = Uuid::new_v4().to_string();
        let f = fields(&[
            (TRACKING_DRAWN, "1"),
            ("tracking0_category", &category),
            ("tracking0_attribute", "Region"),
            ("tracking0_options_for", &category),
            ("tracking0_option:North", "N"),
            ("tracking0_option:South", "N"),
        ]);
        let (_, problems) = parse(&f, &ConnectionSettings::default(), &context());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "settings.tracking_mapping[0].options");
    }

    #[test]
    fn options_drawn_for_another_category_are_not_carried_over() {
        let (before, after) = (Uuid::new_v4(), Uuid::new_v4());
        let f = fields(&[
            (TRACKING_DRAWN, "1"),
            ("tracking0_category", &after.to_string()),
            ("tracking0_attribute", "Region"),
            ("tracking0_options_for", &before.to_string()),
            ("tracking0_option:North", "N"),
        ]);
        let (s, _) = parse(&f, &ConnectionSettings::default(), &context());
        assert!(s.tracking_mapping[0].options.is_empty());
    }

    #[test]
    fn a_settings_problem_is_shown_next_to_its_field() {
        let mut settings = ConnectionSettings::default();
        settings.tax_mapping.push(TaxMapping {
            platform_tax_rate_id: "gst".into(),
            rate: 15.into(),
            components: vec![],
            xero_tax_type: "INPUT".into(),
        });
        let at = |field: &str| field_of(&Problem::new(field, "x"), &settings);
        assert_eq!(at("settings.tax_mapping[0].rate").as_deref(), Some("tax:gst"));
        assert_eq!(at("settings.default_tax_type").as_deref(), Some("default_tax_type"));
        assert_eq!(at("settings.tracking_mapping[1].job_attribute").as_deref(), Some("tracking1"));
        assert_eq!(at("settings.payment_accounts.card").as_deref(), Some("payment:card"));
        assert_eq!(at("settings.invoice_url_template"), None);
    }
}
