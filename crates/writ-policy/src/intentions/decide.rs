//! Deciding calls: the request every evaluator builds, and a compiled set that says which
//! intention decided and why.

use std::collections::{BTreeMap, HashMap};

use super::compile::{compile, parse_sid};
use super::model::{Intention, IntentionError, Permission, is_function_name};
use super::{
    INVOKE_ACTION, KEY_DESTINATION_FUNCTION, KEY_HEADER_PREFIX, KEY_METHOD, KEY_PATH,
    KEY_SOURCE_FUNCTION, POLICY_NAME, RESOURCE_PREFIX,
};
use crate::compile::CompiledPolicy;
use crate::model::{Policy, PolicyKind};
use crate::request::{Context, Principal, Request};
use crate::set::{Decision, Outcome, PolicySet, StatementMiss};

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
