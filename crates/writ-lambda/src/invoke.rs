//! The Invoke API's requests and answers, as Lambda shapes them, without I/O: invocation
//! types, error answers (status, `X-Amzn-ErrorType`, body), the timeout error payload, the
//! retry schedule of asynchronous invocations and the on-failure destination record.

use std::time::Duration;

use serde_json::{Value as Json, json};

/// The path prefix of the Invoke API.
pub const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
/// The largest synchronous request payload Lambda takes: 6 MB.
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// The largest asynchronous (Event) request payload Lambda takes: 1 MB.
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// The version every invocation runs: the host has no published versions.
pub const EXECUTED_VERSION: &str = "$LATEST";

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    /// Synchronous: the answer carries the function's result (the default).
    RequestResponse,
    /// Asynchronous: queued, answered 202, retried on failure.
    Event,
    /// Only checks the caller may invoke: 204.
    DryRun,
}

impl InvocationType {
    /// Reads the header's value (absent means `RequestResponse`).
    pub fn parse(header: Option<&str>) -> Result<InvocationType, ApiError> {
        match header {
            None | Some("RequestResponse") => Ok(InvocationType::RequestResponse),
            Some("Event") => Ok(InvocationType::Event),
            Some("DryRun") => Ok(InvocationType::DryRun),
            Some(other) => Err(ApiError::invalid_parameter(format!(
                "X-Amz-Invocation-Type {other:?} is not one of RequestResponse, Event, DryRun"
            ))),
        }
    }
}

/// The function and qualifier an Invoke path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The function's name.
    pub name: String,
    /// The qualifier (`?Qualifier=` or `NAME:QUALIFIER`), if any.
    pub qualifier: Option<String>,
}

/// Reads `/2015-03-31/functions/{FunctionName}/invocations` with the path percent-decoded.
/// `FunctionName` may be a name, `NAME:QUALIFIER`, a partial ARN
/// (`ACCOUNT:function:NAME`) or a full ARN. `None` when the path is not an Invoke path.
pub fn parse_invoke_path(path: &str, query: Option<&str>) -> Option<Target> {
    let rest = path.strip_prefix(INVOKE_PREFIX)?;
    let raw = rest.strip_suffix("/invocations")?;
    let decoded = percent_decode(raw)?;
    let tail = match decoded.split_once(":function:") {
        Some((_, tail)) => tail.to_string(),
        None => decoded,
    };
    let (name, mut qualifier) = match tail.split_once(':') {
        Some((n, q)) => (n.to_string(), Some(q.to_string())),
        None => (tail, None),
    };
    if let Some(q) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|p| p.strip_prefix("Qualifier="))
    {
        qualifier = percent_decode(q);
    }
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(Target { name, qualifier })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An error answer of the Invoke API: its HTTP status, `X-Amzn-ErrorType` and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The error type, sent as `X-Amzn-ErrorType` (what the AWS SDKs raise).
    pub kind: &'static str,
    /// The message, for people. Never holds a secret.
    pub message: String,
    /// `Reason` of a throttle, as Lambda sends it.
    pub reason: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            reason: None,
        }
    }

    /// 404: no such function.
    pub fn not_found(arn: &str) -> ApiError {
        ApiError::new(
            404,
            "ResourceNotFoundException",
            format!("Function not found: {arn}"),
        )
    }

    /// 403: the caller may not invoke the function.
    pub fn access_denied(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "AccessDeniedException", message)
    }

    /// 403: the request is not signed.
    pub fn missing_authentication() -> ApiError {
        ApiError::new(
            403,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token: sign the request with SigV4 (the AWS SDKs and CLI do)",
        )
    }

    /// 403: the access key id is unknown.
    pub fn unrecognized_client() -> ApiError {
        ApiError::new(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid: the access key id is not in \
             the host's credentials file",
        )
    }

    /// 403: the signature does not verify.
    pub fn invalid_signature(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "InvalidSignatureException", message)
    }

    /// 429: every execution environment the function may have is busy.
    pub fn too_many_requests() -> ApiError {
        ApiError {
            reason: Some("ReservedFunctionConcurrentInvocationLimitExceeded"),
            ..ApiError::new(429, "TooManyRequestsException", "Rate Exceeded.")
        }
    }

    /// 413: the payload is larger than Lambda accepts.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestTooLargeException",
            format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
        )
    }

    /// 400: a parameter is wrong.
    pub fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidParameterValueException", message)
    }

    /// 502: the runtime failed to start or answered in a way Lambda does not accept.
    pub fn service(kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(502, kind, message)
    }

    /// The JSON body Lambda sends with the error.
    pub fn body(&self) -> Json {
        let mut body = json!({"Type": "User", "message": self.message});
        if let Some(r) = self.reason {
            body["Reason"] = json!(r);
        }
        body
    }
}

/// How an invocation ended, as the Invoke API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The runtime posted a response: the payload.
    Response(Vec<u8>),
    /// The runtime posted an error (or the function timed out or crashed): the error
    /// payload, sent with `X-Amz-Function-Error: Unhandled`.
    FunctionError(Vec<u8>),
}

impl Outcome {
    /// True for a function error.
    pub fn is_error(&self) -> bool {
        matches!(self, Outcome::FunctionError(_))
    }
}

/// The error payload of an invocation that ran out of time, shaped as Lambda's.
pub fn timeout_payload(
    request_id: &str,
    timeout_seconds: u64,
    now: time::OffsetDateTime,
) -> Vec<u8> {
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let message = format!("{stamp} {request_id} Task timed out after {timeout_seconds}.00 seconds");
    json!({"errorType": "Sandbox.Timedout", "errorMessage": message})
        .to_string()
        .into_bytes()
}

/// The error payload of a runtime that exited during an invocation, as Lambda's.
pub fn exit_payload(request_id: &str, status: &str) -> Vec<u8> {
    json!({
        "errorType": "Runtime.ExitError",
        "errorMessage": format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
    })
    .to_string()
    .into_bytes()
}

/// When the attempts of an asynchronous invocation run: the first at once, then one retry
/// after each delay (Lambda: two retries, about one and two minutes apart).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// A schedule with these delays between attempts.
    pub fn new(delays: Vec<Duration>) -> RetrySchedule {
        RetrySchedule { delays }
    }

    /// Lambda's: retries after 60 and 120 seconds.
    pub fn lambda() -> RetrySchedule {
        RetrySchedule::new(vec![Duration::from_secs(60), Duration::from_secs(120)])
    }

    /// The number of attempts in all.
    pub fn attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The delay before attempt `attempt` (0 is the first, which has none), or `None` when
    /// there is no such attempt.
    pub fn delay_before(&self, attempt: usize) -> Option<Duration> {
        match attempt {
            0 => Some(Duration::ZERO),
            n => self.delays.get(n - 1).copied(),
        }
    }
}

/// The record Lambda sends to an on-failure destination when an asynchronous invocation
/// fails for the last time.
pub fn failure_record(
    request_id: &str,
    function_arn: &str,
    attempts: usize,
    request_payload: &[u8],
    last: &Outcome,
    now: time::OffsetDateTime,
) -> Json {
    let as_json = |bytes: &[u8]| {
        serde_json::from_slice::<Json>(bytes)
            .unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes)))
    };
    let (payload, error) = match last {
        Outcome::Response(p) => (as_json(p), None),
        Outcome::FunctionError(p) => (as_json(p), Some("Unhandled")),
    };
    let mut response_context = json!({"statusCode": 200, "executedVersion": EXECUTED_VERSION});
    if let Some(e) = error {
        response_context["functionError"] = json!(e);
    }
    json!({
        "version": "1.0",
        "timestamp": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": format!("{function_arn}:{EXECUTED_VERSION}"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": as_json(request_payload),
        "responseContext": response_context,
        "responsePayload": payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_functions_as_lambda_reads_them() {
        let t = parse_invoke_path("/2015-03-31/functions/hello/invocations", None).unwrap();
        assert_eq!(t.name, "hello");
        let t = parse_invoke_path(
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahello%3A%24LATEST/invocations",
            None,
        )
        .unwrap();
        assert_eq!(t.name, "hello");
        assert_eq!(t.qualifier.as_deref(), Some("$LATEST"));
        let t = parse_invoke_path(
            "/2015-03-31/functions/hello/invocations",
            Some("Qualifier=prod"),
        )
        .unwrap();
        assert_eq!(t.qualifier.as_deref(), Some("prod"));
        assert!(parse_invoke_path("/2015-03-31/functions/hello", None).is_none());
        assert!(parse_invoke_path("/2015-03-31/functions//invocations", None).is_none());
    }

    #[test]
    fn invocation_types() {
        assert_eq!(
            InvocationType::parse(None).unwrap(),
            InvocationType::RequestResponse
        );
        assert_eq!(
            InvocationType::parse(Some("Event")).unwrap(),
            InvocationType::Event
        );
        assert_eq!(InvocationType::parse(Some("x")).unwrap_err().status, 400);
    }

    #[test]
    fn retry_schedule_is_three_attempts() {
        let s = RetrySchedule::lambda();
        assert_eq!(s.attempts(), 3);
        assert_eq!(s.delay_before(0), Some(Duration::ZERO));
        assert_eq!(s.delay_before(2), Some(Duration::from_secs(120)));
        assert_eq!(s.delay_before(3), None);
    }

    #[test]
    fn throttle_body_has_reason() {
        let e = ApiError::too_many_requests();
        assert_eq!(e.status, 429);
        assert_eq!(
            e.body()["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
    }

    #[test]
    fn failure_record_is_lambdas_shape() {
        let r = failure_record(
            "id",
            "arn:aws:lambda:us-east-1:1:function:f",
            3,
            b"{\"a\":1}",
            &Outcome::FunctionError(b"{\"errorMessage\":\"x\"}".to_vec()),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(r["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(r["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(r["requestPayload"]["a"], 1);
        assert_eq!(r["responseContext"]["functionError"], "Unhandled");
    }
}
