//! Authentication by AWS SigV4 with writ credentials (`auth = ["aws-iam"]`), as AWS
//! authenticates a function URL whose `AuthType` is `AWS_IAM`.
//!
//! writ's STS gives a function temporary credentials (an access key id, a secret key and a
//! session token) bound to its identity. The gateway holds no secret key: for the scope a
//! request names (access key id, day, region, service) it asks the server for that scope's
//! signing key (`POST /v1/aws/signing-key`, which verifies the session token and that the
//! function is still live), keeps it until the credentials expire, and checks the signature
//! with it. A signing key signs for one day, one region and one service, so holding it
//! gives the gateway no more than it needs. The caller is the function the credentials
//! belong to, authorized by intentions like an mTLS or JWT caller.

use std::sync::PoisonError;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::http::request::Parts;
use writ_api::aws::SigningKeyRequest;
use writ_api::endpoints::DeriveAwsSigningKey;
use writ_client::api::ApiCallError;
use writ_identity::SpiffeId;
use writ_sigv4::{Payload, SignableRequest, VerifySettings};

use super::refusal::Refusal;
use super::{Gateway, now_unix};
use crate::config::AwsIam;
use crate::metrics::Label;

/// How long a refusal by the server is remembered for the same credentials and scope, so
/// that a client retrying refused credentials does not send every retry on to the server.
const REFUSAL_MEMORY_SECS: i64 = 30;
/// The most signing keys (and remembered refusals) kept; past it, expired ones go first.
const MAX_KEYS: usize = 100_000;

/// A scope's signing key as the server gave it, or the server's refusal.
#[derive(Clone)]
pub(super) enum KeyHit {
    /// The signing key of one scope, for the function the credentials belong to.
    Key {
        signing_key: [u8; 32],
        function: SpiffeId,
        /// When the credentials expire, Unix seconds.
        expires: i64,
        /// When the server vouched for them, Unix seconds: a revocation after this makes
        /// the gateway ask again.
        fetched: i64,
        /// The serial of the X.509-SVID they were issued for (as revocations compare it):
        /// they fall with it.
        serial: Option<String>,
    },
    /// The server refused the credentials (until `until`, Unix seconds): why.
    Refused { reason: String, until: i64 },
}

/// Whether a request carries a SigV4 signature, in its `Authorization` header or its query
/// string: only then is its body read before authentication, for the payload hash.
pub(super) fn is_signed(parts: &Parts) -> bool {
    parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|v| is_sigv4_authorization(v.as_bytes()))
        || parts.uri.query().is_some_and(is_presigned)
}

/// Whether a query string carries a presigned signature (`X-Amz-Signature=`).
fn is_presigned(query: &str) -> bool {
    const NAME: &str = "X-Amz-Signature=";
    query
        .split('&')
        .any(|p| p.len() >= NAME.len() && p[..NAME.len()].eq_ignore_ascii_case(NAME))
}

/// Whether an `Authorization` value is a SigV4 signature (`AWS4-HMAC-SHA256 ...`).
pub(super) fn is_sigv4_authorization(value: &[u8]) -> bool {
    value.starts_with(b"AWS4-")
}

/// The cache key of a scope: the access key id, session token, day, region and service.
fn scope_key(parts: [&str; 5]) -> [u8; 32] {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        digest.update(p.as_bytes());
        digest.update(b"\0");
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    key
}

impl Gateway {
    /// The function whose writ credentials signed this request, or why it is refused.
    pub(super) async fn check_aws_iam(
        &self,
        rule: &AwsIam,
        parts: &Parts,
        body: Option<&Bytes>,
        control: &crate::control::Control,
    ) -> Result<SpiffeId, Refusal> {
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(parts.headers.len() + 1);
        for (name, value) in &parts.headers {
            let value = value.to_str().map_err(|_| {
                Refusal::unauthenticated(format!(
                    "SigV4: the {name} header is not visible ASCII, which a signature cannot cover here"
                ))
            })?;
            headers.push((name.as_str(), value));
        }
        if !parts.headers.contains_key(hyper::header::HOST)
            && let Some(authority) = parts.uri.authority()
        {
            headers.push(("host", authority.as_str()));
        }
        let query = parts.uri.query().unwrap_or("");
        if is_presigned(query) {
            return Err(Refusal::unauthenticated(
                "SigV4: presigned URLs are not taken by the gateway; sign in the Authorization header",
            ));
        }
        let request = SignableRequest::new(
            parts.method.as_str(),
            parts.uri.path(),
            query,
            &headers,
            Payload::Bytes(body.map_or(&[][..], |b| &b[..])),
        );
        let now = time::OffsetDateTime::now_utc();
        // The body is forwarded, so the signature must cover it: no UNSIGNED-PAYLOAD.
        let settings = VerifySettings {
            allow_unsigned_payload: false,
            ..VerifySettings::default()
        };
        let prepared = writ_sigv4::prepare(&request, now, &settings)
            .map_err(|e| Refusal::unauthenticated(format!("SigV4: {e}")))?;
        if prepared.access_key_id().is_empty() {
            return Err(Refusal::unauthenticated("SigV4: no access key id"));
        }
        if prepared.service() != rule.service {
            return Err(Refusal::unauthenticated(format!(
                "SigV4: the credential scope names service {:?}; this route takes {:?}",
                prepared.service(),
                rule.service
            )));
        }
        if let Some(region) = &rule.region
            && prepared.region() != region
        {
            return Err(Refusal::unauthenticated(format!(
                "SigV4: the credential scope names region {:?}; this route takes {region:?}",
                prepared.region()
            )));
        }
        let Some(token) = prepared.session_token() else {
            return Err(Refusal::unauthenticated(
                "SigV4: no X-Amz-Security-Token: writ credentials are temporary and are valid only with their session token",
            ));
        };
        let (signing_key, function) = self
            .aws_signing_key(
                [
                    prepared.access_key_id(),
                    token,
                    prepared.date(),
                    prepared.region(),
                    prepared.service(),
                ],
                control,
            )
            .await?;
        prepared
            .finish(&signing_key)
            .map_err(|e| Refusal::unauthenticated(format!("SigV4: {e}")))?;
        Ok(function)
    }

    /// The signing key of `scope` (access key id, session token, day, region, service) and
    /// the function it belongs to: cached while the credentials are live and the function
    /// has not been revoked since the server vouched for them, else asked of the server.
    async fn aws_signing_key(
        &self,
        scope: [&str; 5],
        control: &crate::control::Control,
    ) -> Result<([u8; 32], SpiffeId), Refusal> {
        let key = scope_key(scope);
        let now = now_unix();
        let cached = self
            .aws_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        match cached {
            Some(KeyHit::Key {
                signing_key,
                function,
                expires,
                fetched,
                serial,
            }) if now < expires
                && control
                    .revoked_functions
                    .get(function.as_str())
                    .is_none_or(|at| *at < fetched)
                && serial
                    .as_ref()
                    .is_none_or(|s| !control.revoked_serials.contains(s)) =>
            {
                return Ok((signing_key, function));
            }
            Some(KeyHit::Refused { reason, until }) if now < until => {
                return Err(Refusal::unauthenticated(reason));
            }
            _ => {}
        }
        let [access_key_id, session_token, date, region, service] = scope;
        let asked = self
            .server
            .api()
            .send::<DeriveAwsSigningKey>(&SigningKeyRequest {
                access_key_id: access_key_id.to_owned(),
                session_token: session_token.to_owned(),
                date: date.to_owned(),
                region: region.to_owned(),
                service: service.to_owned(),
            })
            .await;
        let hit = match asked {
            Ok(answer) => {
                let function = SpiffeId::parse(&answer.spiffe_id)
                    .ok()
                    .filter(|id| {
                        id.trust_domain() == self.trust_domain.as_str() && id.path().starts_with("/fn/")
                    })
                    .ok_or_else(|| {
                        Refusal::unauthenticated(
                            "SigV4: the server named no function of this trust domain for the credentials",
                        )
                    })?;
                let signing_key = decode_key(&answer.signing_key).ok_or_else(|| {
                    Refusal::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        Label::Unavailable,
                        "the server's answer for the credentials was unreadable",
                    )
                })?;
                let expires = time::OffsetDateTime::parse(
                    &answer.expiration,
                    &time::format_description::well_known::Rfc3339,
                )
                .map(|t| t.unix_timestamp())
                .unwrap_or(now);
                KeyHit::Key {
                    signing_key,
                    function,
                    expires,
                    fetched: now,
                    serial: answer
                        .x509_svid_serial
                        .as_deref()
                        .map(crate::control::serial_key),
                }
            }
            Err(ApiCallError::Refused { message, .. }) => KeyHit::Refused {
                reason: format!("SigV4: writ refused the credentials: {message}"),
                until: now + REFUSAL_MEMORY_SECS,
            },
            Err(e) => {
                return Err(Refusal::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    Label::Unavailable,
                    "the server could not be asked about the credentials",
                )
                .with_reason(format!("signing key: {e}")));
            }
        };
        {
            let mut keys = self.aws_keys.lock().unwrap_or_else(PoisonError::into_inner);
            if keys.len() >= MAX_KEYS {
                keys.retain(|_, hit| match hit {
                    KeyHit::Key { expires, .. } => *expires > now,
                    KeyHit::Refused { until, .. } => *until > now,
                });
                if keys.len() >= MAX_KEYS {
                    keys.clear();
                }
            }
            keys.insert(key, hit.clone());
        }
        match hit {
            KeyHit::Key {
                signing_key,
                function,
                ..
            } => Ok((signing_key, function)),
            KeyHit::Refused { reason, .. } => Err(Refusal::unauthenticated(reason)),
        }
    }
}

/// 64 hex digits as 32 bytes.
fn decode_key(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_requests_are_recognised_by_header_or_query() {
        let parts = |auth: Option<&str>, uri: &str| {
            let mut b = hyper::Request::builder().uri(uri);
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert!(is_signed(&parts(
            Some(
                "AWS4-HMAC-SHA256 Credential=A/20250101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=00"
            ),
            "/x"
        )));
        assert!(is_signed(&parts(None, "/x?a=1&X-Amz-Signature=ab")));
        assert!(!is_signed(&parts(Some("Bearer abc"), "/x?a=1")));
        assert!(!is_signed(&parts(None, "/x")));
    }

    #[test]
    fn scope_keys_differ_in_every_part_and_keys_decode_strictly() {
        let base = ["AK", "tok", "20250101", "us-east-1", "lambda"];
        let k = scope_key(base);
        for i in 0..5 {
            let mut other = base;
            other[i] = "z";
            assert_ne!(scope_key(other), k);
        }
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            scope_key(["ab", "c", "d", "e", "f"]),
            scope_key(["a", "bc", "d", "e", "f"])
        );
        assert_eq!(decode_key(&"0f".repeat(32)), Some([0x0f; 32]));
        assert_eq!(decode_key(&"0f".repeat(31)), None);
        assert_eq!(decode_key(&"zz".repeat(32)), None);
    }
}
