//! The AWS-compatible surfaces' `/v1` routes: a gateway that verifies SigV4 requests
//! signed with writ's temporary AWS credentials asks for the derived signing key of one
//! day, region and service, never for the credentials' secret; an agent asks for its
//! function's credentials, to serve them to AWS SDKs. `Debug` shows no session token,
//! secret or key.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/aws/signing-key`: the credentials a request was signed with (its access key
/// id and `X-Amz-Security-Token`), and the scope of its signature.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SigningKeyRequest {
    /// The access key id (`ASIA…`) of the credential scope.
    pub access_key_id: String,
    /// The session token the request carried (`writ.sts.…`).
    pub session_token: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    /// The credential scope's region.
    pub region: String,
    /// The credential scope's service.
    pub service: String,
}

impl fmt::Debug for SigningKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRequest")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &"(redacted)")
            .field("date", &self.date)
            .field("region", &self.region)
            .field("service", &self.service)
            .finish()
    }
}

/// The SigV4 signing key of live credentials for one day, region and service, and whose
/// credentials they are.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKey {
    /// The derived signing key, 64 lower-case hex digits: it verifies (and makes)
    /// signatures of that scope only.
    pub signing_key: String,
    /// The function the credentials were issued to.
    pub function: String,
    /// Its SPIFFE ID.
    pub spiffe_id: String,
    /// When the credentials expire, RFC 3339.
    #[schema(format = DateTime)]
    pub expiration: String,
    /// The serial (hex) of the X.509-SVID the credentials were issued for, when they were:
    /// they fall with it, so a verifier following the revocation feed drops the key when
    /// that serial is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_svid_serial: Option<String>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("signing_key", &"(redacted)")
            .field("function", &self.function)
            .field("spiffe_id", &self.spiffe_id)
            .field("expiration", &self.expiration)
            .field("x509_svid_serial", &self.x509_svid_serial)
            .finish()
    }
}

/// `POST /v1/aws/credentials`: writ's temporary AWS credentials for the calling function,
/// as writ's STS gives them, for an agent serving them to AWS SDKs on the container
/// credentials endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsCredentialsRequest {
    /// How long they live, 900 to 43200 seconds; 3600 by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// The role session's name (2 to 64 of letters, digits and `_+=,.@-`); the function's
    /// name by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
}

/// Temporary AWS credentials, bound to a function and revoked with it (and with the
/// X.509-SVID that asked for them). `Debug` shows neither the secret nor the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
    /// When they expire, RFC 3339.
    #[schema(format = DateTime)]
    pub expiration: String,
    /// The role they are a session of, `arn:aws:iam::ACCOUNT:role/FUNCTION`.
    pub role_arn: String,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("role_arn", &self.role_arn)
            .finish_non_exhaustive()
    }
}
