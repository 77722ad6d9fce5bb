//! The certificate authority's routes: describe the signing keys, and rotate them
//! ([`crate::service::ca`]).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use writ_api::ca::{Ca, CaKey, KeyStatus};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::service::ca;
use crate::state::AppState;
use crate::store::KeyKind;
use crate::tls::ConnInfo;

pub(super) async fn describe_ca(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
) -> Result<Json<Ca>, ApiError> {
    auth.record_read(&state, &conn)?;
    Ok(Json(ca_answer(&state)))
}

/// The published keys and the bundle, as the API shows them.
fn ca_answer(state: &AppState) -> Ca {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let authorities = state.authorities();
    let signing_ca = authorities.signing_ca(now).map(|k| k.record.id.clone());
    let signing_jwt = authorities
        .signing_jwt_key(now)
        .map(|k| k.record.id.clone());
    let describe = |r: &crate::store::KeyRecord, signing: &Option<String>| CaKey {
        id: r.id.clone(),
        kind: match r.kind {
            KeyKind::X509 => writ_api::ca::KeyKind::X509,
            KeyKind::Jwt => writ_api::ca::KeyKind::Jwt,
        },
        status: if signing.as_deref() == Some(r.id.as_str()) {
            KeyStatus::Signing
        } else if r.active_from > now {
            KeyStatus::Prepared
        } else {
            KeyStatus::Retiring
        },
        active_from: rfc3339(r.active_from),
        published_until: r.publish_until.map(rfc3339),
    };
    let keys = authorities
        .cas
        .iter()
        .filter(|k| k.record.publish_until.is_none_or(|u| now < u))
        .map(|k| describe(&k.record, &signing_ca))
        .chain(
            authorities
                .jwt_keys
                .iter()
                .filter(|k| k.record.publish_until.is_none_or(|u| now < u))
                .map(|k| describe(&k.record, &signing_jwt)),
        )
        .collect();
    Ca {
        trust_domain: state.trust_domain.to_string(),
        keys,
        x509_bundle: authorities.bundle_pem(now),
        jwks: super::jwks_answer(&authorities.jwks(now)),
    }
}

/// A rotation request.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Rotate {
    /// `x509`, `jwt` or `all`.
    #[serde(default = "all")]
    kind: String,
    /// How long the new key is published before it signs; `0s` signs at once.
    #[serde(default)]
    activate_after: Option<String>,
}

fn all() -> String {
    "all".into()
}

pub(super) async fn rotate_ca(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Json<Ca>, ApiError> {
    ca::rotate(&state, &body.kind, body.activate_after.as_deref()).await?;
    auth.record_durable(&state, &conn).await?;
    ca::take_in_keys(&state).await?;
    Ok(Json(ca_answer(&state)))
}
