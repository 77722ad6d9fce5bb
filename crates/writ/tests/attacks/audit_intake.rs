//! The audit log's intake, `POST /v1/audit/events`: what a gateway or agent may report.
//!
//! The attack: a gateway's token posted an event saying `orders` was allowed
//! `secrets:GetSecretValue` on a secret it never read, and `writ policy generate
//! --from-audit` then granted it. Reports are now limited to the calls their sender decides
//! (`writ:Invoke`), on the functions its token names, and stamped with who sent them.

use super::common::{Server, TRUST_DOMAIN, TempDir};
use serde_json::{Value, json};

fn fn_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/fn/{name}")
}

/// An event as a gateway reports it.
fn report(action: &str, resource: &str, request_id: &str) -> Value {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({
        "time": now, "requestId": request_id, "actor": fn_id("orders"),
        "authenticatedBy": "mtls", "action": action, "resource": resource,
        "decision": "allowed", "outcome": "allowed",
    })
}

/// An admin token whose policy is `statements`.
fn token(server: &Server, statements: Value) -> String {
    server
        .curl("POST", "/v1/tokens")
        .bearer(&server.admin_token())
        .json(&json!({"policies": [{"Version": "2012-10-17", "Statement": statements}]}))
        .send()
        .expect(201)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn post(server: &Server, bearer: &str, events: &[Value]) -> super::common::Response {
    server
        .curl("POST", "/v1/audit/events")
        .bearer(bearer)
        .json(&json!({"events": events}))
        .send()
}

#[test]
fn a_gateway_reports_only_calls_to_its_own_functions_and_policy_generation_believes_no_more() {
    let dir = TempDir::new("attack-audit-intake");
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    server.register("orders");
    let gateway = token(
        &server,
        json!([{"Effect": "Allow", "Action": "writ:PutAuditEvents", "Resource": "writ:fn/payments"}]),
    );

    // A secret read is the server's decision: nobody reports one, not even the bootstrap token.
    let forged = report(
        "secrets:GetSecretValue",
        "writ:secret/payments/stripe-key",
        "forged-read",
    );
    let r = post(&server, &gateway, std::slice::from_ref(&forged));
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        &server,
        &server.admin_token(),
        std::slice::from_ref(&forged),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.error_message().contains("events[0].action"), "{}", r.body);

    // Calls to a function the gateway's token does not name are refused, with the batch.
    let r = post(
        &server,
        &gateway,
        &[
            report("writ:Invoke", "writ:fn/payments", "mixed-1"),
            report("writ:Invoke", "writ:fn/billing", "mixed-2"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.error_code(), "accessDenied");
    assert!(r.error_message().contains("writ:fn/billing"), "{}", r.body);

    // Its own function's calls are taken, stamped with the sender.
    post(
        &server,
        &gateway,
        &[report("writ:Invoke", "writ:fn/payments", "own-call")],
    )
    .expect(200);

    let generated = server.cli_ok(&[
        "policy",
        "generate",
        "--from-audit",
        "--fn",
        "orders",
        "--since",
        "1h",
    ]);
    assert!(generated.contains("writ:fn/payments"), "{generated}");
    assert!(!generated.contains("secrets:"), "{generated}");
    assert!(!generated.contains("billing"), "{generated}");
    let export = server.cli_ok(&["audit", "export", "--format", "jsonl"]);
    assert!(
        !export.contains("forged-read"),
        "a forged event was recorded"
    );
    assert!(
        !export.contains("mixed-"),
        "a refused batch was partly recorded"
    );
}
