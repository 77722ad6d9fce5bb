//! AWS-compatible surfaces, so AWS SDK code runs unchanged against writ's secrets: an STS
//! that exchanges a function's JWT-SVID for temporary AWS credentials
//! ([`sts`], [`credentials`]), and Secrets Manager and SSM Parameter Store APIs signed
//! with them ([`secretsmanager`], [`ssm`]), each operation decided as writ's own action
//! on writ's own resource before its handler runs ([`dispatch`]).
//!
//! All are served at `POST /` beside the `/v1` API, as AWS serves them: a form body with
//! `Action` is STS (the Query protocol), `X-Amz-Target` with a JSON 1.1 body is Secrets
//! Manager or SSM ([`protocol`]). Answers and refusals are in AWS's shapes, so the SDKs
//! raise their usual errors. See docs/aws.md.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::response::Response;

pub mod credentials;
pub mod dispatch;
pub mod protocol;
pub mod secretsmanager;
pub mod ssm;
pub mod sts;

use crate::state::AppState;
use crate::tls::ConnInfo;
use protocol::{AwsError, Protocol};

/// The account writ's ARNs name when `--aws-account-id` is not given.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// What the AWS surfaces keep: the account their ARNs name, and the cache of signing keys
/// derived for verifying requests.
#[derive(Debug)]
pub struct AwsState {
    /// The 12-digit account id in ARNs (`writ server --aws-account-id`).
    pub account_id: String,
    /// Signing keys derived from credentials' secrets, per day, region and service.
    pub signing_keys: writ_sigv4::SigningKeyCache,
}

impl AwsState {
    /// The state for `account_id`, which must be 12 digits.
    pub fn new(account_id: &str) -> Result<AwsState, String> {
        check_account_id(account_id)?;
        Ok(AwsState {
            account_id: account_id.to_string(),
            signing_keys: writ_sigv4::SigningKeyCache::new(100_000),
        })
    }
}

impl Default for AwsState {
    fn default() -> AwsState {
        AwsState {
            account_id: DEFAULT_ACCOUNT_ID.into(),
            signing_keys: writ_sigv4::SigningKeyCache::new(100_000),
        }
    }
}

/// Checks an AWS account id: 12 digits.
pub fn check_account_id(account_id: &str) -> Result<(), String> {
    if account_id.len() == 12 && account_id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!(
            "--aws-account-id {account_id:?}: an AWS account id is 12 digits"
        ))
    }
}

/// `POST /`: STS, Secrets Manager or SSM, by what the request carries.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    req: Request,
) -> Response {
    // The id audit events carry, so an answer and its events can be matched.
    let request_id = if conn.request_id.is_empty() {
        protocol::request_id()
    } else {
        conn.request_id.clone()
    };
    let (parts, body) = req.into_parts();
    let protocol = if parts.headers.contains_key("x-amz-target") {
        Protocol::Json
    } else {
        Protocol::Query
    };
    let body = match crate::api::read_body(body, &parts.headers, protocol::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return AwsError::client(
                if protocol == Protocol::Json {
                    "SerializationException"
                } else {
                    "MalformedInput"
                },
                e.message().to_string(),
            )
            .into_response_for(protocol, &request_id);
        }
    };
    let received = credentials::Received {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &body,
    };
    let answer = match protocol {
        Protocol::Json => json_request(&state, &conn, &received, &request_id).await,
        Protocol::Query => query_request(&state, &conn, &received, &request_id).await,
    };
    answer.unwrap_or_else(|e| e.into_response_for(protocol, &request_id))
}

async fn json_request(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    received: &credentials::Received<'_>,
    request_id: &str,
) -> Result<Response, AwsError> {
    if !protocol::is_json_1(received.headers) {
        return Err(AwsError::client(
            "SerializationException",
            format!(
                "Content-Type: send the body as {}, with X-Amz-Target",
                protocol::JSON_1_1
            ),
        ));
    }
    let (service, name) = protocol::target(received.headers)?;
    let Some(operation) = dispatch::find(service, name) else {
        return Err(AwsError::client(
            "UnknownOperationException",
            format!(
                "X-Amz-Target {service}.{name}: writ does not offer this operation; see \
                 docs/aws.md for the ones it does"
            ),
        ));
    };
    let answer = dispatch::dispatch(state, conn, received, operation).await?;
    Ok(protocol::json_response(&answer, request_id))
}

async fn query_request(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    received: &credentials::Received<'_>,
    request_id: &str,
) -> Result<Response, AwsError> {
    if !protocol::is_form(received.headers) {
        return Err(AwsError::client(
            "InvalidAction",
            "POST / takes STS requests (a form body, application/x-www-form-urlencoded) \
             or Secrets Manager and SSM requests (X-Amz-Target with a JSON 1.1 body)",
        ));
    }
    let form = protocol::decode_form(received.body)?;
    sts::handle(state, conn, received, &form, request_id).await
}
