//! Least-privilege policies from the audit record, in the spirit of IAM Access Analyzer's
//! policy generation: what a function actually did becomes the identity policy it needs.
//!
//! The evidence is every event by the actor that writ authorized (decision `allowed`) and
//! that completed (outcome `allowed`). Identity bootstrapping events such as `writ:Login`
//! carry no decision and are not evidence. The policy grants no wildcard wider than the
//! evidence: actions and resources are listed exactly, and `*`, `?` and `$` in a recorded
//! resource are written as the policy variables `${*}`, `${?}` and `${$}`, which match
//! only those characters. Actions of one service used on exactly the same resources share a
//! statement; the output is sorted, so the same evidence always gives the same text.
//!
//! ```
//! use writ_audit::generate::least_privilege;
//! use writ_audit::{Decision, Event, Outcome};
//!
//! let mut event = Event::new("2026-11-24T10:00:00.000Z", "spiffe://example.org/fn/orders",
//!     "x509Svid", "secrets:GetSecretValue", "prod/orders-db", Outcome::Allowed);
//! event.decision = Some(Decision::Allowed);
//! let generated = least_privilege(&[event], "spiffe://example.org/fn/orders").unwrap();
//! assert_eq!(generated.pairs, 1);
//! assert_eq!(generated.policy["Statement"][0]["Resource"], "prod/orders-db");
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use writ_policy::{CompiledPolicy, ParseOptions, PolicyKind, PolicySet, Request};

use crate::{Decision, Event, Outcome};

/// Every generated Sid starts with this.
const SID_PREFIX: &str = "WritGenerated";

/// The generated policy and what it was built from.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The IAM identity policy document.
    pub policy: serde_json::Value,
    /// The same document as pretty-printed JSON, `Version` first.
    pub text: String,
    /// How many events were used as evidence.
    pub events_used: usize,
    /// How many distinct (action, resource) pairs the policy allows. Actions are compared
    /// case-insensitively, as IAM compares them; resources exactly.
    pub pairs: usize,
}

/// Why no policy was generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The events hold no allowed call by the actor.
    #[error("{0}")]
    NoEvidence(String),
    /// The generated policy failed writ-policy's validation, or would allow more or less
    /// than the evidence. This should never happen; the message carries the diagnostics.
    #[error("the generated policy is invalid: {0}")]
    Invalid(String),
}

/// Generates the least-privilege identity policy for `actor` from `events`: one `Allow`
/// statement per service and set of resources, listing exactly the actions and resources
/// the actor was allowed to use and did use. Events with an empty action or resource, or an
/// action not shaped `service:Name`, are skipped.
///
/// The policy is checked with [`writ_policy::parse`] before it is returned, and compiled
/// and evaluated to confirm it allows every recorded call. A very large record can exceed
/// writ-policy's size limit ([`writ_policy::DEFAULT_MAX_BYTES`]); that is reported as
/// [`GenerateError::Invalid`].
pub fn least_privilege(events: &[Event], actor: &str) -> Result<Generated, GenerateError> {
    // service (lower case) -> action (lower case) -> (spelling, resources)
    let mut services: BTreeMap<String, BTreeMap<String, Used>> = BTreeMap::new();
    let mut events_used = 0;
    for event in events {
        let Some(service) = evidence(event, actor) else {
            continue;
        };
        events_used += 1;
        let used = services
            .entry(service.to_ascii_lowercase())
            .or_default()
            .entry(event.action.to_ascii_lowercase())
            .or_insert_with(|| Used {
                spelling: event.action.clone(),
                resources: BTreeSet::new(),
            });
        // The same action in another case is the same action; keep one spelling, chosen
        // independently of the order of the events.
        if event.action < used.spelling {
            used.spelling.clone_from(&event.action);
        }
        used.resources.insert(event.resource.clone());
    }
    if events_used == 0 {
        return Err(GenerateError::NoEvidence(format!(
            "no allowed calls by {actor} in the events given"
        )));
    }

    let mut statements = Vec::new();
    let mut sids = HashSet::new();
    let mut pairs = 0;
    for (service, actions) in &services {
        // Resource set -> the actions used on exactly that set.
        let mut groups: BTreeMap<&BTreeSet<String>, BTreeSet<&str>> = BTreeMap::new();
        for used in actions.values() {
            pairs += used.resources.len();
            groups
                .entry(&used.resources)
                .or_default()
                .insert(used.spelling.as_str());
        }
        let mut groups: Vec<(Vec<String>, Vec<String>)> = groups
            .into_iter()
            .map(|(resources, actions)| {
                (
                    actions.into_iter().map(str::to_string).collect(),
                    resources.iter().map(|r| escape_resource(r)).collect(),
                )
            })
            .collect();
        groups.sort();
        let name = pascal_case(service);
        let mut index = 0usize;
        for (actions, resources) in groups {
            // Sids must be unique; two services can share a PascalCase name with digits
            // ("a1" and "a-1"), so skip any Sid already taken.
            let sid = loop {
                index += 1;
                let sid = format!("{SID_PREFIX}{name}{index}");
                if sids.insert(sid.clone()) {
                    break sid;
                }
            };
            statements.push(StatementDoc {
                sid,
                effect: "Allow",
                action: one_or_many(actions),
                resource: one_or_many(resources),
            });
        }
    }

    let doc = PolicyDoc {
        version: "2012-10-17",
        statement: statements,
    };
    let text = serde_json::to_string_pretty(&doc)
        .map_err(|e| GenerateError::Invalid(format!("cannot serialise the policy: {e}")))?;
    let policy = serde_json::to_value(&doc)
        .map_err(|e| GenerateError::Invalid(format!("cannot serialise the policy: {e}")))?;
    check(&text, &services)?;
    Ok(Generated {
        policy,
        text,
        events_used,
        pairs,
    })
}

/// One action as used: its spelling in the policy and the resources it was used on.
struct Used {
    spelling: String,
    resources: BTreeSet<String>,
}

#[derive(Serialize)]
struct PolicyDoc {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Statement")]
    statement: Vec<StatementDoc>,
}

#[derive(Serialize)]
struct StatementDoc {
    #[serde(rename = "Sid")]
    sid: String,
    #[serde(rename = "Effect")]
    effect: &'static str,
    #[serde(rename = "Action")]
    action: serde_json::Value,
    #[serde(rename = "Resource")]
    resource: serde_json::Value,
}

/// The event's service when the event is evidence for `actor`. An event the actor reported
/// about itself (an agent's) is its own word, not evidence of what it was allowed: it would
/// let a compromised function write its own policy. A reported event of an action no
/// reporter decides ([`crate::reportable`]) is a forgery, whoever sent it (a log written
/// before the server refused them may hold some).
fn evidence<'e>(event: &'e Event, actor: &str) -> Option<&'e str> {
    if event.actor != actor
        || event.reported_by.as_deref() == Some(actor)
        || (event.reported_by.is_some() && !crate::reportable(&event.action))
        || event.outcome != Outcome::Allowed
        || event.decision != Some(Decision::Allowed)
        || event.resource.is_empty()
    {
        return None;
    }
    // The shape writ-policy accepts, without wildcards: a service of letters, digits and
    // '-', and an action name of letters and digits.
    let (service, name) = event.action.split_once(':')?;
    let service_ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric());
    (service_ok && name_ok).then_some(service)
}

/// A resource as an IAM pattern that matches exactly it: `*`, `?` and `$` are written as
/// the policy variables `${*}`, `${?}` and `${$}` (Version 2012-10-17).
fn escape_resource(resource: &str) -> String {
    let mut out = String::with_capacity(resource.len());
    for c in resource.chars() {
        match c {
            '*' => out.push_str("${*}"),
            '?' => out.push_str("${?}"),
            '$' => out.push_str("${$}"),
            c => out.push(c),
        }
    }
    out
}

/// `secrets` -> `Secrets`, `iot-data` -> `IotData`; only ASCII letters and digits remain.
fn pascal_case(service: &str) -> String {
    let mut out = String::with_capacity(service.len());
    for part in service.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// A single string for one element, a (sorted) list otherwise.
fn one_or_many(mut items: Vec<String>) -> serde_json::Value {
    if items.len() == 1 {
        serde_json::Value::String(items.remove(0))
    } else {
        serde_json::Value::Array(items.into_iter().map(serde_json::Value::String).collect())
    }
}

/// Validates the policy with writ-policy, refuses the broad-grant warnings, and confirms it
/// allows every recorded call.
fn check(
    text: &str,
    services: &BTreeMap<String, BTreeMap<String, Used>>,
) -> Result<(), GenerateError> {
    let parsed = writ_policy::parse(text, &ParseOptions::new(PolicyKind::Identity));
    let bad: Vec<String> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.is_error() || matches!(d.code, "allow-all" | "service-wildcard"))
        .map(ToString::to_string)
        .collect();
    if !bad.is_empty() {
        return Err(GenerateError::Invalid(bad.join("; ")));
    }
    let policy = parsed
        .into_result()
        .map_err(|d| GenerateError::Invalid(format!("{} diagnostics", d.len())))?;
    let compiled = CompiledPolicy::new("generated", PolicyKind::Identity, &policy)
        .map_err(|e| GenerateError::Invalid(e.to_string()))?;
    let mut set = PolicySet::new();
    set.add(compiled);
    for used in services.values().flat_map(BTreeMap::values) {
        for resource in &used.resources {
            let decision = set.evaluate(&Request::new(&used.spelling, resource));
            if decision.outcome != writ_policy::Outcome::Allowed {
                return Err(GenerateError::Invalid(format!(
                    "it does not allow the recorded call {} on {resource:?}",
                    used.spelling
                )));
            }
        }
    }
    Ok(())
}
