//! Intentions end to end: the real server and CLI, and curl for the API.

mod common;

use common::{Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, success, text};
use serde_json::{Value, json};

fn start(dir: &TempDir) -> Server {
    Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN])
}

/// `writ intention check ...`: (exit code, stdout).
fn check(server: &Server, args: &[&str]) -> (i32, String) {
    let mut all = vec!["intention", "check"];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

fn list_json(server: &Server) -> Value {
    let out = server.cli_ok(&["intention", "list", "--format", "json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("list: {e}: {out}"))
}

#[test]
fn allow_deny_list_check_delete_round_trip() {
    let dir = TempDir::new("intentions");
    let server = start(&dir);

    // Nothing yet: default deny.
    let (code, out) = check(&server, &["orders", "payments"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "denied: no intention allows orders to call payments (default deny)"
    );
    assert_eq!(list_json(&server)["index"], 0);

    let out = server.cli_ok(&["intention", "deny", "*", "payments"]);
    assert_eq!(out.trim(), "created intention: deny * -> payments");
    let out = server.cli_ok(&[
        "intention",
        "allow",
        "orders",
        "payments",
        "--description",
        "checkout",
    ]);
    assert_eq!(out.trim(), "created intention: allow orders -> payments");

    // The most specific wins: orders is allowed, everyone else denied by `* -> payments`.
    let (code, out) = check(&server, &["orders", "payments"]);
    assert_eq!(
        (code, out.trim()),
        (0, "allowed by intention orders -> payments")
    );
    let (code, out) = check(&server, &["billing", "payments"]);
    assert_eq!((code, out.trim()), (1, "denied by intention * -> payments"));

    let listed = list_json(&server);
    assert_eq!(listed["index"], 2);
    let all = listed["intentions"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["source"], "orders");
    assert_eq!(all[1]["description"], "checkout");
    assert!(all[1]["createdAt"].as_str().unwrap().ends_with('Z'));
    let text_list = server.cli_ok(&["intention", "list"]);
    assert!(text_list.contains("deny   *"), "{text_list}");
    assert!(text_list.contains("# checkout"), "{text_list}");

    // Replacing an intention: same pair, new action.
    let out = server.cli_ok(&["intention", "deny", "orders", "payments"]);
    assert_eq!(out.trim(), "replaced intention: deny orders -> payments");
    let (code, out) = check(&server, &["orders", "payments"]);
    assert_eq!(
        (code, out.trim()),
        (1, "denied by intention orders -> payments")
    );

    // JSON check names the intention and the statements that decided.
    let out = server.cli(&[
        "intention",
        "check",
        "orders",
        "payments",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["decision"], "denied");
    assert_eq!(answer["intention"]["source"], "orders");
    assert_eq!(answer["matched"], json!(["orders->payments"]));

    let out = server.cli_ok(&["intention", "delete", "orders", "payments"]);
    assert_eq!(out.trim(), "deleted intention orders -> payments");
    let (code, out) = check(&server, &["orders", "payments"]);
    assert_eq!((code, out.trim()), (1, "denied by intention * -> payments"));
    let gone = server.cli(&["intention", "delete", "orders", "payments"]);
    assert!(!gone.status.success());
    assert!(
        text(&gone.stderr).contains("(404)"),
        "{}",
        text(&gone.stderr)
    );
    server.cli_ok(&["intention", "delete", "*", "payments"]);
    assert_eq!(list_json(&server)["intentions"], json!([]));
    assert_eq!(list_json(&server)["index"], 5);
}

#[test]
fn l7_rules_allow_only_what_they_name() {
    let dir = TempDir::new("intentions-l7");
    let server = start(&dir);
    server.cli_ok(&["intention", "allow", "*", "payments"]);
    let out = server.cli_ok(&[
        "intention",
        "allow",
        "orders",
        "payments",
        "--method",
        "POST",
        "--path",
        "/charge",
    ]);
    assert_eq!(
        out.trim(),
        "created intention: allow orders -> payments (POST /charge)"
    );
    let post = [
        "orders", "payments", "--method", "POST", "--path", "/charge",
    ];
    let (code, out) = check(&server, &post);
    assert_eq!(
        (code, out.trim()),
        (0, "allowed by intention orders -> payments (POST /charge)")
    );
    let (code, out) = check(
        &server,
        &["orders", "payments", "--method", "GET", "--path", "/charge"],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        out.trim(),
        "denied: intention orders -> payments allows only POST /charge, and this request \
         (GET /charge) matches none of them"
    );
    // The L7 intention decides for orders: no fall-through to `* -> payments`.
    let (code, _) = check(
        &server,
        &[
            "orders", "payments", "--method", "POST", "--path", "/refund",
        ],
    );
    assert_eq!(code, 1);
    // Others still get `* -> payments`.
    let (code, _) = check(
        &server,
        &["billing", "payments", "--method", "GET", "--path", "/x"],
    );
    assert_eq!(code, 0);

    // Prefixes and headers.
    server.cli_ok(&[
        "intention",
        "allow",
        "ci",
        "deploy",
        "--method",
        "POST",
        "--path-prefix",
        "/releases/",
        "--header",
        "x-env=prod",
    ]);
    let base = ["ci", "deploy", "--method", "POST", "--path", "/releases/42"];
    let (code, out) = check(&server, &[&base[..], &["--header", "X-Env=prod"]].concat());
    assert_eq!(code, 0, "{out}");
    let (code, _) = check(&server, &[&base[..], &["--header", "x-env=dev"]].concat());
    assert_eq!(code, 1);
    let (code, _) = check(&server, &base);
    assert_eq!(code, 1);
}

#[test]
fn validation_errors_name_the_field() {
    let dir = TempDir::new("intentions-invalid");
    let server = start(&dir);
    let refused = |args: &[&str]| {
        let out = server.cli(args);
        assert!(!out.status.success(), "{args:?} must be refused");
        text(&out.stderr)
    };
    let e = refused(&["intention", "allow", "or ders", "payments"]);
    assert!(
        e.contains("(400)") && e.contains("source: \"or ders\""),
        "{e}"
    );
    let e = refused(&["intention", "allow", "orders", "pay*", "--method", "GET"]);
    assert!(e.contains("destination: \"pay*\""), "{e}");
    let e = refused(&[
        "intention",
        "allow",
        "orders",
        "payments",
        "--method",
        "get",
    ]);
    assert!(
        e.contains("permissions[0].methods[0]: \"get\" is not an HTTP method"),
        "{e}"
    );
    let e = refused(&[
        "intention",
        "allow",
        "orders",
        "payments",
        "--path",
        "charge",
    ]);
    assert!(e.contains("permissions[0].pathExact"), "{e}");
    let e = refused(&["intention", "check", "orders", "*"]);
    assert!(e.contains("destination: \"*\""), "{e}");

    // Through the API: a deny with permissions, an unknown field, a missing query field.
    let token = server.admin_token();
    let r = server
        .curl("PUT", "/v1/intentions")
        .bearer(&token)
        .json(&json!({"source": "a", "destination": "b", "action": "deny",
                      "permissions": [{"methods": ["GET"]}]}))
        .send()
        .expect(400);
    assert!(
        r.error_message().starts_with("permissions: only allow"),
        "{}",
        r.error_message()
    );
    let r = server
        .curl("PUT", "/v1/intentions")
        .bearer(&token)
        .json(
            &json!({"source": "a", "destination": "b", "action": "allow",
                      "permissions": [{"pathPrefix": "/", "pathExact": "/"}]}),
        )
        .send()
        .expect(400);
    assert!(
        r.error_message().starts_with("permissions[0].pathExact"),
        "{}",
        r.error_message()
    );
    let r = server
        .curl("PUT", "/v1/intentions")
        .bearer(&token)
        .json(&json!({"source": "a", "destination": "b", "action": "allow", "path": "/"}))
        .send()
        .expect(400);
    assert!(
        r.error_message().contains("unknown field `path`"),
        "{}",
        r.error_message()
    );
    let r = server
        .curl("DELETE", "/v1/intentions?source=a")
        .bearer(&token)
        .send()
        .expect(400);
    assert!(
        r.error_message().starts_with("destination: missing"),
        "{}",
        r.error_message()
    );
    assert_eq!(list_json(&server)["index"], 0, "nothing was written");
}

#[test]
fn writes_need_their_action_and_are_audited_and_gateways_read_with_an_svid() {
    let dir = TempDir::new("intentions-authz");
    let server = start(&dir);
    // A token that may write intentions to payments only, and read them.
    let policy = dir.join("payments-team.json");
    std::fs::write(
        &policy,
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["writ:WriteIntention", "writ:ReadIntentions"],
                 "Resource": ["writ:intention/*/payments", "writ:intentions"]}
            ],
        })
        .to_string(),
    )
    .unwrap();
    let scoped = server
        .cli_ok(&["token", "create", "--policy", policy.to_str().unwrap()])
        .trim()
        .to_string();
    let scoped_file = dir.join("payments-team.token");
    std::fs::write(&scoped_file, &scoped).unwrap();
    let as_team = |args: &[&str]| {
        common::run(
            server
                .cli_command()
                .env("WRIT_TOKEN_FILE", &scoped_file)
                .args(args),
        )
    };
    success(
        "scoped allow to payments",
        &as_team(&["intention", "allow", "orders", "payments"]),
    );
    let denied = as_team(&["intention", "allow", "orders", "inventory"]);
    assert!(!denied.status.success());
    let e = text(&denied.stderr);
    assert!(
        e.contains("(403)") && e.contains("writ:WriteIntention"),
        "{e}"
    );
    // No writ:DeleteIntention at all.
    let denied = as_team(&["intention", "delete", "orders", "payments"]);
    assert!(
        text(&denied.stderr).contains("(403)"),
        "{}",
        text(&denied.stderr)
    );
    let r = server
        .curl("PUT", "/v1/intentions")
        .bearer(&scoped)
        .json(&json!({"source": "*", "destination": "*", "action": "allow"}))
        .send()
        .expect(403);
    assert_eq!(r.error_code(), "accessDenied");
    success("scoped read", &as_team(&["intention", "list"]));
    success(
        "scoped check",
        &as_team(&["intention", "check", "orders", "payments"]),
    );
    // Without a token: 401.
    server.curl("GET", "/v1/intentions").send().expect(401);

    // The write and the refusals are in the audit log, with the intention as resource.
    let event = server.wait_for_audit("the allowed intention write", |e| {
        e["action"] == "writ:WriteIntention"
            && e["resource"] == "writ:intention/orders/payments"
            && e["outcome"] == "allowed"
    });
    assert_eq!(event["decision"], "allowed");
    server.wait_for_audit("the refused intention write", |e| {
        e["action"] == "writ:WriteIntention"
            && e["resource"] == "writ:intention/orders/inventory"
            && e["outcome"] == "denied"
    });
    server.cli_ok(&["intention", "delete", "orders", "payments"]);
    server.wait_for_audit("the delete", |e| {
        e["action"] == "writ:DeleteIntention"
            && e["resource"] == "writ:intention/orders/payments"
            && e["outcome"] == "allowed"
    });

    // A gateway (any function of the trust domain) follows the intentions with its SVID.
    server.cli_ok(&["intention", "deny", "*", "payments"]);
    server.register("gateway");
    let svid = Svid::login(
        &server,
        &dir,
        "gateway",
        join_token_evidence(&server.join_token("gateway")),
    )
    .unwrap_or_else(|r| panic!("login: {}", r.error_message()));
    let r = svid
        .curl(&server, "GET", "/v1/intentions")
        .send()
        .expect(200);
    let answer = r.json();
    assert_eq!(answer["intentions"][0]["destination"], "payments");
    assert_eq!(answer["index"], 3);
    let r = svid
        .curl(&server, "POST", "/v1/intentions/check")
        .json(&json!({"source": "orders", "destination": "payments", "method": "GET", "path": "/"}))
        .send()
        .expect(200);
    assert_eq!(r.json()["decision"], "denied");
    // A long poll returns at once when the follower is behind, and as soon as a change
    // lands when it is current.
    let behind = svid
        .curl(&server, "GET", "/v1/intentions?after=2&wait=30")
        .send()
        .expect(200);
    assert_eq!(behind.json()["index"], 3);
    let waiting = {
        let r = svid.curl(&server, "GET", "/v1/intentions?after=3&wait=30");
        std::thread::spawn(move || (std::time::Instant::now(), r.send()))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.cli_ok(&["intention", "allow", "orders", "payments"]);
    let (asked, r) = waiting.join().unwrap();
    let answer = r.expect(200).json();
    assert_eq!(answer["index"], 4);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "woken by the change"
    );
    let timed_out = svid
        .curl(&server, "GET", "/v1/intentions?after=4&wait=1")
        .send()
        .expect(200);
    assert_eq!(timed_out.json()["index"], 4);
    // An SVID cannot write.
    svid.curl(&server, "PUT", "/v1/intentions")
        .json(&json!({"source": "*", "destination": "*", "action": "allow"}))
        .send()
        .expect(401);
}
