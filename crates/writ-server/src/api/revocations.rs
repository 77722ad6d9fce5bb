//! Revocations: an operator revokes a function, an X.509-SVID by serial, or a token; the
//! feed of revocations that gateways and agents follow, with long polls.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use time::OffsetDateTime;
use writ_api::identity::{Feed, Revoked};

use super::access::Authorized;
use super::{ApiError, ApiJson, ApiQuery, long_poll_wait};
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

/// What a revocation revokes, and the action and resource it is decided as.
pub(super) struct Revocation {
    /// What kind of thing.
    pub kind: RevocationKind,
    /// The function's SPIFFE ID, the serial (lowercase hex, no colons) or the token id.
    pub value: String,
    /// The action decided.
    pub action: &'static str,
    /// The resource it is decided on.
    pub resource: String,
    /// The function's name, for a function.
    pub function: Option<String>,
}

/// Reads a revocation request: exactly one field, valid.
pub(super) fn revocation(state: &AppState, body: &RevokeRequest) -> Result<Revocation, ApiError> {
    match (&body.function, &body.serial, &body.token_id) {
        (Some(name), None, None) => {
            super::functions::valid_name(name)?;
            let id = state.function_id(name).map_err(ApiError::bad_request)?;
            Ok(Revocation {
                kind: RevocationKind::Function,
                value: id.to_string(),
                action: "writ:RevokeFunction",
                resource: id.to_string(),
                function: Some(name.clone()),
            })
        }
        (None, Some(serial), None) => {
            let serial = serial.trim().to_ascii_lowercase().replace(':', "");
            if serial.is_empty()
                || serial.len() > 40
                || !serial.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ApiError::bad_request(
                    "serial: give the certificate's serial number in hex (up to 20 bytes, colons allowed)",
                ));
            }
            Ok(Revocation {
                kind: RevocationKind::Serial,
                resource: format!("writ:svid/{serial}"),
                value: serial,
                action: "writ:RevokeSvid",
                function: None,
            })
        }
        (None, None, Some(token_id)) => {
            if token_id.len() != 24 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(
                    "tokenId: a token id is 24 hex digits",
                ));
            }
            Ok(Revocation {
                kind: RevocationKind::Token,
                value: token_id.clone(),
                action: "writ:RevokeToken",
                resource: format!("writ:token/{token_id}"),
                function: None,
            })
        }
        _ => Err(ApiError::bad_request(
            "give exactly one of function, serial or tokenId",
        )),
    }
}

pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RevokeRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let Revocation {
        kind,
        value,
        function,
        ..
    } = revocation(&state, &body)?;
    let function = function.as_deref();
    match kind {
        RevocationKind::Function => {
            if state
                .store
                .function(function.unwrap_or_default())
                .await?
                .is_none()
            {
                return Err(ApiError::not_found(format!(
                    "no function named {:?}",
                    function.unwrap_or_default()
                )));
            }
        }
        RevocationKind::Token => {
            if state.store.token(&value).await?.is_none() {
                return Err(ApiError::not_found(format!("no token with id {value}")));
            }
            state.caches.token_policies.remove(&value);
        }
        RevocationKind::Serial => {}
    }
    let entry = state.store.revoke(kind, &value, function, now).await?;
    if let Some(name) = function {
        state.forget_function(name);
    }
    auth.record_durable(&state, &conn).await?;
    // Take it in at once rather than at the next refresh, so this server enforces it now.
    if let Err(e) = state.take_revocations().await {
        tracing::warn!(error = %e, "could not read the revocation feed back");
    }
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
    let deadline = tokio::time::Instant::now() + wait;
    let mut head = state.feed_head.subscribe();
    loop {
        let entries = state.store.revocations_after(query.after, 1000).await?;
        if !entries.is_empty() || tokio::time::Instant::now() >= deadline {
            let next = entries.last().map_or(query.after.max(0), |e| e.seq);
            return Ok(Json(Feed {
                entries: entries.into_iter().map(revocation_answer).collect(),
                next,
            }));
        }
        // Woken when this server sees the feed advance (its own revocations at once,
        // other servers' within the refresh interval).
        if tokio::time::timeout_at(deadline, head.changed())
            .await
            .is_err()
        {
            continue;
        }
    }
}
