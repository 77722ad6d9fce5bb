//! The declarative format: what one configuration file holds, read the same from TOML and
//! YAML (docs/config.md), and the canonical state [`crate::config::diff`] compares.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use writ_api::functions::{AttestationRule, default_rules};
use writ_api::secrets::Hook;
use writ_policy::intentions::Intention;

/// One configuration file: functions, intentions and secrets' metadata. Every collection
/// may be absent; declarations of one kind may be spread over several files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    /// Functions: name, attestation rules, SVID lifetime, identity policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<FunctionDecl>,
    /// Intentions: which function may call which.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intentions: Vec<Intention>,
    /// Secrets' metadata and resource policies; never a value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretDecl>,
}

/// A function as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionDecl {
    /// Its name.
    pub name: String,
    /// How it may log in; join tokens only when absent.
    #[serde(default = "default_rules")]
    pub attestation: Vec<AttestationRule>,
    /// Its X.509-SVIDs' lifetime (`30m`); the server's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_ttl: Option<String>,
    /// Its identity policies: IAM-language documents, as tables/mappings or as JSON text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Value>,
}

/// A secret as declared: its metadata and resource policy, never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretDecl {
    /// Its name (`prod/orders-db`).
    pub name: String,
    /// Its description. writ has no call that changes a secret's description, so a
    /// difference is reported and left as it is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Its resource policy: an IAM-language document (a table/mapping or JSON text);
    /// none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<Value>,
    /// Its rotation: the hook and the schedule. When absent, the server's rotation is
    /// left as it is (writ has no call that removes a rotation hook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSpec>,
}

/// A secret's rotation settings, as declared and compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotationSpec {
    /// The hook that makes and installs new values (docs/secrets.md).
    pub hook: Hook,
    /// The schedule (`30d`); on demand only when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
}

/// A function in the canonical form the diff compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// How it may log in.
    pub attestation: Vec<AttestationRule>,
    /// Its SVID lifetime in canonical form (`1h`, `90s`), or none for the server's default.
    pub x509_ttl: Option<String>,
    /// Its identity policies, each a JSON document (a text that is not JSON stays text).
    pub policies: Vec<Value>,
}

/// A secret in the canonical form the diff compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    /// Its description.
    pub description: String,
    /// Its resource policy, as a JSON document.
    pub resource_policy: Option<Value>,
    /// Its rotation, the schedule in canonical form; none: not declared (or, on the
    /// server, none set).
    pub rotation: Option<RotationSpec>,
}

/// Everything the configuration manages, canonical: as declared, or as the server has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Functions by name.
    pub functions: BTreeMap<String, FunctionSpec>,
    /// Intentions by `(source, destination)`.
    #[serde(with = "intention_map")]
    pub intentions: BTreeMap<(String, String), Intention>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, SecretSpec>,
    /// The functions that are revoked (server state only: apply neither revokes nor
    /// reinstates).
    pub revoked: Vec<String>,
}

/// A policy as JSON: a document given as text is read as JSON when it is JSON.
pub fn policy_value(given: &Value) -> Value {
    match given {
        Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| given.clone()),
        other => other.clone(),
    }
}

impl State {
    /// The state as a document, for `writ export`: everything in name order.
    pub fn to_document(&self) -> Document {
        Document {
            functions: self
                .functions
                .iter()
                .map(|(name, f)| FunctionDecl {
                    name: name.clone(),
                    attestation: f.attestation.clone(),
                    x509_ttl: f.x509_ttl.clone(),
                    policies: f.policies.clone(),
                })
                .collect(),
            intentions: self.intentions.values().cloned().collect(),
            secrets: self
                .secrets
                .iter()
                .map(|(name, s)| SecretDecl {
                    name: name.clone(),
                    description: s.description.clone(),
                    resource_policy: s.resource_policy.clone(),
                    rotation: s.rotation.clone(),
                })
                .collect(),
        }
    }

    /// A fingerprint of the state: SHA-256 of its canonical JSON, in hex. Two reads of
    /// the same state give the same fingerprint; any change to what the configuration
    /// manages (or to which functions are revoked) changes it.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = ring::digest::digest(&ring::digest::SHA256, &json);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Intentions keyed by their pair, written as a list (JSON maps take string keys only).
mod intention_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use writ_policy::intentions::Intention;

    type Map = BTreeMap<(String, String), Intention>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        map.values().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let list = Vec::<Intention>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|i| ((i.source.clone(), i.destination.clone()), i))
            .collect())
    }
}
