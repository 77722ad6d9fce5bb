//! The admin tokens' route: an operator makes tokens for other operators and gateways
//! ([`crate::service::tokens`]).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;
use writ_api::tokens::{AdminTokenRequest, IssuedToken};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::service::tokens;
use crate::state::AppState;
use crate::tls::ConnInfo;

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
    let made =
        tokens::create_admin(&state, documents, body.ttl.as_deref(), body.description).await?;
    let mut event = auth.first_event(&state, &conn);
    event.reason = Some(format!("admin token {}", state.audit.hmac(&made.issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: made.issued.id,
            token: made.issued.token,
            function: None,
            expires_at: made.expires_at.map(rfc3339),
        }),
    ))
}
