//! STS, in the Query protocol: `AssumeRoleWithWebIdentity` (unsigned, as AWS's: the
//! JWT-SVID is the credential) and `GetCallerIdentity` (signed with writ's credentials).
//!
//! A function assumes its own role only, `arn:aws:iam::ACCOUNT:role/NAME`; its web
//! identity token is a JWT-SVID whose one audience is the server
//! (`spiffe://TRUST-DOMAIN/writ/server`), verified as the API verifies it (the bundle,
//! the revocations, a live function of the registration that minted it). Credentials live
//! `DurationSeconds` (900 to 43200, 3600 by default), as AWS's do, whatever the token's
//! own expiry: they are revoked with the function (see [`super::credentials`]).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use time::OffsetDateTime;
use writ_audit::Outcome;

use super::credentials::{self, Received};
use super::protocol::{AwsError, STS_NAMESPACE, xml_escape, xml_response};
use crate::api::rfc3339;
use crate::state::AppState;
use crate::tls::ConnInfo;

/// The API version STS requests must name.
pub const VERSION: &str = "2011-06-15";
/// The lifetime when `DurationSeconds` is not given.
pub const DEFAULT_DURATION: i64 = 3600;
/// The shortest and longest `DurationSeconds`, as AWS's.
pub const DURATION_RANGE: std::ops::RangeInclusive<i64> = 900..=43_200;

const ASSUME: &str = "sts:AssumeRoleWithWebIdentity";

/// A function's role ARN.
pub fn role_arn(account: &str, function: &str) -> String {
    format!("arn:aws:iam::{account}:role/{function}")
}

/// The ARN of a function's role session.
pub fn assumed_role_arn(account: &str, function: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{function}/{session}")
}

/// The role's id, stable for one registration of the function (`AROA` and 17 base32
/// characters of a hash of its SPIFFE ID and registration time), and the session.
pub fn assumed_role_id(spiffe_id: &str, created_at: i64, session: &str) -> String {
    const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{spiffe_id}\n{created_at}").as_bytes(),
    );
    let id: String = digest.as_ref()[..17]
        .iter()
        .map(|b| char::from(B32[usize::from(*b) % 32]))
        .collect();
    format!("AROA{id}:{session}")
}

/// Answers one STS request (its form already decoded).
pub async fn handle(
    state: &AppState,
    conn: &ConnInfo,
    received: &Received<'_>,
    form: &BTreeMap<String, String>,
    request_id: &str,
) -> Result<Response, AwsError> {
    let action = form
        .get("Action")
        .ok_or_else(|| AwsError::client("MissingAction", "Action: missing"))?;
    match form.get("Version").map(String::as_str) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(AwsError::client(
                "InvalidParameterValue",
                format!("Version {other:?}: STS's API version is {VERSION}"),
            ));
        }
        None => return Err(AwsError::client("MissingParameter", "Version: missing")),
    }
    match action.as_str() {
        "AssumeRoleWithWebIdentity" => assume(state, conn, form, request_id).await,
        "GetCallerIdentity" => caller_identity(state, conn, received, form, request_id).await,
        other => Err(AwsError::client(
            "InvalidAction",
            format!(
                "Action {other:?}: writ's STS answers AssumeRoleWithWebIdentity and \
                 GetCallerIdentity"
            ),
        )),
    }
}

fn required<'a>(form: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, AwsError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| AwsError::client("MissingParameter", format!("{name}: missing")))
}

fn only(form: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), AwsError> {
    if let Some(other) = form.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(AwsError::client(
            "InvalidParameterValue",
            format!("{other}: writ's STS does not support this parameter (see docs/aws.md)"),
        ));
    }
    Ok(())
}

/// `AssumeRoleWithWebIdentity`.
async fn assume(
    state: &AppState,
    conn: &ConnInfo,
    form: &BTreeMap<String, String>,
    request_id: &str,
) -> Result<Response, AwsError> {
    only(
        form,
        &[
            "Action",
            "Version",
            "RoleArn",
            "RoleSessionName",
            "WebIdentityToken",
            "DurationSeconds",
        ],
    )?;
    let role = required(form, "RoleArn")?;
    let session = required(form, "RoleSessionName")?;
    let token = required(form, "WebIdentityToken")?;
    // AWS's limits, so an oversized value never reaches the audit log.
    if !(20..=2048).contains(&role.len()) {
        return Err(AwsError::client(
            "ValidationError",
            "RoleArn: 20 to 2048 characters, arn:aws:iam::ACCOUNT:role/FUNCTION",
        ));
    }
    if !(4..=20_000).contains(&token.len()) {
        return Err(AwsError::client(
            "ValidationError",
            "WebIdentityToken: 4 to 20000 characters",
        ));
    }
    if !(2..=64).contains(&session.len())
        || !session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(AwsError::client(
            "ValidationError",
            "RoleSessionName: 2 to 64 characters of letters, digits and _+=,.@-",
        ));
    }
    let duration = match form.get("DurationSeconds") {
        None => DEFAULT_DURATION,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| DURATION_RANGE.contains(d))
            .ok_or_else(|| {
                AwsError::client(
                    "ValidationError",
                    format!("DurationSeconds {d:?}: a whole number from 900 to 43200"),
                )
            })?,
    };
    crate::api::admit(state, conn, "writ:Authenticate")
        .map_err(|e| super::protocol::from_api_error(e, ASSUME, false))?;
    let (caller, claims) =
        match crate::api::access::function::by_jwt_with_claims(state, conn, token, ASSUME).await {
            Ok(found) => found,
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
                crate::api::authentication_failed(state, conn);
                return Err(AwsError::client(
                    "InvalidIdentityToken",
                    "the web identity token is not a valid JWT-SVID for this server: it must be \
                 signed by the trust domain, unexpired, of a live function, and its only \
                 audience must be spiffe://TRUST-DOMAIN/writ/server",
                ));
            }
            Err(e) => return Err(super::protocol::from_api_error(e, ASSUME, false)),
        };
    let Some(function) = caller.function() else {
        return Err(AwsError::client("InvalidIdentityToken", "not a function"));
    };
    let account = &state.aws.account_id;
    let own = role_arn(account, function.name());
    // The one role a function may assume is its own.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        role.as_bytes(),
        own.as_bytes(),
    )) {
        let why = format!(
            "Not authorized to perform sts:AssumeRoleWithWebIdentity on {role}: a function \
             assumes only its own role, {own}"
        );
        state
            .audit(
                conn,
                &caller.actor,
                caller.authenticated_by,
                ASSUME,
                role,
                Outcome::Denied,
                Some(why.clone()),
                None,
            )
            .map_err(|e| super::protocol::from_api_error(e, ASSUME, false))?;
        return Err(AwsError::new(StatusCode::FORBIDDEN, "AccessDenied", why));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let issued = credentials::issue(
        &state.master,
        function.name(),
        session,
        now,
        duration,
        claims.x509_svid_serial.clone(),
    )
    .map_err(|e| {
        tracing::error!(error = %e, "could not issue AWS credentials");
        AwsError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "could not issue credentials; see the server log",
        )
    })?;
    let expiration = rfc3339(issued.session.expires_at);
    // The issue is on record before the credentials leave (the access key id is not a
    // secret: it names the credentials in later events).
    let mut event = state.event(
        conn,
        &caller.actor,
        caller.authenticated_by,
        ASSUME,
        &own,
        Outcome::Allowed,
    );
    event.decision = Some(writ_audit::Decision::Allowed);
    event.reason = Some(format!(
        "access key {} for session {session}, until {expiration}",
        issued.session.access_key_id
    ));
    event.serial = claims.x509_svid_serial.clone();
    state
        .audit
        .record_durable(event)
        .await
        .map_err(|e| super::protocol::from_api_error(e, ASSUME, false))?;
    let arn = assumed_role_arn(account, function.name(), session);
    let role_id = assumed_role_id(&caller.actor, function.record.created_at, session);
    let audience = format!("spiffe://{}/writ/server", state.trust_domain);
    let body = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{STS_NAMESPACE}\">\
         <AssumeRoleWithWebIdentityResult>\
         <SubjectFromWebIdentityToken>{}</SubjectFromWebIdentityToken>\
         <Audience>{}</Audience>\
         <AssumedRoleUser><Arn>{}</Arn><AssumedRoleId>{}</AssumedRoleId></AssumedRoleUser>\
         <Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
         <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
         <Provider>spiffe://{}</Provider>\
         </AssumeRoleWithWebIdentityResult>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
         </AssumeRoleWithWebIdentityResponse>",
        xml_escape(&caller.actor),
        xml_escape(&audience),
        xml_escape(&arn),
        xml_escape(&role_id),
        xml_escape(&issued.session.access_key_id),
        xml_escape(&issued.session.secret_access_key),
        xml_escape(&issued.token),
        xml_escape(&expiration),
        xml_escape(state.trust_domain.as_str()),
        xml_escape(request_id),
    );
    Ok(xml_response(StatusCode::OK, body, request_id))
}

/// `GetCallerIdentity`: who the signed request's credentials are.
async fn caller_identity(
    state: &AppState,
    conn: &ConnInfo,
    received: &Received<'_>,
    form: &BTreeMap<String, String>,
    request_id: &str,
) -> Result<Response, AwsError> {
    only(form, &["Action", "Version"])?;
    let signed = credentials::verify_request(
        state,
        conn,
        received,
        "sts",
        "sts:GetCallerIdentity",
        "sts:GetCallerIdentity",
    )
    .await
    .map_err(|mut e| {
        // STS's names for the same refusals.
        e.code = match e.code {
            "UnrecognizedClientException" => "InvalidClientTokenId",
            "InvalidSignatureException" => "SignatureDoesNotMatch",
            "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
            "ExpiredTokenException" => "ExpiredToken",
            "IncompleteSignatureException" => "IncompleteSignature",
            other => other,
        };
        e
    })?;
    let account = &state.aws.account_id;
    let session = &signed.session;
    let created = signed
        .caller
        .function()
        .map(|f| f.record.created_at)
        .unwrap_or_default();
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"{STS_NAMESPACE}\"><GetCallerIdentityResult>\
         <Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata>\
         </GetCallerIdentityResponse>",
        xml_escape(&assumed_role_arn(
            account,
            &session.function,
            &session.session_name
        )),
        xml_escape(&assumed_role_id(
            &signed.caller.actor,
            created,
            &session.session_name
        )),
        xml_escape(account),
        xml_escape(request_id),
    );
    Ok(xml_response(StatusCode::OK, body, request_id))
}
