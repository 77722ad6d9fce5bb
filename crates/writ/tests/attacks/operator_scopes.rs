//! Admin tokens scoped by policy: what an operator may grant.
//!
//! The attack: a token allowed only to register team B's functions registers `team-b-evil`
//! with an identity policy `Allow secrets:* on *` (and, with an OIDC rule, trusting an
//! issuer of its own), logs in as it and reads every secret. Now registering gives nothing
//! by itself, policies and attestation rules are actions of their own, and a function's
//! policies are bounded by those of the operator who set them.

use super::common::{
    Response, Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, run, success,
};
use serde_json::{Value, json};

/// The secret the attacker is after, stored by the bootstrap operator.
const TARGET: &str = "payments/stripe-key";

fn start(dir: &TempDir) -> Server {
    let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
    let value = dir.join("value.txt");
    std::fs::write(&value, "sk_live_not_for_team_b").unwrap();
    server.cli_ok(&[
        "secret",
        "put",
        TARGET,
        "--value-file",
        value.to_str().unwrap(),
    ]);
    server
}

/// An admin token allowed `actions` on team B's functions and nothing else.
fn team_b_token(server: &Server, actions: &[&str]) -> String {
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": actions,
        "Resource": format!("spiffe://{TRUST_DOMAIN}/fn/team-b-*"),
    }]});
    let r = server
        .curl("POST", "/v1/tokens")
        .bearer(&server.admin_token())
        .json(&json!({"policies": [policy], "description": "team B"}))
        .send()
        .expect(201);
    r.json()["token"].as_str().unwrap().to_string()
}

fn register(server: &Server, token: &str, body: &Value) -> Response {
    server
        .curl("POST", "/v1/functions")
        .bearer(token)
        .json(body)
        .send()
}

fn grant_everything() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secrets:*", "Resource": "*"}
    ]})
}

fn read_target(server: &Server, svid: &Svid) -> Response {
    svid.curl(server, "POST", "/v1/secrets/get")
        .json(&json!({"name": TARGET}))
        .send()
}

fn join_token(server: &Server, token: &str, function: &str) -> String {
    let r = server
        .curl("POST", &format!("/v1/functions/{function}/join-tokens"))
        .bearer(token)
        .json(&json!({}))
        .send()
        .expect(201);
    r.json()["token"].as_str().unwrap().to_string()
}

/// Registering alone gives neither policies nor other attestation rules.
#[test]
fn registering_does_not_include_setting_policies_or_attestation_rules() {
    let dir = TempDir::new("attack-scope-actions");
    let server = start(&dir);
    let token = team_b_token(&server, &["writ:RegisterFunction"]);

    let r = register(
        &server,
        &token,
        &json!({"name": "team-b-evil", "policies": [grant_everything()]}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.error_code(), "accessDenied");
    assert!(
        r.error_message().contains("writ:PutFunctionPolicy"),
        "{}",
        r.body
    );

    let oidc = json!({
        "type": "oidc",
        "issuer": "https://attacker.example",
        "jwksUrl": "https://attacker.example/jwks",
        "audience": "writ",
        "subject": "anything",
    });
    let r = register(
        &server,
        &token,
        &json!({"name": "team-b-evil", "attestation": [oidc]}),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.error_message().contains("writ:PutAttestationRules"),
        "{}",
        r.body
    );

    // Neither refusal registered anything; a plain registration still works.
    register(&server, &token, &json!({"name": "team-b-evil"})).expect(201);
    let audit = server.wait_for_audit("the refused policy", |e| {
        e["action"] == "writ:PutFunctionPolicy" && e["outcome"] == "denied"
    });
    assert_eq!(
        audit["resource"],
        format!("spiffe://{TRUST_DOMAIN}/fn/team-b-evil")
    );
}

/// The escalation itself: allowed to set policies on its own functions, the operator gives
/// one `secrets:*` and logs in as it, but the function can do no more than the operator.
#[test]
fn a_scoped_operator_cannot_give_a_function_more_than_it_may_do() {
    let dir = TempDir::new("attack-scope-boundary");
    let server = start(&dir);
    let token = team_b_token(
        &server,
        &[
            "writ:RegisterFunction",
            "writ:PutFunctionPolicy",
            "writ:CreateJoinToken",
            "writ:GetFunction",
        ],
    );
    let registered = register(
        &server,
        &token,
        &json!({"name": "team-b-evil", "policies": [grant_everything()]}),
    )
    .expect(201)
    .json();
    assert_eq!(
        registered["permissionsBoundary"][0]["Statement"][0]["Action"][0], "writ:RegisterFunction",
        "{registered}"
    );

    let evil = Svid::login(
        &server,
        &dir,
        "team-b-evil",
        join_token_evidence(&join_token(&server, &token, "team-b-evil")),
    )
    .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    let r = read_target(&server, &evil);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.error_message().contains("permissions boundary"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("sk_live"), "{}", r.body);

    // `writ fn show` says the policies are bounded.
    let out = run(server
        .cli_command()
        .env_remove("WRIT_TOKEN_FILE")
        .env("WRIT_TOKEN", &token)
        .args(["fn", "show", "team-b-evil"]));
    let shown = success("writ fn show", &out);
    assert!(
        shown.contains("bounded by the policy of the token"),
        "{shown}"
    );

    // The same policy given by the bootstrap operator is not bounded.
    register(
        &server,
        &server.admin_token(),
        &json!({"name": "team-b-trusted", "policies": [grant_everything()]}),
    )
    .expect(201);
    let trusted = Svid::login(
        &server,
        &dir,
        "team-b-trusted",
        join_token_evidence(&server.join_token("team-b-trusted")),
    )
    .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    read_target(&server, &trusted).expect(200);

    // The secret's owner can still share it with the bounded function by name.
    let policy = dir.join("share.json");
    std::fs::write(
        &policy,
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"SPIFFE": format!("spiffe://{TRUST_DOMAIN}/fn/team-b-evil")},
            "Action": "secrets:GetSecretValue",
            "Resource": "*",
        }]})
        .to_string(),
    )
    .unwrap();
    server.cli_ok(&[
        "secret",
        "policy",
        TARGET,
        "--file",
        policy.to_str().unwrap(),
    ]);
    let shared = server_wait_for_read(&server, &evil);
    assert_eq!(shared.status, 200, "{}", shared.body);
}

/// The secret cache on the server keeps metadata for up to a second; wait for the new
/// resource policy to be the one decided on.
fn server_wait_for_read(server: &Server, svid: &Svid) -> Response {
    super::common::wait_for(
        "the shared secret to be readable",
        super::common::PATIENCE,
        || {
            let r = read_target(server, svid);
            (r.status == 200).then_some(r)
        },
    )
}
