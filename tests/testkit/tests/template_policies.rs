//! Least privilege, checked: every IAM statement in infra/template.yaml names its actions and
//! resources. A wildcard action (`*`, `service:*`) or resource (`*`) fails unless it is on the
//! exception list below, with the reason AWS leaves no narrower choice.

use serde_json::Value;
use xero_sync_testkit::Template;

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
    assert_eq!(functions.len(), 7);
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
