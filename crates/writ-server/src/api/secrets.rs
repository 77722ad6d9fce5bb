//! Secrets, in the shape of AWS Secrets Manager's API: one POST per operation, the secret
//! named in the body (names contain `/`). Callers are functions (by their X.509-SVID over
//! mTLS, or a JWT-SVID for the server's audience as a bearer token) and operators (by
//! admin token). A function's access is decided by the policy engine from its identity
//! policies and the secret's resource policy, on the resource `writ:secret/NAME`; default
//! deny. Every read and change is audited, and a value is returned only once its read is
//! durable in the audit log.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use writ_api::secrets::{
    DeleteSecretRequest, GetSecretRequest, PutSecretRequest, Rotated, Rotation, SecretCreated,
    SecretDeleted, SecretDescription, SecretList, SecretListEntry, SecretName, SecretNamed,
    SecretPolicyRequest, SecretValue, SecretVersionPut, VersionInfo,
};
use writ_audit::{Decision, Outcome};
use writ_policy::{CompiledPolicy, ParseOptions, PolicyKind};
use writ_secrets::envelope::{self, KeyWrapper, Sealed, WrapError};
use writ_secrets::model::{self, AWSCURRENT, MAX_VALUE_BYTES};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::master_key::MasterKey;
use crate::rotation::{self, Hook, RotationConfig};
use crate::state::AppState;
use crate::store::{Applied, SecretChange, SecretRecord, VersionRecord};
use crate::tls::ConnInfo;

/// The master key wraps data keys, bound to their secret and version.
impl KeyWrapper for MasterKey {
    fn wrap(&self, context: &str, key: &[u8]) -> Result<Vec<u8>, WrapError> {
        self.seal(context, key)
            .map_err(|e| WrapError::Failed(e.to_string()))
    }
    fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Vec<u8>, WrapError> {
        self.open(context, wrapped).map_err(|e| match e {
            crate::master_key::MasterKeyError::Unwrap(_) => WrapError::Mismatch,
            other => WrapError::Failed(other.to_string()),
        })
    }
}

/// A policy compiled from its text, from [`crate::cache::Caches::policies`] when it was
/// compiled before, so a function's read does not re-parse them.
pub(crate) fn compiled(
    state: &AppState,
    kind: PolicyKind,
    text: &str,
) -> Result<Arc<CompiledPolicy>, String> {
    let key = (kind, text.to_string());
    if let Some(p) = state.caches.policies.get(&key) {
        return Ok(p);
    }
    let policy = writ_policy::parse(text, &ParseOptions::new(kind))
        .into_result()
        .map_err(|d| {
            d.iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
    let name = match kind {
        PolicyKind::Resource => "resource policy",
        PolicyKind::PermissionsBoundary => "permissions boundary",
        _ => "identity policy",
    };
    let compiled = Arc::new(CompiledPolicy::new(name, kind, &policy).map_err(|e| e.to_string())?);
    state.caches.policies.insert(key, compiled.clone());
    Ok(compiled)
}

/// A secret's record (or its absence) and labels: from the cache when read within
/// [`crate::cache::SECRET_TTL`] (writes through this server drop it at once; other
/// servers' writes are seen within that time), else from the store.
pub(crate) async fn secret_meta(
    state: &AppState,
    name: &str,
) -> Result<(Option<SecretRecord>, model::Labels), ApiError> {
    if let Some(hit) = state.caches.secrets.get(name) {
        return Ok(hit);
    }
    let record = state.store.secret(name).await?;
    let labels = match &record {
        Some(_) => state.store.secret_labels(name).await?,
        None => model::Labels::default(),
    };
    state
        .caches
        .secrets
        .insert(name.to_string(), (record.clone(), labels.clone()));
    Ok((record, labels))
}

/// A version's sealed bytes: versions never change, so they are kept until the cache is
/// full.
async fn secret_version(
    state: &AppState,
    name: &str,
    version_id: &str,
) -> Result<Option<VersionRecord>, ApiError> {
    let key = (name.to_string(), version_id.to_string());
    if let Some(v) = state.caches.secret_versions.get(&key) {
        return Ok(Some(v));
    }
    let found = state.store.secret_version(name, version_id).await?;
    if let Some(v) = &found {
        state.caches.secret_versions.insert(key, v.clone());
    }
    Ok(found)
}

/// The largest request body for create and put: a 64 KiB value in base64, with room for
/// the JSON around it.
pub const MAX_VALUE_BODY_BYTES: usize = 128 * 1024;

/// Who is asking, once authorized.
struct Caller {
    actor: String,
    authenticated_by: &'static str,
    decision: Decision,
    matched: Vec<String>,
}

fn resource(name: &str) -> String {
    format!("writ:secret/{name}")
}

/// The caller as this module audits it, from the access layer's grant of `action`, and
/// the secret's record, read after the decision (a denial is the same 403 whether the
/// secret exists or not, so callers cannot learn which names exist).
async fn granted(
    state: &AppState,
    auth: &Authorized,
    action: &'static str,
    name: Option<&str>,
) -> Result<(Caller, Option<SecretRecord>), ApiError> {
    let grant = auth.grant(action).ok_or_else(|| {
        ApiError::internal("a secrets route was reached without its decision", action)
    })?;
    let secret = match name {
        Some(n) => crate::api::secrets::secret_meta(state, n).await?.0,
        None => None,
    };
    let caller = Caller {
        actor: auth.caller.actor.clone(),
        authenticated_by: auth.caller.authenticated_by,
        decision: grant.decision,
        matched: grant.matched.clone(),
    };
    Ok((caller, secret))
}

/// The audit event of an allowed operation.
fn allowed_event(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    action: &'static str,
    res: &str,
    detail: Option<String>,
) -> writ_audit::Event {
    let mut event = state.event(
        conn,
        &caller.actor,
        caller.authenticated_by,
        action,
        res,
        Outcome::Allowed,
    );
    event.decision = Some(caller.decision);
    event.matched = caller.matched.clone();
    event.reason = detail;
    event
}

/// Audits an allowed operation and waits until the event is durable.
async fn audited(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    action: &'static str,
    res: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    let event = allowed_event(state, conn, caller, action, res, detail);
    state.audit.record_durable(event).await?;
    Ok(())
}

/// Makes a change to a secret and records its allowed event in one transaction, and waits
/// until it is committed: the change is stored only with its event. The secret's labels
/// after it, for changes that move them; a change that finds nothing to change (the
/// secret is gone, ...) is a 404 and stores nothing.
#[allow(clippy::too_many_arguments)]
async fn change_audited(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    action: &'static str,
    name: &str,
    detail: Option<String>,
    change: SecretChange,
) -> Result<Option<model::Labels>, ApiError> {
    let event = allowed_event(state, conn, caller, action, &resource(name), detail);
    let applied = state.audit.record_change(event, change).await;
    // Whatever happened, this server's cached view of the secret may be stale now.
    state.caches.forget_secret(name);
    match applied? {
        Applied::Made(labels) => Ok(labels),
        Applied::Refused(why) => Err(ApiError::not_found(why)),
    }
}

/// The secret if it is live, or 404 (purging it first if its recovery window has passed).
async fn live(
    state: &AppState,
    name: &str,
    record: Option<SecretRecord>,
) -> Result<SecretRecord, ApiError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match record {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        Some(s) if s.recovery_until.is_some_and(|u| u <= now) => {
            state.store.purge_secret(name, now).await?;
            state.caches.forget_secret(name);
            Err(ApiError::not_found(format!("no secret named {name:?}")))
        }
        Some(_) => Err(ApiError::not_found(format!(
            "secret {name:?} is scheduled for deletion; restore it to use it"
        ))),
        None => Err(ApiError::not_found(format!("no secret named {name:?}"))),
    }
}

/// A value in a request: `secretString` or `secretBinary` (base64), never both.
pub(crate) fn value_of(
    string: &Option<String>,
    binary: &Option<String>,
) -> Result<(Vec<u8>, bool), ApiError> {
    let (bytes, is_binary) = match (string, binary) {
        (Some(s), None) => (s.as_bytes().to_vec(), false),
        (None, Some(b)) => (
            STANDARD
                .decode(b)
                .map_err(|_| ApiError::bad_request("secretBinary: not valid base64"))?,
            true,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of secretString or secretBinary",
            ));
        }
    };
    check_size(&bytes)?;
    Ok((bytes, is_binary))
}

/// A value is at most [`MAX_VALUE_BYTES`].
pub(crate) fn check_size(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the value is {} bytes; a secret value is at most {MAX_VALUE_BYTES}",
            bytes.len()
        )));
    }
    Ok(())
}

/// Seals a value as a new version: with the id given (an AWS client's
/// `ClientRequestToken`), or a new random one.
fn seal_version(
    state: &AppState,
    name: &str,
    value: &[u8],
    binary: bool,
    version_id: Option<String>,
) -> Result<VersionRecord, ApiError> {
    let version_id = match version_id {
        Some(id) => id,
        None => model::new_version_id().map_err(|e| ApiError::internal("version id", e))?,
    };
    let Sealed {
        wrapped_key,
        ciphertext,
    } = envelope::seal(&state.master, name, &version_id, value)
        .map_err(|e| ApiError::internal("could not encrypt the value", e))?;
    Ok(VersionRecord {
        version_id,
        wrapped_key,
        ciphertext,
        binary,
        created_at: OffsetDateTime::now_utc().unix_timestamp(),
    })
}

/// `CreateSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Create {
    name: String,
    #[serde(default)]
    secret_string: Option<String>,
    #[serde(default)]
    secret_binary: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: serde_json::Map<String, Value>,
}

/// A secret to create, as the domain takes it from either API.
pub(crate) struct NewSecret {
    /// Its name (checked by the caller).
    pub name: String,
    /// Its first value.
    pub value: Vec<u8>,
    /// Whether the value is binary.
    pub binary: bool,
    /// A description for people.
    pub description: String,
    /// Tags (string values).
    pub tags: serde_json::Map<String, Value>,
    /// The first version's id, when the client chose it (AWS's `ClientRequestToken`).
    pub version_id: Option<String>,
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<Create>,
) -> Result<Json<SecretCreated>, ApiError> {
    model::check_name(&body.name).map_err(|e| ApiError::bad_request(format!("name: {e}")))?;
    let (value, binary) = value_of(&body.secret_string, &body.secret_binary)?;
    let created = create_secret(
        &state,
        &conn,
        &auth,
        NewSecret {
            name: body.name,
            value,
            binary,
            description: body.description,
            tags: body.tags,
            version_id: None,
        },
    )
    .await?;
    Ok(Json(created))
}

/// `secrets:CreateSecret`: a new secret and its first version, stored with its event.
pub(crate) async fn create_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    new: NewSecret,
) -> Result<SecretCreated, ApiError> {
    let (caller, _) = granted(state, auth, "secrets:CreateSecret", Some(&new.name)).await?;
    check_size(&new.value)?;
    if new.tags.values().any(|v| !v.is_string()) {
        return Err(ApiError::bad_request(
            "tags: each tag value must be a string",
        ));
    }
    let version = seal_version(state, &new.name, &new.value, new.binary, new.version_id)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let record = SecretRecord {
        name: new.name.clone(),
        description: new.description,
        tags: Value::Object(new.tags).to_string(),
        resource_policy: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        recovery_until: None,
        rotation: None,
        next_rotation_at: None,
        last_rotation: None,
    };
    let version_id = version.version_id.clone();
    change_audited(
        state,
        conn,
        &caller,
        "secrets:CreateSecret",
        &new.name,
        Some(format!("version {version_id}")),
        SecretChange::Create {
            secret: record,
            version,
        },
    )
    .await?;
    Ok(SecretCreated {
        name: new.name,
        version_id,
    })
}

pub(super) async fn put(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<PutSecretRequest>,
) -> Result<Json<SecretVersionPut>, ApiError> {
    let (value, binary) = value_of(&body.secret_string, &body.secret_binary)?;
    Ok(Json(
        put_value(&state, &conn, &auth, &body.name, value, binary, None).await?,
    ))
}

/// `secrets:PutSecretValue`: a new version, which becomes `AWSCURRENT`, stored with its
/// event. A version id the client chose (`ClientRequestToken`) that is stored already
/// is a retry when it holds the same value (nothing changes), and a conflict otherwise.
pub(crate) async fn put_value(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    value: Vec<u8>,
    binary: bool,
    version_id: Option<String>,
) -> Result<SecretVersionPut, ApiError> {
    let (caller, record) = granted(state, auth, "secrets:PutSecretValue", Some(name)).await?;
    live(state, name, record).await?;
    check_size(&value)?;
    if let Some(id) = &version_id
        && let Some(stored) = secret_version(state, name, id).await?
    {
        let same = stored.binary == binary
            && open_version(state, conn, &caller, name, &stored)
                .is_ok_and(|v| bool::from(subtle::ConstantTimeEq::ct_eq(&v[..], &value[..])));
        if !same {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "conflict",
                format!(
                    "secret {name:?} has a version {id:?} with another value; a \
                     ClientRequestToken names one value: use a new one for a new value"
                ),
            ));
        }
        audited(
            state,
            conn,
            &caller,
            "secrets:PutSecretValue",
            &resource(name),
            Some(format!("version {id}: a retry, already stored")),
        )
        .await?;
        let (_, labels) = secret_meta(state, name).await?;
        return Ok(SecretVersionPut {
            version_stages: labels.of(id).into_iter().map(str::to_string).collect(),
            name: name.to_string(),
            version_id: id.clone(),
        });
    }
    let version = seal_version(state, name, &value, binary, version_id)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let version_id = version.version_id.clone();
    let current = version_id.clone();
    let labels = change_audited(
        state,
        conn,
        &caller,
        "secrets:PutSecretValue",
        name,
        Some(format!("version {version_id}")),
        SecretChange::Put {
            name: name.to_string(),
            version,
            now,
            relabel: Box::new(move |l| l.make_current(&current)),
        },
    )
    .await?
    .unwrap_or_default();
    Ok(SecretVersionPut {
        version_stages: labels
            .of(&version_id)
            .into_iter()
            .map(str::to_string)
            .collect(),
        name: name.to_string(),
        version_id,
    })
}

/// Decrypts a stored version; a failure (tampering, a master key that does not match) is
/// on record and a 500.
fn open_version(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    name: &str,
    version: &VersionRecord,
) -> Result<Vec<u8>, ApiError> {
    envelope::open(
        &state.master,
        name,
        &version.version_id,
        &Sealed {
            wrapped_key: version.wrapped_key.clone(),
            ciphertext: version.ciphertext.clone(),
        },
    )
    .map_err(|e| {
        let mut event = state.event(
            conn,
            &caller.actor,
            caller.authenticated_by,
            "secrets:GetSecretValue",
            &resource(name),
            Outcome::Failed,
        );
        event.reason = Some(format!("version {}: {e}", version.version_id));
        match state.audit.record(event) {
            Ok(()) => ApiError::internal("the stored value does not decrypt", e),
            Err(a) => a.into(),
        }
    })
}

pub(super) async fn get(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<GetSecretRequest>,
) -> Result<Json<SecretValue>, ApiError> {
    Ok(Json(get_value(&state, &conn, &auth, &body).await?))
}

/// `secrets:GetSecretValue`: `AWSCURRENT`, or the version or stage named; returned only
/// once the read is durable in the audit log.
pub(crate) async fn get_value(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    body: &GetSecretRequest,
) -> Result<SecretValue, ApiError> {
    let (caller, record) = granted(state, auth, "secrets:GetSecretValue", Some(&body.name)).await?;
    live(state, &body.name, record).await?;
    let (_, labels) = secret_meta(state, &body.name).await?;
    let version_id = match (&body.version_id, &body.version_stage) {
        (Some(id), None) => id.clone(),
        (None, stage) => {
            let stage = stage.as_deref().unwrap_or(AWSCURRENT);
            labels
                .version(stage)
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "secret {:?} has no version labelled {stage}",
                        body.name
                    ))
                })?
                .to_string()
        }
        (Some(id), Some(stage)) => {
            // As Secrets Manager: both may be given when they name the same version.
            if labels.version(stage) != Some(id.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "versionId {id:?} does not carry the stage {stage:?}; give versionId or \
                     versionStage, or both naming the same version"
                )));
            }
            id.clone()
        }
    };
    let version = secret_version(state, &body.name, &version_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "secret {:?} has no version {version_id:?}",
                body.name
            ))
        })?;
    let value = open_version(state, conn, &caller, &body.name, &version)?;
    // The read is on record before the value leaves.
    audited(
        state,
        conn,
        &caller,
        "secrets:GetSecretValue",
        &resource(&body.name),
        Some(format!("version {version_id}")),
    )
    .await?;
    let (secret_string, secret_binary) = if version.binary {
        (None, Some(STANDARD.encode(&value)))
    } else {
        (Some(String::from_utf8_lossy(&value).into_owned()), None)
    };
    Ok(SecretValue {
        version_stages: labels
            .of(&version_id)
            .into_iter()
            .map(str::to_string)
            .collect(),
        name: body.name.clone(),
        version_id,
        created_date: rfc3339(version.created_at),
        secret_string,
        secret_binary,
    })
}

/// A secret's record, labels and versions (never a value), as described.
pub(crate) struct Described {
    /// Its record.
    pub secret: SecretRecord,
    /// Its staging labels.
    pub labels: model::Labels,
    /// Its versions, oldest first.
    pub versions: Vec<VersionRecord>,
}

pub(super) async fn describe(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<SecretName>,
) -> Result<Json<SecretDescription>, ApiError> {
    let d = describe_secret(&state, &conn, &auth, &body.name).await?;
    Ok(Json(description(&d.secret, &d.labels, &d.versions)))
}

/// `secrets:DescribeSecret`: metadata, labels and versions; the read is audited.
pub(crate) async fn describe_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
) -> Result<Described, ApiError> {
    let (caller, record) = granted(state, auth, "secrets:DescribeSecret", Some(name)).await?;
    let secret = live(state, name, record).await?;
    let labels = state.store.secret_labels(name).await?;
    let versions = state.store.secret_versions(name).await?;
    let mut event = state.event(
        conn,
        &caller.actor,
        caller.authenticated_by,
        "secrets:DescribeSecret",
        &resource(name),
        Outcome::Allowed,
    );
    event.decision = Some(caller.decision);
    event.matched = caller.matched.clone();
    state.audit.record(event)?;
    Ok(Described {
        secret,
        labels,
        versions,
    })
}

/// A secret's metadata as the API shows it (never a value).
fn description(
    s: &SecretRecord,
    labels: &model::Labels,
    versions: &[VersionRecord],
) -> SecretDescription {
    SecretDescription {
        name: s.name.clone(),
        description: s.description.clone(),
        tags: serde_json::from_str(&s.tags).unwrap_or_default(),
        created_date: rfc3339(s.created_at),
        last_changed_date: rfc3339(s.updated_at),
        resource_policy: s
            .resource_policy
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok()),
        rotation: s
            .rotation
            .as_deref()
            .and_then(|r| serde_json::from_str::<RotationConfig>(r).ok())
            .map(|c| rotation_answer(&c, s.next_rotation_at, s.last_rotation.as_deref())),
        versions: versions
            .iter()
            .map(|v| VersionInfo {
                version_id: v.version_id.clone(),
                version_stages: labels
                    .of(&v.version_id)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                created_date: rfc3339(v.created_at),
            })
            .collect(),
    }
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
) -> Result<Json<SecretList>, ApiError> {
    let all = list_secrets(&state, &conn, &auth).await?;
    Ok(Json(SecretList {
        secrets: all
            .iter()
            .map(|s| SecretListEntry {
                name: s.name.clone(),
                description: s.description.clone(),
                last_changed_date: rfc3339(s.updated_at),
            })
            .collect(),
    }))
}

/// `secrets:ListSecrets` on `writ:secrets`: every live secret, by name; audited.
pub(crate) async fn list_secrets(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
) -> Result<Vec<SecretRecord>, ApiError> {
    let (caller, _) = granted(state, auth, "secrets:ListSecrets", None).await?;
    let all = state.store.secrets().await?;
    let mut event = state.event(
        conn,
        &caller.actor,
        caller.authenticated_by,
        "secrets:ListSecrets",
        "writ:secrets",
        Outcome::Allowed,
    );
    event.decision = Some(caller.decision);
    state.audit.record(event)?;
    Ok(all)
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<DeleteSecretRequest>,
) -> Result<Json<SecretDeleted>, ApiError> {
    let days = body.recovery_days.unwrap_or(30);
    Ok(Json(
        delete_secret(&state, &conn, &auth, &body.name, days).await?,
    ))
}

/// `secrets:DeleteSecret`: hidden now, restorable for `days` (7 to 30).
pub(crate) async fn delete_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    days: i64,
) -> Result<SecretDeleted, ApiError> {
    if !(7..=30).contains(&days) {
        return Err(ApiError::bad_request(
            "recoveryDays: between 7 and 30, as in Secrets Manager",
        ));
    }
    let (caller, record) = granted(state, auth, "secrets:DeleteSecret", Some(name)).await?;
    live(state, name, record).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let until = now + days * 86_400;
    change_audited(
        state,
        conn,
        &caller,
        "secrets:DeleteSecret",
        name,
        Some(format!("recoverable until {}", rfc3339(until))),
        SecretChange::Delete {
            name: name.to_string(),
            now,
            recovery_until: until,
        },
    )
    .await?;
    Ok(SecretDeleted {
        name: name.to_string(),
        deletion_date: rfc3339(until),
    })
}

pub(super) async fn restore(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<SecretName>,
) -> Result<Json<SecretNamed>, ApiError> {
    restore_secret(&state, &conn, &auth, &body.name).await?;
    Ok(Json(SecretNamed { name: body.name }))
}

/// `secrets:RestoreSecret`: cancels a scheduled deletion.
pub(crate) async fn restore_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
) -> Result<(), ApiError> {
    let (caller, _) = granted(state, auth, "secrets:RestoreSecret", Some(name)).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    change_audited(
        state,
        conn,
        &caller,
        "secrets:RestoreSecret",
        name,
        None,
        SecretChange::Restore {
            name: name.to_string(),
            now,
        },
    )
    .await?;
    Ok(())
}

/// Moves a staging label (Secrets Manager's `UpdateSecretVersionStage`), decided as
/// `secrets:PutSecretValue`: choosing which version is current is as much power as
/// putting a value. Stored with its event.
pub(crate) async fn move_stage(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    stage: &str,
    to: Option<String>,
    from: Option<String>,
) -> Result<(), ApiError> {
    let (caller, record) = granted(state, auth, "secrets:PutSecretValue", Some(name)).await?;
    live(state, name, record).await?;
    model::check_label(stage).map_err(|e| ApiError::bad_request(format!("VersionStage: {e}")))?;
    if let Some(id) = &to
        && secret_version(state, name, id).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "secret {name:?} has no version {id:?}"
        )));
    }
    let detail = format!(
        "stage {stage}: {} -> {}",
        from.as_deref().unwrap_or("-"),
        to.as_deref().unwrap_or("-")
    );
    let (label, to_c, from_c) = (stage.to_string(), to.clone(), from.clone());
    let event = allowed_event(
        state,
        conn,
        &caller,
        "secrets:PutSecretValue",
        &resource(name),
        Some(detail),
    );
    let applied = state
        .audit
        .record_change(
            event,
            SecretChange::Relabel {
                name: name.to_string(),
                relabel: Box::new(move |l| {
                    l.move_label(&label, to_c.as_deref(), from_c.as_deref())
                        .map_err(|e| e.to_string())
                }),
            },
        )
        .await;
    state.caches.forget_secret(name);
    match applied? {
        Applied::Made(_) => Ok(()),
        Applied::Refused(why) if why.starts_with("no secret") => Err(ApiError::not_found(why)),
        Applied::Refused(why) => Err(ApiError::bad_request(why)),
    }
}

/// `RotateSecret`: sets the hook and schedule if given, and rotates now unless told not to.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Rotate {
    /// The secret.
    pub name: String,
    /// The hook; the stored one when absent.
    #[serde(default)]
    pub hook: Option<Hook>,
    /// `30d`, or `off` for no schedule; unchanged when absent.
    #[serde(default)]
    pub every: Option<String>,
    /// Whether to rotate now (true when absent).
    #[serde(default)]
    pub rotate_now: Option<bool>,
}

pub(super) async fn rotate(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(rotate_secret(&state, &conn, &auth, body).await?))
}

/// `secrets:RotateSecret`: sets the hook and schedule if given, and rotates now unless
/// told not to.
pub(crate) async fn rotate_secret(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    auth: &Authorized,
    body: Rotate,
) -> Result<Rotated, ApiError> {
    let action = "secrets:RotateSecret";
    let (caller, record) = granted(state, auth, action, Some(&body.name)).await?;
    let secret = live(state, &body.name, record).await?;
    let stored: Option<RotationConfig> = secret
        .rotation
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::internal("a stored rotation setting is invalid", e))?;
    let changed = body.hook.is_some() || body.every.is_some();
    let hook = match (body.hook, &stored) {
        (Some(hook), _) => hook,
        (None, Some(config)) => config.hook.clone(),
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "hook: secret {:?} has no rotation hook yet; give one",
                body.name
            )));
        }
    };
    rotation::check_hook(&hook, state).map_err(ApiError::bad_request)?;
    // A hook receives the current and new values and chooses the new one: whoever points
    // a secret at a hook must be allowed to read and to write its value as well. The access
    // layer decided both whenever the body names a hook; a new hook always comes in one.
    if stored.as_ref().is_none_or(|c| c.hook != hook) {
        for also in ["secrets:GetSecretValue", "secrets:PutSecretValue"] {
            granted(state, auth, also, Some(&body.name)).await?;
        }
    }
    let every = match body.every.as_deref() {
        Some("off") => None,
        Some(e) => Some(e.to_string()),
        None => stored.as_ref().and_then(|c| c.every.clone()),
    };
    let config = RotationConfig { hook, every };
    let every_seconds = config.every_seconds().map_err(ApiError::bad_request)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let next = every_seconds.map(|s| now + s);
    let res = resource(&body.name);
    let text = if changed || stored.is_none() {
        Some(
            serde_json::to_string(&config)
                .map_err(|e| ApiError::internal("rotation setting", e))?,
        )
    } else {
        None
    };
    if !body.rotate_now.unwrap_or(true) {
        let detail = Some("rotation settings changed".to_string());
        match text {
            // The settings and their event commit together.
            Some(text) => {
                change_audited(
                    state,
                    conn,
                    &caller,
                    action,
                    &body.name,
                    detail,
                    SecretChange::SetRotation {
                        name: body.name.clone(),
                        rotation: Some(text),
                        next_rotation_at: next,
                        now,
                    },
                )
                .await?;
            }
            None => audited(state, conn, &caller, action, &res, detail).await?,
        }
        return Ok(Rotated {
            name: body.name,
            rotated: false,
            version_id: None,
            rotation: Some(rotation_answer(&config, next, None)),
        });
    }
    // Rotating now: the settings are stored first (the rotation's end reads them), and
    // the rotation's event below records them with its outcome.
    if let Some(text) = text {
        state
            .store
            .set_secret_rotation(&body.name, Some(&text), next, now)
            .await?;
        state.caches.forget_secret(&body.name);
    }
    // The rotation runs on its own task: a caller that goes away (or the request timeout)
    // must not cancel it between steps and leave AWSPENDING behind. Its success event is
    // committed with the move of AWSCURRENT; a failure is recorded here.
    let result = {
        let (task_state, name, config) = (state.clone(), body.name.clone(), config.clone());
        let succeeded = allowed_event(state, conn, &caller, action, &res, None);
        tokio::spawn(async move {
            rotation::rotate(&task_state, &name, &config, move |v| {
                let mut event = succeeded;
                event.reason = Some(format!("version {v} is AWSCURRENT"));
                event
            })
            .await
        })
        .await
        .map_err(|e| ApiError::internal("the rotation task failed", e))?
    };
    if let Err(f) = &result {
        let mut event = state.event(
            conn,
            &caller.actor,
            caller.authenticated_by,
            action,
            &res,
            Outcome::Failed,
        );
        event.decision = Some(caller.decision);
        event.matched = caller.matched.clone();
        event.reason = Some(format!("rotation failed at {f}; AWSCURRENT is unchanged"));
        state.audit.record_durable(event).await?;
    }
    match result {
        Ok(version) => Ok(Rotated {
            name: body.name,
            rotated: true,
            version_id: Some(version),
            rotation: None,
        }),
        Err(f) if f.busy => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "rotationInProgress",
            f.reason,
        )),
        Err(f) => Err(ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "rotationFailed",
            format!(
                "rotation of {:?} failed at {f}; AWSCURRENT is unchanged",
                body.name
            ),
        )),
    }
}

/// A secret's rotation settings as the API shows them.
fn rotation_answer(config: &RotationConfig, next: Option<i64>, last: Option<&str>) -> Rotation {
    Rotation {
        hook: match &config.hook {
            Hook::Https { url } => writ_api::secrets::Hook::Https { url: url.clone() },
            Hook::Command { name } => writ_api::secrets::Hook::Command { name: name.clone() },
        },
        every: config.every.clone(),
        next_rotation_date: next.map(rfc3339),
        last_rotation: last.and_then(|l| serde_json::from_str(l).ok()),
    }
}

pub(super) async fn set_policy(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<SecretPolicyRequest>,
) -> Result<Json<SecretNamed>, ApiError> {
    let text = match &body.policy {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    put_resource_policy(&state, &conn, &auth, &body.name, text).await?;
    Ok(Json(SecretNamed { name: body.name }))
}

/// `secrets:PutResourcePolicy`: sets (or, with `None`, removes) a secret's resource
/// policy, which must be valid; stored with its event.
pub(crate) async fn put_resource_policy(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    text: Option<String>,
) -> Result<(), ApiError> {
    let (caller, record) = granted(state, auth, "secrets:PutResourcePolicy", Some(name)).await?;
    live(state, name, record).await?;
    if let Some(t) = &text {
        compiled(state, PolicyKind::Resource, t)
            .map_err(|e| ApiError::bad_request(format!("policy: {e}")))?;
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    change_audited(
        state,
        conn,
        &caller,
        "secrets:PutResourcePolicy",
        name,
        None,
        SecretChange::SetPolicy {
            name: name.to_string(),
            policy: text,
            now,
        },
    )
    .await?;
    Ok(())
}
