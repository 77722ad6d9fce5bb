//! Secrets, in the shape of AWS Secrets Manager's API: one `POST` per operation, the
//! secret named in the body (names contain `/`). A value is returned only once its read is
//! durable in the audit log. `Debug` never shows a value.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest value a secret holds, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// `POST /v1/secrets/create`: a new secret and its first version. Exactly one of
/// `secretString` and `secretBinary`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSecretRequest {
    /// The secret's name, e.g. `prod/orders-db`.
    pub name: String,
    /// A text value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    /// A binary value, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(content_encoding = "base64")]
    pub secret_binary: Option<String>,
    /// A description for people.
    #[serde(default)]
    pub description: String,
    /// Tags, by name (string values).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for CreateSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateSecretRequest")
            .field("name", &self.name)
            .field("value", &"(redacted)")
            .field("description", &self.description)
            .field("tags", &self.tags)
            .finish()
    }
}

/// A secret created: its first version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretCreated {
    /// The secret's name.
    pub name: String,
    /// The version, which is `AWSCURRENT`.
    pub version_id: String,
}

/// `POST /v1/secrets/put`: a new version, which becomes `AWSCURRENT`. Exactly one of
/// `secretString` and `secretBinary`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutSecretRequest {
    /// The secret's name.
    pub name: String,
    /// A text value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    /// A binary value, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(content_encoding = "base64")]
    pub secret_binary: Option<String>,
}

impl fmt::Debug for PutSecretRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutSecretRequest")
            .field("name", &self.name)
            .field("value", &"(redacted)")
            .finish()
    }
}

/// A version stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretVersionPut {
    /// The secret's name.
    pub name: String,
    /// The new version.
    pub version_id: String,
    /// Its labels (`AWSCURRENT`).
    pub version_stages: Vec<String>,
}

/// `POST /v1/secrets/get`: a value, `AWSCURRENT` unless a version or a stage is named
/// (not both).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetSecretRequest {
    /// The secret's name.
    pub name: String,
    /// A version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// A staging label, e.g. `AWSPREVIOUS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
}

/// A secret's value: exactly one of `secretString` and `secretBinary`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretValue {
    /// The secret's name.
    pub name: String,
    /// The version.
    pub version_id: String,
    /// Its labels.
    pub version_stages: Vec<String>,
    /// When the version was stored, RFC 3339.
    #[schema(format = DateTime)]
    pub created_date: String,
    /// A text value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    /// A binary value, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(content_encoding = "base64")]
    pub secret_binary: Option<String>,
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("version_id", &self.version_id)
            .field("version_stages", &self.version_stages)
            .field("created_date", &self.created_date)
            .field("value", &"(redacted)")
            .finish()
    }
}

/// A request naming one secret: `describe`, `restore`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretName {
    /// The secret's name.
    pub name: String,
}

/// An answer naming the secret changed: `restore`, `policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretNamed {
    /// The secret's name.
    pub name: String,
}

/// Where a secret's rotation hook is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Hook {
    /// An HTTPS endpoint (`http://` only to loopback), called with `POST` and a JSON body
    /// per step; the server presents its SVID.
    Https {
        /// The endpoint.
        url: String,
    },
    /// A command the server's operator registered with `--rotation-hook NAME=PATH`.
    Command {
        /// Its name.
        name: String,
    },
}

/// How a secret's last rotation went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum LastRotation {
    /// Every step passed: the new version is `AWSCURRENT`.
    #[serde(rename_all = "camelCase")]
    Succeeded {
        /// The new version.
        version_id: String,
        /// When it ended, RFC 3339.
        date: String,
    },
    /// A step failed: `AWSCURRENT` is unchanged.
    #[serde(rename_all = "camelCase")]
    Failed {
        /// The step that failed (`create`, `set`, `test`, `finish`); `null` when it failed
        /// before the steps.
        step: Option<String>,
        /// Why.
        reason: String,
        /// When it ended, RFC 3339.
        date: String,
    },
}

/// A secret's rotation settings and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// The hook.
    pub hook: Hook,
    /// The schedule (`30d`); `null` for on demand only.
    pub every: Option<String>,
    /// When the next scheduled rotation is due, RFC 3339; `null` without a schedule.
    #[schema(format = DateTime)]
    pub next_rotation_date: Option<String>,
    /// How the last rotation went; `null` before the first.
    pub last_rotation: Option<LastRotation>,
}

/// One version, in a description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version.
    pub version_id: String,
    /// Its labels.
    pub version_stages: Vec<String>,
    /// When it was stored, RFC 3339.
    #[schema(format = DateTime)]
    pub created_date: String,
}

/// `POST /v1/secrets/describe`: a secret's metadata and versions, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretDescription {
    /// The secret's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// When it was created, RFC 3339.
    #[schema(format = DateTime)]
    pub created_date: String,
    /// When it last changed, RFC 3339.
    #[schema(format = DateTime)]
    pub last_changed_date: String,
    /// Its resource policy; `null` when it has none.
    #[schema(value_type = Option<Object>)]
    pub resource_policy: Option<serde_json::Value>,
    /// Its rotation; `null` when it has no hook.
    pub rotation: Option<Rotation>,
    /// Its versions.
    pub versions: Vec<VersionInfo>,
}

/// One secret, in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretListEntry {
    /// The secret's name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// When it last changed, RFC 3339.
    #[schema(format = DateTime)]
    pub last_changed_date: String,
}

/// `POST /v1/secrets/list`: every secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecretList {
    /// The secrets.
    pub secrets: Vec<SecretListEntry>,
}

/// `POST /v1/secrets/delete`: schedules the deletion; the secret can be restored within
/// the recovery window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteSecretRequest {
    /// The secret's name.
    pub name: String,
    /// Days it stays restorable, 7 to 30 (30 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_days: Option<i64>,
}

/// A deletion scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretDeleted {
    /// The secret's name.
    pub name: String,
    /// When it is purged, RFC 3339.
    #[schema(format = DateTime)]
    pub deletion_date: String,
}

/// `POST /v1/secrets/rotate`: sets the hook and schedule if given, and rotates now unless
/// told not to. Pointing a secret at a new hook also needs `secrets:GetSecretValue` and
/// `secrets:PutSecretValue` on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecretRequest {
    /// The secret's name.
    pub name: String,
    /// The hook; the stored one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<Hook>,
    /// The schedule (`30d`), or `off` for none; unchanged when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Whether to rotate now (true when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_now: Option<bool>,
}

/// What a rotation request did: rotated (with the new version), or only changed the
/// settings (with them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotated {
    /// The secret's name.
    pub name: String,
    /// Whether it rotated now.
    pub rotated: bool,
    /// When it rotated: the new version, which is `AWSCURRENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// When it did not: the settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

/// `POST /v1/secrets/policy`: sets the secret's resource policy, or removes it (`null`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretPolicyRequest {
    /// The secret's name.
    pub name: String,
    /// The policy (a document, or its text); `null` removes it.
    #[schema(value_type = Option<Object>)]
    pub policy: Option<serde_json::Value>,
}
