//! Intentions: which function may call which. Operators write them with an admin token;
//! gateways follow them with their SVID; `check` answers "may S call D?" with the same
//! compiled policy the gateway enforces.
//!
//! | call | action | resource |
//! |---|---|---|
//! | `GET /v1/intentions[?after=INDEX&wait=SECONDS]` | `writ:ReadIntentions` (or any SVID of the trust domain) | `writ:intentions` |
//! | `PUT /v1/intentions` | `writ:WriteIntention` | `writ:intention/SOURCE/DESTINATION` |
//! | `DELETE /v1/intentions?source=S&destination=D` | `writ:DeleteIntention` | `writ:intention/SOURCE/DESTINATION` |
//! | `POST /v1/intentions/check` | `writ:ReadIntentions` (or any SVID of the trust domain) | `writ:intentions` |

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use time::OffsetDateTime;
use writ_api::intentions::{
    IntentionDecision, IntentionDeleted, IntentionEntry, IntentionList, IntentionVerdict,
    IntentionWritten,
};
use writ_policy::intentions::{HTTP_METHODS, Intention, IntentionSet, is_function_name, request};

use super::access::Authorized;
use super::{ApiError, ApiJson, ApiQuery, long_poll_wait, rfc3339};
use crate::state::AppState;
use crate::store::IntentionRecord;
use crate::tls::ConnInfo;
use writ_api::intentions::{CheckRequest, IntentionsQuery};

pub(super) fn check_name(field: &str, name: &str, wildcard: bool) -> Result<(), ApiError> {
    if (wildcard && name == "*") || is_function_name(name) {
        return Ok(());
    }
    let any = if wildcard {
        ", or \"*\" for any function"
    } else {
        ""
    };
    Err(ApiError::bad_request(format!(
        "{field}: {name:?} is not a function name: use 1 to 128 ASCII letters, digits, '.', '-' \
         or '_'{any}"
    )))
}

/// A stored intention as the API shows it.
fn entry(r: IntentionRecord) -> IntentionEntry {
    IntentionEntry {
        intention: r.intention,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

/// How often a waiting follower's index is compared with the store's: changes made through
/// any server sharing the store reach waiting followers within this.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Reads are for operators (`writ:ReadIntentions` on `writ:intentions`) and for any
/// function of the trust domain by its SVID, as gateways follow the intentions the way
/// they follow the revocation feed. The list that gateways poll every second is not
/// audited (it would put an event a second per gateway in the log); a check is.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(query): ApiQuery<IntentionsQuery>,
) -> Result<Json<IntentionList>, ApiError> {
    if let Some(after) = query.after {
        let wait = long_poll_wait(query.wait)?;
        let deadline = tokio::time::Instant::now() + wait;
        while state.store.intentions_index().await? <= after
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + POLL_INTERVAL))
                .await;
        }
    }
    let (records, index) = state.store.intentions().await?;
    Ok(Json(IntentionList {
        intentions: records.into_iter().map(entry).collect(),
        index,
    }))
}

pub(super) async fn upsert(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(intention): ApiJson<Intention>,
) -> Result<impl IntoResponse, ApiError> {
    intention
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let written = state.store.upsert_intention(&intention, now).await?;
    auth.record_durable(&state, &conn).await?;
    let status = if written.previous.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(IntentionWritten {
            intention,
            index: written.index,
            created: written.previous.is_none(),
        }),
    ))
}

/// The query of a delete.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    source: Option<String>,
    destination: Option<String>,
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiQuery(query): ApiQuery<DeleteQuery>,
) -> Result<Json<IntentionDeleted>, ApiError> {
    // The access layer read both (a request without them is refused before this).
    let (Some(source), Some(destination)) = (query.source, query.destination) else {
        return Err(ApiError::bad_request(
            "source and destination: write DELETE /v1/intentions?source=S&destination=D",
        ));
    };
    let Some((deleted, index)) = state.store.delete_intention(&source, &destination).await? else {
        return Err(ApiError::not_found(format!(
            "no intention from {source} to {destination}"
        )));
    };
    auth.record_durable(&state, &conn).await?;
    Ok(Json(IntentionDeleted { deleted, index }))
}

pub(super) async fn check(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<CheckRequest>,
) -> Result<Json<IntentionVerdict>, ApiError> {
    check_name("source", &body.source, false)?;
    check_name("destination", &body.destination, false)?;
    if let Some(m) = &body.method
        && !HTTP_METHODS.contains(&m.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "method: {m:?} is not an HTTP method: use one of {}",
            HTTP_METHODS.join(", ")
        )));
    }
    if let Some(p) = &body.path
        && !p.starts_with('/')
    {
        return Err(ApiError::bad_request(format!(
            "path: {p:?} does not start with '/'"
        )));
    }
    if auth.caller.operator().is_some() {
        auth.record_read(&state, &conn)?;
    }
    let (records, index) = state.store.intentions().await?;
    let set = IntentionSet::new(
        records.into_iter().map(|r| r.intention).collect(),
        state.trust_domain.as_str(),
    )
    .map_err(|e| ApiError::internal("the stored intentions do not compile", e))?;
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
    Ok(Json(IntentionVerdict {
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
    }))
}
