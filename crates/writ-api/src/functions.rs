//! The function registry: register, list, show and delete functions, and the attestation
//! rules that say how each may log in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::identity::Jwks;

/// What an OIDC attestation rule requires of a token: exactly one of `jwksUrl` and
/// `jwks`; a subject or claim pattern that is more than wildcards. The server checks the
/// rule when it is registered (`writ_identity::oidc::OidcRule::check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcRule {
    /// The issuer the token's `iss` must equal exactly.
    pub issuer: String,
    /// Where the server fetches the issuer's JWKS: `https://`, or `http://` to loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The issuer's JWKS, given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// The audience that must be in the token's `aud`.
    pub audience: String,
    /// A glob (`*` any run, `?` one character) the token's `sub` must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Further claims, by name, and the glob each must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
}

/// What an AWS IAM attestation rule requires of the caller STS names for a signed
/// GetCallerIdentity request. The server checks the rule when it is registered
/// (`writ_identity::aws_iam::AwsIamRule::check`): the account must be pinned, and a role is
/// named without its path (STS drops it from an assumed role's ARN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsIamRule {
    /// Patterns of the role's ARN (`*` any run, `?` one character), one of which must
    /// match: `arn:aws:iam::123456789012:role/orders-*`.
    pub role_arns: Vec<String>,
    /// The AWS accounts (12 digits) the caller must be in, if given; required when a
    /// pattern leaves the account open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// A pattern the role session's name must match, if given (Lambda names the session
    /// after the function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

/// One way a function may prove itself at login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AttestationRule {
    /// A one-time join token made for the function (`writ token create --fn NAME`).
    JoinToken,
    /// An OIDC ID token from a trusted issuer (GitHub Actions, Kubernetes, Cognito, ...).
    Oidc(OidcRule),
    /// A GetCallerIdentity request signed with the function's AWS credentials, sent on to
    /// STS by the server (`docs/aws.md`, "AWS IAM attestation").
    AwsIam(AwsIamRule),
}

impl AttestationRule {
    /// The method's name: `joinToken`, `oidc` or `awsIam`.
    pub fn method(&self) -> &'static str {
        match self {
            AttestationRule::JoinToken => "joinToken",
            AttestationRule::Oidc(_) => "oidc",
            AttestationRule::AwsIam(_) => "awsIam",
        }
    }
}

/// The rules of a function registered without any: join tokens only.
pub fn default_rules() -> Vec<AttestationRule> {
    vec![AttestationRule::JoinToken]
}

/// `POST /v1/functions`: a registration. Its identity becomes
/// `spiffe://TRUST-DOMAIN/fn/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterFunctionRequest {
    /// 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit.
    pub name: String,
    /// How it may log in (at least one rule); join tokens only when absent. Rules other
    /// than that also need `writ:PutAttestationRules`.
    #[serde(default = "default_rules")]
    pub attestation: Vec<AttestationRule>,
    /// Its X.509-SVIDs' lifetime (`30m`), at most the server's maximum; the server's
    /// default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_ttl: Option<String>,
    /// Identity policies (IAM-language documents, as objects or as their text): what it
    /// may do. None: nothing. They need `writ:PutFunctionPolicy`, and are bounded by the
    /// registering token's own policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<serde_json::Value>,
}

/// `PUT /v1/functions/{name}`'s body: what a registration gives, but the name, replacing
/// what the function had. The function keeps its identity, its SVIDs and its join tokens;
/// what it may do and how it may log in are the new ones from the next call on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateFunctionRequest {
    /// How it may log in (at least one rule); join tokens only when absent. Rules other
    /// than that also need `writ:PutAttestationRules`.
    #[serde(default = "default_rules")]
    pub attestation: Vec<AttestationRule>,
    /// Its X.509-SVIDs' lifetime (`30m`), at most the server's maximum; the server's
    /// default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_ttl: Option<String>,
    /// Identity policies (IAM-language documents, as objects or as their text): what it
    /// may do. None: nothing. They need `writ:PutFunctionPolicy`, and are bounded by the
    /// updating token's own policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<serde_json::Value>,
}

/// An update of the function named in the path: the path's name and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateFunctionFor {
    /// The function.
    pub function: FunctionName,
    /// The body.
    pub request: UpdateFunctionRequest,
}

/// A registered function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Function {
    /// Its name.
    pub name: String,
    /// Its SPIFFE ID.
    pub spiffe_id: String,
    /// How it may log in.
    pub attestation: Vec<AttestationRule>,
    /// Its X.509-SVIDs' lifetime (`1h`).
    pub x509_ttl: String,
    /// Whether the function sets that lifetime itself (`x509Ttl` given when it was
    /// registered or updated); false: it follows the server's default.
    #[serde(default)]
    pub x509_ttl_pinned: bool,
    /// When it was registered (or, for a reinstated function, reinstated), RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was revoked, RFC 3339; `null` while it is not.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// Its identity policies (each as stored: a document, or its text when it is not
    /// JSON).
    #[schema(value_type = Vec<Object>)]
    pub policies: Vec<serde_json::Value>,
    /// The policies of the token that set them, which bound what they allow; `null` when
    /// it has no policies.
    #[schema(value_type = Option<Vec<Object>>)]
    pub permissions_boundary: Option<Vec<serde_json::Value>>,
}

/// `GET /v1/functions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FunctionList {
    /// The registered functions the caller may read (`writ:GetFunction`).
    pub functions: Vec<Function>,
}

/// A route's `{name}` path parameter: a function's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FunctionName(pub String);

impl FunctionName {
    /// The name.
    pub fn new(name: impl Into<String>) -> FunctionName {
        FunctionName(name.into())
    }
}

/// The OpenAPI parameter of a function's name in the path.
pub(crate) fn name_parameter() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    ParameterBuilder::new()
        .name("name")
        .parameter_in(ParameterIn::Path)
        .required(utoipa::openapi::Required::True)
        .description(Some("The function's name"))
        .schema(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some("^[a-z0-9][a-z0-9_-]{0,63}$")),
        ))
        .build()
}
