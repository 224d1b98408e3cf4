//! Validates JSON against `#/components/schemas/<Name>` of Xero's OpenAPI files, read from
//! `$XERO_OPENAPI_DIR` (default `<workspace>/../shared/xero-openapi`). The files are OpenAPI 3.0,
//! so a schema is validated as draft-04 with the spec's `components` embedded under the root for
//! `$ref`, and `nullable: true` turned into a `null` alternative.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

/// `$XERO_OPENAPI_DIR`, else `../shared/xero-openapi` beside the repository.
pub fn spec_dir() -> PathBuf {
    match std::env::var_os("XERO_OPENAPI_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::workspace_root().join("../shared/xero-openapi"),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SpecFile {
    Accounting,
    Identity,
    Webhooks,
}

impl SpecFile {
    fn file_name(self) -> &'static str {
        match self {
            SpecFile::Accounting => "xero_accounting.yaml",
            SpecFile::Identity => "xero-identity.yaml",
            SpecFile::Webhooks => "xero-webhooks.yaml",
        }
    }
}

fn load(file: SpecFile) -> Value {
    static CACHE: OnceLock<Mutex<HashMap<SpecFile, Arc<Value>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(file)
        .or_insert_with(|| {
            let path = spec_dir().join(file.file_name());
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("spec is YAML");
            let mut json = serde_json::to_value(yaml).expect("spec converts to JSON");
            nullable_to_null(&mut json);
            Arc::new(json)
        })
        .as_ref()
        .clone()
}

fn nullable_to_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                } else if map.contains_key("$ref") {
                    let inner = Value::Object(std::mem::take(map));
                    map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                }
            }
            for child in map.values_mut() {
                nullable_to_null(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_null),
        _ => {}
    }
}

type Validators = HashMap<(SpecFile, String), Arc<jsonschema::Validator>>;

/// `name` is a schema under components/schemas; `[]Name` validates an array of them.
fn validator(file: SpecFile, name: &str) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<Validators>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry((file, name.to_string()))
        .or_insert_with(|| {
            let spec = load(file);
            let components = spec.get("components").cloned().expect("spec has components");
            let target = name.trim_start_matches("[]");
            assert!(components["schemas"].get(target).is_some(), "no schema {target} in {file:?}");
            let reference = json!({"$ref": format!("#/components/schemas/{target}")});
            let mut root =
                if name.starts_with("[]") { json!({"type": "array", "items": reference}) } else { reference };
            // draft-04 ignores siblings of a root $ref, so wrap it in allOf.
            root = json!({"allOf": [root], "components": components});
            let built = if file == SpecFile::Webhooks {
                // The webhooks file uses `const`, which draft-04 does not know.
                jsonschema::draft7::options().should_validate_formats(false).build(&root)
            } else {
                jsonschema::draft4::options().should_validate_formats(false).build(&root)
            };
            Arc::new(built.unwrap_or_else(|e| panic!("schema {name} does not compile: {e}")))
        })
        .clone()
}

/// Panics with every violation when `instance` does not match the named schema.
pub fn assert_valid(file: SpecFile, name: &str, instance: &Value) {
    let v = validator(file, name);
    let errors: Vec<String> = v.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{name} does not match {file:?}:\n{}\n{instance:#}", errors.join("\n"));
}

/// The accounting spec as JSON, for tests that read a limit or an enum from it.
pub fn accounting_spec() -> Value {
    load(SpecFile::Accounting)
}

pub fn accounting(name: &str, instance: &Value) {
    assert_valid(SpecFile::Accounting, name, instance)
}

/// Returns whether `instance` matches, so a test can show that the validator rejects bad data.
pub fn is_valid(file: SpecFile, name: &str, instance: &Value) -> bool {
    validator(file, name).is_valid(instance)
}
