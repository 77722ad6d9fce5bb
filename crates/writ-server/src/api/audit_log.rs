//! The audit log's routes: read records and checkpoints, and take in the events that
//! gateways and agents send in batches ([`crate::service::audit_log`]). The access layer
//! decides each call before its handler runs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use writ_api::audit::{Accepted, AuditRecords, Checkpoints, CheckpointsQuery, EventBatch};

use super::access::Authorized;
use super::{ApiError, ApiJsonOfStructs, ApiQuery, long_poll_wait};
use crate::service::audit_log::{self, RecordQuery, Reporter};
use crate::state::AppState;

/// The largest batch body: 10,000 events of up to 1.6 KiB each (a gateway's are about
/// 350 bytes); senders cap their batches by size as well.
pub(super) const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Which events to read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct EventsQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    since_ms: Option<i64>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    wait: u64,
}

pub(super) async fn read_events(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<AuditRecords>, ApiError> {
    let wait = long_poll_wait(q.wait)?;
    let query = RecordQuery {
        after: q.after,
        limit: q.limit,
        actor: q.actor,
        since_ms: q.since_ms,
        outcome: q.outcome,
    };
    Ok(Json(audit_log::records(&state, query, wait).await?))
}

pub(super) async fn read_checkpoints(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(q): ApiQuery<CheckpointsQuery>,
) -> Result<Json<Checkpoints>, ApiError> {
    Ok(Json(
        audit_log::checkpoints(&state, q.after, q.limit).await?,
    ))
}

/// Agents send with their SVID, and report only their own function's calls; gateways with
/// an admin token allowed writ:PutAuditEvents on the resource of each event they report:
/// `writ:fn/NAME` for the calls they forward to NAME. The access layer decided both
/// before this runs.
pub(super) async fn write_events(
    State(state): State<Arc<AppState>>,
    auth: Authorized,
    ApiJsonOfStructs(body): ApiJsonOfStructs<EventBatch>,
) -> Result<Json<Accepted>, ApiError> {
    let reporter = Reporter {
        actor: auth.caller.actor.clone(),
        is_function: auth.function().is_some(),
    };
    let accepted = audit_log::take_in(&state, &reporter, body.events).await?;
    Ok(Json(Accepted { accepted }))
}
