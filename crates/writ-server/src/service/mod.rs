//! The server's domain: what each part of the API does, as functions over the store and
//! the server's state, with nothing of HTTP in them. An API handler ([`crate::api`])
//! decodes its request, calls one of these, audits what its grants were used for, and
//! encodes the answer; anything else that acts on the server's state (a console, a
//! declarative `apply`) calls the same functions and gets the same checks.
//!
//! | module | what it holds |
//! |---|---|
//! | [`functions`] | the function registry: register, update, list, show, delete, reinstate; join tokens |
//! | [`gateways`] | gateways' own identities: register, list; their join tokens |
//! | [`identity`] | logins of functions and gateways by attestation, SVID renewal, JWT-SVIDs, the trust bundle |
//! | [`intentions`] | which function may call which: list (and follow), write, delete, check |
//! | [`tokens`] | admin tokens for operators and gateways |
//! | [`ca`] | rotating the trust domain's signing keys |
//! | [`quotas`] | API-key quotas that several gateways count together: leases from the count |
//! | [`revocations`] | revoking a function, an SVID serial or a token; the revocation feed |
//! | [`secrets`] | secrets and their versions, labels, resource policies and rotation, for the `/v1` and the AWS-compatible APIs |
//! | [`audit_log`] | reading the audit log and its checkpoints; taking in gateways' and agents' events |
//!
//! Authorization is not here: it is decided before a handler runs ([`crate::api::access`]),
//! and the functions that put its grants on record take that decision as an argument.

pub mod audit_log;
pub mod ca;
pub mod functions;
pub mod gateways;
pub mod identity;
pub mod intentions;
pub mod quotas;
pub mod revocations;
pub mod secrets;
pub mod tokens;

use crate::audit::{AuditError, ChangeError};
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
    /// The caller did not prove who it is: the same answer for every cause, whose reason
    /// is in the audit log, not in the answer.
    #[error("authentication failed")]
    Unauthenticated,
    /// The caller may not do this, whatever its policies say (an action only the server
    /// records, say): the message says why.
    #[error("{0}")]
    Forbidden(String),
    /// It conflicts with the current state: a stable code, and why.
    #[error("{message}")]
    Conflict {
        /// A stable code (`functionRevoked`).
        code: &'static str,
        /// Why, for people.
        message: String,
    },
    /// Something writ depends on failed (a rotation hook): a stable code, and what failed.
    #[error("{message}")]
    Dependency {
        /// A stable code (`rotationFailed`).
        code: &'static str,
        /// What failed, for people.
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
    /// The audit log could not take the event, so what it records was not done.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<ChangeError> for Error {
    fn from(e: ChangeError) -> Error {
        match e {
            ChangeError::Store(e) => Error::Store(e),
            ChangeError::Audit(e) => Error::Audit(e),
        }
    }
}

impl Error {
    /// Whether the caller's request is at fault (a bad field, a missing name, a conflict),
    /// rather than the server.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_)
                | Error::NotFound(_)
                | Error::Unauthenticated
                | Error::Forbidden(_)
                | Error::Conflict { .. }
        )
    }

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

/// A Unix time as RFC 3339 (UTC), as every answer and record shows times.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
