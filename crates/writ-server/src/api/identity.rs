//! Functions' endpoints: log in with an attestation and get an X.509-SVID; renew it and
//! mint JWT-SVIDs over mTLS with the current SVID; read the trust bundle and follow the
//! revocation feed.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};
use writ_api::identity::{Bundle, Jwks, JwtSvid, Svid};
use writ_identity::aws_iam;
use writ_identity::{IssueError, SpiffeId};

use super::access::Authorized;
use super::access::function::Function;
use super::{ApiError, ApiJson, rfc3339};
use crate::attest::{AttestationRule, Evidence};
use crate::state::AppState;
use crate::store::{FunctionRecord, TokenKind};
use crate::tls::ConnInfo;
use crate::{duration, tokens};
use writ_api::identity::{Audience, MintJwtRequest, RenewRequest};
use writ_audit::Outcome;
use writ_audit::hex;

/// Clock skew allowed on OIDC tokens' `exp` and `nbf`.
const OIDC_LEEWAY: Duration = Duration::seconds(60);

pub(super) async fn bundle(State(state): State<Arc<AppState>>) -> Json<Bundle> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let authorities = state.authorities();
    Json(Bundle {
        trust_domain: state.trust_domain.to_string(),
        x509_bundle: authorities.bundle_pem(now),
        jwks: super::jwks_answer(&authorities.jwks(now)),
    })
}

pub(super) async fn jwks(State(state): State<Arc<AppState>>) -> Json<Jwks> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    Json(super::jwks_answer(&state.authorities().jwks(now)))
}

/// A login: the function, its evidence, and a CSR for the key it keeps.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Login {
    function: String,
    attestation: Evidence,
    csr: String,
}

fn issue_error(e: IssueError) -> ApiError {
    match e {
        IssueError::Signing(_) | IssueError::CaNotValid => {
            ApiError::internal("could not sign the certificate", e)
        }
        other => ApiError::bad_request(format!("csr: {other}")),
    }
}

fn ttl_for(state: &AppState, f: &FunctionRecord) -> Duration {
    f.x509_ttl_seconds
        .map(Duration::seconds)
        .unwrap_or(state.limits.x509_ttl)
        .min(state.limits.x509_max_ttl)
}

/// Signs the CSR for `id` with the CA active now and builds the answer.
fn sign(
    state: &AppState,
    csr: &str,
    id: &SpiffeId,
    ttl: Duration,
) -> Result<(Svid, String), ApiError> {
    let now = OffsetDateTime::now_utc();
    let authorities = state.authorities();
    let ca = authorities
        .signing_ca(now.unix_timestamp())
        .ok_or_else(|| ApiError::internal("no CA is active", "check `writ ca show`"))?;
    let svid = ca
        .ca
        .sign_csr(csr.as_bytes(), id, now, ttl)
        .map_err(issue_error)?;
    state.metrics.issued(crate::metrics::SvidKind::X509);
    let serial = hex(&svid.serial);
    let t = now.unix_timestamp();
    Ok((
        Svid {
            spiffe_id: id.to_string(),
            x509_svid: svid.cert_pem,
            serial: serial.clone(),
            expires_at: rfc3339(svid.not_after.unix_timestamp()),
            x509_bundle: authorities.bundle_pem(t),
            jwks: super::jwks_answer(&authorities.jwks(t)),
        },
        serial,
    ))
}

/// Audits a refused request from an authenticated caller (a bad CSR, say), and passes the
/// error on. If the event cannot be recorded, that failure is what the caller gets.
fn failed(
    state: &AppState,
    actor: &str,
    authenticated_by: &'static str,
    action: &'static str,
    conn: &ConnInfo,
    error: ApiError,
) -> ApiError {
    if !error.is_client_error() {
        return error;
    }
    match state.audit(
        conn,
        actor,
        authenticated_by,
        action,
        actor,
        Outcome::Failed,
        Some(error.message().to_string()),
        None,
    ) {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}

pub(super) async fn login(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<Svid>, ApiError> {
    let method = body.attestation.method();
    let resource = state
        .function_id(&body.function)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| body.function.clone());
    super::admit(&state, &conn, "writ:Login")?;
    let refuse = |reason: String| -> ApiError {
        super::authentication_failed(&state, &conn);
        match state.audit(
            &conn,
            &resource,
            method,
            "writ:Login",
            &resource,
            Outcome::Denied,
            Some(reason),
            None,
        ) {
            Ok(()) => ApiError::unauthenticated(),
            Err(e) => e.into(),
        }
    };
    let Ok(id) = state.function_id(&body.function) else {
        return Err(refuse("not a valid function name".into()));
    };
    let Some(function) = state.store.function(&body.function).await? else {
        return Err(refuse("no such function".into()));
    };
    if function.revoked_at.is_some() {
        return Err(refuse("the function is revoked".into()));
    }
    let rules: Vec<AttestationRule> = serde_json::from_str(&function.attestation)
        .map_err(|e| ApiError::internal("stored rules are unreadable", e))?;
    let ttl = ttl_for(&state, &function);
    let now = OffsetDateTime::now_utc();
    let mut aws_reason = None;
    let (answer, serial) = match &body.attestation {
        Evidence::JoinToken { token } => {
            if !rules.contains(&AttestationRule::JoinToken) {
                return Err(refuse("the function does not accept join tokens".into()));
            }
            let Some(presented) = tokens::parse(token).filter(|p| p.kind == TokenKind::Join) else {
                return Err(refuse("not a join token".into()));
            };
            // Audit events name the token by the HMAC of its id.
            let token_name = state.audit.hmac(presented.id);
            let Some(record) = state.store.token(presented.id).await? else {
                return Err(refuse(format!("unknown join token {token_name}")));
            };
            if record.function_name.as_deref() != Some(body.function.as_str())
                || !presented.secret_matches(&record.secret_hash)
            {
                return Err(refuse(format!(
                    "join token {token_name} is not valid for this function"
                )));
            }
            if record.used_at.is_some() {
                return Err(refuse(format!("join token {token_name} was already used")));
            }
            if record.revoked_at.is_some() {
                return Err(refuse(format!("join token {token_name} is revoked")));
            }
            if record.expires_at.is_some_and(|e| e <= now.unix_timestamp()) {
                return Err(refuse(format!("join token {token_name} has expired")));
            }
            // Sign first: a bad CSR must not burn the token. Then use the token; of two
            // concurrent logins only one can, and the other's certificate is thrown away.
            let signed = sign(&state, &body.csr, &id, ttl)
                .map_err(|e| failed(&state, id.as_str(), method, "writ:Login", &conn, e))?;
            if !state
                .store
                .use_join_token(presented.id, now.unix_timestamp())
                .await?
            {
                return Err(refuse(format!("join token {token_name} was already used")));
            }
            signed
        }
        Evidence::Oidc { token } => {
            let oidc_rules: Vec<_> = rules
                .iter()
                .filter_map(|r| match r {
                    AttestationRule::Oidc(o) => Some(o),
                    _ => None,
                })
                .collect();
            if oidc_rules.is_empty() {
                return Err(refuse("the function does not accept OIDC tokens".into()));
            }
            let mut reasons = Vec::new();
            let mut verified = None;
            for rule in oidc_rules {
                match verify_oidc(&state, token, rule, now).await {
                    Ok(v) => {
                        verified = Some(v);
                        break;
                    }
                    Err(e) => reasons.push(format!("issuer {}: {e}", rule.issuer)),
                }
            }
            let Some(verified) = verified else {
                return Err(refuse(format!(
                    "OIDC token refused: {}",
                    reasons.join("; ")
                )));
            };
            // Sign first: a bad CSR must not use the token up. Then use it: each OIDC token
            // logs in once (remembered by its hash until it expires), so a token seen in
            // transit or in a log cannot be replayed; of two concurrent logins one wins.
            let signed = sign(&state, &body.csr, &id, ttl)
                .map_err(|e| failed(&state, id.as_str(), method, "writ:Login", &conn, e))?;
            let expires_at = verified
                .claims
                .get("exp")
                .and_then(serde_json::Value::as_f64)
                .map_or(now.unix_timestamp() + 86_400, |e| e.ceil() as i64)
                + OIDC_LEEWAY.whole_seconds();
            let hash = hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
            if !state
                .store
                .use_oidc_token(&hash, expires_at, now.unix_timestamp())
                .await?
            {
                return Err(refuse(format!(
                    "OIDC token {} was already used: each token logs in once",
                    &hash[..16]
                )));
            }
            signed
        }
        Evidence::AwsIam { request } => {
            let aws_rules: Vec<_> = rules
                .iter()
                .filter_map(|r| match r {
                    AttestationRule::AwsIam(a) => Some(a),
                    _ => None,
                })
                .collect();
            if aws_rules.is_empty() {
                return Err(refuse(
                    "the function does not accept AWS IAM attestation".into(),
                ));
            }
            let settings = &state.aws_iam;
            // Checked before anything is sent; sent only to this server's STS endpoint.
            let call =
                aws_iam::check_request(request, &settings.server_id, &settings.sts_endpoint, now)
                    .map_err(|e| refuse(format!("AWS IAM: {e}")))?;
            let caller = crate::attest::call_sts(&state.http, &call)
                .await
                .map_err(|e| refuse(format!("AWS IAM: access key {}: {e}", call.access_key_id)))?;
            let role = aws_iam::AssumedRole::from_identity(&caller)
                .map_err(|e| refuse(format!("AWS IAM: {e}")))?;
            let reasons: Vec<String> = aws_rules
                .iter()
                .filter_map(|rule| rule.admits(&role).err())
                .collect();
            if reasons.len() == aws_rules.len() {
                return Err(refuse(format!(
                    "AWS IAM: {} is not admitted: {}",
                    role.caller_arn,
                    reasons.join("; ")
                )));
            }
            // Sign first: a bad CSR must not use the request up. Then use it: each signed
            // request logs in once (remembered by the hash of its Authorization header
            // until it could no longer pass the time check), so evidence seen in transit
            // or in a log cannot be replayed within its five minutes either.
            let signed = sign(&state, &body.csr, &id, ttl)
                .map_err(|e| failed(&state, id.as_str(), method, "writ:Login", &conn, e))?;
            let expires_at = (call.signed_at + aws_iam::MAX_SKEW).unix_timestamp() + 1;
            if !state
                .store
                .use_oidc_token(
                    &format!("awsIam:{}", call.replay_key),
                    expires_at,
                    now.unix_timestamp(),
                )
                .await?
            {
                return Err(refuse(format!(
                    "AWS IAM: the signed request {} was already used: each logs in once",
                    &call.replay_key[..16]
                )));
            }
            aws_reason = Some(format!("AWS IAM: {} as {}", role.caller_arn, role.role_arn));
            signed
        }
    };
    // A login hands out a credential: it is reported only once its event is durable.
    let mut event = state.event(
        &conn,
        id.as_str(),
        method,
        "writ:Login",
        id.as_str(),
        Outcome::Allowed,
    );
    event.serial = Some(serial);
    event.reason = aws_reason;
    state.audit.record_durable(event).await?;
    Ok(Json(answer))
}

async fn verify_oidc(
    state: &AppState,
    token: &str,
    rule: &writ_identity::oidc::OidcRule,
    now: OffsetDateTime,
) -> Result<writ_identity::oidc::VerifiedOidc, String> {
    use writ_identity::oidc::{OidcError, verify};
    if let Some(inline) = &rule.jwks {
        return verify(token, rule, inline, now, OIDC_LEEWAY).map_err(|e| e.to_string());
    }
    let url = rule.jwks_url.as_deref().ok_or("the rule has no JWKS")?;
    let set = crate::attest::jwks(&state.caches.jwks, &state.http, url, false).await?;
    match verify(token, rule, &set, now, OIDC_LEEWAY) {
        // The issuer may have rotated its keys since the JWKS was fetched.
        Err(OidcError::UnknownKey) => {
            let set = crate::attest::jwks(&state.caches.jwks, &state.http, url, true).await?;
            verify(token, rule, &set, now, OIDC_LEEWAY).map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// The function that called, which the access layer authenticated by its X.509-SVID.
pub(super) fn svid_function(auth: &Authorized) -> Result<(&Function, &str), ApiError> {
    auth.function()
        .and_then(|f| Some((f, f.serial.as_deref()?)))
        .ok_or_else(|| {
            ApiError::internal(
                "a function's route was reached without its X.509-SVID",
                &auth.caller.actor,
            )
        })
}

pub(super) async fn renew(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RenewRequest>,
) -> Result<Json<Svid>, ApiError> {
    let (caller, caller_serial) = svid_function(&auth)?;
    let ttl = ttl_for(&state, &caller.record);
    let (answer, serial) = sign(&state, &body.csr, &caller.id, ttl).map_err(|e| {
        failed(
            &state,
            caller.id.as_str(),
            "x509Svid",
            "writ:RenewSvid",
            &conn,
            e,
        )
    })?;
    state.audit(
        &conn,
        caller.id.as_str(),
        "x509Svid",
        "writ:RenewSvid",
        caller.id.as_str(),
        Outcome::Allowed,
        Some(format!("renewed SVID {caller_serial}")),
        Some(serial),
    )?;
    Ok(Json(answer))
}

pub(super) async fn mint_jwt(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<MintJwtRequest>,
) -> Result<Json<JwtSvid>, ApiError> {
    let audience = match &body.audience {
        Audience::One(a) => vec![a.as_str()],
        Audience::Many(all) => all.iter().map(String::as_str).collect(),
    };
    if audience.is_empty() || audience.iter().any(|a| a.is_empty() || a.len() > 256) {
        return Err(ApiError::bad_request(
            "audience: give one or more non-empty audiences (at most 256 characters each)",
        ));
    }
    let ttl = match &body.ttl {
        Some(t) => duration::parse(t).map_err(|e| ApiError::bad_request(format!("ttl: {e}")))?,
        None => state.limits.jwt_ttl,
    };
    if ttl > state.limits.jwt_max_ttl {
        return Err(ApiError::bad_request(format!(
            "ttl: at most {}",
            duration::format(state.limits.jwt_max_ttl)
        )));
    }
    let (caller, caller_serial) = svid_function(&auth)?;
    let now = OffsetDateTime::now_utc();
    let authorities = state.authorities();
    let key = authorities
        .signing_jwt_key(now.unix_timestamp())
        .ok_or_else(|| ApiError::internal("no JWT key is active", "check `writ ca show`"))?;
    let token = key
        .authority
        .mint_bound(&caller.id, &audience, now, ttl, caller_serial)
        .map_err(|e| ApiError::internal("could not sign the JWT-SVID", e))?;
    state.metrics.issued(crate::metrics::SvidKind::Jwt);
    state.audit(
        &conn,
        caller.id.as_str(),
        "x509Svid",
        "writ:MintJwtSvid",
        &audience.join(","),
        Outcome::Allowed,
        None,
        None,
    )?;
    Ok(Json(JwtSvid {
        spiffe_id: caller.id.to_string(),
        token,
        expires_at: rfc3339((now + ttl).unix_timestamp()),
    }))
}
