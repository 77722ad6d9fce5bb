//! The audit log as callers read and feed it: pages of records, followed by long poll (to
//! tail, export and verify the chain on the client, without trusting the server); the
//! signed checkpoints; and batches of the decisions that gateways and agents made, taken in
//! durably. Writing the server's own decisions is [`crate::audit`]'s.
//!
//! Reading the log is not itself logged (refusals are, by the access layer): a
//! verification would otherwise change what it verifies, and a follower would write an
//! event per poll.

use std::time::Duration;

use writ_api::audit::{AuditRecords, Checkpoints};
use writ_audit::Event;

use super::{Error, Result};
use crate::state::AppState;
use crate::store::AuditFilter;

/// The most records one read returns.
pub const MAX_PAGE: i64 = 10_000;
/// The most events one batch may send in. A gateway under load records tens of thousands
/// of requests a second, and each batch is a commit (an fsync and a signed checkpoint), so
/// batches are large.
pub const MAX_BATCH_IN: usize = 10_000;
/// The most events an agent (a function's SVID) may send in one batch: it reports its own
/// function's calls, far fewer than a gateway's, and must not flood the shared log.
pub const MAX_BATCH_IN_FUNCTION: usize = 1_000;
/// How often a long poll looks again for new records.
const POLL_EVERY: Duration = Duration::from_millis(250);

/// Which records to read.
#[derive(Debug, Default)]
pub struct RecordQuery {
    /// Records after this sequence number.
    pub after: i64,
    /// At most this many (1 to [`MAX_PAGE`]; 1,000 when absent).
    pub limit: Option<i64>,
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only those at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only this outcome: `allowed`, `denied` or `failed`.
    pub outcome: Option<String>,
}

/// The records `q` selects; when there are none yet, waits up to `wait` for the first
/// (a follower's long poll). `next` is the `after` of the following read.
pub async fn records(state: &AppState, q: RecordQuery, wait: Duration) -> Result<AuditRecords> {
    if let Some(o) = &q.outcome
        && !matches!(o.as_str(), "allowed" | "denied" | "failed")
    {
        return Err(Error::Invalid(format!(
            "outcome: {o:?} is not allowed, denied or failed"
        )));
    }
    let filter = AuditFilter {
        after: q.after.max(0),
        actor: q.actor,
        since_ms: q.since_ms,
        outcome: q.outcome,
        limit: q.limit.unwrap_or(1000).clamp(1, MAX_PAGE),
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let records = state.store.audit_records(&filter).await?;
        if !records.is_empty() || tokio::time::Instant::now() >= deadline {
            let next = records.last().map_or(filter.after, |r| r.seq);
            return Ok(AuditRecords { records, next });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// The signed checkpoints after `after` (at most `limit`, up to [`MAX_PAGE`]), and the
/// public keys that verify them.
pub async fn checkpoints(state: &AppState, after: i64, limit: Option<i64>) -> Result<Checkpoints> {
    let checkpoints = state
        .store
        .audit_checkpoints(after.max(0), limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE))
        .await?;
    Ok(Checkpoints {
        checkpoints,
        public_keys: state.audit.public_keys().to_vec(),
    })
}

/// Who sends a batch in: a gateway (an operator's token) or a function's agent (its SVID),
/// which reports only its own function's calls.
#[derive(Debug)]
pub struct Reporter {
    /// The sender, as the access layer authenticated it; stamped on every event.
    pub actor: String,
    /// Whether the sender is a function (an agent), held to its own events and a smaller
    /// batch.
    pub is_function: bool,
}

/// Takes in a batch of events that a gateway or agent decided: each checked (an RFC 3339
/// time, an actor and action, an action that only gateways and agents decide), all
/// stamped with their reporter, and every one durable when this returns, so the sender
/// may drop its copy. The access layer decided before this runs that the reporter may
/// report on each event's resource.
pub async fn take_in(state: &AppState, reporter: &Reporter, mut events: Vec<Event>) -> Result<u64> {
    let most = if reporter.is_function {
        MAX_BATCH_IN_FUNCTION
    } else {
        MAX_BATCH_IN
    };
    if events.len() > most {
        return Err(Error::Invalid(format!(
            "events: at most {most} per batch from {}, got {}",
            if reporter.is_function {
                "a function"
            } else {
                "a gateway"
            },
            events.len()
        )));
    }
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    for (i, e) in events.iter().enumerate() {
        if time::OffsetDateTime::parse(&e.time, rfc3339).is_err() {
            return Err(Error::Invalid(format!(
                "events[{i}].time: {:?} is not an RFC 3339 time",
                e.time
            )));
        }
        if e.actor.is_empty() || e.action.is_empty() {
            return Err(Error::Invalid(format!(
                "events[{i}]: actor and action must not be empty"
            )));
        }
        // Only the calls a gateway or agent decides; the server records its own decisions.
        if !writ_audit::reportable(&e.action) {
            return Err(Error::Forbidden(format!(
                "events[{i}].action: {:?} is decided and recorded by the server alone; a gateway or agent reports only {}",
                e.action,
                writ_audit::REPORTABLE_ACTIONS.join(", ")
            )));
        }
        // An agent reports what its own function did (decided before this runs).
        if reporter.is_function && e.actor != reporter.actor {
            return Err(Error::internal(
                "an event of another actor passed the access layer",
                &e.actor,
            ));
        }
    }
    let count = events.len() as u64;
    // Stamped where they lie: a gateway's batch is thousands of events of about 300 bytes.
    for e in &mut events {
        e.reported_by = Some(reporter.actor.clone());
    }
    state.audit.record_all_durable(events).await?;
    Ok(count)
}
