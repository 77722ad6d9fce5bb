//! Identities: a function or a gateway proves itself with attestation evidence (a join
//! token, an OIDC token, a signed AWS STS request) and gets an X.509-SVID; renews it over
//! mutual TLS; a function mints JWT-SVIDs; and the trust bundle they are all checked
//! against. Every login, renewal and refusal is audited; a credential is handed out only
//! once its event is durable.

use std::time::Instant;

use time::{Duration, OffsetDateTime};
use writ_api::identity::{Bundle, Jwks, JwtSvid, Svid};
use writ_audit::{Outcome, hex};
use writ_identity::aws_iam;
use writ_identity::{IssueError, ServerNames, SpiffeId};

use super::{Error, Result, rfc3339};
use crate::api::access::function::Function;
use crate::api::access::gateway::Gateway;
use crate::attest::{AttestationRule, Evidence};
use crate::state::AppState;
use crate::store::{FunctionRecord, GatewayRecord, TokenKind, TokenRecord};
use crate::tls::ConnInfo;
use crate::{duration, tokens};

/// Clock skew allowed on OIDC tokens' `exp` and `nbf`.
const OIDC_LEEWAY: Duration = Duration::seconds(60);

/// The trust bundle now: the CAs and JWT keys that verify SVIDs.
pub fn bundle(state: &AppState) -> Bundle {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let authorities = state.authorities();
    Bundle {
        trust_domain: state.trust_domain.to_string(),
        x509_bundle: authorities.bundle_pem(now),
        jwks: crate::api::jwks_answer(&authorities.jwks(now)),
    }
}

/// The JWT keys that verify JWT-SVIDs now.
pub fn jwks(state: &AppState) -> Jwks {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    crate::api::jwks_answer(&state.authorities().jwks(now))
}

/// Counts a failed authentication from the caller's address, for the throttle that
/// [`crate::api::admit`] applies.
pub fn authentication_failed(state: &AppState, conn: &ConnInfo) {
    state.auth_failures.failed(conn.remote.ip(), Instant::now());
}

fn issue_error(e: IssueError) -> Error {
    match e {
        IssueError::Signing(_) | IssueError::CaNotValid => {
            Error::internal("could not sign the certificate", e)
        }
        other => Error::Invalid(format!("csr: {other}")),
    }
}

/// The lifetime of a function's X.509-SVIDs: its own, or the server's default, at most the
/// server's maximum.
pub fn function_ttl(state: &AppState, f: &FunctionRecord) -> Duration {
    f.x509_ttl_seconds
        .map(Duration::seconds)
        .unwrap_or(state.limits.x509_ttl)
        .min(state.limits.x509_max_ttl)
}

/// The lifetime of a gateway's X.509-SVIDs, as for functions.
pub fn gateway_ttl(state: &AppState, g: &GatewayRecord) -> Duration {
    g.x509_ttl_seconds
        .map(Duration::seconds)
        .unwrap_or(state.limits.x509_ttl)
        .min(state.limits.x509_max_ttl)
}

/// Signs the CSR for `id` (and the server names it may carry) with the CA active now, and
/// builds the answer; with the new certificate's serial.
pub fn sign(
    state: &AppState,
    csr: &str,
    id: &SpiffeId,
    names: &ServerNames,
    ttl: Duration,
) -> Result<(Svid, String)> {
    let now = OffsetDateTime::now_utc();
    let authorities = state.authorities();
    let ca = authorities
        .signing_ca(now.unix_timestamp())
        .ok_or_else(|| Error::internal("no CA is active", "check `writ ca show`"))?;
    let svid = ca
        .ca
        .sign_csr_for(csr.as_bytes(), id, names, now, ttl)
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
            jwks: crate::api::jwks_answer(&authorities.jwks(t)),
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
    error: Error,
) -> Error {
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
        Some(error.to_string()),
        None,
    ) {
        Ok(()) => error,
        Err(e) => e.into(),
    }
}

/// A function logs in as `spiffe://TD/fn/NAME` with the evidence its rules accept, and
/// gets an X.509-SVID for the key behind `csr`. Every refusal is the same
/// [`Error::Unauthenticated`], its reason audited.
pub async fn login_function(
    state: &AppState,
    conn: &ConnInfo,
    name: &str,
    evidence: &Evidence,
    csr: &str,
) -> Result<Svid> {
    login(state, conn, Holder::Function(name), evidence, csr).await
}

/// A gateway logs in as `spiffe://TD/writ/gateway/NAME` with the evidence its rules
/// accept, and gets an X.509-SVID that also carries the DNS names and IP addresses it was
/// registered with (its TLS certificate). A CSR asking for any other name is refused.
pub async fn login_gateway(
    state: &AppState,
    conn: &ConnInfo,
    name: &str,
    evidence: &Evidence,
    csr: &str,
) -> Result<Svid> {
    login(state, conn, Holder::Gateway(name), evidence, csr).await
}

/// The login of `holder`: its registration read, then its evidence checked against its
/// rules ([`attest`]).
async fn login(
    state: &AppState,
    conn: &ConnInfo,
    holder: Holder<'_>,
    evidence: &Evidence,
    csr: &str,
) -> Result<Svid> {
    let (name, kind) = match holder {
        Holder::Function(n) => (n, "function"),
        Holder::Gateway(n) => (n, "gateway"),
    };
    let id = match holder {
        Holder::Function(n) => state.function_id(n),
        Holder::Gateway(n) => state.gateway_id(n),
    };
    let resource = id
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|_| name.to_string());
    let refuse = refusal(state, conn, &resource, evidence.method());
    let Ok(id) = id else {
        return Err(refuse(format!("not a valid {kind} name")));
    };
    // Its rules, whether it is revoked, its certificates' lifetime and names.
    let registered = match holder {
        Holder::Function(n) => state.store.function(n).await?.map(|f| {
            let ttl = function_ttl(state, &f);
            (f.attestation, f.revoked_at, ttl, ServerNames::default())
        }),
        Holder::Gateway(n) => match state.store.gateway(n).await? {
            Some(g) => {
                let (ttl, names) = (gateway_ttl(state, &g), super::gateways::stored_names(&g)?);
                Some((g.attestation, g.revoked_at, ttl, names))
            }
            None => None,
        },
    };
    let Some((attestation, revoked_at, ttl, names)) = registered else {
        return Err(refuse(format!("no such {kind}")));
    };
    if revoked_at.is_some() {
        return Err(refuse(format!("the {kind} is revoked")));
    }
    let rules: Vec<AttestationRule> = serde_json::from_str(&attestation)
        .map_err(|e| Error::internal("stored rules are unreadable", e))?;
    let subject = Subject {
        id,
        rules,
        ttl,
        names,
        holder,
    };
    attest(state, conn, &subject, evidence, csr, &refuse).await
}

/// How a login refuses: audited as denied with its reason, answered with the same
/// [`Error::Unauthenticated`] for every cause.
fn refusal<'a>(
    state: &'a AppState,
    conn: &'a ConnInfo,
    resource: &'a str,
    method: &'static str,
) -> impl Fn(String) -> Error + Send + Sync + 'a {
    move |reason: String| -> Error {
        authentication_failed(state, conn);
        match state.audit(
            conn,
            resource,
            method,
            "writ:Login",
            resource,
            Outcome::Denied,
            Some(reason),
            None,
        ) {
            Ok(()) => Error::Unauthenticated,
            Err(e) => e.into(),
        }
    }
}

/// Who logs in, as registered: a function or a gateway.
struct Subject<'a> {
    id: SpiffeId,
    rules: Vec<AttestationRule>,
    ttl: Duration,
    /// The DNS names and IP addresses its certificate carries (a gateway's; none for a
    /// function).
    names: ServerNames,
    holder: Holder<'a>,
}

/// Who logs in, and whom a join token must have been made for.
#[derive(Clone, Copy)]
enum Holder<'a> {
    Function(&'a str),
    Gateway(&'a str),
}

impl Subject<'_> {
    /// Whether the join token was made for this subject: a function's token names the
    /// function and no gateway, a gateway's the gateway and no function.
    fn holds(&self, token: &TokenRecord) -> bool {
        match self.holder {
            Holder::Function(name) => {
                token.function_name.as_deref() == Some(name) && token.gateway_name.is_none()
            }
            Holder::Gateway(name) => {
                token.gateway_name.as_deref() == Some(name) && token.function_name.is_none()
            }
        }
    }

    /// `function` or `gateway`, for reasons.
    fn kind(&self) -> &'static str {
        match self.holder {
            Holder::Function(_) => "function",
            Holder::Gateway(_) => "gateway",
        }
    }
}

/// Checks `evidence` against the subject's rules, signs the CSR, uses the evidence up (each
/// logs in once), and records the login durably before answering.
async fn attest(
    state: &AppState,
    conn: &ConnInfo,
    subject: &Subject<'_>,
    evidence: &Evidence,
    csr: &str,
    refuse: &(dyn Fn(String) -> Error + Send + Sync),
) -> Result<Svid> {
    let method = evidence.method();
    let now = OffsetDateTime::now_utc();
    let mut aws_reason = None;
    let (answer, serial) = match evidence {
        Evidence::JoinToken { token } => {
            if !subject.rules.contains(&AttestationRule::JoinToken) {
                return Err(refuse(format!(
                    "the {} does not accept join tokens",
                    subject.kind()
                )));
            }
            let Some(presented) = tokens::parse(token).filter(|p| p.kind == TokenKind::Join) else {
                return Err(refuse("not a join token".into()));
            };
            // Audit events name the token by the HMAC of its id.
            let token_name = state.audit.hmac(presented.id);
            let Some(record) = state.store.token(presented.id).await? else {
                return Err(refuse(format!("unknown join token {token_name}")));
            };
            if !subject.holds(&record) || !presented.secret_matches(&record.secret_hash) {
                return Err(refuse(format!(
                    "join token {token_name} is not valid for this {}",
                    subject.kind()
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
            let signed = sign(state, csr, &subject.id, &subject.names, subject.ttl)
                .map_err(|e| failed(state, subject.id.as_str(), method, "writ:Login", conn, e))?;
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
            let oidc_rules: Vec<_> = subject
                .rules
                .iter()
                .filter_map(|r| match r {
                    AttestationRule::Oidc(o) => Some(o),
                    _ => None,
                })
                .collect();
            if oidc_rules.is_empty() {
                return Err(refuse(format!(
                    "the {} does not accept OIDC tokens",
                    subject.kind()
                )));
            }
            let mut reasons = Vec::new();
            let mut verified = None;
            for rule in oidc_rules {
                match verify_oidc(state, token, rule, now).await {
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
            let signed = sign(state, csr, &subject.id, &subject.names, subject.ttl)
                .map_err(|e| failed(state, subject.id.as_str(), method, "writ:Login", conn, e))?;
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
            let aws_rules: Vec<_> = subject
                .rules
                .iter()
                .filter_map(|r| match r {
                    AttestationRule::AwsIam(a) => Some(a),
                    _ => None,
                })
                .collect();
            if aws_rules.is_empty() {
                return Err(refuse(format!(
                    "the {} does not accept AWS IAM attestation",
                    subject.kind()
                )));
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
            let signed = sign(state, csr, &subject.id, &subject.names, subject.ttl)
                .map_err(|e| failed(state, subject.id.as_str(), method, "writ:Login", conn, e))?;
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
        conn,
        subject.id.as_str(),
        method,
        "writ:Login",
        subject.id.as_str(),
        Outcome::Allowed,
    );
    event.serial = Some(serial);
    event.reason = aws_reason;
    state.audit.record_durable(event).await?;
    Ok(answer)
}

async fn verify_oidc(
    state: &AppState,
    token: &str,
    rule: &writ_identity::oidc::OidcRule,
    now: OffsetDateTime,
) -> std::result::Result<writ_identity::oidc::VerifiedOidc, String> {
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

/// A function renews its X.509-SVID over mutual TLS with the current one (serial
/// `serial`): a new certificate for the key behind `csr`.
pub fn renew_function(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Function,
    serial: &str,
    csr: &str,
) -> Result<Svid> {
    let ttl = function_ttl(state, &caller.record);
    renew(
        state,
        conn,
        &caller.id,
        serial,
        &ServerNames::default(),
        csr,
        ttl,
    )
}

/// A gateway renews its X.509-SVID over mutual TLS with the current one: a new key, the
/// same names it was registered with.
pub fn renew_gateway(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Gateway,
    csr: &str,
) -> Result<Svid> {
    let names = super::gateways::stored_names(&caller.record)?;
    let ttl = gateway_ttl(state, &caller.record);
    renew(state, conn, &caller.id, &caller.serial, &names, csr, ttl)
}

fn renew(
    state: &AppState,
    conn: &ConnInfo,
    id: &SpiffeId,
    serial: &str,
    names: &ServerNames,
    csr: &str,
    ttl: Duration,
) -> Result<Svid> {
    let (answer, new_serial) = sign(state, csr, id, names, ttl)
        .map_err(|e| failed(state, id.as_str(), "x509Svid", "writ:RenewSvid", conn, e))?;
    state.audit(
        conn,
        id.as_str(),
        "x509Svid",
        "writ:RenewSvid",
        id.as_str(),
        Outcome::Allowed,
        Some(format!("renewed SVID {serial}")),
        Some(new_serial),
    )?;
    Ok(answer)
}

/// A function mints a JWT-SVID for `audience` (one or more, each 1 to 256 characters),
/// bound to the X.509-SVID it called with (serial `serial`), for `ttl` (the server's
/// default when absent, at most its maximum).
pub fn mint_jwt(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Function,
    serial: &str,
    audience: &[&str],
    ttl: Option<&str>,
) -> Result<JwtSvid> {
    if audience.is_empty() || audience.iter().any(|a| a.is_empty() || a.len() > 256) {
        return Err(Error::Invalid(
            "audience: give one or more non-empty audiences (at most 256 characters each)".into(),
        ));
    }
    let ttl = match ttl {
        Some(t) => duration::parse(t).map_err(|e| Error::Invalid(format!("ttl: {e}")))?,
        None => state.limits.jwt_ttl,
    };
    if ttl > state.limits.jwt_max_ttl {
        return Err(Error::Invalid(format!(
            "ttl: at most {}",
            duration::format(state.limits.jwt_max_ttl)
        )));
    }
    let now = OffsetDateTime::now_utc();
    let authorities = state.authorities();
    let key = authorities
        .signing_jwt_key(now.unix_timestamp())
        .ok_or_else(|| Error::internal("no JWT key is active", "check `writ ca show`"))?;
    let token = key
        .authority
        .mint_bound(&caller.id, audience, now, ttl, serial)
        .map_err(|e| Error::internal("could not sign the JWT-SVID", e))?;
    state.metrics.issued(crate::metrics::SvidKind::Jwt);
    state.audit(
        conn,
        caller.id.as_str(),
        "x509Svid",
        "writ:MintJwtSvid",
        &audience.join(","),
        Outcome::Allowed,
        None,
        None,
    )?;
    Ok(JwtSvid {
        spiffe_id: caller.id.to_string(),
        token,
        expires_at: rfc3339((now + ttl).unix_timestamp()),
    })
}
