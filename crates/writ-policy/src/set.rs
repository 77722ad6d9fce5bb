//! Sets of policies, indexed, and the decision they reach together.
//!
//! The evaluation logic is AWS's:
//!
//! 1. A matching `Deny` in any policy is an explicit deny; nothing overrides it.
//! 2. Within one account, the request is allowed when an identity-based policy allows it,
//!    or a resource-based policy grants it to the caller, and every permissions boundary and
//!    session policy present allows it too. As in AWS, a resource-based policy that names the
//!    caller exactly (its own ARN or SPIFFE ID, not a role the session belongs to or a
//!    wildcard) grants without needing the boundary or session policies, and one that names
//!    only the caller's account grants nothing by itself: the account delegates to its
//!    identity policies, one of which must allow.
//! 3. Across accounts (the caller's account, from its ARN, differs from the resource's, see
//!    [`Request::resource_account`]), an identity-based policy (within the boundary and
//!    session policies) and a resource-based policy must both allow.
//! 4. Otherwise it is an implicit deny.
//!
//! Statements are indexed by exact action and exact resource, so a decision looks only at
//! the statements that could match, however many policies the set holds.

use std::collections::HashMap;
use std::sync::Arc;

/// Index maps: foldhash is several times faster than SipHash on these short keys, and
/// seeded per process.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use serde::Serialize;

use crate::compile::{CompiledPolicy, CompiledStatement, ConditionOutcome, Miss, PrincipalMatch};
use crate::model::{Effect, PolicyKind};
use crate::request::{Principal, Request};

/// The three possible answers, named as in AWS. The audit log records decisions in this
/// type too (`writ_audit::Decision`), so a decision keeps its kind from the engine to the
/// log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// An allow applied and nothing denied.
    Allowed,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// Nothing allowed (or a boundary or session policy did not).
    ImplicitDeny,
}

impl Outcome {
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::ExplicitDeny => "explicitDeny",
            Outcome::ImplicitDeny => "implicitDeny",
        }
    }
}

/// Why a request was implicitly denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DenyReason {
    /// No identity-based or resource-based statement allows the request.
    NoAllow,
    /// An identity or resource policy allows it, but no permissions boundary statement does.
    NotInBoundary,
    /// An identity or resource policy allows it, but no session policy statement does.
    NotInSessionPolicy,
    /// A resource policy allows it only by naming the caller's account, which delegates to
    /// the account's identity policies, and none of them allows it.
    AccountDelegated,
    /// The caller is in another account than the resource: a resource policy allows it, but
    /// no identity policy of the caller's account does.
    CrossAccountNoIdentityAllow,
    /// The caller is in another account than the resource: an identity policy allows it,
    /// but no resource policy of the resource's account does.
    CrossAccountNoResourceAllow,
    /// The caller is anonymous or an AWS service, which have no identity policies: an
    /// identity policy allows the request, but applies to no such caller, and no resource
    /// policy allows it.
    NoIdentity,
}

/// A statement that decided a request: which policy, which statement, which effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchedStatement {
    /// The policy's name.
    pub policy: Arc<str>,
    /// Where the policy is attached.
    #[serde(rename = "policyType")]
    pub kind: PolicyKind,
    /// The statement's `Sid`, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Arc<str>>,
    /// The statement's position in the policy, from 0.
    pub index: usize,
    /// Its effect.
    pub effect: Effect,
}

impl MatchedStatement {
    /// `Sid "X"` or `Statement[i]`, for people.
    pub fn label(&self) -> String {
        match &self.sid {
            Some(sid) => format!("Statement[{}] (Sid {sid:?})", self.index),
            None => format!("Statement[{}]", self.index),
        }
    }
}

/// The decision on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Allowed, explicitly denied or implicitly denied.
    #[serde(rename = "decision")]
    pub outcome: Outcome,
    /// The statements that decided it: the denies for an explicit deny, the allows for an
    /// allow, and for an implicit deny the allows that were not enough (if any).
    pub matched: Vec<MatchedStatement>,
    /// For an implicit deny, why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DenyReason>,
}

impl Decision {
    /// True when allowed.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allowed
    }
}

/// Why a statement did not apply, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "element")]
pub enum StatementMiss {
    /// The request's principal is not the one the statement names.
    Principal,
    /// The action is not in `Action` (or is in `NotAction`).
    Action,
    /// The resource is not in `Resource` (or is in `NotResource`).
    Resource,
    /// A condition did not hold.
    Condition {
        /// The operator, as written.
        operator: String,
        /// The condition key.
        key: String,
        /// True when the key was absent from the request.
        #[serde(rename = "keyMissing")]
        key_missing: bool,
    },
    /// An Allow needs a policy variable that has no value in the request and no default;
    /// AWS documents that this may make the statement invalid, so it does not apply.
    Variable {
        /// The variable's key, as written (`aws:username` for `${aws:username}`).
        variable: String,
    },
}

/// One statement and whether it applied, for explanations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementTrace {
    /// The statement.
    #[serde(flatten)]
    pub statement: MatchedStatement,
    /// `None` when it applied; otherwise the first element that did not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub miss: Option<StatementMiss>,
    /// For a Deny that applied although it needs a variable the request has no value for
    /// (writ reads such a Deny as applying, so it never allows more than AWS would): the
    /// variable's key, as written.
    #[serde(rename = "unresolvedVariable", skip_serializing_if = "Option::is_none")]
    pub unresolved_variable: Option<String>,
}

/// A decision with the trace of every statement considered, in policy order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The decision, exactly as [`PolicySet::evaluate`] gives it.
    #[serde(flatten)]
    pub decision: Decision,
    /// For a denial, why, in a sentence that names the half that is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// Every statement of every policy, and whether it applied.
    pub statements: Vec<StatementTrace>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StmtId {
    policy: u32,
    statement: u32,
}

#[derive(Debug, Default, Clone)]
struct ResourceIndex {
    exact: Map<Box<str>, Vec<StmtId>>,
    rest: Vec<StmtId>,
}

impl ResourceIndex {
    fn push(list: &mut Vec<StmtId>, id: StmtId) {
        if list.last() != Some(&id) {
            list.push(id);
        }
    }

    fn add(&mut self, st: &CompiledStatement, id: StmtId, by_resource: bool) {
        if st.resources.negated || !by_resource {
            Self::push(&mut self.rest, id);
            return;
        }
        for p in &st.resources.patterns {
            match p.exact() {
                Some(e) => Self::push(self.exact.entry(e.into()).or_default(), id),
                None => Self::push(&mut self.rest, id),
            }
        }
    }

    fn candidates<'s>(&'s self, resource: &str) -> impl Iterator<Item = StmtId> + 's {
        let exact = if self.exact.is_empty() {
            &[][..]
        } else {
            self.exact.get(resource).map(Vec::as_slice).unwrap_or(&[])
        };
        exact.iter().chain(self.rest.iter()).copied()
    }
}

/// The most (action, resource) pairs one statement adds to the index.
const MAX_PAIRS: usize = 64;

#[derive(Debug, Default, Clone)]
struct KindIndex {
    present: bool,
    by_action: Map<Box<str>, ResourceIndex>,
    any_action: ResourceIndex,
}

impl KindIndex {
    fn add(&mut self, st: &CompiledStatement, id: StmtId) {
        if st.actions.negated {
            self.any_action.add(st, id, true);
            return;
        }
        // A statement names N exact actions and M exact resources; indexing every pair would
        // take N x M entries, so large statements are indexed by action only.
        let exact_resources = st
            .resources
            .patterns
            .iter()
            .filter(|p| p.exact().is_some())
            .count();
        let by_resource = st.actions.patterns.len().saturating_mul(exact_resources) <= MAX_PAIRS;
        for p in &st.actions.patterns {
            match p.exact() {
                Some(action) => {
                    self.by_action
                        .entry(action.into())
                        .or_default()
                        .add(st, id, by_resource)
                }
                None => self.any_action.add(st, id, by_resource),
            }
        }
    }

    fn candidates<'s>(&'s self, req: &'s Request) -> impl Iterator<Item = StmtId> + 's {
        let by_action = if self.by_action.is_empty() {
            None
        } else {
            self.by_action.get(req.action_lower())
        };
        by_action
            .into_iter()
            .flat_map(|r| r.candidates(req.resource()))
            .chain(self.any_action.candidates(req.resource()))
    }
}

const KINDS: [PolicyKind; 4] = [
    PolicyKind::Identity,
    PolicyKind::Resource,
    PolicyKind::PermissionsBoundary,
    PolicyKind::Session,
];

fn kind_slot(kind: PolicyKind) -> usize {
    match kind {
        PolicyKind::Identity => 0,
        PolicyKind::Resource => 1,
        PolicyKind::PermissionsBoundary => 2,
        PolicyKind::Session => 3,
    }
}

/// The policies that bear on a request, compiled and indexed.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<CompiledPolicy>,
    index: [KindIndex; 4],
}

#[derive(Default)]
struct Tally {
    denies: Vec<StmtId>,
    allows: [Vec<StmtId>; 4],
    /// A resource policy allow names the caller (not only its account).
    resource_grant: bool,
    /// A resource policy allow names the caller exactly.
    direct_resource_allow: bool,
}

impl PolicySet {
    /// An empty set: it denies everything.
    pub fn new() -> PolicySet {
        PolicySet::default()
    }

    /// Adds a compiled policy.
    pub fn add(&mut self, policy: CompiledPolicy) {
        let p = u32::try_from(self.policies.len()).unwrap_or(u32::MAX);
        let slot = kind_slot(policy.kind);
        // A boundary or session policy limits even when it has no statements: then it allows
        // nothing.
        self.index[slot].present = true;
        for (s, st) in policy.statements.iter().enumerate() {
            let id = StmtId {
                policy: p,
                statement: u32::try_from(s).unwrap_or(u32::MAX),
            };
            self.index[slot].add(st, id);
        }
        self.policies.push(policy);
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// True when the set holds no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    fn statement(&self, id: StmtId) -> (&CompiledPolicy, &CompiledStatement) {
        let p = &self.policies[id.policy as usize];
        (p, &p.statements[id.statement as usize])
    }

    fn describe(&self, id: StmtId) -> MatchedStatement {
        let (p, st) = self.statement(id);
        MatchedStatement {
            policy: p.name.clone(),
            kind: p.kind,
            sid: st.sid.clone(),
            index: st.index,
            effect: st.effect,
        }
    }

    /// Decides a request.
    pub fn evaluate(&self, req: &Request) -> Decision {
        let mut tally = Tally::default();
        for (slot, index) in self.index.iter().enumerate() {
            if !index.present {
                continue;
            }
            for id in index.candidates(req) {
                let (_, st) = self.statement(id);
                let Ok(how) = st.applies(req) else {
                    continue;
                };
                match st.effect {
                    Effect::Deny => {
                        if !tally.denies.contains(&id) {
                            tally.denies.push(id);
                        }
                    }
                    Effect::Allow => {
                        if !tally.allows[slot].contains(&id) {
                            tally.allows[slot].push(id);
                        }
                        if slot == kind_slot(PolicyKind::Resource) {
                            match how {
                                PrincipalMatch::Direct => {
                                    tally.resource_grant = true;
                                    tally.direct_resource_allow = true;
                                }
                                PrincipalMatch::Indirect => tally.resource_grant = true,
                                // The account delegates to its identity policies.
                                PrincipalMatch::Account => {}
                            }
                        }
                    }
                }
            }
        }
        self.decide(tally, req)
    }

    fn decide(&self, mut t: Tally, req: &Request) -> Decision {
        let ids = |v: &mut Vec<StmtId>| {
            v.sort_by_key(|id| (id.policy, id.statement));
            v.iter().map(|&id| self.describe(id)).collect::<Vec<_>>()
        };
        if !t.denies.is_empty() {
            return Decision {
                outcome: Outcome::ExplicitDeny,
                matched: ids(&mut t.denies),
                reason: None,
            };
        }
        let [identity, resource, boundary, session] = &mut t.allows;
        let present = |kind| self.index[kind_slot(kind)].present;
        // An anonymous caller or an AWS service has no identity policies, so identity
        // policies, boundaries and session policies never apply to it: only a resource
        // policy can allow it.
        let no_identity = matches!(
            req.principal(),
            Some(Principal::Anonymous | Principal::Service(_))
        );
        let boundary_ok =
            no_identity || !present(PolicyKind::PermissionsBoundary) || !boundary.is_empty();
        let session_ok = no_identity || !present(PolicyKind::Session) || !session.is_empty();
        let identity_applies = !identity.is_empty();
        let identity_allows = !no_identity && identity_applies;
        let resource_allows = !resource.is_empty();
        let identity_ok = identity_allows && boundary_ok && session_ok;
        // The accounts are compared only when something allows, so a request nothing
        // allows costs nothing more.
        let cross_account = (identity_allows || resource_allows) && req.cross_account().is_some();
        let allowed = if cross_account {
            identity_ok && resource_allows
        } else {
            identity_ok
                || (t.resource_grant && (t.direct_resource_allow || (boundary_ok && session_ok)))
        };
        let mut all: Vec<StmtId> = [identity, resource, boundary, session]
            .into_iter()
            .flat_map(|v| v.iter().copied())
            .collect();
        let matched = ids(&mut all);
        if allowed {
            return Decision {
                outcome: Outcome::Allowed,
                matched,
                reason: None,
            };
        }
        let reason = if no_identity && !resource_allows && identity_applies {
            DenyReason::NoIdentity
        } else if !identity_allows && !resource_allows {
            DenyReason::NoAllow
        } else if cross_account && !resource_allows {
            DenyReason::CrossAccountNoResourceAllow
        } else if cross_account && !identity_allows {
            DenyReason::CrossAccountNoIdentityAllow
        } else if !cross_account && !identity_allows && !t.resource_grant {
            DenyReason::AccountDelegated
        } else if !boundary_ok {
            DenyReason::NotInBoundary
        } else {
            DenyReason::NotInSessionPolicy
        };
        Decision {
            outcome: Outcome::ImplicitDeny,
            matched,
            reason: Some(reason),
        }
    }

    /// Decides a request and traces every statement of every policy: slower than
    /// [`PolicySet::evaluate`], for `writ policy simulate` and for people.
    pub fn explain(&self, req: &Request) -> Explanation {
        let decision = self.evaluate(req);
        let mut statements = Vec::new();
        for kind in KINDS {
            for (p, policy) in self.policies.iter().enumerate() {
                if policy.kind != kind {
                    continue;
                }
                for (s, st) in policy.statements.iter().enumerate() {
                    let id = StmtId {
                        policy: u32::try_from(p).unwrap_or(u32::MAX),
                        statement: u32::try_from(s).unwrap_or(u32::MAX),
                    };
                    let applies = st.applies(req);
                    let unresolved_variable = match (&applies, st.effect) {
                        (Ok(_), Effect::Deny) => st.missing_variable(req).map(str::to_string),
                        _ => None,
                    };
                    let miss = applies.err().map(|m| match m {
                        Miss::Principal => StatementMiss::Principal,
                        Miss::Action => StatementMiss::Action,
                        Miss::Resource => StatementMiss::Resource,
                        Miss::Condition(i, outcome) => {
                            let c = &st.conditions[i];
                            StatementMiss::Condition {
                                operator: c.operator.to_string(),
                                key: c.key.to_string(),
                                key_missing: outcome == ConditionOutcome::KeyMissing,
                            }
                        }
                        Miss::Variable(v) => StatementMiss::Variable {
                            variable: v.to_string(),
                        },
                    });
                    statements.push(StatementTrace {
                        statement: self.describe(id),
                        miss,
                        unresolved_variable,
                    });
                }
            }
        }
        let why = why(&decision, req);
        Explanation {
            decision,
            why,
            statements,
        }
    }
}

/// The sentence that says why a request was denied, naming the missing half.
fn why(d: &Decision, req: &Request) -> Option<String> {
    let caller = req.principal().and_then(|p| p.aws_account()).unwrap_or("?");
    let owner = req.resource_account().unwrap_or("?");
    Some(match (d.outcome, d.reason?) {
        (Outcome::Allowed | Outcome::ExplicitDeny, _) => return None,
        (_, DenyReason::NoAllow) => "no statement allows it".into(),
        (_, DenyReason::NotInBoundary) => {
            "a policy allows it, but no permissions boundary statement does".into()
        }
        (_, DenyReason::NotInSessionPolicy) => {
            "a policy allows it, but no session policy statement does".into()
        }
        (_, DenyReason::AccountDelegated) => format!(
            "the resource policy allows the account {caller}, which delegates to its identity \
             policies, and none of them allows this"
        ),
        (_, DenyReason::CrossAccountNoIdentityAllow) => format!(
            "the caller is in account {caller} and the resource in account {owner}: the \
             resource policy allows it, but no identity policy of account {caller} does, and \
             across accounts both must"
        ),
        (_, DenyReason::NoIdentity) => format!(
            "the caller ({}) has no identity policies: an identity policy allows it, but applies \
             to no such caller, and no resource policy allows it",
            req.principal().map(|p| p.to_string()).unwrap_or_default()
        ),
        (_, DenyReason::CrossAccountNoResourceAllow) => format!(
            "the caller is in account {caller} and the resource in account {owner}: an \
             identity policy allows it, but no resource policy of account {owner} does, and \
             across accounts both must"
        ),
    })
}
