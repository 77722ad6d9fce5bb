//! The AWS-compatible endpoint (`POST /`) driven in process, without an AWS SDK: every
//! operation of the dispatch table refuses an unsigned request, a tampered signature,
//! credentials that are not writ's, and a function its policies do not allow, each with
//! AWS's error, before its handler runs. (crates/writ/tests/aws_sdk.rs does the same and
//! more with boto3, the AWS CLI and powertools.)

mod in_process;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use writ_server::aws::credentials;
use writ_server::aws::dispatch::{OPERATIONS, Operation};
use writ_server::tls::ConnInfo;

fn next_source() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    SocketAddr::from(([10, 9, (n >> 8) as u8, n as u8], 40000))
}

/// A body each operation takes.
fn body_for(op: &Operation) -> Value {
    match op.name {
        "BatchGetSecretValue" => json!({"SecretIdList": ["prod/db"]}),
        "CreateSecret" => json!({"Name": "prod/new", "SecretString": "x"}),
        "PutSecretValue" => json!({"SecretId": "prod/db", "SecretString": "x"}),
        "ListSecrets" => json!({}),
        "UpdateSecretVersionStage" => {
            json!({"SecretId": "prod/db", "VersionStage": "MINE", "MoveToVersionId": "0".repeat(32)})
        }
        "PutResourcePolicy" => json!({"SecretId": "prod/db", "ResourcePolicy": "{}"}),
        "GetParameter" => json!({"Name": "/prod/db", "WithDecryption": true}),
        "GetParameters" => json!({"Names": ["/prod/db"], "WithDecryption": true}),
        "GetParametersByPath" => json!({"Path": "/prod", "Recursive": true}),
        "PutParameter" => json!({"Name": "/prod/x", "Value": "v", "Type": "String"}),
        _ => json!({"SecretId": "prod/db"}),
    }
}

/// How a request is signed.
enum Signing<'a> {
    Unsigned,
    With(&'a writ_sigv4::Credentials),
    Tampered(&'a writ_sigv4::Credentials),
    /// Signed, but with the body left out of the signature (`UNSIGNED-PAYLOAD`).
    BodyUnsigned(&'a writ_sigv4::Credentials),
}

async fn call(router: &axum::Router, op: &Operation, signing: Signing<'_>) -> (StatusCode, Value) {
    let body = body_for(op).to_string();
    let target = format!("{}.{}", op.service.target_prefix(), op.name);
    let mut headers: Vec<(&str, String)> = vec![
        ("host", "127.0.0.1".into()),
        ("content-type", "application/x-amz-json-1.1".into()),
        ("x-amz-target", target),
    ];
    let creds = match &signing {
        Signing::Unsigned => None,
        Signing::With(c) | Signing::Tampered(c) | Signing::BodyUnsigned(c) => Some(*c),
    };
    if let Some(creds) = creds {
        let view: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let request = writ_sigv4::SignableRequest::new(
            "POST",
            "/",
            "",
            &view,
            if matches!(signing, Signing::BodyUnsigned(_)) {
                writ_sigv4::Payload::Unsigned
            } else {
                writ_sigv4::Payload::Bytes(body.as_bytes())
            },
        );
        let signed = writ_sigv4::sign_headers(
            &request,
            &writ_sigv4::SigningParams::new(
                creds,
                "eu-west-1",
                op.service.signing_name(),
                time::OffsetDateTime::now_utc(),
            ),
        )
        .unwrap();
        for (name, mut value) in signed.headers {
            if name == "authorization" && matches!(signing, Signing::Tampered(_)) {
                let last = value.pop().unwrap();
                value.push(if last == '0' { '1' } else { '0' });
            }
            headers.push((name, value));
        }
    }
    let mut builder = Request::builder().method("POST").uri("/");
    for (name, value) in &headers {
        builder = builder.header(*name, value);
    }
    let mut request = builder.body(Body::from(body)).unwrap();
    request.extensions_mut().insert(ConnInfo {
        remote: next_source(),
        peer_cert: None,
        request_id: "aws-api-test".into(),
        started: std::time::Instant::now(),
    });
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// A `/v1` call with the bootstrap admin token.
async fn admin(
    server: &in_process::InProcess,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> StatusCode {
    let mut builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {}", server.token));
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let mut request = builder
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    request.extensions_mut().insert(ConnInfo {
        remote: next_source(),
        peer_cert: None,
        request_id: "aws-api-test".into(),
        started: std::time::Instant::now(),
    });
    server
        .router
        .clone()
        .oneshot(request)
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn every_operation_is_refused_with_awss_error_before_its_handler() {
    let server = in_process::start_server("aws-api").await;
    let state: &Arc<_> = server.state();
    // A function with no policies, and credentials for it.
    let registered = admin(
        &server,
        "POST",
        "/v1/functions",
        Some(json!({"name": "billing"})),
    )
    .await;
    assert!(registered.is_success(), "{registered}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let issued = credentials::issue(&state.master, "billing", "s1", now, 3600, None).unwrap();
    let writ = writ_sigv4::Credentials::new(
        issued.session.access_key_id.clone(),
        issued.session.secret_access_key.clone(),
    )
    .with_session_token(issued.token.clone());
    // The same shape, but sealed by nobody: not writ's.
    let foreign = writ_sigv4::Credentials::new("ASIAAAAAAAAAAAAAAAAA", "x".repeat(40))
        .with_session_token("writ.sts.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

    assert!(OPERATIONS.len() >= 16);
    for op in OPERATIONS {
        let what = format!("{}.{}", op.service.target_prefix(), op.name);
        let (status, answer) = call(&server.router, op, Signing::Unsigned).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what} unsigned: {answer}");
        assert_eq!(
            answer["__type"], "MissingAuthenticationTokenException",
            "{what}"
        );

        let (status, answer) = call(&server.router, op, Signing::Tampered(&writ)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what} tampered: {answer}");
        assert_eq!(answer["__type"], "InvalidSignatureException", "{what}");

        // A body the signature does not cover could be anything.
        let (status, answer) = call(&server.router, op, Signing::BodyUnsigned(&writ)).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{what} body unsigned: {answer}"
        );
        assert_ne!(
            answer["__type"], "AccessDeniedException",
            "{what}: {answer}"
        );

        let (status, answer) = call(&server.router, op, Signing::With(&foreign)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what} foreign: {answer}");
        assert_eq!(answer["__type"], "UnrecognizedClientException", "{what}");

        let (status, answer) = call(&server.router, op, Signing::With(&writ)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what} denied: {answer}");
        assert_eq!(
            answer["__type"], "AccessDeniedException",
            "{what}: {answer}"
        );
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&op.aws_action()) && message.contains("secrets:"),
            "{what}: {message}"
        );
    }

    // Credentials die with their function's registration: deleted and registered again
    // (a second later: registrations are in whole seconds), the function is another life.
    let get = OPERATIONS
        .iter()
        .find(|o| o.name == "GetSecretValue")
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(
        admin(&server, "DELETE", "/v1/functions/billing", None)
            .await
            .is_success()
    );
    let again = admin(
        &server,
        "POST",
        "/v1/functions",
        Some(json!({"name": "billing"})),
    )
    .await;
    assert!(again.is_success(), "{again}");
    let (status, answer) = call(&server.router, get, Signing::With(&writ)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["__type"], "UnrecognizedClientException");

    // An operation not in the table is refused unheard.
    let mut unknown = *OPERATIONS.first().unwrap();
    unknown.name = "TagResource";
    let (status, answer) = call(&server.router, &unknown, Signing::With(&writ)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["__type"], "UnknownOperationException");
}
