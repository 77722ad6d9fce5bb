//! The writ console: a web page served at `/ui/`, compiled into the binary.
//!
//! Its files ([`assets`]) are public and hold no data; every datum the console shows it reads
//! through the `/v1` API, decided by the same route table and policies as any other caller
//! ([`crate::api::access`]). Signing in exchanges an admin token for a session cookie
//! (`POST /ui/session`, [`session`]); the API takes that cookie as the token it stands for,
//! only from the console's own pages.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use writ_audit::Outcome;

use crate::api::ApiError;
use crate::api::access::Caller;
use crate::state::AppState;
use crate::tls::ConnInfo;

pub mod assets;
pub mod session;

/// The Content-Security-Policy of every console response: scripts, styles and connections
/// from this server only, no inline script or style, no framing, no plugins, no forms posted
/// anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

/// The action a console sign-in is audited under.
pub const SIGN_IN_ACTION: &str = "writ:StartConsoleSession";

/// The console's routes: its files, and its session.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(to_index))
        .route("/ui/", get(index))
        .route("/ui/{file}", get(file))
        .route("/ui/session", axum::routing::post(sign_in).delete(sign_out))
        .layer(axum::middleware::from_fn(secure_headers))
}

/// The headers every console response carries: its CSP, no sniffing, no referrer, no
/// framing, and no caching of answers by anything in between.
async fn secure_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cache-control", "no-cache"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn to_index() -> Response {
    (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, "/ui/")]).into_response()
}

async fn index() -> Response {
    file(Path("index.html".to_string())).await
}

async fn file(Path(name): Path<String>) -> Response {
    match assets::find(&name) {
        Some(asset) => ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response(),
        None => ApiError::not_found(format!("the console has no file {name:?}")).into_response(),
    }
}

/// `POST /ui/session` with `Authorization: Bearer <admin token>`: checks the token as the
/// API does, and answers with a session cookie that stands for it. Only from the console's
/// pages ([`session::same_origin`]), so another site cannot sign a browser in.
async fn sign_in(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match start_session(&state, &conn, &method, &headers).await {
        Ok(id) => (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, session::set_cookie(&id))],
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn start_session(
    state: &AppState,
    conn: &ConnInfo,
    method: &Method,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    cross_site_refused(state, conn, method, headers, SIGN_IN_ACTION)?;
    let caller =
        crate::api::access::operator::authenticate(state, headers, conn, SIGN_IN_ACTION).await?;
    let token = crate::api::access::operator::bearer(headers)
        .unwrap_or_default()
        .to_string();
    let id = session::new_id().map_err(|e| ApiError::internal("no session id", e))?;
    // Audited before the browser has the cookie: a sign-in not recorded does not happen.
    state
        .audit
        .record_durable(state.event(
            conn,
            &caller.actor,
            caller.authenticated_by,
            SIGN_IN_ACTION,
            "writ:console",
            Outcome::Allowed,
        ))
        .await?;
    state.console_sessions.start(&id, token, Instant::now());
    Ok(id)
}

/// `DELETE /ui/session`: ends the browser's session, if it has one, and clears its cookie.
async fn sign_out(
    State(state): State<Arc<AppState>>,
    Extension(conn): Extension<ConnInfo>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = cross_site_refused(&state, &conn, &method, &headers, "writ:EndConsoleSession") {
        return e.into_response();
    }
    if let Some(id) = session::cookie(&headers) {
        state.console_sessions.end(id);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::clear_cookie())],
    )
        .into_response()
}

/// Refuses (403, audited with the header that showed it) a request that does not come from
/// the console's own pages.
fn cross_site_refused(
    state: &AppState,
    conn: &ConnInfo,
    method: &Method,
    headers: &HeaderMap,
    action: &str,
) -> Result<(), ApiError> {
    let Err(why) = session::same_origin(method, headers) else {
        return Ok(());
    };
    state.audit(
        conn,
        "anonymous",
        "consoleSession",
        action,
        "writ:console",
        Outcome::Denied,
        Some(format!("refused a console session's request: {why}")),
        None,
    )?;
    Err(ApiError::forbidden(format!(
        "refused: {why}; a console session is taken only from the console's own pages"
    )))
}

/// Authenticates a request to the API by its console session cookie: it must come from the
/// console's pages, and its session must be live; then the token the session stands for is
/// authenticated as if presented (so a revoked or expired token fails here too). Refusals
/// are audited under `action`, without the session id.
pub(crate) async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    conn: &ConnInfo,
    action: &'static str,
) -> Result<Caller, ApiError> {
    cross_site_refused(state, conn, method, headers, action)?;
    crate::api::admit(state, conn, action)?;
    let token =
        session::cookie(headers).and_then(|id| state.console_sessions.token(id, Instant::now()));
    let Some(token) = token else {
        crate::api::authentication_failed(state, conn);
        state.audit(
            conn,
            "anonymous",
            "consoleSession",
            action,
            "writ:api",
            Outcome::Denied,
            Some("an unknown or expired console session".into()),
            None,
        )?;
        return Err(ApiError::unauthenticated());
    };
    crate::api::access::operator::authenticate_token(state, Some(&token), conn, action).await
}
