//! Secrets: create, put, read, describe, list, delete and restore them, move their
//! staging labels, set their resource policies and rotate them; shared by the `/v1`
//! routes ([`crate::api::secrets`]) and the AWS-compatible APIs
//! ([`crate::aws::secretsmanager`], [`crate::aws::ssm`]). Each function takes the access
//! layer's decision ([`Authorized`]), already made on `writ:secret/NAME` before any of
//! this runs; it puts on record what the grant was used for. Every change is stored in
//! one transaction with its audit event, and a value is returned only once its read is
//! durable in the audit log.
//!
//! A denial is the same whether the secret exists or not: records are read only after
//! the decision, so callers cannot learn which names exist.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use writ_api::secrets::{
    GetSecretRequest, Rotated, Rotation, SecretCreated, SecretDeleted, SecretValue,
    SecretVersionPut,
};
use writ_audit::{Decision, Outcome};
use writ_policy::{CompiledPolicy, ParseOptions, PolicyKind};
use writ_secrets::envelope::{self, KeyWrapper, Sealed, WrapError};
use writ_secrets::model::{self, AWSCURRENT, MAX_VALUE_BYTES};

use super::{Error, Result, rfc3339};
use crate::api::access::Authorized;
use crate::master_key::MasterKey;
use crate::rotation::{self, Hook, RotationConfig};
use crate::state::AppState;
use crate::store::{Applied, SecretChange, SecretRecord, VersionRecord};
use crate::tls::ConnInfo;

/// The master key wraps data keys, bound to their secret and version.
impl KeyWrapper for MasterKey {
    fn wrap(&self, context: &str, key: &[u8]) -> std::result::Result<Vec<u8>, WrapError> {
        self.seal(context, key)
            .map_err(|e| WrapError::Failed(e.to_string()))
    }
    fn unwrap(&self, context: &str, wrapped: &[u8]) -> std::result::Result<Vec<u8>, WrapError> {
        self.open(context, wrapped).map_err(|e| match e {
            crate::master_key::MasterKeyError::Unwrap(_) => WrapError::Mismatch,
            other => WrapError::Failed(other.to_string()),
        })
    }
}

/// A policy compiled from its text, from [`crate::cache::Caches::policies`] when it was
/// compiled before, so a function's read does not re-parse them.
pub fn compiled(
    state: &AppState,
    kind: PolicyKind,
    text: &str,
) -> std::result::Result<Arc<CompiledPolicy>, String> {
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
pub async fn secret_meta(
    state: &AppState,
    name: &str,
) -> Result<(Option<SecretRecord>, model::Labels)> {
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
) -> Result<Option<VersionRecord>> {
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
) -> Result<(Caller, Option<SecretRecord>)> {
    let grant = auth.grant(action).ok_or_else(|| {
        Error::internal("a secrets route was reached without its decision", action)
    })?;
    let secret = match name {
        Some(n) => secret_meta(state, n).await?.0,
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
) -> Result<()> {
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
) -> Result<Option<model::Labels>> {
    let event = allowed_event(state, conn, caller, action, &resource(name), detail);
    let applied = state.audit.record_change(event, change).await;
    // Whatever happened, this server's cached view of the secret may be stale now.
    state.caches.forget_secret(name);
    match applied? {
        Applied::Made(labels) => Ok(labels),
        Applied::Refused(why) => Err(Error::NotFound(why)),
    }
}

/// The secret if it is live, or 404 (purging it first if its recovery window has passed).
async fn live(state: &AppState, name: &str, record: Option<SecretRecord>) -> Result<SecretRecord> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    match record {
        Some(s) if s.deleted_at.is_none() => Ok(s),
        Some(s) if s.recovery_until.is_some_and(|u| u <= now) => {
            state.store.purge_secret(name, now).await?;
            state.caches.forget_secret(name);
            Err(Error::NotFound(format!("no secret named {name:?}")))
        }
        Some(_) => Err(Error::NotFound(format!(
            "secret {name:?} is scheduled for deletion; restore it to use it"
        ))),
        None => Err(Error::NotFound(format!("no secret named {name:?}"))),
    }
}

/// A value in a request: `secretString` or `secretBinary` (base64), never both.
pub fn value_of(string: &Option<String>, binary: &Option<String>) -> Result<(Vec<u8>, bool)> {
    let (bytes, is_binary) = match (string, binary) {
        (Some(s), None) => (s.as_bytes().to_vec(), false),
        (None, Some(b)) => (
            STANDARD
                .decode(b)
                .map_err(|_| Error::Invalid("secretBinary: not valid base64".to_string()))?,
            true,
        ),
        _ => {
            return Err(Error::Invalid(
                "give exactly one of secretString or secretBinary".to_string(),
            ));
        }
    };
    check_size(&bytes)?;
    Ok((bytes, is_binary))
}

/// A value is at most [`MAX_VALUE_BYTES`].
pub fn check_size(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(Error::Invalid(format!(
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
) -> Result<VersionRecord> {
    let version_id = match version_id {
        Some(id) => id,
        None => model::new_version_id().map_err(|e| Error::internal("version id", e))?,
    };
    let Sealed {
        wrapped_key,
        ciphertext,
    } = envelope::seal(&state.master, name, &version_id, value)
        .map_err(|e| Error::internal("could not encrypt the value", e))?;
    Ok(VersionRecord {
        version_id,
        wrapped_key,
        ciphertext,
        binary,
        created_at: OffsetDateTime::now_utc().unix_timestamp(),
    })
}

/// A secret to create, as the domain takes it from either API.
pub struct NewSecret {
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

/// `secrets:CreateSecret`: a new secret and its first version, stored with its event.
pub async fn create_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    new: NewSecret,
) -> Result<SecretCreated> {
    let (caller, _) = granted(state, auth, "secrets:CreateSecret", Some(&new.name)).await?;
    check_size(&new.value)?;
    if new.tags.values().any(|v| !v.is_string()) {
        return Err(Error::Invalid(
            "tags: each tag value must be a string".to_string(),
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

/// `secrets:PutSecretValue`: a new version, which becomes `AWSCURRENT`, stored with its
/// event. A version id the client chose (`ClientRequestToken`) that is stored already
/// is a retry when it holds the same value (nothing changes), and a conflict otherwise.
pub async fn put_value(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    value: Vec<u8>,
    binary: bool,
    version_id: Option<String>,
) -> Result<SecretVersionPut> {
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
            return Err(Error::Conflict {
                code: "conflict",
                message: format!(
                    "secret {name:?} has a version {id:?} with another value; a \
                     ClientRequestToken names one value: use a new one for a new value"
                ),
            });
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
) -> Result<Vec<u8>> {
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
            Ok(()) => Error::internal("the stored value does not decrypt", e),
            Err(a) => a.into(),
        }
    })
}

/// `secrets:GetSecretValue`: `AWSCURRENT`, or the version or stage named; returned only
/// once the read is durable in the audit log.
pub async fn get_value(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    body: &GetSecretRequest,
) -> Result<SecretValue> {
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
                    Error::NotFound(format!(
                        "secret {:?} has no version labelled {stage}",
                        body.name
                    ))
                })?
                .to_string()
        }
        (Some(id), Some(stage)) => {
            // As Secrets Manager: both may be given when they name the same version.
            if labels.version(stage) != Some(id.as_str()) {
                return Err(Error::Invalid(format!(
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
            Error::NotFound(format!(
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
pub struct Described {
    /// Its record.
    pub secret: SecretRecord,
    /// Its staging labels.
    pub labels: model::Labels,
    /// Its versions, oldest first.
    pub versions: Vec<VersionRecord>,
}

/// `secrets:DescribeSecret`: metadata, labels and versions; the read is audited.
pub async fn describe_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
) -> Result<Described> {
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

/// `secrets:ListSecrets` on `writ:secrets`: every live secret, by name; audited.
pub async fn list_secrets(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
) -> Result<Vec<SecretRecord>> {
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

/// `secrets:DeleteSecret`: hidden now, restorable for `days` (7 to 30).
pub async fn delete_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    days: i64,
) -> Result<SecretDeleted> {
    if !(7..=30).contains(&days) {
        return Err(Error::Invalid(
            "recoveryDays: between 7 and 30, as in Secrets Manager".to_string(),
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

/// `secrets:RestoreSecret`: cancels a scheduled deletion.
pub async fn restore_secret(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
) -> Result<()> {
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
pub async fn move_stage(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    stage: &str,
    to: Option<String>,
    from: Option<String>,
) -> Result<()> {
    let (caller, record) = granted(state, auth, "secrets:PutSecretValue", Some(name)).await?;
    live(state, name, record).await?;
    model::check_label(stage).map_err(|e| Error::Invalid(format!("VersionStage: {e}")))?;
    if let Some(id) = &to
        && secret_version(state, name, id).await?.is_none()
    {
        return Err(Error::NotFound(format!(
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
        Applied::Refused(why) if why.starts_with("no secret") => Err(Error::NotFound(why)),
        Applied::Refused(why) => Err(Error::Invalid(why)),
    }
}

/// `RotateSecret`: sets the hook and schedule if given, and rotates now unless told not to.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rotate {
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

/// `secrets:RotateSecret`: sets the hook and schedule if given, and rotates now unless
/// told not to.
pub async fn rotate_secret(
    state: &Arc<AppState>,
    conn: &ConnInfo,
    auth: &Authorized,
    body: Rotate,
) -> Result<Rotated> {
    let action = "secrets:RotateSecret";
    let (caller, record) = granted(state, auth, action, Some(&body.name)).await?;
    let secret = live(state, &body.name, record).await?;
    let stored: Option<RotationConfig> = secret
        .rotation
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| Error::internal("a stored rotation setting is invalid", e))?;
    let changed = body.hook.is_some() || body.every.is_some();
    let hook = match (body.hook, &stored) {
        (Some(hook), _) => hook,
        (None, Some(config)) => config.hook.clone(),
        (None, None) => {
            return Err(Error::Invalid(format!(
                "hook: secret {:?} has no rotation hook yet; give one",
                body.name
            )));
        }
    };
    rotation::check_hook(&hook, state).map_err(Error::Invalid)?;
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
    let every_seconds = config.every_seconds().map_err(Error::Invalid)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let next = every_seconds.map(|s| now + s);
    let res = resource(&body.name);
    let text = if changed || stored.is_none() {
        Some(serde_json::to_string(&config).map_err(|e| Error::internal("rotation setting", e))?)
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
        .map_err(|e| Error::internal("the rotation task failed", e))?
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
        Err(f) if f.busy => Err(Error::Conflict {
            code: "rotationInProgress",
            message: f.reason,
        }),
        Err(f) => Err(Error::Dependency {
            code: "rotationFailed",
            message: format!(
                "rotation of {:?} failed at {f}; AWSCURRENT is unchanged",
                body.name
            ),
        }),
    }
}

/// A secret's rotation settings as the API shows them (and `DescribeSecret`).
pub fn rotation_answer(config: &RotationConfig, next: Option<i64>, last: Option<&str>) -> Rotation {
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

/// `secrets:PutResourcePolicy`: sets (or, with `None`, removes) a secret's resource
/// policy, which must be valid; stored with its event.
pub async fn put_resource_policy(
    state: &AppState,
    conn: &ConnInfo,
    auth: &Authorized,
    name: &str,
    text: Option<String>,
) -> Result<()> {
    let (caller, record) = granted(state, auth, "secrets:PutResourcePolicy", Some(name)).await?;
    live(state, name, record).await?;
    if let Some(t) = &text {
        compiled(state, PolicyKind::Resource, t)
            .map_err(|e| Error::Invalid(format!("policy: {e}")))?;
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
