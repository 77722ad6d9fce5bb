//! The admin tokens' route: an operator makes tokens for other operators and gateways
//! ([`crate::service::tokens`]).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
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
    let documents = super::policy_texts(&body.policies);
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
