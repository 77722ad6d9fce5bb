//! The server's handlers in-process (axum's router, no sockets), driven through writ-api's
//! `Endpoint` types exactly as the one client sends them: each request is encoded by its
//! endpoint's path, query and body, and each answer must decode into the endpoint's answer
//! type (errors into the error shape). A handler whose answer drifts from the type the
//! clients decode fails here, next to its cause.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;
use writ_api::endpoints as ep;
use writ_api::{Endpoint, ErrorBody, ErrorCode, NoRequest};
use writ_server::tls::ConnInfo;

/// Sends `request` to `E` with the admin `token`, and decodes the answer as `E` says.
async fn send<E: Endpoint>(
    router: &axum::Router,
    token: &str,
    request: &E::Request,
) -> Result<E::Answer, (StatusCode, ErrorBody)> {
    let mut uri = E::path(request).into_owned();
    if let Some(q) = E::query(request) {
        uri = format!("{uri}?{q}");
    }
    let builder = Request::builder()
        .method(E::METHOD)
        .uri(&uri)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"));
    let mut http = match E::body(request) {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).unwrap())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    http.extensions_mut().insert(ConnInfo {
        remote: SocketAddr::from(([127, 0, 0, 1], 40000)),
        peer_cert: None,
        request_id: "typed-api-test".into(),
        started: std::time::Instant::now(),
    });
    let response = router.clone().oneshot(http).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    if status.is_success() {
        // A PUT answers 201 when it creates and 200 when it replaces; every other route
        // answers the one status its endpoint declares.
        if E::METHOD != axum::http::Method::PUT {
            assert_eq!(status, E::STATUS, "{} {uri}", E::METHOD);
        }
        let text = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes
        };
        Ok(serde_json::from_slice(text).unwrap_or_else(|e| {
            panic!(
                "{} {uri}: the answer does not decode as the endpoint's type ({e}): {}",
                E::METHOD,
                String::from_utf8_lossy(&bytes)
            )
        }))
    } else {
        let error: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{} {uri}: {status} is not in the error shape ({e}): {}",
                E::METHOD,
                String::from_utf8_lossy(&bytes)
            )
        });
        Err((status, error))
    }
}

mod in_process;

#[tokio::test]
async fn every_answer_decodes_as_the_type_clients_read() {
    let server = in_process::start_server("typed-api").await;
    let router = server.router.clone();
    let t = server.token.as_str();

    // The system.
    let health = send::<ep::GetHealth>(&router, t, &NoRequest).await.unwrap();
    assert_eq!(health.trust_domain, "example.org");
    let ca = send::<ep::DescribeCa>(&router, t, &NoRequest)
        .await
        .unwrap();
    assert!(ca.keys.len() >= 2, "{ca:?}");
    assert!(ca.x509_bundle.contains("BEGIN CERTIFICATE"));
    assert!(!ca.jwks.keys.is_empty());
    let bundle = send::<ep::GetBundle>(&router, t, &NoRequest).await.unwrap();
    assert_eq!(bundle.jwks, ca.jwks);

    // Functions.
    let registration: writ_api::functions::RegisterFunctionRequest =
        serde_json::from_value(json!({
            "name": "orders",
            "policies": [{"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "secrets:GetSecretValue",
                "Resource": "writ:secret/orders/*"}]}]
        }))
        .unwrap();
    let made = send::<ep::RegisterFunction>(&router, t, &registration)
        .await
        .unwrap();
    assert_eq!(made.spiffe_id, "spiffe://example.org/fn/orders");
    assert_eq!(made.policies.len(), 1);
    assert!(made.permissions_boundary.is_some());
    let name = writ_api::functions::FunctionName::new("orders");
    let got = send::<ep::GetFunction>(&router, t, &name).await.unwrap();
    assert_eq!(got, made);
    let all = send::<ep::ListFunctions>(&router, t, &NoRequest)
        .await
        .unwrap();
    assert_eq!(all.functions, vec![made.clone()]);
    let join = send::<ep::CreateJoinToken>(
        &router,
        t,
        &writ_api::tokens::JoinTokenFor {
            function: name.clone(),
            request: Default::default(),
        },
    )
    .await
    .unwrap();
    assert_eq!(join.function.as_deref(), Some("orders"));
    assert!(join.token.starts_with("writ.join."));
    let (status, error) = send::<ep::GetFunction>(
        &router,
        t,
        &writ_api::functions::FunctionName::new("nobody"),
    )
    .await
    .unwrap_err();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.error.code, ErrorCode::NotFound);

    // Intentions.
    let intention: writ_policy::intentions::Intention = serde_json::from_value(
        json!({"source": "orders", "destination": "payments", "action": "allow"}),
    )
    .unwrap();
    let written = send::<ep::PutIntention>(&router, t, &intention)
        .await
        .unwrap();
    assert!(written.created);
    let list = send::<ep::ListIntentions>(&router, t, &Default::default())
        .await
        .unwrap();
    assert_eq!(list.intentions.len(), 1);
    assert_eq!(list.index, written.index);
    let check: writ_api::intentions::CheckRequest =
        serde_json::from_value(json!({"source": "orders", "destination": "payments"})).unwrap();
    let verdict = send::<ep::CheckIntention>(&router, t, &check)
        .await
        .unwrap();
    assert!(verdict.allowed(), "{verdict:?}");
    // A proposed intention is decided as if saved, and nothing is written.
    let proposed: writ_api::intentions::CheckRequest = serde_json::from_value(json!({
        "source": "orders", "destination": "payments", "method": "GET", "path": "/x",
        "proposed": {"source": "orders", "destination": "payments", "action": "allow",
                     "permissions": [{"methods": ["POST"]}]}}))
    .unwrap();
    let verdict = send::<ep::CheckIntention>(&router, t, &proposed)
        .await
        .unwrap();
    assert!(!verdict.allowed(), "{verdict:?}");
    let bad: writ_api::intentions::CheckRequest = serde_json::from_value(json!({
        "source": "orders", "destination": "payments",
        "proposed": {"source": "orders", "destination": "payments", "action": "allow",
                     "permissions": [{"methods": ["post"]}]}}))
    .unwrap();
    let (status, error) = send::<ep::CheckIntention>(&router, t, &bad)
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error.error.message.starts_with("proposed: "), "{error:?}");
    let again = send::<ep::ListIntentions>(&router, t, &Default::default())
        .await
        .unwrap();
    assert_eq!(again.intentions, list.intentions);
    let deleted = send::<ep::DeleteIntention>(
        &router,
        t,
        &writ_api::intentions::IntentionPair {
            source: "orders".into(),
            destination: "payments".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(deleted.deleted, intention);

    // Secrets: the value comes back only from a read, and only as it was put.
    let create: writ_api::secrets::CreateSecretRequest =
        serde_json::from_value(json!({"name": "orders/db", "secretString": "s3cr3t"})).unwrap();
    let created = send::<ep::CreateSecret>(&router, t, &create).await.unwrap();
    let read = send::<ep::GetSecretValue>(
        &router,
        t,
        &writ_api::secrets::GetSecretRequest {
            name: "orders/db".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(read.secret_string.as_deref(), Some("s3cr3t"));
    assert_eq!(read.version_id, created.version_id);
    assert_eq!(read.version_stages, ["AWSCURRENT"]);
    let put = send::<ep::PutSecretValue>(
        &router,
        t,
        &writ_api::secrets::PutSecretRequest {
            name: "orders/db".into(),
            secret_binary: Some("AAEC".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(put.version_stages, ["AWSCURRENT"]);
    let described = send::<ep::DescribeSecret>(
        &router,
        t,
        &writ_api::secrets::SecretName {
            name: "orders/db".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(described.versions.len(), 2);
    assert!(!format!("{described:?}").contains("s3cr3t"));
    let listed = send::<ep::ListSecrets>(&router, t, &NoRequest)
        .await
        .unwrap();
    assert_eq!(listed.secrets.len(), 1);
    let gone = send::<ep::DeleteSecret>(
        &router,
        t,
        &writ_api::secrets::DeleteSecretRequest {
            name: "orders/db".into(),
            recovery_days: Some(7),
        },
    )
    .await
    .unwrap();
    assert_eq!(gone.name, "orders/db");
    let back = send::<ep::RestoreSecret>(
        &router,
        t,
        &writ_api::secrets::SecretName {
            name: "orders/db".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(back.name, "orders/db");

    // Tokens and revocations.
    let scoped: writ_api::tokens::AdminTokenRequest = serde_json::from_value(json!({
        "policies": [{"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "writ:GetFunction", "Resource": "*"}]}]
    }))
    .unwrap();
    let issued = send::<ep::CreateAdminToken>(&router, t, &scoped)
        .await
        .unwrap();
    assert!(issued.token.starts_with("writ.admin."));
    // A token that may list functions but read only orders lists only orders.
    let orders_only: writ_api::tokens::AdminTokenRequest = serde_json::from_value(json!({
        "policies": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "writ:ListFunctions", "Resource": "writ:functions"},
            {"Effect": "Allow", "Action": "writ:GetFunction",
             "Resource": "spiffe://example.org/fn/orders"}]}]
    }))
    .unwrap();
    send::<ep::RegisterFunction>(
        &router,
        t,
        &serde_json::from_value(json!({"name": "payments"})).unwrap(),
    )
    .await
    .unwrap();
    let narrow = send::<ep::CreateAdminToken>(&router, t, &orders_only)
        .await
        .unwrap();
    let listed = send::<ep::ListFunctions>(&router, &narrow.token, &NoRequest)
        .await
        .unwrap();
    let names: Vec<&str> = listed.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["orders"]);
    let revoked = send::<ep::Revoke>(
        &router,
        t,
        &writ_api::identity::RevokeRequest {
            token_id: Some(issued.id.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(revoked.revocation.value, issued.id);
    let feed = send::<ep::ReadRevocations>(&router, t, &Default::default())
        .await
        .unwrap();
    assert!(feed.entries.iter().any(|e| e.value == issued.id));

    // The audit log holds all of it, and reads back as the types clients verify.
    let records = send::<ep::ReadAuditEvents>(&router, t, &Default::default())
        .await
        .unwrap();
    assert!(!records.records.is_empty());
    let checkpoints = send::<ep::ReadAuditCheckpoints>(&router, t, &Default::default())
        .await
        .unwrap();
    assert!(!checkpoints.public_keys.is_empty());
}
