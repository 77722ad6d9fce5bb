//! Intentions as data: the types, their JSON form, and their validation.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{HTTP_METHODS, MAX_DESCRIPTION_BYTES, MAX_NAME_BYTES, MAX_VALUE_BYTES};
use crate::compile::CompileError;

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

pub(super) fn check_trust_domain(td: &str) -> Result<(), IntentionError> {
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
