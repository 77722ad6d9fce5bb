//! Functions' identities: the trust bundle, logging in with an attestation, renewing the
//! X.509-SVID and minting JWT-SVIDs over mutual TLS, and the revocation feed.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A JSON Web Key Set: the keys that verify JWT-SVIDs (or an OIDC issuer's ID tokens).
/// Each key is kept as the server sends it (`kty`, `kid`, `alg`, `crv`, `x`, `y`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    /// The keys.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// `GET /v1/bundle`: the trust bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// The trust domain.
    pub trust_domain: String,
    /// The CA certificates (PEM, concatenated): every CA published now, old and new
    /// through a rotation's overlap.
    pub x509_bundle: String,
    /// The keys that verify JWT-SVIDs.
    pub jwks: Jwks,
}

/// The proof a login presents. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Evidence {
    /// A one-time join token (`writ.join.<id>.<secret>`).
    JoinToken {
        /// The whole token.
        token: String,
    },
    /// An OIDC ID token from an issuer one of the function's rules trusts.
    Oidc {
        /// The JWT.
        token: String,
    },
    /// A GetCallerIdentity request signed with the function's AWS credentials, which the
    /// server sends on to its own STS endpoint.
    AwsIam {
        /// The signed request.
        request: AwsSignedRequest,
    },
}

impl Evidence {
    /// The method's name, as the server's audit events name it: `joinToken`, `oidc` or
    /// `awsIam`.
    pub fn method(&self) -> &'static str {
        match self {
            Evidence::JoinToken { .. } => "joinToken",
            Evidence::Oidc { .. } => "oidc",
            Evidence::AwsIam { .. } => "awsIam",
        }
    }
}

impl fmt::Debug for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Evidence({})", self.method())
    }
}

/// An `sts:GetCallerIdentity` request signed (SigV4) with the function's AWS credentials,
/// as it would be sent to STS. It must sign `host` (the server's STS endpoint), `x-amz-date`
/// and `x-writ-server-id` (the writ server's id: its trust domain unless configured
/// otherwise). `Debug` shows header names only: the values carry the session token and the
/// signature.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSignedRequest {
    /// `POST`.
    pub method: String,
    /// The URL it was signed for, `https://sts.us-east-1.amazonaws.com/`; the server sends
    /// it to its own STS endpoint, which must be this one.
    pub url: String,
    /// Every header, by lower-case name: `host`, `x-amz-date`, `x-writ-server-id`,
    /// `content-type`, `authorization`, and `x-amz-security-token` for temporary
    /// credentials.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body, base64 (standard, padded): `Action=GetCallerIdentity&Version=2011-06-15`.
    pub body: String,
}

impl fmt::Debug for AwsSignedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// `POST /v1/login`: a function proves itself and asks for an X.509-SVID for the key it
/// keeps (the CSR's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    /// The function's name.
    pub function: String,
    /// Its proof.
    pub attestation: Evidence,
    /// A PKCS#10 CSR, PEM: ECDSA P-256 or P-384, or Ed25519.
    pub csr: String,
}

/// `POST /v1/svid/x509`: a renewal, authenticated by the current SVID over mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenewRequest {
    /// A PKCS#10 CSR, PEM, for a new key.
    pub csr: String,
}

/// An X.509-SVID as issued by a login or a renewal, with the trust bundle current then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Svid {
    /// The function's SPIFFE ID, `spiffe://TRUST-DOMAIN/fn/NAME`.
    pub spiffe_id: String,
    /// The certificate, PEM.
    pub x509_svid: String,
    /// Its serial number, lowercase hex, as the revocation feed names it.
    pub serial: String,
    /// When it expires, RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The CA certificates, PEM.
    pub x509_bundle: String,
    /// The keys that verify JWT-SVIDs.
    pub jwks: Jwks,
}

/// One audience, or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several (at least one).
    Many(Vec<String>),
}

/// `POST /v1/svid/jwt`: a JWT-SVID for an audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MintJwtRequest {
    /// Whom the token is for (each 1 to 256 characters).
    pub audience: Audience,
    /// Its lifetime (`90s`, `5m`); the server's default when absent, at most its maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A JWT-SVID. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtSvid {
    /// The function's SPIFFE ID.
    pub spiffe_id: String,
    /// The token (a JWT).
    pub token: String,
    /// When it expires, RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl fmt::Debug for JwtSvid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("token", &"(redacted)")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// `GET /v1/revocations`: the entries after a position; with `wait`, a long poll that
/// answers as soon as there is one, or after `wait` seconds with none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Entries after this position (the `next` of the previous answer); 0 for all.
    #[serde(default)]
    pub after: i64,
    /// How long to wait for an entry when there is none, in seconds (0 to 60).
    #[serde(default)]
    pub wait: u64,
}

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RevocationKind {
    /// A function, by SPIFFE ID: every SVID it was issued before the revocation.
    Function,
    /// One X.509-SVID, by serial number (lowercase hex).
    Serial,
    /// A join or admin token, by id.
    Token,
}

impl RevocationKind {
    /// The name on the wire: `function`, `serial` or `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Function => "function",
            RevocationKind::Serial => "serial",
            RevocationKind::Token => "token",
        }
    }
}

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// Its position in the feed; later entries have larger numbers.
    pub seq: i64,
    /// What it names.
    pub kind: RevocationKind,
    /// The SPIFFE ID, serial or token id.
    pub value: String,
    /// When it was revoked, Unix seconds. For a function, SVIDs issued before it are no
    /// longer valid.
    pub revoked_at: i64,
}

/// The revocation feed's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Feed {
    /// The entries, oldest first (at most 1,000).
    pub entries: Vec<Revocation>,
    /// The position to pass as `after` next time.
    pub next: i64,
}

/// `POST /v1/revocations`: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeRequest {
    /// A function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// An X.509-SVID's serial number, hex (colons allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// A token's id (24 hex digits, the part after `writ.KIND.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
}

/// A revocation made: its feed entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    /// The entry, as followers will read it.
    pub revocation: Revocation,
}
