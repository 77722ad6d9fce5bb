//! Every route of the API, declared as data: its method and path, who may call it and what
//! is decided before its handler runs ([`Access`]), and its handler. The router is built
//! from this table alone ([`super::router`]), so a route cannot be mounted without its
//! declaration, and the OpenAPI document and the route-walking tests are checked against
//! the same table. [`super::access`] enforces the declarations.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

pub use super::access::{Access, Callers, Decide, Resource};
use super::{audit_log, ca, functions, identity, intentions, revocations, secrets, tokens};
use crate::state::AppState;

/// One route: where it is, who may call it and what is decided, and its handler.
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path, with `{name}` for parameters, as axum and OpenAPI write it.
    pub path: &'static str,
    /// Who may call it, and what is decided before the handler runs.
    pub access: Access,
    /// The largest body it takes.
    pub body_limit: usize,
    /// Its handler.
    pub handler: MethodRouter<Arc<AppState>>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<Arc<AppState>>,
) -> Route {
    Route {
        method,
        path,
        access,
        body_limit: super::MAX_BODY_BYTES,
        handler,
    }
}

impl Route {
    /// The route, taking bodies of up to `bytes` rather than [`super::MAX_BODY_BYTES`].
    fn taking(mut self, bytes: usize) -> Route {
        self.handler = super::limited(self.handler, bytes);
        self.body_limit = bytes;
        self
    }
}

/// Every route of the API.
pub fn all() -> Vec<Route> {
    use Callers::*;
    use Resource::*;
    let operators = |action, resource| Access::to(Operators, Decide::On(action, resource));
    let secret = |path, action, handler| {
        route(
            Method::POST,
            path,
            Access::to(
                OperatorsOrFunctionsByPolicy,
                Decide::On(action, SecretInBody),
            ),
            handler,
        )
    };
    vec![
        route(
            Method::GET,
            "/v1/health",
            Access::Public,
            get(super::health),
        ),
        route(
            Method::GET,
            "/v1/openapi.json",
            Access::Public,
            get(super::openapi),
        ),
        route(
            Method::GET,
            "/v1/bundle",
            Access::Public,
            get(identity::bundle),
        ),
        route(
            Method::GET,
            "/v1/bundle/jwks",
            Access::Public,
            get(identity::jwks),
        ),
        // A login authenticates by its evidence (a join token, an OIDC token).
        route(
            Method::POST,
            "/v1/login",
            Access::Public,
            post(identity::login),
        ),
        route(
            Method::POST,
            "/v1/svid/x509",
            Access::to(Functions, Decide::On("writ:RenewSvid", TheCaller)),
            post(identity::renew),
        ),
        route(
            Method::POST,
            "/v1/svid/jwt",
            Access::to(Functions, Decide::On("writ:MintJwtSvid", TheCaller)),
            post(identity::mint_jwt),
        ),
        route(
            Method::GET,
            "/v1/revocations",
            Access::to(
                OperatorsOrFunctions,
                Decide::On("writ:ReadRevocations", Fixed("writ:revocations")),
            ),
            get(revocations::revocation_feed),
        ),
        route(
            Method::POST,
            "/v1/revocations",
            Access::to(Operators, Decide::Revocation),
            post(revocations::revoke),
        ),
        route(
            Method::GET,
            "/v1/functions",
            operators("writ:ListFunctions", Fixed("writ:functions")),
            get(functions::list_functions),
        ),
        route(
            Method::POST,
            "/v1/functions",
            Access::to(Operators, Decide::Registration),
            post(functions::register_function),
        ),
        route(
            Method::GET,
            "/v1/functions/{name}",
            operators("writ:GetFunction", FunctionInPath),
            get(functions::get_function),
        ),
        route(
            Method::DELETE,
            "/v1/functions/{name}",
            operators("writ:DeleteFunction", FunctionInPath),
            delete(functions::delete_function),
        ),
        route(
            Method::POST,
            "/v1/functions/{name}/join-tokens",
            operators("writ:CreateJoinToken", FunctionInPath),
            post(functions::create_join_token),
        ),
        route(
            Method::GET,
            "/v1/intentions",
            Access::to(
                OperatorsOrFunctions,
                Decide::On("writ:ReadIntentions", Fixed("writ:intentions")),
            ),
            get(intentions::list),
        ),
        route(
            Method::PUT,
            "/v1/intentions",
            operators("writ:WriteIntention", IntentionInBody),
            put(intentions::upsert),
        ),
        route(
            Method::DELETE,
            "/v1/intentions",
            operators("writ:DeleteIntention", IntentionInQuery),
            delete(intentions::delete),
        ),
        route(
            Method::POST,
            "/v1/intentions/check",
            Access::to(
                OperatorsOrFunctions,
                Decide::On("writ:ReadIntentions", Fixed("writ:intentions")),
            ),
            post(intentions::check),
        ),
        route(
            Method::POST,
            "/v1/tokens",
            operators("writ:CreateToken", Fixed("writ:token")),
            post(tokens::create_admin_token),
        ),
        route(
            Method::GET,
            "/v1/ca",
            operators("writ:DescribeCa", Fixed("writ:ca")),
            get(ca::describe_ca),
        ),
        route(
            Method::POST,
            "/v1/ca/rotate",
            operators("writ:RotateCa", Fixed("writ:ca")),
            post(ca::rotate_ca),
        ),
        route(
            Method::GET,
            "/v1/audit/events",
            operators("writ:ReadAudit", Fixed("writ:audit")),
            get(audit_log::read_events),
        ),
        route(
            Method::POST,
            "/v1/audit/events",
            Access::to(OperatorsOrFunctions, Decide::AuditEvents),
            post(audit_log::write_events),
        )
        .taking(audit_log::MAX_BATCH_BYTES),
        route(
            Method::GET,
            "/v1/audit/checkpoints",
            operators("writ:ReadAudit", Fixed("writ:audit")),
            get(audit_log::read_checkpoints),
        ),
        secret(
            "/v1/secrets/create",
            "secrets:CreateSecret",
            post(secrets::create),
        )
        .taking(secrets::MAX_VALUE_BODY_BYTES),
        secret(
            "/v1/secrets/put",
            "secrets:PutSecretValue",
            post(secrets::put),
        )
        .taking(secrets::MAX_VALUE_BODY_BYTES),
        secret(
            "/v1/secrets/get",
            "secrets:GetSecretValue",
            post(secrets::get),
        ),
        secret(
            "/v1/secrets/describe",
            "secrets:DescribeSecret",
            post(secrets::describe),
        ),
        route(
            Method::POST,
            "/v1/secrets/list",
            Access::to(
                OperatorsOrFunctionsByPolicy,
                Decide::On("secrets:ListSecrets", Fixed("writ:secrets")),
            ),
            post(secrets::list),
        ),
        secret(
            "/v1/secrets/delete",
            "secrets:DeleteSecret",
            post(secrets::delete),
        ),
        secret(
            "/v1/secrets/restore",
            "secrets:RestoreSecret",
            post(secrets::restore),
        ),
        secret(
            "/v1/secrets/policy",
            "secrets:PutResourcePolicy",
            post(secrets::set_policy),
        ),
        route(
            Method::POST,
            "/v1/secrets/rotate",
            Access::to(OperatorsOrFunctionsByPolicy, Decide::SecretRotation),
            post(secrets::rotate),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_data_and_the_login_are_public() {
        let public: Vec<&str> = all()
            .iter()
            .filter(|r| r.access.is_public())
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            [
                "/v1/health",
                "/v1/openapi.json",
                "/v1/bundle",
                "/v1/bundle/jwks",
                "/v1/login"
            ]
        );
    }
}
