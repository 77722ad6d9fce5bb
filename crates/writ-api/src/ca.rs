//! The trust domain's signing keys: the X.509 CA and the JWT-SVID key, shown and rotated.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::identity::Jwks;

/// Which kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyKind {
    /// The CA that signs X.509-SVIDs.
    X509,
    /// The key that signs JWT-SVIDs.
    Jwt,
}

impl KeyKind {
    /// The name on the wire: `x509` or `jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::X509 => "x509",
            KeyKind::Jwt => "jwt",
        }
    }
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyStatus {
    /// It signs now.
    Signing,
    /// It is published, and signs from `activeFrom`.
    Prepared,
    /// A newer key signs; it stays published until what it signed has expired.
    Retiring,
}

impl KeyStatus {
    /// The name on the wire: `signing`, `prepared` or `retiring`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Signing => "signing",
            KeyStatus::Prepared => "prepared",
            KeyStatus::Retiring => "retiring",
        }
    }
}

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaKey {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: KeyKind,
    /// Where it is in its life.
    pub status: KeyStatus,
    /// When it signs from, RFC 3339.
    #[schema(format = DateTime)]
    pub active_from: String,
    /// When it leaves the bundle, RFC 3339; `null` while no newer key replaces it.
    #[schema(format = DateTime)]
    pub published_until: Option<String>,
}

/// `GET /v1/ca` and `POST /v1/ca/rotate`: the keys and the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ca {
    /// The trust domain.
    pub trust_domain: String,
    /// The published keys, X.509 first.
    pub keys: Vec<CaKey>,
    /// The CA certificates, PEM.
    pub x509_bundle: String,
    /// The keys that verify JWT-SVIDs.
    pub jwks: Jwks,
}

/// Which keys a rotation makes anew.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum RotateKind {
    /// The X.509 CA.
    X509,
    /// The JWT-SVID key.
    Jwt,
    /// Both, together or not at all.
    #[default]
    All,
}

impl RotateKind {
    /// The kind named `name` on the wire (`x509`, `jwt` or `all`).
    pub fn from_name(name: &str) -> Option<RotateKind> {
        match name {
            "x509" => Some(RotateKind::X509),
            "jwt" => Some(RotateKind::Jwt),
            "all" => Some(RotateKind::All),
            _ => None,
        }
    }
}

/// `POST /v1/ca/rotate`: a new key is published at once and signs after
/// `activateAfter`; the old one stays in the bundle until everything it signed has
/// expired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateCaRequest {
    /// Which keys; `all` when absent.
    #[serde(default)]
    pub kind: RotateKind,
    /// How long the new key is published before it signs (`1m` when absent, `0s` at
    /// once, at most `30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activate_after: Option<String>,
}
