//! Shared API-key quotas: a gateway counting a usage plan's quota together with the other
//! gateways on the same server leases admissions from the server's count (`POST
//! /v1/quotas/lease`), spends them locally and asks for more before it runs out. The
//! server never grants past the limit the request names, so while it is reachable the
//! gateways together admit at most the plan's quota in each period.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/quotas/lease`: up to `want` more admissions for API key `key` in the period
/// of `period_seconds` that starts at `period_start`, counted against `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaLeaseRequest {
    /// The API key's id (the `ID` of `writ.apikey.ID.SECRET`); 1 to 128 letters, digits,
    /// `-`, `_` or `.`.
    pub key: String,
    /// The quota's period, in seconds (at least 1).
    pub period_seconds: u64,
    /// When the period began, in Unix seconds: a multiple of `period_seconds`, and the
    /// period of the server's clock (give or take five minutes).
    pub period_start: i64,
    /// The plan's quota: the most admissions granted in the period, across all gateways.
    pub limit: u64,
    /// How many admissions the gateway asks for (1 to `limit`).
    pub want: u64,
}

/// The admissions granted, and the period's count after the grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLease {
    /// How many admissions the gateway may spend now: `want`, or fewer (0 when the
    /// period's count has reached the limit).
    pub granted: u64,
    /// How many admissions have been granted in the period so far, to every gateway,
    /// this grant included.
    pub counted: u64,
}
