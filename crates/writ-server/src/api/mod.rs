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
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use writ_api::system::{Health, HealthStatus};
use writ_api::{ErrorBody, ErrorCode};

use crate::state::AppState;

pub mod access;
mod audit_log;
mod aws;
mod ca;
mod functions;
mod gateways;
mod identity;
mod intentions;
mod quotas;
mod revocations;
pub mod routes;
pub mod secrets;
mod tokens;

/// The largest request body accepted. CSRs and policies are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The OpenAPI document served at `/v1/openapi.json`: generated from writ-api's types
/// ([`writ_api::openapi`]), with each route's decided actions added from the route table
/// (`x-writ-actions`), so the document and the router come from the same declarations.
pub fn openapi_document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = writ_api::openapi();
        for route in routes::all() {
            let actions = route.access.actions();
            if actions.is_empty() {
                continue;
            }
            let method = route.method.as_str().to_ascii_lowercase();
            if let Some(op) = doc
                .pointer_mut(&format!(
                    "/paths/{}/{method}",
                    route.path.replace('/', "~1")
                ))
                .and_then(serde_json::Value::as_object_mut)
            {
                op.insert("x-writ-actions".into(), actions.into());
            }
        }
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    })
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status, a stable code and a message for people.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: this source failed to authenticate too often; it may try again after
    /// `seconds`, which goes in `Retry-After` too.
    pub fn throttled(seconds: u64) -> ApiError {
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "tooManyFailures",
                format!(
                    "too many failed authentications from this address; try again in {seconds} s"
                ),
            )
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

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code (`notFound`, `conflict`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(ErrorCode::from_name(self.code), self.message);
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Whether to check an authentication attempt at all: a source that failed too often is
/// refused unheard (429), and the first such refusal of an episode is audited for all of
/// them ([`crate::throttle`]).
pub(crate) fn admit(
    state: &AppState,
    conn: &crate::tls::ConnInfo,
    action: &'static str,
) -> Result<(), ApiError> {
    use crate::throttle::{Admission, BURST};
    match state
        .auth_failures
        .admit(conn.remote.ip(), std::time::Instant::now())
    {
        Admission::Check => Ok(()),
        Admission::Throttled { retry_after, first } => {
            if first {
                state.audit(
                    conn,
                    "anonymous",
                    "none",
                    action,
                    "writ:authentication",
                    writ_audit::Outcome::Denied,
                    Some(format!(
                        "throttled: {BURST} failed authentications from this source; its \
                         attempts are refused unheard, and not audited one by one, until it \
                         slows down"
                    )),
                    None,
                )?;
            }
            Err(ApiError::throttled(retry_after.as_secs().max(1)))
        }
    }
}

pub(crate) use crate::service::identity::authentication_failed;

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

/// Policies as a request gives them, each a JSON document (an object) or its text, as the
/// texts the service compiles and stores.
pub(crate) fn policy_texts(given: &[serde_json::Value]) -> Vec<String> {
    given
        .iter()
        .map(|p| match p {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

impl From<crate::service::Error> for ApiError {
    fn from(e: crate::service::Error) -> ApiError {
        use crate::service::Error as E;
        match e {
            E::Invalid(message) => ApiError::bad_request(message),
            E::NotFound(message) => ApiError::not_found(message),
            E::Unauthenticated => ApiError::unauthenticated(),
            E::Forbidden(message) => ApiError::forbidden(message),
            E::Dependency { code, message } => {
                ApiError::new(StatusCode::BAD_GATEWAY, code, message)
            }
            E::Audit(e) => e.into(),
            E::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::Internal { context, cause } => ApiError::internal(context, cause),
            E::Store(e) => e.into(),
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

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        json_body(req, true).await.map(ApiJson)
    }
}

/// A JSON body as [`ApiJson`] reads it, for a type made only of structs that serde reads
/// field by field (no maps, no `serde_json::Value`, no `flatten`): serde refuses a field
/// given twice in such a struct itself, so the pass over the text that finds keys given
/// twice is skipped. It costs about as much again as the parse, which matters for the
/// audit log's batches of thousands of events.
pub struct ApiJsonOfStructs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJsonOfStructs<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        json_body(req, false).await.map(ApiJsonOfStructs)
    }
}

/// Reads a JSON body into `T`, refusing keys given twice first when `find_duplicates`.
async fn json_body<T: DeserializeOwned>(
    req: Request,
    find_duplicates: bool,
) -> Result<T, ApiError> {
    if !json_content_type(req.headers()) {
        return Err(not_json());
    }
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(MAX_BODY_BYTES, |l| l.0);
    let (parts, body) = req.into_parts();
    let bytes = read_body(body, &parts.headers, limit).await?;
    decode_json(&parts.headers, &bytes, find_duplicates)
}

/// Decodes a JSON body already read: `application/json`, no key given twice (when
/// `find_duplicates`), and errors that name the field and position.
pub(crate) fn decode_json<T: DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
    find_duplicates: bool,
) -> Result<T, ApiError> {
    if !json_content_type(headers) {
        return Err(not_json());
    }
    // Two readers may take different ones of a key given twice: refuse such a body
    // before anything reads it (a policy inside it is checked by a reader of its own).
    if find_duplicates && let Ok(text) = std::str::from_utf8(bytes) {
        writ_audit::json::no_duplicate_keys(text)
            .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    }
    // Most bodies are well-formed: parse them without tracking the path (about twice
    // as fast), and only a body that fails again for the error that names the field.
    if let Ok(value) = writ_audit::json::from_bytes::<T>(bytes) {
        return Ok(value);
    }
    match Json::<T>::from_bytes(bytes) {
        Ok(Json(value)) => Ok(value),
        Err(rejection) => Err(json_rejection(rejection)),
    }
}

/// A query string, decoded into `T` (whose fields are the parameters); a bad one is a 400 in
/// the API's error shape, naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "query string: {}",
                std::error::Error::source(&rejection)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| rejection.body_text())
            ))),
        }
    }
}

/// The longest a follower may wait in one long poll (`wait=SECONDS`).
pub const MAX_WAIT_SECONDS: u64 = 60;

/// A long poll's `wait`, refused above [`MAX_WAIT_SECONDS`] rather than cut silently.
pub(crate) fn long_poll_wait(seconds: u64) -> Result<std::time::Duration, ApiError> {
    if seconds > MAX_WAIT_SECONDS {
        return Err(ApiError::bad_request(format!(
            "query string: wait: {seconds} is more than the longest wait, {MAX_WAIT_SECONDS} seconds"
        )));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// The largest body a route takes, when it is not [`MAX_BODY_BYTES`]: set by [`limited`].
#[derive(Debug, Clone, Copy)]
struct BodyLimit(usize);

/// A route method that takes bodies of up to `bytes`.
fn limited(route: MethodRouter<Arc<AppState>>, bytes: usize) -> MethodRouter<Arc<AppState>> {
    route
        .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(bytes))
        .layer::<_, std::convert::Infallible>(axum::Extension(BodyLimit(bytes)))
}

/// How much of a body over its limit is read and thrown away before the 413 answers, so
/// a client still sending gets the answer rather than a reset connection (as nginx's
/// lingering close); a client sending more than this may still see the connection close.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// Reads a body of at most `limit` bytes; a larger one is a 413 that names the limit.
pub(crate) async fn read_body(
    body: axum::body::Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    use http_body_util::BodyExt;

    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bodyTooLarge",
            format!("the body is larger than {limit} bytes, the most this endpoint takes"),
        )
    };
    let announced = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut body = body;
    let mut buf = Vec::with_capacity(announced.unwrap_or(0).min(limit));
    let mut over = announced.is_some_and(|n| n > limit);
    let mut drained = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(format!("body: could not be read: {}", e.into_inner()))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !over && buf.len() + data.len() > limit {
            over = true;
            buf = Vec::new();
        }
        if over {
            drained += data.len();
            if drained > DRAIN_BYTES {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if over {
        return Err(too_large());
    }
    Ok(buf.into())
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
        other => ApiError::bad_request(other.body_text()),
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router = Router::new();
    for r in routes::all() {
        let (access, path, limit) = (r.access, r.path, r.body_limit);
        let admitted = r.handler.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<Arc<AppState>>,
                  req: Request,
                  next: axum::middleware::Next| {
                access::enforce(access, path, limit, state, req, next)
            },
        ));
        let method: &'static str = method_name(&r.method);
        let counted = admitted.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<Arc<AppState>>,
                  req: Request,
                  next: axum::middleware::Next| async move {
                let response = next.run(req).await;
                state
                    .metrics
                    .request(method, path, response.status().as_u16());
                response
            },
        ));
        router = router.route(r.path, counted);
    }
    // The AWS-compatible APIs (STS, Secrets Manager, SSM) answer at `/`, as AWS's do. Their
    // access is declared per operation in crate::aws::dispatch's table and decided there
    // before any handler runs; STS's AssumeRoleWithWebIdentity authenticates by its JWT-SVID.
    router = router.route(
        "/",
        axum::routing::post(crate::aws::handle).layer(DefaultBodyLimit::disable()),
    );
    // The console's files and its session: not API, and holding no data (see crate::console).
    router = router.merge(crate::console::router());
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(one_host))
        .with_state(state)
}

/// A route's method as `/metrics` names it.
fn method_name(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// HTTP/1.1 requires exactly one `Host`: a request with none, or with two that proxies on
/// the way may read differently, is refused before any handler sees it.
async fn one_host(req: Request, next: axum::middleware::Next) -> Response {
    let mut hosts = req.headers().get_all(axum::http::header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), None) => next.run(req).await,
        (None, _) => {
            ApiError::bad_request("Host header: missing; HTTP/1.1 requires one").into_response()
        }
        (Some(_), Some(_)) => {
            ApiError::bad_request("Host header: given more than once").into_response()
        }
    }
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "methodNotAllowed",
        format!(
            "{} is not allowed on {}; see /v1/openapi.json",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.store.meta().await {
        // Reads work, but writes fail (a full disk): every change and every audited
        // read fails until a write succeeds again. The reason is in general words; the
        // operator's log has the details.
        Ok(Some(_)) => match state.store.write_failure() {
            Some(failure) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: HealthStatus::Degraded,
                    trust_domain: state.trust_domain.to_string(),
                    reason: Some(format!("writes are failing: {}", failure.reason)),
                    write_failed_at: Some(rfc3339(failure.at)),
                }),
            )
                .into_response(),
            None => Json(Health {
                status: HealthStatus::Ok,
                trust_domain: state.trust_domain.to_string(),
                reason: None,
                write_failed_at: None,
            })
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
        openapi_document(),
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

/// A JWKS as the API shows it.
pub(crate) fn jwks_answer(set: &jsonwebtoken::jwk::JwkSet) -> writ_api::identity::Jwks {
    writ_api::identity::Jwks {
        keys: set
            .keys
            .iter()
            .filter_map(|k| serde_json::to_value(k).ok())
            .collect(),
    }
}

pub(crate) use crate::service::rfc3339;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn the_openapi_document_describes_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(super::openapi_document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| !k.starts_with("x-") && *k != "parameters")
                    .map(move |m| (path.clone(), m.clone()))
            })
            .collect();
        let routed: BTreeSet<(String, String)> = super::routes::all()
            .iter()
            .map(|r| (r.path.to_string(), r.method.as_str().to_ascii_lowercase()))
            .collect();
        assert_eq!(documented, routed);
        // Each route's decided actions are in the document, and the kinds of credential
        // the document names are the ones the route takes.
        for route in super::routes::all() {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            let actions: Vec<&str> = op["x-writ-actions"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            assert_eq!(
                actions,
                route.access.actions(),
                "{} {}",
                route.method,
                route.path
            );
            assert_eq!(
                route.documented,
                super::routes::documented_callers(route.access),
                "{} {}: writ-api documents other callers than the route takes",
                route.method,
                route.path
            );
        }
    }
}
