//! What Xero's OpenAPI file says a write body may hold: `maxLength` of strings, `enum` values and
//! `required` properties, checked element by element and recursively through `$ref`s, arrays and
//! nested objects before any business rule runs. The file is read once per directory (from
//! `$XERO_OPENAPI_DIR`, by default `shared/xero-openapi` beside the workspace), so the emulator
//! refuses exactly what the published spec forbids and nothing is copied into the repository.
//!
//! Unknown properties, types and formats are not checked: Xero ignores properties it does not
//! know, and the handlers already answer badly typed values in Xero's words.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

/// The variable that names the directory holding `xero_accounting.yaml`.
pub const SPEC_DIR_VAR: &str = "XERO_OPENAPI_DIR";
const ACCOUNTING_FILE: &str = "xero_accounting.yaml";

/// Writes the emulator serves; a spec without their bodies would silently check nothing.
const NEEDED: &[(&str, &str)] = &[
    ("PUT", "/Contacts"),
    ("PUT", "/Invoices"),
    ("PUT", "/CreditNotes"),
    ("PUT", "/Payments"),
    ("POST", "/Payments/{PaymentID}"),
    ("PUT", "/CreditNotes/{CreditNoteID}/Allocations"),
];

/// Enums the handlers already read in any case (they upper-case Status and CurrencyCode and
/// match LineAmountTypes case-blind); the spec check must not refuse what they accept.
const ANY_CASE: &[&str] = &["Status", "LineAmountTypes", "CurrencyCode"];

/// The directory the spec is read from: the configured one, else `$XERO_OPENAPI_DIR`, else
/// `shared/xero-openapi` beside the workspace this crate was built in.
pub fn spec_dir(configured: Option<&Path>) -> PathBuf {
    match (configured, std::env::var_os(SPEC_DIR_VAR)) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => {
            let default = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/xero-openapi"));
            default.canonicalize().unwrap_or_else(|_| default.to_path_buf())
        }
    }
}

/// One way the element breaks the spec. `pointer` is a JSON Pointer into the element as sent.
#[derive(Clone, Debug)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
    /// The value itself is unacceptable (too long, not in the enum), as opposed to missing.
    bad_value: bool,
}

struct Body {
    method: String,
    /// Lower-case path segments after `/api.xro/2.0`; `None` is a `{parameter}`.
    segs: Vec<Option<String>>,
    element: String,
}

pub struct Spec {
    schemas: Map<String, Value>,
    bodies: Vec<Body>,
    /// Element schemas that a PUT creates; their `required` lists are what a create needs.
    created: HashSet<String>,
}

impl Spec {
    /// Reads and indexes `xero_accounting.yaml` in `dir`, once per directory per process.
    pub fn load(dir: &Path) -> io::Result<Arc<Spec>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Spec>>>> = OnceLock::new();
        let mut cache = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        let path = dir.join(ACCOUNTING_FILE);
        if let Some(spec) = cache.get(&path) {
            return Ok(spec.clone());
        }
        let fail = |kind: io::ErrorKind, why: String| {
            io::Error::new(
                kind,
                format!(
                    "cannot load Xero's OpenAPI file {}: {why} (set {SPEC_DIR_VAR} to the directory that holds {ACCOUNTING_FILE})",
                    path.display()
                ),
            )
        };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.kind(), e.to_string()))?;
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| fail(io::ErrorKind::InvalidData, e.to_string()))?;
        let doc = serde_json::to_value(yaml).map_err(|e| fail(io::ErrorKind::InvalidData, e.to_string()))?;
        let spec = Arc::new(Spec::from_document(&doc).map_err(|e| fail(io::ErrorKind::InvalidData, e))?);
        cache.insert(path, spec.clone());
        Ok(spec)
    }

    fn from_document(doc: &Value) -> Result<Spec, String> {
        let schemas = doc
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .ok_or("it has no components/schemas")?;
        let mut spec = Spec { schemas, bodies: vec![], created: HashSet::new() };
        for (path, ops) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            for (method, op) in ops.as_object().into_iter().flatten() {
                let Some(name) = op.pointer("/requestBody/content/application~1json/schema/$ref").and_then(ref_name)
                else {
                    continue;
                };
                let element = spec.element_of(name).to_string();
                let method = method.to_ascii_uppercase();
                if method == "PUT" {
                    spec.created.insert(element.clone());
                }
                let segs = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| if s.starts_with('{') { None } else { Some(s.to_ascii_lowercase()) })
                    .collect();
                spec.bodies.push(Body { method, segs, element });
            }
        }
        for (method, path) in NEEDED {
            let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(|s| s.to_ascii_lowercase()).collect();
            if spec.element_schema(method, &segs).is_none() {
                return Err(format!("it describes no JSON body for {method} {path}"));
            }
        }
        Ok(spec)
    }

    /// A wrapper such as `Invoices` (`x-objectArrayKey`) holds an array of its elements.
    fn element_of<'a>(&'a self, name: &'a str) -> &'a str {
        let Some(schema) = self.schemas.get(name) else { return name };
        let Some(key) = schema.get("x-objectArrayKey").and_then(Value::as_str) else { return name };
        schema
            .get("properties")
            .and_then(Value::as_object)
            .and_then(|props| props.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .and_then(|(_, p)| p.pointer("/items/$ref"))
            .and_then(ref_name)
            .unwrap_or(name)
    }

    /// The schema of one element of the body of `method` on `segs` (the lower-case path after
    /// `/api.xro/2.0`), e.g. `Invoice` for `PUT invoices`.
    pub fn element_schema(&self, method: &str, segs: &[String]) -> Option<&str> {
        self.bodies
            .iter()
            .filter(|b| b.method.eq_ignore_ascii_case(method) && b.segs.len() == segs.len())
            .filter(|b| b.segs.iter().zip(segs).all(|(t, s)| t.as_ref().is_none_or(|t| t == s)))
            // A literal segment beats a parameter: `/CreditNotes/{id}/Allocations` over `/{id}/History`.
            .max_by_key(|b| b.segs.iter().filter(|s| s.is_some()).count())
            .map(|b| b.element.as_str())
    }

    /// Every way `element` breaks `schema`. An update sends only what changes, so the
    /// top-level `required` list of a schema that creates also serve is not applied to it.
    pub fn check(&self, schema: &str, element: &Value, update: bool) -> Vec<Problem> {
        let mut out = vec![];
        let root = serde_json::json!({"$ref": format!("#/components/schemas/{schema}")});
        let required = !(update && self.created.contains(schema));
        self.walk(&root, element, "", schema, required, &mut out);
        out
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        // The spec's references end at a real schema within a few hops; the bound keeps a
        // malformed file from looping.
        for _ in 0..16 {
            match schema.get("$ref").and_then(ref_name).and_then(|n| self.schemas.get(n)) {
                Some(next) => schema = next,
                None => break,
            }
        }
        schema
    }

    fn walk(&self, schema: &Value, v: &Value, pointer: &str, name: &str, required: bool, out: &mut Vec<Problem>) {
        if v.is_null() {
            return;
        }
        let s = self.resolve(schema);
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            let any_case = ANY_CASE.contains(&name);
            let ok = values.iter().any(|e| match (e, v) {
                (Value::String(e), Value::String(v)) if any_case => e.eq_ignore_ascii_case(v),
                _ => e == v,
            });
            if !ok {
                let shown = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                let mut message = format!("{name} '{shown}' is not valid.");
                if values.len() <= 10 {
                    let list: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                    message.push_str(&format!(" It must be one of: {}.", list.join(", ")));
                }
                out.push(Problem { pointer: pointer.into(), message, bad_value: true });
            }
        }
        if let (Some(max), Some(text)) = (s.get("maxLength").and_then(Value::as_u64), v.as_str()) {
            // Xero is .NET: a string's length is counted in UTF-16 code units.
            if text.encode_utf16().count() as u64 > max {
                out.push(Problem {
                    pointer: pointer.into(),
                    message: format!("The {name} must not be more than {max} characters long."),
                    bad_value: true,
                });
            }
        }
        match v {
            Value::Object(obj) => {
                let Some(props) = s.get("properties").and_then(Value::as_object) else { return };
                if required {
                    for want in s.get("required").and_then(Value::as_array).into_iter().flatten() {
                        let Some(want) = want.as_str() else { continue };
                        if !obj.iter().any(|(k, x)| k.eq_ignore_ascii_case(want) && !x.is_null()) {
                            out.push(Problem {
                                pointer: format!("{pointer}/{}", escape(want)),
                                message: format!("The {want} field is required."),
                                bad_value: false,
                            });
                        }
                    }
                }
                for (key, value) in obj {
                    // Xero binds properties case-blind and ignores what it does not know.
                    let Some((prop, sub)) = props.iter().find(|(p, _)| p.eq_ignore_ascii_case(key)) else {
                        continue;
                    };
                    // Read-only properties (totals, UpdatedDateUTC) are ignored on input.
                    if sub.get("readOnly") == Some(&Value::Bool(true)) {
                        continue;
                    }
                    self.walk(sub, value, &format!("{pointer}/{}", escape(key)), prop, true, out);
                }
            }
            Value::Array(items) => {
                let Some(item_schema) = s.get("items") else { return };
                for (i, item) in items.iter().enumerate() {
                    self.walk(item_schema, item, &format!("{pointer}/{i}"), name, true, out);
                }
            }
            _ => {}
        }
    }
}

fn ref_name(v: &Value) -> Option<&str> {
    v.as_str()?.strip_prefix("#/components/schemas/")
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

pub fn messages(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| p.message.clone()).collect()
}

/// The element as it is echoed back with its errors: without the values the spec refused, as
/// Xero echoes the object it could bind, so the answer itself still matches the spec.
pub fn without_bad_values(element: &Value, problems: &[Problem]) -> Value {
    let mut out = element.clone();
    for p in problems.iter().filter(|p| p.bad_value) {
        let Some((parent, last)) = p.pointer.rsplit_once('/') else { continue };
        let key = last.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = out.pointer_mut(parent) {
            map.remove(&key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec() -> Arc<Spec> {
        Spec::load(&spec_dir(None)).expect("spec loads")
    }

    #[test]
    fn write_bodies_resolve_to_their_element_schemas() {
        let s = spec();
        let segs = |p: &str| p.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(s.element_schema("PUT", &segs("invoices")), Some("Invoice"));
        assert_eq!(s.element_schema("POST", &segs("contacts/abc")), Some("Contact"));
        assert_eq!(s.element_schema("POST", &segs("payments/abc")), Some("PaymentDelete"));
        assert_eq!(s.element_schema("PUT", &segs("creditnotes/abc/allocations")), Some("Allocation"));
        assert_eq!(s.element_schema("GET", &segs("invoices")), None);
    }

    #[test]
    fn nested_values_are_checked_and_echoes_drop_them() {
        let s = spec();
        let bad = json!({"Type": "ACCREX", "Contact": {"ContactNumber": "x".repeat(51),
            "Addresses": [{"AddressType": "HOME"}]}, "Status": "draft", "Total": "ignored"});
        let problems = s.check("Invoice", &bad, false);
        let mut pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        pointers.sort();
        assert_eq!(pointers, vec!["/Contact/Addresses/0/AddressType", "/Contact/ContactNumber", "/Type"]);
        let echo = without_bad_values(&bad, &problems);
        assert!(echo.get("Type").is_none() && echo["Contact"].get("ContactNumber").is_none());
        assert_eq!(echo["Status"], "draft");
        assert_eq!(s.check("Allocation", &json!({"Amount": 1}), false).len(), 2);
        // 255 UTF-16 units fit; an emoji counts as two.
        assert!(s.check("Invoice", &json!({"InvoiceNumber": "😀".repeat(127) + "a"}), false).is_empty());
        assert_eq!(s.check("Invoice", &json!({"InvoiceNumber": "😀".repeat(128)}), false).len(), 1);
    }

    #[test]
    fn a_missing_spec_names_the_path_and_the_variable() {
        let err = Spec::load(Path::new("/nonexistent/xero-openapi")).err().expect("fails");
        let text = err.to_string();
        assert!(text.contains("/nonexistent/xero-openapi/xero_accounting.yaml") && text.contains(SPEC_DIR_VAR));
    }
}
