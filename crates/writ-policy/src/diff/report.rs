//! What `diff` reports: the regions of requests one policy allows and the other does not,
//! the conditions under which they differ, and a verified witness for each.

use serde::Serialize;

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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<(String, ContextValue)>,
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
