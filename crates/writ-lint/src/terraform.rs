//! Terraform (`.tf`) into a [`Model`].
//!
//! Expressions are evaluated as far as the file allows: literals, `locals`, `variable`
//! defaults, `jsonencode(...)`, string templates whose parts are known, heredocs. A
//! reference to a resource (`aws_iam_role.lambda.arn`) stays unresolved but remembers the
//! resource, so two functions naming the same role are recognised. `data
//! "aws_iam_policy_document"` blocks become IAM policy JSON.

use std::collections::HashMap;
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
    Cors, EgressRule, Function, FunctionUrl, InvokeConfig, Model, Permission, PolicyDoc,
    SecurityGroup, is_anywhere,
};
use crate::node::{Key, Kind, LineIndex, Node, Pos};

/// The deepest bracket nesting parsed; the parser recurses, so deeper input is refused
/// before it can exhaust the stack.
const MAX_NESTING: usize = 256;

/// The deepest chain of `local` / `var` references followed.
const MAX_DEPTH: usize = 32;

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
            ("data", ["aws_iam_policy_document", name]) => {
                let doc = ctx.policy_document(block);
                model.policies.push(PolicyDoc {
                    address: format!("data.aws_iam_policy_document.{name}"),
                    doc,
                    kind: None,
                    text: None,
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

    fn resource(&self, ty: &str, name: &str, block: &Block, model: &mut Model) {
        let address = format!("{ty}.{name}");
        let pos = self.block_pos(block);
        let body = &block.body;
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
                    target: address.clone(),
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
            self.push_policy(model, format!("{address}.{key}"), attr, Some(kind), pos);
        }
        for inline in body.get_blocks("inline_policy") {
            if let Some(attr) = inline.body.get_attribute("policy") {
                self.push_policy(
                    model,
                    format!("{address}.inline_policy"),
                    attr,
                    Some(PolicyKind::Identity),
                    pos,
                );
            }
        }
    }

    fn function(&self, address: String, pos: Pos, body: &Body) -> Function {
        let env = Self::first_block(body, "environment")
            .and_then(|e| self.attr(&e.body, "variables", pos))
            .map(|v| v.entries().to_vec())
            .unwrap_or_default();
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

    fn push_policy(
        &self,
        model: &mut Model,
        address: String,
        attr: &Attribute,
        kind: Option<PolicyKind>,
        fallback: Pos,
    ) {
        let pos = self.pos(attr.value.span(), fallback);
        let doc = match &attr.value {
            Expression::HeredocTemplate(h) => {
                let node = self.eval(&attr.value, pos, 0);
                let Some(s) = node.as_str() else { return };
                match json::parse(s) {
                    Ok(Some(mut inner)) => {
                        // The content starts on the line after `<<EOF`.
                        let indent = u32::try_from(h.indent().unwrap_or(0)).unwrap_or(0);
                        shift(&mut inner, pos.line, indent);
                        inner
                    }
                    _ => return,
                }
            }
            other => {
                let node = self.eval(other, pos, 0);
                match &node.kind {
                    Kind::Map(_) => node,
                    Kind::Str(s) => match json::parse(s) {
                        Ok(Some(mut inner)) => {
                            reposition(&mut inner, pos);
                            inner
                        }
                        _ => return,
                    },
                    _ => return,
                }
            }
        };
        if doc.get("Statement").is_none() {
            return;
        }
        model.policies.push(PolicyDoc {
            address,
            doc,
            kind,
            text: None,
        });
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
