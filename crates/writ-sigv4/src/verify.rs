//! Verification of both signature forms, strict about every field it reads.

use std::borrow::Cow;

use ring::{digest, hmac};
use time::{Duration, OffsetDateTime};

use crate::canonical::{UriEncoding, canonical_query, canonical_request_head};
use crate::datetime::{format_amz_date, parse_amz_date, parse_http_date};
use crate::encode::{decode_hex32, hex, query_decode};
use crate::sign::{scope, string_to_sign, valid_scope_part};
use crate::{
    ALGORITHM, MAX_PRESIGNED_EXPIRY, Payload, SignableRequest, SigningKeyCache, UNSIGNED_PAYLOAD,
};

/// The most headers a request may sign; more is refused before any work is done.
pub(crate) const MAX_SIGNED_HEADERS: usize = 64;

/// What [`verify`] accepts besides a correct signature.
#[derive(Clone, Copy, Debug)]
pub struct VerifySettings {
    /// How far the request's time may be from `now`, either way (presigned URLs: how far in
    /// the future). AWS allows 5 minutes, the default.
    pub max_clock_skew: Duration,
    /// The path rule of the service being called: [`UriEncoding::S3`] for an S3-compatible
    /// API, else the default.
    pub uri_encoding: UriEncoding,
    /// Whether a request may leave its body unsigned (`UNSIGNED-PAYLOAD`, as S3 clients and
    /// presigned URLs do). Default true, as AWS; [`Verified::payload_signed`] says whether
    /// the body was covered.
    pub allow_unsigned_payload: bool,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            max_clock_skew: Duration::minutes(5),
            uri_encoding: UriEncoding::Double,
            allow_unsigned_payload: true,
        }
    }
}

/// Where a verified signature was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    /// In the `Authorization` header.
    Header,
    /// In the query string (a presigned URL).
    Presigned {
        /// `X-Amz-Expires`: how long after its `X-Amz-Date` the URL is valid.
        expires: Duration,
    },
}

/// What a verified signature proves: who signed, for which scope, when, and over what.
/// `Debug` does not show the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key id of the credential scope.
    pub access_key_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope. The caller checks it names the service it is.
    pub service: String,
    /// The signing time (`X-Amz-Date`, or the `Date` header).
    pub date: OffsetDateTime,
    /// The signed header names, lower-case and sorted.
    pub signed_headers: Vec<String>,
    /// The session token (`X-Amz-Security-Token` header or query parameter), for the caller
    /// to check against the access key id: temporary credentials are valid only with theirs.
    pub session_token: Option<String>,
    /// Header or presigned.
    pub form: SignatureForm,
    /// Whether the signature covers the body passed to [`verify`] (false for
    /// `UNSIGNED-PAYLOAD`, and when the caller passed [`Payload::Unsigned`]).
    pub payload_signed: bool,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("date", &self.date)
            .field("signed_headers", &self.signed_headers)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("form", &self.form)
            .field("payload_signed", &self.payload_signed)
            .finish()
    }
}

/// Why a request's signature was refused. Messages say what and where (header, query
/// parameter, field), never a secret or a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error(
        "the request is not signed: it has no Authorization header and no X-Amz-Algorithm, X-Amz-Credential or X-Amz-Signature query parameter"
    )]
    MissingSignature,
    /// Signed both in the `Authorization` header and in the query string.
    #[error(
        "the request has both an Authorization header and X-Amz-* signature query parameters; sign in one place only"
    )]
    BothForms,
    /// A header or query parameter that must appear at most once appears more often.
    #[error("the {what} is given more than once")]
    Duplicate {
        /// The header or parameter, e.g. `X-Amz-Date header`.
        what: &'static str,
    },
    /// The algorithm is not `AWS4-HMAC-SHA256`.
    #[error(
        "the {location} names an algorithm other than AWS4-HMAC-SHA256, the only one supported"
    )]
    UnsupportedAlgorithm {
        /// `Authorization header` or `X-Amz-Algorithm query parameter`.
        location: &'static str,
    },
    /// The `Authorization` header does not have the form SigV4 defines.
    #[error(
        "the Authorization header is malformed: {reason}; expected `AWS4-HMAC-SHA256 Credential=<access key id>/<YYYYMMDD>/<region>/<service>/aws4_request, SignedHeaders=<names;...>, Signature=<64 hex digits>`"
    )]
    MalformedAuthorization {
        /// What is wrong.
        reason: &'static str,
    },
    /// The credential scope is malformed.
    #[error(
        "the Credential in the {location} is malformed: {reason}; expected <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request"
    )]
    MalformedCredential {
        /// `Authorization header` or `X-Amz-Credential query parameter`.
        location: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signed headers list is malformed.
    #[error(
        "the SignedHeaders in the {location} is malformed: {reason}; expected lower-case header names, sorted, separated by ';'"
    )]
    MalformedSignedHeaders {
        /// `Authorization header` or `X-Amz-SignedHeaders query parameter`.
        location: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The signature is not 64 lower-case hex digits.
    #[error("the Signature in the {location} must be 64 lower-case hex digits")]
    MalformedSignature {
        /// `Authorization header` or `X-Amz-Signature query parameter`.
        location: &'static str,
    },
    /// A presigned URL lacks a required parameter.
    #[error("the presigned query string has no {name} parameter")]
    MissingParameter {
        /// The parameter.
        name: &'static str,
    },
    /// Neither `X-Amz-Date` nor `Date` header.
    #[error(
        "the request has neither an X-Amz-Date nor a Date header; SigV4 needs the signing time"
    )]
    MissingDate,
    /// The signing time is malformed.
    #[error("the {location} is malformed: expected {expected}")]
    MalformedDate {
        /// `X-Amz-Date header`, `Date header` or `X-Amz-Date query parameter`.
        location: &'static str,
        /// The form expected.
        expected: &'static str,
    },
    /// The credential scope's date is not the signing time's date.
    #[error(
        "the credential scope's date {scope_date} is not the date of the {location} ({request_date}); they must be the same day"
    )]
    ScopeDateMismatch {
        /// Where the signing time was read.
        location: &'static str,
        /// The scope's date, `YYYYMMDD`.
        scope_date: String,
        /// The signing time's date, `YYYYMMDD`.
        request_date: String,
    },
    /// The signing time is too far from `now`.
    #[error(
        "the {location} is {} s {} the server's clock; at most {max_seconds} s either way is allowed: sign with the current time",
        .skew_seconds.unsigned_abs(),
        if *.skew_seconds < 0 { "behind" } else { "ahead of" }
    )]
    ClockSkew {
        /// Where the signing time was read.
        location: &'static str,
        /// The signing time minus now, in seconds (negative: in the past).
        skew_seconds: i64,
        /// The window, in seconds.
        max_seconds: i64,
    },
    /// A presigned URL's lifetime has passed.
    #[error("the presigned URL expired {seconds_ago} s ago (X-Amz-Date plus X-Amz-Expires)")]
    Expired {
        /// How long ago it expired.
        seconds_ago: i64,
    },
    /// `X-Amz-Expires` is not a whole number of seconds from 1 to 604800.
    #[error(
        "the X-Amz-Expires query parameter must be a whole number of seconds from 1 to 604800 (7 days)"
    )]
    InvalidExpires,
    /// `host` is not among the signed headers.
    #[error("the {location} does not sign the host header; SigV4 requires host to be signed")]
    HostNotSigned {
        /// `Authorization header` or `X-Amz-SignedHeaders query parameter`.
        location: &'static str,
    },
    /// A header named as signed is not in the request.
    #[error("the header {name} is listed as signed but the request does not have it")]
    SignedHeaderMissing {
        /// The header's name (lower-case; checked to be a header name).
        name: String,
    },
    /// The access key id is not known to the caller's lookup.
    #[error("the access key id in the {location} is not known")]
    UnknownAccessKey {
        /// `Authorization header` or `X-Amz-Credential query parameter`.
        location: &'static str,
    },
    /// `x-amz-content-sha256` is neither a SHA-256 in hex nor `UNSIGNED-PAYLOAD`.
    #[error(
        "the x-amz-content-sha256 header must be 64 lower-case hex digits or UNSIGNED-PAYLOAD (streaming payloads are not supported)"
    )]
    MalformedContentSha256,
    /// `x-amz-content-sha256` is not the SHA-256 of the body.
    #[error(
        "the x-amz-content-sha256 header is not the SHA-256 of the request body: the body was changed"
    )]
    ContentSha256Mismatch,
    /// The body is not signed and the settings require it to be.
    #[error(
        "the request does not sign its body (UNSIGNED-PAYLOAD), and this endpoint requires a signed body"
    )]
    UnsignedPayloadRefused,
    /// The signature does not match: wrong secret, or the request differs from what was signed.
    #[error(
        "the signature in the {location} does not match the request: the secret key, the credential scope, or the method, path, query, signed headers or body differ from what was signed"
    )]
    SignatureMismatch {
        /// `Authorization header` or `X-Amz-Signature query parameter`.
        location: &'static str,
    },
}

const AUTHZ: &str = "Authorization header";

/// The pieces of a credential scope.
struct Scope<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential<'a>(value: &'a str, location: &'static str) -> Result<Scope<'a>, VerifyError> {
    let bad = |reason| VerifyError::MalformedCredential { location, reason };
    let mut parts = value.split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad("it must have exactly five parts separated by '/'"));
    };
    if !valid_scope_part(access_key_id) {
        return Err(bad(
            "the access key id must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
        ));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the date must be 8 digits, YYYYMMDD"));
    }
    if !valid_scope_part(region) {
        return Err(bad(
            "the region must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
        ));
    }
    if !valid_scope_part(service) {
        return Err(bad(
            "the service must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
        ));
    }
    if terminator != "aws4_request" {
        return Err(bad("the last part must be aws4_request"));
    }
    Ok(Scope {
        access_key_id,
        date,
        region,
        service,
    })
}

fn parse_signed_headers<'a>(
    value: &'a str,
    location: &'static str,
) -> Result<Vec<&'a str>, VerifyError> {
    let bad = |reason| VerifyError::MalformedSignedHeaders { location, reason };
    let mut names: Vec<&str> = Vec::new();
    for name in value.split(';') {
        if names.len() == MAX_SIGNED_HEADERS {
            return Err(bad("more than 64 names"));
        }
        if name.is_empty() {
            return Err(bad("an empty name"));
        }
        let token = |b: u8| {
            matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\''
                | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~')
        };
        if !name.bytes().all(token) {
            return Err(bad(
                "a name with a character that is not lower-case in a header name",
            ));
        }
        if names.last().is_some_and(|last| *last >= name) {
            return Err(bad("the names are not sorted or a name is repeated"));
        }
        names.push(name);
    }
    Ok(names)
}

fn parse_signature(value: &str, location: &'static str) -> Result<[u8; 32], VerifyError> {
    decode_hex32(value).ok_or(VerifyError::MalformedSignature { location })
}

/// The parts of an `Authorization` header.
struct Authorization<'a> {
    scope: Scope<'a>,
    signed: Vec<&'a str>,
    signature: [u8; 32],
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, VerifyError> {
    let bad = |reason| VerifyError::MalformedAuthorization { reason };
    let value = value.trim_matches([' ', '\t']);
    let algorithm_end = value.find([' ', '\t']).unwrap_or(value.len());
    if &value[..algorithm_end] != ALGORITHM {
        return Err(VerifyError::UnsupportedAlgorithm { location: AUTHZ });
    }
    let rest = value[algorithm_end..].trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Err(bad("nothing follows the algorithm"));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for (i, part) in rest.split(',').enumerate() {
        if i == 3 {
            return Err(bad("more than three comma-separated components"));
        }
        let part = part.trim_matches([' ', '\t']);
        let Some((name, value)) = part.split_once('=') else {
            return Err(bad("a component without '='"));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(bad(
                    "a component other than Credential, SignedHeaders and Signature",
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(bad("a component is given twice"));
        }
    }
    let credential = credential.ok_or(bad("no Credential component"))?;
    let signed = signed.ok_or(bad("no SignedHeaders component"))?;
    let signature = signature.ok_or(bad("no Signature component"))?;
    Ok(Authorization {
        scope: parse_credential(credential, AUTHZ)?,
        signed: parse_signed_headers(signed, AUTHZ)?,
        signature: parse_signature(signature, AUTHZ)?,
    })
}

/// What an `Authorization` header says, read strictly but not verified: the credential
/// scope and the signed header names. For a party that forwards a signed request to the
/// service that verifies it (AWS IAM attestation sends a GetCallerIdentity request on to
/// STS) and must check what it is about to send. The signature itself is not returned, so
/// it cannot end up in a log or an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    /// The access key id of the credential scope.
    pub access_key_id: &'a str,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: &'a str,
    /// The credential scope's region.
    pub region: &'a str,
    /// The credential scope's service.
    pub service: &'a str,
    /// The signed header names, lower-case, sorted and unique.
    pub signed_headers: Vec<&'a str>,
}

/// Reads an `Authorization` header of the `AWS4-HMAC-SHA256` form with the same strictness
/// as [`verify`]: each component once, a five-part credential ending in `aws4_request`,
/// signed header names lower-case, sorted and unique (at most 64), and a signature of 64
/// lower-case hex digits. Nothing is verified.
pub fn read_authorization(value: &str) -> Result<AuthorizationHeader<'_>, VerifyError> {
    let parsed = parse_authorization(value)?;
    Ok(AuthorizationHeader {
        access_key_id: parsed.scope.access_key_id,
        date: parsed.scope.date,
        region: parsed.scope.region,
        service: parsed.scope.service,
        signed_headers: parsed.signed,
    })
}

/// The only header called `name`, or `None`; `Duplicate` if there are several.
fn single_header<'a>(
    headers: &[(&str, &'a str)],
    name: &str,
    what: &'static str,
) -> Result<Option<&'a str>, VerifyError> {
    let mut found = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) && found.replace(*v).is_some() {
            return Err(VerifyError::Duplicate { what });
        }
    }
    Ok(found)
}

/// The presigned parameters found in a query string, decoded.
#[derive(Default)]
struct PresignParams {
    values: [Option<String>; 7],
}

/// The parameters of a presigned URL and where each is described in errors; the order is
/// that of `values`.
const PARAMS: [(&str, &str); 7] = [
    ("X-Amz-Algorithm", "X-Amz-Algorithm query parameter"),
    ("X-Amz-Credential", "X-Amz-Credential query parameter"),
    ("X-Amz-Date", "X-Amz-Date query parameter"),
    ("X-Amz-Expires", "X-Amz-Expires query parameter"),
    ("X-Amz-SignedHeaders", "X-Amz-SignedHeaders query parameter"),
    ("X-Amz-Signature", "X-Amz-Signature query parameter"),
    (
        "X-Amz-Security-Token",
        "X-Amz-Security-Token query parameter",
    ),
];
const ALGORITHM_P: usize = 0;
const CREDENTIAL_P: usize = 1;
const DATE_P: usize = 2;
const EXPIRES_P: usize = 3;
const SIGNED_HEADERS_P: usize = 4;
const SIGNATURE_P: usize = 5;
const TOKEN_P: usize = 6;

fn presign_params(query: &str) -> Result<PresignParams, VerifyError> {
    let mut found = PresignParams::default();
    if !query.contains("X-Amz-") && !query.contains('%') && !query.contains('+') {
        return Ok(found);
    }
    for piece in query.split('&') {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let key = query_decode(key.as_bytes());
        if let Some(i) = PARAMS.iter().position(|(name, _)| name.as_bytes() == &*key) {
            let value = String::from_utf8_lossy(&query_decode(value.as_bytes())).into_owned();
            if found.values[i].replace(value).is_some() {
                return Err(VerifyError::Duplicate { what: PARAMS[i].1 });
            }
        }
    }
    Ok(found)
}

impl PresignParams {
    fn is_presigned(&self) -> bool {
        [ALGORITHM_P, CREDENTIAL_P, SIGNATURE_P]
            .iter()
            .any(|&i| self.values[i].is_some())
    }

    fn get(&self, i: usize) -> Result<&str, VerifyError> {
        self.values[i]
            .as_deref()
            .ok_or(VerifyError::MissingParameter { name: PARAMS[i].0 })
    }
}

/// A payload hash to try, and whether it covers the body the caller passed.
struct Candidate {
    hash: Cow<'static, str>,
    covers_body: bool,
}

/// The payload hashes the request may have been signed with, most likely first.
fn payload_candidates(
    request: &SignableRequest<'_>,
    settings: &VerifySettings,
    presigned: bool,
) -> Result<Vec<Candidate>, VerifyError> {
    let claimed = single_header(
        request.headers,
        "x-amz-content-sha256",
        "x-amz-content-sha256 header",
    )?
    .map(|v| v.trim_matches([' ', '\t']));
    let body_hash = match request.payload {
        Payload::Bytes(b) => Some(hex(digest::digest(&digest::SHA256, b).as_ref())),
        Payload::Sha256Hex(h) => Some(h.to_ascii_lowercase()),
        Payload::Unsigned => None,
    };
    let unsigned = Candidate {
        hash: Cow::Borrowed(UNSIGNED_PAYLOAD),
        covers_body: false,
    };
    match claimed {
        Some(UNSIGNED_PAYLOAD) => {
            if !settings.allow_unsigned_payload {
                return Err(VerifyError::UnsignedPayloadRefused);
            }
            Ok(vec![unsigned])
        }
        Some(claim) => {
            if decode_hex32(claim).is_none() {
                return Err(VerifyError::MalformedContentSha256);
            }
            match body_hash {
                Some(h) if h != claim => Err(VerifyError::ContentSha256Mismatch),
                Some(_) => Ok(vec![Candidate {
                    hash: Cow::Owned(claim.to_owned()),
                    covers_body: true,
                }]),
                None => Ok(vec![Candidate {
                    hash: Cow::Owned(claim.to_owned()),
                    covers_body: false,
                }]),
            }
        }
        None => {
            let mut out = Vec::with_capacity(2);
            if let Some(hash) = body_hash {
                out.push(Candidate {
                    hash: Cow::Owned(hash),
                    covers_body: true,
                });
            }
            if settings.allow_unsigned_payload {
                // Some signers leave the header out when they do not sign the body; S3's
                // presigned URLs carry UNSIGNED-PAYLOAD (other services' the body's hash):
                // try it first for them.
                if presigned && settings.uri_encoding == UriEncoding::S3 {
                    out.insert(0, unsigned);
                } else {
                    out.push(unsigned);
                }
            }
            if out.is_empty() {
                return Err(VerifyError::UnsignedPayloadRefused);
            }
            Ok(out)
        }
    }
}

/// What both forms have claimed once parsed and checked, before the signature itself.
struct Claim<'a> {
    location: &'static str,
    date_location: &'static str,
    scope: Scope<'a>,
    signed: Vec<&'a str>,
    signature: [u8; 32],
    amz_date: String,
    date: OffsetDateTime,
    canonical_query: String,
    session_token: Option<String>,
    form: SignatureForm,
}

/// Verifies the SigV4 signature of `request`, in its `Authorization` header or its query
/// string (a presigned URL), at time `now`.
///
/// Checks, in this order: the form (exactly one), the strict syntax of every field, the
/// signing time against `now` (`settings.max_clock_skew` either way; presigned URLs: not
/// before their time by more than the window, not after `X-Amz-Date` + `X-Amz-Expires`,
/// which is at most 7 days), that the credential scope's date is the signing time's date,
/// that `host` is signed and every signed header present, the payload hash, and then, with
/// the secret key `secret_for` returns for the access key id, the signature (compared in
/// constant time). `secret_for` is called only for well-formed, timely requests.
///
/// The session token is returned, not checked: the caller checks it belongs to the access
/// key id. So is the service: the caller checks it names itself.
pub fn verify<F, S>(
    request: &SignableRequest<'_>,
    now: OffsetDateTime,
    settings: &VerifySettings,
    cache: &SigningKeyCache,
    secret_for: F,
) -> Result<Verified, VerifyError>
where
    F: FnOnce(&str) -> Option<S>,
    S: AsRef<[u8]>,
{
    let prepared = prepare(request, now, settings)?;
    let Some(secret) = secret_for(&prepared.access_key_id) else {
        return Err(prepared.unknown_access_key());
    };
    let key = cache.key(
        &prepared.access_key_id,
        secret.as_ref(),
        &prepared.scope_date,
        &prepared.region,
        &prepared.service,
    );
    prepared.finish_with(&key)
}

/// Every check of [`verify`] but the signature's: the syntax, the time, the scope, the
/// signed headers and the payload hash. What is left is to look up the key for the
/// request's scope ([`Prepared::access_key_id`], [`Prepared::date`], [`Prepared::region`],
/// [`Prepared::service`], [`Prepared::session_token`]) wherever it lives, and
/// [`Prepared::finish`] with it: the form for a verifier that holds no secrets and asks for
/// the signing key of one scope (a gateway asking writ's server).
pub fn prepare(
    request: &SignableRequest<'_>,
    now: OffsetDateTime,
    settings: &VerifySettings,
) -> Result<Prepared, VerifyError> {
    let authorization = single_header(request.headers, "authorization", AUTHZ)?;
    let params = presign_params(request.query)?;
    let claim = match (authorization, params.is_presigned()) {
        (Some(_), true) => return Err(VerifyError::BothForms),
        (None, false) => return Err(VerifyError::MissingSignature),
        (Some(value), false) => header_claim(request, value, now, settings)?,
        (None, true) => presigned_claim(request, &params, now, settings)?,
    };
    if claim.scope.date != &claim.amz_date[..8] {
        return Err(VerifyError::ScopeDateMismatch {
            location: claim.date_location,
            scope_date: claim.scope.date.to_owned(),
            request_date: claim.amz_date[..8].to_owned(),
        });
    }
    if !claim.signed.contains(&"host") {
        return Err(VerifyError::HostNotSigned {
            location: match claim.form {
                SignatureForm::Header => AUTHZ,
                SignatureForm::Presigned { .. } => PARAMS[SIGNED_HEADERS_P].1,
            },
        });
    }
    let head = canonical_request_head(
        request.method,
        request.path,
        &claim.canonical_query,
        request.headers,
        &claim.signed,
        settings.uri_encoding,
    )
    .map_err(|name| VerifyError::SignedHeaderMissing {
        name: name.to_owned(),
    })?;
    let candidates = payload_candidates(
        request,
        settings,
        matches!(claim.form, SignatureForm::Presigned { .. }),
    )?;
    let mut hashed_head = digest::Context::new(&digest::SHA256);
    hashed_head.update(head.as_bytes());
    Ok(Prepared {
        location: claim.location,
        access_key_id: claim.scope.access_key_id.to_owned(),
        scope_date: claim.scope.date.to_owned(),
        region: claim.scope.region.to_owned(),
        service: claim.scope.service.to_owned(),
        signed: claim.signed.iter().map(|s| (*s).to_owned()).collect(),
        signature: claim.signature,
        amz_date: claim.amz_date,
        date: claim.date,
        session_token: claim.session_token,
        form: claim.form,
        hashed_head,
        candidates,
    })
}

/// A request whose signature is all that is left to check ([`prepare`]). `Debug` shows its
/// scope, never the session token.
pub struct Prepared {
    location: &'static str,
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    signed: Vec<String>,
    signature: [u8; 32],
    amz_date: String,
    date: OffsetDateTime,
    session_token: Option<String>,
    form: SignatureForm,
    hashed_head: digest::Context,
    candidates: Vec<Candidate>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("access_key_id", &self.access_key_id())
            .field("date", &self.date())
            .field("region", &self.region())
            .field("service", &self.service())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// The access key id of the credential scope.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The date of the credential scope, `YYYYMMDD`.
    pub fn date(&self) -> &str {
        &self.scope_date
    }

    /// The region of the credential scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The service of the credential scope.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The session token the request carries (`X-Amz-Security-Token`), if any.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    /// The refusal for an access key id the verifier does not know.
    pub fn unknown_access_key(&self) -> VerifyError {
        VerifyError::UnknownAccessKey {
            location: match self.form {
                SignatureForm::Header => AUTHZ,
                SignatureForm::Presigned { .. } => PARAMS[CREDENTIAL_P].1,
            },
        }
    }

    /// Checks the signature with the signing key of the request's scope
    /// ([`crate::signing_key`] of the secret, [`Self::date`], [`Self::region`] and
    /// [`Self::service`]), in constant time.
    pub fn finish(self, signing_key: &[u8; 32]) -> Result<Verified, VerifyError> {
        self.finish_with(&hmac::Key::new(hmac::HMAC_SHA256, signing_key))
    }

    fn finish_with(self, key: &hmac::Key) -> Result<Verified, VerifyError> {
        let scope = scope(&self.scope_date, &self.region, &self.service);
        for candidate in self.candidates {
            let mut creq = self.hashed_head.clone();
            creq.update(candidate.hash.as_bytes());
            let sts = string_to_sign(&self.amz_date, &scope, creq.finish().as_ref());
            if hmac::verify(key, sts.as_bytes(), &self.signature).is_ok() {
                return Ok(Verified {
                    access_key_id: self.access_key_id,
                    region: self.region,
                    service: self.service,
                    date: self.date,
                    signed_headers: self.signed,
                    session_token: self.session_token,
                    form: self.form,
                    payload_signed: candidate.covers_body,
                });
            }
        }
        Err(VerifyError::SignatureMismatch {
            location: self.location,
        })
    }
}

fn header_claim<'a>(
    request: &SignableRequest<'a>,
    authorization: &'a str,
    now: OffsetDateTime,
    settings: &VerifySettings,
) -> Result<Claim<'a>, VerifyError> {
    let parsed = parse_authorization(authorization)?;
    let (location, date, amz_date) =
        match single_header(request.headers, "x-amz-date", "X-Amz-Date header")? {
            Some(v) => {
                let v = v.trim_matches([' ', '\t']);
                let date = parse_amz_date(v).ok_or(VerifyError::MalformedDate {
                    location: "X-Amz-Date header",
                    expected: "YYYYMMDDTHHMMSSZ, e.g. 20150830T123600Z",
                })?;
                ("X-Amz-Date header", date, v.to_owned())
            }
            None => {
                let v = single_header(request.headers, "date", "Date header")?
                    .ok_or(VerifyError::MissingDate)?;
                let date = parse_http_date(v.trim_matches([' ', '\t'])).ok_or(
                    VerifyError::MalformedDate {
                        location: "Date header",
                        expected: "an IMF-fixdate, e.g. Sun, 30 Aug 2015 12:36:00 GMT",
                    },
                )?;
                ("Date header", date, format_amz_date(date))
            }
        };
    let skew = (date - now).whole_seconds();
    if skew.abs() > settings.max_clock_skew.whole_seconds() {
        return Err(VerifyError::ClockSkew {
            location,
            skew_seconds: skew,
            max_seconds: settings.max_clock_skew.whole_seconds(),
        });
    }
    let session_token = single_header(
        request.headers,
        "x-amz-security-token",
        "X-Amz-Security-Token header",
    )?
    .map(|t| t.trim_matches([' ', '\t']).to_owned());
    Ok(Claim {
        location: AUTHZ,
        date_location: location,
        scope: parsed.scope,
        signed: parsed.signed,
        signature: parsed.signature,
        amz_date,
        date,
        canonical_query: canonical_query(request.query, None),
        session_token,
        form: SignatureForm::Header,
    })
}

fn presigned_claim<'p>(
    request: &SignableRequest<'_>,
    params: &'p PresignParams,
    now: OffsetDateTime,
    settings: &VerifySettings,
) -> Result<Claim<'p>, VerifyError> {
    if params.get(ALGORITHM_P)? != ALGORITHM {
        return Err(VerifyError::UnsupportedAlgorithm {
            location: PARAMS[ALGORITHM_P].1,
        });
    }
    let scope = parse_credential(params.get(CREDENTIAL_P)?, PARAMS[CREDENTIAL_P].1)?;
    let amz_date = params.get(DATE_P)?;
    let date = parse_amz_date(amz_date).ok_or(VerifyError::MalformedDate {
        location: PARAMS[DATE_P].1,
        expected: "YYYYMMDDTHHMMSSZ, e.g. 20150830T123600Z",
    })?;
    let expires = params.get(EXPIRES_P)?;
    let expires = if expires.is_empty()
        || expires.len() > 6
        || expires.starts_with('0')
        || !expires.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(VerifyError::InvalidExpires);
    } else {
        Duration::seconds(
            expires
                .parse::<i64>()
                .map_err(|_| VerifyError::InvalidExpires)?,
        )
    };
    if expires > MAX_PRESIGNED_EXPIRY {
        return Err(VerifyError::InvalidExpires);
    }
    let signed = parse_signed_headers(params.get(SIGNED_HEADERS_P)?, PARAMS[SIGNED_HEADERS_P].1)?;
    let signature = parse_signature(params.get(SIGNATURE_P)?, PARAMS[SIGNATURE_P].1)?;
    let early = (date - now).whole_seconds();
    if early > settings.max_clock_skew.whole_seconds() {
        return Err(VerifyError::ClockSkew {
            location: PARAMS[DATE_P].1,
            skew_seconds: early,
            max_seconds: settings.max_clock_skew.whole_seconds(),
        });
    }
    // `date` is at most the window ahead of `now`; adding 7 days overflows only near the
    // year 9999, where the URL has not expired.
    let late = date
        .checked_add(expires)
        .map_or(0, |end| (now - end).whole_seconds());
    if late > 0 {
        return Err(VerifyError::Expired { seconds_ago: late });
    }
    let session_token = match params.values[TOKEN_P].clone() {
        Some(t) => Some(t),
        None => single_header(
            request.headers,
            "x-amz-security-token",
            "X-Amz-Security-Token header",
        )?
        .map(|t| t.trim_matches([' ', '\t']).to_owned()),
    };
    Ok(Claim {
        location: PARAMS[SIGNATURE_P].1,
        date_location: PARAMS[DATE_P].1,
        scope,
        signed,
        signature,
        amz_date: amz_date.to_owned(),
        date,
        canonical_query: canonical_query(request.query, Some("X-Amz-Signature")),
        session_token,
        form: SignatureForm::Presigned { expires },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parsing_is_strict() {
        let good = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let parsed = parse_authorization(good).unwrap();
        assert_eq!(parsed.scope.access_key_id, "AKID");
        assert_eq!(parsed.signed, ["host", "x-amz-date"]);
        // Components in another order, without spaces after commas, are the same header.
        assert!(parse_authorization("AWS4-HMAC-SHA256 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31,SignedHeaders=host,Credential=A/20150830/r/s/aws4_request").is_ok());
        let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let cases: Vec<(String, VerifyError)> = vec![
            (
                format!("AWS4-HMAC-SHA1 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature={sig}"),
                VerifyError::UnsupportedAlgorithm { location: AUTHZ },
            ),
            (
                "AWS4-HMAC-SHA256".into(),
                VerifyError::MalformedAuthorization { reason: "nothing follows the algorithm" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature={sig}, Extra=1"),
                VerifyError::MalformedAuthorization { reason: "more than three comma-separated components" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, Credential=A/20150830/r/s/aws4_request, Signature={sig}"),
                VerifyError::MalformedAuthorization { reason: "a component is given twice" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/20150830/r/s, SignedHeaders=host, Signature={sig}"),
                VerifyError::MalformedCredential { location: AUTHZ, reason: "it must have exactly five parts separated by '/'" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/2015083/r/s/aws4_request, SignedHeaders=host, Signature={sig}"),
                VerifyError::MalformedCredential { location: AUTHZ, reason: "the date must be 8 digits, YYYYMMDD" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws5_request, SignedHeaders=host, Signature={sig}"),
                VerifyError::MalformedCredential { location: AUTHZ, reason: "the last part must be aws4_request" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=x-amz-date;host, Signature={sig}"),
                VerifyError::MalformedSignedHeaders { location: AUTHZ, reason: "the names are not sorted or a name is repeated" },
            ),
            (
                format!("AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=Host, Signature={sig}"),
                VerifyError::MalformedSignedHeaders { location: AUTHZ, reason: "a name with a character that is not lower-case in a header name" },
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=5FA0".into(),
                VerifyError::MalformedSignature { location: AUTHZ },
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_authorization(&value).err(), Some(expected), "{value}");
        }
    }
}
