//! The secrets routes, in the shape of AWS Secrets Manager's API: one POST per operation,
//! the secret named in the body (names contain `/`). Callers are functions (by their
//! X.509-SVID over mTLS, or a JWT-SVID for the server's audience as a bearer token) and
//! operators (by admin token). A function's access is decided by the policy engine from
//! its identity policies and the secret's resource policy, on the resource
//! `writ:secret/NAME`, before a handler runs; default deny. Each handler decodes its
//! request, calls [`crate::service::secrets`] (which audits every read and change) and
//! encodes the answer.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;
use writ_api::secrets::{
    DeleteSecretRequest, GetSecretRequest, PutSecretRequest, Rotated, SecretCreated, SecretDeleted,
    SecretDescription, SecretList, SecretListEntry, SecretName, SecretNamed, SecretPolicyRequest,
    SecretValue, SecretVersionPut, VersionInfo,
};
use writ_secrets::model;

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::rotation::RotationConfig;
use crate::service::secrets::{
    NewSecret, Rotate, create_secret, delete_secret, describe_secret, get_value, list_secrets,
    put_resource_policy, put_value, restore_secret, rotate_secret, rotation_answer, value_of,
};
use crate::state::AppState;
use crate::store::{SecretRecord, VersionRecord};
use crate::tls::ConnInfo;

/// The largest request body for create and put: a 64 KiB value in base64, with room for
/// the JSON around it.
pub const MAX_VALUE_BODY_BYTES: usize = 128 * 1024;

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

pub(super) async fn get(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<GetSecretRequest>,
) -> Result<Json<SecretValue>, ApiError> {
    Ok(Json(get_value(&state, &conn, &auth, &body).await?))
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

pub(super) async fn restore(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<SecretName>,
) -> Result<Json<SecretNamed>, ApiError> {
    restore_secret(&state, &conn, &auth, &body.name).await?;
    Ok(Json(SecretNamed { name: body.name }))
}

pub(super) async fn rotate(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Json<Rotated>, ApiError> {
    Ok(Json(rotate_secret(&state, &conn, &auth, body).await?))
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
