//! Gateways' routes: register and list gateways and make their join tokens (operators,
//! [`crate::service::gateways`]); a gateway's renewal of its X.509-SVID over mutual TLS.
//! Its login is [`super::identity::gateway_login`], beside the functions'.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use writ_api::gateways::{Gateway, GatewayList};
use writ_api::identity::{RenewRequest, Svid};
use writ_api::tokens::{IssuedToken, JoinTokenRequest};

use super::access::Authorized;
use super::{ApiError, ApiJson, rfc3339};
use crate::attest::AttestationRule;
use crate::duration;
use crate::service::gateways;
use crate::state::AppState;
use crate::store::GatewayRecord;
use crate::tls::ConnInfo;

/// A gateway's record as the API shows it.
fn gateway_answer(state: &AppState, g: &GatewayRecord) -> Result<Gateway, ApiError> {
    let names = gateways::stored_names(g)?;
    Ok(Gateway {
        name: g.name.clone(),
        spiffe_id: g.spiffe_id.clone(),
        attestation: serde_json::from_str(&g.attestation)
            .map_err(|e| ApiError::internal("a gateway's stored rules are unreadable", e))?,
        dns: names.dns,
        ips: names.ips.iter().map(ToString::to_string).collect(),
        x509_ttl: duration::format(crate::service::identity::gateway_ttl(state, g)),
        created_at: rfc3339(g.created_at),
    })
}

/// A gateway registration.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RegisterGateway {
    name: String,
    #[serde(default = "default_rules")]
    attestation: Vec<AttestationRule>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
    #[serde(default)]
    x509_ttl: Option<String>,
}

fn default_rules() -> Vec<AttestationRule> {
    vec![AttestationRule::JoinToken]
}

pub(super) async fn register_gateway(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RegisterGateway>,
) -> Result<impl IntoResponse, ApiError> {
    let record = gateways::register(
        &state,
        gateways::Registration {
            name: body.name,
            attestation: body.attestation,
            dns: body.dns,
            ips: body.ips,
            x509_ttl: body.x509_ttl,
        },
    )
    .await?;
    auth.record_durable(&state, &conn).await?;
    Ok((StatusCode::CREATED, Json(gateway_answer(&state, &record)?)))
}

pub(super) async fn list_gateways(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
) -> Result<Json<GatewayList>, ApiError> {
    auth.record_read(&state, &conn)?;
    let all = gateways::list(&state).await?;
    Ok(Json(GatewayList {
        gateways: all
            .iter()
            .map(|g| gateway_answer(&state, g))
            .collect::<Result<_, _>>()?,
    }))
}

pub(super) async fn create_join_token(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<JoinTokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let made = gateways::create_join_token(&state, &name, body.ttl.as_deref()).await?;
    let mut event = auth.first_event(&state, &conn);
    event.reason = Some(format!("join token {}", state.audit.hmac(&made.issued.id)));
    state.audit.record_durable(event).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            id: made.issued.id,
            token: made.issued.token,
            function: None,
            expires_at: Some(rfc3339(made.expires_at)),
        }),
    ))
}

/// A gateway renews its X.509-SVID over mutual TLS with the current one: a new key, the
/// same names it was registered with.
pub(super) async fn renew(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RenewRequest>,
) -> Result<Json<Svid>, ApiError> {
    let Some(gateway) = auth.caller.gateway() else {
        return Err(ApiError::internal(
            "a gateway's route was reached without its X.509-SVID",
            &auth.caller.actor,
        ));
    };
    Ok(Json(crate::service::identity::renew_gateway(
        &state, &conn, gateway, &body.csr,
    )?))
}
