//! The function registry's routes: register, update, list, show, delete and reinstate
//! functions, and make join tokens for them ([`crate::service::functions`]). Each call reaches its handler
//! authenticated by an admin token and allowed by the token's policies
//! ([`super::access`]); the handler audits what it does.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;
use writ_api::functions::{Function, FunctionList};
use writ_api::tokens::{IssuedToken, JoinTokenRequest};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::attest::AttestationRule;
use crate::duration;
use crate::service::functions;
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::tls::ConnInfo;

/// A stored JSON array of policy documents, as JSON values (a document that is not JSON is
/// shown as its text).
fn documents_json(stored: Option<&str>) -> Vec<Value> {
    stored
        .and_then(|p| serde_json::from_str::<Vec<String>>(p).ok())
        .unwrap_or_default()
        .iter()
        .map(|p| serde_json::from_str::<Value>(p).unwrap_or(Value::String(p.clone())))
        .collect()
}

/// A function's record as the API shows it.
fn function_answer(state: &AppState, f: &FunctionRecord) -> Result<Function, ApiError> {
    Ok(Function {
        name: f.name.clone(),
        spiffe_id: f.spiffe_id.clone(),
        attestation: serde_json::from_str(&f.attestation)
            .map_err(|e| ApiError::internal("a function's stored rules are unreadable", e))?,
        x509_ttl: duration::format(
            f.x509_ttl_seconds
                .map(time::Duration::seconds)
                .unwrap_or(state.limits.x509_ttl),
        ),
        x509_ttl_pinned: f.x509_ttl_seconds.is_some(),
        created_at: rfc3339(f.created_at),
        revoked_at: f.revoked_at.map(rfc3339),
        policies: documents_json(f.policies.as_deref()),
        permissions_boundary: f.boundary.as_deref().map(|b| documents_json(Some(b))),
    })
}

/// A function registration.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RegisterFunction {
    name: String,
    #[serde(default = "default_rules")]
    attestation: Vec<AttestationRule>,
    #[serde(default)]
    x509_ttl: Option<String>,
    /// Identity policies: what the function may do (read secrets, say). None: nothing.
    #[serde(default)]
    policies: Vec<Value>,
}

fn default_rules() -> Vec<AttestationRule> {
    vec![AttestationRule::JoinToken]
}

/// What a registration or an update gives, with its policies bounded by the operator's
/// own: the function may do only what both allow, so no operator can give a function more
/// than it may do itself. The access layer decided `writ:PutFunctionPolicy` for a body
/// with policies.
fn registration(
    auth: &Authorized,
    name: String,
    attestation: Vec<AttestationRule>,
    x509_ttl: Option<String>,
    policies: &[Value],
) -> Result<functions::Registration, ApiError> {
    let policies = super::policy_texts(policies);
    if !policies.is_empty() && !auth.allows("writ:PutFunctionPolicy") {
        return Err(ApiError::internal(
            "policies were given without their decision",
            "writ:PutFunctionPolicy",
        ));
    }
    let boundary = auth
        .caller
        .operator()
        .and_then(|o| o.stored_policies.clone());
    Ok(functions::Registration {
        name,
        attestation,
        x509_ttl,
        policies,
        boundary,
    })
}

pub(super) async fn register_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RegisterFunction>,
) -> Result<impl IntoResponse, ApiError> {
    let registration = registration(
        &auth,
        body.name,
        body.attestation,
        body.x509_ttl,
        &body.policies,
    )?;
    let record = functions::register(&state, registration).await?;
    auth.record_durable(&state, &conn).await?;
    Ok((StatusCode::CREATED, Json(function_answer(&state, &record)?)))
}

/// A function update: what a registration gives, but the name (in the path).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct UpdateFunction {
    #[serde(default = "default_rules")]
    attestation: Vec<AttestationRule>,
    #[serde(default)]
    x509_ttl: Option<String>,
    #[serde(default)]
    policies: Vec<Value>,
}

pub(super) async fn update_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<UpdateFunction>,
) -> Result<Json<Function>, ApiError> {
    let registration = registration(&auth, name, body.attestation, body.x509_ttl, &body.policies)?;
    let record = functions::update(&state, registration).await?;
    auth.record_durable(&state, &conn).await?;
    Ok(Json(function_answer(&state, &record)?))
}

pub(super) async fn reinstate_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
) -> Result<Json<Function>, ApiError> {
    let record = functions::reinstate(&state, &name).await?;
    auth.record_durable(&state, &conn).await?;
    Ok(Json(function_answer(&state, &record)?))
}

pub(super) async fn list_functions(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
) -> Result<Json<FunctionList>, ApiError> {
    auth.record_read(&state, &conn)?;
    let all = functions::list(&state).await?;
    // The list shows each function as `writ:GetFunction` does: only those the token may
    // read one by one (a token scoped to some functions sees only them).
    let visible = |f: &&FunctionRecord| {
        auth.caller
            .operator()
            .is_some_and(|op| op.allows("writ:GetFunction", &f.spiffe_id, conn.remote.ip()))
    };
    Ok(Json(FunctionList {
        functions: all
            .iter()
            .filter(visible)
            .map(|f| function_answer(&state, f))
            .collect::<Result<_, _>>()?,
    }))
}

pub(super) async fn get_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
) -> Result<Json<Function>, ApiError> {
    auth.record_read(&state, &conn)?;
    let f = functions::get(&state, &name).await?;
    Ok(Json(function_answer(&state, &f)?))
}

pub(super) async fn delete_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    functions::delete(&state, &name).await?;
    auth.record_durable(&state, &conn).await?;
    functions::take_in_revocations(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn create_join_token(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<JoinTokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let made = functions::create_join_token(&state, &name, body.ttl.as_deref()).await?;
    // The resource is the function; the new token is named by its HMAC.
    let mut event = auth.first_event(&state, &conn);
    event.reason = Some(format!("join token {}", state.audit.hmac(&made.issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: made.issued.id,
            token: made.issued.token,
            function: Some(name),
            expires_at: Some(rfc3339(made.expires_at)),
        }),
    ))
}
