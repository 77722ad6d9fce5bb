//! Consul-style intentions: which function may call which, compiled to IAM policy
//! statements so that one engine decides every call.
//!
//! An [`Intention`] says that calls from `source` to `destination` are allowed or denied;
//! either name may be `*`, any function. For a call from S to D, the matching intention with
//! the highest precedence decides:
//!
//! 1. `S -> D` (exact source, exact destination),
//! 2. `* -> D`,
//! 3. `S -> *`,
//! 4. `* -> *`.
//!
//! A `deny` denies. An `allow` without permissions allows. An `allow` with L7
//! [`Permission`]s allows only when one of them matches the request's method, path and
//! headers, and otherwise denies: it does not fall through to a lower-precedence intention.
//! With no matching intention the call is denied.
//!
//! [`compile`] turns a set of intentions into one resource policy (action
//! [`INVOKE_ACTION`] on `writ:fn/NAME`, principals `{"SPIFFE": ...}`), where each
//! statement carries conditions that exclude the calls a higher-precedence intention
//! covers, so at most one intention's statements apply to any call. [`request`] builds the
//! request those statements expect; the gateway and the server both use it, so they decide
//! identically. [`IntentionSet`] does both and says which intention decided and why.
//!
//! ```
//! use writ_policy::intentions::{Intention, IntentionSet, request};
//!
//! let intentions: Vec<Intention> = serde_json::from_str(r#"[
//!   {"source": "*", "destination": "payments", "action": "deny"},
//!   {"source": "orders", "destination": "payments", "action": "allow",
//!    "permissions": [{"methods": ["POST"], "pathExact": "/charge"}]}
//! ]"#).unwrap();
//! let set = IntentionSet::new(intentions, "example.org").unwrap();
//!
//! let post = request("spiffe://example.org/fn/orders", "payments", Some("POST"), Some("/charge"), []);
//! assert!(set.decide(&post).allowed);
//! let get = request("spiffe://example.org/fn/orders", "payments", Some("GET"), Some("/charge"), []);
//! assert!(!set.decide(&get).allowed);
//! let other = request("spiffe://example.org/fn/billing", "payments", Some("POST"), Some("/charge"), []);
//! let verdict = set.decide(&other);
//! assert!(!verdict.allowed);
//! assert_eq!(verdict.reason, "denied by intention * -> payments");
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compile::{CompileError, CompiledPolicy};
use crate::model::{
    Condition, Effect, PatternElement, Policy, PolicyKind, PrincipalElement, PrincipalKind,
    Principals, Statement, Version,
};
use crate::operator::{Operator, OperatorKind};
use crate::request::{Context, Principal, Request};
use crate::set::{Decision, Outcome, PolicySet, StatementMiss};

/// The action every compiled statement grants or denies: calling a function.
pub const INVOKE_ACTION: &str = "writ:Invoke";

/// The prefix of the resource a call is made on: `writ:fn/NAME`.
pub const RESOURCE_PREFIX: &str = "writ:fn/";

/// The name [`IntentionSet`] gives the compiled policy in decisions.
pub const POLICY_NAME: &str = "intentions";

/// Context key: the calling function's name, taken from its SPIFFE ID
/// (`spiffe://TD/fn/NAME`). Absent when the caller is not a function.
pub const KEY_SOURCE_FUNCTION: &str = "writ:SourceFunction";

/// Context key: the called function's name.
pub const KEY_DESTINATION_FUNCTION: &str = "writ:DestinationFunction";

/// Context key: the HTTP method, as sent (`GET`, `POST`, ...).
pub const KEY_METHOD: &str = "writ:Method";

/// Context key: the request path, without the query string.
pub const KEY_PATH: &str = "writ:Path";

/// Context key prefix: `writ:RequestHeader/<lower-case header name>` holds a header's value.
pub const KEY_HEADER_PREFIX: &str = "writ:RequestHeader/";

/// The HTTP methods a permission may name.
pub const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// The longest function name, path, header value or description accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest path or header value in a permission, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// The longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;

/// Whether an intention allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntentionAction {
    /// Calls are allowed (subject to the permissions, if any).
    Allow,
    /// Calls are denied.
    Deny,
}

impl IntentionAction {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentionAction::Allow => "allow",
            IntentionAction::Deny => "deny",
        }
    }
}

impl fmt::Display for IntentionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One intention: calls from `source` to `destination` are allowed or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Intention {
    /// The calling function's name, or `*` for any function.
    pub source: String,
    /// The called function's name, or `*` for any function.
    pub destination: String,
    /// Allow or deny.
    pub action: IntentionAction,
    /// L7 permissions, only on `allow`: the call is allowed only if one of them matches.
    /// Empty means every call from source to destination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<Permission>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An L7 permission: it matches a request when every condition it gives holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Permission {
    /// The request's method is one of these (upper case); empty means any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// The request's path starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// The request's path is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_exact: Option<String>,
    /// Every one of these header conditions holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
}

/// A condition on one request header: exactly one of `present`, `exact` and `prefix`.
/// Header names compare ignoring case; values are compared case-sensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    /// The header's name.
    pub name: String,
    /// `true`: the header is present; `false`: it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<bool>,
    /// The header's value is exactly this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The header's value starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// What a [`HeaderMatch`] requires, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCondition<'a> {
    /// The header is present (`true`) or absent (`false`).
    Present(bool),
    /// The value equals this.
    Exact(&'a str),
    /// The value starts with this.
    Prefix(&'a str),
}

impl HeaderMatch {
    /// The condition, or `None` when not exactly one of `present`, `exact` and `prefix`
    /// is given ([`Intention::validate`] refuses that).
    pub fn condition(&self) -> Option<HeaderCondition<'_>> {
        match (self.present, &self.exact, &self.prefix) {
            (Some(p), None, None) => Some(HeaderCondition::Present(p)),
            (None, Some(v), None) => Some(HeaderCondition::Exact(v)),
            (None, None, Some(v)) => Some(HeaderCondition::Prefix(v)),
            _ => None,
        }
    }
}

/// A validation or compilation error, naming the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct IntentionError {
    /// Where: a field path such as `intentions[2].permissions[0].pathPrefix`, or
    /// `trustDomain`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl IntentionError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> IntentionError {
        IntentionError {
            field: field.into(),
            message: message.into(),
        }
    }

    fn within(mut self, prefix: &str) -> IntentionError {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

impl From<CompileError> for IntentionError {
    fn from(e: CompileError) -> IntentionError {
        // Compilation of what `compile` builds cannot fail for validated input; if it ever
        // does, say so rather than evaluate half a policy.
        IntentionError::new(
            format!("Statement[{}]", e.statement),
            format!("the compiled intentions policy is invalid: {}", e.message),
        )
    }
}

/// True when `name` is a function name as intentions accept it: 1 to 128 of ASCII letters,
/// digits, `.`, `-` and `_`, and not `.` or `..` (the rules of a SPIFFE ID path segment).
pub fn is_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn check_name(field: &str, name: &str) -> Result<(), IntentionError> {
    if name == "*" || is_function_name(name) {
        return Ok(());
    }
    let hint = if name.contains('*') {
        "\"*\" may only stand alone, for any function"
    } else {
        "use 1 to 128 ASCII letters, digits, '.', '-' or '_' (not \".\" or \"..\"), or \"*\" \
         for any function"
    };
    Err(IntentionError::new(
        field,
        format!("{name:?} is not a function name: {hint}"),
    ))
}

fn is_header_name(name: &str) -> bool {
    // An HTTP token (RFC 9110 section 5.6.2).
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn check_value(field: &str, value: &str) -> Result<(), IntentionError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(IntentionError::new(
            field,
            format!(
                "is {} bytes long; the most is {MAX_VALUE_BYTES}",
                value.len()
            ),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(IntentionError::new(
            field,
            format!("contains the control character {c:?}, which no HTTP request carries"),
        ));
    }
    Ok(())
}

fn check_path(field: &str, path: &str) -> Result<(), IntentionError> {
    if !path.starts_with('/') {
        return Err(IntentionError::new(
            field,
            format!(
                "{path:?} does not start with '/': write the path as the request has it, e.g. \"/charge\""
            ),
        ));
    }
    if let Some(c) = path.chars().find(|c| c.is_whitespace()) {
        return Err(IntentionError::new(
            field,
            format!(
                "{path:?} contains {c:?}: a request path has no white space (percent-encode it)"
            ),
        ));
    }
    check_value(field, path)
}

impl Permission {
    fn validate(&self) -> Result<(), IntentionError> {
        if self.methods.is_empty()
            && self.path_prefix.is_none()
            && self.path_exact.is_none()
            && self.headers.is_empty()
        {
            return Err(IntentionError::new(
                "",
                "a permission must give at least one of methods, pathPrefix, pathExact or \
                 headers; to allow every request, leave out permissions altogether",
            ));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if !HTTP_METHODS.contains(&m.as_str()) {
                let hint = if HTTP_METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                    format!("methods are upper case: write {:?}", m.to_ascii_uppercase())
                } else {
                    format!("use one of {}", HTTP_METHODS.join(", "))
                };
                return Err(IntentionError::new(
                    format!("methods[{i}]"),
                    format!("{m:?} is not an HTTP method: {hint}"),
                ));
            }
        }
        if self.path_prefix.is_some() && self.path_exact.is_some() {
            return Err(IntentionError::new(
                "pathExact",
                "give pathPrefix or pathExact, not both",
            ));
        }
        if let Some(p) = &self.path_prefix {
            check_path("pathPrefix", p)?;
        }
        if let Some(p) = &self.path_exact {
            check_path("pathExact", p)?;
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, h) in self.headers.iter().enumerate() {
            let at = format!("headers[{i}]");
            if !is_header_name(&h.name) {
                return Err(IntentionError::new(
                    format!("{at}.name"),
                    format!(
                        "{:?} is not an HTTP header name: use 1 to 128 letters, digits and \
                         !#$%&'*+-.^_`|~",
                        h.name
                    ),
                ));
            }
            let lower = h.name.to_ascii_lowercase();
            if seen.contains(&lower) {
                return Err(IntentionError::new(
                    format!("{at}.name"),
                    format!(
                        "header {:?} is already matched in this permission: give each header \
                         once",
                        h.name
                    ),
                ));
            }
            seen.push(lower);
            match h.condition() {
                None => {
                    return Err(IntentionError::new(
                        at,
                        "give exactly one of present, exact or prefix",
                    ));
                }
                Some(HeaderCondition::Exact(v)) => check_value(&format!("{at}.exact"), v)?,
                Some(HeaderCondition::Prefix(v)) => check_value(&format!("{at}.prefix"), v)?,
                Some(HeaderCondition::Present(_)) => {}
            }
        }
        Ok(())
    }

    /// A short description for people: `POST|PUT /charge*` or `GET /health` or
    /// `header x-env = "prod"`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.methods.is_empty() {
            parts.push(self.methods.join("|"));
        }
        if let Some(p) = &self.path_exact {
            parts.push(p.clone());
        }
        if let Some(p) = &self.path_prefix {
            parts.push(format!("{p}*"));
        }
        for h in &self.headers {
            parts.push(match h.condition() {
                Some(HeaderCondition::Present(true)) => format!("header {} present", h.name),
                Some(HeaderCondition::Present(false)) => format!("header {} absent", h.name),
                Some(HeaderCondition::Exact(v)) => format!("header {} = {v:?}", h.name),
                Some(HeaderCondition::Prefix(v)) => format!("header {} starts with {v:?}", h.name),
                None => format!("header {} (invalid)", h.name),
            });
        }
        parts.join(" ")
    }
}

impl Intention {
    /// An intention without permissions or description.
    pub fn new(source: &str, destination: &str, action: IntentionAction) -> Intention {
        Intention {
            source: source.to_string(),
            destination: destination.to_string(),
            action,
            permissions: Vec::new(),
            description: None,
        }
    }

    /// Checks one intention. Errors name the field: `source`, `permissions[0].methods[1]`.
    pub fn validate(&self) -> Result<(), IntentionError> {
        check_name("source", &self.source)?;
        check_name("destination", &self.destination)?;
        if self.action == IntentionAction::Deny && !self.permissions.is_empty() {
            return Err(IntentionError::new(
                "permissions",
                "only allow intentions have permissions: a deny applies to every call from \
                 source to destination",
            ));
        }
        for (i, p) in self.permissions.iter().enumerate() {
            p.validate().map_err(|e| {
                if e.field.is_empty() {
                    IntentionError::new(format!("permissions[{i}]"), e.message)
                } else {
                    e.within(&format!("permissions[{i}]"))
                }
            })?;
        }
        if let Some(d) = &self.description
            && d.len() > MAX_DESCRIPTION_BYTES
        {
            return Err(IntentionError::new(
                "description",
                format!(
                    "is {} bytes long; the most is {MAX_DESCRIPTION_BYTES}",
                    d.len()
                ),
            ));
        }
        Ok(())
    }

    /// The precedence class, higher deciding first: 4 for `S -> D`, 3 for `* -> D`, 2 for
    /// `S -> *`, 1 for `* -> *`. Exact destination beats wildcard destination; then exact
    /// source beats wildcard source.
    pub fn precedence(&self) -> u8 {
        match (self.source == "*", self.destination == "*") {
            (false, false) => 4,
            (true, false) => 3,
            (false, true) => 2,
            (true, true) => 1,
        }
    }

    /// `orders -> payments`, for people.
    pub fn label(&self) -> String {
        format!("{} -> {}", self.source, self.destination)
    }
}

/// Checks a whole set: each intention, and that no two share a source and destination.
/// Errors are prefixed with `intentions[i].`.
pub fn validate_all(intentions: &[Intention]) -> Result<(), IntentionError> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, it) in intentions.iter().enumerate() {
        it.validate()
            .map_err(|e| e.within(&format!("intentions[{i}]")))?;
        if let Some(first) = seen.insert((&it.source, &it.destination), i) {
            return Err(IntentionError::new(
                format!("intentions[{i}]"),
                format!(
                    "{} is already given by intentions[{first}]: there is one intention per \
                     source and destination",
                    it.label()
                ),
            ));
        }
    }
    Ok(())
}

fn check_trust_domain(td: &str) -> Result<(), IntentionError> {
    let ok = !td.is_empty()
        && td.len() <= 255
        && td.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        });
    if ok {
        Ok(())
    } else {
        Err(IntentionError::new(
            "trustDomain",
            format!(
                "{td:?} is not a trust domain: use lower-case letters, digits, '.', '-' and '_'"
            ),
        ))
    }
}

/// The Sid of a compiled statement names the intention it comes from, so that
/// [`Decision::matched`] says why: `orders->payments`, then optionally
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

fn permission_conditions(p: &Permission) -> Vec<Condition> {
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

/// Compiles intentions into one resource policy for [`PolicyKind::Resource`], where exactly
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
/// that is not a function of the trust domain matches no intention. A `deny` compiles to
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
            if any_source {
                exclusions.push(condition(
                    OperatorKind::Null,
                    KEY_SOURCE_FUNCTION,
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

/// The source function's name in a SPIFFE ID `spiffe://TD/fn/NAME`, whatever the trust
/// domain; `None` for any other ID. The compiled principals check the trust domain.
pub fn function_of(spiffe_id: &str) -> Option<&str> {
    let rest = spiffe_id.strip_prefix("spiffe://")?;
    let (td, path) = rest.split_once('/')?;
    let name = path.strip_prefix("fn/")?;
    (!td.is_empty() && is_function_name(name)).then_some(name)
}

/// Builds the request the compiled intentions decide: principal `SPIFFE source_spiffe_id`,
/// action [`INVOKE_ACTION`], resource `writ:fn/DESTINATION`, and the context keys
/// [`KEY_SOURCE_FUNCTION`] (when the source is a function), [`KEY_DESTINATION_FUNCTION`],
/// [`KEY_METHOD`] and [`KEY_PATH`] (when given) and one [`KEY_HEADER_PREFIX`] key per header,
/// its name lower-cased. A header sent several times has its values joined with `,`, as
/// HTTP allows. `path` is the path alone, without the query string.
///
/// Evaluators must build requests with this function (or set the same keys the same way):
/// the exclusions that encode precedence read [`KEY_SOURCE_FUNCTION`] and
/// [`KEY_DESTINATION_FUNCTION`], and a caller that left them out would be matched by
/// lower-precedence intentions.
pub fn request<'h>(
    source_spiffe_id: &str,
    destination: &str,
    method: Option<&str>,
    path: Option<&str>,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> Request {
    let mut context = Context::new();
    if let Some(name) = function_of(source_spiffe_id) {
        context.insert(KEY_SOURCE_FUNCTION, name);
    }
    context.insert(KEY_DESTINATION_FUNCTION, destination);
    if let Some(m) = method {
        context.insert(KEY_METHOD, m);
    }
    if let Some(p) = path {
        context.insert(KEY_PATH, p);
    }
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        joined
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    for (name, value) in joined {
        context.insert(&format!("{KEY_HEADER_PREFIX}{name}"), value);
    }
    Request::new(INVOKE_ACTION, &format!("{RESOURCE_PREFIX}{destination}"))
        .with_principal(Principal::Spiffe(source_spiffe_id.to_string()))
        .with_context(context)
}

/// Intentions compiled and ready to decide calls.
#[derive(Debug, Clone)]
pub struct IntentionSet {
    intentions: Vec<Intention>,
    policy: Policy,
    set: PolicySet,
    by_pair: HashMap<(String, String), usize>,
    has_permissions: bool,
}

/// The answer to one call, with the intention that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// True when the call is allowed.
    pub allowed: bool,
    /// The index (in [`IntentionSet::intentions`]) of the deciding intention; `None` when
    /// no intention matched (default deny).
    pub intention: Option<usize>,
    /// For an allow by an L7 intention, the permission that matched.
    pub permission: Option<usize>,
    /// Why, for people: `allowed by intention orders -> payments (POST /charge)`.
    pub reason: String,
    /// The policy engine's decision, with the statements that decided it.
    pub decision: Decision,
}

impl IntentionSet {
    /// Validates and compiles `intentions` for `trust_domain`.
    pub fn new(
        intentions: Vec<Intention>,
        trust_domain: &str,
    ) -> Result<IntentionSet, IntentionError> {
        let policy = compile(&intentions, trust_domain)?;
        let mut set = PolicySet::new();
        set.add(CompiledPolicy::new(
            POLICY_NAME,
            PolicyKind::Resource,
            &policy,
        )?);
        let by_pair = intentions
            .iter()
            .enumerate()
            .map(|(i, it)| ((it.source.clone(), it.destination.clone()), i))
            .collect();
        let has_permissions = intentions.iter().any(|it| !it.permissions.is_empty());
        Ok(IntentionSet {
            intentions,
            policy,
            set,
            by_pair,
            has_permissions,
        })
    }

    /// The intentions, as given.
    pub fn intentions(&self) -> &[Intention] {
        &self.intentions
    }

    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The compiled policy set, for evaluating together with other policies.
    pub fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// The intention a compiled statement's Sid names.
    pub fn intention_of_sid(&self, sid: &str) -> Option<usize> {
        let parts = parse_sid(sid)?;
        self.by_pair
            .get(&(parts.source.to_string(), parts.destination.to_string()))
            .copied()
    }

    /// Decides a call built with [`request`], and says which intention decided and why.
    ///
    /// An allow or an explicit deny is one evaluation. An implicit deny, when some intention
    /// has L7 permissions, also traces the policy to find the L7 intention that refused,
    /// which looks at every statement: a caller that needs only the answer can evaluate
    /// [`IntentionSet::policy_set`] directly.
    pub fn decide(&self, req: &Request) -> Verdict {
        let decision = self.set.evaluate(req);
        let source = req
            .context()
            .get(KEY_SOURCE_FUNCTION)
            .and_then(|v| v.as_slice().first().cloned())
            .unwrap_or_else(|| match req.principal() {
                Some(Principal::Spiffe(id)) => id.clone(),
                Some(other) => other.to_string(),
                None => "an anonymous caller".into(),
            });
        let destination = req
            .resource()
            .strip_prefix(RESOURCE_PREFIX)
            .unwrap_or(req.resource())
            .to_string();
        let first = decision
            .matched
            .first()
            .and_then(|m| m.sid.as_deref())
            .map(|sid| {
                (
                    self.intention_of_sid(sid),
                    parse_sid(sid).and_then(|p| p.permission),
                )
            });
        match (decision.outcome, first) {
            (Outcome::Allowed, Some((Some(i), permission))) => {
                let it = &self.intentions[i];
                let detail = permission
                    .and_then(|k| it.permissions.get(k))
                    .map(|p| format!(" ({})", p.summary()))
                    .unwrap_or_default();
                Verdict {
                    allowed: true,
                    intention: Some(i),
                    permission,
                    reason: format!("allowed by intention {}{detail}", it.label()),
                    decision,
                }
            }
            (Outcome::ExplicitDeny, Some((Some(i), _))) => Verdict {
                allowed: false,
                intention: Some(i),
                permission: None,
                reason: format!("denied by intention {}", self.intentions[i].label()),
                decision,
            },
            _ => {
                let l7 = self.l7_miss(req);
                let reason = match l7 {
                    Some(i) => {
                        let it = &self.intentions[i];
                        let allowed: Vec<String> =
                            it.permissions.iter().map(Permission::summary).collect();
                        let method = req
                            .context()
                            .get(KEY_METHOD)
                            .and_then(|v| v.as_slice().first().cloned());
                        let path = req
                            .context()
                            .get(KEY_PATH)
                            .and_then(|v| v.as_slice().first().cloned());
                        let this = [method, path].into_iter().flatten().collect::<Vec<_>>();
                        let this = if this.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", this.join(" "))
                        };
                        format!(
                            "denied: intention {} allows only {}, and this request{this} matches \
                             none of them",
                            it.label(),
                            allowed.join("; ")
                        )
                    }
                    None => format!(
                        "denied: no intention allows {source} to call {destination} (default deny)"
                    ),
                };
                Verdict {
                    allowed: false,
                    intention: l7,
                    permission: None,
                    reason,
                    decision,
                }
            }
        }
    }

    /// For an implicit deny: the L7 intention whose source and destination matched but whose
    /// permissions did not, found from the engine's trace (its first failing condition is an
    /// L7 one, so principal, resource and every exclusion held).
    fn l7_miss(&self, req: &Request) -> Option<usize> {
        if !self.has_permissions {
            return None;
        }
        let explanation = self.set.explain(req);
        explanation.statements.iter().find_map(|t| match &t.miss {
            Some(StatementMiss::Condition { key, .. })
                if key.eq_ignore_ascii_case(KEY_METHOD)
                    || key.eq_ignore_ascii_case(KEY_PATH)
                    || key
                        .to_ascii_lowercase()
                        .starts_with(&KEY_HEADER_PREFIX.to_ascii_lowercase()) =>
            {
                self.intention_of_sid(t.statement.sid.as_deref()?)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(s: &str, d: &str) -> Intention {
        Intention::new(s, d, IntentionAction::Allow)
    }
    fn deny(s: &str, d: &str) -> Intention {
        Intention::new(s, d, IntentionAction::Deny)
    }
    fn l7(s: &str, d: &str, permissions: Vec<Permission>) -> Intention {
        Intention {
            permissions,
            ..allow(s, d)
        }
    }
    fn id(name: &str) -> String {
        format!("spiffe://example.org/fn/{name}")
    }
    fn call(set: &IntentionSet, s: &str, d: &str, method: &str, path: &str) -> Verdict {
        set.decide(&request(&id(s), d, Some(method), Some(path), []))
    }
    fn set(v: Vec<Intention>) -> IntentionSet {
        IntentionSet::new(v, "example.org").unwrap()
    }

    #[test]
    fn exact_destination_beats_wildcard_destination() {
        // `S -> *` is less specific than `* -> D`: exact destination wins first.
        let s = set(vec![allow("orders", "*"), deny("*", "payments")]);
        let v = call(&s, "orders", "payments", "GET", "/");
        assert!(!v.allowed);
        assert_eq!(v.intention, Some(1));
        assert!(call(&s, "orders", "billing", "GET", "/").allowed);
        assert!(!call(&s, "billing", "inventory", "GET", "/").allowed);
    }

    #[test]
    fn the_most_specific_intention_wins() {
        let s = set(vec![
            deny("*", "*"),
            allow("*", "payments"),
            deny("orders", "*"),
            deny("billing", "payments"),
            allow("orders", "payments"),
        ]);
        assert!(call(&s, "orders", "payments", "GET", "/").allowed);
        assert!(!call(&s, "billing", "payments", "GET", "/").allowed);
        assert!(call(&s, "search", "payments", "GET", "/").allowed);
        assert!(!call(&s, "orders", "inventory", "GET", "/").allowed);
        assert!(!call(&s, "search", "inventory", "GET", "/").allowed);
        let v = call(&s, "search", "payments", "GET", "/");
        assert_eq!(v.intention, Some(1));
        assert_eq!(v.reason, "allowed by intention * -> payments");
    }

    #[test]
    fn wildcard_to_wildcard_yields_to_every_exact_pair() {
        // `orders -> payments` is the only other intention: `* -> *` must not deny it,
        // and must still decide every other call to payments.
        let s = set(vec![deny("*", "*"), allow("orders", "payments")]);
        assert!(call(&s, "orders", "payments", "GET", "/").allowed);
        let v = call(&s, "billing", "payments", "GET", "/");
        assert!(!v.allowed);
        assert_eq!(v.intention, Some(0));
        assert_eq!(v.reason, "denied by intention * -> *");
        let s = set(vec![allow("*", "*"), deny("orders", "payments")]);
        assert!(!call(&s, "orders", "payments", "GET", "/").allowed);
        assert!(call(&s, "billing", "payments", "GET", "/").allowed);
        assert!(call(&s, "orders", "billing", "GET", "/").allowed);
    }

    #[test]
    fn l7_permissions_do_not_fall_through() {
        let charge = Permission {
            methods: vec!["POST".into()],
            path_exact: Some("/charge".into()),
            ..Permission::default()
        };
        let s = set(vec![
            allow("*", "payments"),
            l7("orders", "payments", vec![charge]),
        ]);
        let v = call(&s, "orders", "payments", "POST", "/charge");
        assert!(v.allowed);
        assert_eq!(
            v.reason,
            "allowed by intention orders -> payments (POST /charge)"
        );
        assert_eq!(v.permission, Some(0));
        // GET is not in the permission; the lower `* -> payments` allow must not apply.
        let v = call(&s, "orders", "payments", "GET", "/charge");
        assert!(!v.allowed);
        assert_eq!(v.intention, Some(1));
        assert_eq!(
            v.reason,
            "denied: intention orders -> payments allows only POST /charge, and this request \
             (GET /charge) matches none of them"
        );
        assert!(!call(&s, "orders", "payments", "POST", "/charge/x").allowed);
        assert!(call(&s, "billing", "payments", "GET", "/anything").allowed);
    }

    #[test]
    fn path_prefixes_and_literal_wildcards() {
        let p = |prefix: &str| Permission {
            path_prefix: Some(prefix.into()),
            ..Permission::default()
        };
        let s = set(vec![l7("a", "b", vec![p("/v1/*x"), p("/$money?")])]);
        assert!(call(&s, "a", "b", "GET", "/v1/*x/y").allowed);
        assert!(!call(&s, "a", "b", "GET", "/v1/abcx/y").allowed);
        assert!(call(&s, "a", "b", "GET", "/$money?now").allowed);
        assert!(!call(&s, "a", "b", "GET", "/$moneyX").allowed);
        let exact = Permission {
            path_exact: Some("/${aws:username}".into()),
            ..Permission::default()
        };
        let s = set(vec![l7("a", "b", vec![exact])]);
        assert!(call(&s, "a", "b", "GET", "/${aws:username}").allowed);
        assert!(!call(&s, "a", "b", "GET", "/").allowed);
    }

    #[test]
    fn headers_present_exact_prefix() {
        let h = |name: &str, present: Option<bool>, exact: Option<&str>, prefix: Option<&str>| {
            HeaderMatch {
                name: name.into(),
                present,
                exact: exact.map(Into::into),
                prefix: prefix.map(Into::into),
            }
        };
        let perm = Permission {
            headers: vec![
                h("X-Env", None, Some("prod"), None),
                h("Authorization", Some(true), None, None),
                h("X-Debug", Some(false), None, None),
                h("User-Agent", None, None, Some("writ/")),
            ],
            ..Permission::default()
        };
        let s = set(vec![l7("a", "b", vec![perm])]);
        let go = |headers: &[(&str, &str)]| {
            s.decide(&request(
                &id("a"),
                "b",
                Some("GET"),
                Some("/"),
                headers.iter().copied(),
            ))
            .allowed
        };
        let good = [
            ("x-env", "prod"),
            ("authorization", "x"),
            ("user-agent", "writ/1"),
        ];
        assert!(go(&good));
        assert!(!go(&good[1..]));
        assert!(!go(&[("x-env", "prod"), ("user-agent", "writ/1")]));
        assert!(!go(&[
            ("X-ENV", "prod"),
            ("authorization", "x"),
            ("user-agent", "curl")
        ]));
        assert!(!go(&[
            ("x-env", "prod"),
            ("authorization", "x"),
            ("user-agent", "writ/1"),
            ("x-debug", "1")
        ]));
        assert!(!go(&[
            ("x-env", "Prod"),
            ("authorization", "x"),
            ("user-agent", "writ/1")
        ]));
    }

    #[test]
    fn callers_outside_the_trust_domain_or_not_functions_match_nothing() {
        let s = set(vec![allow("*", "*"), allow("orders", "payments")]);
        for who in [
            "spiffe://other.org/fn/orders",
            "spiffe://example.org/agent/x",
            "spiffe://example.org/fn/a/b",
        ] {
            let v = s.decide(&request(who, "payments", Some("GET"), Some("/"), []));
            assert!(!v.allowed, "{who}");
            assert_eq!(v.intention, None);
        }
    }

    #[test]
    fn default_deny_says_so() {
        let s = set(vec![allow("orders", "inventory")]);
        let v = call(&s, "orders", "payments", "GET", "/");
        assert!(!v.allowed);
        assert_eq!(v.intention, None);
        assert_eq!(
            v.reason,
            "denied: no intention allows orders to call payments (default deny)"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |it: Intention| validate_all(&[it]).unwrap_err().to_string();
        assert!(bad(allow("or ders", "b")).starts_with("intentions[0].source: \"or ders\""));
        assert!(bad(allow("a", "pay*")).contains("\"*\" may only stand alone"));
        let mut d = deny("a", "b");
        d.permissions.push(Permission {
            methods: vec!["GET".into()],
            ..Permission::default()
        });
        assert!(bad(d).starts_with("intentions[0].permissions: only allow"));
        let p = Permission {
            methods: vec!["GET".into(), "post".into()],
            ..Permission::default()
        };
        assert!(bad(l7("a", "b", vec![p])).starts_with(
            "intentions[0].permissions[0].methods[1]: \"post\" is not an HTTP method: methods \
             are upper case"
        ));
        let p = Permission {
            path_prefix: Some("charge".into()),
            ..Permission::default()
        };
        assert!(bad(l7("a", "b", vec![p])).starts_with("intentions[0].permissions[0].pathPrefix:"));
        let p = Permission {
            path_prefix: Some("/a".into()),
            path_exact: Some("/a".into()),
            ..Permission::default()
        };
        assert!(bad(l7("a", "b", vec![p])).starts_with("intentions[0].permissions[0].pathExact:"));
        assert!(
            bad(l7("a", "b", vec![Permission::default()]))
                .starts_with("intentions[0].permissions[0]: a permission must give")
        );
        let p = Permission {
            headers: vec![HeaderMatch {
                name: "x".into(),
                present: Some(true),
                exact: Some("y".into()),
                prefix: None,
            }],
            ..Permission::default()
        };
        assert!(
            bad(l7("a", "b", vec![p]))
                .starts_with("intentions[0].permissions[0].headers[0]: give exactly one")
        );
        let dup = validate_all(&[allow("a", "b"), deny("a", "b")]).unwrap_err();
        assert_eq!(dup.field, "intentions[1]");
        assert!(compile(&[], "Example.org").unwrap_err().field == "trustDomain");
        let e = serde_json::from_str::<Intention>(
            r#"{"source":"a","destination":"b","action":"allow","permissions":[{"path":"/"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `path`"), "{e}");
    }

    /// The example in docs/intentions.md, statement by statement.
    #[test]
    fn the_documented_example_compiles_as_shown() {
        let charge = Permission {
            methods: vec!["POST".into()],
            path_exact: Some("/charge".into()),
            ..Permission::default()
        };
        let policy = compile(
            &[
                deny("*", "payments"),
                allow("monitor", "*"),
                l7("orders", "payments", vec![charge]),
            ],
            "example.org",
        )
        .unwrap();
        /// (Sid, effect, principal, resource, conditions as (operator, key, values)).
        type Shown = (
            String,
            Effect,
            String,
            String,
            Vec<(String, String, Vec<String>)>,
        );
        let shown: Vec<Shown> = policy
            .statements
            .iter()
            .map(|st| {
                let Some(PrincipalElement {
                    principals: Principals::Named(named),
                    ..
                }) = &st.principal
                else {
                    panic!("a named principal")
                };
                (
                    st.sid.clone().unwrap(),
                    st.effect,
                    named[0].1[0].clone(),
                    st.resource.patterns[0].clone(),
                    st.conditions
                        .iter()
                        .map(|c| (c.operator.to_string(), c.key.clone(), c.values.clone()))
                        .collect(),
                )
            })
            .collect();
        let c = |op: &str, key: &str, v: &[&str]| {
            (
                op.to_string(),
                key.to_string(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        };
        assert_eq!(
            shown,
            vec![
                (
                    "orders->payments:permissions[0]".into(),
                    Effect::Allow,
                    "spiffe://example.org/fn/orders".into(),
                    "writ:fn/payments".into(),
                    vec![
                        c("StringEquals", "writ:Method", &["POST"]),
                        c("StringEquals", "writ:Path", &["/charge"]),
                    ],
                ),
                (
                    "*->payments".into(),
                    Effect::Deny,
                    "spiffe://example.org/fn/*".into(),
                    "writ:fn/payments".into(),
                    vec![
                        c("StringNotEquals", "writ:SourceFunction", &["orders"]),
                        c("Null", "writ:SourceFunction", &["false"]),
                    ],
                ),
                (
                    "monitor->*".into(),
                    Effect::Allow,
                    "spiffe://example.org/fn/monitor".into(),
                    "writ:fn/*".into(),
                    vec![c(
                        "StringNotEquals",
                        "writ:DestinationFunction",
                        &["payments"]
                    )],
                ),
            ]
        );
    }

    #[test]
    fn sids_round_trip() {
        let it = allow("a-", "b.c");
        let sid = statement_sid(&it, Some("x"), Some(3));
        assert_eq!(sid, "a-->b.c:destination=x:permissions[3]");
        let parts = parse_sid(&sid).unwrap();
        assert_eq!(
            (parts.source, parts.destination, parts.permission),
            ("a-", "b.c", Some(3))
        );
        assert!(parse_sid("Bootstrap").is_none());
        assert!(parse_sid("a->b:other").is_none());
    }

    #[test]
    fn serde_is_camel_case() {
        let text = r#"{"source":"orders","destination":"payments","action":"allow","permissions":[{"methods":["POST"],"pathPrefix":"/charge","headers":[{"name":"x-env","exact":"prod"}]}],"description":"checkout"}"#;
        let it: Intention = serde_json::from_str(text).unwrap();
        assert_eq!(it.permissions[0].path_prefix.as_deref(), Some("/charge"));
        assert_eq!(serde_json::to_string(&it).unwrap(), text);
    }
}
