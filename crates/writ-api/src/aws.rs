//! The AWS-compatible surfaces' one `/v1` route: a gateway that verifies SigV4 requests
//! signed with writ's temporary AWS credentials asks for the derived signing key of one
//! day, region and service, never for the credentials' secret. `Debug` shows neither the
//! session token nor the key.

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
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("signing_key", &"(redacted)")
            .field("function", &self.function)
            .field("spiffe_id", &self.spiffe_id)
            .field("expiration", &self.expiration)
            .finish()
    }
}
