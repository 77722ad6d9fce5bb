//! The Lambda upstream's translation, without I/O: an HTTP request becomes the event of an
//! API Gateway HTTP API or function URL (payload format 2.0), with the verified caller in
//! `requestContext.authorizer.writ`, and the function's answer (`statusCode`, `headers`,
//! `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`, or a bare value) becomes the
//! HTTP response, as API Gateway makes it.
//!
//! The Invoke API's own errors (an `X-Amz-Function-Error`, a refusal by Lambda) are read
//! here too ([`invoke_error`], [`function_error_type`]); sending the request is the proxy's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

/// The largest payload the Invoke API takes or gives for a synchronous invocation (6 MB):
/// a bigger event is refused before it is sent, a bigger answer is not read.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Who called, as the gateway verified it: it goes into `requestContext.authorizer.writ`.
#[derive(Debug, Clone, Copy)]
pub struct Authorizer<'a> {
    /// The caller: a SPIFFE ID, `apikey:ID`, `webhook:ROUTE` or `anonymous`.
    pub principal: &'a str,
    /// How it authenticated: `mtls`, `jwt`, `webhook`, `api-key` or `public`.
    pub authenticated_by: &'a str,
    /// The gateway route that took the request.
    pub route: &'a str,
}

/// The request as the event describes it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method (`POST`).
    pub method: &'a str,
    /// The path as sent, without the query.
    pub path: &'a str,
    /// The query as sent, without `?`, or empty.
    pub query: &'a str,
    /// The headers to pass (already stripped of what may not pass, with the gateway's own
    /// added); names are lower case, several values of one name are joined with commas,
    /// and `cookie` becomes the event's `cookies`.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
    /// The HTTP version, as `HTTP/1.1`.
    pub protocol: &'a str,
    /// The caller's address.
    pub source_ip: &'a str,
    /// The host the caller asked for (`domainName`).
    pub domain_name: &'a str,
    /// A unique id for the request (`requestId`).
    pub request_id: &'a str,
    /// When the request arrived, in milliseconds since 1970 (`timeEpoch`; `time` is made
    /// from it).
    pub time_epoch_ms: i64,
    /// The verified caller.
    pub authorizer: Authorizer<'a>,
}

/// The event for `request`, payload format 2.0, as JSON.
pub fn event(request: &Request<'_>) -> Vec<u8> {
    let mut headers = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for name in request.headers.keys() {
        let values = request.headers.get_all(name);
        if name == hyper::header::COOKIE {
            for v in values {
                let text = String::from_utf8_lossy(v.as_bytes());
                cookies.extend(
                    text.split(';')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(|c| Value::String(c.to_string())),
                );
            }
            continue;
        }
        let joined = values
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        headers.insert(name.as_str().to_string(), Value::String(joined));
    }
    let mut params: Map<String, Value> = Map::new();
    for pair in request.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (percent_decode(k), percent_decode(v));
        match params.get_mut(&k) {
            Some(Value::String(prior)) => {
                prior.push(',');
                prior.push_str(&v);
            }
            _ => {
                params.insert(k, Value::String(v));
            }
        }
    }
    let user_agent = request
        .headers
        .get(hyper::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let domain_prefix = request.domain_name.split('.').next().unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": request.authorizer.route,
            "authorizer": {"writ": {
                "principal": request.authorizer.principal,
                "authenticatedBy": request.authorizer.authenticated_by,
                "route": request.authorizer.route,
            }},
            "domainName": request.domain_name,
            "domainPrefix": domain_prefix,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request.request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": clf_time(request.time_epoch_ms),
            "timeEpoch": request.time_epoch_ms,
        },
        "isBase64Encoded": false,
    });
    let fields = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), Value::Array(cookies));
    }
    if !params.is_empty() {
        fields.insert("queryStringParameters".into(), Value::Object(params));
    }
    if !request.body.is_empty() {
        match std::str::from_utf8(request.body) {
            Ok(text) => {
                fields.insert("body".into(), Value::String(text.to_string()));
            }
            Err(_) => {
                fields.insert("body".into(), Value::String(STANDARD.encode(request.body)));
                fields.insert("isBase64Encoded".into(), Value::Bool(true));
            }
        }
    }
    serde_json::to_vec(&event).expect("JSON values serialize")
}

/// `%XX` decoded (and `+` as a space, as API Gateway reads a query), lossy on bytes that
/// are not UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A time in the common log format API Gateway uses: `07/Dec/2026:22:43:23 +0000`.
fn clf_time(epoch_ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000)) else {
        return String::new();
    };
    format!(
        "{:02}/{}/{}:{:02}:{:02}:{:02} +0000",
        t.day(),
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The HTTP response a function's answer stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers, `Set-Cookie` from `cookies` included.
    pub headers: HeaderMap,
    /// The body, decoded from base64 when the function said so.
    pub body: Bytes,
}

/// Why a function's answer cannot be made into an HTTP response. The message names the
/// field and never repeats the answer's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The payload is not JSON.
    #[error("the function's answer is not JSON: {0}")]
    NotJson(String),
    /// `statusCode` is not a number from 100 to 599.
    #[error("the function's answer has statusCode {0}, not a number from 100 to 599")]
    Status(String),
    /// A header's name or value cannot be sent.
    #[error("the function's answer has a header that cannot be sent: {0}")]
    Header(String),
    /// `body` is marked base64 but is not.
    #[error("the function's answer says isBase64Encoded but its body is not base64")]
    Base64,
    /// A field has the wrong type.
    #[error("the function's answer has {0} of the wrong type")]
    Field(&'static str),
}

/// Headers a function may not set: the gateway frames the answer itself.
fn reserved(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "content-length"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

/// The text of a header value as a function may give it: a string, a number or a boolean.
fn header_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn add_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), AnswerError> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| AnswerError::Header(format!("{name:?}")))?;
    if reserved(&n) {
        return Ok(());
    }
    let v = HeaderValue::from_str(value).map_err(|_| AnswerError::Header(n.to_string()))?;
    headers.append(n, v);
    Ok(())
}

/// The HTTP response for a function's answer `payload`, as API Gateway (HTTP API, payload
/// format 2.0) makes it: an object with `statusCode` gives its status, `headers`,
/// `multiValueHeaders`, `cookies` (each a `Set-Cookie`) and `body` (base64-decoded with
/// `isBase64Encoded`); any other JSON value is a 200 with `content-type: application/json`
/// and the value itself as the body.
pub fn answer(payload: &[u8]) -> Result<Answer, AnswerError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| AnswerError::NotJson(e.to_string()))?;
    let Some(fields) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        let mut headers = HeaderMap::new();
        headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(Answer {
            status: StatusCode::OK,
            headers,
            body: Bytes::copy_from_slice(payload.trim_ascii()),
        });
    };
    let code = &fields["statusCode"];
    let status = code
        .as_u64()
        .or_else(|| code.as_str().and_then(|s| s.parse().ok()))
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| (100..=599).contains(n))
        .and_then(|n| StatusCode::from_u16(n).ok())
        .ok_or_else(|| {
            let shown = code.to_string();
            AnswerError::Status(shown.chars().take(32).collect())
        })?;
    let mut headers = HeaderMap::new();
    match fields.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, v) in h {
                let text = header_text(v).ok_or(AnswerError::Field("headers"))?;
                add_header(&mut headers, name, &text)?;
            }
        }
        Some(_) => return Err(AnswerError::Field("headers")),
    }
    match fields.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (name, vs) in h {
                let Value::Array(vs) = vs else {
                    return Err(AnswerError::Field("multiValueHeaders"));
                };
                for v in vs {
                    let text = header_text(v).ok_or(AnswerError::Field("multiValueHeaders"))?;
                    add_header(&mut headers, name, &text)?;
                }
            }
        }
        Some(_) => return Err(AnswerError::Field("multiValueHeaders")),
    }
    match fields.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cs)) => {
            for c in cs {
                let Value::String(c) = c else {
                    return Err(AnswerError::Field("cookies"));
                };
                add_header(&mut headers, "set-cookie", c)?;
            }
        }
        Some(_) => return Err(AnswerError::Field("cookies")),
    }
    let base64 = match fields.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AnswerError::Field("isBase64Encoded")),
    };
    let body = match fields.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => Bytes::from(
            STANDARD
                .decode(s.as_bytes())
                .map_err(|_| AnswerError::Base64)?,
        ),
        Some(Value::String(s)) => Bytes::copy_from_slice(s.as_bytes()),
        // API Gateway sends any other JSON value as its text.
        Some(other) => Bytes::from(other.to_string()),
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// The `errorType` of a function error's payload (`{"errorType": "ValueError", ...}`),
/// for the gateway's log and audit: never the message or stack trace, which may hold
/// anything. `Unhandled` (the header's value) when the payload names none.
pub fn function_error_type(header: &str, payload: &[u8]) -> String {
    let named = serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_string));
    let kind = named.unwrap_or_else(|| header.to_string());
    safe_name(&kind)
}

/// Letters, digits and `.:_-` of `text`, at most 128 of them: what of an error type may go
/// into a log line.
fn safe_name(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '_' | '-'))
        .take(128)
        .collect()
}

/// What the Invoke API's refusal (a status other than 200, 202 and 204) means for the
/// caller: the status the gateway answers with and the error type Lambda named
/// (`AccessDeniedException`, `ResourceNotFoundException`, `TooManyRequestsException`, ...)
/// from `x-amzn-errortype` or the body's `Type`/`__type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    /// 503 for throttling (`429`, the caller may retry), 502 otherwise.
    pub status: StatusCode,
    /// Lambda's name for the error, or `HTTP <status>` when it gave none.
    pub kind: String,
    /// Lambda's message, cut to 200 characters: for the log and audit only.
    pub message: String,
}

/// Reads the Invoke API's refusal: its `status`, its `x-amzn-errortype` header and body.
pub fn invoke_error(status: StatusCode, error_type: Option<&str>, body: &[u8]) -> InvokeError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let from_body = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key)?.as_str().map(str::to_string))
    };
    let kind = error_type
        .map(|t| t.split(':').next().unwrap_or(t).to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| from_body("Type").filter(|t| t != "User" && t != "Service"))
        .or_else(|| from_body("__type"))
        .map(|t| safe_name(t.rsplit('#').next().unwrap_or(&t)))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    let message = from_body("message")
        .or_else(|| from_body("Message"))
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    InvokeError {
        status: if status == StatusCode::TOO_MANY_REQUESTS {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::BAD_GATEWAY
        },
        kind,
        message,
    }
}

/// The Invoke API's path and query for `function` (a name or ARN) and `qualifier`:
/// `/2015-03-31/functions/NAME/invocations[?Qualifier=Q]`, with `:` and `$` escaped.
pub fn invoke_target(function: &str, qualifier: Option<&str>) -> String {
    let escape = |s: &str| s.replace(':', "%3A").replace('$', "%24");
    let mut target = format!("/2015-03-31/functions/{}/invocations", escape(function));
    if let Some(q) = qualifier {
        target.push_str("?Qualifier=");
        target.push_str(&escape(q));
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a HeaderMap, body: &'a [u8], query: &'a str) -> Request<'a> {
        Request {
            method: "POST",
            path: "/orders/42",
            query,
            headers,
            body,
            protocol: "HTTP/1.1",
            source_ip: "203.0.113.7",
            domain_name: "api.example.org",
            request_id: "req-1",
            time_epoch_ms: 1_765_147_403_123,
            authorizer: Authorizer {
                principal: "spiffe://example.org/fn/orders",
                authenticated_by: "mtls",
                route: "orders",
            },
        }
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_request_becomes_a_payload_2_0_event() {
        let mut h = HeaderMap::new();
        h.append("user-agent", HeaderValue::from_static("curl/8"));
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        h.append("cookie", HeaderValue::from_static("a=1; b=2"));
        h.append("cookie", HeaderValue::from_static("c=3"));
        let e = parse(&event(&request(&h, b"{\"n\":1}", "a=1&b=x%20y&a=2&flag")));
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "$default");
        assert_eq!(e["rawPath"], "/orders/42");
        assert_eq!(e["rawQueryString"], "a=1&b=x%20y&a=2&flag");
        assert_eq!(e["cookies"], json!(["a=1", "b=2", "c=3"]));
        assert_eq!(e["headers"]["x-multi"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(
            e["queryStringParameters"],
            json!({"a": "1,2", "b": "x y", "flag": ""})
        );
        let rc = &e["requestContext"];
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["path"], "/orders/42");
        assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
        assert_eq!(rc["http"]["sourceIp"], "203.0.113.7");
        assert_eq!(rc["http"]["userAgent"], "curl/8");
        assert_eq!(rc["domainName"], "api.example.org");
        assert_eq!(rc["domainPrefix"], "api");
        assert_eq!(rc["requestId"], "req-1");
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["timeEpoch"], 1_765_147_403_123i64);
        assert_eq!(rc["time"], "07/Dec/2025:22:43:23 +0000");
        assert_eq!(
            rc["authorizer"],
            json!({"writ": {"principal": "spiffe://example.org/fn/orders",
                            "authenticatedBy": "mtls", "route": "orders"}})
        );
        assert_eq!(e["body"], "{\"n\":1}");
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn a_body_that_is_not_utf8_goes_as_base64_and_none_is_left_out() {
        let h = HeaderMap::new();
        let e = parse(&event(&request(&h, &[0xff, 0, 1], "")));
        assert_eq!(e["body"], "/wAB");
        assert_eq!(e["isBase64Encoded"], true);
        assert!(e.get("queryStringParameters").is_none());
        assert!(e.get("cookies").is_none());
        let e = parse(&event(&request(&h, b"", "")));
        assert!(e.get("body").is_none());
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn a_structured_answer_gives_status_headers_cookies_and_body() {
        let a = answer(
            br#"{"statusCode": 201, "headers": {"content-type": "text/plain", "x-n": 5,
                 "content-length": "999", "transfer-encoding": "chunked"},
                 "multiValueHeaders": {"x-m": ["1", "2"]},
                 "cookies": ["s=1; HttpOnly", "t=2"], "body": "aGVsbG8=", "isBase64Encoded": true}"#,
        )
        .unwrap();
        assert_eq!(a.status, StatusCode::CREATED);
        assert_eq!(a.headers["content-type"], "text/plain");
        assert_eq!(a.headers["x-n"], "5");
        let m: Vec<_> = a.headers.get_all("x-m").iter().collect();
        assert_eq!(m, ["1", "2"]);
        let c: Vec<_> = a.headers.get_all("set-cookie").iter().collect();
        assert_eq!(c, ["s=1; HttpOnly", "t=2"]);
        assert!(a.headers.get("content-length").is_none());
        assert!(a.headers.get("transfer-encoding").is_none());
        assert_eq!(a.body, "hello");
        // No body: empty.
        let a = answer(br#"{"statusCode": "204"}"#).unwrap();
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert!(a.body.is_empty());
    }

    #[test]
    fn a_bare_value_is_a_json_200_as_api_gateway_makes_it() {
        for bare in [
            &br#"{"ok": true}"#[..],
            b"\"text\"",
            b"42",
            b"[1,2]",
            b"null",
        ] {
            let a = answer(bare).unwrap();
            assert_eq!(a.status, StatusCode::OK);
            assert_eq!(a.headers["content-type"], "application/json");
            assert_eq!(a.body, Bytes::copy_from_slice(bare));
        }
    }

    #[test]
    fn malformed_answers_are_named_without_their_content() {
        for (payload, want) in [
            (&b"not json"[..], "not JSON"),
            (br#"{"statusCode": 99}"#, "statusCode 99"),
            (br#"{"statusCode": "x"}"#, "statusCode"),
            (
                br#"{"statusCode": 200, "headers": {"bad name": "v"}}"#,
                "header",
            ),
            (
                br#"{"statusCode": 200, "headers": {"x": "a\nb"}}"#,
                "header",
            ),
            (br#"{"statusCode": 200, "headers": []}"#, "headers"),
            (br#"{"statusCode": 200, "cookies": [1]}"#, "cookies"),
            (
                br#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
                "base64",
            ),
        ] {
            let e = answer(payload).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn invoke_errors_name_lambdas_error_type() {
        let e = invoke_error(
            StatusCode::FORBIDDEN,
            Some("AccessDeniedException:http://internal.amazon.com/"),
            br#"{"Message": "User is not authorized"}"#,
        );
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert_eq!(e.kind, "AccessDeniedException");
        assert_eq!(e.message, "User is not authorized");
        let e = invoke_error(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            br#"{"Type": "User", "__type": "TooManyRequestsException", "message": "Rate exceeded"}"#,
        );
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.kind, "TooManyRequestsException");
        let e = invoke_error(StatusCode::NOT_FOUND, None, b"");
        assert_eq!(e.kind, "HTTP 404");
        assert_eq!(
            function_error_type(
                "Unhandled",
                br#"{"errorType": "ValueError", "errorMessage": "secret"}"#
            ),
            "ValueError"
        );
        assert_eq!(function_error_type("Unhandled", b"oops"), "Unhandled");
    }

    #[test]
    fn the_invoke_target_escapes_arns_and_latest() {
        assert_eq!(
            invoke_target("orders", Some("live")),
            "/2015-03-31/functions/orders/invocations?Qualifier=live"
        );
        assert_eq!(
            invoke_target(
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                Some("$LATEST")
            ),
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af/invocations?Qualifier=%24LATEST"
        );
    }
}
