//! Every route of the server's `/v1` API, one zero-sized type each, and [`all`], the list
//! the OpenAPI document is generated from.
//!
//! | route | type | request | answer |
//! |---|---|---|---|
//! | `GET /v1/health` | [`GetHealth`] | — | [`Health`] |
//! | `GET /v1/openapi.json` | [`GetOpenApi`] | — | [`OpenApiDocument`] |
//! | `GET /v1/bundle` | [`GetBundle`] | — | [`Bundle`] |
//! | `GET /v1/bundle/jwks` | [`GetJwks`] | — | [`Jwks`] |
//! | `POST /v1/login` | [`Login`] | [`LoginRequest`] | [`Svid`] |
//! | `POST /v1/svid/x509` | [`RenewSvid`] | [`RenewRequest`] | [`Svid`] |
//! | `POST /v1/svid/jwt` | [`MintJwtSvid`] | [`MintJwtRequest`] | [`JwtSvid`] |
//! | `GET /v1/revocations` | [`ReadRevocations`] | [`FeedQuery`] | [`Feed`] |
//! | `POST /v1/revocations` | [`Revoke`] | [`RevokeRequest`] | [`Revoked`] |
//! | `GET /v1/functions` | [`ListFunctions`] | — | [`FunctionList`] |
//! | `POST /v1/functions` | [`RegisterFunction`] | [`RegisterFunctionRequest`] | [`Function`] |
//! | `GET /v1/functions/{name}` | [`GetFunction`] | [`FunctionName`] | [`Function`] |
//! | `DELETE /v1/functions/{name}` | [`DeleteFunction`] | [`FunctionName`] | [`NoContent`] |
//! | `PUT /v1/functions/{name}` | [`UpdateFunction`] | [`UpdateFunctionFor`] | [`Function`] |
//! | `POST /v1/functions/{name}/reinstate` | [`ReinstateFunction`] | [`FunctionName`] | [`Function`] |
//! | `POST /v1/functions/{name}/join-tokens` | [`CreateJoinToken`] | [`JoinTokenFor`] | [`IssuedToken`] |
//! | `POST /v1/gateways` | [`RegisterGateway`] | [`RegisterGatewayRequest`] | [`Gateway`] |
//! | `GET /v1/gateways` | [`ListGateways`] | — | [`GatewayList`] |
//! | `POST /v1/gateways/{name}/join-tokens` | [`CreateGatewayJoinToken`] | [`GatewayJoinTokenFor`] | [`IssuedToken`] |
//! | `POST /v1/gateway/login` | [`GatewayLogin`] | [`GatewayLoginRequest`] | [`Svid`] |
//! | `POST /v1/gateway/svid` | [`RenewGatewaySvid`] | [`RenewRequest`] | [`Svid`] |
//! | `GET /v1/intentions` | [`ListIntentions`] | [`IntentionsQuery`] | [`IntentionList`] |
//! | `PUT /v1/intentions` | [`PutIntention`] | [`Intention`] | [`IntentionWritten`] |
//! | `DELETE /v1/intentions` | [`DeleteIntention`] | [`IntentionPair`] | [`IntentionDeleted`] |
//! | `POST /v1/intentions/check` | [`CheckIntention`] | [`CheckRequest`] | [`IntentionVerdict`] |
//! | `POST /v1/tokens` | [`CreateAdminToken`] | [`AdminTokenRequest`] | [`IssuedToken`] |
//! | `GET /v1/ca` | [`DescribeCa`] | — | [`Ca`] |
//! | `POST /v1/ca/rotate` | [`RotateCa`] | [`RotateCaRequest`] | [`Ca`] |
//! | `GET /v1/audit/events` | [`ReadAuditEvents`] | [`EventsQuery`] | [`AuditRecords`] |
//! | `POST /v1/audit/events` | [`WriteAuditEvents`] | [`EventBatch`] | [`Accepted`] |
//! | `GET /v1/audit/checkpoints` | [`ReadAuditCheckpoints`] | [`CheckpointsQuery`] | [`Checkpoints`] |
//! | `POST /v1/aws/signing-key` | [`DeriveAwsSigningKey`] | [`SigningKeyRequest`] | [`SigningKey`] |
//! | `POST /v1/aws/credentials` | [`IssueAwsCredentials`] | [`AwsCredentialsRequest`] | [`AwsCredentials`] |
//! | `POST /v1/quotas/lease` | [`LeaseQuota`] | [`QuotaLeaseRequest`] | [`QuotaLease`] |
//! | `POST /v1/secrets/create` | [`CreateSecret`] | [`CreateSecretRequest`] | [`SecretCreated`] |
//! | `POST /v1/secrets/put` | [`PutSecretValue`] | [`PutSecretRequest`] | [`SecretVersionPut`] |
//! | `POST /v1/secrets/get` | [`GetSecretValue`] | [`GetSecretRequest`] | [`SecretValue`] |
//! | `POST /v1/secrets/describe` | [`DescribeSecret`] | [`SecretName`] | [`SecretDescription`] |
//! | `POST /v1/secrets/list` | [`ListSecrets`] | — | [`SecretList`] |
//! | `POST /v1/secrets/delete` | [`DeleteSecret`] | [`DeleteSecretRequest`] | [`SecretDeleted`] |
//! | `POST /v1/secrets/restore` | [`RestoreSecret`] | [`SecretName`] | [`SecretNamed`] |
//! | `POST /v1/secrets/policy` | [`PutResourcePolicy`] | [`SecretPolicyRequest`] | [`SecretNamed`] |
//! | `POST /v1/secrets/rotate` | [`RotateSecret`] | [`RotateSecretRequest`] | [`Rotated`] |

use std::borrow::Cow;

use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};
use writ_policy::intentions::Intention;

use crate::audit::{
    Accepted, AuditRecords, Checkpoints, CheckpointsQuery, EventBatch, EventsQuery,
};
use crate::aws::{AwsCredentials, AwsCredentialsRequest, SigningKey, SigningKeyRequest};
use crate::ca::{Ca, RotateCaRequest};
use crate::endpoint::{
    Callers, Endpoint, EndpointInfo, NoBody, NoContent, NoRequest, documented, percent_encode,
    query_string,
};
use crate::functions::{
    Function, FunctionList, FunctionName, RegisterFunctionRequest, UpdateFunctionFor,
    UpdateFunctionRequest, name_parameter,
};
use crate::gateways::{
    Gateway, GatewayJoinTokenFor, GatewayList, GatewayLoginRequest, RegisterGatewayRequest,
    gateway_name_parameter,
};
use crate::identity::{
    Bundle, Feed, FeedQuery, Jwks, JwtSvid, LoginRequest, MintJwtRequest, RenewRequest,
    RevokeRequest, Revoked, Svid,
};
use crate::intentions::{
    CheckRequest, IntentionDeleted, IntentionList, IntentionPair, IntentionVerdict,
    IntentionWritten, IntentionsQuery,
};
use crate::quotas::{QuotaLease, QuotaLeaseRequest};
use crate::secrets::{
    CreateSecretRequest, DeleteSecretRequest, GetSecretRequest, PutSecretRequest,
    RotateSecretRequest, Rotated, SecretCreated, SecretDeleted, SecretDescription, SecretList,
    SecretName, SecretNamed, SecretPolicyRequest, SecretValue, SecretVersionPut,
};
use crate::system::{Health, OpenApiDocument};
use crate::tokens::{AdminTokenRequest, IssuedToken, JoinTokenFor, JoinTokenRequest};

/// Declares a route: its type and what it says of itself; the rest of the `impl` follows.
macro_rules! endpoint {
    (
        $(#[$doc:meta])*
        $name:ident: $method:ident $path:literal by $callers:ident answers $status:ident,
        $operation:literal, $tag:literal, $summary:literal,
        [$(($code:literal, $why:literal)),* $(,)?]
        { $($items:tt)* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Endpoint for $name {
            const METHOD: http::Method = http::Method::$method;
            const PATH: &'static str = $path;
            const CALLERS: Callers = Callers::$callers;
            const STATUS: http::StatusCode = http::StatusCode::$status;
            const OPERATION: &'static str = $operation;
            const SUMMARY: &'static str = $summary;
            const TAG: &'static str = $tag;
            const ERRORS: &'static [(u16, &'static str)] = &[$(($code, $why)),*];
            $($items)*
        }
    };
}

/// The items of a route that takes nothing and answers `$answer`.
macro_rules! takes_nothing {
    ($answer:ty) => {
        type Request = NoRequest;
        type Body = NoBody;
        type Answer = $answer;

        fn body(_: &NoRequest) -> Option<&NoBody> {
            None
        }
    };
}

/// The items of a route whose request is its JSON body.
macro_rules! takes_body {
    ($request:ty => $answer:ty) => {
        type Request = $request;
        type Body = $request;
        type Answer = $answer;

        fn body(request: &$request) -> Option<&$request> {
            Some(request)
        }
    };
}

/// The items of a route whose request is its query string.
macro_rules! takes_query {
    ($request:ty => $answer:ty) => {
        type Request = $request;
        type Body = NoBody;
        type Answer = $answer;

        fn query(request: &$request) -> Option<String> {
            query_string(request).ok().filter(|q| !q.is_empty())
        }

        fn body(_: &$request) -> Option<&NoBody> {
            None
        }

        fn parameters() -> Vec<Parameter> {
            <$request as IntoParams>::into_params(|| Some(ParameterIn::Query))
        }
    };
}

documented!(
    Health,
    OpenApiDocument,
    Bundle,
    Jwks,
    LoginRequest,
    Svid,
    RenewRequest,
    MintJwtRequest,
    JwtSvid,
    Feed,
    RevokeRequest,
    Revoked,
    FunctionList,
    RegisterFunctionRequest,
    UpdateFunctionRequest,
    Function,
    RegisterGatewayRequest,
    Gateway,
    GatewayList,
    GatewayLoginRequest,
    JoinTokenRequest,
    IssuedToken,
    IntentionList,
    IntentionWritten,
    IntentionDeleted,
    CheckRequest,
    IntentionVerdict,
    AdminTokenRequest,
    Ca,
    RotateCaRequest,
    AuditRecords,
    EventBatch,
    Accepted,
    Checkpoints,
    SigningKeyRequest,
    AwsCredentialsRequest,
    AwsCredentials,
    SigningKey,
    QuotaLeaseRequest,
    QuotaLease,
    CreateSecretRequest,
    SecretCreated,
    PutSecretRequest,
    SecretVersionPut,
    GetSecretRequest,
    SecretValue,
    SecretName,
    SecretDescription,
    SecretList,
    DeleteSecretRequest,
    SecretDeleted,
    SecretNamed,
    SecretPolicyRequest,
    RotateSecretRequest,
    Rotated,
);

/// An intention is sent as the policy engine's own type, described by its schema.
impl crate::endpoint::Documented for Intention {
    fn document(
        schemas: &mut crate::endpoint::Schemas,
    ) -> Option<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>> {
        crate::endpoint::document_as::<crate::schemas::IntentionSchema>(schemas)
    }
}

/// `PATH` with `{name}` replaced by the function's name, percent-encoded.
fn function_path(path: &'static str, function: &FunctionName) -> Cow<'static, str> {
    Cow::Owned(path.replace("{name}", &percent_encode(&function.0)))
}

endpoint! {
    /// `GET /v1/health`: whether the server serves, and its trust domain.
    GetHealth: GET "/v1/health" by Public answers OK,
    "getHealth", "system", "Liveness and store reachability",
    [(503, "degraded: writes are failing (the Health shape, status degraded); or the store is unreachable or not initialised (the error shape)")]
    { takes_nothing!(Health); }
}

endpoint! {
    /// `GET /v1/openapi.json`: the OpenAPI document, generated from these types.
    GetOpenApi: GET "/v1/openapi.json" by Public answers OK,
    "getOpenApi", "system", "This document", []
    { takes_nothing!(OpenApiDocument); }
}

endpoint! {
    /// `GET /v1/bundle`: the trust bundle.
    GetBundle: GET "/v1/bundle" by Public answers OK,
    "getBundle", "identity", "The trust bundle: CA certificates (PEM) and the JWT-SVID JWKS", []
    { takes_nothing!(Bundle); }
}

endpoint! {
    /// `GET /v1/bundle/jwks`: the JWKS that verifies JWT-SVIDs.
    GetJwks: GET "/v1/bundle/jwks" by Public answers OK,
    "getJwks", "identity", "The JWKS that verifies JWT-SVIDs", []
    { takes_nothing!(Jwks); }
}

endpoint! {
    /// `POST /v1/login`: an attestation for an X.509-SVID. Public: it authenticates by the
    /// evidence it carries.
    Login: POST "/v1/login" by Public answers OK,
    "login", "identity", "Log in with an attestation and get an X.509-SVID for a CSR",
    [
        (401, "the evidence was refused (the same answer for every cause; the audit log has it)"),
        (429, "too many failed authentications from this address: wait the seconds in Retry-After"),
    ]
    { takes_body!(LoginRequest => Svid); }
}

endpoint! {
    /// `POST /v1/svid/x509`: a renewal over mutual TLS with the current SVID.
    RenewSvid: POST "/v1/svid/x509" by Functions answers OK,
    "renewSvid", "identity", "Renew: a new X.509-SVID, authenticated by the current one over mTLS",
    []
    { takes_body!(RenewRequest => Svid); }
}

endpoint! {
    /// `POST /v1/svid/jwt`: a JWT-SVID for an audience, over mutual TLS.
    MintJwtSvid: POST "/v1/svid/jwt" by Functions answers OK,
    "mintJwtSvid", "identity", "Mint a JWT-SVID for an audience, authenticated by the X.509-SVID over mTLS",
    []
    { takes_body!(MintJwtRequest => JwtSvid); }
}

endpoint! {
    /// `GET /v1/revocations`: the revocation feed, by long poll. Operators need
    /// `writ:ReadRevocations`; any function of the trust domain may follow it.
    ReadRevocations: GET "/v1/revocations" by OperatorsOrFunctions answers OK,
    "readRevocations", "revocation", "The revocation feed: entries after a position, long-polling up to `wait` seconds (at most 60)",
    []
    { takes_query!(FeedQuery => Feed); }
}

endpoint! {
    /// `POST /v1/revocations`: revoke a function (`writ:RevokeFunction`), an SVID serial
    /// (`writ:RevokeSvid`) or a token (`writ:RevokeToken`).
    Revoke: POST "/v1/revocations" by Operators answers CREATED,
    "revoke", "revocation", "Revoke a function, an X.509-SVID serial or a token",
    [(404, "no function or token of that name")]
    { takes_body!(RevokeRequest => Revoked); }
}

endpoint! {
    /// `GET /v1/functions` (`writ:ListFunctions` on `writ:functions`): the functions the
    /// caller may also `writ:GetFunction`.
    ListFunctions: GET "/v1/functions" by Operators answers OK,
    "listFunctions", "functions", "List functions", []
    { takes_nothing!(FunctionList); }
}

endpoint! {
    /// `POST /v1/functions` (`writ:RegisterFunction`, and `writ:PutAttestationRules` or
    /// `writ:PutFunctionPolicy` for rules or policies, on `spiffe://TD/fn/NAME`).
    RegisterFunction: POST "/v1/functions" by Operators answers CREATED,
    "registerFunction", "functions", "Register a function",
    [(409, "a function of that name is registered")]
    { takes_body!(RegisterFunctionRequest => Function); }
}

endpoint! {
    /// `GET /v1/functions/{name}` (`writ:GetFunction`).
    GetFunction: GET "/v1/functions/{name}" by Operators answers OK,
    "getFunction", "functions", "Show a function",
    [(400, "not a valid function name"), (404, "no function of that name")]
    {
        type Request = FunctionName;
        type Body = NoBody;
        type Answer = Function;

        fn path(function: &FunctionName) -> Cow<'static, str> {
            function_path(Self::PATH, function)
        }

        fn body(_: &FunctionName) -> Option<&NoBody> {
            None
        }

        fn parameters() -> Vec<Parameter> {
            vec![name_parameter()]
        }
    }
}

endpoint! {
    /// `DELETE /v1/functions/{name}` (`writ:DeleteFunction`): the function, its join
    /// tokens, and its SVIDs on the revocation feed.
    DeleteFunction: DELETE "/v1/functions/{name}" by Operators answers NO_CONTENT,
    "deleteFunction", "functions", "Delete a function and its join tokens",
    [(400, "not a valid function name"), (404, "no function of that name")]
    {
        type Request = FunctionName;
        type Body = NoBody;
        type Answer = NoContent;

        fn path(function: &FunctionName) -> Cow<'static, str> {
            function_path(Self::PATH, function)
        }

        fn body(_: &FunctionName) -> Option<&NoBody> {
            None
        }

        fn parameters() -> Vec<Parameter> {
            vec![name_parameter()]
        }
    }
}

endpoint! {
    /// `PUT /v1/functions/{name}` (`writ:UpdateFunction`, and `writ:PutAttestationRules` or
    /// `writ:PutFunctionPolicy` for rules or policies, on `spiffe://TD/fn/NAME`): replaces
    /// the function's rules, SVID lifetime and policies.
    UpdateFunction: PUT "/v1/functions/{name}" by Operators answers OK,
    "updateFunction", "functions", "Update a function's rules, SVID lifetime and policies",
    [(400, "not a valid function name, or a rule or policy is wrong"), (404, "no function of that name")]
    {
        type Request = UpdateFunctionFor;
        type Body = UpdateFunctionRequest;
        type Answer = Function;

        fn path(request: &UpdateFunctionFor) -> Cow<'static, str> {
            function_path(Self::PATH, &request.function)
        }

        fn body(request: &UpdateFunctionFor) -> Option<&UpdateFunctionRequest> {
            Some(&request.request)
        }

        fn parameters() -> Vec<Parameter> {
            vec![name_parameter()]
        }
    }
}

endpoint! {
    /// `POST /v1/functions/{name}/reinstate` (`writ:ReinstateFunction`): a revoked function
    /// may log in again. Its SVIDs from before stay revoked (serials, and the revocation on
    /// the feed); it starts a new life and gets new SVIDs at its next login.
    ReinstateFunction: POST "/v1/functions/{name}/reinstate" by Operators answers OK,
    "reinstateFunction", "functions", "Reinstate a revoked function",
    [
        (400, "not a valid function name"),
        (404, "no function of that name"),
        (409, "the function is not revoked (functionNotRevoked)"),
    ]
    {
        type Request = FunctionName;
        type Body = NoBody;
        type Answer = Function;

        fn path(function: &FunctionName) -> Cow<'static, str> {
            function_path(Self::PATH, function)
        }

        fn body(_: &FunctionName) -> Option<&NoBody> {
            None
        }

        fn parameters() -> Vec<Parameter> {
            vec![name_parameter()]
        }
    }
}

endpoint! {
    /// `POST /v1/functions/{name}/join-tokens` (`writ:CreateJoinToken`).
    CreateJoinToken: POST "/v1/functions/{name}/join-tokens" by Operators answers CREATED,
    "createJoinToken", "tokens", "Create a one-time join token for a function",
    [
        (400, "the function does not accept join tokens"),
        (404, "no function of that name"),
        (409, "the function is revoked (functionRevoked)"),
    ]
    {
        type Request = JoinTokenFor;
        type Body = JoinTokenRequest;
        type Answer = IssuedToken;

        fn path(request: &JoinTokenFor) -> Cow<'static, str> {
            function_path(Self::PATH, &request.function)
        }

        fn body(request: &JoinTokenFor) -> Option<&JoinTokenRequest> {
            Some(&request.request)
        }

        fn parameters() -> Vec<Parameter> {
            vec![name_parameter()]
        }
    }
}

endpoint! {
    /// `POST /v1/gateways` (`writ:RegisterGateway` on `spiffe://TD/writ/gateway/NAME`):
    /// a gateway, the DNS names and IP addresses its certificate may carry, and how it
    /// logs in.
    RegisterGateway: POST "/v1/gateways" by Operators answers CREATED,
    "registerGateway", "gateways", "Register a gateway and the names its certificate carries",
    [(409, "a gateway of that name is registered")]
    { takes_body!(RegisterGatewayRequest => Gateway); }
}

endpoint! {
    /// `GET /v1/gateways` (`writ:ListGateways` on `writ:gateways`).
    ListGateways: GET "/v1/gateways" by Operators answers OK,
    "listGateways", "gateways", "List gateways", []
    { takes_nothing!(GatewayList); }
}

endpoint! {
    /// `POST /v1/gateways/{name}/join-tokens` (`writ:CreateJoinToken` on the gateway's
    /// SPIFFE ID): a one-time join token that logs in as this gateway only.
    CreateGatewayJoinToken: POST "/v1/gateways/{name}/join-tokens" by Operators answers CREATED,
    "createGatewayJoinToken", "gateways", "Create a one-time join token for a gateway",
    [
        (400, "the gateway does not accept join tokens"),
        (404, "no gateway of that name"),
    ]
    {
        type Request = GatewayJoinTokenFor;
        type Body = JoinTokenRequest;
        type Answer = IssuedToken;

        fn path(request: &GatewayJoinTokenFor) -> Cow<'static, str> {
            Cow::Owned(Self::PATH.replace("{name}", &percent_encode(&request.gateway.0)))
        }

        fn body(request: &GatewayJoinTokenFor) -> Option<&JoinTokenRequest> {
            Some(&request.request)
        }

        fn parameters() -> Vec<Parameter> {
            vec![gateway_name_parameter()]
        }
    }
}

endpoint! {
    /// `POST /v1/gateway/login`: a gateway's attestation for its X.509-SVID, which carries
    /// its registered DNS names and IP addresses. Public: it authenticates by the evidence
    /// it carries.
    GatewayLogin: POST "/v1/gateway/login" by Public answers OK,
    "gatewayLogin", "gateways", "A gateway logs in with an attestation and gets its X.509-SVID (its TLS certificate)",
    [
        (400, "the CSR asks for a name the gateway was not registered with, or is otherwise invalid"),
        (401, "the evidence was refused (the same answer for every cause; the audit log has it)"),
        (429, "too many failed authentications from this address: wait the seconds in Retry-After"),
    ]
    { takes_body!(GatewayLoginRequest => Svid); }
}

endpoint! {
    /// `POST /v1/gateway/svid`: a gateway's renewal over mutual TLS with its current SVID.
    RenewGatewaySvid: POST "/v1/gateway/svid" by Gateways answers OK,
    "renewGatewaySvid", "gateways", "Renew a gateway's X.509-SVID, authenticated by the current one over mTLS",
    []
    { takes_body!(RenewRequest => Svid); }
}

endpoint! {
    /// `GET /v1/intentions`: operators with `writ:ReadIntentions`, or any function of the
    /// trust domain (gateways follow them).
    ListIntentions: GET "/v1/intentions" by OperatorsOrFunctions answers OK,
    "listIntentions", "intentions", "List the intentions, with the index they are at",
    []
    { takes_query!(IntentionsQuery => IntentionList); }
}

endpoint! {
    /// `PUT /v1/intentions` (`writ:WriteIntention` on `writ:intention/SOURCE/DESTINATION`):
    /// 201 when new, 200 when it replaced one.
    PutIntention: PUT "/v1/intentions" by Operators answers OK,
    "putIntention", "intentions", "Create or replace the intention from source to destination",
    [(201, "created: there was no intention from source to destination")]
    { takes_body!(Intention => IntentionWritten); }
}

endpoint! {
    /// `DELETE /v1/intentions?source=S&destination=D` (`writ:DeleteIntention`).
    DeleteIntention: DELETE "/v1/intentions" by Operators answers OK,
    "deleteIntention", "intentions", "Delete the intention from source to destination",
    [(404, "no intention from source to destination")]
    { takes_query!(IntentionPair => IntentionDeleted); }
}

endpoint! {
    /// `POST /v1/intentions/check`: the decision the gateway would make.
    CheckIntention: POST "/v1/intentions/check" by OperatorsOrFunctions answers OK,
    "checkIntention", "intentions", "May source call destination? The decision and the intention that made it",
    []
    { takes_body!(CheckRequest => IntentionVerdict); }
}

endpoint! {
    /// `POST /v1/tokens` (`writ:CreateToken` on `writ:token`).
    CreateAdminToken: POST "/v1/tokens" by Operators answers CREATED,
    "createAdminToken", "tokens", "Create an admin token with IAM-language policies", []
    { takes_body!(AdminTokenRequest => IssuedToken); }
}

endpoint! {
    /// `GET /v1/ca` (`writ:DescribeCa` on `writ:ca`).
    DescribeCa: GET "/v1/ca" by Operators answers OK,
    "describeCa", "ca", "The signing keys and the bundle", []
    { takes_nothing!(Ca); }
}

endpoint! {
    /// `POST /v1/ca/rotate` (`writ:RotateCa` on `writ:ca`).
    RotateCa: POST "/v1/ca/rotate" by Operators answers OK,
    "rotateCa", "ca", "Make a new CA and/or JWT key: published at once, signing after activateAfter",
    []
    { takes_body!(RotateCaRequest => Ca); }
}

endpoint! {
    /// `GET /v1/audit/events` (`writ:ReadAudit` on `writ:audit`): reading is not itself
    /// audited, so a verification does not change what it verifies.
    ReadAuditEvents: GET "/v1/audit/events" by Operators answers OK,
    "readAuditEvents", "audit", "Audit records in chain order (seq, event, prevHash, hash), to tail, export or verify",
    []
    { takes_query!(EventsQuery => AuditRecords); }
}

endpoint! {
    /// `POST /v1/audit/events`: events a gateway (admin token, `writ:PutAuditEvents` on
    /// each event's resource) or an agent (its SVID, its own events) decided.
    WriteAuditEvents: POST "/v1/audit/events" by OperatorsOrFunctions answers OK,
    "writeAuditEvents", "audit", "Send in a batch of events a gateway or agent decided",
    [
        (403, "an event's action is the server's to record, or an SVID reports another's events"),
        (413, "this route takes up to 16 MiB"),
    ]
    { takes_body!(EventBatch => Accepted); }
}

endpoint! {
    /// `GET /v1/audit/checkpoints` (`writ:ReadAudit` on `writ:audit`).
    ReadAuditCheckpoints: GET "/v1/audit/checkpoints" by Operators answers OK,
    "readAuditCheckpoints", "audit", "Signed checkpoints and the keys that verify them",
    []
    { takes_query!(CheckpointsQuery => Checkpoints); }
}

endpoint! {
    /// `POST /v1/aws/signing-key` (`writ:DeriveAwsSigningKey` on `writ:aws-credentials`):
    /// for a gateway verifying SigV4 requests signed with writ's AWS credentials, the
    /// signing key of one day, region and service, once the credentials verify (their
    /// token opens, is the access key's, unexpired, of a live function).
    DeriveAwsSigningKey: POST "/v1/aws/signing-key" by Operators answers OK,
    "deriveAwsSigningKey", "aws", "The SigV4 signing key of live writ AWS credentials for one scope",
    [(403, "the credentials do not verify: not writ's, expired, or their function is revoked")]
    { takes_body!(SigningKeyRequest => SigningKey); }
}

endpoint! {
    /// `POST /v1/quotas/lease` (`writ:LeaseQuota` on `writ:quotas`): for gateways
    /// counting an API key's quota together, admissions leased from the server's count
    /// of the key's period, never past the limit the request names.
    LeaseQuota: POST "/v1/quotas/lease" by Operators answers OK,
    "leaseQuota", "quotas", "Lease admissions from an API key's shared quota count",
    []
    { takes_body!(QuotaLeaseRequest => QuotaLease); }
}

endpoint! {
    /// `POST /v1/aws/credentials` (`writ:GetAwsCredentials` on the caller, over mutual
    /// TLS): writ's temporary AWS credentials for the calling function, as writ's STS gives
    /// them for a JWT-SVID, bound to the X.509-SVID that asked.
    IssueAwsCredentials: POST "/v1/aws/credentials" by Functions answers OK,
    "issueAwsCredentials", "aws", "Temporary AWS credentials for the calling function",
    [(400, "durationSeconds or sessionName out of range")]
    { takes_body!(AwsCredentialsRequest => AwsCredentials); }
}

endpoint! {
    /// `POST /v1/secrets/create` (`secrets:CreateSecret` on `writ:secret/NAME`).
    CreateSecret: POST "/v1/secrets/create" by OperatorsOrFunctionsOrJwt answers OK,
    "createSecret", "secrets", "CreateSecret: a new secret and its first version",
    [(409, "a secret of that name exists"), (413, "this route takes up to 128 KiB")]
    { takes_body!(CreateSecretRequest => SecretCreated); }
}

endpoint! {
    /// `POST /v1/secrets/put` (`secrets:PutSecretValue`).
    PutSecretValue: POST "/v1/secrets/put" by OperatorsOrFunctionsOrJwt answers OK,
    "putSecretValue", "secrets", "PutSecretValue: a new version, which becomes AWSCURRENT",
    [(404, "no secret of that name, or it is scheduled for deletion"), (413, "this route takes up to 128 KiB")]
    { takes_body!(PutSecretRequest => SecretVersionPut); }
}

endpoint! {
    /// `POST /v1/secrets/get` (`secrets:GetSecretValue`): answered once the read is
    /// durable in the audit log.
    GetSecretValue: POST "/v1/secrets/get" by OperatorsOrFunctionsOrJwt answers OK,
    "getSecretValue", "secrets", "GetSecretValue: AWSCURRENT, or a named version or stage",
    [(404, "no secret of that name, or no such version or stage")]
    { takes_body!(GetSecretRequest => SecretValue); }
}

endpoint! {
    /// `POST /v1/secrets/describe` (`secrets:DescribeSecret`).
    DescribeSecret: POST "/v1/secrets/describe" by OperatorsOrFunctionsOrJwt answers OK,
    "describeSecret", "secrets", "DescribeSecret: metadata and versions, never the value",
    [(404, "no secret of that name")]
    { takes_body!(SecretName => SecretDescription); }
}

endpoint! {
    /// `POST /v1/secrets/list` (`secrets:ListSecrets` on `writ:secrets`).
    ListSecrets: POST "/v1/secrets/list" by OperatorsOrFunctionsOrJwt answers OK,
    "listSecrets", "secrets", "ListSecrets", []
    { takes_nothing!(SecretList); }
}

endpoint! {
    /// `POST /v1/secrets/delete` (`secrets:DeleteSecret`).
    DeleteSecret: POST "/v1/secrets/delete" by OperatorsOrFunctionsOrJwt answers OK,
    "deleteSecret", "secrets", "DeleteSecret: restorable within the recovery window",
    [(404, "no secret of that name")]
    { takes_body!(DeleteSecretRequest => SecretDeleted); }
}

endpoint! {
    /// `POST /v1/secrets/restore` (`secrets:RestoreSecret`).
    RestoreSecret: POST "/v1/secrets/restore" by OperatorsOrFunctionsOrJwt answers OK,
    "restoreSecret", "secrets", "RestoreSecret: cancels a scheduled deletion",
    [(404, "no secret of that name scheduled for deletion")]
    { takes_body!(SecretName => SecretNamed); }
}

endpoint! {
    /// `POST /v1/secrets/policy` (`secrets:PutResourcePolicy`).
    PutResourcePolicy: POST "/v1/secrets/policy" by OperatorsOrFunctionsOrJwt answers OK,
    "putResourcePolicy", "secrets", "PutResourcePolicy / DeleteResourcePolicy (a null policy)",
    [(404, "no secret of that name")]
    { takes_body!(SecretPolicyRequest => SecretNamed); }
}

endpoint! {
    /// `POST /v1/secrets/rotate` (`secrets:RotateSecret`): runs the hook's steps (create,
    /// set, test, finish); `AWSCURRENT` moves only when every one passes.
    RotateSecret: POST "/v1/secrets/rotate" by OperatorsOrFunctionsOrJwt answers OK,
    "rotateSecret", "secrets", "RotateSecret: set the hook and schedule, and rotate now unless told not to",
    [
        (404, "no secret of that name"),
        (409, "a rotation of the secret is running (rotationInProgress)"),
        (502, "a step of the hook failed (rotationFailed); AWSCURRENT is unchanged"),
    ]
    { takes_body!(RotateSecretRequest => Rotated); }
}

/// Every route of the API, in the order of the server's route table.
pub fn all() -> Vec<EndpointInfo> {
    vec![
        EndpointInfo::of::<GetHealth>(),
        EndpointInfo::of::<GetOpenApi>(),
        EndpointInfo::of::<GetBundle>(),
        EndpointInfo::of::<GetJwks>(),
        EndpointInfo::of::<Login>(),
        EndpointInfo::of::<RenewSvid>(),
        EndpointInfo::of::<MintJwtSvid>(),
        EndpointInfo::of::<ReadRevocations>(),
        EndpointInfo::of::<Revoke>(),
        EndpointInfo::of::<ListFunctions>(),
        EndpointInfo::of::<RegisterFunction>(),
        EndpointInfo::of::<GetFunction>(),
        EndpointInfo::of::<DeleteFunction>(),
        EndpointInfo::of::<UpdateFunction>(),
        EndpointInfo::of::<ReinstateFunction>(),
        EndpointInfo::of::<CreateJoinToken>(),
        EndpointInfo::of::<RegisterGateway>(),
        EndpointInfo::of::<ListGateways>(),
        EndpointInfo::of::<CreateGatewayJoinToken>(),
        EndpointInfo::of::<GatewayLogin>(),
        EndpointInfo::of::<RenewGatewaySvid>(),
        EndpointInfo::of::<ListIntentions>(),
        EndpointInfo::of::<PutIntention>(),
        EndpointInfo::of::<DeleteIntention>(),
        EndpointInfo::of::<CheckIntention>(),
        EndpointInfo::of::<CreateAdminToken>(),
        EndpointInfo::of::<DescribeCa>(),
        EndpointInfo::of::<RotateCa>(),
        EndpointInfo::of::<ReadAuditEvents>(),
        EndpointInfo::of::<WriteAuditEvents>(),
        EndpointInfo::of::<ReadAuditCheckpoints>(),
        EndpointInfo::of::<DeriveAwsSigningKey>(),
        EndpointInfo::of::<IssueAwsCredentials>(),
        EndpointInfo::of::<LeaseQuota>(),
        EndpointInfo::of::<CreateSecret>(),
        EndpointInfo::of::<PutSecretValue>(),
        EndpointInfo::of::<GetSecretValue>(),
        EndpointInfo::of::<DescribeSecret>(),
        EndpointInfo::of::<ListSecrets>(),
        EndpointInfo::of::<DeleteSecret>(),
        EndpointInfo::of::<RestoreSecret>(),
        EndpointInfo::of::<PutResourcePolicy>(),
        EndpointInfo::of::<RotateSecret>(),
    ]
}
