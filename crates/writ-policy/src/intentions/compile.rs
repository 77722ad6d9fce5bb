//! Intentions to IAM statements: precedence as exclusions, L7 rules as conditions, and
//! Sids that name the intention.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    HeaderCondition, Intention, IntentionAction, IntentionError, Permission, check_trust_domain,
    validate_all,
};
use super::{
    INVOKE_ACTION, KEY_DESTINATION_FUNCTION, KEY_HEADER_PREFIX, KEY_METHOD, KEY_PATH,
    KEY_SOURCE_FUNCTION, RESOURCE_PREFIX,
};
use crate::model::{
    Condition, Effect, PatternElement, Policy, PrincipalElement, PrincipalKind, Principals,
    Statement, Version,
};
use crate::operator::{Operator, OperatorKind};

/// The Sid of a compiled statement names the intention it comes from, so that
/// [`crate::Decision::matched`] says why: `orders->payments`, then optionally
/// `:destination=NAME` (a `* -> *` statement for one destination) and
/// `:permissions[K]` (one statement per L7 permission). Function names hold neither `>`
/// nor `:`, so [`parse_sid`] reads it back unambiguously.
pub fn statement_sid(
    intention: &Intention,
    destination: Option<&str>,
    permission: Option<usize>,
) -> String {
    let mut sid = format!("{}->{}", intention.source, intention.destination);
    if let Some(d) = destination {
        sid.push_str(":destination=");
        sid.push_str(d);
    }
    if let Some(k) = permission {
        sid.push_str(&format!(":permissions[{k}]"));
    }
    sid
}

/// What a compiled statement's Sid says about where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidParts<'a> {
    /// The intention's source.
    pub source: &'a str,
    /// The intention's destination.
    pub destination: &'a str,
    /// The permission's index, for an L7 statement.
    pub permission: Option<usize>,
}

/// Reads a Sid written by [`statement_sid`]; `None` for any other text.
pub fn parse_sid(sid: &str) -> Option<SidParts<'_>> {
    let mut pieces = sid.split(':');
    let (source, destination) = pieces.next()?.split_once("->")?;
    let mut permission = None;
    for piece in pieces {
        if let Some(k) = piece
            .strip_prefix("permissions[")
            .and_then(|r| r.strip_suffix(']'))
        {
            permission = Some(k.parse().ok()?);
        } else if piece.strip_prefix("destination=").is_none() {
            return None;
        }
    }
    Some(SidParts {
        source,
        destination,
        permission,
    })
}

/// Escapes text for a `StringEquals` value in a `2012-10-17` policy: `$` would start a
/// policy variable, so it is written `${$}`.
fn escape_literal(text: &str) -> String {
    text.replace('$', "${$}")
}

/// Escapes text for a `StringLike` value, so that `*`, `?` and `$` match themselves.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '$' => out.push_str("${$}"),
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            c => out.push(c),
        }
    }
    out
}

fn condition(kind: OperatorKind, key: &str, values: Vec<String>) -> Condition {
    Condition {
        operator: Operator {
            kind,
            set: None,
            if_exists: false,
        },
        key: key.to_string(),
        values,
    }
}

fn header_key(name: &str) -> String {
    format!("{KEY_HEADER_PREFIX}{}", name.to_ascii_lowercase())
}

pub(super) fn permission_conditions(p: &Permission) -> Vec<Condition> {
    let mut out = Vec::new();
    if !p.methods.is_empty() {
        out.push(condition(
            OperatorKind::StringEquals,
            KEY_METHOD,
            p.methods.clone(),
        ));
    }
    if let Some(path) = &p.path_exact {
        out.push(condition(
            OperatorKind::StringEquals,
            KEY_PATH,
            vec![escape_literal(path)],
        ));
    }
    if let Some(prefix) = &p.path_prefix {
        out.push(condition(
            OperatorKind::StringLike,
            KEY_PATH,
            vec![format!("{}*", escape_like(prefix))],
        ));
    }
    for h in &p.headers {
        let key = header_key(&h.name);
        match h.condition() {
            Some(HeaderCondition::Present(present)) => {
                out.push(condition(
                    OperatorKind::Null,
                    &key,
                    vec![(!present).to_string()],
                ));
            }
            Some(HeaderCondition::Exact(v)) => {
                out.push(condition(
                    OperatorKind::StringEquals,
                    &key,
                    vec![escape_literal(v)],
                ));
            }
            Some(HeaderCondition::Prefix(v)) => {
                out.push(condition(
                    OperatorKind::StringLike,
                    &key,
                    vec![format!("{}*", escape_like(v))],
                ));
            }
            // validate() refuses these before compile() gets here.
            None => {}
        }
    }
    out
}

/// Compiles intentions into one resource policy for [`crate::PolicyKind::Resource`], where exactly
/// the statements of the deciding intention can apply to a call:
///
/// - `S -> D`: principal `spiffe://TD/fn/S`, resource `writ:fn/D`, no exclusion.
/// - `* -> D`: principal `spiffe://TD/fn/*`, resource `writ:fn/D`, and
///   `StringNotEquals writ:SourceFunction` the sources with their own `S -> D`.
/// - `S -> *`: principal `spiffe://TD/fn/S`, resource `writ:fn/*`, and
///   `StringNotEquals writ:DestinationFunction` every destination named by an `S -> D` or
///   `* -> D`.
/// - `* -> *`: one statement for the destinations no intention names, excluding the sources
///   with an `S -> *`; and for each destination named only by `S -> D` intentions, one
///   statement on `writ:fn/D` excluding those sources and the `S -> *` sources.
///
/// Statements for a `*` source also require `Null writ:SourceFunction = false`, so a caller
/// that is not a function of the trust domain matches no intention; statements on
/// `writ:fn/*` require `Null writ:DestinationFunction = false`, so a request built without
/// that key is denied rather than decided by a less specific intention. A `deny` compiles to
/// `Deny` statements; an `allow` to one `Allow` statement, or one per permission, with the
/// permission's conditions on [`KEY_METHOD`], [`KEY_PATH`] and [`KEY_HEADER_PREFIX`] keys.
/// Paths and header values are escaped, so `*`, `?` and `$` in them match literally.
pub fn compile(intentions: &[Intention], trust_domain: &str) -> Result<Policy, IntentionError> {
    check_trust_domain(trust_domain)?;
    validate_all(intentions)?;

    // Who is named where, in sorted order so the output is deterministic.
    let mut exact_pairs: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new(); // D -> {S}
    let mut any_source_dests: BTreeSet<&str> = BTreeSet::new(); // D with * -> D
    let mut any_dest_sources: BTreeSet<&str> = BTreeSet::new(); // S with S -> *
    let mut sources_by_dest_exact: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new(); // S -> {D} for S -> D
    for it in intentions {
        match (it.source.as_str(), it.destination.as_str()) {
            ("*", "*") => {}
            ("*", d) => {
                any_source_dests.insert(d);
            }
            (s, "*") => {
                any_dest_sources.insert(s);
            }
            (s, d) => {
                exact_pairs.entry(d).or_default().insert(s);
                sources_by_dest_exact.entry(s).or_default().insert(d);
            }
        }
    }
    let names = |set: &BTreeSet<&str>| set.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let mut order: Vec<&Intention> = intentions.iter().collect();
    order.sort_by(|a, b| {
        b.precedence()
            .cmp(&a.precedence())
            .then_with(|| a.destination.cmp(&b.destination))
            .then_with(|| a.source.cmp(&b.source))
    });

    let mut statements = Vec::new();
    for it in order {
        let any_source = it.source == "*";
        let principal = if any_source {
            format!("spiffe://{trust_domain}/fn/*")
        } else {
            format!("spiffe://{trust_domain}/fn/{}", it.source)
        };
        // (destination-specific Sid part, resource, exclusion conditions)
        let mut targets: Vec<(Option<String>, String, Vec<Condition>)> = Vec::new();
        let not_in = |key: &str, values: Vec<String>| {
            (!values.is_empty()).then(|| condition(OperatorKind::StringNotEquals, key, values))
        };
        match (any_source, it.destination == "*") {
            (false, false) => {
                targets.push((None, format!("{RESOURCE_PREFIX}{}", it.destination), vec![]))
            }
            (true, false) => {
                let exclude = exact_pairs
                    .get(it.destination.as_str())
                    .map(names)
                    .unwrap_or_default();
                targets.push((
                    None,
                    format!("{RESOURCE_PREFIX}{}", it.destination),
                    not_in(KEY_SOURCE_FUNCTION, exclude).into_iter().collect(),
                ));
            }
            (false, true) => {
                let mut covered: BTreeSet<&str> = any_source_dests.clone();
                if let Some(ds) = sources_by_dest_exact.get(it.source.as_str()) {
                    covered.extend(ds.iter().copied());
                }
                targets.push((
                    None,
                    format!("{RESOURCE_PREFIX}*"),
                    not_in(KEY_DESTINATION_FUNCTION, names(&covered))
                        .into_iter()
                        .collect(),
                ));
            }
            (true, true) => {
                let named: BTreeSet<&str> = any_source_dests
                    .iter()
                    .chain(exact_pairs.keys())
                    .copied()
                    .collect();
                let general: Vec<Condition> = not_in(KEY_DESTINATION_FUNCTION, names(&named))
                    .into_iter()
                    .chain(not_in(KEY_SOURCE_FUNCTION, names(&any_dest_sources)))
                    .collect();
                targets.push((None, format!("{RESOURCE_PREFIX}*"), general));
                for (d, sources) in &exact_pairs {
                    if any_source_dests.contains(d) {
                        continue; // `* -> d` decides every call to d that `S -> d` does not.
                    }
                    let mut exclude: BTreeSet<&str> = sources.clone();
                    exclude.extend(any_dest_sources.iter().copied());
                    targets.push((
                        Some(d.to_string()),
                        format!("{RESOURCE_PREFIX}{d}"),
                        not_in(KEY_SOURCE_FUNCTION, names(&exclude))
                            .into_iter()
                            .collect(),
                    ));
                }
            }
        }
        for (dest_part, resource, mut exclusions) in targets {
            // Fail closed when an evaluator leaves out a key the exclusions read: a
            // statement that relies on one applies only when it is present.
            if any_source {
                exclusions.push(condition(
                    OperatorKind::Null,
                    KEY_SOURCE_FUNCTION,
                    vec!["false".into()],
                ));
            }
            if resource == format!("{RESOURCE_PREFIX}*") {
                exclusions.push(condition(
                    OperatorKind::Null,
                    KEY_DESTINATION_FUNCTION,
                    vec!["false".into()],
                ));
            }
            let statement = |sid: String, extra: Vec<Condition>| Statement {
                sid: Some(sid),
                effect: match it.action {
                    IntentionAction::Allow => Effect::Allow,
                    IntentionAction::Deny => Effect::Deny,
                },
                principal: Some(PrincipalElement {
                    negated: false,
                    principals: Principals::Named(vec![(
                        PrincipalKind::Spiffe,
                        vec![principal.clone()],
                    )]),
                }),
                action: PatternElement {
                    negated: false,
                    patterns: vec![INVOKE_ACTION.to_string()],
                },
                resource: PatternElement {
                    negated: false,
                    patterns: vec![resource.clone()],
                },
                // Exclusions first: explanations report the first condition that failed,
                // and IntentionSet relies on an L7 condition failing only after every
                // exclusion held.
                conditions: exclusions.iter().cloned().chain(extra).collect(),
            };
            if it.permissions.is_empty() {
                statements.push(statement(
                    statement_sid(it, dest_part.as_deref(), None),
                    vec![],
                ));
            } else {
                for (k, p) in it.permissions.iter().enumerate() {
                    statements.push(statement(
                        statement_sid(it, dest_part.as_deref(), Some(k)),
                        permission_conditions(p),
                    ));
                }
            }
        }
    }
    Ok(Policy {
        version: Some(Version::V2012_10_17),
        id: Some("writ-intentions".into()),
        statements,
    })
}
