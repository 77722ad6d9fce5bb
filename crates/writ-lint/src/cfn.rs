//! CloudFormation and SAM templates (YAML or JSON, already read into [`Node`]s) into a
//! [`Model`].
//!
//! Intrinsic functions are resolved where the value is knowable offline: `Ref` to a
//! parameter with a `Default`, `Fn::Sub` without variables, `Fn::Join` of literals.
//! Everything else becomes an unresolved value that remembers what it refers to, so
//! `!Ref Role` and `!GetAtt Role.Arn` name the same role.

use std::collections::{HashMap, HashSet};

use writ_policy::PolicyKind;

use crate::model::{
    Attached, Cors, EgressRule, Function, FunctionUrl, InvokeConfig, Model, Permission, PolicyDoc,
    SecurityGroup, is_anywhere,
};
use crate::node::{Kind, Node, Pos};
use crate::{json, sam};

/// True when a document is a CloudFormation or SAM template.
pub(crate) fn is_template(doc: &Node) -> bool {
    if doc.get("AWSTemplateFormatVersion").is_some() {
        return true;
    }
    doc.get("Resources").is_some_and(|r| {
        r.entries().iter().any(|(_, v)| {
            v.get("Type")
                .and_then(Node::as_str)
                .is_some_and(|t| t.starts_with("AWS::"))
        })
    })
}

/// Reads a template's resources into `model`.
pub(crate) fn read(doc: &Node, model: &mut Model) {
    let mut params: HashMap<&str, &Node> = HashMap::new();
    if let Some(p) = doc.get("Parameters") {
        for (k, v) in p.entries() {
            if let Some(d) = v.get("Default") {
                params.insert(k.name.as_str(), d);
            }
        }
    }
    let r = Resolver { params };
    let origins = SecretOrigins::read(doc);
    let raw_globals = doc.at(&["Globals", "Function"]);
    let globals = doc.at(&["Globals", "Function"]).map(|g| r.resolve(g, 0));
    let Some(resources) = doc.get("Resources") else {
        return;
    };
    let ids: HashSet<String> = resources
        .entries()
        .iter()
        .map(|(k, _)| k.name.clone())
        .collect();
    for (key, res) in resources.entries() {
        let Some(ty) = res.get("Type").and_then(Node::as_str) else {
            continue;
        };
        let id = key.name.as_str();
        let props = res
            .get("Properties")
            .map(|p| r.resolve(p, 0))
            .unwrap_or_else(|| Node::new(key.pos, Kind::Map(Vec::new())));
        let pos = key.pos;
        match ty {
            "AWS::Lambda::Function" => {
                let mut f = lambda_function(id, pos, &props);
                f.secret_sources = origins.env(res.get("Properties"), None);
                model.functions.push(f);
            }
            "AWS::Serverless::Function" => {
                let props = merge(&props, globals.as_ref());
                serverless_function(id, pos, &props, &ids, model);
                if let Some(f) = model.functions.last_mut() {
                    f.secret_sources = origins.env(res.get("Properties"), raw_globals);
                }
            }
            "AWS::Serverless::StateMachine" => serverless_policies(id, &props, &ids, model),
            "AWS::Lambda::Url" => {
                model.urls.push(FunctionUrl {
                    address: id.to_string(),
                    auth: props.get("AuthType").cloned(),
                });
                if let Some(c) = props.get("Cors") {
                    model.cors.push(cors(id, c, "AllowOrigins"));
                }
            }
            "AWS::Lambda::Permission" => model.permissions.push(Permission {
                address: id.to_string(),
                principal: props.get("Principal").cloned(),
                source_arn: props.get("SourceArn").is_some(),
                source_account: props.get("SourceAccount").is_some(),
            }),
            "AWS::Lambda::EventInvokeConfig" => model.invoke_configs.push(InvokeConfig {
                function: props.get("FunctionName").and_then(Node::identity),
                on_failure: props
                    .at(&["DestinationConfig", "OnFailure", "Destination"])
                    .is_some(),
            }),
            "AWS::EC2::SecurityGroup" => {
                let (open, default_open) = match props.get("SecurityGroupEgress") {
                    None => (Vec::new(), true),
                    Some(rules) => (
                        rules
                            .items()
                            .into_iter()
                            .filter(|r| open_egress(r))
                            .map(|r| r.pos)
                            .collect(),
                        false,
                    ),
                };
                model.security_groups.push(SecurityGroup {
                    address: id.to_string(),
                    target: id.to_string(),
                    pos,
                    open_egress: open,
                    default_open,
                });
            }
            "AWS::EC2::SecurityGroupEgress" => model.egress_rules.push(EgressRule {
                address: id.to_string(),
                pos,
                group: props.get("GroupId").and_then(Node::identity),
                open: open_egress(&props),
            }),
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                push_policy(
                    model,
                    format!("{id}.PolicyDocument"),
                    props.get("PolicyDocument"),
                    Some(PolicyKind::Identity),
                );
            }
            "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => {
                push_policy(
                    model,
                    format!("{id}.AssumeRolePolicyDocument"),
                    props.get("AssumeRolePolicyDocument"),
                    Some(PolicyKind::Resource),
                );
                if let Some(ps) = props.get("Policies") {
                    for (i, p) in ps.items().into_iter().enumerate() {
                        let name = p
                            .get("PolicyName")
                            .and_then(Node::as_str)
                            .map_or_else(|| i.to_string(), str::to_string);
                        push_policy(
                            model,
                            format!("{id}.Policies.{name}"),
                            p.get("PolicyDocument"),
                            Some(PolicyKind::Identity),
                        );
                    }
                }
            }
            "AWS::S3::BucketPolicy" | "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" => {
                let n = model.policies.len();
                push_policy(
                    model,
                    format!("{id}.PolicyDocument"),
                    props.get("PolicyDocument"),
                    Some(PolicyKind::Resource),
                );
                model.policies[n..]
                    .iter_mut()
                    .for_each(|p| p.attached = Attached::Notification);
            }
            "AWS::KMS::Key" => {
                let n = model.policies.len();
                push_policy(
                    model,
                    format!("{id}.KeyPolicy"),
                    props.get("KeyPolicy"),
                    Some(PolicyKind::Resource),
                );
                model.policies[n..]
                    .iter_mut()
                    .for_each(|p| p.attached = Attached::KmsKey);
            }
            "AWS::SecretsManager::ResourcePolicy" => {
                push_policy(
                    model,
                    format!("{id}.ResourcePolicy"),
                    props.get("ResourcePolicy"),
                    Some(PolicyKind::Resource),
                );
            }
            "AWS::ApiGatewayV2::Api" | "AWS::Serverless::HttpApi" => {
                if let Some(c) = props.get("CorsConfiguration") {
                    model.cors.push(cors(id, c, "AllowOrigins"));
                }
            }
            "AWS::Serverless::Api" => {
                if let Some(c) = props.get("Cors") {
                    model.cors.push(cors(id, c, "AllowOrigin"));
                }
            }
            _ => {}
        }
    }
}

struct Resolver<'a> {
    params: HashMap<&'a str, &'a Node>,
}

/// Deeper intrinsic nesting than this is left unresolved.
const MAX_DEPTH: usize = 64;

impl Resolver<'_> {
    fn resolve(&self, n: &Node, depth: usize) -> Node {
        if depth > MAX_DEPTH {
            return Node::unresolved(n.pos, "nested too deep", None);
        }
        match &n.kind {
            Kind::Seq(items) => Node::new(
                n.pos,
                Kind::Seq(items.iter().map(|i| self.resolve(i, depth + 1)).collect()),
            ),
            Kind::Map(entries) => {
                if entries.len() == 1 {
                    let (k, v) = &entries[0];
                    if k.name == "Ref" || k.name.starts_with("Fn::") {
                        return self.intrinsic(n.pos, &k.name, v, depth);
                    }
                }
                Node::new(
                    n.pos,
                    Kind::Map(
                        entries
                            .iter()
                            .map(|(k, v)| (k.clone(), self.resolve(v, depth + 1)))
                            .collect(),
                    ),
                )
            }
            _ => n.clone(),
        }
    }

    fn intrinsic(&self, pos: Pos, name: &str, arg: &Node, depth: usize) -> Node {
        match name {
            "Ref" => {
                let target = arg.as_str().unwrap_or("");
                if let Some(default) = self.params.get(target) {
                    let mut d = self.resolve(default, depth + 1);
                    d.pos = pos;
                    return d;
                }
                Node::unresolved(pos, format!("Ref {target}"), Some(target.to_string()))
            }
            "Fn::GetAtt" => {
                let text = match &arg.kind {
                    Kind::Str(s) => s.clone(),
                    Kind::Seq(items) => items
                        .iter()
                        .filter_map(Node::scalar)
                        .collect::<Vec<_>>()
                        .join("."),
                    _ => String::new(),
                };
                let target = text.split('.').next().unwrap_or("").to_string();
                Node::unresolved(pos, format!("GetAtt {text}"), Some(target))
            }
            "Fn::Sub" => match &arg.kind {
                Kind::Str(s) if !s.contains("${") => Node::str(pos, s.clone()),
                Kind::Str(s) => Node::unresolved(pos, s.clone(), Some(s.clone())),
                _ => Node::unresolved(pos, format!("Fn::Sub {}", arg.to_json()), None),
            },
            "Fn::Join" => {
                let items = arg.items();
                if let [sep, parts] = items.as_slice()
                    && let Some(sep) = sep.scalar()
                {
                    let parts = self.resolve(parts, depth + 1);
                    let strs: Option<Vec<String>> =
                        parts.items().into_iter().map(Node::scalar).collect();
                    if let Some(strs) = strs {
                        return Node::str(pos, strs.join(&sep));
                    }
                }
                Node::unresolved(pos, format!("Fn::Join {}", arg.to_json()), None)
            }
            // The whole expression, so two functions compare equal only when they say
            // the same thing.
            other => Node::unresolved(pos, format!("{other} {}", arg.to_json()), None),
        }
    }
}

/// `props` with `globals` filled in where `props` does not set a key (SAM `Globals`).
fn merge(props: &Node, globals: Option<&Node>) -> Node {
    let Some(g) = globals else {
        return props.clone();
    };
    let mut entries = props.entries().to_vec();
    for (k, v) in g.entries() {
        if props.get(&k.name).is_none() {
            entries.push((k.clone(), v.clone()));
        }
    }
    Node::new(props.pos, Kind::Map(entries))
}

fn common_function(id: &str, pos: Pos, props: &Node) -> Function {
    Function {
        address: id.to_string(),
        pos,
        role: props.get("Role").cloned(),
        runtime: props.get("Runtime").cloned(),
        env: props
            .at(&["Environment", "Variables"])
            .map(|v| v.entries().to_vec())
            .unwrap_or_default(),
        kms_key: props.get("KmsKeyArn").is_some(),
        tracing: None,
        dlq: false,
        reserved_concurrency: props.get("ReservedConcurrentExecutions").is_some(),
        code_signing: props.get("CodeSigningConfigArn").is_some(),
        layers: props
            .get("Layers")
            .map(|l| l.items().into_iter().cloned().collect())
            .unwrap_or_default(),
        security_groups: props
            .at(&["VpcConfig", "SecurityGroupIds"])
            .map(|l| l.items().into_iter().cloned().collect())
            .unwrap_or_default(),
        secret_sources: Vec::new(),
        code: props.get("CodeUri").or_else(|| props.get("Code")).cloned(),
    }
}

/// What may carry a secret into an environment variable: NoEcho parameters with a
/// literal default, and Cognito user pool clients (their `ClientSecret`).
struct SecretOrigins<'a> {
    no_echo: HashSet<&'a str>,
    cognito_clients: HashSet<&'a str>,
}

impl SecretOrigins<'_> {
    fn read<'a>(doc: &'a Node) -> SecretOrigins<'a> {
        let no_echo = doc
            .get("Parameters")
            .map(|p| {
                p.entries()
                    .iter()
                    .filter(|(_, v)| {
                        v.get("NoEcho").is_some_and(Node::is_true)
                            && v.get("Default")
                                .and_then(Node::scalar)
                                .is_some_and(|d| !d.trim().is_empty())
                    })
                    .map(|(k, _)| k.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let cognito_clients = doc
            .get("Resources")
            .map(|r| {
                r.entries()
                    .iter()
                    .filter(|(_, v)| {
                        v.get("Type").and_then(Node::as_str) == Some("AWS::Cognito::UserPoolClient")
                    })
                    .map(|(k, _)| k.name.as_str())
                    .collect()
            })
            .unwrap_or_default();
        SecretOrigins {
            no_echo,
            cognito_clients,
        }
    }

    /// Where the secret in a (raw, unresolved) environment variable value comes from.
    fn source(&self, v: &Node, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return None;
        }
        let [(k, arg)] = v.entries() else {
            return None;
        };
        match k.name.as_str() {
            "Ref" => arg.as_str().and_then(|p| self.name(p)),
            "Fn::GetAtt" => {
                let text = match &arg.kind {
                    Kind::Seq(items) => items
                        .iter()
                        .filter_map(Node::scalar)
                        .collect::<Vec<_>>()
                        .join("."),
                    _ => arg.scalar()?,
                };
                self.name(&text)
            }
            "Fn::Sub" => {
                let (s, vars) = match &arg.kind {
                    Kind::Seq(items) => (items.first()?.as_str()?, items.get(1)),
                    _ => (arg.as_str()?, None),
                };
                if let Some(found) = vars.and_then(|m| {
                    m.entries()
                        .iter()
                        .find_map(|(_, v)| self.source(v, depth + 1))
                }) {
                    return Some(found);
                }
                s.split("${")
                    .skip(1)
                    .filter_map(|rest| rest.split('}').next())
                    .find_map(|name| self.name(name))
            }
            "Fn::Join" | "Fn::Select" | "Fn::If" | "Fn::Base64" => arg
                .items()
                .into_iter()
                .flat_map(Node::items)
                .find_map(|part| self.source(part, depth + 1)),
            _ => None,
        }
    }

    /// `P` for a NoEcho parameter, `Client.ClientSecret` for a Cognito client.
    fn name(&self, name: &str) -> Option<String> {
        if self.no_echo.contains(name) {
            return Some(format!(
                "the NoEcho parameter {name}, whose default (the secret) is written in the template"
            ));
        }
        let (client, attr) = name.split_once('.')?;
        (attr == "ClientSecret" && self.cognito_clients.contains(client))
            .then(|| format!("the client secret of Cognito user pool client {client}"))
    }

    /// The environment variables of a function's raw properties that receive a secret.
    fn env(&self, raw: Option<&Node>, globals: Option<&Node>) -> Vec<(String, String)> {
        let vars = raw
            .and_then(|p| p.at(&["Environment", "Variables"]))
            .or_else(|| globals.and_then(|g| g.at(&["Environment", "Variables"])));
        vars.map(|v| {
            v.entries()
                .iter()
                .filter_map(|(k, v)| Some((k.name.clone(), self.source(v, 0)?)))
                .collect()
        })
        .unwrap_or_default()
    }
}

fn lambda_function(id: &str, pos: Pos, props: &Node) -> Function {
    let mut f = common_function(id, pos, props);
    f.tracing = props.at(&["TracingConfig", "Mode"]).cloned();
    f.dlq = props.at(&["DeadLetterConfig", "TargetArn"]).is_some();
    f
}

fn serverless_function(id: &str, pos: Pos, props: &Node, ids: &HashSet<String>, model: &mut Model) {
    let mut f = common_function(id, pos, props);
    f.tracing = props.get("Tracing").cloned();
    f.dlq = props.get("DeadLetterQueue").is_some()
        || props
            .at(&["EventInvokeConfig", "DestinationConfig", "OnFailure"])
            .is_some();
    serverless_policies(id, props, ids, model);
    if let Some(url) = props.get("FunctionUrlConfig") {
        let address = format!("{id}.FunctionUrlConfig");
        model.urls.push(FunctionUrl {
            address: address.clone(),
            auth: url.get("AuthType").cloned(),
        });
        if let Some(c) = url.get("Cors") {
            model.cors.push(cors(&address, c, "AllowOrigins"));
        }
    }
    model.functions.push(f);
}

/// The `Policies` of a SAM function or state machine: policy documents and SAM policy
/// templates (expanded as SAM does); managed policy names are not read.
fn serverless_policies(id: &str, props: &Node, ids: &HashSet<String>, model: &mut Model) {
    let Some(policies) = props.get("Policies") else {
        return;
    };
    let docs: Vec<&Node> = match &policies.kind {
        Kind::Map(_) => vec![policies],
        _ => policies.items(),
    };
    for (i, p) in docs.into_iter().enumerate() {
        if p.get("Statement").is_some() {
            push_policy(
                model,
                format!("{id}.Policies[{i}]"),
                Some(p),
                Some(PolicyKind::Identity),
            );
        } else if let Some((name, doc)) = sam::expand(p, ids) {
            push_policy(
                model,
                format!("{id}.Policies[{i}].{name}"),
                Some(&doc),
                Some(PolicyKind::Identity),
            );
        }
    }
}

fn cors(address: &str, c: &Node, origins_key: &str) -> Cors {
    let origins = match &c.kind {
        // SAM `Cors: "'*'"` is the origin alone, without credentials.
        Kind::Str(_) => vec![c.clone()],
        _ => c
            .get(origins_key)
            .map(|o| o.items().into_iter().cloned().collect())
            .unwrap_or_default(),
    };
    Cors {
        address: address.to_string(),
        pos: c.pos,
        origins,
        credentials: c.get("AllowCredentials").cloned(),
    }
}

/// True for an egress rule to anywhere on all ports.
fn open_egress(r: &Node) -> bool {
    let anywhere = ["CidrIp", "CidrIpv6"]
        .iter()
        .any(|k| r.get(k).and_then(Node::as_str).is_some_and(is_anywhere));
    let proto = r
        .get("IpProtocol")
        .and_then(Node::scalar)
        .unwrap_or_default();
    let all_proto = proto == "-1" || proto.eq_ignore_ascii_case("all");
    let from = r.get("FromPort").and_then(Node::scalar);
    let to = r.get("ToPort").and_then(Node::scalar);
    let all_ports = matches!(from.as_deref(), Some("0") | Some("-1"))
        && matches!(to.as_deref(), Some("65535") | Some("-1"));
    anywhere && (all_proto || all_ports)
}

fn push_policy(model: &mut Model, address: String, doc: Option<&Node>, kind: Option<PolicyKind>) {
    let Some(doc) = doc else { return };
    let doc = match &doc.kind {
        Kind::Map(_) => doc.clone(),
        // Some resources accept the policy as a JSON string; positions inside it all map
        // to the string.
        Kind::Str(s) => match json::parse(s) {
            Ok(Some(mut inner)) => {
                reposition(&mut inner, doc.pos);
                inner
            }
            _ => return,
        },
        _ => return,
    };
    model.policies.push(PolicyDoc {
        address,
        doc,
        kind,
        text: None,
        attached: Default::default(),
    });
}

/// Moves every position in `n` to `pos`.
pub(crate) fn reposition(n: &mut Node, pos: Pos) {
    n.pos = pos;
    match &mut n.kind {
        Kind::Seq(items) => items.iter_mut().for_each(|i| reposition(i, pos)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            k.pos = pos;
            reposition(v, pos);
        }),
        _ => {}
    }
}
