//! Intentions: which function may call which. `check` answers "may S call D?" with the same
//! compiled policy the gateway enforces.

use std::time::Duration;

use time::OffsetDateTime;
use writ_api::intentions::{CheckRequest, IntentionDecision, IntentionVerdict};
use writ_policy::intentions::{HTTP_METHODS, Intention, IntentionSet, is_function_name, request};

use super::{Error, Result};
use crate::state::AppState;
use crate::store::IntentionRecord;

/// Checks a function name in an intention's `field`; `*` (any function) where `wildcard`.
pub fn check_name(field: &str, name: &str, wildcard: bool) -> Result<()> {
    if (wildcard && name == "*") || is_function_name(name) {
        return Ok(());
    }
    let any = if wildcard {
        ", or \"*\" for any function"
    } else {
        ""
    };
    Err(Error::Invalid(format!(
        "{field}: {name:?} is not a function name: use 1 to 128 ASCII letters, digits, '.', '-' \
         or '_'{any}"
    )))
}

/// How often a waiting follower's index is compared with the store's: changes made through
/// any server sharing the store reach waiting followers within this.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The intentions and their index; with `after`, once the index has passed it or `wait`
/// has gone by (a long poll, as gateways follow the intentions).
pub async fn list(
    state: &AppState,
    after: Option<i64>,
    wait: Duration,
) -> Result<(Vec<IntentionRecord>, i64)> {
    if let Some(after) = after {
        let deadline = tokio::time::Instant::now() + wait;
        while state.store.intentions_index().await? <= after
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL_INTERVAL))
                .await;
        }
    }
    Ok(state.store.intentions().await?)
}

/// What writing an intention did.
pub struct Written {
    /// The intentions' index after the write.
    pub index: i64,
    /// Whether it was new (not a replacement).
    pub created: bool,
}

/// Writes an intention, replacing the one for the same source and destination.
pub async fn upsert(state: &AppState, intention: &Intention) -> Result<Written> {
    intention
        .validate()
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let written = state.store.upsert_intention(intention, now).await?;
    Ok(Written {
        index: written.index,
        created: written.previous.is_none(),
    })
}

/// Deletes the intention from `source` to `destination`: it, and the index after.
pub async fn delete(state: &AppState, source: &str, destination: &str) -> Result<(Intention, i64)> {
    state
        .store
        .delete_intention(source, destination)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no intention from {source} to {destination}")))
}

/// The intentions a check decides by: the stored ones, with `proposed` (validated as a
/// write would be) in place of the stored one of its source and destination.
fn with_proposed(
    mut stored: Vec<Intention>,
    proposed: Option<&Intention>,
) -> Result<Vec<Intention>> {
    let Some(p) = proposed else {
        return Ok(stored);
    };
    p.validate()
        .map_err(|e| Error::Invalid(format!("proposed: {e}")))?;
    stored.retain(|i| !(i.source == p.source && i.destination == p.destination));
    stored.push(p.clone());
    Ok(stored)
}

/// Whether the stored intentions allow the call `body` describes, which intention and
/// statements decided, and why.
pub async fn check(state: &AppState, body: &CheckRequest) -> Result<IntentionVerdict> {
    check_name("source", &body.source, false)?;
    check_name("destination", &body.destination, false)?;
    if let Some(m) = &body.method
        && !HTTP_METHODS.contains(&m.as_str())
    {
        return Err(Error::Invalid(format!(
            "method: {m:?} is not an HTTP method: use one of {}",
            HTTP_METHODS.join(", ")
        )));
    }
    if let Some(p) = &body.path
        && !p.starts_with('/')
    {
        return Err(Error::Invalid(format!(
            "path: {p:?} does not start with '/'"
        )));
    }
    let (records, index) = state.store.intentions().await?;
    let stored = records.into_iter().map(|r| r.intention).collect();
    let intentions = with_proposed(stored, body.proposed.as_ref())?;
    let set = IntentionSet::new(intentions, state.trust_domain.as_str())
        .map_err(|e| Error::internal("the stored intentions do not compile", e))?;
    let source_id = format!(
        "spiffe://{}/fn/{}",
        state.trust_domain.as_str(),
        body.source
    );
    let req = request(
        &source_id,
        &body.destination,
        body.method.as_deref(),
        body.path.as_deref(),
        body.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
    );
    let verdict = set.decide(&req);
    Ok(IntentionVerdict {
        decision: if verdict.allowed {
            IntentionDecision::Allowed
        } else {
            IntentionDecision::Denied
        },
        intention: verdict.intention.map(|i| set.intentions()[i].clone()),
        reason: verdict.reason.clone(),
        matched: verdict
            .decision
            .matched
            .iter()
            .filter_map(|m| m.sid.as_deref().map(str::to_string))
            .collect(),
        index,
    })
}
