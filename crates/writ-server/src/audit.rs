//! Audit events: every admin change, login, refusal and issuance produces one, through the
//! [`AuditSink`] interface. The tamper-evident log that stores them is a separate part;
//! until it is wired in, [`LogSink`] writes each event as a structured log line.
//!
//! Events never carry secrets: tokens are named by their id, keys not at all.

use std::net::IpAddr;

use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It was allowed and done.
    Allowed,
    /// It was refused: authentication failed or policy denied it.
    Denied,
    /// It was allowed but failed (bad input, or an internal error).
    Failed,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// When, as RFC 3339.
    pub time: String,
    /// Who: a SPIFFE ID, `token:<id>`, or `anonymous`.
    pub actor: String,
    /// How the actor authenticated: `adminToken`, `joinToken`, `oidc`, `x509Svid`, or `none`.
    pub authenticated_by: &'static str,
    /// The action, e.g. `writ:RegisterFunction` or `writ:Login`.
    pub action: &'static str,
    /// What it acted on.
    pub resource: String,
    /// The outcome.
    pub outcome: Outcome,
    /// Why it was refused or failed, or the statement that allowed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The certificate serial issued, for issuance events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// Where the request came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
}

/// The sink could not make the event durable; the caller must not report success.
#[derive(Debug, thiserror::Error)]
#[error("the audit event could not be recorded: {0}")]
pub struct AuditError(pub String);

/// Where audit events go. A sink that returns an error makes the operation that produced
/// the event fail (fail closed).
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError>;
}

/// Writes each event as one log line under the `writ::audit` target (JSON when the server
/// logs JSON).
#[derive(Debug, Default)]
pub struct LogSink;

impl AuditSink for LogSink {
    fn record(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let json = serde_json::to_string(event).map_err(|e| AuditError(e.to_string()))?;
        tracing::info!(target: "writ::audit", event = %json, "audit");
        Ok(())
    }
}
