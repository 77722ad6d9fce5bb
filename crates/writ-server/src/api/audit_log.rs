//! The audit log's endpoints: read events and checkpoints (to tail, export and verify the
//! chain on the client, without trusting the server), and take in events that gateways and
//! agents send in batches.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use writ_api::audit::{Accepted, AuditRecords, Checkpoints};

use super::access::Authorized;
use super::{ApiError, ApiJsonOfStructs, ApiQuery, long_poll_wait};
use crate::state::AppState;
use crate::store::AuditFilter;
use writ_api::audit::{CheckpointsQuery, EventBatch};

/// The most events one read returns.
const MAX_PAGE: i64 = 10_000;
/// The most events one batch may send in. A gateway under load records tens of thousands
/// of requests a second, and each batch is a commit (an fsync and a signed checkpoint), so
/// batches are large.
const MAX_BATCH_IN: usize = 10_000;
/// The most events an agent (a function's SVID) may send in one batch: it reports its own
/// function's calls, far fewer than a gateway's, and must not flood the shared log.
const MAX_BATCH_IN_FUNCTION: usize = 1_000;
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

/// Reading the log is not itself logged (refusals are): a verification would otherwise
/// change what it verifies, and a follower would write an event per poll.
pub(super) async fn read_events(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<AuditRecords>, ApiError> {
    if let Some(o) = &q.outcome
        && !matches!(o.as_str(), "allowed" | "denied" | "failed")
    {
        return Err(ApiError::bad_request(format!(
            "outcome: {o:?} is not allowed, denied or failed"
        )));
    }
    let filter = AuditFilter {
        after: q.after.max(0),
        actor: q.actor.clone(),
        since_ms: q.since_ms,
        outcome: q.outcome.clone(),
        limit: q.limit.unwrap_or(1000).clamp(1, MAX_PAGE),
    };
    let deadline = tokio::time::Instant::now() + long_poll_wait(q.wait)?;
    loop {
        let records = state.store.audit_records(&filter).await?;
        if !records.is_empty() || tokio::time::Instant::now() >= deadline {
            let next = records.last().map_or(filter.after, |r| r.seq);
            return Ok(Json(AuditRecords { records, next }));
        }
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
}

pub(super) async fn read_checkpoints(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(q): ApiQuery<CheckpointsQuery>,
) -> Result<Json<Checkpoints>, ApiError> {
    let checkpoints = state
        .store
        .audit_checkpoints(
            q.after.max(0),
            q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE),
        )
        .await?;
    Ok(Json(Checkpoints {
        checkpoints,
        public_keys: state.audit.public_keys().to_vec(),
    }))
}

/// Agents send with their SVID, and report only their own function's calls; gateways
/// (until they have identities of their own) with an admin token allowed
/// writ:PutAuditEvents on the resource of each event they report: `writ:fn/NAME` for the
/// calls they forward to NAME. The access layer decided both before this runs.
pub(super) async fn write_events(
    State(state): State<Arc<AppState>>,
    auth: Authorized,
    ApiJsonOfStructs(body): ApiJsonOfStructs<EventBatch>,
) -> Result<Json<Accepted>, ApiError> {
    let reporter = auth.caller.actor.clone();
    let own_events_only = auth.function().is_some();
    let most = if own_events_only {
        MAX_BATCH_IN_FUNCTION
    } else {
        MAX_BATCH_IN
    };
    if body.events.len() > most {
        return Err(ApiError::bad_request(format!(
            "events: at most {most} per batch from {}, got {}",
            if own_events_only {
                "a function"
            } else {
                "a gateway"
            },
            body.events.len()
        )));
    }
    for (i, e) in body.events.iter().enumerate() {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        if time::OffsetDateTime::parse(&e.time, rfc3339).is_err() {
            return Err(ApiError::bad_request(format!(
                "events[{i}].time: {:?} is not an RFC 3339 time",
                e.time
            )));
        }
        if e.actor.is_empty() || e.action.is_empty() {
            return Err(ApiError::bad_request(format!(
                "events[{i}]: actor and action must not be empty"
            )));
        }
        // Only the calls a gateway or agent decides; the server records its own decisions.
        if !writ_audit::reportable(&e.action) {
            return Err(ApiError::forbidden(format!(
                "events[{i}].action: {:?} is decided and recorded by the server alone; a gateway or agent reports only {}",
                e.action,
                writ_audit::REPORTABLE_ACTIONS.join(", ")
            )));
        }
        // An agent reports what its own function did (decided before this runs).
        if own_events_only && e.actor != reporter {
            return Err(ApiError::internal(
                "an event of another actor passed the access layer",
                &e.actor,
            ));
        }
    }
    let mut events = body.events;
    let count = events.len();
    // Stamped where they lie: a gateway's batch is thousands of events of about 300 bytes.
    for e in &mut events {
        e.reported_by = Some(reporter.clone());
    }
    // The sender may drop its copy once this answers: every event is committed by then.
    state.audit.record_all_durable(events).await?;
    Ok(Json(Accepted {
        accepted: count as u64,
    }))
}
