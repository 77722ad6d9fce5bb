//! Every route of the API, walked in-process (axum's router, no sockets): each one that is
//! not declared public refuses a request with no credentials, with the wrong kind of
//! credentials, and with an admin token scoped elsewhere, in the API's error shape. A new
//! route is mounted only through `api::routes::all()`, so it is walked here too, and this
//! test fails until it has a sample request below.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use writ_server::api::routes::{self, Callers};
use writ_server::tls::ConnInfo;

/// A request every route would accept from a caller allowed to make it: the path with its
/// parameters filled in, and a valid body. A route missing here fails the test.
fn sample(method: &Method, path: &str) -> Option<(String, Option<Value>)> {
    let secret = || Some(json!({"name": "app/key"}));
    let (uri, body) = match (method.as_str(), path) {
        ("GET", "/v1/health" | "/v1/openapi.json" | "/v1/bundle" | "/v1/bundle/jwks") => {
            (path.to_string(), None)
        }
        ("POST", "/v1/login" | "/v1/gateway/login") => (path.into(), Some(json!({}))),
        ("POST", "/v1/gateway/svid") => (path.into(), Some(json!({"csr": "-"}))),
        ("GET", "/v1/gateways") => (path.into(), None),
        ("POST", "/v1/gateways") => (
            path.into(),
            Some(json!({"name": "edge", "dns": ["gw.internal"]})),
        ),
        ("POST", "/v1/gateways/{name}/join-tokens") => {
            ("/v1/gateways/edge/join-tokens".into(), Some(json!({})))
        }
        ("POST", "/v1/svid/x509") => (path.into(), Some(json!({"csr": "-"}))),
        ("POST", "/v1/svid/jwt") => (path.into(), Some(json!({"audience": "payments"}))),
        ("POST", "/v1/aws/credentials") => (path.into(), Some(json!({}))),
        ("GET", "/v1/revocations") => ("/v1/revocations?after=0".into(), None),
        ("POST", "/v1/revocations") => (path.into(), Some(json!({"function": "orders"}))),
        ("GET", "/v1/functions") => (path.into(), None),
        ("POST", "/v1/functions") => (path.into(), Some(json!({"name": "orders"}))),
        ("GET" | "DELETE", "/v1/functions/{name}") => ("/v1/functions/orders".into(), None),
        ("PUT", "/v1/functions/{name}") => ("/v1/functions/orders".into(), Some(json!({}))),
        ("POST", "/v1/functions/{name}/reinstate") => {
            ("/v1/functions/orders/reinstate".into(), None)
        }
        ("POST", "/v1/functions/{name}/join-tokens") => {
            ("/v1/functions/orders/join-tokens".into(), Some(json!({})))
        }
        ("GET", "/v1/intentions") => (path.into(), None),
        ("PUT", "/v1/intentions") => (
            path.into(),
            Some(json!({"source": "orders", "destination": "payments", "action": "allow"})),
        ),
        ("DELETE", "/v1/intentions") => (
            "/v1/intentions?source=orders&destination=payments".into(),
            None,
        ),
        ("POST", "/v1/intentions/check") => (
            path.into(),
            Some(json!({"source": "orders", "destination": "payments"})),
        ),
        ("POST", "/v1/tokens") => (
            path.into(),
            Some(json!({"policies": [{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "writ:GetFunction", "Resource": "*"}]}]})),
        ),
        ("GET", "/v1/ca") => (path.into(), None),
        ("POST", "/v1/ca/rotate") => (path.into(), Some(json!({}))),
        ("GET", "/v1/audit/events" | "/v1/audit/checkpoints") => (path.into(), None),
        ("POST", "/v1/audit/events") => (
            path.into(),
            Some(json!({"events": [{"time": "2026-12-07T10:00:00Z",
                "actor": "spiffe://example.org/fn/orders", "authenticatedBy": "mtls",
                "action": "writ:Invoke", "resource": "writ:fn/payments",
                "outcome": "allowed"}]})),
        ),
        ("POST", "/v1/secrets/create" | "/v1/secrets/put") => (
            path.into(),
            Some(json!({"name": "app/key", "secretString": "v"})),
        ),
        ("POST", "/v1/secrets/list") => (path.into(), Some(json!({}))),
        ("POST", "/v1/aws/signing-key") => (
            path.into(),
            Some(
                json!({"accessKeyId": "ASIAAAAAAAAAAAAAAAAA", "sessionToken": "writ.sts.x",
                        "date": "20260101", "region": "eu-west-1", "service": "lambda"}),
            ),
        ),
        ("POST", "/v1/quotas/lease") => (
            path.into(),
            Some(json!({"key": "partner-a", "periodSeconds": 60,
                        "periodStart": 0, "limit": 10, "want": 1})),
        ),
        ("POST", "/v1/secrets/policy") => (
            path.into(),
            Some(json!({"name": "app/key", "policy": null})),
        ),
        (
            "POST",
            "/v1/secrets/get"
            | "/v1/secrets/describe"
            | "/v1/secrets/delete"
            | "/v1/secrets/restore"
            | "/v1/secrets/rotate",
        ) => (path.into(), secret()),
        _ => return None,
    };
    Some((uri, body))
}

/// A credential to present.
#[derive(Debug, Clone, Copy)]
enum Credential<'a> {
    Nothing,
    Token(&'a str),
    Certificate,
}

/// Each request comes from an address of its own, so the throttle of failed
/// authentications (30 per source) never answers in place of the route.
fn next_source() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 40000))
}

async fn call(
    router: &axum::Router,
    method: &Method,
    uri: &str,
    body: &Option<Value>,
    credential: Credential<'_>,
) -> (StatusCode, Value) {
    let mut builder = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header("host", "127.0.0.1");
    if let Credential::Token(token) = credential {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = match body {
        Some(b) => builder
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    request.extensions_mut().insert(ConnInfo {
        remote: next_source(),
        // Any certificate: the route's check looks at which kind of credential came, and
        // refuses the wrong kind before anything reads it.
        peer_cert: matches!(credential, Credential::Certificate)
            .then(|| Arc::new(rustls::pki_types::CertificateDer::from(vec![0x30, 0x00]))),
        request_id: "routes-test".into(),
        started: std::time::Instant::now(),
    });
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {uri}: the answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

mod in_process;

#[tokio::test]
async fn every_route_refuses_missing_wrong_and_misscoped_credentials() {
    let server = in_process::start_server("routes").await;
    let router = server.router.clone();
    let bootstrap = server.token.clone();

    // An admin token allowed one thing, somewhere else.
    let (status, made) = call(
        &router,
        &Method::POST,
        "/v1/tokens",
        &Some(
            json!({"policies": [{"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "writ:GetFunction",
            "Resource": "spiffe://example.org/fn/elsewhere"}]}]}),
        ),
        Credential::Token(&bootstrap),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let scoped = made["token"].as_str().unwrap().to_string();
    let jwt_shaped = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    let join_shaped = "writ.join.0123456789abcdef01234567.NotAJoinTokenSecret0123456";

    let all = routes::all();
    assert!(all.len() >= 30, "the table holds every route");
    let mut walked = 0;
    for route in &all {
        let (uri, body) = sample(&route.method, route.path).unwrap_or_else(|| {
            panic!(
                "{} {}: no sample request in tests/routes.rs; add one",
                route.method, route.path
            )
        });
        let what = format!("{} {}", route.method, route.path);
        let Some(callers) = route.access.callers() else {
            continue;
        };
        walked += 1;
        // The wrong kind of credential for this route.
        let wrong = match callers {
            Callers::Operators => Credential::Certificate,
            Callers::Functions | Callers::Gateways => Credential::Token(&bootstrap),
            Callers::OperatorsOrFunctions => Credential::Token(jwt_shaped),
            Callers::OperatorsOrFunctionsByPolicy => Credential::Token(join_shaped),
        };
        for (label, credential) in [
            ("no credentials", Credential::Nothing),
            ("the wrong kind of credentials", wrong),
        ] {
            let (status, answer) = call(&router, &route.method, &uri, &body, credential).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what} with {label}: {answer}"
            );
            assert_eq!(
                answer["error"]["code"], "unauthenticated",
                "{what}: {answer}"
            );
        }
        // An admin token scoped elsewhere: authenticated, and refused by policy.
        if !matches!(callers, Callers::Functions | Callers::Gateways) {
            let (status, answer) = call(
                &router,
                &route.method,
                &uri,
                &body,
                Credential::Token(&scoped),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{what} with a token scoped elsewhere: {answer}"
            );
            assert_eq!(answer["error"]["code"], "accessDenied", "{what}: {answer}");
            assert!(
                answer["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{what}: {answer}"
            );
        }
    }
    assert!(walked >= 25, "{walked} routes walked");
}
