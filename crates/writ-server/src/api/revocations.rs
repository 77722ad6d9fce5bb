//! The revocations' routes: an operator revokes a function, an X.509-SVID by serial, or a
//! token; gateways and agents follow the feed with long polls
//! ([`crate::service::revocations`]).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use writ_api::identity::{Feed, Revoked};

use super::access::Authorized;
use super::{ApiError, ApiJson, ApiQuery, long_poll_wait};
use crate::service::revocations;
use crate::state::AppState;
use crate::store::RevocationKind;
use crate::tls::ConnInfo;
use writ_api::identity::{FeedQuery, RevokeRequest};

/// A feed entry as the API shows it.
fn revocation_answer(r: crate::store::Revocation) -> writ_api::identity::Revocation {
    writ_api::identity::Revocation {
        seq: r.seq,
        kind: match r.kind {
            RevocationKind::Function => writ_api::identity::RevocationKind::Function,
            RevocationKind::Serial => writ_api::identity::RevocationKind::Serial,
            RevocationKind::Token => writ_api::identity::RevocationKind::Token,
        },
        value: r.value,
        revoked_at: r.revoked_at,
    }
}

pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let what = revocations::revocation(&state, &body)?;
    let entry = revocations::revoke(&state, &what).await?;
    auth.record_durable(&state, &conn).await?;
    // Take it in at once rather than at the next refresh, so this server enforces it now.
    crate::service::functions::take_in_revocations(&state).await;
    Ok((
        StatusCode::CREATED,
        Json(Revoked {
            revocation: revocation_answer(entry),
        }),
    ))
}

/// Gateways and agents follow the feed with their SVID; operators with a token.
pub(super) async fn revocation_feed(
    State(state): State<Arc<AppState>>,
    _auth: Authorized,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Json<Feed>, ApiError> {
    let wait = long_poll_wait(query.wait)?;
    let (entries, next) = revocations::feed(&state, query.after, wait).await?;
    Ok(Json(Feed {
        entries: entries.into_iter().map(revocation_answer).collect(),
        next,
    }))
}
