//! Operators' endpoints: functions, tokens, revocations and the CA. Each call is
//! authenticated by an admin token and authorized by the policy engine against the token's
//! policies; each outcome is audited.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{ApiError, ApiJson, rfc3339};
use crate::admin;
use crate::attest::{self, AttestationRule};
use crate::authority;
use crate::duration;
use crate::state::AppState;
use crate::store::{FunctionRecord, KeyKind, RevocationKind, TokenKind, TokenRecord};
use crate::tls::ConnInfo;
use crate::tokens;
use writ_audit::{Decision, Outcome};

/// The bearer token of a request, if it sent one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// An authenticated operator whose call policy allowed.
pub(super) struct Operator {
    /// `token:<hmac of the token id>`.
    pub actor: String,
    /// The statements that allowed the call.
    pub matched: Vec<String>,
    /// The token's own policies, as stored (a JSON array of policy documents): the most
    /// this operator can give a function ([`register_function`]).
    pub policies: Option<String>,
}

/// Authenticates the admin token and decides `action` on `resource`. Refusals and denials
/// are audited with their cause; the caller audits what it then does ([`audit_ok`] for
/// changes, [`audit_read`] for reads).
pub(super) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    conn: &ConnInfo,
    action: &'static str,
    resource: &str,
) -> Result<Operator, ApiError> {
    // A token named as the resource appears in the audit log by the HMAC of its id.
    let audited_resource = match resource.strip_prefix("writ:token/") {
        Some(id) => format!("writ:token/{}", state.audit.hmac(id)),
        None => resource.to_string(),
    };
    let resource_name = audited_resource.as_str();
    super::admit(state, conn, action)?;
    let refuse = |actor: &str, reason: String| -> ApiError {
        super::authentication_failed(state, conn);
        match state.audit(
            conn,
            actor,
            "adminToken",
            action,
            resource_name,
            Outcome::Denied,
            Some(reason),
            None,
        ) {
            Ok(()) => ApiError::unauthenticated(),
            Err(e) => e.into(),
        }
    };
    let Some(presented) = bearer(headers) else {
        return Err(refuse("anonymous", "no Authorization: Bearer token".into()));
    };
    let Some(parsed) = tokens::parse(presented).filter(|p| p.kind == TokenKind::Admin) else {
        return Err(refuse("anonymous", "not an admin token".into()));
    };
    let actor = state.token_actor(parsed.id);
    let Some(record) = state.store.token(parsed.id).await? else {
        return Err(refuse(&actor, "unknown token id".into()));
    };
    let now = OffsetDateTime::now_utc();
    if record.kind != TokenKind::Admin || !parsed.secret_matches(&record.secret_hash) {
        return Err(refuse(&actor, "wrong token secret".into()));
    }
    if record.revoked_at.is_some() {
        return Err(refuse(&actor, "the token is revoked".into()));
    }
    if record.expires_at.is_some_and(|e| e <= now.unix_timestamp()) {
        return Err(refuse(&actor, "the token has expired".into()));
    }
    let policies = {
        let cached = state
            .policy_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&record.id)
            .cloned();
        match cached {
            Some(p) => p,
            None => {
                let documents: Vec<String> = serde_json::from_str(
                    record.policies.as_deref().unwrap_or("[]"),
                )
                .map_err(|e| ApiError::internal("a stored token policy is unreadable", e))?;
                let set = Arc::new(
                    admin::compile(&documents)
                        .map_err(|e| ApiError::internal("a stored token policy is invalid", e))?,
                );
                state
                    .policy_cache
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(record.id.clone(), set.clone());
                set
            }
        }
    };
    let decision = admin::decide(
        &policies,
        action,
        resource,
        &record.id,
        Some(conn.remote.ip()),
        now,
    );
    let matched: Vec<String> = decision.matched.iter().map(|m| m.label()).collect();
    if !decision.is_allowed() {
        let why = format!(
            "{action} on {resource} is not allowed by the token's policies ({})",
            decision.outcome.as_str()
        );
        let mut event = state.event(
            conn,
            &actor,
            "adminToken",
            action,
            resource_name,
            Outcome::Denied,
        );
        event.decision = Some(match decision.outcome {
            writ_policy::Outcome::ExplicitDeny => Decision::ExplicitDeny,
            _ => Decision::ImplicitDeny,
        });
        event.matched = matched;
        event.reason = Some(why.replace(resource, resource_name));
        state.audit.record(event)?;
        return Err(ApiError::forbidden(why));
    }
    Ok(Operator {
        actor,
        matched,
        policies: record.policies,
    })
}

fn allowed_event(
    state: &AppState,
    operator: &Operator,
    action: &'static str,
    resource: &str,
    conn: &ConnInfo,
) -> writ_audit::Event {
    let mut event = state.event(
        conn,
        &operator.actor,
        "adminToken",
        action,
        resource,
        Outcome::Allowed,
    );
    event.decision = Some(Decision::Allowed);
    event.matched = operator.matched.clone();
    event
}

/// Audits an admin change and waits until the event is durable: the change is reported
/// only then (and a failure to record it fails the request).
pub(super) async fn audit_ok(
    state: &AppState,
    operator: &Operator,
    action: &'static str,
    resource: &str,
    conn: &ConnInfo,
) -> Result<(), ApiError> {
    state
        .audit
        .record_durable(allowed_event(state, operator, action, resource, conn))
        .await?;
    Ok(())
}

/// Audits an allowed read (queued with the next batch).
pub(super) fn audit_read(
    state: &AppState,
    operator: &Operator,
    action: &'static str,
    resource: &str,
    conn: &ConnInfo,
) -> Result<(), ApiError> {
    state
        .audit
        .record(allowed_event(state, operator, action, resource, conn))?;
    Ok(())
}

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

fn function_json(state: &AppState, f: &FunctionRecord) -> Value {
    let rules: Value = serde_json::from_str(&f.attestation).unwrap_or(Value::Null);
    json!({
        "name": f.name,
        "spiffeId": f.spiffe_id,
        "attestation": rules,
        "x509Ttl": duration::format(
            f.x509_ttl_seconds
                .map(time::Duration::seconds)
                .unwrap_or(state.limits.x509_ttl)
        ),
        "createdAt": rfc3339(f.created_at),
        "revokedAt": f.revoked_at.map(rfc3339),
        "policies": documents_json(f.policies.as_deref()),
        "permissionsBoundary": f.boundary.as_deref().map(|b| documents_json(Some(b))),
    })
}

fn valid_name(name: &str) -> Result<(), ApiError> {
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
    headers: HeaderMap,
    ApiJson(body): ApiJson<RegisterFunction>,
) -> Result<impl IntoResponse, ApiError> {
    valid_name(&body.name)?;
    let id = state
        .function_id(&body.name)
        .map_err(ApiError::bad_request)?;
    let operator = authorize(
        &state,
        &headers,
        &conn,
        "writ:RegisterFunction",
        id.as_str(),
    )
    .await?;
    attest::check_rules(&body.attestation).map_err(ApiError::bad_request)?;
    // Who may log in as the function, and what it may do, are each an action of their own:
    // registering alone gives a function nothing but join-token logins.
    let mut granted = Vec::new();
    if body.attestation != default_rules() {
        let action = "writ:PutAttestationRules";
        granted.push((
            action,
            authorize(&state, &headers, &conn, action, id.as_str()).await?,
        ));
    }
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
    // allow, so no operator can give a function more than it may do itself.
    let boundary = if policies.is_empty() {
        None
    } else {
        admin::compile(&policies).map_err(ApiError::bad_request)?;
        let action = "writ:PutFunctionPolicy";
        let allowed = authorize(&state, &headers, &conn, action, id.as_str()).await?;
        let boundary = allowed.policies.clone();
        granted.push((action, allowed));
        boundary
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
    audit_ok(
        &state,
        &operator,
        "writ:RegisterFunction",
        id.as_str(),
        &conn,
    )
    .await?;
    for (action, operator) in &granted {
        audit_ok(&state, operator, action, id.as_str(), &conn).await?;
    }
    Ok((StatusCode::CREATED, Json(function_json(&state, &record))))
}

pub(super) async fn list_functions(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let operator = authorize(
        &state,
        &headers,
        &conn,
        "writ:ListFunctions",
        "writ:functions",
    )
    .await?;
    audit_read(
        &state,
        &operator,
        "writ:ListFunctions",
        "writ:functions",
        &conn,
    )?;
    let all = state.store.functions().await?;
    Ok(Json(json!({
        "functions": all.iter().map(|f| function_json(&state, f)).collect::<Vec<_>>()
    })))
}

async fn named_function(
    state: &AppState,
    name: &str,
) -> Result<(writ_identity::SpiffeId, Option<FunctionRecord>), ApiError> {
    valid_name(name)?;
    let id = state.function_id(name).map_err(ApiError::bad_request)?;
    Ok((id, state.store.function(name).await?))
}

pub(super) async fn get_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    valid_name(&name)?;
    let id = state.function_id(&name).map_err(ApiError::bad_request)?;
    let operator = authorize(&state, &headers, &conn, "writ:GetFunction", id.as_str()).await?;
    audit_read(&state, &operator, "writ:GetFunction", id.as_str(), &conn)?;
    let (_, found) = named_function(&state, &name).await?;
    let f = found.ok_or_else(|| ApiError::not_found(format!("no function named {name:?}")))?;
    Ok(Json(function_json(&state, &f)))
}

pub(super) async fn delete_function(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_name(&name)?;
    let id = state.function_id(&name).map_err(ApiError::bad_request)?;
    let operator = authorize(&state, &headers, &conn, "writ:DeleteFunction", id.as_str()).await?;
    let deleted = state
        .store
        .delete_function(&name, OffsetDateTime::now_utc().unix_timestamp())
        .await?;
    state.forget_function(&name);
    if deleted.is_none() {
        return Err(ApiError::not_found(format!("no function named {name:?}")));
    }
    audit_ok(&state, &operator, "writ:DeleteFunction", id.as_str(), &conn).await?;
    if let Err(e) = state.take_revocations().await {
        tracing::warn!(error = %e, "could not read the revocation feed back");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A join token request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CreateJoinToken {
    #[serde(default)]
    ttl: Option<String>,
}

/// How long a join token lives when no TTL is given.
const JOIN_TOKEN_TTL: time::Duration = time::Duration::minutes(10);
/// The longest a join token may live: it is a bearer credential until used.
const JOIN_TOKEN_MAX_TTL: time::Duration = time::Duration::days(7);

pub(super) async fn create_join_token(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<CreateJoinToken>,
) -> Result<impl IntoResponse, ApiError> {
    valid_name(&name)?;
    let id = state.function_id(&name).map_err(ApiError::bad_request)?;
    let operator = authorize(&state, &headers, &conn, "writ:CreateJoinToken", id.as_str()).await?;
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
    let mut event = allowed_event(
        &state,
        &operator,
        "writ:CreateJoinToken",
        id.as_str(),
        &conn,
    );
    event.reason = Some(format!("join token {}", state.audit.hmac(&issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": issued.id,
            "token": issued.token,
            "function": name,
            "expiresAt": rfc3339(expires_at),
        })),
    ))
}

/// An admin token request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CreateAdminToken {
    policies: Vec<Value>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    description: String,
}

pub(super) async fn create_admin_token(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateAdminToken>,
) -> Result<impl IntoResponse, ApiError> {
    let operator = authorize(&state, &headers, &conn, "writ:CreateToken", "writ:token").await?;
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
    let mut event = allowed_event(&state, &operator, "writ:CreateToken", "writ:token", &conn);
    event.reason = Some(format!("admin token {}", state.audit.hmac(&issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": issued.id,
            "token": issued.token,
            "expiresAt": expires_at.map(rfc3339),
        })),
    ))
}

/// A revocation: exactly one of the fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Revoke {
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    token_id: Option<String>,
}

pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Revoke>,
) -> Result<impl IntoResponse, ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (kind, value, resource, action, function) = match (
        &body.function,
        &body.serial,
        &body.token_id,
    ) {
        (Some(name), None, None) => {
            valid_name(name)?;
            let id = state.function_id(name).map_err(ApiError::bad_request)?;
            (
                RevocationKind::Function,
                id.to_string(),
                id.to_string(),
                "writ:RevokeFunction",
                Some(name.as_str()),
            )
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
            let resource = format!("writ:svid/{serial}");
            (
                RevocationKind::Serial,
                serial,
                resource,
                "writ:RevokeSvid",
                None,
            )
        }
        (None, None, Some(token_id)) => {
            if token_id.len() != 24 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(
                    "tokenId: a token id is 24 hex digits",
                ));
            }
            (
                RevocationKind::Token,
                token_id.clone(),
                format!("writ:token/{token_id}"),
                "writ:RevokeToken",
                None,
            )
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of function, serial or tokenId",
            ));
        }
    };
    let operator = authorize(&state, &headers, &conn, action, &resource).await?;
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
            state
                .policy_cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&value);
        }
        RevocationKind::Serial => {}
    }
    let entry = state.store.revoke(kind, &value, function, now).await?;
    if let Some(name) = function {
        state.forget_function(name);
    }
    let audited = match kind {
        RevocationKind::Token => format!("writ:token/{}", state.audit.hmac(&value)),
        _ => resource.clone(),
    };
    audit_ok(&state, &operator, action, &audited, &conn).await?;
    // Take it in at once rather than at the next refresh, so this server enforces it now.
    if let Err(e) = state.take_revocations().await {
        tracing::warn!(error = %e, "could not read the revocation feed back");
    }
    Ok((StatusCode::CREATED, Json(json!({"revocation": entry}))))
}

pub(super) async fn describe_ca(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let operator = authorize(&state, &headers, &conn, "writ:DescribeCa", "writ:ca").await?;
    audit_read(&state, &operator, "writ:DescribeCa", "writ:ca", &conn)?;
    Ok(Json(ca_json(&state)))
}

fn ca_json(state: &AppState) -> Value {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let authorities = state.authorities();
    let signing_ca = authorities.signing_ca(now).map(|k| k.record.id.clone());
    let signing_jwt = authorities
        .signing_jwt_key(now)
        .map(|k| k.record.id.clone());
    let describe = |r: &crate::store::KeyRecord, signing: &Option<String>| {
        let status = if signing.as_deref() == Some(r.id.as_str()) {
            "signing"
        } else if r.active_from > now {
            "prepared"
        } else {
            "retiring"
        };
        json!({
            "id": r.id,
            "kind": r.kind.as_str(),
            "status": status,
            "activeFrom": rfc3339(r.active_from),
            "publishedUntil": r.publish_until.map(rfc3339),
        })
    };
    let keys: Vec<Value> = authorities
        .cas
        .iter()
        .filter(|k| k.record.publish_until.is_none_or(|u| now < u))
        .map(|k| describe(&k.record, &signing_ca))
        .chain(
            authorities
                .jwt_keys
                .iter()
                .filter(|k| k.record.publish_until.is_none_or(|u| now < u))
                .map(|k| describe(&k.record, &signing_jwt)),
        )
        .collect();
    json!({
        "trustDomain": state.trust_domain.as_str(),
        "keys": keys,
        "x509Bundle": authorities.bundle_pem(now),
        "jwks": authorities.jwks(now),
    })
}

/// A rotation request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Rotate {
    /// `x509`, `jwt` or `all`.
    #[serde(default = "all")]
    kind: String,
    /// How long the new key is published before it signs; `0s` signs at once.
    #[serde(default)]
    activate_after: Option<String>,
}

fn all() -> String {
    "all".into()
}

/// How long a new key is published before it signs, unless the request says otherwise:
/// long enough for gateways and agents, which follow the bundle every second, to have it.
const DEFAULT_ACTIVATE_AFTER: time::Duration = time::Duration::minutes(1);
/// The longest a new key may wait to sign.
const MAX_ACTIVATE_AFTER: time::Duration = time::Duration::days(30);

pub(super) async fn rotate_ca(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Json<Value>, ApiError> {
    let kinds: &[KeyKind] = match body.kind.as_str() {
        "x509" => &[KeyKind::X509],
        "jwt" => &[KeyKind::Jwt],
        "all" => &[KeyKind::X509, KeyKind::Jwt],
        other => {
            return Err(ApiError::bad_request(format!(
                "kind: {other:?} is not x509, jwt or all"
            )));
        }
    };
    let delay = match body.activate_after.as_deref() {
        None => DEFAULT_ACTIVATE_AFTER,
        Some("0s" | "0") => time::Duration::ZERO,
        Some(text) => duration::parse(text)
            .map_err(|e| ApiError::bad_request(format!("activateAfter: {e}")))?,
    };
    if delay > MAX_ACTIVATE_AFTER {
        return Err(ApiError::bad_request(
            "activateAfter: at most 30d (a new CA lives 365d from when it is made)",
        ));
    }
    let operator = authorize(&state, &headers, &conn, "writ:RotateCa", "writ:ca").await?;
    let now = OffsetDateTime::now_utc();
    let active_from = now.unix_timestamp() + delay.whole_seconds();
    let mut new_keys = Vec::new();
    for kind in kinds {
        // The replaced key may sign right up to `active_from` a credential that lives the
        // longest lifetime allowed; it stays in the bundle until that expires.
        let (record, longest) = match kind {
            KeyKind::X509 => (
                authority::new_ca_record(&state.trust_domain, &state.master, now, active_from),
                state.limits.x509_max_ttl,
            ),
            KeyKind::Jwt => (
                authority::new_jwt_record(&state.trust_domain, &state.master, now, active_from),
                state.limits.jwt_max_ttl,
            ),
        };
        let record = record.map_err(|e| ApiError::internal("could not make a new key", e))?;
        // Certificates are backdated by 30 s; a minute of margin covers that and clock skew.
        let retire_at = active_from + longest.whole_seconds() + 60;
        new_keys.push((record, retire_at));
    }
    // All kinds rotate together or not at all.
    state.store.rotate_keys(&new_keys).await?;
    audit_ok(&state, &operator, "writ:RotateCa", "writ:ca", &conn).await?;
    state
        .refresh(now)
        .await
        .map_err(|e| ApiError::internal("could not load the new keys", e))?;
    Ok(Json(ca_json(&state)))
}
