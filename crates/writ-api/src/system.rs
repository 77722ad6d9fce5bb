//! The server itself: its health, and the OpenAPI document it serves.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether the server serves fully.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum HealthStatus {
    /// Reads and writes work (200).
    Ok,
    /// Reads work but the last write failed (a full disk, a read-only database), and no
    /// write has succeeded since: every change and every audited read fails (503).
    Degraded,
}

/// `GET /v1/health`: 200 when serving; 503 with this shape when degraded, or with the
/// error shape when the store is unreachable or not initialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: HealthStatus,
    /// The trust domain the server issues identities in.
    pub trust_domain: String,
    /// When degraded: why writes fail, in general words (never a path or a database
    /// message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When degraded: when the failing write was, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub write_failed_at: Option<String>,
}

/// `GET /v1/openapi.json`: the OpenAPI 3.1 document, as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct OpenApiDocument(pub serde_json::Value);
