//! Every route of the API, declared as data: its method and path, who may call it, and its
//! handler. The router is built from this table alone ([`super::router`]), so a route
//! cannot be mounted without saying who may call it, and the OpenAPI document and the
//! route-walking tests are checked against the same table.
//!
//! Before any handler runs, a route refuses a request that presents no credential of a kind
//! it accepts ([`Callers::admits`]): an X.509-SVID at an operators' route, an admin token at
//! a route for functions, nothing at all where something is needed. The refusal is a 401 in
//! the API's error shape, audited and counted against the source like any failed
//! authentication. The handler then verifies the credential and decides the action on its
//! resource.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};

use super::{admin, audit, identity, intentions, secrets};
use crate::state::AppState;
use crate::tls::ConnInfo;

/// The kinds of credential a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    /// Anyone: the route gives out only public data (health, the OpenAPI document, the
    /// trust bundle), or authenticates by what the request carries (a login's evidence).
    Public,
    /// Operators, by an admin token (`Authorization: Bearer writ.admin.…`).
    Operators,
    /// Functions, by their X.509-SVID over mutual TLS.
    Functions,
    /// Operators by admin token, or functions (agents, gateways) by X.509-SVID.
    OperatorsOrFunctions,
    /// Operators by admin token, or functions by X.509-SVID or by a JWT-SVID for the server.
    OperatorsOrFunctionsOrJwt,
}

/// The credential a request presents, by its kind only (nothing is verified here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// No `Authorization` and no client certificate.
    Nothing,
    /// `Authorization: Bearer writ.admin.…`.
    AdminToken,
    /// `Authorization: Bearer` and a JWT (`eyJ…`).
    Jwt,
    /// `Authorization` of any other kind (another token, another scheme).
    OtherAuthorization,
    /// A client certificate (already verified against the trust bundle by TLS), and no
    /// `Authorization`.
    Svid,
}

impl Presented {
    /// What the request presents. An `Authorization` header wins over a certificate: the
    /// handlers read the token first.
    pub fn of(headers: &HeaderMap, has_certificate: bool) -> Presented {
        // The same reading of the header as the handlers' (admin::bearer).
        match admin::bearer(headers) {
            Some(t) if t.starts_with("writ.admin.") => Presented::AdminToken,
            Some(t) if t.starts_with("eyJ") => Presented::Jwt,
            _ if headers.contains_key(axum::http::header::AUTHORIZATION) => {
                Presented::OtherAuthorization
            }
            _ if has_certificate => Presented::Svid,
            _ => Presented::Nothing,
        }
    }
}

impl Callers {
    /// Whether a request presenting `presented` may reach the handler, which then verifies
    /// it. `Err` says what the route takes instead.
    pub fn admits(self, presented: Presented) -> Result<(), &'static str> {
        use Presented::*;
        let (ok, takes) = match self {
            Callers::Public => return Ok(()),
            Callers::Operators => (
                presented == AdminToken,
                "this route takes an admin token (Authorization: Bearer)",
            ),
            Callers::Functions => (
                presented == Svid,
                "this route takes a function's X.509-SVID (mutual TLS)",
            ),
            Callers::OperatorsOrFunctions => (
                matches!(presented, AdminToken | Svid),
                "this route takes an admin token or a function's X.509-SVID",
            ),
            Callers::OperatorsOrFunctionsOrJwt => (
                matches!(presented, AdminToken | Svid | Jwt),
                "this route takes an admin token, a function's X.509-SVID, or a JWT-SVID for \
                 the server",
            ),
        };
        if ok { Ok(()) } else { Err(takes) }
    }
}

/// One route: where it is, who may call it, and its handler.
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path, with `{name}` for parameters, as axum and OpenAPI write it.
    pub path: &'static str,
    /// Who may call it.
    pub callers: Callers,
    /// Its handler (with its own body limit where it has one).
    pub handler: MethodRouter<Arc<AppState>>,
}

fn route(
    method: Method,
    path: &'static str,
    callers: Callers,
    handler: MethodRouter<Arc<AppState>>,
) -> Route {
    Route {
        method,
        path,
        callers,
        handler,
    }
}

/// Every route of the API.
pub fn all() -> Vec<Route> {
    use Callers::*;
    let secret = |path, handler| route(Method::POST, path, OperatorsOrFunctionsOrJwt, handler);
    vec![
        route(Method::GET, "/v1/health", Public, get(super::health)),
        route(Method::GET, "/v1/openapi.json", Public, get(super::openapi)),
        route(Method::GET, "/v1/bundle", Public, get(identity::bundle)),
        route(Method::GET, "/v1/bundle/jwks", Public, get(identity::jwks)),
        // A login authenticates by its evidence (a join token, an OIDC token).
        route(Method::POST, "/v1/login", Public, post(identity::login)),
        route(
            Method::POST,
            "/v1/svid/x509",
            Functions,
            post(identity::renew),
        ),
        route(
            Method::POST,
            "/v1/svid/jwt",
            Functions,
            post(identity::mint_jwt),
        ),
        route(
            Method::GET,
            "/v1/revocations",
            OperatorsOrFunctions,
            get(identity::revocation_feed),
        ),
        route(
            Method::POST,
            "/v1/revocations",
            Operators,
            post(admin::revoke),
        ),
        route(
            Method::GET,
            "/v1/functions",
            Operators,
            get(admin::list_functions),
        ),
        route(
            Method::POST,
            "/v1/functions",
            Operators,
            post(admin::register_function),
        ),
        route(
            Method::GET,
            "/v1/functions/{name}",
            Operators,
            get(admin::get_function),
        ),
        route(
            Method::DELETE,
            "/v1/functions/{name}",
            Operators,
            delete(admin::delete_function),
        ),
        route(
            Method::POST,
            "/v1/functions/{name}/join-tokens",
            Operators,
            post(admin::create_join_token),
        ),
        route(
            Method::GET,
            "/v1/intentions",
            OperatorsOrFunctions,
            get(intentions::list),
        ),
        route(
            Method::PUT,
            "/v1/intentions",
            Operators,
            put(intentions::upsert),
        ),
        route(
            Method::DELETE,
            "/v1/intentions",
            Operators,
            delete(intentions::delete),
        ),
        route(
            Method::POST,
            "/v1/intentions/check",
            OperatorsOrFunctions,
            post(intentions::check),
        ),
        route(
            Method::POST,
            "/v1/tokens",
            Operators,
            post(admin::create_admin_token),
        ),
        route(Method::GET, "/v1/ca", Operators, get(admin::describe_ca)),
        route(
            Method::POST,
            "/v1/ca/rotate",
            Operators,
            post(admin::rotate_ca),
        ),
        route(
            Method::GET,
            "/v1/audit/events",
            Operators,
            get(audit::read_events),
        ),
        route(
            Method::POST,
            "/v1/audit/events",
            OperatorsOrFunctions,
            super::limited(post(audit::write_events), audit::MAX_BATCH_BYTES),
        ),
        route(
            Method::GET,
            "/v1/audit/checkpoints",
            Operators,
            get(audit::read_checkpoints),
        ),
        secret(
            "/v1/secrets/create",
            super::limited(post(secrets::create), secrets::MAX_VALUE_BODY_BYTES),
        ),
        secret(
            "/v1/secrets/put",
            super::limited(post(secrets::put), secrets::MAX_VALUE_BODY_BYTES),
        ),
        secret("/v1/secrets/get", post(secrets::get)),
        secret("/v1/secrets/describe", post(secrets::describe)),
        secret("/v1/secrets/list", post(secrets::list)),
        secret("/v1/secrets/delete", post(secrets::delete)),
        secret("/v1/secrets/restore", post(secrets::restore)),
        secret("/v1/secrets/policy", post(secrets::set_policy)),
        secret("/v1/secrets/rotate", post(secrets::rotate)),
    ]
}

/// Refuses, before the handler, a request that presents no credential `callers` accepts.
pub(super) async fn admit(
    callers: Callers,
    path: &'static str,
    state: Arc<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let conn = req.extensions().get::<ConnInfo>().cloned();
    let presented = Presented::of(
        req.headers(),
        conn.as_ref().is_some_and(|c| c.peer_cert.is_some()),
    );
    let Err(takes) = callers.admits(presented) else {
        return next.run(req).await;
    };
    let Some(conn) = conn else {
        // Every connection carries its ConnInfo; without one, nothing can be checked.
        return super::ApiError::unauthenticated().into_response();
    };
    if let Err(throttled) = super::admit(&state, &conn, "writ:Authenticate") {
        return throttled.into_response();
    }
    super::authentication_failed(&state, &conn);
    let reason = format!("{} {path}: {takes}", req.method());
    match state.audit(
        &conn,
        "anonymous",
        "none",
        "writ:Authenticate",
        "writ:api",
        writ_audit::Outcome::Denied,
        Some(reason),
        None,
    ) {
        Ok(()) => super::ApiError::unauthenticated().into_response(),
        Err(e) => super::ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn each_kind_of_route_admits_only_its_credentials() {
        let none = HeaderMap::new();
        let admin = with_bearer("writ.admin.0123.secret");
        let jwt = with_bearer("eyJhbGciOiJFUzI1NiJ9.e30.sig");
        let other = with_bearer("writ.join.0123.secret");
        let cases = [
            (Presented::of(&none, false), Presented::Nothing),
            (Presented::of(&none, true), Presented::Svid),
            (Presented::of(&admin, true), Presented::AdminToken),
            (Presented::of(&jwt, false), Presented::Jwt),
            (Presented::of(&other, true), Presented::OtherAuthorization),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        use Presented::*;
        let table = [
            (Callers::Public, [true, true, true, true, true]),
            (Callers::Operators, [false, true, false, false, false]),
            (Callers::Functions, [false, false, false, false, true]),
            (
                Callers::OperatorsOrFunctions,
                [false, true, false, false, true],
            ),
            (
                Callers::OperatorsOrFunctionsOrJwt,
                [false, true, true, false, true],
            ),
        ];
        for (callers, admitted) in table {
            for (presented, want) in [Nothing, AdminToken, Jwt, OtherAuthorization, Svid]
                .into_iter()
                .zip(admitted)
            {
                assert_eq!(
                    callers.admits(presented).is_ok(),
                    want,
                    "{callers:?} {presented:?}"
                );
            }
        }
    }
}
