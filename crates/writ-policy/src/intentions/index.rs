//! Deciding a call by the names in it: the intentions indexed by destination and source,
//! so a call looks up at most four pairs (`S -> D`, `* -> D`, `S -> *`, `* -> *`, in
//! precedence order) instead of evaluating every statement whose resource matches. The
//! first pair found decides; only an L7 intention's permissions are then evaluated, by
//! the policy engine, as the compiled statements would be. The answer, down to the
//! statements reported as matched, is the compiled policy's: `IntentionSet`'s tests
//! check the two against each other on random sets and calls.

use std::collections::HashMap;
use std::sync::Arc;

use super::compile::permission_conditions;
use super::model::{Intention, IntentionAction, IntentionError};
use super::{INVOKE_ACTION, POLICY_NAME, RESOURCE_PREFIX};
use crate::compile::CompiledPolicy;
use crate::model::{
    Effect, PatternElement, Policy, PolicyKind, Statement as ModelStatement, Version,
};
use crate::request::{ContextValue, Principal, Request};
use crate::set::{MatchedStatement, PolicySet};

/// [`super::KEY_SOURCE_FUNCTION`] and [`super::KEY_DESTINATION_FUNCTION`] as the context
/// stores them (lower case), so a lookup needs no allocation.
const SOURCE_KEY: &str = "writ:sourcefunction";
const DESTINATION_KEY: &str = "writ:destinationfunction";

/// What decided a call, found by names.
#[derive(Debug)]
pub(super) struct Found {
    /// The deciding intention's index.
    pub intention: usize,
    /// Its effect.
    pub action: IntentionAction,
    /// For an allow: the permissions that matched (empty when the intention has none, or
    /// when none matched: then the call is refused).
    pub permissions: Vec<usize>,
    /// Whether the intention has L7 permissions.
    pub l7: bool,
    /// The compiled statements that match, as the engine reports them.
    pub matched: Vec<MatchedStatement>,
}

/// The intentions by name, and where each one's statements are in the compiled policy.
#[derive(Debug, Clone)]
pub(super) struct NameIndex {
    /// `spiffe://TD/fn/`: a caller's SPIFFE ID starts with it, then its function's name.
    function_prefix: String,
    /// Destination (or `*`) -> source (or `*`) -> intention.
    by_destination: HashMap<String, HashMap<String, usize>>,
    /// Each intention's statements on its own destination (or, for `* -> *`, on the
    /// destinations no intention names): one, or one per permission.
    statements: Vec<Vec<MatchedStatement>>,
    /// `* -> *`'s statements for each destination named only by `S -> D` intentions.
    any_to_any_at: HashMap<String, Vec<MatchedStatement>>,
    /// Each intention's effect.
    actions: Vec<IntentionAction>,
    /// For each intention with permissions, a policy of one statement per permission with
    /// only its L7 conditions, for the engine to decide which permissions a call matches.
    permissions: Vec<Option<PolicySet>>,
}

impl NameIndex {
    /// Indexes `intentions`, compiled as `policy` by [`super::compile`].
    pub(super) fn new(
        intentions: &[Intention],
        policy: &Policy,
        trust_domain: &str,
    ) -> Result<NameIndex, IntentionError> {
        let mut by_destination: HashMap<String, HashMap<String, usize>> = HashMap::new();
        for (i, it) in intentions.iter().enumerate() {
            by_destination
                .entry(it.destination.clone())
                .or_default()
                .insert(it.source.clone(), i);
        }
        // Each compiled statement, by the intention (and `* -> *` destination) its Sid names.
        let policy_name: Arc<str> = Arc::from(POLICY_NAME);
        let mut by_sid: HashMap<(String, String, Option<String>), Vec<MatchedStatement>> =
            HashMap::new();
        for (index, st) in policy.statements.iter().enumerate() {
            let Some(sid) = st.sid.as_deref() else {
                continue;
            };
            let Some(parts) = super::compile::parse_sid(sid) else {
                continue;
            };
            let destination = sid
                .split(':')
                .find_map(|p| p.strip_prefix("destination="))
                .map(str::to_string);
            by_sid
                .entry((
                    parts.source.to_string(),
                    parts.destination.to_string(),
                    destination,
                ))
                .or_default()
                .push(MatchedStatement {
                    policy: policy_name.clone(),
                    kind: PolicyKind::Resource,
                    sid: Some(Arc::from(sid)),
                    index,
                    effect: st.effect,
                });
        }
        let mut statements = Vec::with_capacity(intentions.len());
        let mut any_to_any_at = HashMap::new();
        for it in intentions {
            let key = (it.source.clone(), it.destination.clone(), None);
            statements.push(by_sid.remove(&key).unwrap_or_default());
        }
        for ((source, destination, at), found) in by_sid {
            if let Some(d) = at
                && source == "*"
                && destination == "*"
            {
                any_to_any_at.insert(d, found);
            }
        }
        let permissions = intentions
            .iter()
            .map(|it| {
                if it.permissions.is_empty() {
                    return Ok(None);
                }
                let policy = Policy {
                    version: Some(Version::V2012_10_17),
                    id: None,
                    statements: it
                        .permissions
                        .iter()
                        .map(|p| ModelStatement {
                            sid: None,
                            effect: Effect::Allow,
                            principal: None,
                            action: PatternElement {
                                negated: false,
                                patterns: vec![INVOKE_ACTION.to_string()],
                            },
                            resource: PatternElement {
                                negated: false,
                                patterns: vec!["*".to_string()],
                            },
                            conditions: permission_conditions(p),
                        })
                        .collect(),
                };
                let mut set = PolicySet::new();
                set.add(CompiledPolicy::new(
                    "permissions",
                    PolicyKind::Identity,
                    &policy,
                )?);
                Ok(Some(set))
            })
            .collect::<Result<_, IntentionError>>()?;
        Ok(NameIndex {
            function_prefix: format!("spiffe://{trust_domain}/fn/"),
            by_destination,
            statements,
            any_to_any_at,
            actions: intentions.iter().map(|it| it.action).collect(),
            permissions,
        })
    }

    /// The call's source and destination names, when the request is one that
    /// [`super::request`] built for a function of this trust domain calling a function;
    /// `None` for anything else, which the engine decides.
    fn names<'r>(&self, req: &'r Request) -> Option<(&'r str, &'r str)> {
        if req.action() != INVOKE_ACTION {
            return None;
        }
        let destination = req.resource().strip_prefix(RESOURCE_PREFIX)?;
        let Some(Principal::Spiffe(id)) = req.principal() else {
            return None;
        };
        let source = id.strip_prefix(self.function_prefix.as_str())?;
        let context = req.context();
        let one = |key: &str, want: &str| matches!(context.get(key), Some(ContextValue::One(v)) if v == want);
        (super::is_function_name(source)
            && one(SOURCE_KEY, source)
            && one(DESTINATION_KEY, destination))
        .then_some((source, destination))
    }

    /// The intention that decides `req`, looked up by name, with what it matched; `None`
    /// when no intention applies (default deny). `Err(())` when the request is not one
    /// the index can decide, for the engine.
    pub(super) fn find(&self, req: &Request) -> Result<Option<Found>, ()> {
        let (source, destination) = self.names(req).ok_or(())?;
        let at = |d: &str, s: &str| self.by_destination.get(d).and_then(|m| m.get(s)).copied();
        let Some(i) = at(destination, source)
            .or_else(|| at(destination, "*"))
            .or_else(|| at("*", source))
            .or_else(|| at("*", "*"))
        else {
            return Ok(None);
        };
        let statements = match self.any_to_any_at.get(destination) {
            Some(specific) if self.is_any_to_any(i) => specific,
            _ => &self.statements[i],
        };
        let (action, l7) = (self.actions[i], self.permissions[i].is_some());
        let (permissions, matched) = match &self.permissions[i] {
            None => (Vec::new(), statements.clone()),
            Some(set) => {
                let decision = set.evaluate(req);
                let matched_permissions: Vec<usize> =
                    decision.matched.iter().map(|m| m.index).collect();
                let matched = matched_permissions
                    .iter()
                    .filter_map(|&k| statements.get(k).cloned())
                    .collect();
                (matched_permissions, matched)
            }
        };
        Ok(Some(Found {
            intention: i,
            action,
            permissions,
            l7,
            matched,
        }))
    }

    fn is_any_to_any(&self, i: usize) -> bool {
        self.by_destination
            .get("*")
            .and_then(|m| m.get("*"))
            .is_some_and(|&j| j == i)
    }
}
