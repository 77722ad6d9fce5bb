//! The parsed policy: the grammar of the AWS IAM policy language as plain data.
//!
//! [`crate::parse`] builds these from JSON text and has already checked them, so a [`Policy`]
//! is always well-formed. Compile one with [`crate::CompiledPolicy`] to evaluate it.

use std::fmt;

use serde::Serialize;

use crate::operator::Operator;

/// The policy language version. Policy variables are expanded only in `2012-10-17`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Version {
    /// `2012-10-17`, the current version.
    #[serde(rename = "2012-10-17")]
    V2012_10_17,
    /// `2008-10-17`, the original version: `${...}` is literal text.
    #[serde(rename = "2008-10-17")]
    V2008_10_17,
}

impl Version {
    /// The version string as written in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2012_10_17 => "2012-10-17",
            Version::V2008_10_17 => "2008-10-17",
        }
    }
}

/// A whole policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `Version`; `None` when absent, which AWS treats as `2008-10-17`.
    pub version: Option<Version>,
    /// `Id`, if given.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

impl Policy {
    /// The version that governs evaluation: an absent `Version` means `2008-10-17`.
    pub fn effective_version(&self) -> Version {
        self.version.unwrap_or(Version::V2008_10_17)
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Effect {
    /// Grants, unless denied elsewhere or limited by a boundary or session policy.
    Allow,
    /// Denies, whatever else allows.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `Sid`, if given.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal` or `NotPrincipal`; present only in resource-based policies.
    pub principal: Option<PrincipalElement>,
    /// `Action` or `NotAction`.
    pub action: PatternElement,
    /// `Resource` or `NotResource`: the parser requires one in every statement.
    pub resource: PatternElement,
    /// The condition block, flattened: one entry per operator and key, all ANDed.
    pub conditions: Vec<Condition>,
}

/// `Action` / `NotAction` or `Resource` / `NotResource`: patterns with `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternElement {
    /// True for `NotAction` / `NotResource`.
    pub negated: bool,
    /// The patterns, as written.
    pub patterns: Vec<String>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalElement {
    /// True for `NotPrincipal`.
    pub negated: bool,
    /// Who is named.
    pub principals: Principals,
}

/// The principals a statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    /// `"Principal": "*"`: everyone, including anonymous callers.
    Any,
    /// `"Principal": {"AWS": [...], "Service": [...], ...}`.
    Named(Vec<(PrincipalKind, Vec<String>)>),
}

/// The keys of a principal map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PrincipalKind {
    /// `AWS`: account ids, account root ARNs, user and role ARNs, or `*`.
    #[serde(rename = "AWS")]
    Aws,
    /// `Service`: service principals such as `apigateway.amazonaws.com`.
    Service,
    /// `Federated`: identity providers such as `cognito-identity.amazonaws.com`.
    Federated,
    /// `CanonicalUser`: S3 canonical user ids.
    CanonicalUser,
    /// `SPIFFE`: writ's own workload identities, `spiffe://trust-domain/path`; `*` and `?`
    /// wildcards are allowed.
    #[serde(rename = "SPIFFE")]
    Spiffe,
}

impl PrincipalKind {
    /// All kinds, in the order they are documented.
    pub const ALL: [PrincipalKind; 5] = [
        PrincipalKind::Aws,
        PrincipalKind::Service,
        PrincipalKind::Federated,
        PrincipalKind::CanonicalUser,
        PrincipalKind::Spiffe,
    ];

    /// The key as written in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Aws => "AWS",
            PrincipalKind::Service => "Service",
            PrincipalKind::Federated => "Federated",
            PrincipalKind::CanonicalUser => "CanonicalUser",
            PrincipalKind::Spiffe => "SPIFFE",
        }
    }
}

impl fmt::Display for PrincipalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operator applied to one condition key, with the values it is compared against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The operator, with its `IfExists` suffix and set qualifier.
    pub operator: Operator,
    /// The condition key as written, e.g. `aws:SourceArn`; keys compare case-insensitively.
    pub key: String,
    /// The values; JSON numbers and booleans are kept as their text.
    pub values: Vec<String>,
}

/// Where a policy is attached, which decides what it may contain and how it combines with
/// others in a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyKind {
    /// Attached to the caller (an execution role, a function identity): no `Principal`.
    Identity,
    /// Attached to the resource (a function, a secret): names who may act with `Principal`.
    Resource,
    /// A permissions boundary: the most an identity's policies can grant.
    PermissionsBoundary,
    /// A session policy: limits a session further.
    Session,
}

impl PolicyKind {
    /// True for the kinds that must name a principal.
    pub fn requires_principal(self) -> bool {
        self == PolicyKind::Resource
    }

    /// A short name for people: `identity`, `resource`, `boundary`, `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Identity => "identity",
            PolicyKind::Resource => "resource",
            PolicyKind::PermissionsBoundary => "boundary",
            PolicyKind::Session => "session",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
