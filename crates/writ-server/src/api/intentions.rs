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
use writ_api::intentions::{
    CheckRequest, IntentionDeleted, IntentionEntry, IntentionList, IntentionVerdict,
    IntentionWritten, IntentionsQuery,
};
use writ_policy::intentions::Intention;

use super::access::Authorized;
use super::{ApiError, ApiJson, ApiQuery, long_poll_wait, rfc3339};
use crate::service::intentions;
use crate::state::AppState;
use crate::store::IntentionRecord;
use crate::tls::ConnInfo;

/// A stored intention as the API shows it.
fn entry(r: IntentionRecord) -> IntentionEntry {
    IntentionEntry {
        intention: r.intention,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

/// Reads are for operators (`writ:ReadIntentions` on `writ:intentions`) and for any
/// function of the trust domain by its SVID, as gateways follow the intentions the way
/// they follow the revocation feed. The list that gateways poll every second is not
/// audited (it would put an event a second per gateway in the log); a check is.
pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(query): ApiQuery<IntentionsQuery>,
) -> Result<Json<IntentionList>, ApiError> {
    let wait = match query.after {
        Some(_) => long_poll_wait(query.wait)?,
        None => std::time::Duration::ZERO,
    };
    let (records, index) = intentions::list(&state, query.after, wait).await?;
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
    let written = intentions::upsert(&state, &intention).await?;
    auth.record_durable(&state, &conn).await?;
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(IntentionWritten {
            intention,
            index: written.index,
            created: written.created,
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
    let (deleted, index) = intentions::delete(&state, &source, &destination).await?;
    auth.record_durable(&state, &conn).await?;
    Ok(Json(IntentionDeleted { deleted, index }))
}

pub(super) async fn check(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<CheckRequest>,
) -> Result<Json<IntentionVerdict>, ApiError> {
    let verdict = intentions::check(&state, &body).await?;
    if auth.caller.operator().is_some() {
        auth.record_read(&state, &conn)?;
    }
    Ok(Json(verdict))
}
