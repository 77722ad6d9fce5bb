//! Forwarding to a Lambda function: the request becomes a payload 2.0 event
//! ([`crate::lambda::event`]), is sent to the Invoke API (`RequestResponse`), SigV4-signed
//! with the gateway's AWS credentials, over the same pooled HTTP/1.1 (and rustls)
//! connections as an HTTP upstream, and the function's answer becomes the response
//! ([`crate::lambda::answer`]). A function error, a refusal by Lambda or an answer that is
//! not one are refusals in the gateway's own shape; the log and the audit event say why,
//! never with the function's error message or a credential.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use writ_sigv4::{Payload, SignableRequest, SigningParams, sign_headers};

use super::headers::names;
use super::refusal::Refusal;
use super::{Body, Caller, Connection, Gateway, Live, outgoing_headers};
use crate::aws_credentials::{AwsCredentials, region_from_env};
use crate::config;
use crate::lambda::{self, Authorizer, MAX_PAYLOAD};
use crate::metrics::Label;
use crate::upstream::SendError;

/// What invoking a route's function takes, worked out once.
pub(super) struct LambdaRoute {
    /// The Invoke API's base URL (`https://lambda.REGION.amazonaws.com`).
    pub(super) endpoint: String,
    /// The function as logs and audit events name it: `lambda:NAME[:QUALIFIER]`.
    pub(super) shown: String,
    /// The function, as configured.
    function: String,
    /// The request target: `/2015-03-31/functions/NAME/invocations[?Qualifier=Q]`.
    target: Uri,
    /// The region of the signature's scope.
    region: String,
    /// The gateway's credentials.
    credentials: Arc<AwsCredentials>,
}

impl LambdaRoute {
    /// The route's function from its `lambda` table; the region from it, else the
    /// function's ARN, else `AWS_REGION`/`AWS_DEFAULT_REGION` read through `var`.
    pub(super) fn new(
        l: &config::Lambda,
        credentials: Arc<AwsCredentials>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<LambdaRoute, String> {
        let function = l.function.get_ref().clone();
        let from_arn = function
            .strip_prefix("arn:")
            .and_then(|rest| rest.split(':').nth(2))
            .map(str::to_string);
        let region = l
            .region
            .as_ref()
            .map(|r| r.get_ref().clone())
            .or(from_arn)
            .or_else(|| region_from_env(&var))
            .ok_or(
                "no region: write lambda.region, or set AWS_REGION in the gateway's environment",
            )?;
        if !config::is_region(&region) {
            return Err(format!(
                "AWS_REGION {region:?} is not a region such as us-east-1"
            ));
        }
        let qualifier = l.qualifier.as_ref().map(|q| q.get_ref().as_str());
        let target = lambda::invoke_target(&function, qualifier)
            .parse::<Uri>()
            .map_err(|e| format!("{function:?}: {e}"))?;
        let shown = match qualifier {
            Some(q) => format!("lambda:{function}:{q}"),
            None => format!("lambda:{function}"),
        };
        Ok(LambdaRoute {
            endpoint: l.endpoint_url(&region),
            shown,
            function,
            target,
            region,
            credentials,
        })
    }
}

/// A new request id, as a UUID (version 4).
fn request_id() -> String {
    let mut b = [0u8; 16];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = nanos.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A 502 (or what `status` says) in the gateway's shape, with `reason` for the audit.
fn failed(status: StatusCode, code: &'static str, message: String, reason: String) -> Refusal {
    Refusal::new(status, code, Label::UpstreamError, message).with_reason(reason)
}

impl Gateway {
    /// Invokes `lambda`'s function with the event of the request, within the route's
    /// timeout (the whole invocation, since the answer comes at once), and answers with
    /// what the function answered.
    pub(super) async fn invoke_lambda(
        &self,
        live: &Live,
        lambda: &LambdaRoute,
        parts: hyper::http::request::Parts,
        body: Bytes,
        caller: &Caller,
        conn: &Connection,
    ) -> Result<Response<Body>, Refusal> {
        let domain = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.host())
            .unwrap_or_default()
            .to_string();
        let protocol = match parts.version {
            hyper::Version::HTTP_10 => "HTTP/1.0",
            hyper::Version::HTTP_2 => "HTTP/2.0",
            _ => "HTTP/1.1",
        };
        let mut headers = outgoing_headers(live, parts.headers, caller, conn, None);
        // The event's `headers` carry the request's own host.
        if headers.get(header::HOST).is_none()
            && let Ok(v) = HeaderValue::from_str(&domain)
        {
            headers.insert(header::HOST, v);
        }
        let request_id = request_id();
        let now = time::OffsetDateTime::now_utc();
        let event = lambda::event(&lambda::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
            headers: &headers,
            body: &body,
            protocol,
            source_ip: &conn.source,
            domain_name: &domain,
            request_id: &request_id,
            time_epoch_ms: i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            authorizer: Authorizer {
                principal: &caller.actor,
                authenticated_by: caller.method,
                route: &live.route.name,
            },
        });
        if event.len() > MAX_PAYLOAD {
            return Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "tooLarge",
                Label::TooLarge,
                format!(
                    "the request is over the {} bytes a Lambda function can be given",
                    MAX_PAYLOAD
                ),
            ));
        }
        let host = live.upstream.host.to_str().unwrap_or_default();
        let path = lambda.target.path();
        let query = lambda.target.query().unwrap_or_default();
        let unsigned = [
            ("host", host),
            ("content-type", "application/json"),
            ("x-amz-invocation-type", "RequestResponse"),
        ];
        let credentials = lambda.credentials.current();
        let signed = sign_headers(
            &SignableRequest::new("POST", path, query, &unsigned, Payload::Bytes(&event)),
            &SigningParams::new(&credentials, &lambda.region, "lambda", now),
        )
        .map_err(|e| {
            failed(
                StatusCode::BAD_GATEWAY,
                "upstreamFailed",
                "the gateway could not sign the invocation".into(),
                format!("{}: signing: {e}", lambda.shown),
            )
        })?;
        let mut out = Request::new(Bytes::from(event));
        *out.method_mut() = hyper::Method::POST;
        *out.uri_mut() = lambda.target.clone();
        let h = out.headers_mut();
        h.insert(header::HOST, live.upstream.host.clone());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            "x-amz-invocation-type",
            HeaderValue::from_static("RequestResponse"),
        );
        for (name, value) in signed.headers {
            let Ok(v) = HeaderValue::from_str(&value) else {
                continue;
            };
            h.insert(name, v);
        }
        if let Some(trace) = headers.get(names::TRACEPARENT) {
            h.insert(names::TRACEPARENT, trace.clone());
        }
        let invoke = async {
            let response = live.upstream.send(conn.worker, out).await.map_err(Some)?;
            let (parts, body) = response.into_parts();
            match Limited::new(body, MAX_PAYLOAD).collect().await {
                Ok(b) => Ok((parts, b.to_bytes())),
                Err(e)
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    Err(None)
                }
                Err(e) => Err(Some(SendError::Other(format!("reading the answer: {e}")))),
            }
        };
        let (answered, payload) = match tokio::time::timeout(live.route.timeout, invoke).await {
            Ok(Ok(got)) => got,
            Ok(Err(None)) => {
                return Err(failed(
                    StatusCode::BAD_GATEWAY,
                    "upstreamFailed",
                    format!("the function's answer is over {MAX_PAYLOAD} bytes"),
                    format!("{}: the answer is over {MAX_PAYLOAD} bytes", lambda.shown),
                ));
            }
            Ok(Err(Some(e))) => {
                let message = match &e {
                    SendError::Tls(_) => {
                        tracing::warn!(route = %live.route.name, upstream = %lambda.endpoint, "{e}");
                        format!("the Lambda endpoint could not be reached: {e}")
                    }
                    SendError::Other(_) => "the Lambda endpoint could not be reached".into(),
                };
                return Err(failed(
                    StatusCode::BAD_GATEWAY,
                    "upstreamFailed",
                    message,
                    format!("{} at {}: {e}", lambda.shown, lambda.endpoint),
                ));
            }
            Err(_) => {
                return Err(Refusal::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstreamTimeout",
                    Label::UpstreamTimeout,
                    format!(
                        "the function did not answer within {:?}",
                        live.route.timeout
                    ),
                ));
            }
        };
        if answered.status != StatusCode::OK {
            let kind = answered
                .headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok());
            let e = lambda::invoke_error(answered.status, kind, &payload);
            tracing::warn!(
                route = %live.route.name,
                function = %lambda.function,
                status = answered.status.as_u16(),
                error = %e.kind,
                "Lambda refused the invocation"
            );
            let (code, message) = if e.status == StatusCode::SERVICE_UNAVAILABLE {
                (
                    "upstreamThrottled",
                    format!("Lambda throttled the invocation ({}); try again", e.kind),
                )
            } else {
                (
                    "upstreamFailed",
                    format!("Lambda refused the invocation: {}", e.kind),
                )
            };
            let mut r = failed(
                e.status,
                code,
                message,
                format!(
                    "{}: Lambda answered {}: {}: {}",
                    lambda.shown,
                    answered.status.as_u16(),
                    e.kind,
                    e.message
                ),
            );
            if e.status == StatusCode::SERVICE_UNAVAILABLE {
                r.retry_after = Some(std::time::Duration::from_secs(1));
            }
            return Err(r);
        }
        if let Some(kind) = answered.headers.get("x-amz-function-error") {
            let error_type =
                lambda::function_error_type(kind.to_str().unwrap_or("Unhandled"), &payload);
            tracing::warn!(
                route = %live.route.name,
                function = %lambda.function,
                error = %error_type,
                "the function failed"
            );
            return Err(failed(
                StatusCode::BAD_GATEWAY,
                "functionError",
                "the function failed".into(),
                format!("{}: function error {error_type}", lambda.shown),
            ));
        }
        match lambda::answer(&payload) {
            Ok(a) => {
                let mut response = Response::new(Either::Right(Full::new(a.body)));
                *response.status_mut() = a.status;
                *response.headers_mut() = a.headers;
                Ok(response)
            }
            Err(e) => {
                tracing::warn!(route = %live.route.name, function = %lambda.function, "{e}");
                Err(failed(
                    StatusCode::BAD_GATEWAY,
                    "upstreamFailed",
                    e.to_string(),
                    format!("{}: {e}", lambda.shown),
                ))
            }
        }
    }
}
