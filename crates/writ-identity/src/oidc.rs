//! OIDC ID-token verification: a function proves who it is with a token from an identity
//! provider writ trusts (GitHub Actions, Kubernetes service accounts, Cognito, ...).
//!
//! This module does no I/O. The caller fetches the issuer's JWKS (or takes it from the rule)
//! and passes it in with the current time, so verification is deterministic and testable.
//!
//! Verification fails closed. Only asymmetric algorithms are accepted, so `alg: none` and HMAC
//! tokens keyed with a public key are refused before a key is looked up. The key must come from
//! the given JWKS, fit the token's algorithm (key type, curve and any `alg` the JWK names), and
//! verify the signature; only then are the claims read: `exp` (required) and `nbf` against the
//! caller's clock with an explicit leeway, `iss` exactly, `aud` containing the rule's audience,
//! `sub` and any further claims against the rule's glob patterns.

use std::collections::BTreeMap;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

/// Tokens longer than this are refused unread; real ID tokens are a few kilobytes.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// What a function's OIDC attestation rule requires of a token. Part of the server's JSON API
/// (camelCase, unknown fields refused); call [`OidcRule::check`] before storing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcRule {
    /// The issuer the token's `iss` must equal exactly.
    pub issuer: String,
    /// Where the server fetches the issuer's JWKS; exactly one of this and `jwks` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The issuer's JWKS given inline; exactly one of this and `jwks_url` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<JwkSet>,
    /// The audience that must be in the token's `aud` (a string or an array).
    pub audience: String,
    /// A glob (`*` any run, `?` one character) the token's `sub` must match, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Further claims, by name, and the glob each must match. A claim must be present and be a
    /// string, or a boolean or number compared by its JSON text (`true`, `42`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

impl OidcRule {
    /// Checks that the rule is usable: a non-empty issuer and audience, exactly one JWKS source,
    /// a JWKS URL that is `https://` (or `http://` to 127.0.0.1, `[::1]` or localhost only), an
    /// inline JWKS with at least one key, a non-empty subject pattern if one is given,
    /// non-empty claim names, and a subject or claim pattern that is more than wildcards, so
    /// the rule does not admit every token of a shared issuer. The error names the offending
    /// field, as in `"jwksUrl: ..."`.
    pub fn check(&self) -> Result<(), String> {
        if self.issuer.is_empty() {
            return Err("issuer: must not be empty".into());
        }
        match (&self.jwks_url, &self.jwks) {
            (Some(_), Some(_)) => {
                return Err("jwksUrl: give either jwksUrl or jwks, not both".into());
            }
            (None, None) => return Err("jwksUrl: one of jwksUrl or jwks is required".into()),
            (Some(url), None) => check_jwks_url(url)?,
            (None, Some(jwks)) => {
                if jwks.keys.is_empty() {
                    return Err("jwks: must contain at least one key".into());
                }
            }
        }
        if self.audience.is_empty() {
            return Err("audience: must not be empty".into());
        }
        if self.subject.as_deref() == Some("") {
            return Err("subject: must not be empty when given".into());
        }
        if self.claims.keys().any(String::is_empty) {
            return Err("claims: a claim name must not be empty".into());
        }
        // An issuer such as GitHub Actions signs tokens for every repository, and the
        // workflow picks the audience: without a subject or claim to match, anyone using
        // that issuer could log in as the function.
        let narrows = |pattern: &str| pattern.chars().any(|c| c != '*' && c != '?');
        if !self.subject.as_deref().is_some_and(narrows)
            && !self.claims.values().any(|v| narrows(v))
        {
            return Err(
                "subject: give a subject pattern or a claim to match (for example \"repo:acme/orders:*\"); \
                 a rule that matches every token of the issuer would let anyone it serves in"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Checks a JWKS URL without a URL parser: `https://` to any host, or `http://` to a loopback
/// host written exactly as 127.0.0.1, `[::1]` or localhost. Anything a URL parser could read
/// differently (user information, spaces, control characters, backslashes, odd ports) is refused.
fn check_jwks_url(url: &str) -> Result<(), String> {
    const HTTPS_ONLY: &str = "jwksUrl: must be an https:// URL (http:// is allowed only for 127.0.0.1, [::1] or localhost)";
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("jwksUrl: must not contain spaces, control characters or backslashes".into());
    }
    let (https, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(url, "http://") {
        (false, rest)
    } else {
        return Err(HTTPS_ONLY.into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("jwksUrl: must not contain user information".into());
    }
    let (host, bracketed, port) = if let Some(inner) = authority.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err("jwksUrl: the IPv6 host is missing its closing bracket".into());
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("jwksUrl: unexpected text after the IPv6 host".into()),
            },
        };
        (host, true, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, false, Some(port)),
            None => (authority, false, None),
        }
    };
    if host.is_empty() {
        return Err("jwksUrl: the URL has no host".into());
    }
    if !bracketed && (host.contains('[') || host.contains(']')) {
        return Err("jwksUrl: the host is not valid".into());
    }
    if let Some(port) = port {
        // An empty port means the default one, as URL parsers read it.
        if !port.is_empty()
            && (!port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
        {
            return Err("jwksUrl: the port is not a number from 0 to 65535".into());
        }
    }
    let loopback = if bracketed {
        host == "::1"
    } else {
        host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost")
    };
    if https || loopback {
        Ok(())
    } else {
        Err(HTTPS_ONLY.into())
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

/// A token that passed [`verify`]: who issued it, whom it names, and all of its claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOidc {
    /// The token's `iss`, equal to the rule's issuer.
    pub issuer: String,
    /// The token's `sub`.
    pub subject: String,
    /// Every claim of the token, as sent (for policy conditions and the audit record).
    pub claims: Map<String, Value>,
}

/// Why an OIDC token was refused. Messages are fit for an audit record and never include the
/// token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The token is not a well-formed JWS with a JSON claims object and a numeric `exp`, has a
    /// `crit` header, or has a registered claim of a shape the JWT library refuses to parse.
    /// `alg: none` lands here too: its header does not parse as a signed JWT's.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The algorithm is an HMAC, or does not fit the key the token names.
    #[error("the token's algorithm is not allowed or does not fit its key")]
    Algorithm,
    /// No usable key in the JWKS has the token's `kid`, or the token has no `kid` and the JWKS
    /// has more than one key.
    #[error("no key in the issuer's JWKS matches the token")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// `iss` is missing or not the rule's issuer.
    #[error("the token's issuer is not the one the rule trusts")]
    Issuer,
    /// `aud` is missing or does not contain the rule's audience.
    #[error("the token is not for this audience")]
    Audience,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet (`nbf`).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `sub` is missing, not a string, or does not match the rule's subject pattern.
    #[error("the token's subject does not match the rule")]
    Subject,
    /// A claim the rule names is missing or does not match; carries the claim's name.
    #[error("the token's claim {0:?} is missing or does not match the rule")]
    Claim(String),
}

/// Verifies an OIDC ID token against `rule`, with the issuer's `jwks` (fetched from
/// `rule.jwks_url` or taken from `rule.jwks` by the caller), at `now`, allowing `leeway` of
/// clock skew for `exp` and `nbf`.
///
/// Accepts RS256/384/512, PS256/384/512, ES256, ES384 and EdDSA only. The key is the JWKS
/// entry with the token's `kid` (entries marked for anything but signatures are skipped); a
/// token without `kid` is accepted only if the JWKS has exactly one such key. The key's type
/// and curve, and its `alg` if it names one, must fit the token's algorithm. A `crit` header
/// is refused, since no extension is understood.
pub fn verify(
    token: &str,
    rule: &OidcRule,
    jwks: &JwkSet,
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<VerifiedOidc, OidcError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(OidcError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| OidcError::Malformed)?;
    if !is_asymmetric(header.alg) {
        return Err(OidcError::Algorithm);
    }
    if header.crit.is_some() {
        return Err(OidcError::Malformed);
    }
    let jwk = select_key(&header, jwks)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| OidcError::UnknownKey)?;

    let mut validation = Validation::new(header.alg);
    // Time, issuer and audience are checked below against the caller's clock and the rule.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => OidcError::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => OidcError::Algorithm,
            _ => OidcError::Malformed,
        })?;
    let Value::Object(claims) = data.claims else {
        return Err(OidcError::Malformed);
    };

    let now_s = now.unix_timestamp();
    let leeway_s = leeway.whole_seconds().max(0);
    // Fractional dates are rounded toward refusal: `exp` down, `nbf` up.
    let exp = claims
        .get("exp")
        .and_then(|v| numeric_date(v, false))
        .ok_or(OidcError::Malformed)?;
    if now_s.saturating_sub(leeway_s) >= exp {
        return Err(OidcError::Expired);
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = numeric_date(nbf, true).ok_or(OidcError::Malformed)?;
        if now_s.saturating_add(leeway_s) < nbf {
            return Err(OidcError::NotYetValid);
        }
    }

    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) if !rule.issuer.is_empty() && *iss == rule.issuer => iss.clone(),
        _ => return Err(OidcError::Issuer),
    };

    // `aud` may be one string or an array of them (RFC 7519).
    let audience_ok = !rule.audience.is_empty()
        && match claims.get("aud") {
            Some(Value::String(aud)) => *aud == rule.audience,
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(&rule.audience)),
            _ => false,
        };
    if !audience_ok {
        return Err(OidcError::Audience);
    }

    let subject = match claims.get("sub") {
        Some(Value::String(sub)) => sub.clone(),
        _ => return Err(OidcError::Subject),
    };
    if let Some(pattern) = &rule.subject
        && !writ_policy::string_like(pattern, &subject)
    {
        return Err(OidcError::Subject);
    }

    for (name, pattern) in &rule.claims {
        let matches = match claims.get(name) {
            Some(Value::String(s)) => writ_policy::string_like(pattern, s),
            Some(v @ (Value::Bool(_) | Value::Number(_))) => {
                writ_policy::string_like(pattern, &v.to_string())
            }
            _ => false,
        };
        if !matches {
            return Err(OidcError::Claim(name.clone()));
        }
    }

    Ok(VerifiedOidc {
        issuer,
        subject,
        claims,
    })
}

/// The signature algorithms an ID token may use: asymmetric ones only.
fn is_asymmetric(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

/// Picks the JWKS entry for the token: by `kid`, or the only signing key if there is no `kid`.
/// Among entries with the token's `kid`, the first that fits the algorithm is taken.
fn select_key<'a>(header: &Header, jwks: &'a JwkSet) -> Result<&'a Jwk, OidcError> {
    let signing = jwks.keys.iter().filter(|k| {
        matches!(
            k.common.public_key_use,
            None | Some(PublicKeyUse::Signature)
        )
    });
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => signing
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => {
            let all: Vec<&Jwk> = signing.collect();
            if all.len() != 1 {
                return Err(OidcError::UnknownKey);
            }
            all
        }
    };
    if candidates.is_empty() {
        return Err(OidcError::UnknownKey);
    }
    candidates
        .into_iter()
        .find(|k| key_fits(k, header.alg))
        .ok_or(OidcError::Algorithm)
}

/// Whether `jwk` may verify a signature made with `alg`: its own `alg`, if any, is the same,
/// and its type and curve are the algorithm's.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(key_alg) = jwk.common.key_algorithm
        && key_alg != KeyAlgorithm::from(alg)
    {
        return false;
    }
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => true,
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

/// A NumericDate as whole seconds: an integer, or a finite number rounded down (`round_up`
/// false) or up. Anything else is `None`.
fn numeric_date(value: &Value, round_up: bool) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    if !f.is_finite() {
        return None;
    }
    // `as` saturates at the i64 range.
    Some(if round_up { f.ceil() } else { f.floor() } as i64)
}
