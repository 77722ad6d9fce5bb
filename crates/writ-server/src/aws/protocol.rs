//! AWS's wire protocols, as far as writ speaks them: requests in the Query protocol (STS:
//! a form body with `Action` and `Version`) and in JSON 1.1 (Secrets Manager and SSM:
//! `X-Amz-Target` and a JSON body), answers in XML (Query) and JSON, and AWS's error shapes
//! for both. Nothing here does I/O; the decoders are fuzzed (`fuzz/fuzz_targets/aws_request.rs`).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::api::ApiError;

/// The content type of a JSON 1.1 request and answer.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// The largest body the AWS endpoint reads: a 64 KiB secret in base64, with room around it.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Which protocol a request speaks, and so how its errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The Query protocol (STS): XML answers.
    Query,
    /// JSON 1.1 (Secrets Manager, SSM): JSON answers.
    Json,
}

/// An error in AWS's shape: a code clients match on (`ResourceNotFoundException`), a
/// message for people, an HTTP status. Messages never carry a secret, a token or a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error code (`__type` in JSON, `Code` in XML).
    pub code: &'static str,
    /// What went wrong and where.
    pub message: String,
}

impl AwsError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`: the request is wrong.
    pub fn client(code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A refused authentication (403): the same code for every cause but a missing
    /// signature and a bad one, as AWS; the cause goes to the audit log.
    pub fn unauthenticated(code: &'static str) -> AwsError {
        let message = match code {
            "MissingAuthenticationTokenException" | "MissingAuthenticationToken" => {
                "the request is not signed: sign it with SigV4 and writ credentials \
                 (AssumeRoleWithWebIdentity)"
            }
            "InvalidSignatureException" | "SignatureDoesNotMatch" => {
                "the request signature we calculated does not match the signature you provided"
            }
            "ExpiredTokenException" | "ExpiredToken" => {
                "the security token included in the request is expired"
            }
            _ => "the security token included in the request is invalid",
        };
        AwsError::new(StatusCode::FORBIDDEN, code, message)
    }

    /// The answer in `protocol`'s shape.
    pub fn into_response_for(self, protocol: Protocol, request_id: &str) -> Response {
        match protocol {
            Protocol::Json => {
                let body = serde_json::json!({"__type": self.code, "message": self.message});
                let mut response = (self.status, body.to_string()).into_response();
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
                if let Ok(v) = HeaderValue::from_str(self.code) {
                    headers.insert("x-amzn-errortype", v);
                }
                if let Ok(v) = HeaderValue::from_str(request_id) {
                    headers.insert("x-amzn-requestid", v);
                }
                response
            }
            Protocol::Query => {
                let kind = if self.status.is_server_error() {
                    "Receiver"
                } else {
                    "Sender"
                };
                let body = format!(
                    "<ErrorResponse xmlns=\"{STS_NAMESPACE}\"><Error><Type>{kind}</Type>\
                     <Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId>\
                     </ErrorResponse>",
                    xml_escape(self.code),
                    xml_escape(&self.message),
                    xml_escape(request_id)
                );
                xml_response(self.status, body, request_id)
            }
        }
    }
}

/// STS's XML namespace.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An XML answer.
pub fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// A JSON 1.1 answer.
pub fn json_response(body: &serde_json::Value, request_id: &str) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_1_1));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    response
}

/// Escapes text for an XML element's content or an attribute value.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all; no value writ writes has them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Decodes a Query-protocol form body (`application/x-www-form-urlencoded`): each
/// parameter at most once (two readers may take different ones of a parameter given
/// twice), each name and value valid UTF-8.
pub fn decode_form(body: &[u8]) -> Result<BTreeMap<String, String>, AwsError> {
    let mut params = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if name.is_empty() {
            continue;
        }
        if name.contains('\u{fffd}') || value.contains('\u{fffd}') {
            return Err(AwsError::client(
                "MalformedQueryString",
                format!("parameter {name:?}: the body must be UTF-8 once percent-decoded"),
            ));
        }
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(AwsError::client(
                "MalformedQueryString",
                format!("parameter {name}: given more than once"),
            ));
        }
    }
    Ok(params)
}

/// Whether the content type is a form (`application/x-www-form-urlencoded`).
pub fn is_form(headers: &HeaderMap) -> bool {
    essence(headers).as_deref() == Some("application/x-www-form-urlencoded")
}

/// Whether the content type is JSON 1.1 (or 1.0, which botocore sends for some services).
pub fn is_json_1(headers: &HeaderMap) -> bool {
    matches!(
        essence(headers).as_deref(),
        Some("application/x-amz-json-1.1" | "application/x-amz-json-1.0")
    )
}

fn essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// The service and operation of a JSON 1.1 request's `X-Amz-Target`
/// (`secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`).
pub fn target(headers: &HeaderMap) -> Result<(&str, &str), AwsError> {
    let mut values = headers.get_all("x-amz-target").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(AwsError::client(
            "InvalidRequestException",
            "X-Amz-Target header: give exactly one, e.g. secretsmanager.GetSecretValue",
        ));
    };
    let value = value.to_str().map_err(|_| {
        AwsError::client(
            "InvalidRequestException",
            "X-Amz-Target header: not visible ASCII",
        )
    })?;
    value.split_once('.').ok_or_else(|| {
        AwsError::client(
            "InvalidRequestException",
            format!("X-Amz-Target header {value:?}: expected SERVICE.Operation"),
        )
    })
}

/// Decodes a JSON 1.1 body into `T`: no key given twice (readers disagree on which
/// counts), no field `T` does not take (a parameter writ does not support is refused by
/// name, not ignored), and errors that name the field. An empty body is `{}`.
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let text = std::str::from_utf8(body)
        .map_err(|_| AwsError::client("SerializationException", "the body is not UTF-8 JSON"))?;
    writ_audit::json::no_duplicate_keys(text)
        .map_err(|e| AwsError::client("SerializationException", format!("body: {e}")))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_error(&mut de)?;
    de.end()
        .map_err(|e| AwsError::client("SerializationException", format!("body: {e}")))?;
    Ok(value)
}

fn serde_path_error<T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
) -> Result<T, AwsError> {
    T::deserialize(de).map_err(|e| {
        let text = e.to_string();
        let code = if text.starts_with("unknown field") {
            "InvalidParameterException"
        } else {
            "SerializationException"
        };
        let hint = if code == "InvalidParameterException" {
            ": writ does not support that parameter (see docs/aws.md)"
        } else {
            ""
        };
        AwsError::client(code, format!("body: {text}{hint}"))
    })
}

/// The AWS error for a refusal of writ's secrets domain, in the service's vocabulary.
/// `aws_action` and the domain's message (which names writ's action and resource) make
/// up an `AccessDeniedException`'s message.
pub fn from_api_error(e: impl Into<ApiError>, aws_action: &str, ssm: bool) -> AwsError {
    let e: ApiError = e.into();
    let message = e.message().to_string();
    let (status, code) = match (e.status().as_u16(), e.code()) {
        (400, _) if ssm => (StatusCode::BAD_REQUEST, "ValidationException"),
        (400, _) => (StatusCode::BAD_REQUEST, "InvalidParameterException"),
        (401, _) => (StatusCode::FORBIDDEN, "UnrecognizedClientException"),
        (403, _) => {
            return AwsError::client(
                "AccessDeniedException",
                format!("{aws_action} is decided as writ's {message}"),
            );
        }
        (404, _) if ssm => (StatusCode::BAD_REQUEST, "ParameterNotFound"),
        (404, _) => (StatusCode::BAD_REQUEST, "ResourceNotFoundException"),
        (409, "rotationInProgress") => (StatusCode::BAD_REQUEST, "InvalidRequestException"),
        (409, _) if ssm => (StatusCode::BAD_REQUEST, "ParameterAlreadyExists"),
        (409, _) => (StatusCode::BAD_REQUEST, "ResourceExistsException"),
        (413, _) if ssm => (StatusCode::BAD_REQUEST, "ValidationException"),
        (413, _) => (StatusCode::BAD_REQUEST, "InvalidParameterException"),
        (429, _) => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        (502, _) => (StatusCode::BAD_REQUEST, "InvalidRequestException"),
        (_, _) if ssm => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        (_, _) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServiceError"),
    };
    AwsError::new(status, code, message)
}

/// A new request id, in the shape of AWS's (a UUID), for answers and the audit log.
pub fn request_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The id correlates log lines; if the system random source fails, an all-zero id
    // still answers the request.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_refuse_a_parameter_given_twice() {
        let ok =
            decode_form(b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&X=a%2Bb+c").unwrap();
        assert_eq!(ok["Action"], "AssumeRoleWithWebIdentity");
        assert_eq!(ok["X"], "a+b c");
        let twice = decode_form(b"Action=A&Action=B").unwrap_err();
        assert!(twice.message.contains("Action"), "{twice:?}");
        assert!(decode_form(b"A=%ff").is_err());
    }

    #[test]
    fn json_bodies_name_unknown_fields_and_refuse_duplicates() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct R {
            #[serde(rename = "SecretId")]
            secret_id: String,
        }
        assert!(decode_json::<R>(br#"{"SecretId":"a"}"#).is_ok());
        let e = decode_json::<R>(br#"{"SecretId":"a","KmsKeyId":"k"}"#).unwrap_err();
        assert_eq!(e.code, "InvalidParameterException");
        assert!(e.message.contains("KmsKeyId"), "{e:?}");
        let e = decode_json::<R>(br#"{"SecretId":"a","SecretId":"b"}"#).unwrap_err();
        assert_eq!(e.code, "SerializationException");
        assert!(decode_json::<R>(b"").is_err(), "SecretId is required");
    }

    #[test]
    fn xml_is_escaped() {
        assert_eq!(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(request_id().len(), 36);
    }
}
