//! The certificate authority: describe the signing keys and rotate them.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use time::OffsetDateTime;
use writ_api::ca::{Ca, CaKey, KeyStatus};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::authority;
use crate::duration;
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

/// How long a new key is published before it signs, unless the request says otherwise:
/// long enough for gateways and agents, which follow the bundle every second, to have it.
const DEFAULT_ACTIVATE_AFTER: time::Duration = time::Duration::minutes(1);
/// The longest a new key may wait to sign.
const MAX_ACTIVATE_AFTER: time::Duration = time::Duration::days(30);

pub(super) async fn rotate_ca(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<Rotate>,
) -> Result<Json<Ca>, ApiError> {
    let kinds: &[KeyKind] = match body.kind.as_str() {
        "x509" => &[KeyKind::X509],
        "jwt" => &[KeyKind::Jwt],
        "all" => &[KeyKind::X509, KeyKind::Jwt],
        other => {
            return Err(ApiError::bad_request(format!(
                "kind: {other:?} is not x509, jwt or all"
            )));
        }
    };
    let delay = match body.activate_after.as_deref() {
        None => DEFAULT_ACTIVATE_AFTER,
        Some("0s" | "0") => time::Duration::ZERO,
        Some(text) => duration::parse(text)
            .map_err(|e| ApiError::bad_request(format!("activateAfter: {e}")))?,
    };
    if delay > MAX_ACTIVATE_AFTER {
        return Err(ApiError::bad_request(
            "activateAfter: at most 30d (a new CA lives 365d from when it is made)",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let active_from = now.unix_timestamp() + delay.whole_seconds();
    let mut new_keys = Vec::new();
    for kind in kinds {
        // The replaced key may sign right up to `active_from` a credential that lives the
        // longest lifetime allowed; it stays in the bundle until that expires.
        let (record, longest) = match kind {
            KeyKind::X509 => (
                authority::new_ca_record(&state.trust_domain, &state.master, now, active_from),
                state.limits.x509_max_ttl,
            ),
            KeyKind::Jwt => (
                authority::new_jwt_record(&state.trust_domain, &state.master, now, active_from),
                state.limits.jwt_max_ttl,
            ),
        };
        let record = record.map_err(|e| ApiError::internal("could not make a new key", e))?;
        // Certificates are backdated by 30 s; a minute of margin covers that and clock skew.
        let retire_at = active_from + longest.whole_seconds() + 60;
        new_keys.push((record, retire_at));
    }
    // All kinds rotate together or not at all.
    state.store.rotate_keys(&new_keys).await?;
    auth.record_durable(&state, &conn).await?;
    state
        .refresh(now)
        .await
        .map_err(|e| ApiError::internal("could not load the new keys", e))?;
    Ok(Json(ca_answer(&state)))
}
