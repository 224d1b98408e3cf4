//! The settings form, drawn from the organisation's reference data and the platform's context
//! (the choices Xero offers, the rates and attributes the platform has). Reading it back is
//! `settings_read`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use uuid::Uuid;
use xero_sync_domain::contact_groups::ContactGroup;
use xero_sync_domain::integration::PageContext;
use xero_sync_domain::problem::Problem;
use xero_sync_domain::reference::ReferenceData;
use xero_sync_domain::settings::{
    ConnectionSettings, ContactsSentBack, MAX_TRACKING, NewInvoiceStatus, tax_rate_matches,
};

use crate::html::esc;
use crate::settings_read::TRACKING_DRAWN;
use crate::text::Text;

/// A refused save's problems by the form field they are about ("" for the form as a whole).
pub type Problems = HashMap<String, Vec<Problem>>;

/// Everything the form is drawn from.
pub struct FormInput<'a> {
    pub text: &'static Text,
    pub action: String,
    pub csrf: &'a str,
    pub version: u64,
    pub settings: &'a ConnectionSettings,
    pub context: &'a PageContext,
    pub data: &'a ReferenceData,
    /// `None` when the contact groups cannot be offered (no consent for contacts, or Xero could
    /// not list them): the contacts choice is not drawn.
    pub groups: Option<&'a [ContactGroup]>,
    pub problems: &'a Problems,
}

/// Drawing state: which fields showed their problems (the rest go to the top of the form).
struct Draw<'a> {
    input: &'a FormInput<'a>,
    shown: RefCell<HashSet<String>>,
}

impl Draw<'_> {
    /// The attributes and messages of a field with problems.
    fn errors(&self, field: &str) -> (String, String) {
        let Some(list) = self.input.problems.get(field) else { return (String::new(), String::new()) };
        self.shown.borrow_mut().insert(field.to_owned());
        let id = format!("err-{}", dom_id(field));
        let messages: Vec<String> = list.iter().map(|p| esc(&p.message)).collect();
        let text = format!("<p class=\"error\" id=\"{id}\">{}</p>", messages.join("<br>"));
        (format!(" aria-invalid=\"true\" aria-describedby=\"{id}\""), text)
    }

    /// A select with "none chosen" first. A choice saved earlier that is not among `options`
    /// stays chosen, marked with `gone` (rather than showing as none and being cleared by the
    /// next save).
    fn select(
        &self,
        name: &str,
        label: &str,
        options: &[(String, String)],
        chosen: Option<&str>,
        gone: &str,
    ) -> String {
        let id = format!("{}-{}", dom_id(&self.input.action), dom_id(name));
        let (aria, errs) = self.errors(name);
        let mut out = format!(
            "<div class=\"field\"><label for=\"{id}\">{}</label><select id=\"{id}\" name=\"{}\"{aria}>",
            esc(label),
            esc(name)
        );
        out.push_str(&format!("<option value=\"\">{}</option>", esc(self.input.text.none_chosen)));
        if let Some(kept) = chosen.filter(|c| !c.is_empty() && !options.iter().any(|(v, _)| v == c)) {
            out.push_str(&format!("<option value=\"{}\" selected>{} ({})</option>", esc(kept), esc(kept), esc(gone)));
        }
        for (value, shown) in options {
            let selected = if chosen == Some(value.as_str()) { " selected" } else { "" };
            out.push_str(&format!("<option value=\"{}\"{selected}>{}</option>", esc(value), esc(shown)));
        }
        out.push_str(&format!("</select>{errs}</div>"));
        out
    }

    fn radio(&self, name: &str, value: &str, label: &str, on: bool) -> String {
        let id = format!("{}-{}-{}", dom_id(&self.input.action), dom_id(name), dom_id(value));
        let checked = if on { " checked" } else { "" };
        format!(
            "<label class=\"choice\" for=\"{id}\"><input type=\"radio\" id=\"{id}\" name=\"{name}\" value=\"{value}\"{checked}> {}</label>",
            esc(label)
        )
    }
}

/// A form field's name made safe for an id attribute.
fn dom_id(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

pub fn render(input: &FormInput<'_>) -> String {
    let draw = Draw { input, shown: RefCell::new(HashSet::new()) };
    let t = input.text;
    let s = input.settings;
    let d = input.data;
    let mut fields = String::new();
    // A sales account is chosen by its code; one without a code cannot be.
    let accounts: Vec<_> = d
        .accounts
        .iter()
        .filter(|a| a.usable_for_sales())
        .filter_map(|a| a.code.as_ref().map(|code| (code.clone(), format!("{code} {}", a.name))))
        .collect();
    let sales = s.default_sales_account_code.as_deref();
    fields.push_str(&draw.select("default_sales_account_code", t.sales_account, &accounts, sales, t.not_in_xero));
    let rates: Vec<_> = d
        .tax_rates
        .iter()
        .filter(|r| r.usable_for_sales())
        .map(|r| (r.tax_type.clone(), format!("{} ({}%)", r.name, r.effective().normalize())))
        .collect();
    fields.push_str(&draw.select("default_tax_type", t.tax_rate, &rates, s.default_tax_type.as_deref(), t.not_in_xero));

    let (aria, errs) = draw.errors("new_invoice_status");
    fields.push_str(&format!("<fieldset{aria}><legend>{}</legend>", esc(t.new_invoices)));
    fields.push_str(&draw.radio(
        "new_invoice_status",
        "DRAFT",
        t.draft,
        s.new_invoice_status == NewInvoiceStatus::Draft,
    ));
    let approved = s.new_invoice_status == NewInvoiceStatus::Authorised;
    fields.push_str(&draw.radio("new_invoice_status", "AUTHORISED", t.approved, approved));
    fields.push_str(&format!("{errs}</fieldset>"));

    fields.push_str(&tax_mapping(&draw));
    fields.push_str(&tracking(&draw));
    fields.push_str(&payment_accounts(&draw));
    if let Some(groups) = input.groups {
        fields.push_str(&contacts(&draw, groups));
    }

    // Problems no drawn field showed (the form as a whole, or a field this form does not draw)
    // go at the top, named by their path.
    let shown = draw.shown.borrow();
    let mut general = String::new();
    for (field, list) in input.problems.iter().filter(|(field, _)| !shown.contains(*field)) {
        for p in list {
            let path = p.field.strip_prefix("settings.").unwrap_or(&p.field);
            let text =
                if field.is_empty() && path.is_empty() { p.message.clone() } else { format!("{path}: {}", p.message) };
            general.push_str(&format!("<p class=\"error\">{}</p>", esc(&text)));
        }
    }
    format!(
        "<form method=\"post\" action=\"{}\" class=\"settings\" novalidate><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"version\" value=\"{}\"><h3>{}</h3><p class=\"hint\">{}</p>{general}{fields}\
         <div class=\"actions\"><button type=\"submit\" class=\"primary\">{}</button></div></form>",
        esc(&input.action),
        esc(input.csrf),
        input.version,
        esc(t.settings),
        esc(t.settings_help),
        esc(t.save)
    )
}

/// For each platform rate, only the Xero rates that match it.
fn tax_mapping(draw: &Draw<'_>) -> String {
    let (input, t, d) = (draw.input, draw.input.text, draw.input.data);
    if input.context.tax_rates.is_empty() {
        return String::new();
    }
    let mut out =
        format!("<fieldset><legend>{}</legend><p class=\"hint\">{}</p>", esc(t.tax_mapping), esc(t.tax_mapping_help));
    for rate in &input.context.tax_rates {
        let matching: Vec<_> = d
            .tax_rates
            .iter()
            .filter(|x| x.usable_for_sales() && tax_rate_matches(rate.rate, &rate.components, x))
            .map(|x| (x.tax_type.clone(), format!("{} ({}%)", x.name, x.effective().normalize())))
            .collect();
        let current = input
            .settings
            .tax_mapping
            .iter()
            .find(|m| m.platform_tax_rate_id == rate.id)
            .map(|m| m.xero_tax_type.as_str());
        let label = format!("{} ({}%) → {}", rate.name, rate.rate.normalize(), t.xero_rate);
        out.push_str(&draw.select(&format!("tax:{}", rate.id), &label, &matching, current, t.does_not_match));
        if matching.is_empty() {
            out.push_str(&format!("<p class=\"hint\">{}</p>", esc(t.no_matching_rate)));
        }
    }
    out.push_str("</fieldset>");
    out
}

/// Up to two categories, each from a job attribute; the options of a saved category are mapped
/// from the attribute's values (several to one option, comma-separated).
fn tracking(draw: &Draw<'_>) -> String {
    let (input, t, d) = (draw.input, draw.input.text, draw.input.data);
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
    let mut out = format!(
        "<fieldset><legend>{}</legend><p class=\"hint\">{}</p><input type=\"hidden\" name=\"{TRACKING_DRAWN}\" value=\"1\">",
        esc(t.tracking),
        esc(t.tracking_help)
    );
    for slot in 0..MAX_TRACKING {
        let mapping = input.settings.tracking_mapping.get(slot);
        let (_, errs) = draw.errors(&format!("tracking{slot}"));
        out.push_str("<div class=\"tracking-slot\">");
        let category = mapping.map(|m| m.xero_category_id.to_string());
        let label = format!("{} {}", t.tracking_category, slot + 1);
        out.push_str(&draw.select(
            &format!("tracking{slot}_category"),
            &label,
            &categories,
            category.as_deref(),
            t.not_in_xero,
        ));
        let attribute = mapping.map(|m| m.job_attribute.as_str());
        out.push_str(&draw.select(
            &format!("tracking{slot}_attribute"),
            t.job_attribute,
            &attributes,
            attribute,
            t.not_sent_by_platform,
        ));
        if let Some((m, c)) = mapping.and_then(|m| d.tracking_category(m.xero_category_id).map(|c| (m, c))) {
            out.push_str(&format!(
                "<input type=\"hidden\" name=\"tracking{slot}_options_for\" value=\"{}\">",
                c.tracking_category_id
            ));
            out.push_str(&format!("<p class=\"hint\">{}</p>", esc(t.values_hint)));
            // Archived options that are still mapped are drawn too, so the rules can name them.
            let mapped = |name: &str| m.options.values().any(|o| o == name);
            for option in c.options.iter().filter(|o| o.is_active() || mapped(&o.name)) {
                let values: Vec<&str> =
                    m.options.iter().filter(|(_, o)| **o == option.name).map(|(v, _)| v.as_str()).collect();
                let name = format!("tracking{slot}_option:{}", option.name);
                let id = format!("{}-{}", dom_id(&input.action), dom_id(&name));
                out.push_str(&format!(
                    "<div class=\"field\"><label for=\"{id}\">{} “{}”</label><input type=\"text\" id=\"{id}\" name=\"{}\" value=\"{}\"></div>",
                    esc(t.option_for),
                    esc(&option.name),
                    esc(&name),
                    esc(&values.join(", "))
                ));
            }
        }
        out.push_str(&errs);
        out.push_str("</div>");
    }
    out.push_str("</fieldset>");
    out
}

fn payment_accounts(draw: &Draw<'_>) -> String {
    let (input, t, d) = (draw.input, draw.input.text, draw.input.data);
    if input.context.payment_methods.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<fieldset><legend>{}</legend><p class=\"hint\">{}</p>",
        esc(t.payment_accounts),
        esc(t.payment_accounts_help)
    );
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
        let chosen = input.settings.payment_accounts.get(method).map(Uuid::to_string);
        let name = format!("payment:{}", method.as_str());
        out.push_str(&draw.select(&name, t.payment_method(*method), &accounts, chosen.as_deref(), t.not_in_xero));
    }
    out.push_str("</fieldset>");
    out
}

fn contacts(draw: &Draw<'_>, groups: &[ContactGroup]) -> String {
    let (input, t) = (draw.input, draw.input.text);
    let s = input.settings;
    let (aria, errs) = draw.errors("contacts_sent_back");
    let mut out = format!("<fieldset{aria}><legend>{}</legend>", esc(t.contacts_back));
    for (value, label, choice) in [
        ("all", t.contacts_all, ContactsSentBack::All),
        ("customers", t.contacts_customers, ContactsSentBack::Customers),
        ("groups", t.contacts_groups, ContactsSentBack::Groups),
    ] {
        out.push_str(&draw.radio("contacts_sent_back", value, label, s.contacts_sent_back == choice));
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
