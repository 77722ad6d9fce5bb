//! The audit log: read its records and signed checkpoints (to tail, export and verify the
//! chain on the client, without trusting the server), and send in the events gateways and
//! agents decide. The records, events, checkpoints and keys are writ-audit's own types.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use writ_audit::chain::Record;
use writ_audit::checkpoint::{Checkpoint, PublicKey};
use writ_audit::{Event, Outcome};

use crate::schemas::{AuditEventSchema, AuditRecordSchema, CheckpointSchema, PublicKeySchema};

/// The most events one read of `GET /v1/audit/events` returns.
pub const MAX_PAGE: i64 = 10_000;

/// `GET /v1/audit/events`: which records, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Records after this sequence number.
    #[serde(default)]
    pub after: i64,
    /// At most this many (1 to 10,000; 1,000 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Only events whose actor is this (a SPIFFE ID, `token:<hmac>`, `anonymous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events from this time on, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Only events that ended so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(value_type = Option<crate::schemas::OutcomeSchema>)]
    pub outcome: Option<Outcome>,
    /// How long to wait for a record when there is none, in seconds (0 to 60).
    #[serde(default)]
    pub wait: u64,
}

/// A page of records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditRecords {
    /// The records, in chain order.
    #[schema(value_type = Vec<AuditRecordSchema>)]
    pub records: Vec<Record>,
    /// The sequence number to pass as `after` next time.
    pub next: i64,
}

/// `GET /v1/audit/checkpoints`: which checkpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsQuery {
    /// Checkpoints after this sequence number.
    #[serde(default)]
    pub after: i64,
    /// At most this many (1 to 10,000; 10,000 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// Signed checkpoints, and the keys that verify them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoints {
    /// The checkpoints, oldest first.
    #[schema(value_type = Vec<CheckpointSchema>)]
    pub checkpoints: Vec<Checkpoint>,
    /// The keys that verify them.
    #[schema(value_type = Vec<PublicKeySchema>)]
    pub public_keys: Vec<PublicKey>,
}

/// `POST /v1/audit/events`: a batch of the calls a gateway or agent decided (action
/// `writ:Invoke`). A gateway's token needs `writ:PutAuditEvents` on each event's resource;
/// an agent's SVID reports only its own function's events, at most 1,000 a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// The events (at most 10,000).
    #[schema(value_type = Vec<AuditEventSchema>)]
    pub events: Vec<Event>,
}

/// A batch taken in: every event is durable when this answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    /// How many events were recorded.
    pub accepted: u64,
}
