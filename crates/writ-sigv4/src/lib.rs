//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) without I/O: the canonical request exactly as
//! AWS defines it, signing in the `Authorization` header or a presigned query string, and strict
//! verification of both forms.
//!
//! Requests are plain views ([`SignableRequest`]): the method, the path and the query as sent,
//! the headers as `(name, value)` pairs and the payload. Nothing here reads a clock, a file or
//! the network: the caller passes `now`, and the secret key comes from the caller's lookup by
//! access key id.
//!
//! ```
//! use writ_sigv4::*;
//! let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
//! let now = time::OffsetDateTime::from_unix_timestamp(1_440_938_160).unwrap();
//! let headers = [("host", "example.amazonaws.com")];
//! let request = SignableRequest::new("GET", "/", "", &headers, Payload::Bytes(b""));
//! let signed = sign_headers(&request, &SigningParams::new(&creds, "us-east-1", "service", now))?;
//!
//! // The server side: the request as it arrives, with the headers the signer added.
//! let mut arrived = headers.to_vec();
//! arrived.extend(signed.headers.iter().map(|(n, v)| (*n, v.as_str())));
//! let request = SignableRequest::new("GET", "/", "", &arrived, Payload::Bytes(b""));
//! let cache = SigningKeyCache::default();
//! let verified = verify(&request, now, &VerifySettings::default(), &cache, |akid| {
//!     (akid == "AKIDEXAMPLE").then_some("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
//! })?;
//! assert_eq!(verified.access_key_id, "AKIDEXAMPLE");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod canonical;
mod datetime;
mod encode;
mod key;
mod sign;
mod verify;

use std::fmt;

pub use canonical::UriEncoding;
pub use key::{SigningKeyCache, signing_key};
pub use sign::{HeaderSignature, Presigned, SignError, SigningParams, presign, sign_headers};
pub use verify::{SignatureForm, Verified, VerifyError, VerifySettings, verify};

/// The algorithm name SigV4 puts in the `Authorization` header and `X-Amz-Algorithm`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The payload hash that says the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The longest a presigned URL may be valid: seven days, as AWS allows.
pub const MAX_PRESIGNED_EXPIRY: time::Duration = time::Duration::days(7);

/// AWS credentials: an access key id, its secret key and, for temporary credentials, a
/// session token. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct Credentials {
    /// The access key id, sent in the credential scope.
    pub access_key_id: String,
    /// The secret access key, never sent.
    pub secret_access_key: String,
    /// The session token of temporary credentials, sent as `X-Amz-Security-Token`.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials, without a session token.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// These credentials with a session token (temporary credentials).
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The payload (body) of a request, or what stands for it in the canonical request. `Debug`
/// shows a body's length, not its bytes (a body may carry a secret).
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    /// The body's bytes; its SHA-256 is computed.
    Bytes(&'a [u8]),
    /// The body's SHA-256, as 64 lower-case hex digits, computed by the caller (e.g. while
    /// streaming the body).
    Sha256Hex(&'a str),
    /// The body is not signed: the canonical request says `UNSIGNED-PAYLOAD`. When signing,
    /// an `x-amz-content-sha256: UNSIGNED-PAYLOAD` header is added unless the request has
    /// one. When verifying, it stands for a body the caller cannot hash; only requests signed
    /// with `UNSIGNED-PAYLOAD` then verify.
    Unsigned,
}

impl fmt::Debug for Payload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Payload::Sha256Hex(h) => f.debug_tuple("Sha256Hex").field(h).finish(),
            Payload::Unsigned => f.write_str("Unsigned"),
        }
    }
}

/// A request to sign or verify, as seen on the wire. `Debug` shows header names, not values
/// (they carry signatures and session tokens).
#[derive(Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The method, e.g. `GET`, used as given.
    pub method: &'a str,
    /// The path as sent, percent-encoded, without the query (`/a%20b`).
    pub path: &'a str,
    /// The query string as sent, without `?` (`a=1&b=x%20y`), or empty.
    pub query: &'a str,
    /// Every header as a `(name, value)` pair, in the order received; a header given several
    /// times appears several times. Names are compared without regard to case. HTTP/2's
    /// `:authority` should be given as `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: Payload<'a>,
}

impl fmt::Debug for SignableRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("SignableRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.len())
            .field("headers", &names)
            .field("payload", &self.payload)
            .finish()
    }
}

impl<'a> SignableRequest<'a> {
    /// A request view from its parts.
    pub fn new(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a [(&'a str, &'a str)],
        payload: Payload<'a>,
    ) -> Self {
        SignableRequest {
            method,
            path,
            query,
            headers,
            payload,
        }
    }
}
