//! `writ policy generate --from-audit`: the least-privilege policy for what a function did,
//! from a flow recorded in the real server's audit log, checked with `writ policy simulate`.

mod common;

use common::{Server, TRUST_DOMAIN, TempDir};
use serde_json::{Value, json};

fn fn_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/fn/{name}")
}

/// One authorization event as a gateway or the secrets service reports it.
fn decision(actor: &str, action: &str, resource: &str, allowed: bool) -> Value {
    json!({
        "time": "2026-11-24T10:00:00Z",
        "actor": actor,
        "authenticatedBy": "x509Svid",
        "action": action,
        "resource": resource,
        "decision": if allowed { "allowed" } else { "implicitDeny" },
        "outcome": if allowed { "allowed" } else { "denied" },
    })
}

/// `writ policy simulate --policy FILE --action A --resource R`: true when allowed.
fn allowed(server: &Server, policy: &std::path::Path, action: &str, resource: &str) -> bool {
    let out = server
        .cli_command()
        .args(["policy", "simulate", "--policy"])
        .arg(policy)
        .args(["--action", action, "--resource", resource])
        .output()
        .expect("run writ policy simulate");
    match out.status.code() {
        Some(0) => true,
        Some(2) => false,
        other => panic!(
            "simulate failed ({other:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn a_generated_policy_allows_the_recorded_flow_and_nothing_else() {
    let dir = TempDir::new("generate");
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    let orders = fn_id("orders");
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
    // What a gateway and the secrets service would have recorded over a day.
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(decision(&orders, "writ:Invoke", &fn_id("payments"), true));
    }
    events.push(decision(
        &orders,
        "secrets:GetSecretValue",
        "prod/orders-db",
        true,
    ));
    events.push(decision(&orders, "dynamodb:GetItem", table, true));
    events.push(decision(&orders, "dynamodb:Query", table, true));
    // Noise: a call that was refused, and another function's calls.
    events.push(decision(&orders, "writ:Invoke", &fn_id("billing"), false));
    events.push(decision(
        &fn_id("payments"),
        "secrets:GetSecretValue",
        "prod/stripe-key",
        true,
    ));
    let accepted = server
        .curl("POST", "/v1/audit/events")
        .bearer(&server.admin_token())
        .json(&json!({"events": events}))
        .send()
        .expect(200)
        .json();
    assert_eq!(accepted["accepted"], 8);

    let text = server.cli_ok(&[
        "policy",
        "generate",
        "--from-audit",
        "--fn",
        "orders",
        "--since",
        "3650d",
    ]);
    let policy: Value = serde_json::from_str(&text).expect("the output is one policy document");
    assert_eq!(policy["Version"], "2012-10-17");
    assert!(
        !text.contains('*'),
        "no wildcard wider than the evidence: {text}"
    );
    let file = dir.join("orders-policy.json");
    std::fs::write(&file, &text).unwrap();
    let validate = server
        .cli_command()
        .args(["policy", "validate"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stdout)
    );

    // The same flow is allowed ...
    assert!(allowed(&server, &file, "writ:Invoke", &fn_id("payments")));
    assert!(allowed(
        &server,
        &file,
        "secrets:GetSecretValue",
        "prod/orders-db"
    ));
    assert!(allowed(&server, &file, "dynamodb:GetItem", table));
    assert!(allowed(&server, &file, "dynamodb:Query", table));
    // ... and what it never did, or was refused, is not.
    assert!(!allowed(&server, &file, "writ:Invoke", &fn_id("billing")));
    assert!(!allowed(
        &server,
        &file,
        "secrets:GetSecretValue",
        "prod/stripe-key"
    ));
    assert!(!allowed(&server, &file, "dynamodb:DeleteItem", table));
    assert!(!allowed(
        &server,
        &file,
        "dynamodb:GetItem",
        "arn:aws:dynamodb:us-east-1:123456789012:table/users"
    ));

    // A function with no recorded calls gets an error, not an empty policy.
    let out = server
        .cli_command()
        .args(["policy", "generate", "--from-audit", "--fn", "idle"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no allowed calls"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
