//! `writ fn update` and `writ fn reinstate` against the real server (issue 34): an update
//! replaces rules, lifetime and policies and needs the same decisions as a registration;
//! reinstating is its own permission, and brings back no SVID from before.

mod common;

use common::gateway::login;
use common::{Server, TRUST_DOMAIN, TempDir, text};
use serde_json::{Value, json};

fn start(dir: &TempDir) -> Server {
    Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN])
}

fn show(server: &Server, name: &str) -> Value {
    let out = server.cli_ok(&["fn", "show", name, "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("fn show: {e}: {out}"))
}

/// An admin token allowed `actions` on everything, in a file of `dir`.
fn scoped_token(server: &Server, dir: &TempDir, actions: &[&str]) -> std::path::PathBuf {
    let policy = dir.unique_file("policy", "json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]})
        .to_string(),
    )
    .unwrap();
    let token = server.cli_ok(&["token", "create", "--policy", policy.to_str().unwrap()]);
    let file = dir.unique_file("token", "txt");
    std::fs::write(&file, token.trim()).unwrap();
    file
}

#[test]
fn update_replaces_rules_ttl_and_policies_and_is_decided_like_a_registration() {
    let dir = TempDir::new("fn-update");
    let server = start(&dir);
    server.register("orders");
    let before = show(&server, "orders");
    assert_eq!(before["x509TtlPinned"], false);

    let policy = dir.join("orders-policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secrets:GetSecretValue","Resource":"writ:secret/app/db"}]}"#,
    )
    .unwrap();
    let out = server.cli_ok(&[
        "fn",
        "update",
        "orders",
        "--x509-ttl",
        "15m",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(
        out.contains("updated spiffe://example.org/fn/orders"),
        "{out}"
    );
    let after = show(&server, "orders");
    assert_eq!(after["x509Ttl"], "15m");
    assert_eq!(after["x509TtlPinned"], true);
    assert_eq!(
        after["policies"][0]["Statement"][0]["Resource"],
        "writ:secret/app/db"
    );
    // The function keeps its life: same identity, same registration time.
    assert_eq!(after["createdAt"], before["createdAt"]);
    server.wait_for_audit("the update", |e| {
        e["action"] == "writ:UpdateFunction" && e["resource"] == "spiffe://example.org/fn/orders"
    });

    // What is not given returns to its default; text mode says so in words.
    let shown = server.cli_ok(&["fn", "update", "orders"]);
    assert!(
        shown.starts_with("updated spiffe://example.org/fn/orders\n"),
        "{shown}"
    );
    assert!(
        shown.contains("attestation: a join token (writ token create --fn NAME)\n"),
        "{shown}"
    );
    assert!(!shown.contains('{'), "text mode prints no JSON: {shown}");
    let reset = show(&server, "orders");
    assert_eq!(reset["x509TtlPinned"], false);
    assert_eq!(reset["policies"], json!([]));

    // An operator allowed writ:UpdateFunction alone may not give policies.
    let token = scoped_token(&server, &dir, &["writ:UpdateFunction"]);
    let refused = common::run(server.cli_command().env("WRIT_TOKEN_FILE", &token).args([
        "fn",
        "update",
        "orders",
        "--policy",
        policy.to_str().unwrap(),
    ]));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("403"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(show(&server, "orders")["policies"], json!([]));
    // ... but may change the lifetime.
    let allowed = common::run(server.cli_command().env("WRIT_TOKEN_FILE", &token).args([
        "fn",
        "update",
        "orders",
        "--x509-ttl",
        "20m",
    ]));
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));

    // No such function: 404.
    let missing = server.cli(&["fn", "update", "nobody"]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("404"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn reinstating_is_its_own_permission_and_revives_no_svid() {
    let dir = TempDir::new("fn-reinstate");
    let server = start(&dir);
    server.register("orders");
    let first = login(&server, &dir, "orders");
    let second = login(&server, &dir, "orders");
    // A join token made before the revocation, never used.
    let stale = server.join_token("orders");
    server.cli_ok(&["revoke", "--serial", &first.serial]);
    server.cli_ok(&["revoke", "--fn", "orders"]);

    // Not revoked any more? Not yet: and a token that may revoke may not reinstate.
    let revoker = scoped_token(
        &server,
        &dir,
        &[
            "writ:RevokeFunction",
            "writ:RegisterFunction",
            "writ:GetFunction",
        ],
    );
    let refused = common::run(server.cli_command().env("WRIT_TOKEN_FILE", &revoker).args([
        "fn",
        "reinstate",
        "orders",
    ]));
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("403"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!show(&server, "orders")["revokedAt"].is_null());
    let no_token = server.cli(&["token", "create", "--fn", "orders"]);
    assert!(
        !no_token.status.success(),
        "a revoked function gets no join token"
    );
    assert!(
        text(&no_token.stderr).contains("409"),
        "{}",
        text(&no_token.stderr)
    );

    let reinstater = scoped_token(&server, &dir, &["writ:ReinstateFunction"]);
    let out = common::run(
        server
            .cli_command()
            .env("WRIT_TOKEN_FILE", &reinstater)
            .args(["fn", "reinstate", "orders"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("reinstated spiffe://example.org/fn/orders"));
    assert!(show(&server, "orders")["revokedAt"].is_null());
    server.wait_for_audit("the reinstatement", |e| {
        e["action"] == "writ:ReinstateFunction" && e["resource"] == "spiffe://example.org/fn/orders"
    });

    // Both SVIDs from before stay refused: the serial revoked on its own, and the other
    // one that the function's revocation covered.
    for old in [&first, &second] {
        let r = old
            .renew(&server, &dir)
            .expect_err("an SVID from before renewed");
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // The revocations stay on the feed that gateways and agents follow.
    let feed = server
        .curl("GET", "/v1/revocations?after=0")
        .bearer(&server.admin_token())
        .send()
        .expect(200)
        .json();
    let entries = feed["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "serial" && e["value"] == first.serial.as_str()),
        "{feed}"
    );
    assert!(entries.iter().any(|e| e["kind"] == "function"), "{feed}");

    // Nor does a join token made before: it was revoked with the reinstatement.
    let r = common::Svid::login(&server, &dir, "orders", common::join_token_evidence(&stale))
        .expect_err("a join token from before logged in");
    assert_eq!(r.status, 401, "{}", r.body);

    // A new login gets a new SVID, which works.
    let fresh = login(&server, &dir, "orders");
    assert_ne!(fresh.serial, first.serial);
    fresh
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("the new SVID renews: {} {}", r.status, r.body));

    // Reinstating a function that is not revoked is a conflict.
    let again = server.cli(&["fn", "reinstate", "orders"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("409"),
        "{}",
        text(&again.stderr)
    );
}
