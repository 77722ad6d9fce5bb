//! Terraform (`.tf`) into a [`Model`].
//!
//! Expressions are evaluated as far as the file allows: literals, `locals`, `variable`
//! defaults, `jsonencode(...)`, string templates whose parts are known, heredocs. A
//! reference to a resource (`aws_iam_role.lambda.arn`) stays unresolved but remembers the
//! resource, so two functions naming the same role are recognised. `data
//! "aws_iam_policy_document"` blocks become IAM policy JSON.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Attribute, Block, Body};
use hcl_edit::template::{Element, Template};
use writ_policy::PolicyKind;

use writ_policy::nesting::first_deeper_than;

use crate::SyntaxError;
use crate::cfn::reposition;
use crate::json;
use crate::model::{
    Attached, Cors, EgressRule, Function, FunctionUrl, InvokeConfig, Model, Permission, PolicyDoc,
    SecurityGroup, UnreadPolicy, is_anywhere,
};
use crate::node::{Key, Kind, LineIndex, Node, Pos};

/// The deepest bracket nesting parsed; the parser recurses, so deeper input is refused
/// before it can exhaust the stack.
const MAX_NESTING: usize = 256;

/// The deepest chain of `local` / `var` references followed.
const MAX_DEPTH: usize = 32;

/// Resource types whose `policy` attribute is a resource policy for certain; a `policy`
/// of another type that cannot be read may be some other JSON (a lifecycle policy), so
/// only these and [`IDENTITY_POLICY_TYPES`] report an unreadable `policy`.
const RESOURCE_POLICY_TYPES: &[&str] = &[
    "aws_s3_bucket_policy",
    "aws_sqs_queue_policy",
    "aws_sns_topic_policy",
    "aws_secretsmanager_secret_policy",
    "aws_kms_key",
    "aws_ecr_repository_policy",
];

/// Marks the start of an unknown `${...}` in a heredoc policy's text (a private-use
/// character, which no policy contains); the index of the unknown follows, then
/// [`UNKNOWN_PAD`]s up to the length of the `${...}` it stands for.
const UNKNOWN_MARK: char = '\u{e000}';
/// Ends (and pads) an unknown's marker.
const UNKNOWN_PAD: char = '\u{e001}';

/// An interpolation of a heredoc policy that could not be evaluated.
struct Unknown {
    /// The `${...}` as written.
    text: String,
    /// The resource or data source it refers to: one particular ARN, not "anything".
    target: Option<String>,
}

/// Resource types whose `policy` attribute is an identity policy; every other `policy`
/// is a resource policy.
const IDENTITY_POLICY_TYPES: &[&str] = &[
    "aws_iam_policy",
    "aws_iam_role_policy",
    "aws_iam_user_policy",
    "aws_iam_group_policy",
];

/// Reads a Terraform file.
pub(crate) fn read(text: &str) -> Result<Model, SyntaxError> {
    if let Some(offset) = first_deeper_than(text, MAX_NESTING, b"([{", b")]}") {
        return Err(SyntaxError {
            pos: LineIndex::new(text).pos(offset),
            message: format!("HCL nested deeper than {MAX_NESTING} levels"),
        });
    }
    let body = hcl_edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        SyntaxError {
            pos: Pos::new(
                u32::try_from(loc.line()).unwrap_or(u32::MAX),
                u32::try_from(loc.column()).unwrap_or(u32::MAX),
            ),
            message: format!("invalid HCL: {}", e.message()),
        }
    })?;
    let mut ctx = Ctx {
        text,
        lines: LineIndex::new(text),
        locals: HashMap::new(),
        vars: HashMap::new(),
        sensitive: HashSet::new(),
    };
    for block in body.blocks() {
        match block.ident.as_str() {
            "locals" => {
                for a in block.body.attributes() {
                    ctx.locals.insert(a.key.as_str().to_string(), &a.value);
                }
            }
            "variable" => {
                if let (Some(name), Some(default)) =
                    (block.labels.first(), block.body.get_attribute("default"))
                {
                    ctx.vars.insert(name.as_str().to_string(), &default.value);
                    let sensitive = block
                        .body
                        .get_attribute("sensitive")
                        .is_some_and(|a| matches!(&a.value, Expression::Bool(b) if *b.value()));
                    let literal = matches!(&default.value, Expression::String(v) if !v.value().trim().is_empty());
                    if sensitive && literal {
                        ctx.sensitive.insert(name.as_str().to_string());
                    }
                }
            }
            _ => {}
        }
    }
    let mut model = Model::default();
    for block in body.blocks() {
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        match (block.ident.as_str(), labels.as_slice()) {
            ("resource", [ty, name]) => ctx.resource(ty, name, block, &mut model),
            ("data", ["archive_file", name]) => {
                if let Some(dir) = ctx.attr(&block.body, "source_dir", ctx.block_pos(block)) {
                    model
                        .archives
                        .push((format!("data.archive_file.{name}"), dir));
                }
            }
            ("module", [name]) => {
                if let Some(src) = ctx.attr(&block.body, "source_path", ctx.block_pos(block)) {
                    model.code_sources.push((format!("module.{name}"), src));
                }
                if ctx.is_lambda_module(&block.body) {
                    ctx.lambda_module(name, block, &mut model);
                }
            }
            ("data", ["aws_iam_policy_document", name]) => {
                let doc = ctx.policy_document(block);
                model.policies.push(PolicyDoc {
                    address: format!("data.aws_iam_policy_document.{name}"),
                    doc,
                    kind: None,
                    text: None,
                    attached: Default::default(),
                });
            }
            _ => {}
        }
    }
    Ok(model)
}

struct Ctx<'a> {
    text: &'a str,
    lines: LineIndex<'a>,
    locals: HashMap<String, &'a Expression>,
    vars: HashMap<String, &'a Expression>,
    /// Variables marked `sensitive` that have a literal default: a secret in the code.
    sensitive: HashSet<String>,
}

impl Ctx<'_> {
    fn pos(&self, span: Option<Range<usize>>, fallback: Pos) -> Pos {
        span.map_or(fallback, |r| self.lines.pos(r.start))
    }

    fn source(&self, span: Option<Range<usize>>) -> String {
        span.and_then(|r| self.text.get(r))
            .map_or_else(|| "expression".to_string(), |s| s.trim().to_string())
    }

    fn block_pos(&self, block: &Block) -> Pos {
        self.pos(block.span(), Pos::new(1, 1))
    }

    fn attr(&self, body: &Body, name: &str, fallback: Pos) -> Option<Node> {
        body.get_attribute(name)
            .map(|a| self.eval(&a.value, self.pos(a.span(), fallback), 0))
    }

    fn has(&self, body: &Body, name: &str) -> bool {
        body.get_attribute(name)
            .is_some_and(|a| !matches!(a.value, Expression::Null(_)))
    }

    fn list(&self, body: &Body, name: &str, fallback: Pos) -> Vec<Node> {
        self.attr(body, name, fallback)
            .map(|n| n.items().into_iter().cloned().collect())
            .unwrap_or_default()
    }

    fn first_block<'b>(body: &'b Body, ident: &'b str) -> Option<&'b Block> {
        body.get_blocks(ident).next()
    }

    /// The instance part of a resource's address: `""` without `count` / `for_each`,
    /// `[0]` or `["key"]` for the one instance, `[*]` for several or an unknown number
    /// (every finding holds for each of them and is reported once); `None` when there are
    /// none (`count = 0`, an empty `for_each`), so nothing is created.
    fn instances(&self, body: &Body, pos: Pos) -> Option<String> {
        if let Some(count) = self.attr(body, "count", pos) {
            return match count.scalar().and_then(|s| s.trim().parse::<f64>().ok()) {
                Some(n) if n <= 0.0 => None,
                Some(1.0) => Some("[0]".into()),
                _ => Some("[*]".into()),
            };
        }
        let each = self.attr(body, "for_each", pos)?;
        let keys: Option<Vec<String>> = match &each.kind {
            Kind::Map(entries) => Some(entries.iter().map(|(k, _)| k.name.clone()).collect()),
            Kind::Seq(items) => items.iter().map(Node::scalar).collect(),
            _ => None,
        };
        match keys.as_deref() {
            Some([]) => None,
            Some([key]) => Some(format!(
                "[{}]",
                serde_json::to_string(key).unwrap_or_default()
            )),
            _ => Some("[*]".into()),
        }
    }

    fn resource(&self, ty: &str, name: &str, block: &Block, model: &mut Model) {
        let pos = self.block_pos(block);
        let body = &block.body;
        let base = format!("{ty}.{name}");
        let instance =
            if body.get_attribute("count").is_some() || body.get_attribute("for_each").is_some() {
                match self.instances(body, pos) {
                    Some(i) => i,
                    None => return,
                }
            } else {
                String::new()
            };
        let address = format!("{base}{instance}");
        match ty {
            "aws_lambda_function" => {
                model
                    .functions
                    .push(self.function(address.clone(), pos, body))
            }
            "aws_lambda_function_url" => {
                model.urls.push(FunctionUrl {
                    address: address.clone(),
                    auth: self.attr(body, "authorization_type", pos),
                });
                if let Some(c) = Self::first_block(body, "cors") {
                    model.cors.push(self.cors(&address, c));
                }
            }
            "aws_apigatewayv2_api" => {
                if let Some(c) = Self::first_block(body, "cors_configuration") {
                    model.cors.push(self.cors(&address, c));
                }
            }
            "aws_lambda_permission" => model.permissions.push(Permission {
                address: address.clone(),
                principal: self.attr(body, "principal", pos),
                source_arn: self.has(body, "source_arn"),
                source_account: self.has(body, "source_account"),
            }),
            "aws_lambda_function_event_invoke_config" => model.invoke_configs.push(InvokeConfig {
                function: self
                    .attr(body, "function_name", pos)
                    .and_then(|n| n.identity()),
                on_failure: Self::first_block(body, "destination_config")
                    .and_then(|d| Self::first_block(&d.body, "on_failure"))
                    .is_some_and(|o| self.has(&o.body, "destination")),
            }),
            "aws_security_group" => {
                let open = body
                    .get_blocks("egress")
                    .filter(|e| {
                        self.open_rule(&e.body, "cidr_blocks", "ipv6_cidr_blocks", "protocol")
                    })
                    .map(|e| self.block_pos(e))
                    .collect();
                model.security_groups.push(SecurityGroup {
                    address: address.clone(),
                    target: base.clone(),
                    pos,
                    open_egress: open,
                    default_open: false,
                });
            }
            "aws_security_group_rule" => {
                let egress = self
                    .attr(body, "type", pos)
                    .and_then(|t| t.as_str().map(|s| s == "egress"))
                    .unwrap_or(false);
                if egress {
                    model.egress_rules.push(EgressRule {
                        address: address.clone(),
                        pos,
                        group: self
                            .attr(body, "security_group_id", pos)
                            .and_then(|n| n.identity()),
                        open: self.open_rule(body, "cidr_blocks", "ipv6_cidr_blocks", "protocol"),
                    });
                }
            }
            "aws_vpc_security_group_egress_rule" => model.egress_rules.push(EgressRule {
                address: address.clone(),
                pos,
                group: self
                    .attr(body, "security_group_id", pos)
                    .and_then(|n| n.identity()),
                open: self.open_rule(body, "cidr_ipv4", "cidr_ipv6", "ip_protocol"),
            }),
            _ => {}
        }
        for attr in body.attributes() {
            let key = attr.key.as_str();
            let kind = match key {
                "assume_role_policy" => PolicyKind::Resource,
                "policy" if IDENTITY_POLICY_TYPES.contains(&ty) => PolicyKind::Identity,
                "policy" => PolicyKind::Resource,
                _ => continue,
            };
            let report_unread = key == "assume_role_policy"
                || IDENTITY_POLICY_TYPES.contains(&ty)
                || RESOURCE_POLICY_TYPES.contains(&ty);
            let n = model.policies.len();
            self.push_policy(
                model,
                format!("{address}.{key}"),
                attr,
                (Some(kind), report_unread),
                pos,
            );
            let attached = match ty {
                "aws_kms_key" | "aws_kms_key_policy" if key == "policy" => Attached::KmsKey,
                "aws_sns_topic"
                | "aws_sns_topic_policy"
                | "aws_sqs_queue"
                | "aws_sqs_queue_policy"
                | "aws_s3_bucket_policy"
                    if key == "policy" =>
                {
                    Attached::Notification
                }
                _ => Attached::Other,
            };
            model.policies[n..]
                .iter_mut()
                .for_each(|p| p.attached = attached);
        }
        for inline in body.get_blocks("inline_policy") {
            if let Some(attr) = inline.body.get_attribute("policy") {
                self.push_policy(
                    model,
                    format!("{address}.inline_policy"),
                    attr,
                    (Some(PolicyKind::Identity), true),
                    pos,
                );
            }
        }
    }

    /// Where the secret in an environment variable's expression comes from: a sensitive
    /// variable with a literal default, or a Cognito user pool client's `client_secret`.
    fn secret_source(&self, text: &str) -> Option<String> {
        let mut rest = text;
        while let Some(i) = rest.find("var.") {
            let after = &rest[i + 4..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            let boundary = i == 0
                || !rest[..i]
                    .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if boundary && self.sensitive.contains(&name) {
                return Some(format!(
                    "the sensitive variable {name}, whose default (the secret) is written in the code"
                ));
            }
            rest = after;
        }
        let i = text.find("aws_cognito_user_pool_client.")?;
        let after = &text[i + "aws_cognito_user_pool_client.".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        after[name.len()..].starts_with(".client_secret").then(|| {
            format!(
                "the client secret of Cognito user pool client aws_cognito_user_pool_client.{name}"
            )
        })
    }

    /// A function's environment variables, as written, and those that receive a secret
    /// from elsewhere in the file (see [`Ctx::secret_source`]).
    #[allow(clippy::type_complexity)]
    fn environment(
        &self,
        variables: Option<&Attribute>,
        pos: Pos,
    ) -> (Vec<(Key, Node)>, Vec<(String, String)>) {
        let env = variables
            .map(|a| self.eval(&a.value, self.pos(a.span(), pos), 0))
            .map(|v| v.entries().to_vec())
            .unwrap_or_default();
        let mut secret_sources = Vec::new();
        if let Some(Expression::Object(o)) = variables.map(|a| &a.value) {
            for (k, v) in o.iter() {
                let name = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(x) => self
                        .eval(x, pos, 1)
                        .scalar()
                        .unwrap_or_else(|| self.source(x.span())),
                };
                if let Some(from) = self.secret_source(&self.source(v.expr().span())) {
                    secret_sources.push((name, from));
                }
            }
        }
        (env, secret_sources)
    }

    fn function(&self, address: String, pos: Pos, body: &Body) -> Function {
        let variables =
            Self::first_block(body, "environment").and_then(|e| e.body.get_attribute("variables"));
        let (env, secret_sources) = self.environment(variables, pos);
        let concurrency = self
            .attr(body, "reserved_concurrent_executions", pos)
            .is_some_and(|n| n.scalar().as_deref() != Some("-1"));
        Function {
            address,
            pos,
            role: self.attr(body, "role", pos),
            runtime: self.attr(body, "runtime", pos),
            env,
            kms_key: self.has(body, "kms_key_arn"),
            tracing: Self::first_block(body, "tracing_config")
                .and_then(|t| self.attr(&t.body, "mode", pos)),
            dlq: Self::first_block(body, "dead_letter_config")
                .is_some_and(|d| self.has(&d.body, "target_arn")),
            reserved_concurrency: concurrency,
            code_signing: self.has(body, "code_signing_config_arn"),
            layers: self.list(body, "layers", pos),
            security_groups: Self::first_block(body, "vpc_config")
                .map(|v| self.list(&v.body, "security_group_ids", pos))
                .unwrap_or_default(),
            secret_sources,
            code: self.attr(body, "filename", pos),
        }
    }

    /// Whether a module block uses terraform-aws-modules/lambda/aws (from the registry,
    /// or its GitHub repository), whose inputs [`Ctx::lambda_module`] reads.
    fn is_lambda_module(&self, body: &Body) -> bool {
        self.attr(body, "source", Pos::default())
            .and_then(|s| s.scalar())
            .is_some_and(|s| {
                let s = s.trim().trim_end_matches('/');
                s == "terraform-aws-modules/lambda/aws"
                    || s.contains("github.com/terraform-aws-modules/terraform-aws-lambda")
            })
    }

    /// A boolean input of a module: its value, `default` when it is not given, and true
    /// when it is only known at plan time (what it guards could be created).
    fn module_flag(&self, body: &Body, name: &str, default: bool, pos: Pos) -> bool {
        match self.attr(body, name, pos) {
            None => default,
            Some(n) if n.is_unresolved() => true,
            Some(n) => n.is_true(),
        }
    }

    /// The inputs of a terraform-aws-modules/lambda/aws module, read as the module uses
    /// them (its variables' defaults included): the function it creates
    /// (`aws_lambda_function.this`), its function URL (`create_lambda_function_url`, whose
    /// `authorization_type` defaults to `NONE`), and the policies it attaches to the role
    /// it creates (`policy_json` with `attach_policy_json`, `policy_jsons` with
    /// `attach_policy_jsons`, `policy_statements` with `attach_policy_statements`).
    fn lambda_module(&self, name: &str, block: &Block, model: &mut Model) {
        let pos = self.block_pos(block);
        let body = &block.body;
        let instance = if self.has(body, "count") || self.has(body, "for_each") {
            match self.instances(body, pos) {
                Some(i) => i,
                None => return,
            }
        } else {
            String::new()
        };
        if !self.module_flag(body, "create", true, pos) {
            return;
        }
        let module = format!("module.{name}{instance}");
        if self.module_flag(body, "create_function", true, pos) {
            model
                .functions
                .push(self.module_function(&module, pos, body));
        }
        if self.module_flag(body, "create_lambda_function_url", false, pos) {
            let address = format!("{module}.aws_lambda_function_url.this[0]");
            // The module's default is NONE: a URL anyone can invoke.
            let auth = self
                .attr(body, "authorization_type", pos)
                .unwrap_or_else(|| Node::str(pos, "NONE"));
            model.urls.push(FunctionUrl {
                address: address.clone(),
                auth: Some(auth),
            });
            if let Some(cors) = self.attr(body, "cors", pos)
                && matches!(cors.kind, Kind::Map(_))
            {
                model.cors.push(Cors {
                    address,
                    pos: cors.pos,
                    origins: cors
                        .get("allow_origins")
                        .map(|o| o.items().into_iter().cloned().collect())
                        .unwrap_or_default(),
                    credentials: cors.get("allow_credentials").cloned(),
                });
            }
        }
        // The policies are attached to the role the module creates (`create_role`).
        if !self.module_flag(body, "create_role", true, pos) {
            return;
        }
        if self.module_flag(body, "attach_policy_json", false, pos)
            && let Some(attr) = body.get_attribute("policy_json")
        {
            self.push_policy(
                model,
                format!("{module}.policy_json"),
                attr,
                (Some(PolicyKind::Identity), true),
                pos,
            );
        }
        if self.module_flag(body, "attach_policy_jsons", false, pos)
            && let Some(list) = self.attr(body, "policy_jsons", pos)
        {
            for (i, item) in list.items().into_iter().enumerate() {
                self.push_module_policy(model, format!("{module}.policy_jsons[{i}]"), item);
            }
        }
        if self.module_flag(body, "attach_policy_statements", false, pos)
            && let Some(statements) = self.attr(body, "policy_statements", pos)
        {
            let address = format!("{module}.policy_statements");
            match module_statements(&statements) {
                Some(doc) => model.policies.push(PolicyDoc {
                    address,
                    doc,
                    kind: Some(PolicyKind::Identity),
                    text: None,
                    attached: Default::default(),
                }),
                None => model.unread_policies.push(UnreadPolicy {
                    address,
                    pos: statements.pos,
                    why: format!(
                        "policy_statements must be a map (or list) of statement objects; its \
                         value `{}` is only known at plan time or is not one",
                        self.source_of(&statements)
                    ),
                }),
            }
        }
    }

    /// A policy given as a value (an element of `policy_jsons`): a JSON string, or a
    /// reference to a policy document data source, checked where it is declared.
    fn push_module_policy(&self, model: &mut Model, address: String, node: &Node) {
        match &node.kind {
            Kind::Str(s) => match json::parse(s) {
                Ok(Some(mut inner)) => {
                    reposition(&mut inner, node.pos);
                    model.policies.push(PolicyDoc {
                        address,
                        doc: inner,
                        kind: Some(PolicyKind::Identity),
                        text: None,
                        attached: Default::default(),
                    });
                }
                Ok(None) => {}
                Err(e) => model.unread_policies.push(UnreadPolicy {
                    address,
                    pos: node.pos,
                    why: format!("the policy is not valid JSON ({})", e.message),
                }),
            },
            Kind::Unresolved {
                target: Some(t), ..
            } if t.starts_with("data.aws_iam_policy_document.") => {}
            _ => model.unread_policies.push(UnreadPolicy {
                address,
                pos: node.pos,
                why: format!(
                    "its value `{}` is only known at plan time",
                    self.source_of(node)
                ),
            }),
        }
    }

    fn source_of(&self, node: &Node) -> String {
        match &node.kind {
            Kind::Unresolved { text, .. } => text.chars().take(80).collect(),
            _ => "value".to_string(),
        }
    }

    /// The function a terraform-aws-modules/lambda/aws module creates, from its inputs.
    fn module_function(&self, module: &str, pos: Pos, body: &Body) -> Function {
        let (env, secret_sources) =
            self.environment(body.get_attribute("environment_variables"), pos);
        // The module makes a role per function unless told to use `lambda_role`.
        let role = if self.module_flag(body, "create_role", true, pos) {
            None
        } else {
            self.attr(body, "lambda_role", pos)
        };
        Function {
            address: format!("{module}.aws_lambda_function.this[0]"),
            pos,
            role,
            runtime: self.attr(body, "runtime", pos),
            env,
            kms_key: self.has(body, "kms_key_arn"),
            tracing: self.attr(body, "tracing_mode", pos),
            dlq: self.has(body, "dead_letter_target_arn")
                || self.has(body, "destination_on_failure"),
            reserved_concurrency: self
                .attr(body, "reserved_concurrent_executions", pos)
                .is_some_and(|n| n.scalar().as_deref() != Some("-1")),
            code_signing: self.has(body, "code_signing_config_arn"),
            layers: self.list(body, "layers", pos),
            security_groups: self.list(body, "vpc_security_group_ids", pos),
            secret_sources,
            code: None,
        }
    }

    fn cors(&self, address: &str, block: &Block) -> Cors {
        let pos = self.block_pos(block);
        Cors {
            address: address.to_string(),
            pos,
            origins: self.list(&block.body, "allow_origins", pos),
            credentials: self.attr(&block.body, "allow_credentials", pos),
        }
    }

    /// True for a rule open to anywhere on every port.
    fn open_rule(&self, body: &Body, v4: &str, v6: &str, proto: &str) -> bool {
        let p = Pos::default();
        let anywhere = [v4, v6].iter().any(|k| {
            self.list(body, k, p)
                .iter()
                .any(|c| c.as_str().is_some_and(is_anywhere))
        });
        let protocol = self
            .attr(body, proto, p)
            .and_then(|n| n.scalar())
            .unwrap_or_default();
        let all_proto = protocol == "-1" || protocol.eq_ignore_ascii_case("all");
        let from = self.attr(body, "from_port", p).and_then(|n| n.scalar());
        let to = self.attr(body, "to_port", p).and_then(|n| n.scalar());
        let all_ports = from.as_deref() == Some("0") && to.as_deref() == Some("65535");
        anywhere && (all_proto || all_ports)
    }

    /// Reads a policy attribute into `model`: a policy document when it can be read, an
    /// unread policy (when `report_unread`) when it cannot.
    fn push_policy(
        &self,
        model: &mut Model,
        address: String,
        attr: &Attribute,
        (kind, report_unread): (Option<PolicyKind>, bool),
        fallback: Pos,
    ) {
        let pos = self.pos(attr.value.span(), fallback);
        let read = match &attr.value {
            Expression::HeredocTemplate(h) => self.heredoc_policy(h, pos),
            other => {
                let node = self.eval(other, pos, 0);
                match &node.kind {
                    Kind::Map(_) => Ok(node),
                    Kind::Str(s) => match json::parse(s) {
                        Ok(Some(mut inner)) => {
                            reposition(&mut inner, pos);
                            Ok(inner)
                        }
                        Ok(None) => Err("the policy is empty".to_string()),
                        Err(e) => Err(format!("the policy is not valid JSON ({})", e.message)),
                    },
                    // A policy document data source is checked where it is declared.
                    Kind::Unresolved {
                        target: Some(t), ..
                    } if t.starts_with("data.aws_iam_policy_document.") => return,
                    Kind::Unresolved { text, .. } => Err(format!(
                        "its value `{}` is only known at plan time",
                        text.chars().take(80).collect::<String>()
                    )),
                    _ => Err("the value is not a policy document".to_string()),
                }
            }
        };
        match read {
            Ok(doc) if doc.get("Statement").is_some() => model.policies.push(PolicyDoc {
                address,
                doc,
                kind,
                text: None,
                attached: Default::default(),
            }),
            Ok(_) => {}
            Err(why) if report_unread => {
                model
                    .unread_policies
                    .push(UnreadPolicy { address, pos, why })
            }
            Err(_) => {}
        }
    }

    /// A heredoc policy: its JSON with the known `${...}` filled in and the unknown ones
    /// read as "could be anything" (see [`fill_unknowns`]); an error says why it cannot
    /// be read.
    fn heredoc_policy(
        &self,
        h: &hcl_edit::template::HeredocTemplate,
        pos: Pos,
    ) -> Result<Node, String> {
        let mut text = String::new();
        let mut unknowns: Vec<Unknown> = Vec::new();
        let mut in_string = false;
        let mut escaped = false;
        for el in h.template.iter() {
            match el {
                Element::Literal(l) => {
                    for c in l.value().chars() {
                        if escaped {
                            escaped = false;
                        } else if in_string && c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            in_string = !in_string;
                        }
                    }
                    text.push_str(l.value());
                }
                Element::Interpolation(i) => {
                    let n = self.eval(&i.expr, pos, 1);
                    if let Some(v) = n.scalar() {
                        text.push_str(&v);
                        continue;
                    }
                    let written = format!("${{{}}}", self.source(i.expr.span()).trim());
                    let target = match &n.kind {
                        Kind::Unresolved {
                            target: Some(t), ..
                        } if !t.starts_with("var.")
                            && !t.starts_with("local.")
                            && !t.starts_with("module.") =>
                        {
                            Some(t.clone())
                        }
                        _ => None,
                    };
                    // Outside a JSON string the unknown is a whole value: quote it.
                    let quote = if in_string { "" } else { "\"" };
                    let mut marker = format!("{quote}{UNKNOWN_MARK}{}", unknowns.len());
                    let width = written.chars().count().saturating_sub(2 * quote.len());
                    let pad = width.saturating_sub(marker.chars().count()).max(1);
                    marker.extend(std::iter::repeat_n(UNKNOWN_PAD, pad));
                    marker.push_str(quote);
                    text.push_str(&marker);
                    unknowns.push(Unknown {
                        text: written,
                        target,
                    });
                }
                Element::Directive(_) => {
                    return Err(
                        "it uses a template directive (%{ ... }), which writ lint does not expand"
                            .to_string(),
                    );
                }
            }
        }
        let mut doc = match json::parse(&text) {
            Ok(Some(doc)) => doc,
            Ok(None) => return Err("the policy is empty".to_string()),
            Err(e) => {
                let mut why = e.message;
                if !unknowns.is_empty() {
                    why.push_str(" once its ${...} parts are filled in");
                }
                return Err(format!(
                    "the heredoc is not valid JSON ({why}, line {} of the heredoc)",
                    e.pos.line
                ));
            }
        };
        if !unknowns.is_empty() {
            fill_unknowns(&mut doc, "", &unknowns);
        }
        // The content starts on the line after `<<EOF`.
        let indent = u32::try_from(h.indent().unwrap_or(0)).unwrap_or(0);
        shift(&mut doc, pos.line, indent);
        Ok(doc)
    }

    /// A `data "aws_iam_policy_document"` block as policy JSON.
    fn policy_document(&self, block: &Block) -> Node {
        let pos = self.block_pos(block);
        let key = |name: &str, pos: Pos| Key {
            name: name.to_string(),
            pos,
        };
        let version = self
            .attr(&block.body, "version", pos)
            .unwrap_or_else(|| Node::str(pos, "2012-10-17"));
        let mut statements = Vec::new();
        for st in block.body.get_blocks("statement") {
            let sp = self.block_pos(st);
            let b = &st.body;
            let mut entries = Vec::new();
            if let Some(sid) = self.attr(b, "sid", sp) {
                entries.push((key("Sid", sid.pos), sid));
            }
            let effect = self
                .attr(b, "effect", sp)
                .unwrap_or_else(|| Node::str(sp, "Allow"));
            entries.push((key("Effect", effect.pos), effect));
            for (tf, iam) in [
                ("actions", "Action"),
                ("not_actions", "NotAction"),
                ("resources", "Resource"),
                ("not_resources", "NotResource"),
            ] {
                if let Some(v) = self.attr(b, tf, sp) {
                    entries.push((key(iam, v.pos), v));
                }
            }
            for (tf, iam) in [
                ("principals", "Principal"),
                ("not_principals", "NotPrincipal"),
            ] {
                let mut map: Vec<(Key, Node)> = Vec::new();
                let mut any = false;
                let mut first = None;
                for p in b.get_blocks(tf) {
                    let pp = self.block_pos(p);
                    first.get_or_insert(pp);
                    let ty = self
                        .attr(&p.body, "type", pp)
                        .and_then(|t| t.scalar())
                        .unwrap_or_default();
                    let ids = self
                        .attr(&p.body, "identifiers", pp)
                        .unwrap_or_else(|| Node::new(pp, Kind::Seq(Vec::new())));
                    if ty == "*" {
                        any = true;
                    } else {
                        map.push((key(&ty, pp), ids));
                    }
                }
                if let Some(pp) = first {
                    let node = if any {
                        Node::str(pp, "*")
                    } else {
                        Node::new(pp, Kind::Map(map))
                    };
                    entries.push((key(iam, pp), node));
                }
            }
            let mut cond: Vec<(Key, Node)> = Vec::new();
            for c in b.get_blocks("condition") {
                let cp = self.block_pos(c);
                let test = self
                    .attr(&c.body, "test", cp)
                    .and_then(|t| t.scalar())
                    .unwrap_or_default();
                let var = self
                    .attr(&c.body, "variable", cp)
                    .and_then(|t| t.scalar())
                    .unwrap_or_default();
                let values = self
                    .attr(&c.body, "values", cp)
                    .unwrap_or_else(|| Node::new(cp, Kind::Seq(Vec::new())));
                let inner = (key(&var, cp), values);
                match cond.iter_mut().find(|(k, _)| k.name == test) {
                    Some((
                        _,
                        Node {
                            kind: Kind::Map(m), ..
                        },
                    )) => m.push(inner),
                    _ => cond.push((key(&test, cp), Node::new(cp, Kind::Map(vec![inner])))),
                }
            }
            if let Some((k, _)) = cond.first() {
                let p = k.pos;
                entries.push((key("Condition", p), Node::new(p, Kind::Map(cond))));
            }
            statements.push(Node::new(sp, Kind::Map(entries)));
        }
        Node::new(
            pos,
            Kind::Map(vec![
                (key("Version", version.pos), version),
                (key("Statement", pos), Node::new(pos, Kind::Seq(statements))),
            ]),
        )
    }

    /// Evaluates an expression as far as the file allows.
    fn eval(&self, e: &Expression, fallback: Pos, depth: usize) -> Node {
        let pos = self.pos(e.span(), fallback);
        if depth > MAX_DEPTH {
            return Node::unresolved(pos, self.source(e.span()), None);
        }
        let kind = match e {
            Expression::Null(_) => Kind::Null,
            Expression::Bool(b) => Kind::Bool(*b.value()),
            Expression::Number(n) => Kind::Num(n.value().to_string()),
            Expression::String(s) => Kind::Str(s.value().clone()),
            Expression::Array(a) => {
                Kind::Seq(a.iter().map(|x| self.eval(x, pos, depth + 1)).collect())
            }
            Expression::Object(o) => Kind::Map(
                o.iter()
                    .map(|(k, v)| {
                        let (name, span) = match k {
                            ObjectKey::Ident(i) => (i.as_str().to_string(), i.span()),
                            ObjectKey::Expression(x) => {
                                let n = self.eval(x, pos, depth + 1);
                                (
                                    n.scalar().unwrap_or_else(|| self.source(x.span())),
                                    x.span(),
                                )
                            }
                        };
                        let kp = self.pos(span, pos);
                        (Key { name, pos: kp }, self.eval(v.expr(), kp, depth + 1))
                    })
                    .collect(),
            ),
            Expression::StringTemplate(t) => return self.template(t, pos, e.span(), depth),
            Expression::HeredocTemplate(h) => {
                return self.template(&h.template, pos, e.span(), depth);
            }
            Expression::Parenthesis(p) => return self.eval(p.inner(), pos, depth + 1),
            Expression::FuncCall(f) => {
                let name = f.name.name.as_str();
                let args: Vec<&Expression> = f.args.iter().collect();
                match (name, args.as_slice()) {
                    ("jsonencode" | "tolist" | "toset" | "tomap" | "tostring", [arg]) => {
                        let mut n = self.eval(arg, pos, depth + 1);
                        n.pos = pos;
                        return n;
                    }
                    ("jsondecode", [arg]) => {
                        let n = self.eval(arg, pos, depth + 1);
                        if let Some(s) = n.as_str()
                            && let Ok(Some(mut inner)) = json::parse(s)
                        {
                            reposition(&mut inner, pos);
                            return inner;
                        }
                        return Node::unresolved(pos, self.source(e.span()), None);
                    }
                    _ => return Node::unresolved(pos, self.source(e.span()), None),
                }
            }
            Expression::Traversal(t) => return self.traversal(t, pos, e.span(), depth),
            _ => return Node::unresolved(pos, self.source(e.span()), None),
        };
        Node::new(pos, kind)
    }

    fn template(&self, t: &Template, pos: Pos, span: Option<Range<usize>>, depth: usize) -> Node {
        // `"${expr}"` alone is the value of `expr`, whatever its type (Terraform JSON
        // writes every expression so).
        let elements: Vec<&Element> = t.iter().collect();
        if let [Element::Interpolation(i)] = elements.as_slice() {
            return self.eval(&i.expr, pos, depth + 1);
        }
        let mut out = String::new();
        let mut target = None;
        let mut known = true;
        for el in t.iter() {
            match el {
                Element::Literal(s) => out.push_str(s.value()),
                Element::Interpolation(i) => {
                    let n = self.eval(&i.expr, pos, depth + 1);
                    match n.scalar() {
                        Some(s) => out.push_str(&s),
                        None => {
                            known = false;
                            if let Kind::Unresolved {
                                target: Some(t), ..
                            } = &n.kind
                            {
                                target.get_or_insert(t.clone());
                            }
                        }
                    }
                }
                Element::Directive(_) => known = false,
            }
        }
        if known {
            Node::str(pos, out)
        } else {
            let text = self.source(span);
            let text = text.trim_matches('"').to_string();
            Node::unresolved(pos, text, target)
        }
    }

    fn traversal(
        &self,
        t: &hcl_edit::expr::Traversal,
        pos: Pos,
        span: Option<Range<usize>>,
        depth: usize,
    ) -> Node {
        let text = self.source(span);
        let Expression::Variable(root) = &t.expr else {
            return Node::unresolved(pos, text, None);
        };
        let names: Vec<Option<&str>> = t
            .operators
            .iter()
            .map(|op| match op.value() {
                TraversalOperator::GetAttr(i) => Some(i.as_str()),
                _ => None,
            })
            .collect();
        let root = root.as_str();
        let lookup = match root {
            "local" => names
                .first()
                .copied()
                .flatten()
                .and_then(|n| self.locals.get(n)),
            "var" => names
                .first()
                .copied()
                .flatten()
                .and_then(|n| self.vars.get(n)),
            _ => None,
        };
        if let Some(expr) = lookup {
            let mut node = self.eval(expr, pos, depth + 1);
            for op in t.operators.iter().skip(1) {
                let next = match op.value() {
                    TraversalOperator::GetAttr(i) => node.get(i.as_str()).cloned(),
                    TraversalOperator::Index(Expression::Number(n)) => {
                        let i = n.value().as_u64().and_then(|i| usize::try_from(i).ok());
                        match (&node.kind, i) {
                            (Kind::Seq(items), Some(i)) => items.get(i).cloned(),
                            _ => None,
                        }
                    }
                    TraversalOperator::Index(Expression::String(s)) => node.get(s.value()).cloned(),
                    _ => None,
                };
                match next {
                    Some(n) => node = n,
                    None => return Node::unresolved(pos, text, None),
                }
            }
            if !node.is_unresolved() {
                node.pos = pos;
            }
            return node;
        }
        let first = names.first().copied().flatten();
        let second = names.get(1).copied().flatten();
        let target = match (root, first, second) {
            ("var" | "local", Some(n), _) => Some(format!("{root}.{n}")),
            ("data", Some(ty), Some(name)) => Some(format!("data.{ty}.{name}")),
            ("module", Some(m), _) => Some(format!("module.{m}")),
            ("each" | "count" | "path" | "self" | "terraform", _, _) => None,
            (ty, Some(name), _) => Some(format!("{ty}.{name}")),
            _ => None,
        };
        Node::unresolved(pos, text, target)
    }
}

/// Replaces the markers of unknown `${...}` in a heredoc policy. In an `Action` or
/// `Resource` an unknown could be anything, so it becomes `*`, which can only widen what
/// is checked; except that a `Resource` whose unknowns all name resources or data sources
/// (`${aws_s3_bucket.b.arn}/*`) is one particular ARN, unresolved as in `jsonencode`.
/// Anywhere else a string with an unknown is unresolved (a placeholder that neither
/// grants nor names anyone).
fn fill_unknowns(n: &mut Node, element: &str, unknowns: &[Unknown]) {
    match &mut n.kind {
        Kind::Str(s) if s.contains(UNKNOWN_MARK) => {
            let mut wild = String::new();
            let mut written = String::new();
            let mut target = None;
            let mut all_targets = true;
            let mut chars = s.chars().peekable();
            while let Some(c) = chars.next() {
                if c != UNKNOWN_MARK {
                    wild.push(c);
                    written.push(c);
                    continue;
                }
                let mut idx = 0usize;
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    idx = idx
                        .saturating_mul(10)
                        .saturating_add(d as usize - '0' as usize);
                }
                while chars.next_if_eq(&UNKNOWN_PAD).is_some() {}
                let u = unknowns.get(idx);
                written.push_str(u.map_or("${?}", |u| u.text.as_str()));
                match u.and_then(|u| u.target.as_ref()) {
                    Some(t) => {
                        target.get_or_insert_with(|| t.clone());
                    }
                    None => all_targets = false,
                }
                wild.push('*');
            }
            n.kind = match element {
                "Action" => Kind::Str(wild),
                "Resource" if !all_targets => Kind::Str(wild),
                _ => Kind::Unresolved {
                    text: written,
                    target,
                },
            };
        }
        Kind::Seq(items) => items
            .iter_mut()
            .for_each(|i| fill_unknowns(i, element, unknowns)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            let inner = match k.name.as_str() {
                e @ ("Action" | "NotAction" | "Resource" | "NotResource" | "Principal"
                | "NotPrincipal" | "Condition") => e,
                _ => element,
            };
            fill_unknowns(v, inner, unknowns);
        }),
        _ => {}
    }
}

/// Moves positions of JSON read from a heredoc: line 1 of the JSON is the line after
/// `start_line`; columns gain the indentation `<<-` removed.
fn shift(n: &mut Node, start_line: u32, indent: u32) {
    n.pos.line = n.pos.line.saturating_add(start_line);
    n.pos.column = n.pos.column.saturating_add(indent);
    match &mut n.kind {
        Kind::Seq(items) => items.iter_mut().for_each(|i| shift(i, start_line, indent)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            k.pos.line = k.pos.line.saturating_add(start_line);
            k.pos.column = k.pos.column.saturating_add(indent);
            shift(v, start_line, indent);
        }),
        _ => {}
    }
}

/// The policy document a terraform-aws-modules/lambda/aws module builds from
/// `policy_statements`: a map (or list) of objects with `effect` (default Allow), `actions`,
/// `not_actions`, `resources`, `not_resources`, `principals` and `not_principals` (objects
/// with `type` and `identifiers`) and `condition` (objects with `test`, `variable` and
/// `values`), each becoming one statement (its `sid`, or its key in the map). `None` when
/// the value is not such a collection.
fn module_statements(value: &Node) -> Option<Node> {
    let key = |name: &str, pos: Pos| Key {
        name: name.to_string(),
        pos,
    };
    let drawn: Vec<(Option<String>, &Node)> = match &value.kind {
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| (Some(k.name.clone()), v))
            .collect(),
        Kind::Seq(items) => items.iter().map(|v| (None, v)).collect(),
        _ => return None,
    };
    let mut statements = Vec::new();
    for (name, st) in drawn {
        if !matches!(st.kind, Kind::Map(_)) {
            return None;
        }
        let sp = st.pos;
        let mut entries = Vec::new();
        let sid = st
            .get("sid")
            .and_then(Node::scalar)
            .or_else(|| name.map(|n| n.chars().filter(char::is_ascii_alphanumeric).collect()));
        if let Some(sid) = sid {
            entries.push((key("Sid", sp), Node::str(sp, sid)));
        }
        let effect = st
            .get("effect")
            .cloned()
            .unwrap_or_else(|| Node::str(sp, "Allow"));
        entries.push((key("Effect", effect.pos), effect));
        for (tf, iam) in [
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ] {
            if let Some(v) = st.get(tf) {
                entries.push((key(iam, v.pos), v.clone()));
            }
        }
        for (tf, iam) in [
            ("principals", "Principal"),
            ("not_principals", "NotPrincipal"),
        ] {
            let Some(list) = st.get(tf) else { continue };
            let mut map: Vec<(Key, Node)> = Vec::new();
            let mut any = false;
            for p in collection(list) {
                let ty = p.get("type").and_then(Node::scalar).unwrap_or_default();
                let ids = p
                    .get("identifiers")
                    .cloned()
                    .unwrap_or_else(|| Node::new(p.pos, Kind::Seq(Vec::new())));
                if ty == "*" {
                    any = true;
                } else {
                    map.push((key(&ty, p.pos), ids));
                }
            }
            let node = if any {
                Node::str(list.pos, "*")
            } else {
                Node::new(list.pos, Kind::Map(map))
            };
            entries.push((key(iam, list.pos), node));
        }
        if let Some(conditions) = st.get("condition") {
            let mut cond: Vec<(Key, Node)> = Vec::new();
            for c in collection(conditions) {
                let test = c.get("test").and_then(Node::scalar).unwrap_or_default();
                let var = c.get("variable").and_then(Node::scalar).unwrap_or_default();
                let values = c
                    .get("values")
                    .cloned()
                    .unwrap_or_else(|| Node::new(c.pos, Kind::Seq(Vec::new())));
                let inner = (key(&var, c.pos), values);
                match cond.iter_mut().find(|(k, _)| k.name == test) {
                    Some((
                        _,
                        Node {
                            kind: Kind::Map(m), ..
                        },
                    )) => m.push(inner),
                    _ => cond.push((key(&test, c.pos), Node::new(c.pos, Kind::Map(vec![inner])))),
                }
            }
            if !cond.is_empty() {
                entries.push((
                    key("Condition", conditions.pos),
                    Node::new(conditions.pos, Kind::Map(cond)),
                ));
            }
        }
        statements.push(Node::new(sp, Kind::Map(entries)));
    }
    let pos = value.pos;
    Some(Node::new(
        pos,
        Kind::Map(vec![
            (key("Version", pos), Node::str(pos, "2012-10-17")),
            (key("Statement", pos), Node::new(pos, Kind::Seq(statements))),
        ]),
    ))
}

/// The objects of a map or a list (the module takes either for principals and conditions).
fn collection(node: &Node) -> Vec<&Node> {
    match &node.kind {
        Kind::Map(entries) if entries.iter().all(|(_, v)| matches!(v.kind, Kind::Map(_))) => {
            entries.iter().map(|(_, v)| v).collect()
        }
        _ => node.items(),
    }
}
