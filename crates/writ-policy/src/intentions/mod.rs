//! Consul-style intentions: which function may call which, compiled to IAM policy
//! statements so that one engine decides every call.
//!
//! An [`Intention`] says that calls from `source` to `destination` are allowed or denied;
//! either name may be `*`, any function. For a call from S to D, the matching intention with
//! the highest precedence decides:
//!
//! 1. `S -> D` (exact source, exact destination),
//! 2. `* -> D`,
//! 3. `S -> *`,
//! 4. `* -> *`.
//!
//! A `deny` denies. An `allow` without permissions allows. An `allow` with L7
//! [`Permission`]s allows only when one of them matches the request's method, path and
//! headers, and otherwise denies: it does not fall through to a lower-precedence intention.
//! With no matching intention the call is denied.
//!
//! [`compile`] turns a set of intentions into one resource policy (action
//! [`INVOKE_ACTION`] on `writ:fn/NAME`, principals `{"SPIFFE": ...}`), where each
//! statement carries conditions that exclude the calls a higher-precedence intention
//! covers, so at most one intention's statements apply to any call. [`request`] builds the
//! request those statements expect; the gateway and the server both use it, so they decide
//! identically. [`IntentionSet`] does both and says which intention decided and why.
//!
//! ```
//! use writ_policy::intentions::{Intention, IntentionSet, request};
//!
//! let intentions: Vec<Intention> = serde_json::from_str(r#"[
//!   {"source": "*", "destination": "payments", "action": "deny"},
//!   {"source": "orders", "destination": "payments", "action": "allow",
//!    "permissions": [{"methods": ["POST"], "pathExact": "/charge"}]}
//! ]"#).unwrap();
//! let set = IntentionSet::new(intentions, "example.org").unwrap();
//!
//! let post = request("spiffe://example.org/fn/orders", "payments", Some("POST"), Some("/charge"), []);
//! assert!(set.decide(&post).allowed);
//! let get = request("spiffe://example.org/fn/orders", "payments", Some("GET"), Some("/charge"), []);
//! assert!(!set.decide(&get).allowed);
//! let other = request("spiffe://example.org/fn/billing", "payments", Some("POST"), Some("/charge"), []);
//! let verdict = set.decide(&other);
//! assert!(!verdict.allowed);
//! assert_eq!(verdict.reason, "denied by intention * -> payments");
//! ```

mod compile;
mod decide;
mod index;
mod model;
#[cfg(test)]
mod tests;

pub use compile::{SidParts, compile, parse_sid, statement_sid};
pub use decide::{IntentionSet, Verdict, function_of, request};
pub use model::{
    HeaderCondition, HeaderMatch, Intention, IntentionAction, IntentionError, Permission,
    is_function_name, validate_all,
};

/// The action every compiled statement grants or denies: calling a function.
pub const INVOKE_ACTION: &str = "writ:Invoke";

/// The prefix of the resource a call is made on: `writ:fn/NAME`.
pub const RESOURCE_PREFIX: &str = "writ:fn/";

/// The name [`IntentionSet`] gives the compiled policy in decisions.
pub const POLICY_NAME: &str = "intentions";

/// Context key: the calling function's name, taken from its SPIFFE ID
/// (`spiffe://TD/fn/NAME`). Absent when the caller is not a function.
pub const KEY_SOURCE_FUNCTION: &str = "writ:SourceFunction";

/// Context key: the called function's name.
pub const KEY_DESTINATION_FUNCTION: &str = "writ:DestinationFunction";

/// Context key: the HTTP method, as sent (`GET`, `POST`, ...).
pub const KEY_METHOD: &str = "writ:Method";

/// Context key: the request path, without the query string.
pub const KEY_PATH: &str = "writ:Path";

/// Context key prefix: `writ:RequestHeader/<lower-case header name>` holds a header's value.
pub const KEY_HEADER_PREFIX: &str = "writ:RequestHeader/";

/// The HTTP methods a permission may name.
pub const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

/// The longest function name or header name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// The longest path or header value in a permission, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// The longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
