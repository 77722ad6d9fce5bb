//! Secrets, in the shape of AWS Secrets Manager's API: one POST per operation, the secret
//! named in the body (names contain `/`). Callers are functions (by their X.509-SVID over
//! mTLS, or a JWT-SVID for the server's audience as a bearer token) and operators (by
//! admin token). A function's access is decided by the policy engine from its identity
//! policies and the secret's resource policy, on the resource `writ:secret/NAME`; default
//! deny. Every read and change is audited, and a value is returned only once its read is
//! durable in the audit log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use writ_audit::{Decision, Outcome};
use writ_identity::SpiffeId;
use writ_policy::{
    CompiledPolicy, Context, ParseOptions, PolicyKind, PolicySet, Principal, Request,
};
use writ_secrets::envelope::{self, KeyWrapper, Sealed};
use writ_secrets::model::{self, AWSCURRENT, MAX_VALUE_BYTES};

use super::admin::{Operator, authorize, bearer};
use super::identity::svid_caller;
use super::{ApiError, ApiJson, rfc3339};
use crate::master_key::MasterKey;
use crate::rotation::{self, Hook, RotationConfig};
use crate::state::AppState;
use crate::store::{Applied, SecretChange, SecretRecord, VersionRecord};
use crate::tls::ConnInfo;

/// The master key wraps data keys, bound to their secret and version.
impl KeyWrapper for MasterKey {
    fn wrap(&self, context: &str, key: &[u8]) -> Result<Vec<u8>, String> {
        self.seal(context, key).map_err(|e| e.to_string())
    }
    fn unwrap(&self, context: &str, wrapped: &[u8]) -> Result<Vec<u8>, String> {
        self.open(context, wrapped).map_err(|e| e.to_string())
    }
}

/// Compiled policies by their text, so a function's read does not re-parse them.
#[derive(Default)]
pub struct PolicyCache(Mutex<HashMap<(PolicyKind, String), Arc<CompiledPolicy>>>);

impl PolicyCache {
    fn get(&self, kind: PolicyKind, text: &str) -> Result<Arc<CompiledPolicy>, String> {
        let key = (kind, text.to_string());
        if let Some(p) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(p.clone());
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
        let compiled =
            Arc::new(CompiledPolicy::new(name, kind, &policy).map_err(|e| e.to_string())?);
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Ok(compiled)
    }
}

/// How long a secret's metadata and labels read for one request are reused by the next.
/// Writes through this server drop them at once; other servers' writes are seen within it.
const SECRET_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// A secret's record (or its absence) and labels, and when they were read.
type CachedMeta = (Option<SecretRecord>, model::Labels, std::time::Instant);

/// Secrets' metadata and labels (for a second), and versions' sealed bytes (immutable, so
/// kept until the cache is full). Never a plaintext value.
#[derive(Default)]
pub struct SecretCache {
    meta: Mutex<HashMap<String, CachedMeta>>,
    versions: Mutex<HashMap<(String, String), VersionRecord>>,
}

impl SecretCache {
    async fn meta(
        &self,
        state: &AppState,
        name: &str,
    ) -> Result<(Option<SecretRecord>, model::Labels), ApiError> {
        let cached = self
            .meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .filter(|(_, _, at)| at.elapsed() < SECRET_CACHE_TTL)
            .map(|(r, l, _)| (r.clone(), l.clone()));
        if let Some(hit) = cached {
            return Ok(hit);
        }
        let record = state.store.secret(name).await?;
        let labels = match &record {
            Some(_) => state.store.secret_labels(name).await?,
            None => model::Labels::default(),
        };
        let mut meta = self
            .meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if meta.len() >= 100_000 {
            meta.clear();
        }
        meta.insert(
            name.to_string(),
            (record.clone(), labels.clone(), std::time::Instant::now()),
        );
        Ok((record, labels))
    }

    async fn version(
        &self,
        state: &AppState,
        name: &str,
        version_id: &str,
    ) -> Result<Option<VersionRecord>, ApiError> {
        let key = (name.to_string(), version_id.to_string());
        let cached = self
            .versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(v) = cached {
            return Ok(Some(v));
        }
        let found = state.store.secret_version(name, version_id).await?;
        if let Some(v) = &found {
            let mut versions = self
                .versions
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if versions.len() >= 100_000 {
                versions.clear();
            }
            versions.insert(key, v.clone());
        }
        Ok(found)
    }

    /// Drops a secret after this server changed it.
    pub(crate) fn forget(&self, name: &str) {
        self.meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(n, _), _| n != name);
    }
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

/// Authenticates the caller, then reads the secret (for its resource policy) and decides
/// `action` on it (or on `writ:secrets` for a listing). The secret is looked up only after
/// authentication, and a denial is the same 403 whether it exists or not, so callers cannot
/// learn which names exist. Denials are audited; the caller audits what it then does.
async fn authorize_secret(
    state: &AppState,
    headers: &HeaderMap,
    conn: &ConnInfo,
    action: &'static str,
    name: Option<&str>,
) -> Result<(Caller, Option<SecretRecord>), ApiError> {
    if let Some(n) = name {
        model::check_name(n).map_err(|e| ApiError::bad_request(format!("name: {e}")))?;
    }
    let res = name.map_or_else(|| "writ:secrets".to_string(), resource);
    let presented = bearer(headers);
    let jwt = presented.filter(|t| t.starts_with("eyJ"));
    if presented.is_some() && jwt.is_none() {
        let Operator { actor, matched, .. } = authorize(state, headers, conn, action, &res).await?;
        let secret = match name {
            Some(n) => state.secret_cache.meta(state, n).await?.0,
            None => None,
        };
        let caller = Caller {
            actor,
            authenticated_by: "adminToken",
            decision: Decision::Allowed,
            matched,
        };
        return Ok((caller, secret));
    }
    let (id, issued_at, authenticated_by) = match jwt {
        Some(token) => {
            let (id, iat) = jwt_caller(state, conn, token, action)?;
            (id, Some(iat), "jwtSvid")
        }
        None => (svid_caller(state, conn, action).await?.id, None, "x509Svid"),
    };
    let function = id
        .path()
        .strip_prefix("/fn/")
        .map(str::to_string)
        .unwrap_or_default();
    let record = state.function_for_svid(&function).await?;
    // The mTLS path checked these in svid_caller; a JWT-SVID is checked here: the function
    // must exist, not be revoked, and the token must be from its current registration.
    if let Some(iat) = issued_at {
        let current = record
            .as_ref()
            .is_some_and(|f| f.revoked_at.is_none() && iat >= f.created_at);
        if !current {
            return Err(refused(
                state,
                conn,
                id.as_str(),
                action,
                "the function is revoked, deleted, or re-registered since the token was issued",
            ));
        }
    }
    let secret = match name {
        Some(n) => state.secret_cache.meta(state, n).await?.0,
        None => None,
    };
    let mut set = PolicySet::new();
    let function = record.as_ref();
    add_stored(
        state,
        &mut set,
        PolicyKind::Identity,
        function.and_then(|f| f.policies.as_deref()),
    )?;
    // The policies of the operator who set the function's: what they may grant at most.
    add_stored(
        state,
        &mut set,
        PolicyKind::PermissionsBoundary,
        function.and_then(|f| f.boundary.as_deref()),
    )?;
    if let Some(rp) = secret.as_ref().and_then(|s| s.resource_policy.as_deref()) {
        let compiled = state
            .secret_policies
            .get(PolicyKind::Resource, rp)
            .map_err(|e| ApiError::internal("a stored resource policy is invalid", e))?;
        set.add((*compiled).clone());
    }
    let now = OffsetDateTime::now_utc();
    let mut context = Context::new();
    context.insert("aws:SecureTransport", true);
    context.insert("aws:SourceIp", conn.remote.ip());
    context.insert("aws:EpochTime", now.unix_timestamp());
    if let Ok(t) = now.format(&time::format_description::well_known::Rfc3339) {
        context.insert("aws:CurrentTime", t);
    }
    let request = Request::new(action, &res)
        .with_principal(Principal::Spiffe(id.to_string()))
        .with_context(context)
        .with_principal_context();
    let decision = set.evaluate(&request);
    let matched: Vec<String> = decision.matched.iter().map(|m| m.label()).collect();
    let audit_decision = match decision.outcome {
        writ_policy::Outcome::Allowed => Decision::Allowed,
        writ_policy::Outcome::ExplicitDeny => Decision::ExplicitDeny,
        writ_policy::Outcome::ImplicitDeny => Decision::ImplicitDeny,
    };
    if !decision.is_allowed() {
        let mut why = format!(
            "{action} on {res} is not allowed for {id} ({})",
            decision.outcome.as_str()
        );
        if decision.reason == Some(writ_policy::DenyReason::NotInBoundary) {
            why.push_str(
                ": the function's policies allow it, but not its permissions boundary \
                 (the policies of the operator who set them)",
            );
        }
        let mut event = state.event(
            conn,
            id.as_str(),
            authenticated_by,
            action,
            &res,
            Outcome::Denied,
        );
        event.decision = Some(audit_decision);
        event.matched = matched;
        event.reason = Some(why.clone());
        state.audit.record(event)?;
        return Err(ApiError::forbidden(why));
    }
    let caller = Caller {
        actor: id.to_string(),
        authenticated_by,
        decision: audit_decision,
        matched,
    };
    Ok((caller, secret))
}

/// Adds policies stored as a JSON array of documents (a function's identity policies, or
/// its permissions boundary) to `set` as `kind`. One that cannot be read fails the request:
/// a boundary read as none would bound nothing.
fn add_stored(
    state: &AppState,
    set: &mut PolicySet,
    kind: PolicyKind,
    stored: Option<&str>,
) -> Result<(), ApiError> {
    let what = match kind {
        PolicyKind::PermissionsBoundary => "a stored permissions boundary",
        _ => "a stored function policy",
    };
    let documents: Vec<String> = stored
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::internal(&format!("{what} is unreadable"), e))?
        .unwrap_or_default();
    for doc in &documents {
        let compiled = state
            .secret_policies
            .get(kind, doc)
            .map_err(|e| ApiError::internal(&format!("{what} is invalid"), e))?;
        set.add((*compiled).clone());
    }
    Ok(())
}

/// A function authenticated by a JWT-SVID whose audience is this server.
fn jwt_caller(
    state: &AppState,
    conn: &ConnInfo,
    token: &str,
    action: &'static str,
) -> Result<(SpiffeId, i64), ApiError> {
    let now = OffsetDateTime::now_utc();
    let audience = format!("spiffe://{}/writ/server", state.trust_domain);
    let jwks = state.authorities().jwks(now.unix_timestamp());
    // The server's audience alone: a token that also names a function could be replayed
    // here by that function, so it is refused.
    match writ_identity::jwt_svid::verify_with(
        token,
        &jwks,
        &state.trust_domain,
        &audience,
        writ_identity::AudienceRule::Exactly,
        now,
        time::Duration::seconds(30),
    ) {
        // A token minted with an X.509-SVID falls with it.
        Ok((id, claims))
            if claims
                .x509_svid_serial
                .as_deref()
                .is_some_and(|s| state.serial_revoked(s)) =>
        {
            Err(refused(
                state,
                conn,
                id.as_str(),
                action,
                "the X.509-SVID this JWT-SVID was minted with is revoked",
            ))
        }
        Ok((id, claims)) if id.path().starts_with("/fn/") => Ok((id, claims.iat)),
        Ok((id, _)) => Err(refused(state, conn, id.as_str(), action, "not a function")),
        Err(e) => Err(refused(
            state,
            conn,
            "anonymous",
            action,
            &format!("JWT-SVID refused: {e}"),
        )),
    }
}

fn refused(
    state: &AppState,
    conn: &ConnInfo,
    actor: &str,
    action: &'static str,
    why: &str,
) -> ApiError {
    match state.audit(
        conn,
        actor,
        "jwtSvid",
        action,
        actor,
        Outcome::Denied,
        Some(why.into()),
        None,
    ) {
        Ok(()) => ApiError::unauthenticated(),
        Err(e) => e.into(),
    }
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
    state.secret_cache.forget(name);
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
            state.secret_cache.forget(name);
            Err(ApiError::not_found(format!("no secret named {name:?}")))
        }
        Some(_) => Err(ApiError::not_found(format!(
            "secret {name:?} is scheduled for deletion; restore it to use it"
        ))),
        None => Err(ApiError::not_found(format!("no secret named {name:?}"))),
    }
}

/// A value in a request: `secretString` or `secretBinary` (base64), never both.
fn value_of(string: &Option<String>, binary: &Option<String>) -> Result<(Vec<u8>, bool), ApiError> {
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
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the value is {} bytes; a secret value is at most {MAX_VALUE_BYTES}",
            bytes.len()
        )));
    }
    Ok((bytes, is_binary))
}

fn seal_version(
    state: &AppState,
    name: &str,
    value: &[u8],
    binary: bool,
) -> Result<VersionRecord, ApiError> {
    let version_id = model::new_version_id().map_err(|e| ApiError::internal("version id", e))?;
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

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Create>,
) -> Result<Json<Value>, ApiError> {
    model::check_name(&body.name).map_err(|e| ApiError::bad_request(format!("name: {e}")))?;
    let (caller, _) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:CreateSecret",
        Some(&body.name),
    )
    .await?;
    let (value, binary) = value_of(&body.secret_string, &body.secret_binary)?;
    if body.tags.values().any(|v| !v.is_string()) {
        return Err(ApiError::bad_request(
            "tags: each tag value must be a string",
        ));
    }
    let version = seal_version(&state, &body.name, &value, binary)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let record = SecretRecord {
        name: body.name.clone(),
        description: body.description.clone(),
        tags: Value::Object(body.tags.clone()).to_string(),
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
        &state,
        &conn,
        &caller,
        "secrets:CreateSecret",
        &body.name,
        Some(format!("version {version_id}")),
        SecretChange::Create {
            secret: record,
            version,
        },
    )
    .await?;
    Ok(Json(json!({"name": body.name, "versionId": version_id})))
}

/// `PutSecretValue`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Put {
    name: String,
    #[serde(default)]
    secret_string: Option<String>,
    #[serde(default)]
    secret_binary: Option<String>,
}

pub(super) async fn put(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Put>,
) -> Result<Json<Value>, ApiError> {
    let (caller, record) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:PutSecretValue",
        Some(&body.name),
    )
    .await?;
    live(&state, &body.name, record).await?;
    let (value, binary) = value_of(&body.secret_string, &body.secret_binary)?;
    let version = seal_version(&state, &body.name, &value, binary)?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let version_id = version.version_id.clone();
    let current = version_id.clone();
    let labels = change_audited(
        &state,
        &conn,
        &caller,
        "secrets:PutSecretValue",
        &body.name,
        Some(format!("version {version_id}")),
        SecretChange::Put {
            name: body.name.clone(),
            version,
            now,
            relabel: Box::new(move |l| l.make_current(&current)),
        },
    )
    .await?
    .unwrap_or_default();
    Ok(Json(json!({
        "name": body.name,
        "versionId": version_id,
        "versionStages": labels.of(&version_id),
    })))
}

/// `GetSecretValue`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Get {
    name: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    version_stage: Option<String>,
}

pub(super) async fn get(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Get>,
) -> Result<Json<Value>, ApiError> {
    let (caller, record) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:GetSecretValue",
        Some(&body.name),
    )
    .await?;
    live(&state, &body.name, record).await?;
    let (_, labels) = state.secret_cache.meta(&state, &body.name).await?;
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
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give versionId or versionStage, not both",
            ));
        }
    };
    let version = state
        .secret_cache
        .version(&state, &body.name, &version_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "secret {:?} has no version {version_id:?}",
                body.name
            ))
        })?;
    let value = envelope::open(
        &state.master,
        &body.name,
        &version_id,
        &Sealed {
            wrapped_key: version.wrapped_key.clone(),
            ciphertext: version.ciphertext.clone(),
        },
    )
    .map_err(|e| {
        // Tampering, or a master key that does not match: on record, and a 500.
        let mut event = state.event(
            &conn,
            &caller.actor,
            caller.authenticated_by,
            "secrets:GetSecretValue",
            &resource(&body.name),
            Outcome::Failed,
        );
        event.reason = Some(format!("version {version_id}: {e}"));
        match state.audit.record(event) {
            Ok(()) => ApiError::internal("the stored value does not decrypt", e),
            Err(a) => a.into(),
        }
    })?;
    // The read is on record before the value leaves.
    audited(
        &state,
        &conn,
        &caller,
        "secrets:GetSecretValue",
        &resource(&body.name),
        Some(format!("version {version_id}")),
    )
    .await?;
    let mut answer = json!({
        "name": body.name,
        "versionId": version_id,
        "versionStages": labels.of(&version_id),
        "createdDate": rfc3339(version.created_at),
    });
    if version.binary {
        answer["secretBinary"] = json!(STANDARD.encode(&value));
    } else {
        answer["secretString"] = json!(String::from_utf8_lossy(&value));
    }
    Ok(Json(answer))
}

/// A request naming one secret.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Named {
    name: String,
}

pub(super) async fn describe(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Named>,
) -> Result<Json<Value>, ApiError> {
    let (caller, record) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:DescribeSecret",
        Some(&body.name),
    )
    .await?;
    let secret = live(&state, &body.name, record).await?;
    let labels = state.store.secret_labels(&body.name).await?;
    let versions = state.store.secret_versions(&body.name).await?;
    let mut event = state.event(
        &conn,
        &caller.actor,
        caller.authenticated_by,
        "secrets:DescribeSecret",
        &resource(&body.name),
        Outcome::Allowed,
    );
    event.decision = Some(caller.decision);
    event.matched = caller.matched.clone();
    state.audit.record(event)?;
    Ok(Json(describe_json(&secret, &labels, &versions)))
}

fn describe_json(s: &SecretRecord, labels: &model::Labels, versions: &[VersionRecord]) -> Value {
    json!({
        "name": s.name,
        "description": s.description,
        "tags": serde_json::from_str::<Value>(&s.tags).unwrap_or(json!({})),
        "createdDate": rfc3339(s.created_at),
        "lastChangedDate": rfc3339(s.updated_at),
        "resourcePolicy": s.resource_policy.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
        "rotation": s.rotation.as_deref()
            .and_then(|r| serde_json::from_str::<RotationConfig>(r).ok())
            .map(|c| rotation_json(&c, s.next_rotation_at, s.last_rotation.as_deref())),
        "versions": versions.iter().map(|v| json!({
            "versionId": v.version_id,
            "versionStages": labels.of(&v.version_id),
            "createdDate": rfc3339(v.created_at),
        })).collect::<Vec<_>>(),
    })
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (caller, _) =
        authorize_secret(&state, &headers, &conn, "secrets:ListSecrets", None).await?;
    let all = state.store.secrets().await?;
    let mut event = state.event(
        &conn,
        &caller.actor,
        caller.authenticated_by,
        "secrets:ListSecrets",
        "writ:secrets",
        Outcome::Allowed,
    );
    event.decision = Some(caller.decision);
    state.audit.record(event)?;
    Ok(Json(json!({
        "secrets": all.iter().map(|s| json!({
            "name": s.name,
            "description": s.description,
            "lastChangedDate": rfc3339(s.updated_at),
        })).collect::<Vec<_>>()
    })))
}

/// `DeleteSecret`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Delete {
    name: String,
    #[serde(default)]
    recovery_days: Option<i64>,
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Delete>,
) -> Result<Json<Value>, ApiError> {
    let days = body.recovery_days.unwrap_or(30);
    if !(7..=30).contains(&days) {
        return Err(ApiError::bad_request(
            "recoveryDays: between 7 and 30, as in Secrets Manager",
        ));
    }
    let (caller, record) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:DeleteSecret",
        Some(&body.name),
    )
    .await?;
    live(&state, &body.name, record).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let until = now + days * 86_400;
    change_audited(
        &state,
        &conn,
        &caller,
        "secrets:DeleteSecret",
        &body.name,
        Some(format!("recoverable until {}", rfc3339(until))),
        SecretChange::Delete {
            name: body.name.clone(),
            now,
            recovery_until: until,
        },
    )
    .await?;
    Ok(Json(
        json!({"name": body.name, "deletionDate": rfc3339(until)}),
    ))
}

pub(super) async fn restore(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Named>,
) -> Result<Json<Value>, ApiError> {
    let (caller, _) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:RestoreSecret",
        Some(&body.name),
    )
    .await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    change_audited(
        &state,
        &conn,
        &caller,
        "secrets:RestoreSecret",
        &body.name,
        None,
        SecretChange::Restore {
            name: body.name.clone(),
            now,
        },
    )
    .await?;
    Ok(Json(json!({"name": body.name})))
}

/// `RotateSecret`: sets the hook and schedule if given, and rotates now unless told not to.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Rotate {
    name: String,
    #[serde(default)]
    hook: Option<Hook>,
    /// `30d`, or `off` for no schedule; unchanged when absent.
    #[serde(default)]
    every: Option<String>,
    #[serde(default)]
    rotate_now: Option<bool>,
}

pub(super) async fn rotate(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Json<Value>, ApiError> {
    let action = "secrets:RotateSecret";
    let (caller, record) =
        authorize_secret(&state, &headers, &conn, action, Some(&body.name)).await?;
    let secret = live(&state, &body.name, record).await?;
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
    rotation::check_hook(&hook, &state).map_err(ApiError::bad_request)?;
    // A hook receives the current and new values and chooses the new one: whoever points
    // a secret at a hook must be allowed to read and to write its value as well.
    if stored.as_ref().is_none_or(|c| c.hook != hook) {
        for also in ["secrets:GetSecretValue", "secrets:PutSecretValue"] {
            authorize_secret(&state, &headers, &conn, also, Some(&body.name)).await?;
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
                    &state,
                    &conn,
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
            None => audited(&state, &conn, &caller, action, &res, detail).await?,
        }
        return Ok(Json(json!({
            "name": body.name,
            "rotated": false,
            "rotation": rotation_json(&config, next, None),
        })));
    }
    // Rotating now: the settings are stored first (the rotation's end reads them), and
    // the rotation's event below records them with its outcome.
    if let Some(text) = text {
        state
            .store
            .set_secret_rotation(&body.name, Some(&text), next, now)
            .await?;
        state.secret_cache.forget(&body.name);
    }
    // The rotation runs on its own task: a caller that goes away (or the request timeout)
    // must not cancel it between steps and leave AWSPENDING behind. Its success event is
    // committed with the move of AWSCURRENT; a failure is recorded here.
    let result = {
        let (task_state, name, config) = (state.clone(), body.name.clone(), config.clone());
        let succeeded = allowed_event(&state, &conn, &caller, action, &res, None);
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
            &conn,
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
        Ok(version) => Ok(Json(json!({
            "name": body.name,
            "rotated": true,
            "versionId": version,
        }))),
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

fn rotation_json(config: &RotationConfig, next: Option<i64>, last: Option<&str>) -> Value {
    json!({
        "hook": config.hook,
        "every": config.every,
        "nextRotationDate": next.map(rfc3339),
        "lastRotation": last.and_then(|l| serde_json::from_str::<Value>(l).ok()),
    })
}

/// `PutResourcePolicy` / `DeleteResourcePolicy` (a null policy).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SetPolicy {
    name: String,
    policy: Option<Value>,
}

pub(super) async fn set_policy(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SetPolicy>,
) -> Result<Json<Value>, ApiError> {
    let (caller, record) = authorize_secret(
        &state,
        &headers,
        &conn,
        "secrets:PutResourcePolicy",
        Some(&body.name),
    )
    .await?;
    live(&state, &body.name, record).await?;
    let text = match &body.policy {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    if let Some(t) = &text {
        state
            .secret_policies
            .get(PolicyKind::Resource, t)
            .map_err(|e| ApiError::bad_request(format!("policy: {e}")))?;
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    change_audited(
        &state,
        &conn,
        &caller,
        "secrets:PutResourcePolicy",
        &body.name,
        None,
        SecretChange::SetPolicy {
            name: body.name.clone(),
            policy: text,
            now,
        },
    )
    .await?;
    Ok(Json(json!({"name": body.name})))
}
