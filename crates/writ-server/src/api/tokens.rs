//! Admin tokens: an operator makes tokens for other operators and gateways, each with
//! IAM-language policies no wider than what it needs ([`crate::admin`]).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;
use time::OffsetDateTime;
use writ_api::tokens::{AdminTokenRequest, IssuedToken};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::admin;
use crate::duration;
use crate::state::AppState;
use crate::store::{TokenKind, TokenRecord};
use crate::tls::ConnInfo;
use crate::tokens;

pub(super) async fn create_admin_token(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<AdminTokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    // Each policy is given as a JSON document (an object) or as its text.
    let documents: Vec<String> = body
        .policies
        .iter()
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    admin::compile(&documents).map_err(ApiError::bad_request)?;
    let ttl = body
        .ttl
        .as_deref()
        .map(duration::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?;
    let issued = tokens::issue(TokenKind::Admin)
        .map_err(|_| ApiError::internal("token generation failed", "random source"))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let expires_at = ttl.map(|t| now + t.whole_seconds());
    state
        .store
        .insert_token(&TokenRecord {
            id: issued.id.clone(),
            kind: TokenKind::Admin,
            secret_hash: issued.secret_hash.clone(),
            function_name: None,
            policies: Some(
                serde_json::to_string(&documents)
                    .map_err(|e| ApiError::internal("could not encode policies", e))?,
            ),
            description: body.description.clone(),
            created_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
        })
        .await?;
    let mut event = auth.first_event(&state, &conn);
    event.reason = Some(format!("admin token {}", state.audit.hmac(&issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: issued.id,
            token: issued.token,
            function: None,
            expires_at: expires_at.map(rfc3339),
        }),
    ))
}
