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
    Decimal, IpBlock, is_account_id, parse_binary, parse_bool, parse_date, parse_ip, split_arn,
    split_arn_template,
};

/// Why a policy could not be compiled. [`crate::parse`] never produces such a policy; this
/// guards policies built or changed by hand, which are refused rather than half-compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Statement[{statement}]: {message}")]
pub struct CompileError {
    /// The index of the offending statement.
    pub statement: usize,
    /// What is wrong.
    pub message: String,
}

/// A policy compiled for evaluation, with the name decisions refer to it by.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub(crate) name: Arc<str>,
    pub(crate) kind: PolicyKind,
    pub(crate) statements: Vec<CompiledStatement>,
}

impl CompiledPolicy {
    /// Compiles a policy. `name` identifies it in decisions and audit records. A policy from
    /// [`crate::parse`] always compiles; one built by hand is refused if any element is
    /// invalid, so nothing is ever evaluated half-understood.
    pub fn new(
        name: &str,
        kind: PolicyKind,
        policy: &Policy,
    ) -> Result<CompiledPolicy, CompileError> {
        let expand = policy.effective_version() == crate::Version::V2012_10_17;
        let statements = policy
            .statements
            .iter()
            .enumerate()
            .map(|(i, st)| {
                CompiledStatement::new(i, st, kind, expand).map_err(|message| CompileError {
                    statement: i,
                    message,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledPolicy {
            name: name.into(),
            kind,
            statements,
        })
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
    fn new(e: &PatternElement, lowercase: bool, expand: bool) -> Result<PatternSet, String> {
        if e.patterns.is_empty() {
            return Err("an Action or Resource list is empty".into());
        }
        let patterns = e
            .patterns
            .iter()
            .map(|p| {
                let text = if lowercase {
                    Cow::Owned(p.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(p.as_str())
                };
                Pattern::glob(&text, expand).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        Ok(PatternSet {
            negated: e.negated,
            patterns,
        })
    }

    pub(crate) fn matches(&self, text: &str, vars: &dyn Vars) -> bool {
        self.patterns.iter().any(|p| p.matches(text, vars)) != self.negated
    }

    /// The first variable of these patterns with no value and no default.
    fn unresolved(&self, vars: &dyn Vars) -> Option<&str> {
        self.patterns.iter().find_map(|p| p.unresolved(vars))
    }
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

/// How a principal matched, which decides what a resource policy's allow is worth (see
/// [`crate::PolicySet`]): `Direct` when the statement names exactly the caller (it grants
/// even past a permissions boundary), `Indirect` when it names the caller through a role, a
/// wildcard or `*` (it grants within the boundary), `Account` when it names only the
/// caller's account (it grants nothing by itself: the account delegates to its identity
/// policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrincipalMatch {
    Direct,
    Indirect,
    Account,
}

impl PrincipalMatch {
    /// Orders matches from the strongest grant to the weakest.
    fn rank(self) -> u8 {
        match self {
            PrincipalMatch::Direct => 0,
            PrincipalMatch::Indirect => 1,
            PrincipalMatch::Account => 2,
        }
    }
}

impl PrincipalMatcher {
    fn new(kind: PrincipalKind, v: &str) -> Result<PrincipalMatcher, String> {
        let wildcard = v.contains(['*', '?']);
        Ok(match kind {
            PrincipalKind::Aws if v == "*" => PrincipalMatcher::AwsAny,
            PrincipalKind::Spiffe => {
                PrincipalMatcher::Spiffe(Pattern::glob(v, false).map_err(|e| e.to_string())?)
            }
            _ if wildcard => return Err(format!("{kind} principal {v:?} has a wildcard")),
            PrincipalKind::Aws => {
                if is_account_id(v) {
                    PrincipalMatcher::AwsAccount(v.into())
                } else {
                    match split_arn(v) {
                        Some(p) if p[2] == "iam" && p[5] == "root" => {
                            PrincipalMatcher::AwsAccount(p[4].into())
                        }
                        _ => PrincipalMatcher::AwsArn(v.into()),
                    }
                }
            }
            PrincipalKind::Service => PrincipalMatcher::Service(v.to_ascii_lowercase().into()),
            PrincipalKind::Federated => PrincipalMatcher::Federated(v.into()),
            PrincipalKind::CanonicalUser => PrincipalMatcher::Canonical(v.into()),
        })
    }

    /// For `NotPrincipal`: whether this entry names one level of the caller's identity chain.
    fn names_level(&self, level: &Level) -> bool {
        match (self, level) {
            (PrincipalMatcher::Any | PrincipalMatcher::AwsAny, _) => true,
            (PrincipalMatcher::AwsAccount(a), Level::Account(acct)) => a.as_ref() == *acct,
            (PrincipalMatcher::AwsArn(role), Level::RoleOf(session)) => {
                role_session_of(role, session)
            }
            (PrincipalMatcher::AwsArn(arn), Level::Exact(Principal::Aws(id))) => arn.as_ref() == id,
            (PrincipalMatcher::AwsArn(_), Level::Exact(_)) => false,
            // An account names its root user, and no other identity in it.
            (PrincipalMatcher::AwsAccount(a), Level::Exact(p @ Principal::Aws(id))) => {
                split_arn(id).is_some_and(|x| x[5] == "root") && p.aws_account() == Some(a)
            }
            (m, Level::Exact(p)) => m.matches(p).is_some(),
            _ => false,
        }
    }

    fn matches(&self, p: &Principal) -> Option<PrincipalMatch> {
        use PrincipalMatch::*;
        let hit = |b: bool, how: PrincipalMatch| b.then_some(how);
        match (self, p) {
            (PrincipalMatcher::Any, _) => Some(Indirect),
            // {"AWS": "*"} means the same as "*".
            (PrincipalMatcher::AwsAny, _) => Some(Indirect),
            // An account names its root user exactly, and delegates for everyone else in it.
            (PrincipalMatcher::AwsAccount(acct), p @ Principal::Aws(id)) => {
                let how = if is_account_root(id) { Direct } else { Account };
                hit(p.aws_account() == Some(acct.as_ref()), how)
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
pub(crate) fn role_session_of(role: &str, session: &str) -> bool {
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

/// True when an AWS principal is an account itself: its 12-digit id or its root ARN.
fn is_account_root(id: &str) -> bool {
    is_account_id(id) || split_arn(id).is_some_and(|p| p[2] == "iam" && p[5] == "root")
}

pub(crate) struct NoVars;
impl Vars for NoVars {
    fn var(&self, _: &str) -> Option<&str> {
        None
    }
}

/// One level of a caller's identity chain, as AWS checks `NotPrincipal`: the account, then
/// (for a role session) the role, then the caller itself.
enum Level<'a> {
    Account(&'a str),
    RoleOf(&'a str),
    Exact(&'a Principal),
}

fn identity_chain(p: &Principal) -> Vec<Level<'_>> {
    let mut chain = Vec::with_capacity(3);
    if let Principal::Aws(id) = p {
        if let Some(account) = p.aws_account() {
            chain.push(Level::Account(account));
        }
        if is_account_id(id) {
            return chain;
        }
        if split_arn(id).is_some_and(|a| a[2] == "sts" && a[5].starts_with("assumed-role/")) {
            chain.push(Level::RoleOf(id));
        }
    }
    chain.push(Level::Exact(p));
    chain
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPrincipal {
    negated: bool,
    matchers: Vec<PrincipalMatcher>,
}

impl CompiledPrincipal {
    pub(crate) fn matches(&self, p: Option<&Principal>) -> Option<PrincipalMatch> {
        let p = p.unwrap_or(&Principal::Anonymous);
        if self.negated {
            // AWS applies a NotPrincipal statement unless every level of the caller's
            // identity chain is listed: a role session is exempt only when its account, its
            // role and the session itself are all named.
            let exempt = identity_chain(p)
                .iter()
                .all(|level| self.matchers.iter().any(|m| m.names_level(level)));
            return (!exempt).then_some(PrincipalMatch::Indirect);
        }
        let found = self
            .matchers
            .iter()
            .filter_map(|m| m.matches(p))
            .min_by_key(|m| m.rank());
        match (found, self.negated) {
            (Some(how), false) => Some(how),
            (None, true) => Some(PrincipalMatch::Indirect),
            _ => None,
        }
    }
}

/// From how many literal values a string condition looks them up by hash.
const HASHED_VALUES: usize = 8;

#[derive(Debug, Clone)]
enum CondValues {
    /// Literal (Equals) or glob (Like) patterns, per the operator.
    Str(Vec<Pattern>),
    /// Many literal values without variables (`StringEquals`, `StringNotEquals`): looked up
    /// by hash, so a long list (compiled intentions exclude many names) costs one lookup.
    StrSet(std::collections::HashSet<Box<str>, foldhash::fast::RandomState>),
    /// Literal patterns compared ignoring case.
    StrIgnoreCase(Vec<Pattern>),
    /// Numbers, kept as text that [`Decimal::parse`] accepts (checked by the parser).
    Num(Vec<Box<str>>),
    Date(Vec<i128>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<IpBlock>),
    /// ARN patterns.
    Arn(Vec<ArnPattern>),
    Null(Vec<bool>),
}

#[derive(Debug, Clone)]
enum ArnPattern {
    /// `*`: any value.
    Any,
    /// The six parts of an ARN, each a pattern.
    Segments(Box<[Pattern; 6]>),
    /// A value that becomes an ARN only once its variables are substituted.
    Whole(Pattern),
    /// A value that is not an ARN, which no ARN equals.
    Never,
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
    fn new(c: &crate::model::Condition, expand: bool) -> Result<CompiledCondition, String> {
        let kind = c.operator.kind;
        let vals = &c.values;
        if vals.is_empty() {
            return Err(format!(
                "condition {} on {} has no values",
                c.operator, c.key
            ));
        }
        let expand = expand && kind.expands_variables();
        let bad = |v: &str| format!("{v:?} is not a valid value for {}", kind.name());
        /// Parses every value with `f`, or names the first that does not parse.
        fn all<T>(
            vals: &[String],
            f: impl Fn(&str) -> Option<T>,
            bad: impl Fn(&str) -> String,
        ) -> Result<Vec<T>, String> {
            vals.iter().map(|v| f(v).ok_or_else(|| bad(v))).collect()
        }
        let pattern = |v: &str, glob: bool| {
            if glob {
                Pattern::glob(v, expand)
            } else {
                Pattern::literal(v, expand)
            }
            .map_err(|e| e.to_string())
        };
        let values = match kind.value_type() {
            ValueType::String => {
                let glob = kind.positive() == OperatorKind::StringLike;
                let patterns = vals
                    .iter()
                    .map(|v| pattern(v, glob))
                    .collect::<Result<Vec<_>, _>>()?;
                if kind.positive() == OperatorKind::StringEqualsIgnoreCase {
                    CondValues::StrIgnoreCase(patterns)
                } else if kind.positive() == OperatorKind::StringEquals
                    && patterns.len() >= HASHED_VALUES
                    && patterns.iter().all(|p| p.exact().is_some())
                {
                    CondValues::StrSet(
                        patterns
                            .iter()
                            .filter_map(|p| p.exact())
                            .map(Into::into)
                            .collect(),
                    )
                } else {
                    CondValues::Str(patterns)
                }
            }
            ValueType::Numeric => {
                all(vals, |v| Decimal::parse(v).map(|_| v.into()), bad).map(CondValues::Num)?
            }
            ValueType::Date => all(vals, parse_date, bad).map(CondValues::Date)?,
            ValueType::Bool => all(vals, parse_bool, bad).map(CondValues::Bool)?,
            ValueType::Null => all(vals, parse_bool, bad).map(CondValues::Null)?,
            ValueType::Binary => all(vals, parse_binary, bad).map(CondValues::Binary)?,
            ValueType::Ip => all(vals, IpBlock::parse, bad).map(CondValues::Ip)?,
            ValueType::Arn => CondValues::Arn(
                vals.iter()
                    .map(|v| {
                        if v == "*" {
                            return Ok(ArnPattern::Any);
                        }
                        match split_arn_template(v) {
                            Some(parts) if parts[0] == "arn" => {
                                let mut segs = Vec::with_capacity(6);
                                for part in parts {
                                    segs.push(pattern(part, true)?);
                                }
                                let segs: Box<[Pattern; 6]> =
                                    segs.into_boxed_slice().try_into().map_err(|_| bad(v))?;
                                Ok(ArnPattern::Segments(segs))
                            }
                            // Only a variable can make this an ARN, e.g. "${aws:PrincipalArn}":
                            // the substituted text is literal, so matching the whole value
                            // is the same as matching part by part.
                            _ if expand && v.contains("${") => {
                                Ok(ArnPattern::Whole(pattern(v, true)?))
                            }
                            // Not an ARN: it can never equal one (the parser warns).
                            _ => Ok(ArnPattern::Never),
                        }
                    })
                    .collect::<Result<_, String>>()?,
            ),
        };
        Ok(CompiledCondition {
            operator: c.operator,
            key: c.key.as_str().into(),
            key_lower: c.key.to_ascii_lowercase().into(),
            values,
        })
    }

    /// The policy's values that are patterns (and so may hold variables).
    fn patterns(&self) -> Vec<&Pattern> {
        match &self.values {
            CondValues::Str(ps) | CondValues::StrIgnoreCase(ps) => ps.iter().collect(),
            CondValues::Arn(ps) => ps
                .iter()
                .flat_map(|p| match p {
                    ArnPattern::Whole(p) => std::slice::from_ref(p),
                    ArnPattern::Segments(segs) => &segs[..],
                    ArnPattern::Any | ArnPattern::Never => &[],
                })
                .collect(),
            CondValues::StrSet(_)
            | CondValues::Num(_)
            | CondValues::Date(_)
            | CondValues::Bool(_)
            | CondValues::Binary(_)
            | CondValues::Ip(_)
            | CondValues::Null(_) => Vec::new(),
        }
    }

    /// The first variable of the policy's values with no value and no default.
    fn unresolved(&self, vars: &dyn Vars) -> Option<&str> {
        self.patterns().into_iter().find_map(|p| p.unresolved(vars))
    }

    /// True when one request value satisfies the positive form of the operator against any
    /// of the policy's values (a logical OR).
    fn positive_match(&self, v: &str, vars: &dyn Vars) -> bool {
        match &self.values {
            CondValues::Str(ps) => ps.iter().any(|p| p.matches(v, vars)),
            CondValues::StrSet(set) => set.contains(v),
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
                ArnPattern::Any => true,
                ArnPattern::Never => false,
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
    /// The variables without a default that `Resource`/`NotResource` and the condition
    /// values use, as (lower-cased key, key as written), each once. Empty for most
    /// statements, which then cost nothing more to evaluate.
    required: Box<[(Box<str>, Box<str>)]>,
}

/// The first element of a statement that did not match, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Miss<'s> {
    Principal,
    Action,
    Resource,
    Condition(usize, ConditionOutcome),
    /// An Allow needs this variable (as written), which has no value in the request.
    Variable(&'s str),
}

impl CompiledStatement {
    fn new(
        index: usize,
        st: &Statement,
        kind: PolicyKind,
        expand: bool,
    ) -> Result<CompiledStatement, String> {
        let principal = match (&st.principal, kind.requires_principal()) {
            (None, false) => None,
            (None, true) => return Err("a resource policy statement must name a principal".into()),
            (Some(_), false) => {
                return Err(format!("{kind} policies cannot name a principal"));
            }
            (Some(p), true) => {
                if st.effect == Effect::Allow && p.negated {
                    return Err("AWS does not support NotPrincipal with Allow".into());
                }
                let matchers = match &p.principals {
                    Principals::Any => vec![PrincipalMatcher::Any],
                    Principals::Named(named) if named.iter().all(|(_, v)| v.is_empty()) => {
                        return Err("the principal names no one".into());
                    }
                    Principals::Named(named) => named
                        .iter()
                        .flat_map(|(k, vs)| vs.iter().map(move |v| PrincipalMatcher::new(*k, v)))
                        .collect::<Result<_, _>>()?,
                };
                Some(CompiledPrincipal {
                    negated: p.negated,
                    matchers,
                })
            }
        };
        let resources = PatternSet::new(&st.resource, false, expand)?;
        let conditions: Vec<CompiledCondition> = st
            .conditions
            .iter()
            .map(|c| CompiledCondition::new(c, expand))
            .collect::<Result<_, _>>()?;
        let mut required: Vec<(Box<str>, Box<str>)> = Vec::new();
        let patterns = resources
            .patterns
            .iter()
            .chain(conditions.iter().flat_map(|c| c.patterns()));
        for (lower, key) in patterns.flat_map(|p| p.required_variables()) {
            if !required.iter().any(|(l, _)| l.as_ref() == lower) {
                required.push((lower.into(), key.into()));
            }
        }
        Ok(CompiledStatement {
            index,
            sid: st.sid.as_deref().map(Arc::from),
            effect: st.effect,
            principal,
            actions: PatternSet::new(&st.action, true, false)?,
            resources,
            conditions,
            required: required.into_boxed_slice(),
        })
    }

    /// The first variable (as written) the statement needs and the request has no value
    /// for. AWS documents that such a variable may make the whole statement invalid.
    pub(crate) fn missing_variable(&self, req: &Request) -> Option<&str> {
        let ctx = req.context();
        self.required
            .iter()
            .find(|(lower, _)| ctx.var(lower).is_none())
            .map(|(_, key)| key.as_ref())
    }

    /// Whether the statement applies to the request, and how the principal matched.
    ///
    /// A statement that needs a variable the request has no value for is read so that it
    /// never allows more than AWS would: an Allow does not apply, and in a Deny the elements
    /// holding the variable count as matching (the Deny applies when the rest matches).
    pub(crate) fn applies(&self, req: &Request) -> Result<PrincipalMatch, Miss<'_>> {
        let how = match &self.principal {
            Some(p) => p.matches(req.principal()).ok_or(Miss::Principal)?,
            None => PrincipalMatch::Indirect,
        };
        let ctx = req.context();
        if !self.actions.matches(req.action_lower(), ctx) {
            return Err(Miss::Action);
        }
        let missing = if self.required.is_empty() {
            None
        } else {
            self.missing_variable(req)
        };
        if let Some(var) = missing
            && self.effect == Effect::Allow
        {
            return Err(Miss::Variable(var));
        }
        let unresolved_deny = missing.is_some();
        let resource_forced = unresolved_deny && self.resources.unresolved(ctx).is_some();
        if !resource_forced && !self.resources.matches(req.resource(), ctx) {
            return Err(Miss::Resource);
        }
        for (i, c) in self.conditions.iter().enumerate() {
            if unresolved_deny && c.unresolved(ctx).is_some() {
                continue;
            }
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
