//! Policy documents: validation by writ-policy, and the IAM rules.

use writ_policy::{ParseOptions, PolicyKind};

use crate::model::{Attached, PolicyDoc};
use crate::node::{Key, Kind, Node, Pos};
use crate::privilege;
use crate::rules::{self, Out};
use crate::{Severity, string_matches};

/// writ-policy warnings that a dedicated rule reports with more detail; they are not
/// repeated as validation findings.
const COVERED: &[&str] = &[
    "allow-all",
    "service-wildcard",
    "allow-not-action",
    "allow-not-resource",
    "confused-deputy",
    "public-access",
];

/// Codes that complain about a value's shape; when the value is only known at deploy time
/// (a reference), the complaint is about writ lint's placeholder, not the policy.
const VALUE_SHAPE: &[&str] = &[
    "malformed-arn",
    "invalid-variable",
    "variable-not-expanded",
    "action-format",
    "invalid-value",
    "wrong-type",
    "principal-format",
    "invalid-principal",
    "condition-key-format",
    "wildcard-principal",
    "never-matches",
];

/// Checks one policy document.
pub(crate) fn check(doc: &PolicyDoc, out: &mut Out) {
    let statements: Vec<&Node> = doc
        .doc
        .get("Statement")
        .map(Node::items)
        .unwrap_or_default();
    let has_principal = statements
        .iter()
        .any(|s| s.get("Principal").is_some() || s.get("NotPrincipal").is_some());
    let kind = doc.kind.unwrap_or(if has_principal {
        PolicyKind::Resource
    } else {
        PolicyKind::Identity
    });
    // A role trust policy names a principal and no resource; AWS accepts that, the
    // resource-policy grammar does not. Give such statements the implied `*`.
    let trust_like = kind == PolicyKind::Resource
        && statements
            .iter()
            .any(|s| s.get("Resource").is_none() && s.get("NotResource").is_none());
    let patched;
    let (node, text) = if trust_like {
        patched = with_implied_resource(&doc.doc);
        (&patched, patched.to_json())
    } else {
        match &doc.text {
            Some(t) => (&doc.doc, t.clone()),
            None => (&doc.doc, doc.doc.to_json()),
        }
    };
    let exact = doc.text.is_some() && !trust_like;
    let parsed = writ_policy::parse(&text, &ParseOptions::new(kind));
    for d in &parsed.diagnostics {
        if COVERED.contains(&d.code) {
            continue;
        }
        let at = node.at_json_path(&d.path);
        if at.is_unresolved() || (at.contains_unresolved() && VALUE_SHAPE.contains(&d.code)) {
            continue;
        }
        let pos = if exact {
            Pos::new(d.location.line, d.location.column)
        } else {
            at.pos
        };
        let severity = if d.is_error() {
            Severity::High
        } else {
            Severity::Medium
        };
        let place = if d.path.is_empty() {
            String::new()
        } else {
            format!(" at {}", d.path)
        };
        out.add_with(
            rules::IAM_VALIDATION,
            severity,
            pos,
            format!("{}.{}.{}", doc.address, d.path, d.code),
            format!("{}{place}: {} [{}]", doc.address, d.message, d.code),
        );
    }
    let mut read = Vec::with_capacity(statements.len());
    for (i, st) in statements.iter().enumerate() {
        let path = if matches!(
            doc.doc.get("Statement").map(|s| &s.kind),
            Some(Kind::Seq(_))
        ) {
            format!("Statement[{i}]")
        } else {
            "Statement".to_string()
        };
        let st = Stmt::read(st);
        let name = match &st.sid {
            Some(sid) => format!("{} statement {sid:?}", doc.address),
            None => format!("{} statement {}", doc.address, i + 1),
        };
        let subject = format!("{}.{}", doc.address, st.sid.clone().unwrap_or(path));
        statement(&st, &name, &subject, doc.attached, out);
        read.push((st, name, subject));
    }
    privilege::check(&read, out);
}

/// A statement as the rules see it, read straight from the document so the rules run
/// even when validation finds errors elsewhere. Unresolved values are left out: they
/// are never `*`.
pub(crate) struct Stmt {
    pub pos: Pos,
    pub sid: Option<String>,
    pub allow: bool,
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub not_resource: bool,
    /// `Principal` (not `NotPrincipal`): anyone, AWS principals, services.
    pub principal: Option<(bool, Vec<String>, Vec<String>)>,
    /// `Principal` or `NotPrincipal` is set: a resource policy's statement, whose `*`
    /// resource is the resource the policy is attached to.
    pub names_principal: bool,
    /// The only principal is the account itself (`arn:aws:iam::ACCOUNT:root` or the
    /// account id), as in the default key policy.
    pub account_root_only: bool,
    pub condition_keys: Vec<String>,
}

fn strings(n: Option<&Node>) -> Vec<String> {
    n.map(|n| n.items().into_iter().filter_map(Node::scalar).collect())
        .unwrap_or_default()
}

impl Stmt {
    fn read(n: &Node) -> Stmt {
        let effect = n.get("Effect").and_then(Node::as_str).unwrap_or("");
        let (actions, not_action) = match n.get("NotAction") {
            Some(a) => (strings(Some(a)), true),
            None => (strings(n.get("Action")), false),
        };
        let (resources, not_resource) = match n.get("NotResource") {
            Some(r) => (strings(Some(r)), true),
            None => (strings(n.get("Resource")), false),
        };
        let principal = n.get("Principal").map(|p| match &p.kind {
            Kind::Str(s) => (s.trim() == "*", Vec::new(), Vec::new()),
            _ => (false, strings(p.get("AWS")), strings(p.get("Service"))),
        });
        let condition_keys = n
            .get("Condition")
            .map(|c| {
                c.entries()
                    .iter()
                    .flat_map(|(_, inner)| inner.entries().iter().map(|(k, _)| k.name.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Stmt {
            pos: n.pos,
            sid: n.get("Sid").and_then(Node::scalar),
            allow: effect == "Allow",
            actions,
            not_action,
            resources,
            not_resource,
            principal,
            names_principal: n.get("Principal").is_some() || n.get("NotPrincipal").is_some(),
            account_root_only: n.get("Principal").is_some_and(account_root_only),
            condition_keys,
        }
    }
}

/// True for a `Principal` naming only the account itself.
fn account_root_only(p: &Node) -> bool {
    let [(k, v)] = p.entries() else {
        return false;
    };
    let items = v.items();
    k.name == "AWS"
        && !items.is_empty()
        && items.iter().all(|a| match &a.kind {
            Kind::Str(s) | Kind::Num(s) => {
                let s = s.trim();
                s.ends_with(":root") || (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()))
            }
            // `!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root`, a Terraform template.
            Kind::Unresolved { text, .. } => text.contains(":root"),
            _ => false,
        })
}

fn statement(st: &Stmt, name: &str, subject: &str, attached: Attached, out: &mut Out) {
    let pos = st.pos;
    if !st.allow {
        return;
    }
    // The default key policy: the account's own IAM policies decide who uses the key.
    let default_key_policy = attached == Attached::KmsKey
        && st.account_root_only
        && st
            .actions
            .iter()
            .all(|a| a.trim().eq_ignore_ascii_case("kms:*"));
    let any_resource = !st.not_resource && st.resources.iter().any(|p| p.trim() == "*");
    if !st.not_action && any_resource && !default_key_policy {
        if st.actions.iter().any(|p| p.trim() == "*") {
            out.add(
                rules::IAM_WILDCARD,
                pos,
                format!("{subject}.*"),
                format!("{name} allows every action (*) on every resource (*)"),
            );
        } else {
            for p in &st.actions {
                if let Some(service) = p.strip_suffix(":*") {
                    out.add(
                        rules::IAM_WILDCARD,
                        pos,
                        format!("{subject}.{p}"),
                        format!("{name} allows every {service} action ({p}) on every resource (*)"),
                    );
                }
            }
        }
        let pass = st.actions.iter().find(|p| {
            p.as_str() != "*"
                && !p.eq_ignore_ascii_case("iam:*")
                && string_matches(&p.to_ascii_lowercase(), "iam:passrole")
        });
        if let Some(p) = pass {
            out.add(
                rules::IAM_PASSROLE,
                pos,
                format!("{subject}.passrole"),
                format!("{name} allows iam:PassRole ({p}) on every role (*): the holder can hand any role, admin included, to a service it controls"),
            );
        }
    }
    if st.not_action || st.not_resource {
        let which = match (st.not_action, st.not_resource) {
            (true, true) => "NotAction and NotResource",
            (true, false) => "NotAction",
            _ => "NotResource",
        };
        out.add(
            rules::IAM_NOT,
            pos,
            format!("{subject}.not"),
            format!("{name} uses {which} with Allow: it grants everything not listed, including what AWS adds later"),
        );
    }
    let Some((any, aws, services)) = &st.principal else {
        return;
    };
    let only_sts = !st.not_action
        && !st.actions.is_empty()
        && st
            .actions
            .iter()
            .all(|p| p.to_ascii_lowercase().starts_with("sts:"));
    if (*any || aws.iter().any(|a| a.trim() == "*")) && st.condition_keys.is_empty() {
        out.add(
            rules::PERM_PUBLIC,
            pos,
            format!("{subject}.public"),
            format!(
                "{name} allows any principal (*) with no condition, anonymous callers included"
            ),
        );
    }
    let guarded = st.condition_keys.iter().any(|k| {
        let k = k.to_ascii_lowercase();
        k == "aws:sourcearn" || k == "aws:sourceaccount" || k == "aws:sourceorgid"
    });
    if !services.is_empty() && !guarded && !only_sts {
        // On a topic, queue or bucket a confused deputy can publish or deliver, not run code.
        let severity = if attached == Attached::Notification {
            Severity::Medium
        } else {
            Severity::High
        };
        out.add_with(
            rules::PERM_SOURCE,
            severity,
            pos,
            format!("{subject}.source"),
            format!(
                "{name} lets {} act without an aws:SourceArn or aws:SourceAccount condition (confused deputy)",
                services.join(", ")
            ),
        );
    }
}

/// A copy of a policy where statements without Resource/NotResource get `"Resource": "*"`.
fn with_implied_resource(doc: &Node) -> Node {
    let mut doc = doc.clone();
    if let Kind::Map(entries) = &mut doc.kind {
        for (k, v) in entries.iter_mut() {
            if k.name != "Statement" {
                continue;
            }
            match &mut v.kind {
                Kind::Seq(items) => items.iter_mut().for_each(add_resource),
                Kind::Map(_) => add_resource(v),
                _ => {}
            }
        }
    }
    doc
}

fn add_resource(st: &mut Node) {
    let pos = st.pos;
    if st.get("Resource").is_none()
        && st.get("NotResource").is_none()
        && let Kind::Map(entries) = &mut st.kind
    {
        entries.push((
            Key {
                name: "Resource".into(),
                pos,
            },
            Node::str(pos, "*"),
        ));
    }
}
