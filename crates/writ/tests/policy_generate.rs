//! `writ policy generate --from-audit`: the least-privilege policy for what a function did,
//! from a flow recorded in the real server's audit log (secret reads it decided, calls a
//! gateway reported), checked with `writ policy simulate`.

mod common;

use common::{Server, TRUST_DOMAIN, TempDir};
use serde_json::{Value, json};

fn fn_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/fn/{name}")
}

/// A call as a gateway reports it.
fn call(actor: &str, function: &str, allowed: bool) -> Value {
    json!({
        "time": "2026-11-24T10:00:00Z",
        "actor": actor,
        "authenticatedBy": "mtls",
        "action": "writ:Invoke",
        "resource": format!("writ:fn/{function}"),
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
    // The secrets service records what it decides: orders reads its database URL, and is
    // refused the payment provider's key.
    let value = dir.join("value.txt");
    std::fs::write(&value, "postgres://orders").unwrap();
    for name in ["prod/orders-db", "prod/stripe-key"] {
        server.cli_ok(&[
            "secret",
            "put",
            name,
            "--value-file",
            value.to_str().unwrap(),
        ]);
    }
    let read_policy = dir.join("orders-reads.json");
    std::fs::write(
        &read_policy,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "secrets:GetSecretValue", "Resource": "writ:secret/prod/orders-db"}]})
        .to_string(),
    )
    .unwrap();
    server.cli_ok(&[
        "fn",
        "register",
        "orders",
        "--policy",
        read_policy.to_str().unwrap(),
    ]);
    let svid = common::Svid::login(
        &server,
        &dir,
        "orders",
        common::join_token_evidence(&server.join_token("orders")),
    )
    .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    for (name, status) in [("prod/orders-db", 200), ("prod/stripe-key", 403)] {
        svid.curl(&server, "POST", "/v1/secrets/get")
            .json(&json!({"name": name}))
            .send()
            .expect(status);
    }
    // A gateway reports the calls it forwarded: three to payments, one refused to
    // billing, and another function's.
    let mut events = vec![call(&orders, "payments", true); 3];
    events.push(call(&orders, "billing", false));
    events.push(call(&fn_id("payments"), "ledger", true));
    let accepted = server
        .curl("POST", "/v1/audit/events")
        .bearer(&server.admin_token())
        .json(&json!({"events": events}))
        .send()
        .expect(200)
        .json();
    assert_eq!(accepted["accepted"], 5);

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
    assert!(allowed(&server, &file, "writ:Invoke", "writ:fn/payments"));
    assert!(allowed(
        &server,
        &file,
        "secrets:GetSecretValue",
        "writ:secret/prod/orders-db"
    ));
    // ... and what it never did, or was refused, is not.
    assert!(!allowed(&server, &file, "writ:Invoke", "writ:fn/billing"));
    assert!(!allowed(&server, &file, "writ:Invoke", "writ:fn/ledger"));
    assert!(!allowed(
        &server,
        &file,
        "secrets:GetSecretValue",
        "writ:secret/prod/stripe-key"
    ));
    assert!(!allowed(
        &server,
        &file,
        "secrets:PutSecretValue",
        "writ:secret/prod/orders-db"
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
