//! The error shape every route answers with: `{"error": {"code": "...", "message": "..."}}`,
//! with an HTTP status that says whose fault it was.
//!
//! | status | code | meaning |
//! |---|---|---|
//! | 400 | `invalidRequest` | the request is wrong; the message names the field, parameter or header |
//! | 401 | `unauthenticated` | authentication failed; the same answer whatever the cause (the cause goes to the audit log) |
//! | 403 | `accessDenied` | authenticated, but policy does not allow it; the message names the action and resource |
//! | 404 | `notFound` | no such function, secret, intention or route |
//! | 405 | `methodNotAllowed` | the route exists, but not with this method |
//! | 409 | `conflict`, `functionRevoked`, `rotationInProgress` | it already exists, or its state forbids it |
//! | 413 | `bodyTooLarge` | the body is over the route's limit (64 KiB unless the route says otherwise) |
//! | 415 | `unsupportedMediaType` | the body was not sent as `application/json` |
//! | 429 | `tooManyFailures` | this address failed to authenticate too often; see below |
//! | 500 | `internal` | the server failed; its log has the details |
//! | 502 | `rotationFailed` | a secret's rotation hook failed; `AWSCURRENT` is unchanged |
//! | 503 | `unavailable` | the store is unreachable or not initialised |
//!
//! **`Retry-After`.** A 429 carries a `Retry-After` header with the whole number of
//! seconds after which the source's attempts are heard again (at least 1); the message
//! says the same in words. Until then every attempt from that address is refused unheard,
//! whatever credential it carries: a client should wait that long rather than retry.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// The name of the header a 429 carries: the seconds to wait before trying again.
pub const RETRY_AFTER: &str = "retry-after";

/// An error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong: a stable code for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// What, where and how to fix it, for people. Never a secret or a token.
    pub message: String,
}

impl ErrorBody {
    /// An error answer with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

/// The stable code of an error answer. Codes this version does not know are kept as
/// [`ErrorCode::Other`], so a newer server's answers still decode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 400: the request is wrong; the message says where.
    InvalidRequest,
    /// 401: authentication failed, whatever the cause.
    Unauthenticated,
    /// 403: authenticated, but policy does not allow it.
    AccessDenied,
    /// 404: no such thing, or no such route.
    NotFound,
    /// 405: the route does not take this method.
    MethodNotAllowed,
    /// 409: it already exists.
    Conflict,
    /// 409: the function is revoked, so what was asked for could not be used.
    FunctionRevoked,
    /// 409: a rotation of the secret is already running.
    RotationInProgress,
    /// 413: the body is over the route's limit.
    BodyTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 429: too many failed authentications from this address; see `Retry-After`.
    TooManyFailures,
    /// 500: the server failed.
    Internal,
    /// 502: the secret's rotation hook failed.
    RotationFailed,
    /// 503: the store is unreachable or not initialised.
    Unavailable,
    /// A code this version does not know.
    Other(String),
}

/// Every code this version knows, with its name on the wire.
const CODES: [(ErrorCode, &str); 14] = [
    (ErrorCode::InvalidRequest, "invalidRequest"),
    (ErrorCode::Unauthenticated, "unauthenticated"),
    (ErrorCode::AccessDenied, "accessDenied"),
    (ErrorCode::NotFound, "notFound"),
    (ErrorCode::MethodNotAllowed, "methodNotAllowed"),
    (ErrorCode::Conflict, "conflict"),
    (ErrorCode::FunctionRevoked, "functionRevoked"),
    (ErrorCode::RotationInProgress, "rotationInProgress"),
    (ErrorCode::BodyTooLarge, "bodyTooLarge"),
    (ErrorCode::UnsupportedMediaType, "unsupportedMediaType"),
    (ErrorCode::TooManyFailures, "tooManyFailures"),
    (ErrorCode::Internal, "internal"),
    (ErrorCode::RotationFailed, "rotationFailed"),
    (ErrorCode::Unavailable, "unavailable"),
];

impl ErrorCode {
    /// The code as it is on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Other(code) => code,
            known => CODES
                .iter()
                .find(|(c, _)| c == known)
                .map_or("", |(_, name)| name),
        }
    }

    /// The code named `name` on the wire.
    pub fn from_name(name: &str) -> ErrorCode {
        CODES
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| ErrorCode::Other(name.to_string()), |(c, _)| c.clone())
    }

    /// The HTTP status the server answers this code with; `None` for [`ErrorCode::Other`].
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::AccessDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict | ErrorCode::FunctionRevoked | ErrorCode::RotationInProgress => 409,
            ErrorCode::BodyTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::TooManyFailures => 429,
            ErrorCode::Internal => 500,
            ErrorCode::RotationFailed => 502,
            ErrorCode::Unavailable => 503,
            ErrorCode::Other(_) => return None,
        })
    }

    /// The names of every code this version knows.
    pub fn known() -> impl Iterator<Item = &'static str> {
        CODES.iter().map(|(_, name)| *name)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ErrorCode, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(ErrorCode::from_name(&name))
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A stable code. These are the codes of this version; a client keeps working \
                 when a newer server sends another.",
            ))
            .examples(ErrorCode::known().map(serde_json::Value::from))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ErrorCode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_name_and_unknown_ones_are_kept() {
        for name in ErrorCode::known() {
            let code = ErrorCode::from_name(name);
            assert_ne!(code, ErrorCode::Other(name.into()), "{name}");
            assert_eq!(code.as_str(), name);
            assert!(code.status().is_some());
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brandNew","message":"m"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Other("brandNew".into()));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"brandNew","message":"m"}}"#
        );
    }
}
