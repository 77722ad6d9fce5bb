//! Identity routes ([`crate::service::identity`]): functions and gateways log in with an
//! attestation and get an X.509-SVID; functions renew it and mint JWT-SVIDs over mTLS
//! with the current SVID; anyone reads the trust bundle. A login's evidence is its
//! authentication, checked by the service; the other routes' callers were authenticated
//! by the access layer before the handler runs.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use writ_api::identity::{Audience, Bundle, Jwks, JwtSvid, MintJwtRequest, RenewRequest, Svid};

use super::access::Authorized;
use super::access::function::Function;
use super::{ApiError, ApiJson};
use crate::attest::Evidence;
use crate::service::identity;
use crate::state::AppState;
use crate::tls::ConnInfo;

pub(super) async fn bundle(State(state): State<Arc<AppState>>) -> Json<Bundle> {
    Json(identity::bundle(&state))
}

pub(super) async fn jwks(State(state): State<Arc<AppState>>) -> Json<Jwks> {
    Json(identity::jwks(&state))
}

/// A login: the function, its evidence, and a CSR for the key it keeps.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Login {
    function: String,
    attestation: Evidence,
    csr: String,
}

pub(super) async fn login(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<Svid>, ApiError> {
    super::admit(&state, &conn, "writ:Login")?;
    let svid =
        identity::login_function(&state, &conn, &body.function, &body.attestation, &body.csr)
            .await?;
    Ok(Json(svid))
}

/// A gateway's login: the gateway, its evidence, and a CSR for the key it keeps.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct GatewayLogin {
    gateway: String,
    attestation: Evidence,
    csr: String,
}

pub(super) async fn gateway_login(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    ApiJson(body): ApiJson<GatewayLogin>,
) -> Result<Json<Svid>, ApiError> {
    super::admit(&state, &conn, "writ:Login")?;
    let svid =
        identity::login_gateway(&state, &conn, &body.gateway, &body.attestation, &body.csr).await?;
    Ok(Json(svid))
}

/// The function that called, which the access layer authenticated by its X.509-SVID, and
/// that SVID's serial.
pub(super) fn svid_function(auth: &Authorized) -> Result<(&Function, &str), ApiError> {
    auth.function()
        .and_then(|f| Some((f, f.serial.as_deref()?)))
        .ok_or_else(|| {
            ApiError::internal(
                "a function's route was reached without its X.509-SVID",
                &auth.caller.actor,
            )
        })
}

pub(super) async fn renew(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<RenewRequest>,
) -> Result<Json<Svid>, ApiError> {
    let (caller, serial) = svid_function(&auth)?;
    Ok(Json(identity::renew_function(
        &state, &conn, caller, serial, &body.csr,
    )?))
}

pub(super) async fn mint_jwt(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    auth: Authorized,
    ApiJson(body): ApiJson<MintJwtRequest>,
) -> Result<Json<JwtSvid>, ApiError> {
    let audience = match &body.audience {
        Audience::One(a) => vec![a.as_str()],
        Audience::Many(all) => all.iter().map(String::as_str).collect(),
    };
    let (caller, serial) = svid_function(&auth)?;
    Ok(Json(identity::mint_jwt(
        &state,
        &conn,
        caller,
        serial,
        &audience,
        body.ttl.as_deref(),
    )?))
}
