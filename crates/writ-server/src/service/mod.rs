//! The server's domain: what each part of the API does, as functions over the store and
//! the server's state, with nothing of HTTP in them. An API handler ([`crate::api`])
//! decodes its request, calls one of these, audits what its grants were used for, and
//! encodes the answer; anything else that acts on the server's state (a console, a
//! declarative `apply`) calls the same functions and gets the same checks.
//!
//! | module | what it holds |
//! |---|---|
//! | [`functions`] | the function registry: register, list, show, delete; join tokens |
//! | [`intentions`] | which function may call which: list (and follow), write, delete, check |
//! | [`tokens`] | admin tokens for operators and gateways |
//! | [`ca`] | rotating the trust domain's signing keys |
//! | [`quotas`] | API-key quotas that several gateways count together: leases from the count |
//! | [`revocations`] | revoking a function, an SVID serial or a token; the revocation feed |
//!
//! Authorization is not here: it is decided before a handler runs ([`crate::api::access`]).
//! Secrets keep their domain in [`crate::api::secrets`]' shared functions and
//! `writ-secrets`; logins and SVIDs in [`crate::api::identity`] and `writ-identity`.

pub mod ca;
pub mod functions;
pub mod intentions;
pub mod quotas;
pub mod revocations;
pub mod tokens;

use crate::store::StoreError;

/// Why a domain function refused or failed. Messages say what and where (the field), and
/// never carry a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is wrong: the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// What it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with the current state: a stable code, and why.
    #[error("{message}")]
    Conflict {
        /// A stable code (`functionRevoked`).
        code: &'static str,
        /// Why, for people.
        message: String,
    },
    /// Something failed that the caller cannot fix: what was being done, and the cause
    /// (logged, not shown to callers).
    #[error("{context}: {cause}")]
    Internal {
        /// What was being done.
        context: &'static str,
        /// The cause.
        cause: String,
    },
    /// The store failed, or refused a duplicate.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// An internal failure: what was being done, and its cause.
    pub fn internal(context: &'static str, cause: impl std::fmt::Display) -> Error {
        Error::Internal {
            context,
            cause: cause.to_string(),
        }
    }
}

/// The result of a domain function.
pub type Result<T> = std::result::Result<T, Error>;
