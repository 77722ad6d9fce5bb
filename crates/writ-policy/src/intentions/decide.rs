//! Deciding calls: the request every evaluator builds, and a compiled set that says which
//! intention decided and why.

use std::collections::{BTreeMap, HashMap};

use super::compile::{compile, parse_sid};
use super::index::{Found, NameIndex};
use super::model::{Intention, IntentionAction, IntentionError, Permission, is_function_name};
use super::{
    INVOKE_ACTION, KEY_DESTINATION_FUNCTION, KEY_HEADER_PREFIX, KEY_METHOD, KEY_PATH,
    KEY_SOURCE_FUNCTION, POLICY_NAME, RESOURCE_PREFIX,
};
use crate::compile::CompiledPolicy;
use crate::model::{Policy, PolicyKind};
use crate::request::{Context, Principal, Request};
use crate::set::{Decision, DenyReason, Outcome, PolicySet, StatementMiss};

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
    index: NameIndex,
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
        let index = NameIndex::new(&intentions, &policy, trust_domain)?;
        Ok(IntentionSet {
            intentions,
            policy,
            set,
            by_pair,
            has_permissions,
            index,
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
    /// A call from a function of the trust domain is decided by name: at most four lookups
    /// (`S -> D`, `* -> D`, `S -> *`, `* -> *`) find the deciding intention, whatever the
    /// number of intentions, and only an L7 intention's permissions are evaluated. The
    /// answer is the one the compiled policy gives, with the same matched statements. Any
    /// other request (another trust domain, a caller that is not a function, a request
    /// not built by [`request`]) is evaluated against the compiled policy.
    pub fn decide(&self, req: &Request) -> Verdict {
        match self.index.find(req) {
            Ok(found) => self.verdict_by_name(req, found),
            Err(()) => self.decide_by_engine(req),
        }
    }

    /// The verdict on a call whose deciding intention (or its absence) was found by name.
    fn verdict_by_name(&self, req: &Request, found: Option<Found>) -> Verdict {
        let Some(found) = found else {
            let destination = req
                .resource()
                .strip_prefix(RESOURCE_PREFIX)
                .unwrap_or(req.resource());
            let source = req
                .context()
                .get(KEY_SOURCE_FUNCTION)
                .and_then(|v| v.as_slice().first())
                .map_or("an anonymous caller", String::as_str);
            return Verdict {
                allowed: false,
                intention: None,
                permission: None,
                reason: format!(
                    "denied: no intention allows {source} to call {destination} (default deny)"
                ),
                decision: implicit_deny(),
            };
        };
        let it = &self.intentions[found.intention];
        match (found.action, found.l7, found.permissions.first()) {
            (IntentionAction::Deny, _, _) => Verdict {
                allowed: false,
                intention: Some(found.intention),
                permission: None,
                reason: format!("denied by intention {}", it.label()),
                decision: Decision {
                    outcome: Outcome::ExplicitDeny,
                    matched: found.matched,
                    reason: None,
                },
            },
            (IntentionAction::Allow, false, _) | (IntentionAction::Allow, true, Some(_)) => {
                allowed(
                    it,
                    found.intention,
                    found.permissions.first().copied(),
                    Decision {
                        outcome: Outcome::Allowed,
                        matched: found.matched,
                        reason: None,
                    },
                )
            }
            (IntentionAction::Allow, true, None) => Verdict {
                allowed: false,
                intention: Some(found.intention),
                permission: None,
                reason: l7_refusal(it, req),
                decision: implicit_deny(),
            },
        }
    }

    /// Decides a call by evaluating the compiled policy, and says which intention decided
    /// and why: what [`IntentionSet::decide`] does for requests it cannot decide by name,
    /// and the reference its answers by name are tested against.
    ///
    /// An allow or an explicit deny is one evaluation. An implicit deny, when some intention
    /// has L7 permissions, also traces the policy to find the L7 intention that refused,
    /// which looks at every statement.
    pub(super) fn decide_by_engine(&self, req: &Request) -> Verdict {
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
                allowed(&self.intentions[i], i, permission, decision)
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
                    Some(i) => l7_refusal(&self.intentions[i], req),
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

/// An allow by intention `i` (`it`), through `permission` for an L7 intention.
fn allowed(it: &Intention, i: usize, permission: Option<usize>, decision: Decision) -> Verdict {
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

/// An implicit deny with nothing matched: what the compiled policy decides when no
/// statement applies.
fn implicit_deny() -> Decision {
    Decision {
        outcome: Outcome::ImplicitDeny,
        matched: Vec::new(),
        reason: Some(DenyReason::NoAllow),
    }
}

/// Why an L7 intention refused a call none of its permissions match.
fn l7_refusal(it: &Intention, req: &Request) -> String {
    let allowed: Vec<String> = it.permissions.iter().map(Permission::summary).collect();
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
        "denied: intention {} allows only {}, and this request{this} matches none of them",
        it.label(),
        allowed.join("; ")
    )
}
