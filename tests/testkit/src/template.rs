//! Creates the stack's stateful resources on moto from `infra/template.yaml`.
//!
//! Only what moto can hold locally is created (the table, queues, bus, SES identity and the
//! bucket with its notifications to a queue);
//! functions, the HTTP API and alarms are for AWS. Intrinsics are resolved the way
//! CloudFormation does for the parts this template uses: `Ref`, `Fn::GetAtt`, `Fn::Sub`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Map, Value, json};

use crate::moto::{ACCOUNT, REGION};

const PROVISIONED_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::SES::EmailIdentity",
    "AWS::S3::Bucket",
];

pub struct Template {
    path: PathBuf,
    doc: Value,
}

/// What was created, by logical id, as `Ref` and `Fn::GetAtt` would give it.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    refs: HashMap<String, String>,
    attrs: HashMap<String, String>,
    parameters: HashMap<String, String>,
    /// The functions' environment from the template's `Globals`, resolved.
    pub function_env: HashMap<String, String>,
}

impl Stack {
    /// `!Ref logical_id`.
    pub fn reference(&self, logical_id: &str) -> &str {
        self.refs.get(logical_id).unwrap_or_else(|| panic!("no resource {logical_id} in stack {}", self.name))
    }

    /// `!GetAtt logical_id.attribute`.
    pub fn attribute(&self, logical_id: &str, attribute: &str) -> &str {
        let key = format!("{logical_id}.{attribute}");
        self.attrs.get(&key).unwrap_or_else(|| panic!("no attribute {key} in stack {}", self.name))
    }

    pub fn parameter(&self, name: &str) -> &str {
        self.parameters.get(name).unwrap_or_else(|| panic!("no parameter {name} in stack {}", self.name))
    }
}

/// YAML's short-form tags (`!Ref x`) become the long form (`{"Ref": x}`).
fn yaml_to_json(value: serde_yaml_ng::Value) -> anyhow::Result<Value> {
    use serde_yaml_ng::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_yaml_ng::to_string(&other)?.trim().to_owned(),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = if name == "Ref" { "Ref".to_owned() } else { format!("Fn::{name}") };
            let mut inner = yaml_to_json(tagged.value)?;
            if name == "GetAtt" {
                if let Value::String(s) = &inner {
                    let (res, attr) = s.split_once('.').ok_or_else(|| anyhow!("!GetAtt {s} has no attribute"))?;
                    inner = json!([res, attr]);
                }
            }
            json!({ key: inner })
        }
    })
}

/// A value that names a resource not created yet.
#[derive(Debug)]
struct Pending(String);

struct Resolver<'a> {
    stack: &'a str,
    parameters: &'a HashMap<String, String>,
    refs: &'a HashMap<String, String>,
    attrs: &'a HashMap<String, String>,
}

impl Resolver<'_> {
    fn name(&self, name: &str) -> Result<Option<String>, Pending> {
        let pseudo = match name {
            "AWS::StackName" => Some(self.stack.to_owned()),
            "AWS::Region" => Some(REGION.to_owned()),
            "AWS::AccountId" => Some(ACCOUNT.to_owned()),
            "AWS::Partition" => Some("aws".to_owned()),
            "AWS::URLSuffix" => Some("amazonaws.com".to_owned()),
            _ => None,
        };
        if pseudo.is_some() {
            return Ok(pseudo);
        }
        if let Some(v) = self.parameters.get(name).or_else(|| self.refs.get(name)).or_else(|| self.attrs.get(name)) {
            return Ok(Some(v.clone()));
        }
        Err(Pending(name.to_owned()))
    }

    fn resolve(&self, value: &Value) -> Result<Value, Pending> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (k, v) = map.iter().next().expect("one entry");
                match (k.as_str(), v) {
                    ("Ref", Value::String(name)) => Ok(Value::String(self.name(name)?.unwrap_or_default())),
                    ("Fn::GetAtt", Value::Array(parts)) => {
                        let path = parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(".");
                        Ok(Value::String(self.name(&path)?.unwrap_or_default()))
                    }
                    ("Fn::Sub", Value::String(template)) => self.sub(template, &Map::new()).map(Value::String),
                    ("Fn::Sub", Value::Array(parts)) if parts.len() == 2 => {
                        let template = parts[0].as_str().unwrap_or_default();
                        let vars = match self.resolve(&parts[1])? {
                            Value::Object(vars) => vars,
                            _ => Map::new(),
                        };
                        self.sub(template, &vars).map(Value::String)
                    }
                    _ => {
                        Ok(Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), self.resolve(v)?))).collect::<Result<
                            _,
                            Pending,
                        >>(
                        )?))
                    }
                }
            }
            Value::Object(map) => {
                Ok(Value::Object(map.iter().map(|(k, v)| Ok((k.clone(), self.resolve(v)?))).collect::<Result<_, _>>()?))
            }
            Value::Array(items) => Ok(Value::Array(items.iter().map(|v| self.resolve(v)).collect::<Result<_, _>>()?)),
            other => Ok(other.clone()),
        }
    }

    fn sub(&self, template: &str, vars: &Map<String, Value>) -> Result<String, Pending> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| Pending(format!("unclosed ${{ in {template}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str(&format!("${{{literal}}}"));
            } else if let Some(v) = vars.get(name) {
                out.push_str(v.as_str().unwrap_or_default());
            } else {
                out.push_str(&self.name(name)?.unwrap_or_default());
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn str_prop<'a>(props: &'a Value, name: &str) -> Option<&'a str> {
    props.get(name).and_then(Value::as_str)
}

fn number_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Template {
    /// `infra/template.yaml` of this repository.
    pub fn from_repo() -> anyhow::Result<Self> {
        Self::load(crate::workspace_root().join("infra/template.yaml"))
    }

    pub fn load(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Self { path, doc: yaml_to_json(yaml)? })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole template as JSON, long-form intrinsics.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc.get("Resources").and_then(Value::as_object).into_iter().flatten().map(|(k, v)| (k.as_str(), v))
    }

    /// The IAM actions (`dynamodb:GetItem` ...) a function's role allows, on whatever resource:
    /// what a proxy in front of moto (which enforces no IAM) lets that function call.
    pub fn function_actions(&self, function: &str) -> anyhow::Result<Vec<String>> {
        let role = self
            .doc
            .pointer(&format!("/Resources/{function}/Properties/Role/Fn::GetAtt/0"))
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{function} has no Role: !GetAtt <role>.Arn"))?;
        let policies = self.doc.pointer(&format!("/Resources/{role}/Properties/Policies")).and_then(Value::as_array);
        let mut actions: Vec<String> = policies
            .into_iter()
            .flatten()
            .filter_map(|p| p.pointer("/PolicyDocument/Statement").and_then(Value::as_array))
            .flatten()
            .filter(|st| st.get("Effect").and_then(Value::as_str) == Some("Allow"))
            .flat_map(|st| match st.get("Action") {
                Some(Value::String(a)) => vec![a.clone()],
                Some(Value::Array(list)) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
                _ => Vec::new(),
            })
            .collect();
        actions.sort();
        actions.dedup();
        Ok(actions)
    }

    fn parameters(&self, overrides: &[(&str, &str)]) -> anyhow::Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for (name, spec) in self.doc.get("Parameters").and_then(Value::as_object).into_iter().flatten() {
            if let Some(default) = spec.get("Default").and_then(number_text) {
                out.insert(name.clone(), default);
            }
        }
        for (k, v) in overrides {
            if !out.contains_key(*k) && self.doc.pointer(&format!("/Parameters/{k}")).is_none() {
                bail!("{} has no parameter {k}", self.path.display());
            }
            out.insert((*k).to_owned(), (*v).to_owned());
        }
        Ok(out)
    }

    /// Creates every resource moto can hold, in dependency order, named as CloudFormation
    /// would name them without explicit names: `{stack}-{logical id}`.
    pub async fn provision(
        &self,
        sdk: &SdkConfig,
        stack_name: &str,
        parameter_overrides: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        let parameters = self.parameters(parameter_overrides)?;
        let mut refs = HashMap::new();
        let mut attrs = HashMap::new();
        let mut pending: Vec<(&str, &Value)> =
            self.resources().filter(|(_, r)| PROVISIONED_TYPES.contains(&r["Type"].as_str().unwrap_or(""))).collect();
        let clients = Clients::new(sdk);
        while !pending.is_empty() {
            let mut waiting = Vec::new();
            let before = pending.len();
            for (id, resource) in pending {
                let resolver = Resolver { stack: stack_name, parameters: &parameters, refs: &refs, attrs: &attrs };
                let props = match resolver.resolve(resource.get("Properties").unwrap_or(&Value::Null)) {
                    Ok(props) => props,
                    Err(Pending(_)) => {
                        waiting.push((id, resource));
                        continue;
                    }
                };
                let kind = resource["Type"].as_str().unwrap_or_default();
                let created = clients
                    .create(kind, id, stack_name, &props)
                    .await
                    .with_context(|| format!("creating {id} ({kind}) from {}", self.path.display()))?;
                refs.insert(id.to_owned(), created.reference);
                for (attr, value) in created.attributes {
                    attrs.insert(format!("{id}.{attr}"), value);
                }
            }
            if waiting.len() == before {
                let names: Vec<_> = waiting.iter().map(|(id, _)| *id).collect();
                bail!("cannot resolve references of {names:?} (a cycle, or a resource moto cannot hold)");
            }
            pending = waiting;
        }
        let resolver = Resolver { stack: stack_name, parameters: &parameters, refs: &refs, attrs: &attrs };
        let mut function_env = HashMap::new();
        if let Some(vars) = self.doc.pointer("/Globals/Function/Environment/Variables") {
            let resolved = resolver.resolve(vars).map_err(|Pending(name)| anyhow!("Globals refer to {name}"))?;
            for (k, v) in resolved.as_object().into_iter().flatten() {
                function_env.insert(k.clone(), number_text(v).unwrap_or_default());
            }
        }
        Ok(Stack { name: stack_name.to_owned(), refs, attrs, parameters, function_env })
    }
}

struct Created {
    reference: String,
    attributes: Vec<(&'static str, String)>,
}

struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    ses: aws_sdk_sesv2::Client,
    s3: aws_sdk_s3::Client,
}

impl Clients {
    fn new(sdk: &SdkConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            sqs: aws_sdk_sqs::Client::new(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
            ses: aws_sdk_sesv2::Client::new(sdk),
            // moto has no host name per bucket.
            s3: aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build()),
        }
    }

    async fn create(&self, kind: &str, id: &str, stack: &str, props: &Value) -> anyhow::Result<Created> {
        match kind {
            "AWS::DynamoDB::Table" => self.table(id, stack, props).await,
            "AWS::SQS::Queue" => self.queue(id, stack, props).await,
            "AWS::Events::EventBus" => {
                let name = str_prop(props, "Name").map(str::to_owned).unwrap_or_else(|| format!("{stack}-{id}"));
                let out = self.events.create_event_bus().name(&name).send().await?;
                let arn = out.event_bus_arn.unwrap_or_default();
                Ok(Created { reference: name.clone(), attributes: vec![("Arn", arn), ("Name", name)] })
            }
            "AWS::Events::Rule" => self.rule(id, stack, props).await,
            "AWS::S3::Bucket" => self.bucket(id, stack, props).await,
            "AWS::SQS::QueuePolicy" => {
                let policy = props.get("PolicyDocument").map(Value::to_string).unwrap_or_default();
                for queue in props["Queues"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    self.sqs
                        .set_queue_attributes()
                        .queue_url(queue)
                        .attributes(QueueAttributeName::Policy, &policy)
                        .send()
                        .await?;
                }
                Ok(Created { reference: format!("{stack}-{id}"), attributes: vec![] })
            }
            "AWS::SES::EmailIdentity" => {
                let identity = str_prop(props, "EmailIdentity").ok_or_else(|| anyhow!("no EmailIdentity"))?;
                let result = self.ses.create_email_identity().email_identity(identity).send().await;
                if let Err(e) = result {
                    // The identity is per account, so stacks in one moto share it.
                    let exists = e.as_service_error().is_some_and(|s| s.is_already_exists_exception());
                    if !exists {
                        return Err(e.into());
                    }
                }
                Ok(Created { reference: identity.to_owned(), attributes: vec![] })
            }
            other => bail!("{other} is not created locally"),
        }
    }

    async fn table(&self, id: &str, stack: &str, props: &Value) -> anyhow::Result<Created> {
        let name = str_prop(props, "TableName").map(str::to_owned).unwrap_or_else(|| format!("{stack}-{id}"));
        let key_schema = |v: &Value| -> anyhow::Result<Vec<KeySchemaElement>> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    Ok(KeySchemaElement::builder()
                        .attribute_name(str_prop(k, "AttributeName").unwrap_or_default())
                        .key_type(KeyType::from(str_prop(k, "KeyType").unwrap_or_default()))
                        .build()?)
                })
                .collect()
        };
        let mut req = self
            .dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::from(str_prop(props, "BillingMode").unwrap_or("PAY_PER_REQUEST")))
            .set_key_schema(Some(key_schema(&props["KeySchema"])?));
        for def in props["AttributeDefinitions"].as_array().into_iter().flatten() {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(str_prop(def, "AttributeName").unwrap_or_default())
                    .attribute_type(ScalarAttributeType::from(str_prop(def, "AttributeType").unwrap_or_default()))
                    .build()?,
            );
        }
        for index in props["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
            let projection = &index["Projection"];
            let mut p = Projection::builder()
                .projection_type(ProjectionType::from(str_prop(projection, "ProjectionType").unwrap_or("ALL")));
            for attr in projection["NonKeyAttributes"].as_array().into_iter().flatten() {
                p = p.non_key_attributes(attr.as_str().unwrap_or_default());
            }
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(str_prop(index, "IndexName").unwrap_or_default())
                    .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                    .projection(p.build())
                    .build()?,
            );
        }
        let out = req.send().await?;
        if let Some(ttl) = props.get("TimeToLiveSpecification") {
            self.dynamodb
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(str_prop(ttl, "AttributeName").unwrap_or_default())
                        .enabled(ttl["Enabled"].as_bool().unwrap_or(false))
                        .build()?,
                )
                .send()
                .await?;
        }
        let arn = out.table_description.and_then(|d| d.table_arn).unwrap_or_default();
        Ok(Created { reference: name, attributes: vec![("Arn", arn)] })
    }

    /// A rule on a bus and its targets (moto delivers to SQS targets as EventBridge does).
    async fn rule(&self, id: &str, stack: &str, props: &Value) -> anyhow::Result<Created> {
        let name = str_prop(props, "Name").map(str::to_owned).unwrap_or_else(|| format!("{stack}-{id}"));
        let bus = str_prop(props, "EventBusName").unwrap_or("default");
        let pattern = props.get("EventPattern").ok_or_else(|| anyhow!("rule {id} has no EventPattern"))?;
        let out = self
            .events
            .put_rule()
            .name(&name)
            .event_bus_name(bus)
            .event_pattern(pattern.to_string())
            .state(aws_sdk_eventbridge::types::RuleState::from(str_prop(props, "State").unwrap_or("ENABLED")))
            .send()
            .await?;
        for target in props["Targets"].as_array().into_iter().flatten() {
            let target = aws_sdk_eventbridge::types::Target::builder()
                .id(str_prop(target, "Id").unwrap_or_default())
                .arn(str_prop(target, "Arn").unwrap_or_default())
                .build()?;
            self.events.put_targets().rule(&name).event_bus_name(bus).targets(target).send().await?;
        }
        Ok(Created { reference: name, attributes: vec![("Arn", out.rule_arn.unwrap_or_default())] })
    }

    /// A bucket and its notifications to queues (moto sends them as S3 does). Named as
    /// CloudFormation names a bucket without a name: lower case.
    async fn bucket(&self, id: &str, stack: &str, props: &Value) -> anyhow::Result<Created> {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
            QueueConfiguration, S3KeyFilter,
        };
        let name =
            str_prop(props, "BucketName").map(str::to_owned).unwrap_or_else(|| format!("{stack}-{id}").to_lowercase());
        self.s3.create_bucket().bucket(&name).send().await?;
        let mut notifications = NotificationConfiguration::builder();
        for q in props
            .pointer("/NotificationConfiguration/QueueConfigurations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut rules = S3KeyFilter::builder();
            for rule in q.pointer("/Filter/S3Key/Rules").and_then(Value::as_array).into_iter().flatten() {
                rules = rules.filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::from(str_prop(rule, "Name").unwrap_or_default()))
                        .value(str_prop(rule, "Value").unwrap_or_default())
                        .build(),
                );
            }
            notifications = notifications.queue_configurations(
                QueueConfiguration::builder()
                    .queue_arn(
                        str_prop(q, "Queue").ok_or_else(|| anyhow!("a queue notification of {id} names no queue"))?,
                    )
                    .events(Event::from(str_prop(q, "Event").unwrap_or_default()))
                    .filter(NotificationConfigurationFilter::builder().key(rules.build()).build())
                    .build()?,
            );
        }
        self.s3
            .put_bucket_notification_configuration()
            .bucket(&name)
            .notification_configuration(notifications.build())
            .send()
            .await?;
        let arn = format!("arn:aws:s3:::{name}");
        Ok(Created { reference: name.clone(), attributes: vec![("Arn", arn), ("BucketName", name)] })
    }

    async fn queue(&self, id: &str, stack: &str, props: &Value) -> anyhow::Result<Created> {
        let fifo = props.get("FifoQueue").and_then(Value::as_bool).unwrap_or(false);
        let name = str_prop(props, "QueueName")
            .map(str::to_owned)
            .unwrap_or_else(|| if fifo { format!("{stack}-{id}.fifo") } else { format!("{stack}-{id}") });
        let mut req = self.sqs.create_queue().queue_name(&name);
        for (prop, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
            ("ReceiveMessageWaitTimeSeconds", QueueAttributeName::ReceiveMessageWaitTimeSeconds),
            ("FifoQueue", QueueAttributeName::FifoQueue),
            ("ContentBasedDeduplication", QueueAttributeName::ContentBasedDeduplication),
            ("SqsManagedSseEnabled", QueueAttributeName::SqsManagedSseEnabled),
        ] {
            if let Some(v) = props.get(prop).and_then(number_text) {
                req = req.attributes(attr, v);
            }
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            let text = if let Value::String(s) = redrive { s.clone() } else { redrive.to_string() };
            req = req.attributes(QueueAttributeName::RedrivePolicy, text);
        }
        let url = req.send().await?.queue_url.ok_or_else(|| anyhow!("CreateQueue returned no URL"))?;
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
        Ok(Created { reference: url, attributes: vec![("Arn", arn), ("QueueName", name)] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_form_tags_become_long_form_intrinsics() {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str("a: !Ref Table\nb: !GetAtt Queue.Arn\nc: !Sub '${AWS::StackName}-x'").unwrap();
        let json = yaml_to_json(yaml).unwrap();
        assert_eq!(json["a"], json!({"Ref": "Table"}));
        assert_eq!(json["b"], json!({"Fn::GetAtt": ["Queue", "Arn"]}));
        assert_eq!(json["c"], json!({"Fn::Sub": "${AWS::StackName}-x"}));
    }

    #[test]
    fn sub_resolves_parameters_pseudo_parameters_and_literals() {
        let parameters = HashMap::from([("Stage".to_owned(), "dev".to_owned())]);
        let refs = HashMap::new();
        let attrs = HashMap::from([("Queue.Arn".to_owned(), "arn:q".to_owned())]);
        let r = Resolver { stack: "s", parameters: &parameters, refs: &refs, attrs: &attrs };
        assert_eq!(
            r.sub("${AWS::StackName}/${Stage}/${Queue.Arn}/${!Literal}", &Map::new()).unwrap(),
            "s/dev/arn:q/${Literal}"
        );
        assert!(r.sub("${Missing}", &Map::new()).is_err());
    }
}
