//! Signing: the `Authorization` header form and the presigned query-string form.

use ring::{digest, hmac};
use time::{Duration, OffsetDateTime};

use crate::canonical::{
    UriEncoding, canonical_query, canonical_request_head, header_names_to_sign,
};
use crate::datetime::{format_amz_date, parse_amz_date};
use crate::encode::{encode, hex, hex_into};
use crate::{
    ALGORITHM, Credentials, MAX_PRESIGNED_EXPIRY, Payload, SignableRequest, UNSIGNED_PAYLOAD,
};

/// What to sign with: credentials, the scope's region and service, the time, and the service's
/// path rule.
#[derive(Clone, Copy, Debug)]
pub struct SigningParams<'a> {
    /// The credentials; a session token is sent as `X-Amz-Security-Token` and signed.
    pub credentials: &'a Credentials,
    /// The region of the credential scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service of the credential scope, e.g. `sts`, `secretsmanager`, `lambda`.
    pub service: &'a str,
    /// The signing time (`X-Amz-Date`); the caller's clock, read by the caller.
    pub time: OffsetDateTime,
    /// How the path becomes the canonical URI: [`UriEncoding::S3`] for S3, else the default.
    pub uri_encoding: UriEncoding,
}

impl<'a> SigningParams<'a> {
    /// Parameters for a service other than S3.
    pub fn new(
        credentials: &'a Credentials,
        region: &'a str,
        service: &'a str,
        time: OffsetDateTime,
    ) -> Self {
        SigningParams {
            credentials,
            region,
            service,
            time,
            uri_encoding: UriEncoding::Double,
        }
    }
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// A part of the credential scope is empty, too long or has a character outside
    /// `A-Z a-z 0-9 - _ .`.
    #[error(
        "cannot sign: the {field} must be 1 to 128 characters of A-Z, a-z, 0-9, '-', '_' or '.'"
    )]
    InvalidScope {
        /// `access key id`, `region` or `service`.
        field: &'static str,
    },
    /// The request has no `host` header, which SigV4 requires to be signed.
    #[error("cannot sign: the request has no host header, and SigV4 requires host to be signed")]
    MissingHost,
    /// A header name is not an HTTP token, or there are more than 64 headers to sign.
    #[error(
        "cannot sign: {reason}; header names are HTTP tokens (A-Z a-z 0-9 and !#$%&'*+-.^_`|~), at most 64 of them"
    )]
    InvalidHeaders {
        /// What is wrong.
        reason: &'static str,
    },
    /// The request carries an `X-Amz-Date` header that is not the signing time.
    #[error(
        "cannot sign: the request's X-Amz-Date header is not the signing time formatted as YYYYMMDDTHHMMSSZ; remove the header or set it to the signing time"
    )]
    DateMismatch,
    /// The presigned URL's lifetime is under one second, over seven days or not whole
    /// seconds.
    #[error("cannot presign: X-Amz-Expires must be whole seconds from 1 to 604800 (7 days)")]
    InvalidExpiry,
    /// The query already has a parameter of a presigned URL.
    #[error(
        "cannot sign: the query already has the parameter {name}, which a presigned URL carries"
    )]
    PresignParameterPresent {
        /// The parameter's name.
        name: &'static str,
    },
}

/// The result of [`sign_headers`]. `Debug` shows the names of the headers and the signature,
/// not the session token the headers and the canonical request may carry.
#[derive(Clone)]
pub struct HeaderSignature {
    /// Headers to add to the request as sent: `authorization`, and `x-amz-date`,
    /// `x-amz-security-token` and `x-amz-content-sha256` when the signer added them.
    pub headers: Vec<(&'static str, String)>,
    /// The canonical request that was signed (for debugging a mismatch).
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The signature, 64 lower-case hex digits.
    pub signature: String,
}

/// The result of [`presign`]. `Debug` shows the signature only: the query and the canonical
/// request may carry a session token.
#[derive(Clone)]
pub struct Presigned {
    /// The query string to send (without `?`): the request's own parameters followed by the
    /// `X-Amz-*` parameters, `X-Amz-Signature` last.
    pub query: String,
    /// The canonical request that was signed.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The signature, 64 lower-case hex digits.
    pub signature: String,
}

impl std::fmt::Debug for HeaderSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("HeaderSignature")
            .field("headers", &names)
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Presigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presigned")
            .field("signature", &self.signature)
            .finish_non_exhaustive()
    }
}

/// Whether `s` is an acceptable access key id, region or service: 1 to 128 characters of
/// `A-Z a-z 0-9 - _ .`.
pub(crate) fn valid_scope_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks there are at most 64 names to sign, as a verifier accepts.
fn check_count(names: &[String]) -> Result<(), SignError> {
    if names.len() > crate::verify::MAX_SIGNED_HEADERS {
        return Err(SignError::InvalidHeaders {
            reason: "more than 64 headers to sign",
        });
    }
    Ok(())
}

/// Checks the query has none of the parameters of a presigned URL.
fn check_query(query: &str) -> Result<(), SignError> {
    for piece in query.split('&') {
        let key = piece.split_once('=').map_or(piece, |(k, _)| k);
        let key = crate::encode::query_decode(key.as_bytes());
        if let Some(name) = PRESIGN_PARAMETERS.iter().find(|p| p.as_bytes() == &*key) {
            return Err(SignError::PresignParameterPresent { name });
        }
    }
    Ok(())
}

/// Checks the request has a `host` header, and names a verifier accepts.
fn check_headers(headers: &[(&str, &str)]) -> Result<(), SignError> {
    if header(headers, "host").is_none() {
        return Err(SignError::MissingHost);
    }
    for name in ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
        if headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
            > 1
        {
            return Err(SignError::InvalidHeaders {
                reason: "an x-amz-date, x-amz-security-token or x-amz-content-sha256 header given twice",
            });
        }
    }
    if let Some(v) = header(headers, "x-amz-content-sha256") {
        let v = v.trim_matches([' ', '\t']);
        if v != UNSIGNED_PAYLOAD && crate::encode::decode_hex32(v).is_none() {
            return Err(SignError::InvalidHeaders {
                reason: "an x-amz-content-sha256 header that is neither 64 lower-case hex digits nor UNSIGNED-PAYLOAD",
            });
        }
    }
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if headers
        .iter()
        .any(|(name, _)| name.is_empty() || !name.bytes().all(token))
    {
        return Err(SignError::InvalidHeaders {
            reason: "a header name that is empty or not an HTTP token",
        });
    }
    Ok(())
}

fn check_scope(params: &SigningParams<'_>) -> Result<(), SignError> {
    for (field, value) in [
        ("access key id", params.credentials.access_key_id.as_str()),
        ("region", params.region),
        ("service", params.service),
    ] {
        if !valid_scope_part(value) {
            return Err(SignError::InvalidScope { field });
        }
    }
    Ok(())
}

/// The hex SHA-256 of the payload, or `UNSIGNED-PAYLOAD`.
pub(crate) fn payload_hash(payload: Payload<'_>) -> String {
    match payload {
        Payload::Bytes(b) => hex(digest::digest(&digest::SHA256, b).as_ref()),
        Payload::Sha256Hex(h) => h.to_owned(),
        Payload::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
    }
}

/// The value of the only or first header called `name` (lower-case).
pub(crate) fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The string to sign for a canonical request.
pub(crate) fn string_to_sign(
    amz_date: &str,
    scope: &str,
    canonical_request_sha256: &[u8],
) -> String {
    let mut sts = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    sts.push_str(ALGORITHM);
    sts.push('\n');
    sts.push_str(amz_date);
    sts.push('\n');
    sts.push_str(scope);
    sts.push('\n');
    hex_into(&mut sts, canonical_request_sha256);
    sts
}

/// `date/region/service/aws4_request`.
pub(crate) fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

struct Signed {
    canonical_request: String,
    string_to_sign: String,
    signature: String,
}

fn sign_canonical(params: &SigningParams<'_>, amz_date: &str, canonical_request: String) -> Signed {
    let scope = scope(&amz_date[..8], params.region, params.service);
    let sts = string_to_sign(
        amz_date,
        &scope,
        digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref(),
    );
    let key = crate::key::derive(
        params.credentials.secret_access_key.as_bytes(),
        &amz_date[..8],
        params.region,
        params.service,
    );
    Signed {
        canonical_request,
        signature: hex(hmac::sign(&key, sts.as_bytes()).as_ref()),
        string_to_sign: sts,
    }
}

/// Signs `request` in the `Authorization` header.
///
/// Every header of the request is signed (but `authorization`): pass only the headers to
/// sign, and `host` among them. The signer adds `x-amz-date` (the signing time) when the
/// request has none, `x-amz-security-token` when the credentials have a session token and
/// the request has none, and `x-amz-content-sha256: UNSIGNED-PAYLOAD` for
/// [`Payload::Unsigned`]; all of these are signed. When the request has an
/// `x-amz-content-sha256` header, its value is the payload hash, as AWS's signers do.
pub fn sign_headers(
    request: &SignableRequest<'_>,
    params: &SigningParams<'_>,
) -> Result<HeaderSignature, SignError> {
    check_scope(params)?;
    check_headers(request.headers)?;
    check_query(request.query)?;
    let amz_date = format_amz_date(params.time);
    if let Some(existing) = header(request.headers, "x-amz-date")
        && parse_amz_date(existing.trim_matches([' ', '\t']))
            .map(format_amz_date)
            .as_deref()
            != Some(&amz_date)
    {
        return Err(SignError::DateMismatch);
    }
    let mut added: Vec<(&'static str, String)> = Vec::new();
    if header(request.headers, "x-amz-date").is_none() {
        added.push(("x-amz-date", amz_date.clone()));
    }
    if let Some(token) = &params.credentials.session_token
        && header(request.headers, "x-amz-security-token").is_none()
    {
        added.push(("x-amz-security-token", token.clone()));
    }
    let content_sha = header(request.headers, "x-amz-content-sha256");
    if matches!(request.payload, Payload::Unsigned) && content_sha.is_none() {
        added.push(("x-amz-content-sha256", UNSIGNED_PAYLOAD.to_owned()));
    }
    let payload = match content_sha {
        Some(v) => v.trim_matches([' ', '\t']).to_owned(),
        None => payload_hash(request.payload),
    };
    let mut all: Vec<(&str, &str)> = request.headers.to_vec();
    all.extend(added.iter().map(|(n, v)| (*n, v.as_str())));
    let names = header_names_to_sign(&all);
    check_count(&names)?;
    let query = canonical_query(request.query, None);
    let mut creq = canonical_request_head(
        request.method,
        request.path,
        &query,
        &all,
        &names,
        params.uri_encoding,
    )
    .expect("every signed name comes from the headers");
    creq.push_str(&payload);
    let signed = sign_canonical(params, &amz_date, creq);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
        params.credentials.access_key_id,
        scope(&amz_date[..8], params.region, params.service),
        names.join(";"),
        signed.signature
    );
    added.insert(0, ("authorization", authorization));
    Ok(HeaderSignature {
        headers: added,
        canonical_request: signed.canonical_request,
        string_to_sign: signed.string_to_sign,
        signature: signed.signature,
    })
}

/// The query parameters presigning adds, which the request's own query must not have.
pub(crate) const PRESIGN_PARAMETERS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Signs `request` in its query string (a presigned URL), valid for `expires` (1 second to
/// 7 days) from the signing time.
///
/// Every header of the request is signed (usually only `host`). The payload hash is taken
/// from `request.payload` (botocore and the AWS CLI presign with [`Payload::Unsigned`]), or
/// from an `x-amz-content-sha256` header. A session token is added as `X-Amz-Security-Token`
/// before signing, so it is signed.
pub fn presign(
    request: &SignableRequest<'_>,
    params: &SigningParams<'_>,
    expires: Duration,
) -> Result<Presigned, SignError> {
    check_scope(params)?;
    check_headers(request.headers)?;
    if expires < Duration::SECOND
        || expires > MAX_PRESIGNED_EXPIRY
        || expires.subsec_nanoseconds() != 0
    {
        return Err(SignError::InvalidExpiry);
    }
    check_query(request.query)?;
    let amz_date = format_amz_date(params.time);
    let names = header_names_to_sign(request.headers);
    check_count(&names)?;
    let mut query = request.query.to_owned();
    let mut add = |name: &str, value: &str| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&encode(value.as_bytes()));
    };
    add("X-Amz-Algorithm", ALGORITHM);
    add(
        "X-Amz-Credential",
        &format!(
            "{}/{}",
            params.credentials.access_key_id,
            scope(&amz_date[..8], params.region, params.service)
        ),
    );
    add("X-Amz-Date", &amz_date);
    add("X-Amz-Expires", &expires.whole_seconds().to_string());
    add("X-Amz-SignedHeaders", &names.join(";"));
    if let Some(token) = &params.credentials.session_token {
        add("X-Amz-Security-Token", token);
    }
    let payload = match header(request.headers, "x-amz-content-sha256") {
        Some(v) => v.trim_matches([' ', '\t']).to_owned(),
        None => payload_hash(request.payload),
    };
    let mut creq = canonical_request_head(
        request.method,
        request.path,
        &canonical_query(&query, None),
        request.headers,
        &names,
        params.uri_encoding,
    )
    .expect("every signed name comes from the headers");
    creq.push_str(&payload);
    let signed = sign_canonical(params, &amz_date, creq);
    query.push_str("&X-Amz-Signature=");
    query.push_str(&signed.signature);
    Ok(Presigned {
        query,
        canonical_request: signed.canonical_request,
        string_to_sign: signed.string_to_sign,
        signature: signed.signature,
    })
}
