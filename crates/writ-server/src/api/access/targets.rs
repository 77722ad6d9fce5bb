//! What a request asks to do: the actions a route declares, on the resources its path,
//! query or body names. Bodies are read here with the handler's own rules (JSON content
//! type, the route's size limit, no key given twice), so a request that cannot name its
//! resource is a 400 that says where, before anything is decided.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Caller, Decide, Resource, Target};
use crate::api::ApiError;
use crate::attest::AttestationRule;
use crate::service::{functions, intentions, revocations};
use crate::state::AppState;
use crate::tls::ConnInfo;
use writ_secrets::model;

/// The most distinct resources one batch of a token's may report on: each is a decision
/// against the token's policies (a gateway fronts a handful of functions).
pub(crate) const MAX_RESOURCES_IN: usize = 256;

/// The targets of a request, in the order they are decided.
pub(super) async fn of(
    decide: Decide,
    state: &AppState,
    parts: &mut Parts,
    body: Option<&[u8]>,
    caller: &Caller,
    conn: &ConnInfo,
) -> Result<Vec<Target>, ApiError> {
    let target = |action, resource: String| Target {
        action,
        resource,
        secret: None,
    };
    let body = || body.unwrap_or_default();
    Ok(match decide {
        Decide::On(action, Resource::Fixed(resource)) => vec![target(action, resource.into())],
        Decide::On(action, Resource::TheCaller) => vec![target(action, caller.actor.clone())],
        Decide::On(action, Resource::FunctionInPath) => {
            let name = path_name(parts).await?;
            vec![target(action, function_id(state, &name)?)]
        }
        Decide::On(action, Resource::GatewayInPath) => {
            let name = path_name(parts).await?;
            vec![target(action, gateway_id(state, &name)?)]
        }
        Decide::On(action, Resource::GatewayInBody) => {
            let Named { name } = decode(parts, body())?;
            vec![target(action, gateway_id(state, &name)?)]
        }
        Decide::On(action, Resource::SecretInBody) => {
            let Named { name } = decode(parts, body())?;
            vec![secret(action, &name)?]
        }
        Decide::On(action, Resource::IntentionInBody) => {
            let Pair {
                source,
                destination,
            } = decode(parts, body())?;
            vec![target(action, intention(&source, &destination)?)]
        }
        Decide::On(action, Resource::IntentionInQuery) => {
            let query = parts.uri.query().unwrap_or_default();
            let pair: MaybePair = query_of(query)?;
            let missing = |field: &str| {
                ApiError::bad_request(format!(
                    "{field}: missing; write DELETE /v1/intentions?source=S&destination=D"
                ))
            };
            let source = pair.source.ok_or_else(|| missing("source"))?;
            let destination = pair.destination.ok_or_else(|| missing("destination"))?;
            vec![target(action, intention(&source, &destination)?)]
        }
        Decide::Registration => {
            let r: Registration = decode(parts, body())?;
            let id = function_id(state, &r.name)?;
            let mut targets = vec![target("writ:RegisterFunction", id.clone())];
            // Who may log in as the function, and what it may do, are each an action of
            // their own: registering alone gives a function nothing but join-token logins.
            if r.attestation
                .is_some_and(|rules| rules != [AttestationRule::JoinToken])
            {
                targets.push(target("writ:PutAttestationRules", id.clone()));
            }
            if r.policies.is_some_and(|p| !p.is_empty()) {
                targets.push(target("writ:PutFunctionPolicy", id));
            }
            targets
        }
        Decide::Update => {
            let name = path_name(parts).await?;
            let id = function_id(state, &name)?;
            let u: Update = decode(parts, body())?;
            let mut targets = vec![target("writ:UpdateFunction", id.clone())];
            if u.attestation
                .is_some_and(|rules| rules != [AttestationRule::JoinToken])
            {
                targets.push(target("writ:PutAttestationRules", id.clone()));
            }
            if u.policies.is_some_and(|p| !p.is_empty()) {
                targets.push(target("writ:PutFunctionPolicy", id));
            }
            targets
        }
        Decide::Revocation => {
            let revoke: writ_api::identity::RevokeRequest = decode(parts, body())?;
            let what = revocations::revocation(state, &revoke)?;
            vec![target(what.action, what.resource)]
        }
        Decide::SecretRotation => {
            let Rotation { name, hook } = decode(parts, body())?;
            let mut targets = vec![secret("secrets:RotateSecret", &name)?];
            // A hook receives the current and new values and chooses the new one: whoever
            // points a secret at a hook must be allowed to read and to write its value.
            if hook.is_some() {
                targets.push(secret("secrets:GetSecretValue", &name)?);
                targets.push(secret("secrets:PutSecretValue", &name)?);
            }
            targets
        }
        Decide::AuditEvents => {
            // Made of structs alone, as the handler's: serde refuses a field given twice
            // itself, and the pass that finds keys given twice is skipped for batches of
            // thousands of events (see ApiJsonOfStructs).
            let batch: Batch = crate::api::decode_json(&parts.headers, body(), false)?;
            match caller.function() {
                // An agent reports what its own function did; only a gateway (by token)
                // reports for other callers.
                Some(_) => {
                    if let Some((i, e)) = batch
                        .events
                        .iter()
                        .enumerate()
                        .find(|(_, e)| e.actor != caller.actor)
                    {
                        let why = format!(
                            "events[{i}].actor: an SVID may report only its own events ({}), \
                             not {:?}",
                            caller.actor, e.actor
                        );
                        return Err(super::denied(
                            state,
                            conn,
                            caller,
                            "writ:PutAuditEvents",
                            "writ:audit",
                            writ_audit::Decision::ImplicitDeny,
                            Vec::new(),
                            why,
                        ));
                    }
                    vec![target("writ:PutAuditEvents", "writ:audit".into())]
                }
                None => {
                    let mut resources: Vec<String> =
                        batch.events.into_iter().map(|e| e.resource).collect();
                    resources.sort_unstable();
                    resources.dedup();
                    if resources.is_empty() {
                        resources.push("writ:audit".into());
                    }
                    if resources.len() > MAX_RESOURCES_IN {
                        return Err(ApiError::bad_request(format!(
                            "events: at most {MAX_RESOURCES_IN} distinct resources per batch, \
                             got {}",
                            resources.len()
                        )));
                    }
                    resources
                        .into_iter()
                        .map(|r| target("writ:PutAuditEvents", r))
                        .collect()
                }
            }
        }
    })
}

/// A body's `name`, whatever else it holds (the handler reads the rest).
#[derive(Deserialize)]
struct Named {
    name: String,
}

/// A body's `source` and `destination`.
#[derive(Deserialize)]
struct Pair {
    source: String,
    destination: String,
}

/// A query's `source` and `destination`, either of which may be missing.
#[derive(Deserialize)]
struct MaybePair {
    source: Option<String>,
    destination: Option<String>,
}

/// What a registration gives beyond a name.
#[derive(Deserialize)]
struct Registration {
    name: String,
    #[serde(default)]
    attestation: Option<Vec<AttestationRule>>,
    #[serde(default)]
    policies: Option<Vec<serde_json::Value>>,
}

/// What an update gives.
#[derive(Deserialize)]
struct Update {
    #[serde(default)]
    attestation: Option<Vec<AttestationRule>>,
    #[serde(default)]
    policies: Option<Vec<serde_json::Value>>,
}

/// A rotation's secret, and whether it names a hook.
#[derive(Deserialize)]
struct Rotation {
    name: String,
    #[serde(default)]
    hook: Option<serde_json::Value>,
}

/// The reporters and resources of a batch of audit events.
#[derive(Deserialize)]
struct Batch {
    events: Vec<Reported>,
}

#[derive(Deserialize)]
struct Reported {
    actor: String,
    resource: String,
}

/// The body as `T`, by the rules of [`crate::api::ApiJson`].
fn decode<T: DeserializeOwned>(parts: &Parts, body: &[u8]) -> Result<T, ApiError> {
    crate::api::decode_json(&parts.headers, body, true)
}

/// The query string as `T`; a bad one is a 400 naming the parameter.
fn query_of<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::bad_request("query string: not a valid query"))?,
    )
    .map(|q| q.0)
    .map_err(|rejection| {
        ApiError::bad_request(format!(
            "query string: {}",
            std::error::Error::source(&rejection)
                .map(ToString::to_string)
                .unwrap_or_else(|| rejection.body_text())
        ))
    })
}

/// The path's `{name}`.
async fn path_name(parts: &mut Parts) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("path: {}", e.body_text())))?;
    params
        .iter()
        .find(|(key, _)| *key == "name")
        .map(|(_, value)| value.to_string())
        .ok_or_else(|| ApiError::internal("a route declares a function in its path", "no {name}"))
}

/// The SPIFFE ID of the function named `name`, which must be a valid name.
fn function_id(state: &AppState, name: &str) -> Result<String, ApiError> {
    functions::valid_name(name)?;
    Ok(state
        .function_id(name)
        .map_err(ApiError::bad_request)?
        .to_string())
}

/// The SPIFFE ID of the gateway `name`, which must be a valid name.
fn gateway_id(state: &AppState, name: &str) -> Result<String, ApiError> {
    functions::valid_name(name).map_err(|e| {
        ApiError::bad_request(e.to_string().replace("function name", "gateway name"))
    })?;
    Ok(state
        .gateway_id(name)
        .map_err(ApiError::bad_request)?
        .to_string())
}

/// `action` on the secret `name`, which must be a valid name.
fn secret(action: &'static str, name: &str) -> Result<Target, ApiError> {
    model::check_name(name).map_err(|e| ApiError::bad_request(format!("name: {e}")))?;
    Ok(Target {
        action,
        resource: format!("writ:secret/{name}"),
        secret: Some(name.to_string()),
    })
}

/// The resource of an intention, so operators can be scoped to some destinations:
/// `writ:intention/orders/payments`, `writ:intention/*/payments`.
fn intention(source: &str, destination: &str) -> Result<String, ApiError> {
    intentions::check_name("source", source, true)?;
    intentions::check_name("destination", destination, true)?;
    Ok(format!("writ:intention/{source}/{destination}"))
}
