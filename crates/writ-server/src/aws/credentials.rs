//! writ's temporary AWS credentials, stateless: nothing is stored when they are issued.
//!
//! - `AccessKeyId`: `ASIA` and 16 random upper-case base32 characters, as AWS's temporary
//!   keys look.
//! - `SecretAccessKey`: 40 random characters of base64's alphabet.
//! - `SessionToken`: `writ.sts.` and, sealed with the master key for the purpose
//!   [`PURPOSE`] (AES-256-GCM, so it can be neither read nor altered), the access key id,
//!   the secret, the function's name, the role session's name, the issue time, the expiry
//!   and the serial of the X.509-SVID the web identity token was minted with.
//!
//! A SigV4 request is verified by opening its `X-Amz-Security-Token` (opened tokens are
//! cached by their SHA-256), checking the access key id is the token's (in constant time),
//! that it has not expired, that the function still exists, is not revoked and was not
//! registered again since the issue, and that the SVID serial is not revoked: credentials
//! are revoked with their function. Only then is the signature checked, with the token's
//! secret and [`crate::aws::AwsState::signing_keys`].
//!
//! The master key seals the tokens, so rotating it (`writ operator rotate-master-key`)
//! makes every outstanding credential fail to open: functions get new ones from STS.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use writ_audit::Outcome;

use super::protocol::AwsError;
use crate::api::access::function::Function;
use crate::api::access::{Caller, CallerKind};
use crate::master_key::MasterKey;
use crate::state::AppState;
use crate::tls::ConnInfo;

/// What a session token starts with.
pub const TOKEN_PREFIX: &str = "writ.sts.";

/// The purpose the master key seals session tokens for (bound as associated data).
pub const PURPOSE: &str = "writ:aws-session-token:v1";

/// How audit events say a caller authenticated with writ's AWS credentials.
pub const AUTHENTICATED_BY: &str = "awsSigV4";

/// The longest a session token may be; longer is refused before anything is opened.
const MAX_TOKEN_LEN: usize = 4096;

/// What a session token carries. `Debug` does not show the secret.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// The access key id.
    #[serde(rename = "k")]
    pub access_key_id: String,
    /// The secret access key.
    #[serde(rename = "s")]
    pub secret_access_key: String,
    /// The function's name.
    #[serde(rename = "f")]
    pub function: String,
    /// The role session's name (`RoleSessionName`).
    #[serde(rename = "n")]
    pub session_name: String,
    /// When it was issued, Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: i64,
    /// When it expires, Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// The serial of the X.509-SVID the web identity token was minted with, if any.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub x509_svid_serial: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("function", &self.function)
            .field("session_name", &self.session_name)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Credentials as issued: the session and its token. `Debug` shows neither secret.
pub struct Issued {
    /// What the token carries.
    pub session: Session,
    /// The session token.
    pub token: String,
}

/// Why credentials could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
    /// Sealing failed.
    #[error("could not seal the session token: {0}")]
    Seal(String),
}

/// `n` characters drawn uniformly from `alphabet` (whose length divides 256).
fn random_chars(n: usize, alphabet: &[u8]) -> Result<String, IssueError> {
    debug_assert!(256 % alphabet.len() == 0);
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| IssueError::Random)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) % alphabet.len()]))
        .collect())
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Issues credentials for `function`, valid from `now` for `lifetime_seconds`.
pub fn issue(
    master: &MasterKey,
    function: &str,
    session_name: &str,
    now: i64,
    lifetime_seconds: i64,
    x509_svid_serial: Option<String>,
) -> Result<Issued, IssueError> {
    let session = Session {
        access_key_id: format!("ASIA{}", random_chars(16, BASE32)?),
        secret_access_key: random_chars(40, BASE64)?,
        function: function.to_string(),
        session_name: session_name.to_string(),
        issued_at: now,
        expires_at: now + lifetime_seconds,
        x509_svid_serial,
    };
    let plain = serde_json::to_vec(&session).map_err(|e| IssueError::Seal(e.to_string()))?;
    let sealed = master
        .seal(PURPOSE, &plain)
        .map_err(|e| IssueError::Seal(e.to_string()))?;
    Ok(Issued {
        token: format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)),
        session,
    })
}

/// Opens a session token. `None` for anything that is not a token this master key sealed.
pub fn open(master: &MasterKey, token: &str) -> Option<Session> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let sealed = URL_SAFE_NO_PAD
        .decode(token.strip_prefix(TOKEN_PREFIX)?)
        .ok()?;
    let plain = master.open(PURPOSE, &sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// A session token, opened: from the cache of opened tokens (by the token's SHA-256), or
/// opened and cached.
pub fn open_cached(state: &AppState, token: &str) -> Option<Arc<Session>> {
    let key: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .ok()?;
    if let Some(hit) = state.caches.aws_sessions.get(&key) {
        return Some(hit);
    }
    let session = Arc::new(open(&state.master, token)?);
    state.caches.aws_sessions.insert(key, session.clone());
    Some(session)
}

/// Why presented credentials do not verify, for the audit log (never for the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token does not open: not writ's, altered, or sealed under another master key.
    BadToken,
    /// The access key id is not the token's.
    WrongAccessKey,
    /// The credentials have expired.
    Expired,
    /// The function is gone, revoked, or registered again since the issue; or the SVID
    /// serial is revoked.
    Revoked(&'static str),
}

impl Refusal {
    /// The cause, in words.
    pub fn reason(&self) -> String {
        match self {
            Refusal::BadToken => {
                "the session token does not open: not issued by this writ, altered, or \
                 sealed under a master key since rotated"
                    .into()
            }
            Refusal::WrongAccessKey => "the access key id is not the session token's".into(),
            Refusal::Expired => "the credentials have expired".into(),
            Refusal::Revoked(why) => (*why).to_string(),
        }
    }

    /// The AWS error code a client gets.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Expired => "ExpiredTokenException",
            _ => "UnrecognizedClientException",
        }
    }
}

/// Checks `token` is a live session of `access_key_id`: it opens, is that key's, has not
/// expired, and its function is live and the same registration (and the SVID serial is
/// not revoked). Returns the session and the function's registration.
pub async fn check_session(
    state: &AppState,
    access_key_id: &str,
    token: &str,
    now: i64,
) -> Result<(Arc<Session>, crate::store::FunctionRecord), Refusal> {
    let session = open_cached(state, token).ok_or(Refusal::BadToken)?;
    if !bool::from(
        session
            .access_key_id
            .as_bytes()
            .ct_eq(access_key_id.as_bytes()),
    ) {
        return Err(Refusal::WrongAccessKey);
    }
    if now >= session.expires_at {
        return Err(Refusal::Expired);
    }
    if session
        .x509_svid_serial
        .as_deref()
        .is_some_and(|s| state.serial_revoked(s))
    {
        return Err(Refusal::Revoked(
            "the X.509-SVID the credentials were obtained with is revoked",
        ));
    }
    let record = state
        .function_for_svid(&session.function)
        .await
        .map_err(|_| Refusal::Revoked("the function could not be read"))?
        .filter(|f| f.revoked_at.is_none() && f.created_at <= session.issued_at)
        .ok_or(Refusal::Revoked(
            "the function is revoked, deleted, or registered again since the credentials \
             were issued",
        ))?;
    Ok((session, record))
}

/// A request as received, for SigV4 verification.
pub struct Received<'a> {
    /// The method.
    pub method: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// The query as sent.
    pub query: &'a str,
    /// The headers.
    pub headers: &'a axum::http::HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// A caller verified by SigV4 with writ's credentials.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The function, as the access layer's decisions take it.
    pub caller: Caller,
    /// Its session.
    pub session: Arc<Session>,
    /// The region of the signature's credential scope.
    pub region: String,
}

/// Verifies a SigV4 request signed for `service` with writ's credentials. Every refusal
/// is audited with its cause (as `action`, the writ action the request would be decided
/// as, or `writ:Authenticate`) and counted against the source; the caller gets AWS's
/// code and a fixed message.
pub async fn verify_request(
    state: &AppState,
    conn: &ConnInfo,
    request: &Received<'_>,
    service: &str,
    action: &str,
    aws_action: &str,
) -> Result<Signed, AwsError> {
    crate::api::admit(state, conn, "writ:Authenticate")
        .map_err(|e| super::protocol::from_api_error(e, aws_action, false))?;
    let refuse = |actor: &str, code: &'static str, why: String| -> AwsError {
        crate::api::authentication_failed(state, conn);
        match state.audit(
            conn,
            actor,
            AUTHENTICATED_BY,
            action,
            actor,
            Outcome::Denied,
            Some(format!("{aws_action}: {why}")),
            None,
        ) {
            Ok(()) => AwsError::unauthenticated(code),
            Err(e) => super::protocol::from_api_error(e, aws_action, false),
        }
    };
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len());
    for (name, value) in request.headers {
        match value.to_str() {
            Ok(v) => pairs.push((name.as_str(), v)),
            Err(_) => {
                return Err(refuse(
                    "anonymous",
                    "IncompleteSignatureException",
                    format!("header {name}: not visible ASCII"),
                ));
            }
        }
    }
    let signable = writ_sigv4::SignableRequest::new(
        request.method,
        request.path,
        request.query,
        &pairs,
        writ_sigv4::Payload::Bytes(request.body),
    );
    let now = OffsetDateTime::now_utc();
    // The session is found from the request's token before the signature is checked (the
    // secret is in it), and checked against the function after.
    let token = session_token(request.headers, request.query);
    let opened = token.as_deref().and_then(|t| open_cached(state, t));
    // The JSON protocols' SDKs sign their bodies; a request whose body the signature does
    // not cover (UNSIGNED-PAYLOAD) could have it changed on the way.
    let settings = writ_sigv4::VerifySettings {
        allow_unsigned_payload: false,
        ..writ_sigv4::VerifySettings::default()
    };
    let verified = writ_sigv4::verify(&signable, now, &settings, &state.aws.signing_keys, |akid| {
        opened
            .as_ref()
            .filter(|s| bool::from(s.access_key_id.as_bytes().ct_eq(akid.as_bytes())))
            .map(|s| s.secret_access_key.clone().into_bytes())
    });
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            use writ_sigv4::VerifyError as V;
            // What was wrong with the signature's form is the client's to know (the
            // messages carry no secret); a mismatch says no more than AWS does.
            let (code, tell) = match &e {
                V::MissingSignature => ("MissingAuthenticationTokenException", false),
                V::SignatureMismatch { .. } => ("InvalidSignatureException", false),
                V::UnknownAccessKey { .. } if token.is_none() => {
                    return Err(refuse(
                        "anonymous",
                        "UnrecognizedClientException",
                        "no X-Amz-Security-Token: writ issues temporary credentials only \
                         (AssumeRoleWithWebIdentity)"
                            .into(),
                    ));
                }
                V::UnknownAccessKey { .. } => {
                    let why = match &opened {
                        None => Refusal::BadToken.reason(),
                        Some(_) => Refusal::WrongAccessKey.reason(),
                    };
                    return Err(refuse("anonymous", "UnrecognizedClientException", why));
                }
                V::ClockSkew { .. } | V::Expired { .. } => ("InvalidSignatureException", true),
                _ => ("IncompleteSignatureException", true),
            };
            let actor = opened
                .as_ref()
                .and_then(|s| state.function_id(&s.function).ok())
                .map(|id| id.to_string())
                .unwrap_or_else(|| "anonymous".into());
            let refused = refuse(&actor, code, e.to_string());
            if tell && refused.code == code {
                return Err(AwsError::new(refused.status, code, e.to_string()));
            }
            return Err(refused);
        }
    };
    let Some(token) = token else {
        // The lookup found no secret without a token; verify() cannot have passed.
        return Err(refuse(
            "anonymous",
            "UnrecognizedClientException",
            "no X-Amz-Security-Token".into(),
        ));
    };
    if verified.service != service {
        let why = format!(
            "the credential scope names the service {:?}; this request is for {service:?}: \
             sign it for {service}",
            verified.service
        );
        let refused = refuse("anonymous", "InvalidSignatureException", why.clone());
        if refused.code == "InvalidSignatureException" {
            return Err(AwsError::new(refused.status, refused.code, why));
        }
        return Err(refused);
    }
    let (session, record) =
        match check_session(state, &verified.access_key_id, &token, now.unix_timestamp()).await {
            Ok(found) => found,
            Err(refusal) => {
                let actor = opened
                    .as_ref()
                    .and_then(|s| state.function_id(&s.function).ok())
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "anonymous".into());
                return Err(refuse(&actor, refusal.code(), refusal.reason()));
            }
        };
    let id = state.function_id(&session.function).map_err(|e| {
        AwsError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            format!("a session's function name is invalid: {e}"),
        )
    })?;
    Ok(Signed {
        caller: Caller {
            actor: id.to_string(),
            authenticated_by: AUTHENTICATED_BY,
            kind: CallerKind::Function(Function {
                id,
                record,
                serial: None,
            }),
        },
        session,
        region: verified.region,
    })
}

/// The request's session token: the `X-Amz-Security-Token` header, or the query
/// parameter of a presigned URL.
fn session_token(headers: &axum::http::HeaderMap, query: &str) -> Option<String> {
    if let Some(v) = headers.get("x-amz-security-token") {
        return v.to_str().ok().map(str::to_string);
    }
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Security-Token")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_session_sealed() {
        let key = MasterKey::from_bytes(&[3u8; 32]).unwrap();
        let issued = issue(&key, "orders", "s1", 1000, 3600, Some("ab".into())).unwrap();
        let s = &issued.session;
        assert!(s.access_key_id.starts_with("ASIA") && s.access_key_id.len() == 20);
        assert!(s.access_key_id[4..].bytes().all(|b| BASE32.contains(&b)));
        assert_eq!(s.secret_access_key.len(), 40);
        assert!(issued.token.starts_with(TOKEN_PREFIX));
        // Nothing readable in the token.
        assert!(!issued.token.contains(&s.secret_access_key));
        assert!(!issued.token.contains("orders"));
        assert_eq!(open(&key, &issued.token).as_ref(), Some(s));
        assert_eq!(s.expires_at, 4600);
        // Another master key (a rotation) opens nothing.
        let other = MasterKey::from_bytes(&[4u8; 32]).unwrap();
        assert!(open(&other, &issued.token).is_none());
        let mut altered = issued.token.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(open(&key, &altered).is_none());
        assert!(open(&key, "writ.sts.").is_none());
        assert!(!format!("{s:?}").contains(&s.secret_access_key));
    }
}
