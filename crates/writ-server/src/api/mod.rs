//! The HTTPS JSON API under `/v1`: routing, errors, and the extractors every handler uses.
//!
//! Errors are JSON, `{"error": {"code": "...", "message": "..."}}`, with a status that says
//! whose fault it was. Authentication failures are a plain 401 whatever the cause; the
//! cause goes to the audit event, not to the caller.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::state::AppState;

mod admin;
mod audit;
mod identity;
mod intentions;
pub mod secrets;

/// The largest request body accepted. CSRs and policies are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with a status, a stable code and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is wrong; the message says where.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }

    /// 401, the same for every cause.
    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "authentication failed",
        )
    }

    /// 403: authenticated, but policy does not allow it.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "accessDenied", message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "notFound", message)
    }

    /// 500, logged; the caller learns only that it failed.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context}; see the server log"),
        )
    }
}

impl ApiError {
    /// Whether the caller is at fault (a 4xx).
    pub fn is_client_error(&self) -> bool {
        self.status.is_client_error()
    }

    /// The message, as the caller sees it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<crate::audit::AuditError> for ApiError {
    fn from(e: crate::audit::AuditError) -> ApiError {
        ApiError::internal("the audit event could not be recorded", e)
    }
}

impl From<crate::audit::ChangeError> for ApiError {
    fn from(e: crate::audit::ChangeError) -> ApiError {
        match e {
            crate::audit::ChangeError::Store(e) => e.into(),
            crate::audit::ChangeError::Audit(e) => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::Conflict(what) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} already exists"),
            ),
            other => ApiError::internal("the store failed", other),
        }
    }
}

/// A JSON body: `application/json`, at most [`MAX_BODY_BYTES`], no unknown fields (the
/// request types deny them), and errors that name the field and position.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(not_json());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(JsonRejection::BytesRejection(e)))?;
        // Most bodies are well-formed: parse them without tracking the path (about twice
        // as fast), and only a body that fails again for the error that names the field.
        if let Ok(value) = writ_audit::json::from_bytes::<T>(&bytes) {
            return Ok(ApiJson(value));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// `application/json`, or `application/…+json`, as axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupportedMediaType",
        "the body must be JSON, sent with Content-Type: application/json",
    )
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => not_json(),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(format!(
            "body: {}",
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.body_text())
        )),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
            "body is not valid JSON: {}",
            std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_else(|| e.body_text())
        )),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "bodyTooLarge",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        other => ApiError::bad_request(other.body_text()),
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/bundle", get(identity::bundle))
        .route("/v1/bundle/jwks", get(identity::jwks))
        .route("/v1/login", post(identity::login))
        .route("/v1/svid/x509", post(identity::renew))
        .route("/v1/svid/jwt", post(identity::mint_jwt))
        .route(
            "/v1/revocations",
            get(identity::revocation_feed).post(admin::revoke),
        )
        .route(
            "/v1/functions",
            get(admin::list_functions).post(admin::register_function),
        )
        .route(
            "/v1/functions/{name}",
            get(admin::get_function).delete(admin::delete_function),
        )
        .route(
            "/v1/functions/{name}/join-tokens",
            post(admin::create_join_token),
        )
        .route(
            "/v1/intentions",
            get(intentions::list)
                .put(intentions::upsert)
                .delete(intentions::delete),
        )
        .route("/v1/intentions/check", post(intentions::check))
        .route("/v1/tokens", post(admin::create_admin_token))
        .route("/v1/ca", get(admin::describe_ca))
        .route("/v1/ca/rotate", post(admin::rotate_ca))
        .route(
            "/v1/audit/events",
            get(audit::read_events)
                .post(audit::write_events)
                .layer(DefaultBodyLimit::max(audit::MAX_BATCH_BYTES)),
        )
        .route("/v1/audit/checkpoints", get(audit::read_checkpoints))
        .route(
            "/v1/secrets/create",
            post(secrets::create).layer(DefaultBodyLimit::max(secrets::MAX_VALUE_BODY_BYTES)),
        )
        .route(
            "/v1/secrets/put",
            post(secrets::put).layer(DefaultBodyLimit::max(secrets::MAX_VALUE_BODY_BYTES)),
        )
        .route("/v1/secrets/get", post(secrets::get))
        .route("/v1/secrets/describe", post(secrets::describe))
        .route("/v1/secrets/list", post(secrets::list))
        .route("/v1/secrets/delete", post(secrets::delete))
        .route("/v1/secrets/restore", post(secrets::restore))
        .route("/v1/secrets/policy", post(secrets::set_policy))
        .route("/v1/secrets/rotate", post(secrets::rotate))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.store.meta().await {
        // Reads work, but writes fail (a full disk): every change and every audited
        // read fails until a write succeeds again. The reason is in general words; the
        // operator's log has the details.
        Ok(Some(_)) => match state.store.write_failure() {
            Some(failure) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "degraded",
                    "trustDomain": state.trust_domain.as_str(),
                    "reason": format!("writes are failing: {}", failure.reason),
                    "writeFailedAt": rfc3339(failure.at),
                })),
            )
                .into_response(),
            None => Json(json!({
                "status": "ok",
                "trustDomain": state.trust_domain.as_str(),
            }))
            .into_response(),
        },
        Ok(None) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "not initialised",
        )
        .into_response(),
        Err(e) => {
            // The details (host names, database errors) are for the operator's log only.
            tracing::warn!(error = %e, "health check: the store is unreachable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unreachable",
            )
            .into_response()
        }
    }
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}; see /v1/openapi.json",
        req.method(),
        req.uri().path()
    ))
}

/// Formats a Unix time as RFC 3339.
pub(crate) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// The paths [`super::router`] serves; the OpenAPI document must describe exactly these.
    const ROUTED: &[(&str, &[&str])] = &[
        ("/v1/health", &["get"]),
        ("/v1/openapi.json", &["get"]),
        ("/v1/bundle", &["get"]),
        ("/v1/bundle/jwks", &["get"]),
        ("/v1/login", &["post"]),
        ("/v1/svid/x509", &["post"]),
        ("/v1/svid/jwt", &["post"]),
        ("/v1/revocations", &["get", "post"]),
        ("/v1/functions", &["get", "post"]),
        ("/v1/functions/{name}", &["delete", "get"]),
        ("/v1/functions/{name}/join-tokens", &["post"]),
        ("/v1/intentions", &["delete", "get", "put"]),
        ("/v1/intentions/check", &["post"]),
        ("/v1/tokens", &["post"]),
        ("/v1/ca", &["get"]),
        ("/v1/ca/rotate", &["post"]),
        ("/v1/audit/events", &["get", "post"]),
        ("/v1/audit/checkpoints", &["get"]),
        ("/v1/secrets/create", &["post"]),
        ("/v1/secrets/put", &["post"]),
        ("/v1/secrets/get", &["post"]),
        ("/v1/secrets/describe", &["post"]),
        ("/v1/secrets/list", &["post"]),
        ("/v1/secrets/delete", &["post"]),
        ("/v1/secrets/restore", &["post"]),
        ("/v1/secrets/policy", &["post"]),
        ("/v1/secrets/rotate", &["post"]),
    ];

    #[test]
    fn the_openapi_document_describes_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut documented: Vec<(String, Vec<String>)> = paths
            .iter()
            .map(|(p, ops)| {
                let mut methods: Vec<String> = ops.as_object().unwrap().keys().cloned().collect();
                methods.sort();
                (p.clone(), methods)
            })
            .collect();
        documented.sort();
        let mut routed: Vec<(String, Vec<String>)> = ROUTED
            .iter()
            .map(|(p, m)| (p.to_string(), m.iter().map(|s| s.to_string()).collect()))
            .collect();
        routed.sort();
        assert_eq!(documented, routed);
        // Every schema reference resolves.
        let text = super::OPENAPI;
        for part in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
