//! Every route of the API, declared as data: its method and path, who may call it and what
//! is decided before its handler runs ([`Access`]), and its handler. The router is built
//! from this table alone ([`super::router`]), so a route cannot be mounted without its
//! declaration, and the OpenAPI document and the route-walking tests are checked against
//! the same table. [`super::access`] enforces the declarations.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use writ_api::Endpoint;
use writ_api::endpoints as ep;

pub use super::access::{Access, Callers, Decide, Resource};
use super::{
    audit_log, aws, ca, functions, gateways, identity, intentions, quotas, revocations, secrets,
    tokens,
};
use crate::state::AppState;

/// One route: where it is, who may call it and what is decided, and its handler.
pub struct Route {
    /// The method, from the route's [`writ_api::Endpoint`].
    pub method: Method,
    /// The path, with `{name}` for parameters, from the route's [`writ_api::Endpoint`].
    pub path: &'static str,
    /// Who may call it, and what is decided before the handler runs.
    pub access: Access,
    /// Who writ-api documents as its callers (checked against `access` by a test).
    pub documented: writ_api::Callers,
    /// The largest body it takes.
    pub body_limit: usize,
    /// Its handler.
    pub handler: MethodRouter<Arc<AppState>>,
}

/// The route of `E`: its method and path are the ones clients send to, and the OpenAPI
/// document describes, by the same type.
fn route<E: Endpoint>(access: Access, handler: MethodRouter<Arc<AppState>>) -> Route {
    Route {
        method: E::METHOD,
        path: E::PATH,
        access,
        documented: E::CALLERS,
        body_limit: super::MAX_BODY_BYTES,
        handler,
    }
}

/// The kinds of credential writ-api documents for a route with this access.
pub fn documented_callers(access: Access) -> writ_api::Callers {
    match access.callers() {
        None => writ_api::Callers::Public,
        Some(Callers::Operators) => writ_api::Callers::Operators,
        Some(Callers::Functions) => writ_api::Callers::Functions,
        Some(Callers::Gateways) => writ_api::Callers::Gateways,
        Some(Callers::OperatorsOrFunctions) => writ_api::Callers::OperatorsOrFunctions,
        Some(Callers::OperatorsOrFunctionsByPolicy) => writ_api::Callers::OperatorsOrFunctionsOrJwt,
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
    let secret = |action| {
        Access::to(
            OperatorsOrFunctionsByPolicy,
            Decide::On(action, SecretInBody),
        )
    };
    vec![
        route::<ep::GetHealth>(Access::Public, get(super::health)),
        route::<ep::GetOpenApi>(Access::Public, get(super::openapi)),
        route::<ep::GetBundle>(Access::Public, get(identity::bundle)),
        route::<ep::GetJwks>(Access::Public, get(identity::jwks)),
        // A login authenticates by its evidence (a join token, an OIDC token).
        route::<ep::Login>(Access::Public, post(identity::login)),
        route::<ep::RenewSvid>(
            Access::to(Functions, Decide::On("writ:RenewSvid", TheCaller)),
            post(identity::renew),
        ),
        route::<ep::MintJwtSvid>(
            Access::to(Functions, Decide::On("writ:MintJwtSvid", TheCaller)),
            post(identity::mint_jwt),
        ),
        route::<ep::ReadRevocations>(
            Access::to(
                OperatorsOrFunctions,
                Decide::On("writ:ReadRevocations", Fixed("writ:revocations")),
            ),
            get(revocations::revocation_feed),
        ),
        route::<ep::Revoke>(
            Access::to(Operators, Decide::Revocation),
            post(revocations::revoke),
        ),
        route::<ep::ListFunctions>(
            operators("writ:ListFunctions", Fixed("writ:functions")),
            get(functions::list_functions),
        ),
        route::<ep::RegisterFunction>(
            Access::to(Operators, Decide::Registration),
            post(functions::register_function),
        ),
        route::<ep::GetFunction>(
            operators("writ:GetFunction", FunctionInPath),
            get(functions::get_function),
        ),
        route::<ep::DeleteFunction>(
            operators("writ:DeleteFunction", FunctionInPath),
            delete(functions::delete_function),
        ),
        route::<ep::UpdateFunction>(
            Access::to(Operators, Decide::Update),
            put(functions::update_function),
        ),
        route::<ep::ReinstateFunction>(
            operators("writ:ReinstateFunction", FunctionInPath),
            post(functions::reinstate_function),
        ),
        route::<ep::CreateJoinToken>(
            operators("writ:CreateJoinToken", FunctionInPath),
            post(functions::create_join_token),
        ),
        route::<ep::RegisterGateway>(
            operators("writ:RegisterGateway", GatewayInBody),
            post(gateways::register_gateway),
        ),
        route::<ep::ListGateways>(
            operators("writ:ListGateways", Fixed("writ:gateways")),
            get(gateways::list_gateways),
        ),
        route::<ep::CreateGatewayJoinToken>(
            operators("writ:CreateJoinToken", GatewayInPath),
            post(gateways::create_join_token),
        ),
        // A gateway's login authenticates by its evidence, as a function's does.
        route::<ep::GatewayLogin>(Access::Public, post(identity::gateway_login)),
        route::<ep::RenewGatewaySvid>(
            Access::to(Gateways, Decide::On("writ:RenewSvid", TheCaller)),
            post(gateways::renew),
        ),
        route::<ep::ListIntentions>(
            Access::to(
                OperatorsOrFunctions,
                Decide::On("writ:ReadIntentions", Fixed("writ:intentions")),
            ),
            get(intentions::list),
        ),
        route::<ep::PutIntention>(
            operators("writ:WriteIntention", IntentionInBody),
            put(intentions::upsert),
        ),
        route::<ep::DeleteIntention>(
            operators("writ:DeleteIntention", IntentionInQuery),
            delete(intentions::delete),
        ),
        route::<ep::CheckIntention>(
            Access::to(
                OperatorsOrFunctions,
                Decide::On("writ:ReadIntentions", Fixed("writ:intentions")),
            ),
            post(intentions::check),
        ),
        route::<ep::CreateAdminToken>(
            operators("writ:CreateToken", Fixed("writ:token")),
            post(tokens::create_admin_token),
        ),
        route::<ep::DescribeCa>(
            operators("writ:DescribeCa", Fixed("writ:ca")),
            get(ca::describe_ca),
        ),
        route::<ep::RotateCa>(
            operators("writ:RotateCa", Fixed("writ:ca")),
            post(ca::rotate_ca),
        ),
        route::<ep::ReadAuditEvents>(
            operators("writ:ReadAudit", Fixed("writ:audit")),
            get(audit_log::read_events),
        ),
        route::<ep::WriteAuditEvents>(
            Access::to(OperatorsOrFunctions, Decide::AuditEvents),
            post(audit_log::write_events),
        )
        .taking(audit_log::MAX_BATCH_BYTES),
        route::<ep::ReadAuditCheckpoints>(
            operators("writ:ReadAudit", Fixed("writ:audit")),
            get(audit_log::read_checkpoints),
        ),
        route::<ep::DeriveAwsSigningKey>(
            operators(aws::ACTION, Fixed("writ:aws-credentials")),
            post(aws::signing_key),
        ),
        route::<ep::IssueAwsCredentials>(
            Access::to(Functions, Decide::On(aws::CREDENTIALS_ACTION, TheCaller)),
            post(aws::credentials),
        ),
        route::<ep::LeaseQuota>(
            operators(quotas::ACTION, Fixed(quotas::RESOURCE)),
            post(quotas::lease),
        ),
        route::<ep::CreateSecret>(secret("secrets:CreateSecret"), post(secrets::create))
            .taking(secrets::MAX_VALUE_BODY_BYTES),
        route::<ep::PutSecretValue>(secret("secrets:PutSecretValue"), post(secrets::put))
            .taking(secrets::MAX_VALUE_BODY_BYTES),
        route::<ep::GetSecretValue>(secret("secrets:GetSecretValue"), post(secrets::get)),
        route::<ep::DescribeSecret>(secret("secrets:DescribeSecret"), post(secrets::describe)),
        route::<ep::ListSecrets>(
            Access::to(
                OperatorsOrFunctionsByPolicy,
                Decide::On("secrets:ListSecrets", Fixed("writ:secrets")),
            ),
            post(secrets::list),
        ),
        route::<ep::DeleteSecret>(secret("secrets:DeleteSecret"), post(secrets::delete)),
        route::<ep::RestoreSecret>(secret("secrets:RestoreSecret"), post(secrets::restore)),
        route::<ep::PutResourcePolicy>(
            secret("secrets:PutResourcePolicy"),
            post(secrets::set_policy),
        ),
        route::<ep::RotateSecret>(
            Access::to(OperatorsOrFunctionsByPolicy, Decide::SecretRotation),
            post(secrets::rotate),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_data_and_the_logins_are_public() {
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
                "/v1/login",
                "/v1/gateway/login"
            ]
        );
    }
}
