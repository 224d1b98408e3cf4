//! Least privilege, checked: every IAM statement in infra/template.yaml names its actions and
//! resources. A wildcard action (`*`, `service:*`) or resource (`*`) fails unless it is on the
//! exception list below, with the reason AWS leaves no narrower choice. And each function holds
//! only the secrets its code uses: its environment names exactly those secrets and its role may
//! read exactly those (see [`SECRETS_USED`]).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use xero_sync_runtime::app::{PLATFORM_SIGNING_SECRETS, SecretSetting, XERO_CLIENT_SECRET, XERO_WEBHOOK_KEY};
use xero_sync_testkit::{Template, workspace_root};

/// (resource logical id, action) pairs allowed a `*` resource, each with AWS's reason.
/// Empty: every action the functions perform can be scoped.
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

fn as_list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    }
}

/// Every policy statement in the template, with the logical id it belongs to.
fn statements(template: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, resource) in template["Resources"].as_object().unwrap() {
        let props = &resource["Properties"];
        let documents: Vec<&Value> = match resource["Type"].as_str().unwrap_or_default() {
            "AWS::IAM::Role" => as_list(&props["Policies"]).into_iter().map(|p| &p["PolicyDocument"]).collect(),
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => vec![&props["PolicyDocument"]],
            "AWS::Serverless::Function" => {
                as_list(&props["Policies"]).into_iter().filter(|p| p.get("Statement").is_some()).collect()
            }
            _ => vec![],
        };
        for document in documents {
            for statement in as_list(&document["Statement"]) {
                out.push((id.clone(), statement.clone()));
            }
        }
    }
    out
}

fn violations(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (id, statement) in statements(template) {
        let actions: Vec<String> =
            as_list(&statement["Action"]).iter().filter_map(|a| a.as_str()).map(str::to_owned).collect();
        for action in &actions {
            if action == "*" || action.ends_with(":*") {
                found.push(format!("{id}: wildcard action {action}"));
            }
        }
        let star_resource = as_list(&statement["Resource"]).iter().any(|r| r.as_str() == Some("*"));
        if star_resource {
            for action in &actions {
                if !EXCEPTIONS.iter().any(|(rid, a, _)| *rid == id && a == action) {
                    found.push(format!("{id}: {action} on resource *"));
                }
            }
        }
    }
    found
}

#[test]
fn no_policy_in_the_template_grants_a_wildcard_action_or_resource() {
    let template = Template::from_repo().unwrap();
    let found = violations(template.document());
    assert!(found.is_empty(), "least privilege broken in infra/template.yaml:\n{}", found.join("\n"));
    assert!(statements(template.document()).len() > 20, "the roles' statements were found");
}

#[test]
fn every_function_has_its_own_role_and_no_managed_policies() {
    let template = Template::from_repo().unwrap();
    let resources = template.document()["Resources"].as_object().unwrap();
    let functions: Vec<(&String, &Value)> =
        resources.iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function").collect();
    assert_eq!(functions.len(), 10);
    let mut roles = std::collections::HashSet::new();
    for (id, function) in functions {
        let props = &function["Properties"];
        // With a Role given, SAM attaches nothing of its own (such as the SQS poller's managed
        // policy, whose resource is *).
        let role = props["Role"]["Fn::GetAtt"][0].as_str().unwrap_or_else(|| panic!("{id} has no Role of its own"));
        assert!(roles.insert(role.to_owned()), "{id} shares role {role}");
        assert!(props.get("Policies").is_none() && props.get("ManagedPolicyArns").is_none(), "{id}");
        assert_eq!(resources[role]["Type"], "AWS::IAM::Role");
        assert!(resources[role]["Properties"].get("ManagedPolicyArns").is_none(), "{role} has managed policies");
    }
}

#[test]
fn the_check_catches_wildcards() {
    let template: Value = serde_json::json!({ "Resources": {
        "Loose": { "Type": "AWS::IAM::Role", "Properties": { "Policies": [{ "PolicyDocument": { "Statement": [
            { "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/*" },
            { "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "*" },
        ]}}]}},
    }});
    let found = violations(&template);
    assert_eq!(found, vec!["Loose: wildcard action s3:*", "Loose: sqs:SendMessage on resource *"]);
}

// ------------------------------------------------------------------ each function's secrets

/// A secret a function may hold: the setting (its variable and the `*_ID` variable naming
/// it) and the template parameter that names the Secrets Manager secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Secret {
    XeroClient,
    PlatformSigning,
    XeroWebhook,
}

use Secret::{PlatformSigning, XeroClient, XeroWebhook};

impl Secret {
    const ALL: [Secret; 3] = [XeroClient, PlatformSigning, XeroWebhook];

    fn setting(self) -> SecretSetting {
        match self {
            XeroClient => XERO_CLIENT_SECRET,
            PlatformSigning => PLATFORM_SIGNING_SECRETS,
            XeroWebhook => XERO_WEBHOOK_KEY,
        }
    }

    fn parameter(self) -> &'static str {
        match self {
            XeroClient => "XeroClientSecretName",
            PlatformSigning => "PlatformSigningSecretName",
            XeroWebhook => "XeroWebhookKeySecretName",
        }
    }

    /// The secret's ARN as a role grants it (`!Sub`): Secrets Manager adds six characters.
    fn arn(self) -> String {
        format!(
            "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{{}}}-??????",
            self.parameter()
        )
    }
}

/// What each function's code uses, read from the code: the Xero client secret wherever Xero's
/// identity service is called (the code exchange, token refreshes), the platform's signing
/// secrets wherever the platform's signatures are checked. Each binary's `main` declares the
/// same in its `Needs`, checked below.
const SECRETS_USED: &[(&str, &str, &[Secret])] = &[
    // The signed connect link and connection API; the API calls Xero.
    ("ConnectFunction", "functions/connect/src/bin/main.rs", &[XeroClient, PlatformSigning]),
    // The integration page: the signed session call, its own signed Connect links; its buttons
    // call Xero.
    ("IntegrationPageFunction", "functions/integration-page/src/bin/main.rs", &[XeroClient, PlatformSigning]),
    // The code exchange; nothing it serves is signed by the platform.
    ("OAuthCallbackFunction", "functions/oauth-callback/src/bin/main.rs", &[XeroClient]),
    // Verifies the platform's signatures and queues; never calls Xero.
    ("InvoiceWebhookFunction", "functions/invoice-push/src/bin/webhook.rs", &[PlatformSigning]),
    // The workers and the sweep call Xero (refreshing tokens) and verify nothing.
    ("InvoicePushWorkerFunction", "functions/invoice-push/src/bin/worker.rs", &[XeroClient]),
    ("ImportWorkerFunction", "functions/scheduled-import/src/bin/worker.rs", &[XeroClient]),
    ("XeroChangesWorkerFunction", "functions/scheduled-import/src/bin/changes.rs", &[XeroClient]),
    // Verifies Xero's webhook signatures and queues; never calls Xero.
    ("XeroWebhookFunction", "functions/scheduled-import/src/bin/xero_webhook.rs", &[XeroWebhook]),
    ("InactivitySweepFunction", "functions/inactivity-sweep/src/bin/main.rs", &[XeroClient]),
    // Reads the table and queues messages.
    ("ImportFanoutFunction", "functions/scheduled-import/src/bin/fanout.rs", &[]),
];

/// A resource or value as written: a plain string, or a `!Sub` of one string.
fn written(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) if map.len() == 1 => map.get("Fn::Sub").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// Whether an IAM action (possibly with `*` or `?`) covers `wanted`; IAM actions ignore case.
fn action_covers(pattern: &str, wanted: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    glob(pattern.to_ascii_lowercase().as_bytes(), wanted.to_ascii_lowercase().as_bytes())
}

fn env_vars(v: &Value) -> Vec<(String, Value)> {
    v.pointer("/Environment/Variables")
        .and_then(Value::as_object)
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Whether an environment variable names a secret (`XERO_CLIENT_SECRET_ID`, `APP_SECRET_ID`, ...).
fn names_a_secret(variable: &str) -> bool {
    variable.contains("SECRET") && variable.ends_with("_ID")
}

/// Everything that breaks "each function holds only the secrets its code uses".
fn secret_violations(template: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let resources = template["Resources"].as_object().cloned().unwrap_or_default();
    let globals = template.pointer("/Globals/Function").cloned().unwrap_or(Value::Null);

    // A secret's value is never in the environment, and no secret is named for every function.
    for (variable, value) in env_vars(&globals) {
        if names_a_secret(&variable) {
            found.push(format!("Globals: {variable} names a secret for every function"));
        }
        if Secret::ALL.iter().any(|s| s.setting().name == variable) {
            found.push(format!("Globals: {variable} is set directly; it must come from Secrets Manager"));
        }
        if Secret::ALL.iter().any(|s| value.to_string().contains(s.parameter())) {
            found.push(format!("Globals: {variable} refers to a secret's name"));
        }
    }
    // The token secrets' prefix, as every function's SECRET_PREFIX gives it.
    let grants = env_vars(&globals).into_iter().find(|(k, _)| k == "SECRET_PREFIX").and_then(|(_, v)| written(&v)).map(
        |prefix| {
            format!("arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{prefix}*")
        },
    );

    let functions: Vec<(&String, &Value)> =
        resources.iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function").collect();
    for (id, _) in &functions {
        if !SECRETS_USED.iter().any(|(f, _, _)| f == id) {
            found.push(format!("{id}: not in SECRETS_USED; say which secrets its code uses"));
        }
    }
    for (id, _, uses) in SECRETS_USED {
        let Some(function) = resources.get(*id) else {
            found.push(format!("{id}: in SECRETS_USED but not in the template"));
            continue;
        };
        let props = &function["Properties"];
        let expected: BTreeSet<Secret> = uses.iter().copied().collect();

        // Its environment names exactly those secrets, each from its parameter.
        let mut named = BTreeSet::new();
        for (variable, value) in env_vars(props) {
            if Secret::ALL.iter().any(|s| s.setting().name == variable) {
                found.push(format!("{id}: {variable} is set directly; it must come from Secrets Manager"));
            }
            match Secret::ALL.iter().find(|s| s.setting().id == variable) {
                Some(secret) => {
                    named.insert(*secret);
                    if value != json!({ "Ref": secret.parameter() }) {
                        found.push(format!("{id}: {variable} is {value}, not !Ref {}", secret.parameter()));
                    }
                }
                None if names_a_secret(&variable) => found.push(format!("{id}: {variable} names an unknown secret")),
                None if Secret::ALL.iter().any(|s| value.to_string().contains(s.parameter())) => {
                    found.push(format!("{id}: {variable} refers to a secret's name"))
                }
                None => {}
            }
        }
        for secret in expected.symmetric_difference(&named) {
            let what = if expected.contains(secret) { "lacks" } else { "must not have" };
            found.push(format!("{id}: its environment {what} {}", secret.setting().id));
        }

        // Its role reads exactly those secrets (and the token secrets under the prefix).
        let Some(role) = props["Role"]["Fn::GetAtt"][0].as_str() else {
            found.push(format!("{id}: no Role of its own"));
            continue;
        };
        let mut readable = BTreeSet::new();
        for (owner, statement) in statements(template) {
            if owner != role || statement["Effect"] != "Allow" {
                continue;
            }
            if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
                found.push(format!("{role}: NotAction/NotResource may grant secrets"));
                continue;
            }
            let actions: Vec<&str> = as_list(&statement["Action"]).iter().filter_map(|a| a.as_str()).collect();
            let reads = actions.iter().any(|a| action_covers(a, "secretsmanager:GetSecretValue"));
            let secrets_actions: Vec<&&str> = actions
                .iter()
                .filter(|a| a.to_ascii_lowercase().starts_with("secretsmanager:") || **a == "*")
                .collect();
            if secrets_actions.is_empty() {
                continue;
            }
            for resource in as_list(&statement["Resource"]) {
                let text = written(resource);
                if text.is_some() && text == grants {
                    continue;
                }
                match Secret::ALL.iter().find(|s| text.as_deref() == Some(s.arn().as_str())) {
                    Some(secret) if reads => {
                        readable.insert(*secret);
                        if let Some(other) = secrets_actions.iter().find(|a| !action_covers(a, "secretsmanager:GetSecretValue")) {
                            found.push(format!("{role}: {other} on {}", secret.parameter()));
                        }
                    }
                    Some(secret) => found.push(format!("{role}: {secrets_actions:?} on {}", secret.parameter())),
                    None => found.push(format!("{role}: {secrets_actions:?} on {resource}, which is neither the token secrets' prefix nor a named secret")),
                }
            }
        }
        for secret in expected.symmetric_difference(&readable) {
            let what = if expected.contains(secret) { "cannot read" } else { "must not read" };
            found.push(format!("{role}: {what} {}", secret.parameter()));
        }
    }
    found
}

#[test]
fn each_function_holds_only_the_secrets_its_code_uses() {
    let template = Template::from_repo().unwrap();
    let found = secret_violations(template.document());
    assert!(found.is_empty(), "secrets in infra/template.yaml:\n{}", found.join("\n"));
    for secret in Secret::ALL {
        assert!(
            template.document()["Parameters"].get(secret.parameter()).is_some(),
            "the template has the parameter {}",
            secret.parameter()
        );
    }
}

/// The table above is the code's: each binary's `main` declares the same `Needs`.
#[test]
fn each_main_declares_the_secrets_in_the_table() {
    for (id, main, uses) in SECRETS_USED {
        let source = std::fs::read_to_string(workspace_root().join(main)).unwrap();
        let source: String = source.split_whitespace().collect::<Vec<_>>().join(" ");
        let needs = format!(
            "App::start(Needs {{ xero_client_secret: {}, platform_signing_secrets: {}, xero_webhook_key: {} }})",
            uses.contains(&XeroClient),
            uses.contains(&PlatformSigning),
            uses.contains(&XeroWebhook)
        );
        assert!(source.contains(&needs), "{id}: {main} does not start with {needs}");
    }
}

#[test]
fn the_secrets_check_catches_a_function_given_a_secret_it_does_not_use() {
    let mut template = Template::from_repo().unwrap().document().clone();
    let resources = template["Resources"].as_object_mut().unwrap();
    // The import worker given the platform's signing key, in its environment and its role.
    resources["ImportWorkerFunction"]["Properties"]["Environment"]["Variables"]["PLATFORM_SIGNING_SECRETS_ID"] =
        json!({ "Ref": "PlatformSigningSecretName" });
    resources["ImportWorkerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": { "Fn::Sub": PlatformSigning.arn() } }));
    // The fan-out allowed every secret of the stage.
    resources["ImportFanoutRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "Effect": "Allow", "Action": "secretsmanager:Get*", "Resource": { "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:xero-sync/${Stage}/*" } }));
    // The webhook no longer able to read its own secret.
    resources["InvoiceWebhookFunction"]["Properties"]["Environment"]["Variables"]
        .as_object_mut()
        .unwrap()
        .remove("PLATFORM_SIGNING_SECRETS_ID");
    // A secret's value in everyone's environment.
    template["Globals"]["Function"]["Environment"]["Variables"]["XERO_CLIENT_SECRET"] = json!("oops");

    let found = secret_violations(&template);
    for expected in [
        "ImportWorkerFunction: its environment must not have PLATFORM_SIGNING_SECRETS_ID",
        "ImportWorkerRole: must not read PlatformSigningSecretName",
        "ImportFanoutRole: [\"secretsmanager:Get*\"] on {\"Fn::Sub\":\"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:xero-sync/${Stage}/*\"}, which is neither the token secrets' prefix nor a named secret",
        "InvoiceWebhookFunction: its environment lacks PLATFORM_SIGNING_SECRETS_ID",
        "Globals: XERO_CLIENT_SECRET is set directly; it must come from Secrets Manager",
    ] {
        assert!(found.iter().any(|f| f == expected), "missed {expected:?} in:\n{}", found.join("\n"));
    }
    assert_eq!(found.len(), 5, "{}", found.join("\n"));
}
