//! The settings form: drawn from the organisation's reference data and the platform's context,
//! read back into the same `ConnectionSettings` the API writes. What the form does not show is
//! kept as it was, so the page and the API can both be used on one connection.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;
use xero_sync_domain::contact_groups::ContactGroup;
use xero_sync_domain::integration::PageContext;
use xero_sync_domain::payment::PaymentMethod;
use xero_sync_domain::problem::Problem;
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::settings::{
    ConnectionSettings, ContactsSentBack, MAX_TRACKING, NewInvoiceStatus, TaxMapping, TrackingMapping, tax_rate_matches,
};

use crate::forms::Fields;
use crate::html::esc;
use crate::text::Text;

/// Everything the form is drawn from.
pub struct FormInput<'a> {
    pub text: &'static Text,
    pub action: String,
    pub csrf: &'a str,
    pub version: u64,
    pub settings: &'a ConnectionSettings,
    pub context: &'a PageContext,
    pub data: &'a ReferenceData,
    /// `None` when the consent does not allow contacts (no groups to choose from).
    pub groups: Option<&'a [ContactGroup]>,
    /// Problems by form field (see [`field_of`]), shown next to it.
    pub problems: &'a HashMap<String, Vec<String>>,
}

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

/// Reads the form into settings, starting from `current` for what the form does not show.
pub fn parse(fields: &Fields, current: &ConnectionSettings, context: &PageContext) -> ConnectionSettings {
    let mut s = current.clone();
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
    s.tracking_mapping = (0..MAX_TRACKING)
        .filter_map(|slot| {
            let category = chosen(&format!("tracking{slot}_category"))?;
            // An id that is not a UUID is kept as the nil id, which the rules then refuse by name.
            let xero_category_id = category.parse().unwrap_or(Uuid::nil());
            let job_attribute = chosen(&format!("tracking{slot}_attribute")).unwrap_or_default();
            // Option inputs belong to the category they were drawn for; another category chosen
            // since starts with no option mapping.
            let drawn_for = fields.one(&format!("tracking{slot}_options_for"));
            let mut options = BTreeMap::new();
            if drawn_for == Some(category.as_str()) {
                let prefix = format!("tracking{slot}_option:");
                for (name, value) in fields.all() {
                    if let Some(option) = name.strip_prefix(&prefix) {
                        if !value.trim().is_empty() {
                            options.insert(value.trim().to_owned(), option.to_owned());
                        }
                    }
                }
            }
            Some(TrackingMapping { xero_category_id, job_attribute, options })
        })
        .collect();
    for method in &context.payment_methods {
        match chosen(&format!("payment:{}", method.as_str())).map(|v| v.parse::<Uuid>()) {
            Some(Ok(id)) => {
                s.payment_accounts.insert(*method, id);
            }
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
    s
}

fn errors(input: &FormInput<'_>, field: &str) -> (String, String) {
    match input.problems.get(field) {
        Some(list) => {
            let id = format!("err-{}", dom_id(field));
            let text: String = list.iter().map(|m| format!("<p class=\"error\" id=\"{id}\">{}</p>", esc(m))).collect();
            (format!(" aria-invalid=\"true\" aria-describedby=\"{id}\""), text)
        }
        None => (String::new(), String::new()),
    }
}

/// A form field's name made safe for an id attribute.
fn dom_id(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

fn select(
    input: &FormInput<'_>,
    name: &str,
    label: &str,
    options: &[(String, String)],
    chosen: Option<&str>,
) -> String {
    let id = format!("{}-{}", dom_id(&input.action), dom_id(name));
    let (aria, errs) = errors(input, name);
    let mut out = format!(
        "<div class=\"field\"><label for=\"{id}\">{}</label><select id=\"{id}\" name=\"{}\"{aria}>",
        esc(label),
        esc(name)
    );
    out.push_str(&format!("<option value=\"\">{}</option>", esc(input.text.none_chosen)));
    for (value, shown) in options {
        let selected = if chosen == Some(value.as_str()) { " selected" } else { "" };
        out.push_str(&format!("<option value=\"{}\"{selected}>{}</option>", esc(value), esc(shown)));
    }
    out.push_str(&format!("</select>{errs}</div>"));
    out
}

pub fn render(input: &FormInput<'_>) -> String {
    let t = input.text;
    let s = input.settings;
    let d = input.data;
    let mut out = format!(
        "<form method=\"post\" action=\"{}\" class=\"settings\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"version\" value=\"{}\"><h3>{}</h3><p class=\"hint\">{}</p>",
        esc(&input.action),
        esc(input.csrf),
        input.version,
        esc(t.settings),
        esc(t.settings_help)
    );
    if let Some(general) = input.problems.get("") {
        for m in general {
            out.push_str(&format!("<p class=\"error\">{}</p>", esc(m)));
        }
    }
    // A sales account is chosen by its code; one without a code cannot be.
    let accounts: Vec<_> = d
        .accounts
        .iter()
        .filter(|a| a.usable_for_sales())
        .filter_map(|a| a.code.as_ref().map(|code| (code.clone(), format!("{code} {}", a.name))))
        .collect();
    out.push_str(&select(
        input,
        "default_sales_account_code",
        t.sales_account,
        &accounts,
        s.default_sales_account_code.as_deref(),
    ));
    let rates: Vec<_> = d
        .tax_rates
        .iter()
        .filter(|r| r.usable_for_sales())
        .map(|r| (r.tax_type.clone(), format!("{} ({}%)", r.name, r.effective().normalize())))
        .collect();
    out.push_str(&select(input, "default_tax_type", t.tax_rate, &rates, s.default_tax_type.as_deref()));

    out.push_str(&format!("<fieldset><legend>{}</legend>", esc(t.new_invoices)));
    for (value, label, on) in [
        ("DRAFT", t.draft, s.new_invoice_status == NewInvoiceStatus::Draft),
        ("AUTHORISED", t.approved, s.new_invoice_status == NewInvoiceStatus::Authorised),
    ] {
        let id = format!("{}-status-{}", dom_id(&input.action), value.to_lowercase());
        let checked = if on { " checked" } else { "" };
        out.push_str(&format!(
            "<label class=\"choice\" for=\"{id}\"><input type=\"radio\" id=\"{id}\" name=\"new_invoice_status\" value=\"{value}\"{checked}> {}</label>",
            esc(label)
        ));
    }
    out.push_str("</fieldset>");

    if !input.context.tax_rates.is_empty() {
        out.push_str(&format!(
            "<fieldset><legend>{}</legend><p class=\"hint\">{}</p>",
            esc(t.tax_mapping),
            esc(t.tax_mapping_help)
        ));
        for rate in &input.context.tax_rates {
            let matching: Vec<_> = d
                .tax_rates
                .iter()
                .filter(|x| x.usable_for_sales() && tax_rate_matches(rate.rate, &rate.components, x))
                .map(|x| (x.tax_type.clone(), format!("{} ({}%)", x.name, x.effective().normalize())))
                .collect();
            let current =
                s.tax_mapping.iter().find(|m| m.platform_tax_rate_id == rate.id).map(|m| m.xero_tax_type.as_str());
            let label = format!("{} ({}%) → {}", rate.name, rate.rate.normalize(), t.xero_rate);
            let name = format!("tax:{}", rate.id);
            out.push_str(&select(input, &name, &label, &matching, current));
            if matching.is_empty() {
                out.push_str(&format!("<p class=\"hint\">{}</p>", esc(t.no_matching_rate)));
            }
        }
        out.push_str("</fieldset>");
    }

    out.push_str(&tracking(input));

    if !input.context.payment_methods.is_empty() {
        out.push_str(&format!(
            "<fieldset><legend>{}</legend><p class=\"hint\">{}</p>",
            esc(t.payment_accounts),
            esc(t.payment_accounts_help)
        ));
        let accounts: Vec<_> = d
            .accounts
            .iter()
            .filter(|a| a.is_active() && a.takes_payments())
            .map(|a| {
                (
                    a.account_id.to_string(),
                    format!("{} {}", a.code.as_deref().unwrap_or_default(), a.name).trim().to_owned(),
                )
            })
            .collect();
        for method in &input.context.payment_methods {
            let chosen = s.payment_accounts.get(method).map(Uuid::to_string);
            out.push_str(&select(
                input,
                &format!("payment:{}", method.as_str()),
                method_label(*method),
                &accounts,
                chosen.as_deref(),
            ));
        }
        out.push_str("</fieldset>");
    }

    if let Some(groups) = input.groups {
        out.push_str(&contacts(input, groups));
    }
    out.push_str(&format!(
        "<div class=\"actions\"><button type=\"submit\" class=\"primary\">{}</button></div></form>",
        esc(t.save)
    ));
    out
}

fn method_label(method: PaymentMethod) -> &'static str {
    match method {
        PaymentMethod::Card => "Card",
        PaymentMethod::Cash => "Cash",
        PaymentMethod::BankTransfer => "Bank transfer",
        PaymentMethod::Cheque => "Cheque",
        PaymentMethod::Online => "Online",
        PaymentMethod::Other => "Other",
    }
}

fn tracking(input: &FormInput<'_>) -> String {
    let t = input.text;
    let d = input.data;
    let categories: Vec<_> = d
        .tracking_categories
        .iter()
        .filter(|c| c.is_active())
        .map(|c| (c.tracking_category_id.to_string(), c.name.clone()))
        .collect();
    if categories.is_empty() {
        return String::new();
    }
    let attributes: Vec<_> = input.context.job_attributes.iter().map(|a| (a.clone(), a.clone())).collect();
    let mut out =
        format!("<fieldset><legend>{}</legend><p class=\"hint\">{}</p>", esc(t.tracking), esc(t.tracking_help));
    for slot in 0..MAX_TRACKING {
        let mapping = input.settings.tracking_mapping.get(slot);
        let (aria, errs) = errors(input, &format!("tracking{slot}"));
        out.push_str(&format!("<div class=\"tracking-slot\"{}>", if aria.is_empty() { "" } else { " data-invalid" }));
        let category = mapping.map(|m| m.xero_category_id.to_string());
        out.push_str(&select(
            input,
            &format!("tracking{slot}_category"),
            &format!("{} {}", t.tracking_category, slot + 1),
            &categories,
            category.as_deref(),
        ));
        out.push_str(&select(
            input,
            &format!("tracking{slot}_attribute"),
            t.job_attribute,
            &attributes,
            mapping.map(|m| m.job_attribute.as_str()),
        ));
        if let Some((m, c)) = mapping.and_then(|m| d.tracking_category(m.xero_category_id).map(|c| (m, c))) {
            out.push_str(&format!(
                "<input type=\"hidden\" name=\"tracking{slot}_options_for\" value=\"{}\">",
                c.tracking_category_id
            ));
            for option in c.options.iter().filter(|o| o.is_active()) {
                let value = m.options.iter().find(|(_, o)| **o == option.name).map(|(v, _)| v.as_str()).unwrap_or("");
                let name = format!("tracking{slot}_option:{}", option.name);
                let id = format!("{}-{}", dom_id(&input.action), dom_id(&name));
                out.push_str(&format!(
                    "<div class=\"field\"><label for=\"{id}\">{} “{}”</label><input type=\"text\" id=\"{id}\" name=\"{}\" value=\"{}\"></div>",
                    esc(t.option_for),
                    esc(&option.name),
                    esc(&name),
                    esc(value)
                ));
            }
        }
        out.push_str(&errs);
        out.push_str("</div>");
    }
    out.push_str("</fieldset>");
    out
}

fn contacts(input: &FormInput<'_>, groups: &[ContactGroup]) -> String {
    let t = input.text;
    let s = input.settings;
    let (_, errs) = errors(input, "contacts_sent_back");
    let mut out = format!("<fieldset><legend>{}</legend>", esc(t.contacts_back));
    for (value, label, on) in [
        ("all", t.contacts_all, s.contacts_sent_back == ContactsSentBack::All),
        ("customers", t.contacts_customers, s.contacts_sent_back == ContactsSentBack::Customers),
        ("groups", t.contacts_groups, s.contacts_sent_back == ContactsSentBack::Groups),
    ] {
        let id = format!("{}-contacts-{value}", dom_id(&input.action));
        let checked = if on { " checked" } else { "" };
        out.push_str(&format!(
            "<label class=\"choice\" for=\"{id}\"><input type=\"radio\" id=\"{id}\" name=\"contacts_sent_back\" value=\"{value}\"{checked}> {}</label>",
            esc(label)
        ));
    }
    for g in groups {
        let id = format!("{}-group-{}", dom_id(&input.action), g.id);
        let checked = if s.contact_groups.contains(&g.id) { " checked" } else { "" };
        out.push_str(&format!(
            "<label class=\"choice\" for=\"{id}\"><input type=\"checkbox\" id=\"{id}\" name=\"contact_group\" value=\"{}\"{checked}> {}</label>",
            g.id,
            esc(&g.name)
        ));
    }
    out.push_str(&errs);
    out.push_str("</fieldset>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("tracking0_category", &category.to_string()),
            ("tracking0_attribute", "Region"),
            ("tracking0_options_for", &category.to_string()),
            ("tracking0_option:North", "N"),
            ("tracking0_option:South", " "),
            ("payment:card", &card.to_string()),
        ]);
        let s = parse(&f, &current, &context());
        assert_eq!(s.default_sales_account_code.as_deref(), Some("200"));
        assert_eq!(s.default_tax_type, None);
        assert_eq!(s.new_invoice_status, NewInvoiceStatus::Authorised);
        let mapped: Vec<_> =
            s.tax_mapping.iter().map(|m| (m.platform_tax_rate_id.as_str(), m.xero_tax_type.as_str())).collect();
        assert_eq!(mapped, [("old", "X"), ("gst", "OUTPUT2")], "a rate not listed this time keeps its mapping");
        assert_eq!(s.tracking_mapping.len(), 1);
        assert_eq!(s.tracking_mapping[0].options, BTreeMap::from([("N".to_owned(), "North".to_owned())]));
        assert_eq!(s.payment_accounts.get(&PaymentMethod::Card), Some(&card));
        assert_eq!(s.invoice_url_template, current.invoice_url_template, "not on the form, kept");
    }

    #[test]
    fn options_drawn_for_another_category_are_not_carried_over() {
        let (before, after) = (Uuid::new_v4(), Uuid::new_v4());
        let f = fields(&[
            ("tracking0_category", &after.to_string()),
            ("tracking0_attribute", "Region"),
            ("tracking0_options_for", &before.to_string()),
            ("tracking0_option:North", "N"),
        ]);
        let s = parse(&f, &ConnectionSettings::default(), &context());
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
