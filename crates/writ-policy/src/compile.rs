//! Compiled statements: patterns and condition values parsed once, matched many times.

use std::borrow::Cow;
use std::sync::Arc;

use crate::model::{
    Effect, PatternElement, Policy, PolicyKind, PrincipalKind, Principals, Statement,
};
use crate::operator::{Operator, OperatorKind, SetQualifier, ValueType};
use crate::pattern::{Pattern, Vars};
use crate::request::{ContextValue, Principal, Request};
use crate::values::{
    Decimal, IpBlock, parse_binary, parse_bool, parse_date, parse_ip, split_arn, split_arn_template,
};

/// A policy compiled for evaluation, with the name decisions refer to it by.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub(crate) name: Arc<str>,
    pub(crate) kind: PolicyKind,
    pub(crate) statements: Vec<CompiledStatement>,
}

impl CompiledPolicy {
    /// Compiles a checked policy. `name` identifies it in decisions and audit records.
    pub fn new(name: &str, kind: PolicyKind, policy: &Policy) -> CompiledPolicy {
        let expand = policy.effective_version() == crate::Version::V2012_10_17;
        let statements = policy
            .statements
            .iter()
            .enumerate()
            .map(|(i, st)| CompiledStatement::new(i, st, expand))
            .collect();
        CompiledPolicy {
            name: name.into(),
            kind,
            statements,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the policy is attached.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PatternSet {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<Pattern>,
}

impl PatternSet {
    fn new(e: &PatternElement, lowercase: bool, expand: bool) -> PatternSet {
        let patterns = e
            .patterns
            .iter()
            .map(|p| {
                let text = if lowercase {
                    Cow::Owned(p.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(p.as_str())
                };
                // Checked by the parser; a pattern that fails here matches nothing.
                Pattern::glob(&text, expand).unwrap_or_else(|_| never())
            })
            .collect();
        PatternSet {
            negated: e.negated,
            patterns,
        }
    }

    pub(crate) fn matches(&self, text: &str, vars: &dyn Vars) -> bool {
        self.patterns.iter().any(|p| p.matches(text, vars)) != self.negated
    }
}

/// A pattern that matches nothing (a string containing a NUL byte, which no name has).
fn never() -> Pattern {
    Pattern::literal("\0never\0", false)
        .unwrap_or_else(|_| unreachable!("a literal without variables always compiles"))
}

#[derive(Debug, Clone)]
enum PrincipalMatcher {
    Any,
    AwsAny,
    AwsAccount(Box<str>),
    AwsArn(Box<str>),
    Service(Box<str>),
    Federated(Box<str>),
    Canonical(Box<str>),
    Spiffe(Pattern),
}

/// How a principal matched: `Direct` when the statement names exactly the caller, which
/// matters for permissions boundaries (see [`crate::PolicySet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrincipalMatch {
    Direct,
    Indirect,
}

impl PrincipalMatcher {
    fn new(kind: PrincipalKind, v: &str) -> PrincipalMatcher {
        match kind {
            PrincipalKind::Aws if v == "*" => PrincipalMatcher::AwsAny,
            PrincipalKind::Aws => {
                if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
                    return PrincipalMatcher::AwsAccount(v.into());
                }
                match split_arn(v) {
                    Some(p) if p[2] == "iam" && p[5] == "root" => {
                        PrincipalMatcher::AwsAccount(p[4].into())
                    }
                    _ => PrincipalMatcher::AwsArn(v.into()),
                }
            }
            PrincipalKind::Service => PrincipalMatcher::Service(v.to_ascii_lowercase().into()),
            PrincipalKind::Federated => PrincipalMatcher::Federated(v.into()),
            PrincipalKind::CanonicalUser => PrincipalMatcher::Canonical(v.into()),
            PrincipalKind::Spiffe => {
                PrincipalMatcher::Spiffe(Pattern::glob(v, false).unwrap_or_else(|_| never()))
            }
        }
    }

    fn matches(&self, p: &Principal) -> Option<PrincipalMatch> {
        use PrincipalMatch::*;
        let hit = |b: bool, how: PrincipalMatch| b.then_some(how);
        match (self, p) {
            (PrincipalMatcher::Any, _) => Some(Indirect),
            // {"AWS": "*"} means the same as "*".
            (PrincipalMatcher::AwsAny, _) => Some(Indirect),
            (PrincipalMatcher::AwsAccount(acct), p @ Principal::Aws(_)) => {
                hit(p.aws_account() == Some(acct.as_ref()), Indirect)
            }
            (PrincipalMatcher::AwsArn(arn), Principal::Aws(id)) => {
                if arn.as_ref() == id {
                    Some(Direct)
                } else {
                    hit(role_session_of(arn, id), Indirect)
                }
            }
            (PrincipalMatcher::Service(s), Principal::Service(v)) => {
                hit(s.eq_ignore_ascii_case(v), Direct)
            }
            (PrincipalMatcher::Federated(s), Principal::Federated(v)) => {
                hit(s.as_ref() == v, Direct)
            }
            (PrincipalMatcher::Canonical(s), Principal::CanonicalUser(v)) => {
                hit(s.as_ref() == v, Direct)
            }
            (PrincipalMatcher::Spiffe(pat), Principal::Spiffe(id)) => {
                let how = if pat.exact().is_some() {
                    Direct
                } else {
                    Indirect
                };
                hit(pat.matches(id, &NoVars), how)
            }
            _ => None,
        }
    }
}

/// True when `session` (`arn:aws:sts::ACCT:assumed-role/NAME/SESSION`) is a session of
/// `role` (`arn:aws:iam::ACCT:role/PATH/NAME`).
fn role_session_of(role: &str, session: &str) -> bool {
    let (Some(r), Some(s)) = (split_arn(role), split_arn(session)) else {
        return false;
    };
    let Some(role_path) = r[5].strip_prefix("role/") else {
        return false;
    };
    let Some(session_rest) = s[5].strip_prefix("assumed-role/") else {
        return false;
    };
    let role_name = role_path.rsplit('/').next().unwrap_or(role_path);
    let session_role = session_rest.split('/').next().unwrap_or("");
    r[1] == s[1] && r[2] == "iam" && s[2] == "sts" && r[4] == s[4] && role_name == session_role
}

struct NoVars;
impl Vars for NoVars {
    fn var(&self, _: &str) -> Option<&str> {
        None
    }
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPrincipal {
    negated: bool,
    matchers: Vec<PrincipalMatcher>,
}

impl CompiledPrincipal {
    pub(crate) fn matches(&self, p: Option<&Principal>) -> Option<PrincipalMatch> {
        let p = p.unwrap_or(&Principal::Anonymous);
        let found = self
            .matchers
            .iter()
            .filter_map(|m| m.matches(p))
            .min_by_key(|m| match m {
                PrincipalMatch::Direct => 0,
                PrincipalMatch::Indirect => 1,
            });
        match (found, self.negated) {
            (Some(how), false) => Some(how),
            (None, true) => Some(PrincipalMatch::Indirect),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum CondValues {
    /// Literal (Equals) or glob (Like) patterns, per the operator.
    Str(Vec<Pattern>),
    /// Literal patterns compared ignoring case.
    StrIgnoreCase(Vec<Pattern>),
    /// Numbers, kept as text that [`Decimal::parse`] accepts (checked by the parser).
    Num(Vec<Box<str>>),
    Date(Vec<i128>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpBlock>),
    /// Six segment patterns, or one whole-value pattern when the value is not ARN-shaped.
    Arn(Vec<ArnPattern>),
    Null(Vec<bool>),
}

#[derive(Debug, Clone)]
enum ArnPattern {
    Segments(Box<[Pattern; 6]>),
    Whole(Pattern),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledCondition {
    pub(crate) operator: Operator,
    pub(crate) key: Box<str>,
    key_lower: Box<str>,
    values: CondValues,
}

/// Why a condition did or did not hold, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConditionOutcome {
    Holds,
    KeyMissing,
    NoMatch,
}

impl CompiledCondition {
    fn new(c: &crate::model::Condition, expand: bool) -> CompiledCondition {
        let kind = c.operator.kind;
        let positive = kind.positive();
        let vals = &c.values;
        let expand = expand && kind.expands_variables();
        let values = match kind.value_type() {
            ValueType::String => match positive {
                OperatorKind::StringLike => CondValues::Str(
                    vals.iter()
                        .map(|v| Pattern::glob(v, expand).unwrap_or_else(|_| never()))
                        .collect(),
                ),
                OperatorKind::StringEqualsIgnoreCase => CondValues::StrIgnoreCase(
                    vals.iter()
                        .map(|v| Pattern::literal(v, expand).unwrap_or_else(|_| never()))
                        .collect(),
                ),
                _ => CondValues::Str(
                    vals.iter()
                        .map(|v| Pattern::literal(v, expand).unwrap_or_else(|_| never()))
                        .collect(),
                ),
            },
            ValueType::Numeric => CondValues::Num(
                vals.iter()
                    .filter(|v| Decimal::parse(v).is_some())
                    .map(|v| v.as_str().into())
                    .collect(),
            ),
            ValueType::Date => {
                CondValues::Date(vals.iter().filter_map(|v| parse_date(v)).collect())
            }
            ValueType::Bool => {
                CondValues::Bool(vals.iter().filter_map(|v| parse_bool(v)).collect())
            }
            ValueType::Null => {
                CondValues::Null(vals.iter().filter_map(|v| parse_bool(v)).collect())
            }
            ValueType::Binary => {
                CondValues::Binary(vals.iter().filter_map(|v| parse_binary(v)).collect())
            }
            ValueType::Ip => {
                CondValues::Ip(vals.iter().filter_map(|v| IpBlock::parse(v)).collect())
            }
            ValueType::Arn => CondValues::Arn(
                vals.iter()
                    .map(|v| {
                        let seg = |s: &str| Pattern::glob(s, expand).unwrap_or_else(|_| never());
                        match split_arn_template(v) {
                            Some(parts) if parts[0] == "arn" => {
                                ArnPattern::Segments(Box::new(parts.map(seg)))
                            }
                            _ => ArnPattern::Whole(seg(v)),
                        }
                    })
                    .collect(),
            ),
        };
        CompiledCondition {
            operator: c.operator,
            key: c.key.as_str().into(),
            key_lower: c.key.to_ascii_lowercase().into(),
            values,
        }
    }

    /// True when one request value satisfies the positive form of the operator against any
    /// of the policy's values (a logical OR).
    fn positive_match(&self, v: &str, vars: &dyn Vars) -> bool {
        match &self.values {
            CondValues::Str(ps) => ps.iter().any(|p| p.matches(v, vars)),
            CondValues::StrIgnoreCase(ps) => ps.iter().any(|p| {
                p.resolve_literal(vars)
                    .is_some_and(|pv| eq_ignore_case(&pv, v))
            }),
            CondValues::Num(ns) => {
                let Some(x) = Decimal::parse(v) else {
                    return false;
                };
                ns.iter()
                    .filter_map(|n| Decimal::parse(n))
                    .any(|n| compare(self.operator.kind.positive(), x.cmp(&n)))
            }
            CondValues::Date(ds) => {
                let Some(x) = parse_date(v) else {
                    return false;
                };
                ds.iter()
                    .any(|d| compare(self.operator.kind.positive(), x.cmp(d)))
            }
            CondValues::Bool(bs) => parse_bool(v).is_some_and(|x| bs.contains(&x)),
            CondValues::Binary(bs) => parse_binary(v).is_some_and(|x| bs.contains(&x)),
            CondValues::Ip(blocks) => {
                parse_ip(v).is_some_and(|ip| blocks.iter().any(|b| b.contains(ip)))
            }
            CondValues::Arn(ps) => ps.iter().any(|p| match p {
                ArnPattern::Whole(p) => p.matches(v, vars),
                ArnPattern::Segments(segs) => split_arn(v).is_some_and(|parts| {
                    segs.iter()
                        .zip(parts)
                        .all(|(s, part)| s.matches(part, vars))
                }),
            }),
            // Null is decided on presence alone, before values are looked at.
            CondValues::Null(_) => false,
        }
    }

    /// One request value against the operator, negation included (a NOR for negated ones).
    fn single(&self, v: &str, vars: &dyn Vars) -> bool {
        self.positive_match(v, vars) != self.operator.kind.is_negated()
    }

    pub(crate) fn evaluate(&self, req: &Request) -> ConditionOutcome {
        let ctx = req.context();
        let values = ctx.get_lower(&self.key_lower).map(ContextValue::as_slice);
        let present = values.is_some_and(|v| !v.is_empty());
        if let CondValues::Null(expected) = &self.values {
            // "Null": true holds when the key is absent, false when it is present.
            let holds = expected.iter().any(|&absent| absent != present);
            return if holds {
                ConditionOutcome::Holds
            } else {
                ConditionOutcome::NoMatch
            };
        }
        let values = match values {
            Some(v) if !v.is_empty() => v,
            _ => {
                let holds = self.operator.if_exists
                    || match self.operator.set {
                        Some(SetQualifier::ForAllValues) => true,
                        Some(SetQualifier::ForAnyValue) => false,
                        None => self.operator.kind.is_negated(),
                    };
                return if holds {
                    ConditionOutcome::Holds
                } else {
                    ConditionOutcome::KeyMissing
                };
            }
        };
        let holds = match self.operator.set {
            Some(SetQualifier::ForAllValues) => values.iter().all(|v| self.single(v, ctx)),
            // Without a qualifier, a multivalued key is tested like ForAnyValue.
            Some(SetQualifier::ForAnyValue) | None => values.iter().any(|v| self.single(v, ctx)),
        };
        if holds {
            ConditionOutcome::Holds
        } else {
            ConditionOutcome::NoMatch
        }
    }
}

fn compare(op: OperatorKind, ord: std::cmp::Ordering) -> bool {
    use OperatorKind::*;
    use std::cmp::Ordering::*;
    match op {
        NumericEquals | DateEquals => ord == Equal,
        NumericLessThan | DateLessThan => ord == Less,
        NumericLessThanEquals | DateLessThanEquals => ord != Greater,
        NumericGreaterThan | DateGreaterThan => ord == Greater,
        NumericGreaterThanEquals | DateGreaterThanEquals => ord != Less,
        _ => false,
    }
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// A compiled statement.
#[derive(Debug, Clone)]
pub(crate) struct CompiledStatement {
    pub(crate) index: usize,
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<CompiledPrincipal>,
    pub(crate) actions: PatternSet,
    pub(crate) resources: PatternSet,
    pub(crate) conditions: Vec<CompiledCondition>,
}

/// The first element of a statement that did not match, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss {
    Principal,
    Action,
    Resource,
    Condition(usize, ConditionOutcome),
}

impl CompiledStatement {
    fn new(index: usize, st: &Statement, expand: bool) -> CompiledStatement {
        let principal = st.principal.as_ref().map(|p| CompiledPrincipal {
            negated: p.negated,
            matchers: match &p.principals {
                Principals::Any => vec![PrincipalMatcher::Any],
                Principals::Named(named) => named
                    .iter()
                    .flat_map(|(k, vs)| vs.iter().map(move |v| PrincipalMatcher::new(*k, v)))
                    .collect(),
            },
        });
        CompiledStatement {
            index,
            sid: st.sid.as_deref().map(Arc::from),
            effect: st.effect,
            principal,
            actions: PatternSet::new(&st.action, true, false),
            resources: PatternSet::new(&st.resource, false, expand),
            conditions: st
                .conditions
                .iter()
                .map(|c| CompiledCondition::new(c, expand))
                .collect(),
        }
    }

    /// Whether the statement applies to the request, and how the principal matched.
    pub(crate) fn applies(&self, req: &Request) -> Result<PrincipalMatch, Miss> {
        let how = match &self.principal {
            Some(p) => p.matches(req.principal()).ok_or(Miss::Principal)?,
            None => PrincipalMatch::Indirect,
        };
        if !self.actions.matches(req.action_lower(), req.context()) {
            return Err(Miss::Action);
        }
        if !self.resources.matches(req.resource(), req.context()) {
            return Err(Miss::Resource);
        }
        for (i, c) in self.conditions.iter().enumerate() {
            match c.evaluate(req) {
                ConditionOutcome::Holds => {}
                other => return Err(Miss::Condition(i, other)),
            }
        }
        Ok(how)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_sessions_match_their_role() {
        assert!(role_session_of(
            "arn:aws:iam::123456789012:role/team/deployer",
            "arn:aws:sts::123456789012:assumed-role/deployer/ci-42"
        ));
        assert!(!role_session_of(
            "arn:aws:iam::123456789012:role/deployer",
            "arn:aws:sts::999999999999:assumed-role/deployer/ci-42"
        ));
        assert!(!role_session_of(
            "arn:aws:iam::123456789012:role/deployer",
            "arn:aws:sts::123456789012:assumed-role/deployer2/ci"
        ));
    }
}
