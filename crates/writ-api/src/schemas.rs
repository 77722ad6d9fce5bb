//! The OpenAPI schemas of the types writ-api takes from writ's core crates rather than
//! copying them: the audit log's [`writ_audit::Event`], [`writ_audit::Decision`],
//! [`writ_audit::Outcome`], [`writ_audit::chain::Record`],
//! [`writ_audit::checkpoint::Checkpoint`] and [`writ_audit::checkpoint::PublicKey`], and
//! the policy engine's [`writ_policy::intentions::Intention`] with its permissions.
//!
//! Each is a type that only describes: never built, never sent. Its fields are the wire
//! names of the type it stands for, and a test here fails when the two part (a field
//! added to one and not the other).

#[cfg(test)]
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// The schema of [`writ_audit::Decision`]: what the policy engine decided.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Decision)]
pub enum DecisionSchema {
    /// An allow applied and nothing denied.
    Allowed,
    /// A `Deny` statement matched.
    ExplicitDeny,
    /// Nothing allowed it.
    ImplicitDeny,
}

/// The schema of [`writ_audit::Outcome`]: how a request ended.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Outcome)]
pub enum OutcomeSchema {
    /// It was allowed and done.
    Allowed,
    /// It was refused: authentication failed or policy denied it.
    Denied,
    /// It was allowed but failed (bad input, or an internal error).
    Failed,
}

/// The schema of [`writ_audit::Event`]: one audit event.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = AuditEvent)]
pub struct AuditEventSchema {
    /// When, RFC 3339 in UTC.
    #[schema(format = DateTime)]
    pub time: String,
    /// The server, gateway or agent that recorded it.
    #[serde(default)]
    pub node: Option<String>,
    /// The request it belongs to.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Who: a SPIFFE ID, `token:<hmac>`, or `anonymous`.
    pub actor: String,
    /// How the actor authenticated: `adminToken`, `joinToken`, `oidc`, `x509Svid`,
    /// `jwtSvid`, `hmac`, `apiKey` or `none`.
    pub authenticated_by: String,
    /// The action, e.g. `writ:Invoke`.
    pub action: String,
    /// What it acted on, e.g. `writ:fn/payments`.
    pub resource: String,
    /// The policy decision, for authorization events.
    #[serde(default)]
    pub decision: Option<DecisionSchema>,
    /// The statements that decided it.
    #[serde(default)]
    pub matched: Option<Vec<String>>,
    /// How it ended.
    pub outcome: OutcomeSchema,
    /// Why it was refused or failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The certificate serial issued, for issuance events.
    #[serde(default)]
    pub serial: Option<String>,
    /// Where the request came from.
    #[serde(default)]
    pub source: Option<String>,
    /// How long the request took until the event, in microseconds.
    #[serde(default)]
    pub latency_us: Option<u64>,
    /// For events sent in by a gateway or agent: the identity that sent them (the server
    /// sets it).
    #[serde(default)]
    pub reported_by: Option<String>,
}

/// The schema of [`writ_audit::chain::Record`]: one stored event with its place in the
/// chain.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AuditRecord)]
pub struct AuditRecordSchema {
    /// Its position, from 1.
    pub seq: i64,
    /// The event's JSON, exactly as hashed.
    pub event: String,
    /// The previous record's hash, hex.
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
}

/// The schema of [`writ_audit::checkpoint::Checkpoint`]: a signed statement that the log's
/// event `seq` has hash `hash`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Checkpoint)]
pub struct CheckpointSchema {
    /// The event it covers, and with it every event before.
    pub seq: i64,
    /// That event's hash, hex.
    pub hash: String,
    /// When it was signed, RFC 3339.
    pub time: String,
    /// The signing key's id.
    pub key_id: String,
    /// The ECDSA P-256 SHA-256 signature (fixed-length r||s), hex.
    pub signature: String,
}

/// The schema of [`writ_audit::checkpoint::PublicKey`]: a key that verifies checkpoints.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PublicKey)]
pub struct PublicKeySchema {
    /// Its id.
    pub id: String,
    /// The uncompressed P-256 point, hex.
    pub public_key: String,
}

/// The schema of [`writ_policy::intentions::IntentionAction`].
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = IntentionAction)]
pub enum IntentionActionSchema {
    /// Calls are allowed (subject to the permissions, if any).
    Allow,
    /// Calls are denied.
    Deny,
}

/// The schema of [`writ_policy::intentions::HeaderMatch`]: a condition on one request
/// header, exactly one of `present`, `exact` and `prefix`. Names compare ignoring case;
/// values case-sensitively.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = HeaderMatch)]
pub struct HeaderMatchSchema {
    /// The header's name.
    pub name: String,
    /// `true`: the header is present; `false`: it is absent.
    #[serde(default)]
    pub present: Option<bool>,
    /// The header's value is exactly this.
    #[serde(default)]
    pub exact: Option<String>,
    /// The header's value starts with this.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// The schema of [`writ_policy::intentions::Permission`]: an L7 permission, which matches
/// a request when every condition it gives holds (at least one is required; `pathPrefix`
/// and `pathExact` exclude each other).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = IntentionPermission)]
pub struct PermissionSchema {
    /// The request's method is one of these (upper case).
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// The request's path starts with this.
    #[serde(default)]
    #[schema(pattern = "^/")]
    pub path_prefix: Option<String>,
    /// The request's path is exactly this.
    #[serde(default)]
    #[schema(pattern = "^/")]
    pub path_exact: Option<String>,
    /// Every one of these header conditions holds.
    #[serde(default)]
    pub headers: Option<Vec<HeaderMatchSchema>>,
}

/// The schema of [`writ_policy::intentions::Intention`]: calls from `source` to
/// `destination` are allowed or denied. The most specific intention decides: an exact
/// destination beats `*`, then an exact source beats `*`. An allow with permissions
/// allows only the calls one of them matches, and denies the rest.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = Intention)]
pub struct IntentionSchema {
    /// A function name (1 to 128 of `A-Z a-z 0-9 . - _`) or `*` for any function.
    #[schema(pattern = r"^(\*|[A-Za-z0-9._-]{1,128})$")]
    pub source: String,
    /// A function name (1 to 128 of `A-Z a-z 0-9 . - _`) or `*` for any function.
    #[schema(pattern = r"^(\*|[A-Za-z0-9._-]{1,128})$")]
    pub destination: String,
    /// Allow or deny.
    pub action: IntentionActionSchema,
    /// L7 permissions, only on `allow`.
    #[serde(default)]
    pub permissions: Option<Vec<PermissionSchema>>,
    /// Free text for people (at most 1,024 characters).
    #[serde(default)]
    pub description: Option<String>,
}

/// The names of a schema's properties (an object's, or each part of an `allOf`'s), with
/// whether each is required, from the document's `components` where it refers to one.
#[cfg(test)]
pub(crate) fn properties(
    schema: &serde_json::Value,
    components: &serde_json::Value,
) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    if let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
        let name = r.trim_start_matches("#/components/schemas/");
        return properties(&components[name], components);
    }
    if let Some(parts) = schema.get("allOf").and_then(|a| a.as_array()) {
        for part in parts {
            out.extend(properties(part, components));
        }
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        for name in props.keys() {
            out.insert(name.clone(), required.contains(&name.as_str()));
        }
    }
    out
}

/// The schema of `T`, and the named schemas it refers to, as JSON.
#[cfg(test)]
pub(crate) fn schema_json<T: ToSchema>() -> (serde_json::Value, serde_json::Value) {
    let mut named = Vec::new();
    T::schemas(&mut named);
    named.push((T::name().into(), T::schema()));
    let components: serde_json::Map<String, serde_json::Value> = named
        .into_iter()
        .map(|(n, s)| (n, serde_json::to_value(s).unwrap()))
        .collect();
    let schema = components[T::name().as_ref()].clone();
    (schema, serde_json::Value::Object(components))
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_policy::intentions::{HeaderMatch, Intention, IntentionAction, Permission};

    /// The keys of `value`'s JSON object.
    fn keys(value: impl Serialize) -> Vec<String> {
        let mut k: Vec<String> = serde_json::to_value(value)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    }

    /// `T`'s property names, and which are required.
    fn described<T: ToSchema>() -> BTreeMap<String, bool> {
        let (schema, components) = schema_json::<T>();
        properties(&schema, &components)
    }

    /// Every field of a fully set value is described, every described field is one of
    /// them, and the fields serde always writes are the required ones.
    fn same_fields<T: ToSchema>(full: impl Serialize, least: impl Serialize) {
        let described = described::<T>();
        let names: Vec<String> = described.keys().cloned().collect();
        assert_eq!(keys(full), names, "{}", T::name());
        let required: Vec<String> = described
            .iter()
            .filter(|(_, r)| **r)
            .map(|(n, _)| n.clone())
            .collect();
        assert_eq!(keys(least), required, "{} required", T::name());
    }

    #[test]
    fn the_audit_logs_schemas_describe_its_types() {
        let mut full = writ_audit::Event::new(
            "2026-01-02T03:04:05Z",
            "spiffe://example.org/fn/orders",
            "x509Svid",
            "writ:Invoke",
            "writ:fn/payments",
            writ_audit::Outcome::Allowed,
        );
        let least = full.clone();
        full.node = "gw-1".into();
        full.request_id = "r-1".into();
        full.decision = Some(writ_audit::Decision::Allowed);
        full.matched = vec!["intention orders -> payments".into()];
        full.reason = Some("POST /charge -> 200".into());
        full.serial = Some("0a".into());
        full.source = Some("127.0.0.1".into());
        full.latency_us = Some(12);
        full.reported_by = Some("token:ab".into());
        same_fields::<AuditEventSchema>(&full, &least);
        let record = writ_audit::chain::Record {
            seq: 1,
            event: "{}".into(),
            prev_hash: "00".into(),
            hash: "11".into(),
        };
        same_fields::<AuditRecordSchema>(&record, &record);
        let checkpoint = writ_audit::checkpoint::Checkpoint {
            seq: 1,
            hash: "11".into(),
            time: "2026-01-02T03:04:05Z".into(),
            key_id: "k".into(),
            signature: "ff".into(),
        };
        same_fields::<CheckpointSchema>(&checkpoint, &checkpoint);
        let key = writ_audit::checkpoint::PublicKey {
            id: "k".into(),
            public_key: "04ab".into(),
        };
        same_fields::<PublicKeySchema>(&key, &key);
        for (d, name) in [
            (writ_audit::Decision::Allowed, "allowed"),
            (writ_audit::Decision::ExplicitDeny, "explicitDeny"),
            (writ_audit::Decision::ImplicitDeny, "implicitDeny"),
        ] {
            assert_eq!(serde_json::to_value(d).unwrap(), name);
        }
        let (decision, _) = schema_json::<DecisionSchema>();
        assert_eq!(
            decision["enum"],
            serde_json::json!(["allowed", "explicitDeny", "implicitDeny"])
        );
        let (outcome, _) = schema_json::<OutcomeSchema>();
        assert_eq!(
            outcome["enum"],
            serde_json::json!(["allowed", "denied", "failed"])
        );
    }

    #[test]
    fn the_intentions_schemas_describe_the_policy_engines_types() {
        let header = HeaderMatch {
            name: "x-env".into(),
            present: Some(true),
            exact: Some("prod".into()),
            prefix: Some("p".into()),
        };
        same_fields::<HeaderMatchSchema>(
            &header,
            HeaderMatch {
                name: "x-env".into(),
                ..HeaderMatch::default()
            },
        );
        let permission = Permission {
            methods: vec!["POST".into()],
            path_prefix: Some("/a".into()),
            path_exact: Some("/b".into()),
            headers: vec![header],
        };
        same_fields::<PermissionSchema>(&permission, Permission::default());
        let least = Intention {
            source: "orders".into(),
            destination: "payments".into(),
            action: IntentionAction::Allow,
            permissions: Vec::new(),
            description: None,
        };
        let full = Intention {
            permissions: vec![permission],
            description: Some("d".into()),
            ..least.clone()
        };
        same_fields::<IntentionSchema>(&full, &least);
        let (action, _) = schema_json::<IntentionActionSchema>();
        assert_eq!(action["enum"], serde_json::json!(["allow", "deny"]));
        assert_eq!(serde_json::to_value(IntentionAction::Deny).unwrap(), "deny");
    }
}
