//! Who may call each route, decided before its handler runs.
//!
//! Every route declares its [`Access`] in the route table ([`super::routes`]): the kinds of
//! credential it takes ([`Callers`]) and what it decides ([`Decide`]: an action on a
//! resource named by the path, the query or the body). The router mounts a route only with
//! its declaration, and [`enforce`] runs before the handler:
//!
//! 1. a request presenting no credential of a kind the route takes is refused (401);
//! 2. the credential is verified (an admin token against the store, an X.509-SVID or a
//!    JWT-SVID against the trust bundle and the revocations); a failure is a 401;
//! 3. the route's actions are decided on their resources: by the token's policies for an
//!    operator, by the function's identity policies, permissions boundary and the
//!    resource's own policy where a route says so, or by being a live function of the
//!    trust domain for the feeds every function follows and for its own SVIDs; a denial
//!    is a 403 that says which action on which resource, and why.
//!
//! Every refusal is audited here, with its cause, and failed authentications count against
//! their source ([`crate::throttle`]). Only then does the handler run, with the decision in
//! an [`Authorized`] it extracts; a handler whose request carries none answers 500 and does
//! nothing. Handlers audit what they then do with the grants they were given
//! ([`Authorized::record_durable`], [`Authorized::record_read`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use writ_audit::{Decision, Outcome};

use super::ApiError;
use crate::state::AppState;
use crate::tls::ConnInfo;

pub(crate) mod function;
pub(crate) mod gateway;
pub(crate) mod operator;
mod targets;

/// The kinds of credential a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callers {
    /// Operators, by an admin token (`Authorization: Bearer writ.admin.…`).
    Operators,
    /// Functions, by their X.509-SVID over mutual TLS, acting on their own identity.
    Functions,
    /// Gateways, by the X.509-SVID writ issued them, acting on their own identity.
    Gateways,
    /// Operators by admin token, or any live function of the trust domain by its
    /// X.509-SVID (the feeds gateways and agents follow, and the events they report).
    OperatorsOrFunctions,
    /// Operators by admin token, or functions by X.509-SVID or by a JWT-SVID for the
    /// server, each function allowed by its identity policies, its permissions boundary and
    /// the resource's own policy.
    OperatorsOrFunctionsByPolicy,
}

/// What a route decides before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decide {
    /// One action on one resource.
    On(&'static str, Resource),
    /// `writ:RegisterFunction` on the function the body names; and
    /// `writ:PutAttestationRules` when the body gives rules other than join tokens alone,
    /// `writ:PutFunctionPolicy` when it gives identity policies.
    Registration,
    /// `writ:UpdateFunction` on the function the path names; and, as for a registration,
    /// `writ:PutAttestationRules` when the body gives rules other than join tokens alone,
    /// `writ:PutFunctionPolicy` when it gives identity policies.
    Update,
    /// `writ:RevokeFunction` on the function, `writ:RevokeSvid` on `writ:svid/SERIAL` or
    /// `writ:RevokeToken` on `writ:token/ID`, by the field the body gives.
    Revocation,
    /// `secrets:RotateSecret` on the secret the body names; and `secrets:GetSecretValue`
    /// and `secrets:PutSecretValue` when the body names a hook, which receives the current
    /// value and chooses the next.
    SecretRotation,
    /// `writ:PutAuditEvents` on the resource of each event reported (at most
    /// [`targets::MAX_RESOURCES_IN`]; `writ:audit` for an empty batch). A function reports
    /// only its own calls.
    AuditEvents,
}

/// Where a route's resource is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Always the same resource (`writ:ca`, `writ:audit`, ...).
    Fixed(&'static str),
    /// The function named by the path's `{name}`: its SPIFFE ID.
    FunctionInPath,
    /// The gateway named by the path's `{name}`: its SPIFFE ID.
    GatewayInPath,
    /// The gateway named by the body's `name`: its SPIFFE ID.
    GatewayInBody,
    /// The secret named by the body's `name`: `writ:secret/NAME`.
    SecretInBody,
    /// The intention of the body's `source` and `destination`:
    /// `writ:intention/SOURCE/DESTINATION`.
    IntentionInBody,
    /// The intention of the query's `source` and `destination`.
    IntentionInQuery,
    /// The calling function itself (its SPIFFE ID).
    TheCaller,
}

/// A route's declaration: public, or who may call it and what is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the route gives out only public data (health, the OpenAPI document, the
    /// trust bundle), or authenticates by what the request carries (a login's evidence).
    Public,
    /// Authenticated callers of these kinds, allowed what [`Decide`] says.
    Authorized {
        /// The kinds of credential taken.
        callers: Callers,
        /// What is decided.
        decide: Decide,
    },
}

impl Access {
    /// A route for authenticated callers.
    pub const fn to(callers: Callers, decide: Decide) -> Access {
        Access::Authorized { callers, decide }
    }

    /// Whether anyone may call the route.
    pub fn is_public(self) -> bool {
        self == Access::Public
    }

    /// The kinds of credential the route takes; none for a public route.
    pub fn callers(self) -> Option<Callers> {
        match self {
            Access::Public => None,
            Access::Authorized { callers, .. } => Some(callers),
        }
    }

    /// The actions the route may decide, for the OpenAPI document and the docs.
    pub fn actions(self) -> Vec<&'static str> {
        match self {
            Access::Public => Vec::new(),
            Access::Authorized { decide, .. } => decide.actions(),
        }
    }
}

impl Decide {
    /// Every action this may decide.
    pub fn actions(self) -> Vec<&'static str> {
        match self {
            Decide::On(action, _) => vec![action],
            Decide::Registration => vec![
                "writ:RegisterFunction",
                "writ:PutAttestationRules",
                "writ:PutFunctionPolicy",
            ],
            Decide::Update => vec![
                "writ:UpdateFunction",
                "writ:PutAttestationRules",
                "writ:PutFunctionPolicy",
            ],
            Decide::Revocation => {
                vec!["writ:RevokeFunction", "writ:RevokeSvid", "writ:RevokeToken"]
            }
            Decide::SecretRotation => vec![
                "secrets:RotateSecret",
                "secrets:GetSecretValue",
                "secrets:PutSecretValue",
            ],
            Decide::AuditEvents => vec!["writ:PutAuditEvents"],
        }
    }

    /// The action a failed authentication is recorded under.
    fn first_action(self) -> &'static str {
        self.actions()[0]
    }

    /// Whether the resource is named in the body, which is then read before the handler.
    fn reads_body(self) -> bool {
        match self {
            Decide::On(_, resource) => {
                matches!(
                    resource,
                    Resource::SecretInBody | Resource::IntentionInBody | Resource::GatewayInBody
                )
            }
            _ => true,
        }
    }
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
    /// The console's session cookie ([`crate::console::session`]), and no `Authorization`:
    /// it stands for the admin token it was started with, from the console's pages only.
    ConsoleSession,
    /// A client certificate (already verified against the trust bundle by TLS), and no
    /// `Authorization`.
    Svid,
}

impl Presented {
    /// What the request presents. An `Authorization` header wins over a console cookie,
    /// and either over a certificate.
    pub fn of(headers: &HeaderMap, has_certificate: bool) -> Presented {
        match operator::bearer(headers) {
            Some(t) if t.starts_with("writ.admin.") => Presented::AdminToken,
            Some(t) if t.starts_with("eyJ") => Presented::Jwt,
            _ if headers.contains_key(axum::http::header::AUTHORIZATION) => {
                Presented::OtherAuthorization
            }
            _ if crate::console::session::cookie(headers).is_some() => Presented::ConsoleSession,
            _ if has_certificate => Presented::Svid,
            _ => Presented::Nothing,
        }
    }
}

impl Callers {
    /// Whether a request presenting `presented` may be verified for this route. `Err`
    /// says what the route takes instead.
    pub fn admits(self, presented: Presented) -> Result<(), &'static str> {
        use Presented::*;
        let (ok, takes) = match self {
            Callers::Operators => (
                matches!(presented, AdminToken | ConsoleSession),
                "this route takes an admin token (Authorization: Bearer)",
            ),
            Callers::Functions => (
                presented == Svid,
                "this route takes a function's X.509-SVID (mutual TLS)",
            ),
            Callers::Gateways => (
                presented == Svid,
                "this route takes a gateway's X.509-SVID (mutual TLS)",
            ),
            Callers::OperatorsOrFunctions => (
                matches!(presented, AdminToken | ConsoleSession | Svid),
                "this route takes an admin token or a function's X.509-SVID",
            ),
            Callers::OperatorsOrFunctionsByPolicy => (
                matches!(presented, AdminToken | ConsoleSession | Svid | Jwt),
                "this route takes an admin token, a function's X.509-SVID, or a JWT-SVID for \
                 the server",
            ),
        };
        if ok { Ok(()) } else { Err(takes) }
    }
}

/// The caller's X.509-SVID, as TLS verified it against the bundle.
pub(super) struct PeerSvid {
    /// Its SPIFFE ID (its one URI SAN).
    pub id: writ_identity::SpiffeId,
    /// Its serial, lowercase hex.
    pub serial: String,
    /// The start of its validity (Unix seconds).
    pub not_before: i64,
}

/// The caller's X.509-SVID on this connection, or why there is none: `missing` when no
/// certificate was presented. TLS checked the certificate when the connection was made; a
/// keep-alive connection may outlive it, so its validity is checked again here.
pub(super) fn peer_svid(conn: &ConnInfo, missing: &'static str) -> Result<PeerSvid, &'static str> {
    use x509_parser::prelude::FromDer;
    let der = conn.peer_cert.as_ref().ok_or(missing)?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|_| "unreadable client certificate")?;
    let uris = writ_identity::uri_sans(&cert);
    let [uri] = uris.as_slice() else {
        return Err("the client certificate must carry exactly one URI SAN");
    };
    let id = writ_identity::SpiffeId::parse(uri).map_err(|_| "the URI SAN is not a SPIFFE ID")?;
    if !cert.validity().is_valid() {
        return Err("the client certificate has expired");
    }
    Ok(PeerSvid {
        id,
        serial: writ_audit::hex(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
    })
}

/// A refused X.509-SVID caller: audited as denied with `reason`, answered 401.
pub(super) fn refuse_svid(
    state: &AppState,
    conn: &ConnInfo,
    action: &'static str,
    actor: &str,
    reason: &str,
) -> ApiError {
    match state.audit(
        conn,
        actor,
        "x509Svid",
        action,
        actor,
        Outcome::Denied,
        Some(reason.to_string()),
        None,
    ) {
        Ok(()) => ApiError::unauthenticated(),
        Err(e) => e.into(),
    }
}

/// Who called, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// How audit events name the caller: `token:<HMAC of the token id>`, or the SPIFFE ID.
    pub actor: String,
    /// `adminToken`, `x509Svid` or `jwtSvid`.
    pub authenticated_by: &'static str,
    /// An operator or a function, with what each decision needs.
    pub kind: CallerKind,
}

/// An operator or a function.
#[derive(Debug, Clone)]
pub enum CallerKind {
    /// An operator, by admin token.
    Operator(operator::Operator),
    /// A function, by SVID.
    Function(function::Function),
    /// A gateway, by the SVID writ issued it.
    Gateway(gateway::Gateway),
}

impl Caller {
    /// The function, when a function called.
    pub fn function(&self) -> Option<&function::Function> {
        match &self.kind {
            CallerKind::Function(f) => Some(f),
            CallerKind::Operator(_) | CallerKind::Gateway(_) => None,
        }
    }

    /// The gateway, when a gateway called.
    pub fn gateway(&self) -> Option<&gateway::Gateway> {
        match &self.kind {
            CallerKind::Gateway(g) => Some(g),
            CallerKind::Operator(_) | CallerKind::Function(_) => None,
        }
    }

    /// The operator, when an operator called.
    pub fn operator(&self) -> Option<&operator::Operator> {
        match &self.kind {
            CallerKind::Operator(o) => Some(o),
            CallerKind::Function(_) | CallerKind::Gateway(_) => None,
        }
    }
}

/// One allowed decision: an action on a resource.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The action.
    pub action: &'static str,
    /// The resource, as the audit log names it (a token by the HMAC of its id).
    pub resource: String,
    /// Allowed, and how (by policy, or by being the function itself).
    pub decision: Decision,
    /// The statements that allowed it.
    pub matched: Vec<String>,
}

/// A request's caller and what it was allowed, decided before the handler ran.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// Who called.
    pub caller: Caller,
    /// The decisions, in the order the route declares them; every one allowed.
    pub grants: Vec<Grant>,
}

impl Authorized {
    /// The grant of `action`, if the route decided it.
    pub fn grant(&self, action: &str) -> Option<&Grant> {
        self.grants.iter().find(|g| g.action == action)
    }

    /// Whether `action` was decided (and allowed).
    pub fn allows(&self, action: &str) -> bool {
        self.grant(action).is_some()
    }

    /// The function that called, if a function called.
    pub fn function(&self) -> Option<&function::Function> {
        self.caller.function()
    }

    /// The allowed event of a grant, for the handler to add what it did.
    pub fn event(&self, state: &AppState, conn: &ConnInfo, grant: &Grant) -> writ_audit::Event {
        let mut event = state.event(
            conn,
            &self.caller.actor,
            self.caller.authenticated_by,
            grant.action,
            &grant.resource,
            Outcome::Allowed,
        );
        event.decision = Some(grant.decision);
        event.matched = grant.matched.clone();
        event
    }

    /// The allowed event of the first grant (the route's own action).
    pub fn first_event(&self, state: &AppState, conn: &ConnInfo) -> writ_audit::Event {
        self.event(state, conn, &self.grants[0])
    }

    /// Audits every grant as done and waits until the events are durable: a change is
    /// reported only then, and a failure to record it fails the request.
    pub async fn record_durable(&self, state: &AppState, conn: &ConnInfo) -> Result<(), ApiError> {
        for grant in &self.grants {
            state
                .audit
                .record_durable(self.event(state, conn, grant))
                .await?;
        }
        Ok(())
    }

    /// Audits every grant as an allowed read (queued with the next batch).
    pub fn record_read(&self, state: &AppState, conn: &ConnInfo) -> Result<(), ApiError> {
        for grant in &self.grants {
            state.audit.record(self.event(state, conn, grant))?;
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Only enforce() puts it there; a handler mounted some other way does nothing.
        parts.extensions.remove::<Authorized>().ok_or_else(|| {
            ApiError::internal(
                "no authorization decision reached this handler",
                parts.uri.path(),
            )
        })
    }
}

/// Decides a request before its handler: see the module's documentation.
pub(crate) async fn enforce(
    access: Access,
    path: &'static str,
    body_limit: usize,
    state: Arc<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Access::Authorized { callers, decide } = access else {
        return next.run(req).await;
    };
    match decide_request(callers, decide, path, body_limit, &state, req).await {
        Ok(req) => {
            state.metrics.decision(crate::metrics::Outcome::Allowed);
            next.run(req).await
        }
        Err(e) => {
            let response = e.into_response();
            state.metrics.decision(crate::metrics::Outcome::of_refusal(
                response.status().as_u16(),
            ));
            response
        }
    }
}

async fn decide_request(
    callers: Callers,
    decide: Decide,
    path: &'static str,
    body_limit: usize,
    state: &AppState,
    mut req: Request,
) -> Result<Request, ApiError> {
    // A handler must not find a decision the client sent along somehow.
    req.extensions_mut().remove::<Authorized>();
    let Some(conn) = req.extensions().get::<ConnInfo>().cloned() else {
        // Every connection carries its ConnInfo; without one, nothing can be checked.
        return Err(ApiError::unauthenticated());
    };
    let presented = Presented::of(req.headers(), conn.peer_cert.is_some());
    let action = decide.first_action();
    if let Err(takes) = callers.admits(presented) {
        super::admit(state, &conn, "writ:Authenticate")?;
        super::authentication_failed(state, &conn);
        state.audit(
            &conn,
            "anonymous",
            "none",
            "writ:Authenticate",
            "writ:api",
            Outcome::Denied,
            Some(format!("{} {path}: {takes}", req.method())),
            None,
        )?;
        return Err(ApiError::unauthenticated());
    }
    let caller = match presented {
        Presented::AdminToken => {
            operator::authenticate(state, req.headers(), &conn, action).await?
        }
        Presented::Jwt => {
            let token = operator::bearer(req.headers()).unwrap_or_default();
            function::by_jwt(state, &conn, token, action).await?
        }
        Presented::Svid if callers == Callers::Gateways => {
            gateway::by_svid(state, &conn, action).await?
        }
        Presented::ConsoleSession => {
            crate::console::authenticate(state, req.method(), req.headers(), &conn, action).await?
        }
        Presented::Svid => function::by_svid(state, &conn, action).await?,
        // Callers::admits took none of these.
        Presented::Nothing | Presented::OtherAuthorization => {
            return Err(ApiError::unauthenticated());
        }
    };
    let (mut parts, mut body) = req.into_parts();
    let bytes = if decide.reads_body() {
        let taken = std::mem::replace(&mut body, axum::body::Body::empty());
        Some(super::read_body(taken, &parts.headers, body_limit).await?)
    } else {
        None
    };
    let wanted = targets::of(decide, state, &mut parts, bytes.as_deref(), &caller, &conn).await?;
    let mut grants = Vec::with_capacity(wanted.len());
    for target in wanted {
        let grant = match &caller.kind {
            CallerKind::Operator(op) => {
                operator::decide(state, &conn, &caller, op, target.action, &target.resource)?
            }
            CallerKind::Function(f) => {
                function::decide(state, &conn, &caller, f, callers, target).await?
            }
            // A gateway acts only on its own identity (Resource::TheCaller), which its
            // authentication proved.
            CallerKind::Gateway(_) => gateway_grant(&caller, target)?,
        };
        grants.push(grant);
    }
    let body = match bytes {
        Some(b) => axum::body::Body::from(b),
        None => body,
    };
    let mut req = Request::from_parts(parts, body);
    req.extensions_mut().insert(Authorized { caller, grants });
    Ok(req)
}

/// A gateway's decision: allowed on its own SPIFFE ID only (its SVID's renewal).
fn gateway_grant(caller: &Caller, target: Target) -> Result<Grant, ApiError> {
    if target.resource != caller.actor {
        return Err(ApiError::internal(
            "a gateway's route decides on something other than the gateway",
            target.action,
        ));
    }
    Ok(Grant {
        action: target.action,
        resource: target.resource,
        decision: Decision::Allowed,
        matched: Vec::new(),
    })
}

/// Decides `action` on the secret `name` for a function, as the secrets routes do: by its
/// identity policies, its permissions boundary and the secret's resource policy, default
/// deny. A denial is audited and is a 403 naming the action and the resource. For the
/// AWS-compatible APIs ([`crate::aws::dispatch`]), which decide before their handlers run
/// just as [`enforce`] does. `name: None` decides on `resource` alone (`writ:secrets`).
pub(crate) async fn decide_for_function(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    action: &'static str,
    resource: String,
    name: Option<String>,
) -> Result<Grant, ApiError> {
    let Some(f) = caller.function() else {
        return Err(ApiError::internal(
            "a function's decision was asked for an operator",
            action,
        ));
    };
    function::decide(
        state,
        conn,
        caller,
        f,
        Callers::OperatorsOrFunctionsByPolicy,
        Target {
            action,
            resource,
            secret: name,
        },
    )
    .await
}

/// An action on a resource to decide, and, for a function's decision on a secret, the
/// secret's name (whose resource policy takes part).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    action: &'static str,
    resource: String,
    secret: Option<String>,
}

/// A refusal of an authenticated caller by policy: audited with the decision and the
/// statements that decided, and answered 403 with `why`.
#[allow(clippy::too_many_arguments)]
fn denied(
    state: &AppState,
    conn: &ConnInfo,
    caller: &Caller,
    action: &'static str,
    audited_resource: &str,
    decision: Decision,
    matched: Vec<String>,
    why: String,
) -> ApiError {
    let mut event = state.event(
        conn,
        &caller.actor,
        caller.authenticated_by,
        action,
        audited_resource,
        Outcome::Denied,
    );
    event.decision = Some(decision);
    event.matched = matched;
    event.reason = Some(why.clone());
    match state.audit.record(event) {
        Ok(()) => ApiError::forbidden(why),
        Err(e) => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_handler_reached_without_a_decision_does_nothing() {
        use tower::ServiceExt;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let router = axum::Router::new().route(
            "/x",
            axum::routing::get(move |_: Authorized| async move {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                "ran"
            }),
        );
        let response = router
            .oneshot(
                axum::http::Request::builder()
                    .uri("/x")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

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
        let mut cookie = HeaderMap::new();
        cookie.insert(
            axum::http::header::COOKIE,
            "__Host-writ_session=abc".parse().unwrap(),
        );
        let mut cookie_and_admin = admin.clone();
        cookie_and_admin.insert(
            axum::http::header::COOKIE,
            "__Host-writ_session=abc".parse().unwrap(),
        );
        let cases = [
            (Presented::of(&none, false), Presented::Nothing),
            (Presented::of(&none, true), Presented::Svid),
            (Presented::of(&admin, true), Presented::AdminToken),
            (Presented::of(&jwt, false), Presented::Jwt),
            (Presented::of(&other, true), Presented::OtherAuthorization),
            (Presented::of(&cookie, true), Presented::ConsoleSession),
            (
                Presented::of(&cookie_and_admin, false),
                Presented::AdminToken,
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        use Presented::*;
        // Nothing, AdminToken, Jwt, OtherAuthorization, Svid, ConsoleSession.
        let table = [
            (Callers::Operators, [false, true, false, false, false, true]),
            (
                Callers::Functions,
                [false, false, false, false, true, false],
            ),
            (Callers::Gateways, [false, false, false, false, true, false]),
            (
                Callers::OperatorsOrFunctions,
                [false, true, false, false, true, true],
            ),
            (
                Callers::OperatorsOrFunctionsByPolicy,
                [false, true, true, false, true, true],
            ),
        ];
        for (callers, admitted) in table {
            for (presented, want) in [
                Nothing,
                AdminToken,
                Jwt,
                OtherAuthorization,
                Svid,
                ConsoleSession,
            ]
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
