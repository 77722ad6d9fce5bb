//! Operators: authenticated by an admin token, allowed by the token's own policies
//! ([`crate::admin`] lists the actions and their resources).

use std::sync::Arc;

use axum::http::HeaderMap;
use time::OffsetDateTime;
use writ_audit::{Decision, Outcome};
use writ_policy::PolicySet;

use super::{Caller, CallerKind, Grant};
use crate::api::ApiError;
use crate::state::AppState;
use crate::store::TokenKind;
use crate::tls::ConnInfo;
use crate::{admin, tokens};

/// The bearer token of a request, if it sent one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// An operator: its token and the policies that decide its calls.
#[derive(Clone)]
pub struct Operator {
    /// The token's id (never shown: audit events name it by its HMAC).
    token_id: String,
    /// The token's policies, compiled.
    policies: Arc<PolicySet>,
    /// The token's own policies, as stored (a JSON array of policy documents): the most
    /// this operator can give a function, kept as the function's permissions boundary.
    pub stored_policies: Option<String>,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator").finish_non_exhaustive()
    }
}

/// Authenticates the admin token of a request's `Authorization: Bearer`. A refusal is
/// audited with its cause under `action` and counted against the source; a source that
/// failed too often is refused unheard.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    conn: &ConnInfo,
    action: &'static str,
) -> Result<Caller, ApiError> {
    authenticate_token(state, bearer(headers), conn, action).await
}

/// Authenticates an admin token presented by some means (a bearer header, or the token a
/// console session was started with), as [`authenticate`] does.
pub(crate) async fn authenticate_token(
    state: &AppState,
    presented: Option<&str>,
    conn: &ConnInfo,
    action: &'static str,
) -> Result<Caller, ApiError> {
    crate::api::admit(state, conn, action)?;
    let refuse = |actor: &str, reason: &str| -> ApiError {
        crate::api::authentication_failed(state, conn);
        match state.audit(
            conn,
            actor,
            "adminToken",
            action,
            "writ:api",
            Outcome::Denied,
            Some(reason.to_string()),
            None,
        ) {
            Ok(()) => ApiError::unauthenticated(),
            Err(e) => e.into(),
        }
    };
    let Some(presented) = presented else {
        return Err(refuse("anonymous", "no Authorization: Bearer token"));
    };
    let Some(parsed) = tokens::parse(presented).filter(|p| p.kind == TokenKind::Admin) else {
        return Err(refuse("anonymous", "not an admin token"));
    };
    let actor = state.token_actor(parsed.id);
    let Some(record) = state.store.token(parsed.id).await? else {
        return Err(refuse(&actor, "unknown token id"));
    };
    let now = OffsetDateTime::now_utc();
    if record.kind != TokenKind::Admin || !parsed.secret_matches(&record.secret_hash) {
        return Err(refuse(&actor, "wrong token secret"));
    }
    if record.revoked_at.is_some() {
        return Err(refuse(&actor, "the token is revoked"));
    }
    if record.expires_at.is_some_and(|e| e <= now.unix_timestamp()) {
        return Err(refuse(&actor, "the token has expired"));
    }
    let policies = match state.caches.token_policies.get(&record.id) {
        Some(p) => p,
        None => {
            let documents: Vec<String> =
                serde_json::from_str(record.policies.as_deref().unwrap_or("[]"))
                    .map_err(|e| ApiError::internal("a stored token policy is unreadable", e))?;
            let set = Arc::new(
                admin::compile(&documents)
                    .map_err(|e| ApiError::internal("a stored token policy is invalid", e))?,
            );
            state
                .caches
                .token_policies
                .insert(record.id.clone(), set.clone());
            set
        }
    };
    Ok(Caller {
        actor,
        authenticated_by: "adminToken",
        kind: CallerKind::Operator(Operator {
            token_id: record.id,
            policies,
            stored_policies: record.policies,
        }),
    })
}

impl Operator {
    /// Whether the operator's policies allow `action` on `resource` from `source`, decided
    /// as a route decides it but neither audited nor answered: for narrowing a list to
    /// what the caller may see item by item.
    pub(crate) fn allows(&self, action: &str, resource: &str, source: std::net::IpAddr) -> bool {
        admin::decide(
            &self.policies,
            action,
            resource,
            &self.token_id,
            Some(source),
            OffsetDateTime::now_utc(),
        )
        .is_allowed()
    }
}

/// Decides `action` on `resource` by the operator's policies; a denial is audited and
/// answered 403 with the reason.
pub(super) fn decide(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    operator: &Operator,
    action: &'static str,
    resource: &str,
) -> Result<Grant, ApiError> {
    // A token named as the resource appears in the audit log by the HMAC of its id.
    let audited = match resource.strip_prefix("writ:token/") {
        Some(id) => format!("writ:token/{}", state.audit.hmac(id)),
        None => resource.to_string(),
    };
    let decision = admin::decide(
        &operator.policies,
        action,
        resource,
        &operator.token_id,
        Some(conn.remote.ip()),
        OffsetDateTime::now_utc(),
    );
    let matched: Vec<String> = decision.matched.iter().map(|m| m.label()).collect();
    if !decision.is_allowed() {
        let why = format!(
            "{action} on {audited} is not allowed by the token's policies ({})",
            decision.outcome.as_str()
        );
        let outcome = decision.outcome;
        return Err(super::denied(
            state, conn, caller, action, &audited, outcome, matched, why,
        ));
    }
    Ok(Grant {
        action,
        resource: audited,
        decision: Decision::Allowed,
        matched,
    })
}
