//! Witnesses: concrete requests built for a reported region and checked with writ's own
//! evaluator, so that no reported witness is ever wrong.

use std::collections::BTreeMap;

use crate::compile::{CompileError, CompiledPolicy};
use crate::diff::conditions::{self, Atom, Scenario};
use crate::diff::language::principal_of_word;
use crate::diff::report::{Change, Witness};
use crate::model::{Effect, PatternElement, Policy, PolicyKind, Statement};
use crate::request::{Context, ContextValue, Request};
use crate::set::{Outcome, PolicySet};

/// OLD and NEW as the evaluator sees them.
pub(crate) struct Sets {
    old: PolicySet,
    new: PolicySet,
}

impl Sets {
    /// Compiles both sides. A boundary or session policy is evaluated with an identity
    /// policy that allows everything, so the set allows exactly what the limit lets through;
    /// a side with no policy gets an empty one of its kind, which allows nothing.
    pub(crate) fn new(
        old: &[(&str, &Policy)],
        new: &[(&str, &Policy)],
        kind: PolicyKind,
    ) -> Result<Sets, CompileError> {
        let build = |policies: &[(&str, &Policy)]| -> Result<PolicySet, CompileError> {
            let mut set = PolicySet::new();
            if matches!(kind, PolicyKind::PermissionsBoundary | PolicyKind::Session) {
                set.add(CompiledPolicy::new(
                    "(allow everything)",
                    PolicyKind::Identity,
                    &allow_everything(),
                )?);
            }
            if policies.is_empty() {
                let empty = Policy {
                    version: None,
                    id: None,
                    statements: Vec::new(),
                };
                set.add(CompiledPolicy::new("(none)", kind, &empty)?);
            }
            for (name, p) in policies {
                set.add(CompiledPolicy::new(name, kind, p)?);
            }
            Ok(set)
        };
        Ok(Sets {
            old: build(old)?,
            new: build(new)?,
        })
    }

    /// How OLD and NEW decide a request.
    pub(crate) fn decide(&self, req: &Request) -> (Outcome, Outcome) {
        (
            self.old.evaluate(req).outcome,
            self.new.evaluate(req).outcome,
        )
    }
}

fn allow_everything() -> Policy {
    let all = || PatternElement {
        negated: false,
        patterns: vec!["*".into()],
    };
    Policy {
        version: Some(crate::Version::V2012_10_17),
        id: None,
        statements: vec![Statement {
            sid: None,
            effect: Effect::Allow,
            principal: None,
            action: all(),
            resource: all(),
            conditions: Vec::new(),
        }],
    }
}

/// The strings a finding's regions offer, best first.
pub(crate) struct Candidates<A, R> {
    pub(crate) actions: A,
    pub(crate) resources: R,
    /// The principal region's word, for resource policies.
    pub(crate) principal: Option<String>,
}

/// How many requests are tried per finding before giving up.
const ATTEMPTS: usize = 24;

/// Builds requests from the candidates and the scenarios' conditions until one is decided
/// as `change` says. Returns the witness, or why there is none.
pub(crate) fn find<A, R>(
    sets: &Sets,
    change: Change,
    candidates: Candidates<A, R>,
    scenarios: &[Scenario],
    atoms: &[Atom],
) -> (Option<Witness>, Option<String>)
where
    A: Iterator<Item = String>,
    R: Iterator<Item = String> + Clone,
{
    let principal = candidates.principal.as_deref().and_then(principal_of_word);
    let mut tried = 0;
    for action in candidates.actions.take(4) {
        for resource in candidates.resources.clone().take(4) {
            for sc in scenarios {
                if tried >= ATTEMPTS {
                    break;
                }
                tried += 1;
                let mut ctx = Context::new();
                for &h in &sc.holds {
                    conditions::make_hold(&atoms[h as usize], &mut ctx);
                }
                for &f in &sc.fails {
                    conditions::make_fail(&atoms[f as usize], &mut ctx);
                }
                let mut req = Request::new(&action, &resource).with_context(ctx);
                if let Some(p) = &principal {
                    req = req.with_principal(p.clone());
                }
                let (old, new) = sets.decide(&req);
                let ok = match change {
                    Change::Added => new == Outcome::Allowed && old != Outcome::Allowed,
                    Change::Removed => old == Outcome::Allowed && new != Outcome::Allowed,
                };
                if ok {
                    let context: BTreeMap<String, ContextValue> = req
                        .context()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    return (
                        Some(Witness {
                            principal: principal.clone(),
                            action,
                            resource,
                            context,
                            old,
                            new,
                        }),
                        None,
                    );
                }
            }
        }
    }
    let why = if scenarios.iter().any(Scenario::unconditional) {
        // Only the cross-account rule of resource policies can refuse every request here.
        "possible; no request of this region was found that the evaluator decides this way \
         (for a resource policy, the principal and the resource may be in different accounts)"
            .to_string()
    } else {
        "possible; depends on conditions for which no request was found".to_string()
    };
    (None, Some(why))
}
