//! What `diff` reports: the regions of requests one policy allows and the other does not,
//! the conditions under which they differ, and a verified witness for each.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::diff::automaton::{Alphabet, Dfa};

use crate::model::PolicyKind;
use crate::request::{Context, ContextValue, Principal, Request};
use crate::set::Outcome;

/// Which way a difference goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// NEW allows it and OLD does not: new access.
    Added,
    /// OLD allows it and NEW does not: access taken away.
    Removed,
}

/// The answer of [`crate::diff::diff`].
#[derive(Debug, Clone, Serialize)]
pub struct PolicyDiff {
    /// The kind of policy compared.
    #[serde(rename = "policyType")]
    pub kind: PolicyKind,
    /// What NEW allows that OLD does not. Empty exactly when NEW grants nothing more.
    pub added: Vec<Finding>,
    /// What OLD allows that NEW does not.
    pub removed: Vec<Finding>,
}

impl PolicyDiff {
    /// True when some request is, or may be (depending on conditions), allowed by NEW and
    /// refused by OLD.
    pub fn grants_more(&self) -> bool {
        !self.added.is_empty()
    }
}

/// One region of requests that one side allows and the other refuses: every request whose
/// principal, action and resource lie in the listed parts (any combination), under the
/// conditions listed.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Added or removed access.
    pub change: Change,
    /// The principals concerned (resource policies only; empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub principals: Vec<RegionPart>,
    /// The actions concerned.
    pub actions: Vec<RegionPart>,
    /// The resources concerned.
    pub resources: Vec<RegionPart>,
    /// True when the difference holds whatever the request context is.
    pub unconditional: bool,
    /// The Allow statements of the allowing side that match the region
    /// (`NEW new.json Statement[2] (Sid "Read")`).
    #[serde(rename = "allowedBy")]
    pub allowed_by: Vec<String>,
    /// Otherwise, the alternative sets of conditions under which the region differs (any one
    /// suffices). Conditions are compared as written, so a case listed here may be one no
    /// request can reach; then no witness is given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionCase>,
    /// A request writ's evaluator decides as the finding says, checked before it is
    /// reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
    /// When there is no witness, why: the difference is possible but depends on conditions
    /// (or policy variables) for which no request was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unverified: Option<String>,
    /// The region, to test requests against.
    #[serde(skip)]
    pub(crate) cover: Cover,
}

impl Finding {
    /// True when a request with this principal (for resource policies), action and resource
    /// lies in the finding's region, whatever its context.
    pub fn covers(&self, principal: Option<&Principal>, action: &str, resource: &str) -> bool {
        let principal_ok = match &self.cover.principals {
            None => true,
            Some(p) => p.accepts(&principal_word(principal)),
        };
        principal_ok
            && self.cover.actions.accepts(&action.to_ascii_lowercase())
            && self.cover.resources.accepts(resource)
    }
}

/// A principal as a word of the principal language (see the `language` module).
fn principal_word(p: Option<&Principal>) -> String {
    match p {
        None | Some(Principal::Anonymous) => "anonymous".into(),
        Some(Principal::Aws(id)) => format!("aws:{id}"),
        Some(Principal::Service(s)) => format!("service:{}", s.to_ascii_lowercase()),
        Some(Principal::Federated(s)) => format!("federated:{s}"),
        Some(Principal::CanonicalUser(s)) => format!("canonical:{s}"),
        Some(Principal::Spiffe(s)) => format!("spiffe:{s}"),
    }
}

/// The automata of a finding's region.
#[derive(Debug, Clone)]
pub(crate) struct Cover {
    pub(crate) actions: DimensionCover,
    pub(crate) resources: DimensionCover,
    pub(crate) principals: Option<DimensionCover>,
}

/// The regions of one dimension a finding spans, by their signatures over the
/// dimension's patterns.
#[derive(Debug, Clone)]
pub(crate) struct DimensionCover {
    pub(crate) alphabet: Arc<Alphabet>,
    pub(crate) patterns: Arc<Vec<Dfa>>,
    pub(crate) signatures: Vec<Vec<bool>>,
}

impl DimensionCover {
    fn accepts(&self, word: &str) -> bool {
        let signature: Vec<bool> = self
            .patterns
            .iter()
            .map(|d| d.accepts(&self.alphabet, word))
            .collect();
        self.signatures.contains(&signature)
    }
}

/// A set of strings of one dimension, described by the patterns that carve it out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionPart {
    /// The patterns it lies within, and those it lies outside of, as written in the
    /// policies (`s3:Get* except s3:GetObject`).
    pub description: String,
    /// A shortest string of the set.
    pub example: String,
}

/// One combination of conditions under which a region differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConditionCase {
    /// Condition blocks that hold.
    pub holds: Vec<String>,
    /// Condition blocks that do not hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fails: Vec<String>,
}

/// A concrete request, and how each side decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Witness {
    /// The principal, for resource policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// The context keys the request carries.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, ContextValue>,
    /// How OLD decides it.
    pub old: Outcome,
    /// How NEW decides it.
    pub new: Outcome,
}

impl Witness {
    /// The request, to evaluate again.
    pub fn request(&self) -> Request {
        let mut ctx = Context::new();
        for (k, v) in &self.context {
            ctx.insert(k, v.clone());
        }
        let req = Request::new(&self.action, &self.resource).with_context(ctx);
        match &self.principal {
            Some(p) => req.with_principal(p.clone()),
            None => req,
        }
    }
}
