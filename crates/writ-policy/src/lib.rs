//! The AWS IAM policy language, as writ evaluates it: parse, validate, compile, evaluate
//! and explain. This crate does no I/O.
//!
//! [`diff`] compares two policies: what one allows that the other does not, exactly for
//! actions, resources and principals, with the conditions under which it differs and a
//! witness request checked by the evaluator.
//!
//! ```
//! use writ_policy::{CompiledPolicy, ParseOptions, PolicyKind, PolicySet, Request, Outcome};
//!
//! let text = r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Sid": "ReadOrders",
//!     "Effect": "Allow",
//!     "Action": ["dynamodb:GetItem", "dynamodb:Query"],
//!     "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
//!   }]
//! }"#;
//! let policy = writ_policy::parse(text, &ParseOptions::new(PolicyKind::Identity))
//!     .into_result()
//!     .expect("valid policy");
//! let mut set = PolicySet::new();
//! set.add(CompiledPolicy::new("orders-role", PolicyKind::Identity, &policy).expect("compiles"));
//!
//! let table = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
//! let allowed = set.evaluate(&Request::new("dynamodb:GetItem", table));
//! assert_eq!(allowed.outcome, Outcome::Allowed);
//! assert_eq!(allowed.matched[0].sid.as_deref(), Some("ReadOrders"));
//! let denied = set.evaluate(&Request::new("dynamodb:DeleteItem", table));
//! assert_eq!(denied.outcome, Outcome::ImplicitDeny);
//! ```

mod compile;
mod diagnostic;
pub mod diff;
pub mod intentions;
mod model;
pub mod nesting;
mod operator;
mod parse;
mod pattern;
mod request;
mod set;
mod values;

pub use compile::{CompileError, CompiledPolicy};
pub use diagnostic::{Diagnostic, Location, Severity};
pub use model::{
    Condition, Effect, PatternElement, Policy, PolicyKind, PrincipalElement, PrincipalKind,
    Principals, Statement, Version,
};
pub use operator::{Operator, OperatorError, OperatorKind, SetQualifier, ValueType};
pub use parse::{DEFAULT_MAX_BYTES, ParseOptions, Parsed, parse, parse_bytes};
pub use request::{Context, ContextValue, Principal, Request};
pub use set::{
    Decision, DenyReason, Explanation, MatchedStatement, Outcome, PolicySet, StatementMiss,
    StatementTrace,
};

/// Matches `text` against `pattern` as the `StringLike` operator does: `*` matches any run of
/// characters (including none), `?` any one character, everything else itself, case-sensitively.
/// Policy variables are not expanded. Other parts of writ use this for name patterns (OIDC
/// subjects and claims, for example) so there is one glob language throughout.
///
/// ```
/// assert!(writ_policy::string_like("repo:acme/*:ref:refs/heads/main", "repo:acme/api:ref:refs/heads/main"));
/// assert!(!writ_policy::string_like("repo:acme/*", "repo:evil/api"));
/// ```
pub fn string_like(pattern: &str, text: &str) -> bool {
    match pattern::Pattern::glob(pattern, false) {
        Ok(p) => p.matches(text, &compile::NoVars),
        Err(_) => false,
    }
}
