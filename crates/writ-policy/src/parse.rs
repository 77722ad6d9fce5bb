//! From JSON text to a checked [`Policy`], with errors and warnings that name their place.
//!
//! The JSON is read strictly (RFC 8259: no comments, no trailing commas) by `jsonc-parser`,
//! which keeps the byte range of every value; this module walks that tree, builds the model
//! and reports every problem it finds, not only the first, each with its JSON path and its
//! line and column.

use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, CommentCollectionStrategy, ParseOptions as JsonOptions};

use crate::diagnostic::{Diagnostic, LineIndex, Severity, did_you_mean};
use crate::model::{
    Condition, Effect, PatternElement, Policy, PolicyKind, PrincipalElement, PrincipalKind,
    Principals, Statement, Version,
};
use crate::operator::{self, Operator, OperatorError, SetQualifier, ValueType};
use crate::pattern::Pattern;
use crate::values::{
    Decimal, IpBlock, parse_binary, parse_bool, parse_date, split_arn, split_arn_template,
};

/// The largest policy accepted by default, in bytes. AWS's own limits are 2 to 20 KB.
pub const DEFAULT_MAX_BYTES: usize = 128 * 1024;

/// The deepest JSON nesting accepted. A policy needs four levels.
const MAX_DEPTH: usize = 32;

/// How to read a policy.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Where the policy is attached; this decides whether `Principal` is required or refused.
    pub kind: PolicyKind,
    /// Texts longer than this are refused before parsing.
    pub max_bytes: usize,
}

impl ParseOptions {
    /// Options for a policy of the given kind, with the default size limit.
    pub fn new(kind: PolicyKind) -> ParseOptions {
        ParseOptions {
            kind,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The result of reading a policy: the policy when it has no errors, and every diagnostic.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The policy, present exactly when no diagnostic is an error.
    pub policy: Option<Policy>,
    /// Errors and warnings, in document order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// The policy, or the diagnostics when it has errors.
    pub fn into_result(self) -> Result<Policy, Vec<Diagnostic>> {
        self.policy.ok_or(self.diagnostics)
    }
}

/// Reads a policy from bytes, reporting invalid UTF-8 with its position.
pub fn parse_bytes(bytes: &[u8], options: &ParseOptions) -> Parsed {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, options),
        Err(e) => {
            let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
            let location = LineIndex::new(valid).location(valid.len());
            Parsed {
                policy: None,
                diagnostics: vec![Diagnostic {
                    severity: Severity::Error,
                    code: "invalid-utf8",
                    path: String::new(),
                    location,
                    message: format!(
                        "the text is not valid UTF-8 (byte offset {})",
                        e.valid_up_to()
                    ),
                }],
            }
        }
    }
}

/// Reads and checks a policy.
pub fn parse(text: &str, options: &ParseOptions) -> Parsed {
    let mut w = Walker {
        lines: LineIndex::new(text),
        diagnostics: Vec::new(),
        kind: options.kind,
        expand_vars: true,
    };
    let policy = w.document(text, options.max_bytes);
    let has_errors = w.diagnostics.iter().any(Diagnostic::is_error);
    w.diagnostics
        .sort_by_key(|d| (d.location.line, d.location.column));
    Parsed {
        policy: if has_errors { None } else { policy },
        diagnostics: w.diagnostics,
    }
}

/// A place in the document: a JSON path and the byte offset where it starts.
#[derive(Clone)]
struct At {
    path: String,
    offset: usize,
}

impl At {
    fn key(&self, key: &str, offset: usize) -> At {
        let simple = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let path = match (self.path.is_empty(), simple) {
            (true, true) => key.to_string(),
            (false, true) => format!("{}.{key}", self.path),
            (_, false) => format!("{}[{key:?}]", self.path),
        };
        At { path, offset }
    }

    fn index(&self, i: usize, offset: usize) -> At {
        At {
            path: format!("{}[{i}]", self.path),
            offset,
        }
    }
}

struct Walker<'t> {
    lines: LineIndex<'t>,
    diagnostics: Vec<Diagnostic>,
    kind: PolicyKind,
    expand_vars: bool,
}

const TOP_KEYS: [&str; 3] = ["Version", "Id", "Statement"];
const STATEMENT_KEYS: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::StringLit(_) => "a string",
        Value::NumberLit(_) => "a number",
        Value::BooleanLit(_) => "a boolean",
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::NullKeyword(_) => "null",
    }
}

impl<'t> Walker<'t> {
    fn report(&mut self, severity: Severity, code: &'static str, at: &At, message: String) {
        self.diagnostics.push(Diagnostic {
            severity,
            code,
            path: at.path.clone(),
            location: self.lines.location(at.offset),
            message,
        });
    }

    fn error(&mut self, code: &'static str, at: &At, message: impl Into<String>) {
        self.report(Severity::Error, code, at, message.into());
    }

    fn warn(&mut self, code: &'static str, at: &At, message: impl Into<String>) {
        self.report(Severity::Warning, code, at, message.into());
    }

    fn document(&mut self, text: &str, max_bytes: usize) -> Option<Policy> {
        let root = At {
            path: String::new(),
            offset: 0,
        };
        if text.len() > max_bytes {
            self.error(
                "too-large",
                &root,
                format!(
                    "the policy is {} bytes; the limit is {max_bytes} bytes (AWS's own policy \
                     size limits are 2 to 20 KB)",
                    text.len()
                ),
            );
            return None;
        }
        let json_options = JsonOptions {
            allow_comments: false,
            allow_loose_object_property_names: false,
            allow_trailing_commas: false,
            allow_missing_commas: false,
            allow_single_quoted_strings: false,
            allow_hexadecimal_numbers: false,
            allow_unary_plus_numbers: false,
            allow_bare_decimal_point_numbers: false,
            allow_non_finite_numbers: false,
            allow_extended_string_escapes: false,
        };
        let collect = CollectOptions {
            comments: CommentCollectionStrategy::Off,
            tokens: false,
        };
        if let Some(offset) = crate::nesting::first_deeper_than(text, MAX_DEPTH, b"[{", b"]}") {
            self.error(
                "too-deep",
                &At {
                    path: String::new(),
                    offset,
                },
                format!("JSON nesting is deeper than {MAX_DEPTH} levels; a policy needs four"),
            );
            return None;
        }
        let value = match jsonc_parser::parse_to_ast(text, &collect, &json_options) {
            Ok(parsed) => parsed.value,
            Err(e) => {
                let at = At {
                    path: String::new(),
                    offset: e.range().start,
                };
                self.error("json-syntax", &at, format!("invalid JSON: {}", e.kind()));
                return None;
            }
        };
        let Some(value) = value else {
            self.error("json-syntax", &root, "the document is empty");
            return None;
        };
        let Value::Object(obj) = &value else {
            self.error(
                "wrong-type",
                &root,
                format!("a policy must be a JSON object, not {}", type_name(&value)),
            );
            return None;
        };
        self.policy(obj, &root)
    }

    /// Checks an object's keys: reports duplicates and unknown keys, returns the known ones.
    fn known_props<'o, 'a>(
        &mut self,
        obj: &'o Object<'a>,
        at: &At,
        known: &[&str],
        what: &str,
    ) -> Vec<(&'o ObjectProp<'a>, At)> {
        let mut out: Vec<(&ObjectProp, At)> = Vec::new();
        for prop in &obj.properties {
            let name = prop.name.as_str();
            let here = at.key(name, prop.range.start);
            if out.iter().any(|(p, _)| p.name.as_str() == name) {
                self.error(
                    "duplicate-key",
                    &here,
                    format!("{name:?} appears twice in {what}; JSON parsers disagree on which wins, so writ refuses it"),
                );
                continue;
            }
            if !known.contains(&name) {
                let hint = did_you_mean(name, known)
                    .map(|s| format!(", did you mean {s:?}?"))
                    .unwrap_or_else(|| format!("; expected one of {}", known.join(", ")));
                self.error(
                    "unknown-element",
                    &here,
                    format!("unknown element {name:?} in {what}{hint}"),
                );
                continue;
            }
            out.push((prop, here));
        }
        out
    }

    fn policy(&mut self, obj: &Object, root: &At) -> Option<Policy> {
        let props = self.known_props(obj, root, &TOP_KEYS, "the policy");
        let mut version = None;
        let mut id = None;
        let mut statements = None;
        let mut version_at = None;
        for (prop, at) in &props {
            match prop.name.as_str() {
                "Version" => {
                    version_at = Some(at.clone());
                    version = self.version(&prop.value, at);
                }
                "Id" => id = self.string(&prop.value, at),
                _ => {}
            }
        }
        if version.is_none() && version_at.is_none() {
            self.warn(
                "missing-version",
                root,
                "no \"Version\": AWS evaluates the policy as 2008-10-17, where policy variables \
                 such as ${aws:username} are not expanded; add \"Version\": \"2012-10-17\"",
            );
        }
        if version == Some(Version::V2008_10_17)
            && let Some(at) = &version_at
        {
            self.warn(
                "old-version",
                at,
                "Version 2008-10-17 does not expand policy variables; use 2012-10-17",
            );
        }
        self.expand_vars = version == Some(Version::V2012_10_17);
        for (prop, at) in &props {
            if prop.name.as_str() == "Statement" {
                statements = self.statements(&prop.value, at);
            }
        }
        let Some(statements) = statements else {
            if !props.iter().any(|(p, _)| p.name.as_str() == "Statement") {
                self.error("missing-element", root, "the policy has no \"Statement\"");
            }
            return None;
        };
        Some(Policy {
            version,
            id,
            statements,
        })
    }

    fn version(&mut self, v: &Value, at: &At) -> Option<Version> {
        let s = self.string(v, at)?;
        match s.as_str() {
            "2012-10-17" => Some(Version::V2012_10_17),
            "2008-10-17" => Some(Version::V2008_10_17),
            _ => {
                self.error(
                    "invalid-version",
                    at,
                    format!("unknown Version {s:?}; use \"2012-10-17\""),
                );
                None
            }
        }
    }

    fn string(&mut self, v: &Value, at: &At) -> Option<String> {
        match v {
            Value::StringLit(s) => Some(s.value.to_string()),
            other => {
                self.error(
                    "wrong-type",
                    at,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A string or a non-empty array of strings.
    fn string_list(&mut self, v: &Value, at: &At) -> Option<Vec<(String, At)>> {
        match v {
            Value::StringLit(s) => Some(vec![(s.value.to_string(), at.clone())]),
            Value::Array(arr) => {
                if arr.elements.is_empty() {
                    self.error(
                        "empty-array",
                        at,
                        "the array is empty; give at least one value",
                    );
                    return None;
                }
                let mut out = Vec::with_capacity(arr.elements.len());
                let mut ok = true;
                for (i, e) in arr.elements.iter().enumerate() {
                    let here = at.index(i, e.start());
                    match self.string(e, &here) {
                        Some(s) => out.push((s, here)),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            other => {
                self.error(
                    "wrong-type",
                    at,
                    format!(
                        "expected a string or an array of strings, found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    fn statements(&mut self, v: &Value, at: &At) -> Option<Vec<Statement>> {
        let items: Vec<(&Object, At)> = match v {
            Value::Object(o) => vec![(o, at.clone())],
            Value::Array(arr) => {
                let mut items = Vec::new();
                for (i, e) in arr.elements.iter().enumerate() {
                    let here = at.index(i, e.start());
                    match e {
                        Value::Object(o) => items.push((o, here)),
                        other => self.error(
                            "wrong-type",
                            &here,
                            format!("a statement must be an object, not {}", type_name(other)),
                        ),
                    }
                }
                if arr.elements.is_empty() {
                    self.warn(
                        "no-statements",
                        at,
                        "the policy has no statements, so it allows nothing",
                    );
                }
                items
            }
            other => {
                self.error(
                    "wrong-type",
                    at,
                    format!(
                        "\"Statement\" must be an object or an array of objects, not {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut sids: Vec<String> = Vec::new();
        for (obj, here) in items {
            if let Some(st) = self.statement(obj, &here) {
                if let Some(sid) = &st.sid {
                    if sids.contains(sid) {
                        self.error(
                            "duplicate-sid",
                            &here,
                            format!(
                                "Sid {sid:?} is used by an earlier statement; Sids must be unique"
                            ),
                        );
                    }
                    sids.push(sid.clone());
                }
                out.push(st);
            }
        }
        Some(out)
    }

    fn statement(&mut self, obj: &Object, at: &At) -> Option<Statement> {
        let props = self.known_props(obj, at, &STATEMENT_KEYS, "a statement");
        let find = |name: &str| props.iter().find(|(p, _)| p.name.as_str() == name);
        let mut ok = true;

        let sid = match find("Sid") {
            Some((p, here)) => match self.string(&p.value, here) {
                Some(s) => Some(s),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };

        let effect = match find("Effect") {
            Some((p, here)) => match self.string(&p.value, here).as_deref() {
                Some("Allow") => Some(Effect::Allow),
                Some("Deny") => Some(Effect::Deny),
                Some(other) => {
                    let hint = did_you_mean(other, &["Allow", "Deny"])
                        .map(|s| format!(", did you mean {s:?}?"))
                        .unwrap_or_else(|| "; use \"Allow\" or \"Deny\"".into());
                    self.error(
                        "invalid-effect",
                        here,
                        format!("unknown Effect {other:?}{hint}"),
                    );
                    None
                }
                None => None,
            },
            None => {
                self.error("missing-element", at, "the statement has no \"Effect\"");
                None
            }
        };

        let principal =
            self.principal_element(find("Principal"), find("NotPrincipal"), at, &mut ok);
        let action = self.pattern_element(find("Action"), find("NotAction"), at, "Action", &mut ok);
        let resource = self.pattern_element(
            find("Resource"),
            find("NotResource"),
            at,
            "Resource",
            &mut ok,
        );
        let conditions = match find("Condition") {
            Some((p, here)) => self.conditions(&p.value, here, &mut ok),
            None => Vec::new(),
        };

        let (Some(effect), Some(action), Some(resource), true) = (effect, action, resource, ok)
        else {
            return None;
        };
        let st = Statement {
            sid,
            effect,
            principal,
            action,
            resource,
            conditions,
        };
        self.statement_warnings(&st, at);
        Some(st)
    }

    fn principal_element(
        &mut self,
        principal: Option<&(&ObjectProp, At)>,
        not_principal: Option<&(&ObjectProp, At)>,
        at: &At,
        ok: &mut bool,
    ) -> Option<PrincipalElement> {
        let (prop, here, negated) = match (principal, not_principal) {
            (Some(_), Some((_, here))) => {
                self.error(
                    "conflicting-elements",
                    here,
                    "a statement may have \"Principal\" or \"NotPrincipal\", not both",
                );
                *ok = false;
                return None;
            }
            (Some((p, h)), None) => (p, h, false),
            (None, Some((p, h))) => (p, h, true),
            (None, None) => {
                if self.kind.requires_principal() {
                    self.error(
                        "missing-element",
                        at,
                        "a resource-based policy statement must name a \"Principal\" or \"NotPrincipal\"",
                    );
                    *ok = false;
                }
                return None;
            }
        };
        if !self.kind.requires_principal() {
            let name = if negated { "NotPrincipal" } else { "Principal" };
            self.error(
                "unexpected-principal",
                here,
                format!(
                    "{} policies apply to whoever they are attached to and cannot name a \
                     {name:?}; remove it, or validate this as a resource policy",
                    self.kind
                ),
            );
            *ok = false;
            return None;
        }
        let principals = match &prop.value {
            Value::StringLit(s) if s.value == "*" => Principals::Any,
            Value::Object(obj) => {
                let keys: Vec<&str> = PrincipalKind::ALL.iter().map(|k| k.as_str()).collect();
                let props = self.known_props(obj, here, &keys, "a principal");
                if props.len() != obj.properties.len() {
                    *ok = false;
                }
                if obj.properties.is_empty() {
                    self.error("empty-principal", here, "the principal map is empty");
                    *ok = false;
                }
                let mut named = Vec::new();
                for (p, h) in props {
                    let kind = PrincipalKind::ALL
                        .into_iter()
                        .find(|k| k.as_str() == p.name.as_str())
                        .unwrap_or(PrincipalKind::Aws);
                    match self.string_list(&p.value, &h) {
                        Some(values) => {
                            for (v, vh) in &values {
                                self.check_principal_value(kind, v, vh, ok);
                            }
                            named.push((kind, values.into_iter().map(|(v, _)| v).collect()));
                        }
                        None => *ok = false,
                    }
                }
                Principals::Named(named)
            }
            other => {
                let found = match other {
                    Value::StringLit(s) => format!("the string {:?}", s.value),
                    other => type_name(other).to_string(),
                };
                self.error(
                    "invalid-principal",
                    here,
                    format!(
                        "a principal must be \"*\" or an object such as {{\"AWS\": \"arn:...\"}} \
                         or {{\"SPIFFE\": \"spiffe://...\"}}, not {found}"
                    ),
                );
                *ok = false;
                return None;
            }
        };
        Some(PrincipalElement {
            negated,
            principals,
        })
    }

    fn check_principal_value(&mut self, kind: PrincipalKind, v: &str, at: &At, ok: &mut bool) {
        let has_wildcard = v.contains(['*', '?']);
        match kind {
            PrincipalKind::Aws => {
                if v == "*" {
                    return;
                }
                if has_wildcard {
                    self.error(
                        "wildcard-principal",
                        at,
                        format!(
                            "AWS principals cannot contain wildcards ({v:?}); name the principal, \
                             or use \"*\" with a condition such as aws:PrincipalArn"
                        ),
                    );
                    *ok = false;
                    return;
                }
                let account_id = crate::values::is_account_id(v);
                let arn_ok = split_arn(v).is_some_and(|p| {
                    p[0] == "arn" && (p[2] == "iam" || p[2] == "sts") && !p[4].is_empty()
                });
                if !account_id && !arn_ok {
                    self.warn(
                        "principal-format",
                        at,
                        format!("{v:?} is neither a 12-digit account id nor an IAM or STS ARN"),
                    );
                }
            }
            PrincipalKind::Service => {
                if has_wildcard {
                    self.error(
                        "wildcard-principal",
                        at,
                        format!("service principals cannot contain wildcards ({v:?})"),
                    );
                    *ok = false;
                } else if !v.contains('.') {
                    self.warn(
                        "principal-format",
                        at,
                        format!("{v:?} does not look like a service principal such as lambda.amazonaws.com"),
                    );
                }
            }
            PrincipalKind::Spiffe => {
                let valid = v
                    .strip_prefix("spiffe://")
                    .and_then(|rest| rest.split('/').next())
                    .is_some_and(|td| !td.is_empty());
                if !valid {
                    self.error(
                        "principal-format",
                        at,
                        format!("{v:?} is not a SPIFFE ID: write spiffe://trust-domain/path"),
                    );
                    *ok = false;
                }
            }
            PrincipalKind::Federated | PrincipalKind::CanonicalUser => {
                if has_wildcard {
                    self.error(
                        "wildcard-principal",
                        at,
                        format!("{kind} principals cannot contain wildcards ({v:?})"),
                    );
                    *ok = false;
                }
            }
        }
    }

    fn pattern_element(
        &mut self,
        plain: Option<&(&ObjectProp, At)>,
        negated: Option<&(&ObjectProp, At)>,
        at: &At,
        name: &str,
        ok: &mut bool,
    ) -> Option<PatternElement> {
        let (prop, here, neg) = match (plain, negated) {
            (Some(_), Some((_, here))) => {
                self.error(
                    "conflicting-elements",
                    here,
                    format!("a statement may have \"{name}\" or \"Not{name}\", not both"),
                );
                *ok = false;
                return None;
            }
            (Some((p, h)), None) => (p, h, false),
            (None, Some((p, h))) => (p, h, true),
            (None, None) => {
                // AWS role trust policies omit Resource; writ has no roles to trust, and a
                // resource policy without one would grant on every resource of a policy set.
                self.error(
                    "missing-element",
                    at,
                    format!("the statement has no \"{name}\" or \"Not{name}\""),
                );
                *ok = false;
                return None;
            }
        };
        let Some(values) = self.string_list(&prop.value, here) else {
            *ok = false;
            return None;
        };
        for (v, vh) in &values {
            if name == "Action" {
                self.check_action(v, vh, ok);
            } else {
                self.check_resource(v, vh, ok);
            }
        }
        Some(PatternElement {
            negated: neg,
            patterns: values.into_iter().map(|(v, _)| v).collect(),
        })
    }

    fn check_action(&mut self, v: &str, at: &At, ok: &mut bool) {
        if v == "*" {
            return;
        }
        // AWS service prefixes are letters, digits and '-'; action names letters and digits.
        // Anything else (a stray space) would silently never match.
        let valid = v.split_once(':').is_some_and(|(service, action)| {
            let wild = |b: u8| b == b'*' || b == b'?';
            !service.is_empty()
                && service
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || wild(b))
                && !action.is_empty()
                && action.bytes().all(|b| b.is_ascii_alphanumeric() || wild(b))
        });
        if !valid {
            self.error(
                "action-format",
                at,
                format!(
                    "{v:?} is not an action: write service:Action, such as s3:GetObject, or \"*\""
                ),
            );
            *ok = false;
        }
    }

    fn check_resource(&mut self, v: &str, at: &At, ok: &mut bool) {
        if let Err(e) = Pattern::glob(v, self.expand_vars) {
            self.error("invalid-variable", at, e.to_string());
            *ok = false;
            return;
        }
        if !self.expand_vars && v.contains("${") {
            self.warn(
                "variable-not-expanded",
                at,
                format!(
                    "{v:?} looks like it uses a policy variable, but variables are expanded only \
                     with \"Version\": \"2012-10-17\""
                ),
            );
        }
        // writ's own resources are named `writ:...` (secrets, tokens, the CA) or by SPIFFE ID.
        if v == "*" || v.starts_with("spiffe://") || v.starts_with("writ:") {
            return;
        }
        match split_arn(v) {
            Some(p) if p[0] == "arn" && !p[1].is_empty() && !p[2].is_empty() => {}
            _ => self.warn(
                "malformed-arn",
                at,
                format!("{v:?} is not an ARN (arn:partition:service:region:account:resource)"),
            ),
        }
    }

    fn conditions(&mut self, v: &Value, at: &At, ok: &mut bool) -> Vec<Condition> {
        let Value::Object(block) = v else {
            self.error(
                "wrong-type",
                at,
                format!("\"Condition\" must be an object, not {}", type_name(v)),
            );
            *ok = false;
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut seen_ops: Vec<&str> = Vec::new();
        for prop in &block.properties {
            let op_name = prop.name.as_str();
            let op_at = at.key(op_name, prop.range.start);
            if seen_ops.contains(&op_name) {
                self.error(
                    "duplicate-key",
                    &op_at,
                    format!(
                        "operator {op_name:?} appears twice in the condition block; merge its keys"
                    ),
                );
                *ok = false;
                continue;
            }
            seen_ops.push(op_name);
            let operator = match Operator::parse(op_name) {
                Ok(op) => op,
                Err(e) => {
                    let msg = match e {
                        OperatorError::Unknown => {
                            let refs: Vec<&str> =
                                operator::all_spellings().iter().map(String::as_str).collect();
                            match did_you_mean(op_name, &refs) {
                                Some(s) => format!("unknown operator {op_name:?}, did you mean {s:?}?"),
                                None => format!("unknown operator {op_name:?}"),
                            }
                        }
                        OperatorError::NullIfExists => {
                            "\"Null\" cannot take \"IfExists\": Null already tests whether the key exists".into()
                        }
                        OperatorError::QualifiedNull => {
                            "\"Null\" cannot take ForAllValues: or ForAnyValue:".into()
                        }
                    };
                    let here = At {
                        path: at.path.clone(),
                        offset: prop.range.start,
                    };
                    self.error("unknown-operator", &here, msg);
                    *ok = false;
                    continue;
                }
            };
            let Value::Object(keys) = &prop.value else {
                self.error(
                    "wrong-type",
                    &op_at,
                    format!(
                        "the operator {op_name:?} must map condition keys to values, not be {}",
                        type_name(&prop.value)
                    ),
                );
                *ok = false;
                continue;
            };
            if keys.properties.is_empty() {
                self.error(
                    "empty-condition",
                    &op_at,
                    format!("the operator {op_name:?} has no keys"),
                );
                *ok = false;
            }
            let mut seen_keys: Vec<String> = Vec::new();
            for kp in &keys.properties {
                let key = kp.name.as_str();
                let key_at = op_at.key(key, kp.range.start);
                let key_lower = key.to_ascii_lowercase();
                if seen_keys.contains(&key_lower) {
                    self.error(
                        "duplicate-key",
                        &key_at,
                        format!("condition key {key:?} appears twice under {op_name:?} (keys ignore case)"),
                    );
                    *ok = false;
                    continue;
                }
                seen_keys.push(key_lower);
                self.check_condition_key(key, &key_at);
                let Some(values) = self.condition_values(&kp.value, &key_at) else {
                    *ok = false;
                    continue;
                };
                let mut values_ok = true;
                for (val, vat) in &values {
                    values_ok &= self.check_condition_value(operator, val, vat);
                }
                *ok &= values_ok;
                out.push(Condition {
                    operator,
                    key: key.to_string(),
                    values: values.into_iter().map(|(v, _)| v).collect(),
                });
            }
        }
        out
    }

    /// Condition values: a string, number or boolean, or a non-empty array of them.
    fn condition_values(&mut self, v: &Value, at: &At) -> Option<Vec<(String, At)>> {
        let scalar = |v: &Value| -> Option<String> {
            match v {
                Value::StringLit(s) => Some(s.value.to_string()),
                Value::NumberLit(n) => Some(n.value.to_string()),
                Value::BooleanLit(b) => Some(b.value.to_string()),
                _ => None,
            }
        };
        match v {
            Value::Array(arr) => {
                if arr.elements.is_empty() {
                    self.error(
                        "empty-array",
                        at,
                        "the condition has no values; give at least one",
                    );
                    return None;
                }
                let mut out = Vec::new();
                for (i, e) in arr.elements.iter().enumerate() {
                    let here = at.index(i, e.start());
                    match scalar(e) {
                        Some(s) => out.push((s, here)),
                        None => {
                            self.error(
                                "wrong-type",
                                &here,
                                format!(
                                    "a condition value must be a string, number or boolean, not {}",
                                    type_name(e)
                                ),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            other => match scalar(other) {
                Some(s) => Some(vec![(s, at.clone())]),
                None => {
                    self.error(
                        "wrong-type",
                        at,
                        format!(
                            "a condition value must be a string, number, boolean or an array of them, not {}",
                            type_name(other)
                        ),
                    );
                    None
                }
            },
        }
    }

    fn check_condition_key(&mut self, key: &str, at: &At) {
        let Some((prefix, name)) = key.split_once(':') else {
            self.warn(
                "condition-key-format",
                at,
                format!("condition key {key:?} has no service prefix (such as aws:)"),
            );
            return;
        };
        if !prefix.eq_ignore_ascii_case("aws") {
            return;
        }
        let lower = name.to_ascii_lowercase();
        let tag_prefixes = ["principaltag/", "requesttag/", "resourcetag/"];
        if tag_prefixes
            .iter()
            .any(|p| lower.starts_with(p) && lower.len() > p.len())
        {
            return;
        }
        if GLOBAL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            return;
        }
        let full: Vec<String> = GLOBAL_KEYS.iter().map(|k| format!("aws:{k}")).collect();
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let hint = did_you_mean(key, &refs)
            .map(|s| format!(", did you mean {s:?}?"))
            .unwrap_or_default();
        self.warn(
            "unknown-global-key",
            at,
            format!("{key:?} is not an AWS global condition key{hint}"),
        );
    }

    /// Checks one value against its operator's type; returns false on an error.
    fn check_condition_value(&mut self, op: Operator, v: &str, at: &At) -> bool {
        let bad = |what: &str| format!("{v:?} is not {what}, as {} requires", op.kind.name());
        let message = match op.kind.value_type() {
            ValueType::String => match Pattern::glob(v, self.expand_vars) {
                Ok(_) => None,
                Err(e) => Some(("invalid-variable", e.to_string())),
            },
            ValueType::Arn => match Pattern::glob(v, self.expand_vars) {
                Err(e) => Some(("invalid-variable", e.to_string())),
                Ok(_) => {
                    if v != "*" && split_arn_template(v).is_none_or(|p| p[0] != "arn") {
                        self.warn(
                            "malformed-arn",
                            at,
                            format!(
                                "{v:?} is not an ARN, so {} never matches it as one",
                                op.kind.name()
                            ),
                        );
                    }
                    None
                }
            },
            ValueType::Numeric => Decimal::parse(v)
                .is_none()
                .then(|| ("invalid-value", bad("a number"))),
            ValueType::Date => parse_date(v)
                .is_none()
                .then(|| ("invalid-value", bad("an ISO 8601 date or epoch seconds"))),
            ValueType::Bool | ValueType::Null => parse_bool(v)
                .is_none()
                .then(|| ("invalid-value", bad("true or false"))),
            ValueType::Binary => parse_binary(v)
                .is_none()
                .then(|| ("invalid-value", bad("base64"))),
            ValueType::Ip => IpBlock::parse(v)
                .is_none()
                .then(|| ("invalid-value", bad("an IP address or CIDR block"))),
        };
        match message {
            Some((code, msg)) => {
                self.error(code, at, msg);
                false
            }
            None => true,
        }
    }

    fn statement_warnings(&mut self, st: &Statement, at: &At) {
        let allow = st.effect == Effect::Allow;
        let any_resource = !st.resource.negated && st.resource.patterns.iter().any(|p| p == "*");
        let action_any = !st.action.negated && st.action.patterns.iter().any(|p| p == "*");
        if allow && action_any && any_resource && st.conditions.is_empty() {
            self.warn(
                "allow-all",
                at,
                "this statement allows every action on every resource; grant only the actions \
                 and resources the function needs",
            );
        } else if allow && any_resource && st.conditions.is_empty() {
            for p in &st.action.patterns {
                if !st.action.negated && p.ends_with(":*") {
                    self.warn(
                        "service-wildcard",
                        at,
                        format!(
                            "this statement allows every {} action on every resource",
                            &p[..p.len() - 2]
                        ),
                    );
                }
            }
        }
        if allow && st.action.negated {
            self.warn(
                "allow-not-action",
                at,
                "Allow with NotAction grants every action not listed, including ones AWS adds later; list the actions to allow instead",
            );
        }
        if allow && st.resource.negated {
            self.warn(
                "allow-not-resource",
                at,
                "Allow with NotResource grants every resource not listed; list the resources to allow instead",
            );
        }
        if allow && st.principal.as_ref().is_some_and(|p| p.negated) {
            self.error(
                "allow-not-principal",
                at,
                "AWS does not support NotPrincipal with Allow (it would grant everyone not \
                 listed, anonymous callers included); name the principals in Principal",
            );
        }
        let never = st.action.negated && st.action.patterns.iter().any(|p| p == "*")
            || st.resource.negated && st.resource.patterns.iter().any(|p| p == "*");
        if never {
            self.warn(
                "never-matches",
                at,
                "this statement can never match: it excludes every action or every resource",
            );
        }
        // ForAllValues on a key the statement does not also require present (Null: false).
        let required_present = |key: &str| {
            st.conditions.iter().any(|c| {
                c.operator.kind == crate::OperatorKind::Null
                    && c.key.eq_ignore_ascii_case(key)
                    && c.values.iter().all(|v| v.eq_ignore_ascii_case("false"))
            })
        };
        if allow
            && st.conditions.iter().any(|c| {
                c.operator.set == Some(SetQualifier::ForAllValues) && !required_present(&c.key)
            })
        {
            self.warn(
                "forallvalues-with-allow",
                at,
                "ForAllValues is true when the key is absent, so this Allow also applies to requests without the key; add a Null condition with \"false\" for it",
            );
        }
        if let Some(p) = &st.principal {
            let guarded = st.conditions.iter().any(|c| {
                let k = c.key.to_ascii_lowercase();
                matches!(
                    k.as_str(),
                    "aws:sourcearn"
                        | "aws:sourceaccount"
                        | "aws:sourceorgid"
                        | "aws:sourceorgpaths"
                )
            });
            if let (false, Principals::Named(named), true) = (p.negated, &p.principals, allow)
                && !guarded
                && named.iter().any(|(k, _)| *k == PrincipalKind::Service)
            {
                self.warn(
                    "confused-deputy",
                    at,
                    "this statement lets an AWS service act without an aws:SourceArn or \
                         aws:SourceAccount condition, so a resource in another account can use \
                         the service to reach yours (the confused deputy problem)",
                );
            }
            let public = !p.negated
                && match &p.principals {
                    Principals::Any => true,
                    Principals::Named(named) => named
                        .iter()
                        .any(|(k, v)| *k == PrincipalKind::Aws && v.iter().any(|v| v == "*")),
                };
            if allow && public && st.conditions.is_empty() {
                self.warn(
                    "public-access",
                    at,
                    "this statement allows anyone, including anonymous callers; name the principals or add conditions",
                );
            }
        }
    }
}

/// AWS global condition keys (after `aws:`), for spotting typos.
const GLOBAL_KEYS: &[&str] = &[
    "CalledVia",
    "CalledViaFirst",
    "CalledViaLast",
    "CurrentTime",
    "EpochTime",
    "FederatedProvider",
    "MultiFactorAuthAge",
    "MultiFactorAuthPresent",
    "PrincipalAccount",
    "PrincipalArn",
    "PrincipalIsAWSService",
    "PrincipalOrgID",
    "PrincipalOrgPaths",
    "PrincipalServiceName",
    "PrincipalServiceNamesList",
    "PrincipalType",
    "Referer",
    "RequestedRegion",
    "ResourceAccount",
    "ResourceOrgID",
    "ResourceOrgPaths",
    "SecureTransport",
    "SourceAccount",
    "SourceArn",
    "SourceIdentity",
    "SourceIp",
    "SourceOrgID",
    "SourceOrgPaths",
    "SourceVpc",
    "SourceVpcArn",
    "SourceVpce",
    "TagKeys",
    "TokenIssueTime",
    "UserAgent",
    "userid",
    "username",
    "ViaAWSService",
    "VpcSourceIp",
    "Ec2InstanceSourceVpc",
    "Ec2InstanceSourcePrivateIPv4",
    "AssumedRoot",
    "VpceAccount",
    "VpceOrgID",
    "VpceOrgPaths",
];
