//! The `/v1` routes of writ's AWS credentials.
//!
//! - `POST /v1/aws/signing-key`: for a gateway verifying SigV4 requests signed with writ's
//!   AWS credentials, the signing key of one day, region and service. The credentials are
//!   checked as the server's own AWS endpoints check them ([`crate::aws::credentials`]);
//!   the secret never leaves, and the key signs (and verifies) requests of that scope only.
//! - `POST /v1/aws/credentials`: a function's own credentials, over mutual TLS, as writ's
//!   STS gives them for a JWT-SVID ([`crate::aws::sts`]), for its agent to serve on the
//!   container credentials endpoint.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use time::OffsetDateTime;
use writ_api::aws::{AwsCredentials, AwsCredentialsRequest, SigningKey, SigningKeyRequest};
use writ_audit::Outcome;

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::aws::credentials;
use crate::state::AppState;
use crate::tls::ConnInfo;

/// The action the signing-key route decides.
pub const ACTION: &str = "writ:DeriveAwsSigningKey";

/// The action the credentials route decides, on the calling function.
pub const CREDENTIALS_ACTION: &str = "writ:GetAwsCredentials";

/// How far outside the credentials' life a scope's day may begin or end: SigV4 accepts
/// signing times 5 minutes either way.
const SKEW: i64 = 300;

fn scope_part(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || value.len() > 128
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::bad_request(format!(
            "{field}: 1 to 128 characters of letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// The Unix time a `YYYYMMDD` day begins.
fn day_start(date: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::bad_request("date: YYYYMMDD, the credential scope's date");
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let year: i32 = date[..4].parse().map_err(|_| bad())?;
    let month: u8 = date[4..6].parse().map_err(|_| bad())?;
    let day: u8 = date[6..].parse().map_err(|_| bad())?;
    let month = time::Month::try_from(month).map_err(|_| bad())?;
    let d = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    Ok(d.midnight().assume_utc().unix_timestamp())
}

pub(super) async fn signing_key(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<SigningKeyRequest>,
) -> Result<Json<SigningKey>, ApiError> {
    let grant = auth
        .grant(ACTION)
        .ok_or_else(|| ApiError::internal("the signing-key route was reached undecided", ACTION))?;
    let start = day_start(&body.date)?;
    scope_part("region", &body.region)?;
    scope_part("service", &body.service)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let refuse = |why: String| -> ApiError {
        let mut event = auth.event(&state, &conn, grant);
        event.outcome = Outcome::Denied;
        event.reason = Some(format!("access key {}: {why}", body.access_key_id));
        match state.audit.record(event) {
            Ok(()) => ApiError::forbidden(format!("the credentials do not verify: {why}")),
            Err(e) => e.into(),
        }
    };
    let (session, record) =
        match credentials::check_session(&state, &body.access_key_id, &body.session_token, now)
            .await
        {
            Ok(found) => found,
            Err(refusal) => return Err(refuse(refusal.reason())),
        };
    if start > session.expires_at + SKEW || start + 86_400 < session.issued_at - SKEW {
        return Err(refuse(format!(
            "the day {} is outside the credentials' life ({} to {})",
            body.date,
            rfc3339(session.issued_at),
            rfc3339(session.expires_at)
        )));
    }
    let key = writ_sigv4::signing_key(
        session.secret_access_key.as_bytes(),
        &body.date,
        &body.region,
        &body.service,
    );
    let spiffe_id = state
        .function_id(&record.name)
        .map_err(|e| ApiError::internal("a function's name is invalid", e))?
        .to_string();
    // The key is on record before it leaves.
    let mut event = auth.event(&state, &conn, grant);
    event.reason = Some(format!(
        "access key {} of {spiffe_id}, scope {}/{}/{}",
        session.access_key_id, body.date, body.region, body.service
    ));
    state.audit.record_durable(event).await?;
    Ok(Json(SigningKey {
        signing_key: key.iter().map(|b| format!("{b:02x}")).collect(),
        function: record.name,
        spiffe_id,
        expiration: rfc3339(session.expires_at),
        x509_svid_serial: session.x509_svid_serial.clone(),
    }))
}

/// `POST /v1/aws/credentials`: the calling function's credentials, bound to the X.509-SVID
/// it called with, on record before they leave.
pub(super) async fn credentials(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<AwsCredentialsRequest>,
) -> Result<Json<AwsCredentials>, ApiError> {
    let (function, serial) = super::identity::svid_function(&auth)?;
    let duration = body
        .duration_seconds
        .unwrap_or(crate::aws::sts::DEFAULT_DURATION);
    if !crate::aws::sts::DURATION_RANGE.contains(&duration) {
        return Err(ApiError::bad_request(format!(
            "durationSeconds: {duration} is not a whole number from 900 to 43200"
        )));
    }
    let session = body
        .session_name
        .clone()
        .unwrap_or_else(|| function.name().to_string());
    if !(2..=64).contains(&session.len())
        || !session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(ApiError::bad_request(
            "sessionName: 2 to 64 characters of letters, digits and _+=,.@-",
        ));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let issued = credentials::issue(
        &state.master,
        function.name(),
        &session,
        now,
        duration,
        Some(serial.to_string()),
    )
    .map_err(|e| ApiError::internal("could not issue AWS credentials", e))?;
    let expiration = rfc3339(issued.session.expires_at);
    // The issue is on record before the credentials leave (the access key id is not a
    // secret: it names the credentials in later events).
    let grant = auth.grant(CREDENTIALS_ACTION).ok_or_else(|| {
        ApiError::internal(
            "the credentials route was reached undecided",
            CREDENTIALS_ACTION,
        )
    })?;
    let mut event = auth.event(&state, &conn, grant);
    event.reason = Some(format!(
        "access key {} for session {session}, until {expiration}",
        issued.session.access_key_id
    ));
    state.audit.record_durable(event).await?;
    Ok(Json(AwsCredentials {
        access_key_id: issued.session.access_key_id,
        secret_access_key: issued.session.secret_access_key,
        session_token: issued.token,
        expiration,
        role_arn: crate::aws::sts::role_arn(&state.aws.account_id, function.name()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_dates_are_calendar_days() {
        assert_eq!(day_start("19700102").unwrap(), 86_400);
        assert!(day_start("20250230").is_err());
        assert!(day_start("2025010").is_err());
        assert!(scope_part("region", "us-east-1").is_ok());
        assert!(scope_part("region", "us east").is_err());
    }
}
