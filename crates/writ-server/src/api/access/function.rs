//! Functions: authenticated by their X.509-SVID over mutual TLS or by a JWT-SVID for the
//! server, and allowed either by being a live function of the trust domain (their own
//! SVIDs, the feeds every function follows, the events they report) or by their identity
//! policies, their permissions boundary and the resource's own policy (secrets).

use time::OffsetDateTime;
use writ_audit::{Decision, Outcome};
use writ_identity::SpiffeId;
use writ_policy::{Context, PolicyKind, PolicySet, Principal, Request};

use super::{Caller, CallerKind, Callers, Grant, Target};
use crate::api::ApiError;
use crate::state::AppState;
use crate::store::FunctionRecord;
use crate::tls::ConnInfo;

/// A function, authenticated.
#[derive(Debug, Clone)]
pub struct Function {
    /// Its SPIFFE ID.
    pub id: SpiffeId,
    /// Its registration.
    pub record: FunctionRecord,
    /// The serial (lowercase hex) of the X.509-SVID it called with; none for a JWT-SVID.
    pub serial: Option<String>,
}

impl Function {
    /// The function's name (the SPIFFE ID's path after `/fn/`).
    pub fn name(&self) -> &str {
        &self.record.name
    }
}

/// Authenticates the caller by its X.509-SVID (already verified against the bundle by
/// TLS), and checks it is not revoked. Refusals are audited with their cause.
pub(super) async fn by_svid(
    state: &AppState,
    conn: &ConnInfo,
    action: &'static str,
) -> Result<Caller, ApiError> {
    let refuse = |actor: &str, reason: &str| super::refuse_svid(state, conn, action, actor, reason);
    let super::PeerSvid {
        id,
        serial,
        not_before,
    } = super::peer_svid(
        conn,
        "no client certificate: connect with the current X.509-SVID",
    )
    .map_err(|why| refuse("anonymous", why))?;
    let name = id
        .path()
        .strip_prefix("/fn/")
        .filter(|_| id.trust_domain() == state.trust_domain.as_str());
    let Some(name) = name else {
        return Err(refuse(id.as_str(), "not a function of this trust domain"));
    };
    if state.serial_revoked(&serial) {
        return Err(refuse(id.as_str(), &format!("SVID {serial} is revoked")));
    }
    let Some(record) = state.function_for_svid(name).await? else {
        return Err(refuse(id.as_str(), "no such function"));
    };
    if record.revoked_at.is_some() {
        return Err(refuse(id.as_str(), "the function is revoked"));
    }
    // An SVID from before the function was (re-)registered belongs to an earlier life of it.
    // Certificates are backdated 30 s and carry whole seconds, so an SVID issued in the
    // very second of a re-registration is taken as the new life's (see docs/server.md).
    let issued = not_before + 30;
    if issued < record.created_at {
        return Err(refuse(
            id.as_str(),
            "the SVID predates the function's registration",
        ));
    }
    Ok(Caller {
        actor: id.to_string(),
        authenticated_by: "x509Svid",
        kind: CallerKind::Function(Function {
            id,
            record,
            serial: Some(serial),
        }),
    })
}

/// Authenticates a function by a JWT-SVID whose only audience is this server. Refusals
/// are audited with their cause.
pub(super) async fn by_jwt(
    state: &AppState,
    conn: &ConnInfo,
    token: &str,
    action: &'static str,
) -> Result<Caller, ApiError> {
    by_jwt_with_claims(state, conn, token, action)
        .await
        .map(|(caller, _)| caller)
}

/// [`by_jwt`], with the token's claims (its expiry, the serial it was minted with).
pub(crate) async fn by_jwt_with_claims(
    state: &AppState,
    conn: &ConnInfo,
    token: &str,
    action: &str,
) -> Result<(Caller, writ_identity::jwt_svid::JwtSvidClaims), ApiError> {
    let refuse = |actor: &str, why: &str| -> ApiError {
        match state.audit(
            conn,
            actor,
            "jwtSvid",
            action,
            actor,
            Outcome::Denied,
            Some(why.into()),
            None,
        ) {
            Ok(()) => ApiError::unauthenticated(),
            Err(e) => e.into(),
        }
    };
    let now = OffsetDateTime::now_utc();
    let audience = format!("spiffe://{}/writ/server", state.trust_domain);
    let jwks = state.authorities().jwks(now.unix_timestamp());
    // The server's audience alone: a token that also names a function could be replayed
    // here by that function, so it is refused.
    let (id, claims) = match writ_identity::jwt_svid::verify_with(
        token,
        &jwks,
        &state.trust_domain,
        &audience,
        writ_identity::AudienceRule::Exactly,
        now,
        time::Duration::seconds(30),
    ) {
        Ok(verified) => verified,
        Err(e) => return Err(refuse("anonymous", &format!("JWT-SVID refused: {e}"))),
    };
    // A token minted with an X.509-SVID falls with it.
    if claims
        .x509_svid_serial
        .as_deref()
        .is_some_and(|s| state.serial_revoked(s))
    {
        return Err(refuse(
            id.as_str(),
            "the X.509-SVID this JWT-SVID was minted with is revoked",
        ));
    }
    let Some(name) = id
        .path()
        .strip_prefix("/fn/")
        .filter(|_| id.trust_domain() == state.trust_domain.as_str())
    else {
        return Err(refuse(id.as_str(), "not a function"));
    };
    // The function must exist, not be revoked, and the token must be from its current
    // registration.
    let record = state
        .function_for_svid(name)
        .await?
        .filter(|f| f.revoked_at.is_none() && claims.iat >= f.created_at);
    let Some(record) = record else {
        return Err(refuse(
            id.as_str(),
            "the function is revoked, deleted, or re-registered since the token was issued",
        ));
    };
    Ok((
        Caller {
            actor: id.to_string(),
            authenticated_by: "jwtSvid",
            kind: CallerKind::Function(Function {
                id,
                record,
                serial: None,
            }),
        },
        claims,
    ))
}

/// Decides a function's call. On routes for any function, being a live function of the
/// trust domain (checked when it authenticated) is the decision; on routes decided by
/// policy, the function's identity policies, its permissions boundary and the secret's
/// resource policy decide, default deny.
pub(super) async fn decide(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    function: &Function,
    callers: Callers,
    target: Target,
) -> Result<Grant, ApiError> {
    if callers != Callers::OperatorsOrFunctionsByPolicy {
        return Ok(Grant {
            action: target.action,
            resource: target.resource,
            decision: Decision::Allowed,
            matched: Vec::new(),
        });
    }
    let Target {
        action,
        resource,
        secret,
    } = target;
    let mut set = PolicySet::new();
    let record = &function.record;
    add_stored(
        state,
        &mut set,
        PolicyKind::Identity,
        record.policies.as_deref(),
    )?;
    // The policies of the operator who set the function's: what they may grant at most.
    add_stored(
        state,
        &mut set,
        PolicyKind::PermissionsBoundary,
        record.boundary.as_deref(),
    )?;
    if let Some(name) = &secret {
        let (found, _) = crate::service::secrets::secret_meta(state, name).await?;
        if let Some(rp) = found.as_ref().and_then(|s| s.resource_policy.as_deref()) {
            let compiled = crate::service::secrets::compiled(state, PolicyKind::Resource, rp)
                .map_err(|e| ApiError::internal("a stored resource policy is invalid", e))?;
            set.add((*compiled).clone());
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut context = Context::new();
    context.insert("aws:SecureTransport", true);
    context.insert("aws:SourceIp", conn.remote.ip());
    context.insert("aws:EpochTime", now.unix_timestamp());
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        context.insert("aws:CurrentTime", t);
    }
    let request = Request::new(action, &resource)
        .with_principal(Principal::Spiffe(function.id.to_string()))
        .with_context(context)
        .with_principal_context();
    let decision = set.evaluate(&request);
    let matched: Vec<String> = decision.matched.iter().map(|m| m.label()).collect();
    let outcome = decision.outcome;
    if !decision.is_allowed() {
        // The same 403 whether the secret exists or not, so callers cannot learn names.
        let mut why = format!(
            "{action} on {resource} is not allowed for {} ({})",
            function.id,
            decision.outcome.as_str()
        );
        if decision.reason == Some(writ_policy::DenyReason::NotInBoundary) {
            why.push_str(
                ": the function's policies allow it, but not its permissions boundary \
                 (the policies of the operator who set them)",
            );
        }
        return Err(super::denied(
            state, conn, caller, action, &resource, outcome, matched, why,
        ));
    }
    Ok(Grant {
        action,
        resource,
        decision: outcome,
        matched,
    })
}

/// Adds policies stored as a JSON array of documents (a function's identity policies, or
/// its permissions boundary) to `set` as `kind`. One that cannot be read fails the request:
/// a boundary read as none would bound nothing.
fn add_stored(
    state: &AppState,
    set: &mut PolicySet,
    kind: PolicyKind,
    stored: Option<&str>,
) -> Result<(), ApiError> {
    let what = match kind {
        PolicyKind::PermissionsBoundary => "a stored permissions boundary",
        _ => "a stored function policy",
    };
    let documents: Vec<String> = stored
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::internal(&format!("{what} is unreadable"), e))?
        .unwrap_or_default();
    for doc in &documents {
        let compiled = crate::service::secrets::compiled(state, kind, doc)
            .map_err(|e| ApiError::internal(&format!("{what} is invalid"), e))?;
        set.add((*compiled).clone());
    }
    Ok(())
}
