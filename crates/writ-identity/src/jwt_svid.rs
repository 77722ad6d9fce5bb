//! JWT-SVIDs: short-lived ES256 tokens that carry a SPIFFE ID for one audience, minted on
//! demand, and verified against the trust domain's JWKS.
//!
//! Verification accepts only ES256 with a `kid` found in the bundle, so `alg: none`, HMAC
//! tokens keyed with a public key, and tokens from unknown keys are refused before any claim
//! is read. Time is passed in: expiry and not-before are checked against the caller's clock
//! with an explicit leeway.
//!
//! A token is accepted for one audience: by default its `aud` must be exactly the
//! verifier's (one string, or an array of one), so that whoever receives a token cannot
//! replay it to another of the audiences it names. A verifier that means to accept tokens
//! naming several audiences says so with [`AudienceRule::AllowMultiple`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::spiffe_id::{SpiffeId, TrustDomain};

/// The lifetime of a JWT-SVID when none is asked for.
pub const DEFAULT_JWT_TTL: Duration = Duration::minutes(5);

/// Why a JWT-SVID could not be minted or was refused. Messages never include the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// No audience was given; a JWT-SVID is always for someone.
    #[error("a JWT-SVID needs at least one audience")]
    NoAudience,
    /// The requested lifetime is zero or negative.
    #[error("the requested lifetime must be positive")]
    BadLifetime,
    /// The token is not a well-formed JWS.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header names an algorithm other than ES256 (including `none`).
    #[error("the token's algorithm is not ES256")]
    Algorithm,
    /// The header has no `kid`, or no key in the bundle has it.
    #[error("the token's key id is missing or not in the trust bundle")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// The token has expired.
    #[error("the token has expired")]
    Expired,
    /// The token is not valid yet.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token is not for this audience (or its `aud` claim is missing or malformed).
    #[error("the token is not for this audience")]
    Audience,
    /// The token names several audiences, and the verifier accepts only tokens for itself
    /// alone ([`AudienceRule::Exactly`]).
    #[error(
        "the token names more than one audience; only a token for this audience alone is accepted"
    )]
    MultipleAudiences,
    /// `sub` is not a SPIFFE ID of the trust domain.
    #[error("the token's subject is not a SPIFFE ID of this trust domain")]
    Subject,
    /// The cryptographic library failed; the message carries no secret.
    #[error("could not sign the token: {0}")]
    Signing(String),
}

/// The claims of a JWT-SVID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtSvidClaims {
    /// The SPIFFE ID.
    pub sub: String,
    /// The audiences.
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The serial (lowercase hex) of the X.509-SVID that authenticated the minting, when
    /// it was minted with one: revoking that serial revokes this token too.
    #[serde(
        rename = "x509_svid_serial",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub x509_svid_serial: Option<String>,
}

/// A JWT signing key of a trust domain.
pub struct JwtAuthority {
    trust_domain: TrustDomain,
    pkcs8: Vec<u8>,
    signer: EcdsaKeyPair,
    rng: SystemRandom,
    jwk: Jwk,
    kid: String,
}

impl std::fmt::Debug for JwtAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("JwtAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtAuthority {
    /// Generates an ECDSA P-256 signing key for `trust_domain`. Its `kid` is the key's
    /// RFC 7638 thumbprint, so the same key always has the same id.
    pub fn generate(trust_domain: &TrustDomain) -> Result<JwtAuthority, JwtError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| JwtError::Signing("key generation failed".into()))?;
        JwtAuthority::from_pkcs8_der(trust_domain, pkcs8.as_ref())
    }

    /// Loads a key saved with [`JwtAuthority::pkcs8_der`]: an ECDSA P-256 key in PKCS#8.
    pub fn from_pkcs8_der(
        trust_domain: &TrustDomain,
        pkcs8: &[u8],
    ) -> Result<JwtAuthority, JwtError> {
        let rng = SystemRandom::new();
        let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|_| JwtError::Signing("not an ECDSA P-256 PKCS#8 key".into()))?;
        let encoding = EncodingKey::from_ec_der(pkcs8);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .map_err(|e| JwtError::Signing(e.to_string()))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| JwtError::Signing(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        Ok(JwtAuthority {
            trust_domain: trust_domain.clone(),
            pkcs8: pkcs8.to_vec(),
            signer,
            rng,
            jwk,
            kid,
        })
    }

    /// The private key as PKCS#8 DER, to be wrapped before it is stored.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key id, as tokens name it in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, for the trust bundle.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// Mints a JWT-SVID for `id`, for the given audiences, valid from `now` for `ttl`.
    pub fn mint(
        &self,
        id: &SpiffeId,
        audience: &[&str],
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<String, JwtError> {
        self.mint_claims(id, audience, now, ttl, None)
    }

    /// Mints a JWT-SVID as [`JwtAuthority::mint`] does, bound to the X.509-SVID whose
    /// `serial` (hex) authenticated the request: verifiers that follow revocations refuse
    /// it once that serial is revoked.
    pub fn mint_bound(
        &self,
        id: &SpiffeId,
        audience: &[&str],
        now: OffsetDateTime,
        ttl: Duration,
        serial: &str,
    ) -> Result<String, JwtError> {
        self.mint_claims(id, audience, now, ttl, Some(serial.to_ascii_lowercase()))
    }

    fn mint_claims(
        &self,
        id: &SpiffeId,
        audience: &[&str],
        now: OffsetDateTime,
        ttl: Duration,
        x509_svid_serial: Option<String>,
    ) -> Result<String, JwtError> {
        if audience.is_empty() || audience.iter().any(|a| a.is_empty()) {
            return Err(JwtError::NoAudience);
        }
        if ttl <= Duration::ZERO {
            return Err(JwtError::BadLifetime);
        }
        if id.trust_domain() != self.trust_domain.as_str() {
            return Err(JwtError::Subject);
        }
        let claims = JwtSvidClaims {
            sub: id.to_string(),
            aud: audience.iter().map(|a| a.to_string()).collect(),
            exp: (now + ttl).unix_timestamp(),
            iat: now.unix_timestamp(),
            x509_svid_serial,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".into());
        header.kid = Some(self.kid.clone());
        // The JWS is assembled here and signed with ring, the crypto library the rest of
        // writ signs with: jsonwebtoken's pure-Rust ES256 signer is several times slower, and
        // minting is on the hot path. Verification still goes through jsonwebtoken.
        let mut token = base64_json(&header)?;
        token.push('.');
        token.push_str(&base64_json(&claims)?);
        let signature = self
            .signer
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| JwtError::Signing("ECDSA signing failed".into()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }
}

/// A JWS part: JSON, then base64url without padding.
fn base64_json<T: Serialize>(value: &T) -> Result<String, JwtError> {
    let bytes = serde_json::to_vec(value).map_err(|e| JwtError::Signing(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The audiences of an `aud` claim (one string or an array of strings, RFC 7519), if
/// `rule` accepts it for `audience`. An array with anything but strings in it is refused
/// rather than read in part.
fn audiences(
    claim: Option<&serde_json::Value>,
    audience: &str,
    rule: AudienceRule,
) -> Result<Vec<String>, JwtError> {
    let aud: Vec<String> = match claim {
        Some(serde_json::Value::String(a)) => vec![a.clone()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or(JwtError::Audience))
            .collect::<Result<_, _>>()?,
        _ => return Err(JwtError::Audience),
    };
    if !aud.iter().any(|a| a == audience) {
        return Err(JwtError::Audience);
    }
    if aud.len() > 1 && rule == AudienceRule::Exactly {
        return Err(JwtError::MultipleAudiences);
    }
    Ok(aud)
}

/// Builds a JWKS from signing keys: what the server publishes as the JWT bundle.
pub fn jwks<'a>(authorities: impl IntoIterator<Item = &'a JwtAuthority>) -> JwkSet {
    JwkSet {
        keys: authorities.into_iter().map(|a| a.jwk.clone()).collect(),
    }
}

/// Which `aud` claims a verifier accepts, besides naming its own audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AudienceRule {
    /// `aud` is the expected audience alone: one string, or an array of exactly one
    /// string. A token naming other audiences as well is refused, so no other audience
    /// that received it can replay it here. The default, and what the server requires.
    #[default]
    Exactly,
    /// `aud` is the expected audience, or an array of strings that contains it among
    /// others. Only for a verifier whose operator accepts that every other audience the
    /// token names could replay it here.
    AllowMultiple,
}

/// Verifies a JWT-SVID against a JWKS: ES256 only, a known `kid`, a valid signature,
/// `aud` exactly `audience` ([`AudienceRule::Exactly`]), `exp` after and `iat`/`nbf` before
/// `now` (with `leeway`), and `sub` a SPIFFE ID of `trust_domain`. Returns the SPIFFE ID
/// and the claims. [`verify_with`] takes another [`AudienceRule`].
pub fn verify(
    token: &str,
    bundle: &JwkSet,
    trust_domain: &TrustDomain,
    audience: &str,
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<(SpiffeId, JwtSvidClaims), JwtError> {
    verify_with(
        token,
        bundle,
        trust_domain,
        audience,
        AudienceRule::Exactly,
        now,
        leeway,
    )
}

/// Verifies a JWT-SVID as [`verify`] does, with `rule` deciding which `aud` claims are
/// accepted for `audience`.
pub fn verify_with(
    token: &str,
    bundle: &JwkSet,
    trust_domain: &TrustDomain,
    audience: &str,
    rule: AudienceRule,
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<(SpiffeId, JwtSvidClaims), JwtError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
    if header.alg != Algorithm::ES256 {
        return Err(JwtError::Algorithm);
    }
    let kid = header.kid.ok_or(JwtError::UnknownKey)?;
    let jwk = bundle.find(&kid).ok_or(JwtError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| JwtError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::ES256);
    // Time and audience are checked below against the caller's clock and rules.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data =
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtError::Algorithm,
            _ => JwtError::Malformed,
        })?;
    let claims = &data.claims;
    let exp = claims
        .get("exp")
        .and_then(serde_json::Value::as_i64)
        .ok_or(JwtError::Malformed)?;
    let iat = claims
        .get("iat")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(i64::MIN);
    let nbf = claims
        .get("nbf")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(i64::MIN);
    let now_s = now.unix_timestamp();
    let leeway_s = leeway.whole_seconds().max(0);
    if now_s.saturating_sub(leeway_s) >= exp {
        return Err(JwtError::Expired);
    }
    if now_s.saturating_add(leeway_s) < nbf.max(iat) {
        return Err(JwtError::NotYetValid);
    }
    let aud = audiences(claims.get("aud"), audience, rule)?;
    let sub = claims
        .get("sub")
        .and_then(serde_json::Value::as_str)
        .ok_or(JwtError::Subject)?;
    let id = SpiffeId::parse(sub).map_err(|_| JwtError::Subject)?;
    if id.trust_domain() != trust_domain.as_str() {
        return Err(JwtError::Subject);
    }
    let claims = JwtSvidClaims {
        sub: sub.to_string(),
        aud,
        exp,
        iat: if iat == i64::MIN { 0 } else { iat },
        x509_svid_serial: claims
            .get("x509_svid_serial")
            .and_then(serde_json::Value::as_str)
            .map(str::to_ascii_lowercase),
    };
    Ok((id, claims))
}
