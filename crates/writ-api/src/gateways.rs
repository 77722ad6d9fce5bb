//! Gateways' own identities: an operator registers a gateway with the names it serves and
//! how it proves itself; the gateway then logs in as `spiffe://TRUST-DOMAIN/writ/gateway/NAME`
//! and is issued an X.509-SVID that also carries those DNS names and IP addresses, which it
//! serves as its TLS certificate and renews over mutual TLS.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::functions::AttestationRule;
use crate::identity::Evidence;
use crate::tokens::JoinTokenRequest;

/// `POST /v1/gateways`: a registration. The gateway's identity becomes
/// `spiffe://TRUST-DOMAIN/writ/gateway/NAME`, which no function can log in as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterGatewayRequest {
    /// 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit.
    pub name: String,
    /// How it may log in (at least one rule); join tokens only when absent.
    #[serde(default = "crate::functions::default_rules")]
    pub attestation: Vec<AttestationRule>,
    /// The DNS names its certificate carries (no wildcards). With `ips`, at least one name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// The IP addresses its certificate carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// Its X.509-SVIDs' lifetime (`1h`), at most the server's maximum; the server's
    /// default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_ttl: Option<String>,
}

/// A registered gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gateway {
    /// Its name.
    pub name: String,
    /// Its SPIFFE ID, `spiffe://TRUST-DOMAIN/writ/gateway/NAME`.
    pub spiffe_id: String,
    /// How it may log in.
    pub attestation: Vec<AttestationRule>,
    /// The DNS names its certificate carries.
    pub dns: Vec<String>,
    /// The IP addresses its certificate carries.
    pub ips: Vec<String>,
    /// Its X.509-SVIDs' lifetime (`1h`).
    pub x509_ttl: String,
    /// When it was registered, RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `GET /v1/gateways`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GatewayList {
    /// Every registered gateway.
    pub gateways: Vec<Gateway>,
}

/// A route's `{name}` path parameter: a gateway's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatewayName(pub String);

/// A join token request for a gateway: the path's `{name}` and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayJoinTokenFor {
    /// The gateway.
    pub gateway: GatewayName,
    /// The body.
    pub request: JoinTokenRequest,
}

/// `POST /v1/gateway/login`: a gateway proves itself and asks for an X.509-SVID for the
/// key it keeps (the CSR's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayLoginRequest {
    /// The gateway's name.
    pub gateway: String,
    /// Its proof: a join token made for the gateway, an OIDC token or a signed AWS
    /// request its rules accept.
    pub attestation: Evidence,
    /// A PKCS#10 CSR, PEM: ECDSA P-256 or P-384, or Ed25519. It may ask for the gateway's
    /// SPIFFE ID and its registered DNS names and IP addresses, nothing else.
    pub csr: String,
}

/// The OpenAPI parameter of a gateway's name in the path.
pub(crate) fn gateway_name_parameter() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    ParameterBuilder::new()
        .name("name")
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .description(Some("The gateway's name"))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^[a-z0-9][a-z0-9_-]{0,63}$")),
        ))
        .build()
}
