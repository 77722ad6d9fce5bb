//! The function registry: register, list, show and delete functions, and make join tokens
//! for them. Each call reaches its handler authenticated by an admin token and allowed by
//! the token's policies ([`super::access`]); the handler audits what it does.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use writ_api::functions::{Function, FunctionList};
use writ_api::tokens::{IssuedToken, JoinTokenRequest};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::admin;
use crate::attest::{self, AttestationRule};
use crate::duration;
use crate::state::AppState;
use crate::store::{FunctionRecord, TokenKind, TokenRecord};
use crate::tls::ConnInfo;
use crate::tokens;

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
        created_at: rfc3339(f.created_at),
        revoked_at: f.revoked_at.map(rfc3339),
        policies: documents_json(f.policies.as_deref()),
        permissions_boundary: f.boundary.as_deref().map(|b| documents_json(Some(b))),
    })
}

pub(super) fn valid_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "name: {name:?} is not a valid function name: use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
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

pub(super) async fn register_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RegisterFunction>,
) -> Result<impl IntoResponse, ApiError> {
    let id = state
        .function_id(&body.name)
        .map_err(ApiError::bad_request)?;
    attest::check_rules(&body.attestation).map_err(ApiError::bad_request)?;
    let ttl = match &body.x509_ttl {
        Some(text) => {
            let ttl = duration::parse(text)
                .map_err(|e| ApiError::bad_request(format!("x509Ttl: {e}")))?;
            if ttl > state.limits.x509_max_ttl {
                return Err(ApiError::bad_request(format!(
                    "x509Ttl: {text} is longer than the server's maximum, {}",
                    duration::format(state.limits.x509_max_ttl)
                )));
            }
            Some(ttl.whole_seconds())
        }
        None => None,
    };
    let policies: Vec<String> = body
        .policies
        .iter()
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    // The policies are bounded by the operator's own: the function may do only what both
    // allow, so no operator can give a function more than it may do itself. The access
    // layer decided writ:PutFunctionPolicy for a body with policies.
    let boundary = if policies.is_empty() {
        None
    } else {
        admin::compile(&policies).map_err(ApiError::bad_request)?;
        if !auth.allows("writ:PutFunctionPolicy") {
            return Err(ApiError::internal(
                "policies were given without their decision",
                "writ:PutFunctionPolicy",
            ));
        }
        auth.caller
            .operator()
            .and_then(|o| o.stored_policies.clone())
    };
    let record = FunctionRecord {
        policies: (!policies.is_empty())
            .then(|| serde_json::to_string(&policies))
            .transpose()
            .map_err(|e| ApiError::internal("could not encode policies", e))?,
        name: body.name.clone(),
        spiffe_id: id.to_string(),
        attestation: serde_json::to_string(&body.attestation)
            .map_err(|e| ApiError::internal("could not encode the rules", e))?,
        x509_ttl_seconds: ttl,
        created_at: OffsetDateTime::now_utc().unix_timestamp(),
        revoked_at: None,
        boundary,
    };
    state.store.insert_function(&record).await?;
    state.forget_function(&record.name);
    auth.record_durable(&state, &conn).await?;
    Ok((StatusCode::CREATED, Json(function_answer(&state, &record)?)))
}

pub(super) async fn list_functions(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
) -> Result<Json<FunctionList>, ApiError> {
    auth.record_read(&state, &conn)?;
    let all = state.store.functions().await?;
    Ok(Json(FunctionList {
        functions: all
            .iter()
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
    let f = state
        .store
        .function(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no function named {name:?}")))?;
    Ok(Json(function_answer(&state, &f)?))
}

pub(super) async fn delete_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let deleted = state
        .store
        .delete_function(&name, OffsetDateTime::now_utc().unix_timestamp())
        .await?;
    state.forget_function(&name);
    if deleted.is_none() {
        return Err(ApiError::not_found(format!("no function named {name:?}")));
    }
    auth.record_durable(&state, &conn).await?;
    if let Err(e) = state.take_revocations().await {
        tracing::warn!(error = %e, "could not read the revocation feed back");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// How long a join token lives when no TTL is given.
const JOIN_TOKEN_TTL: time::Duration = time::Duration::minutes(10);
/// The longest a join token may live: it is a bearer credential until used.
const JOIN_TOKEN_MAX_TTL: time::Duration = time::Duration::days(7);

pub(super) async fn create_join_token(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<JoinTokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let ttl = match &body.ttl {
        Some(t) => duration::parse(t).map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?,
        None => JOIN_TOKEN_TTL,
    };
    if ttl > JOIN_TOKEN_MAX_TTL {
        return Err(ApiError::bad_request(
            "ttl: a join token lives at most 7d; make one when the function is deployed",
        ));
    }
    let f = state
        .store
        .function(&name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no function named {name:?}")))?;
    // A revoked function cannot log in: a join token for it would only look like it could.
    if f.revoked_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "functionRevoked",
            format!(
                "function {name:?} is revoked; a join token for it could not log in (delete \
                 and register it again to give it a new life)"
            ),
        ));
    }
    let rules: Vec<AttestationRule> = serde_json::from_str(&f.attestation)
        .map_err(|e| ApiError::internal("stored rules are unreadable", e))?;
    if !rules.contains(&AttestationRule::JoinToken) {
        return Err(ApiError::bad_request(format!(
            "function {name:?} does not accept join tokens; its attestation rules are {}",
            rules
                .iter()
                .map(|r| r.method())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let issued = tokens::issue(TokenKind::Join)
        .map_err(|_| ApiError::internal("token generation failed", "random source"))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let expires_at = now + ttl.whole_seconds();
    state
        .store
        .insert_token(&TokenRecord {
            id: issued.id.clone(),
            kind: TokenKind::Join,
            secret_hash: issued.secret_hash.clone(),
            function_name: Some(name.clone()),
            policies: None,
            description: format!("join token for {name}"),
            created_at: now,
            expires_at: Some(expires_at),
            used_at: None,
            revoked_at: None,
        })
        .await?;
    // The resource is the function; the new token is named by its HMAC.
    let mut event = auth.first_event(&state, &conn);
    event.reason = Some(format!("join token {}", state.audit.hmac(&issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: issued.id,
            token: issued.token,
            function: Some(name),
            expires_at: Some(rfc3339(expires_at)),
        }),
    ))
}
