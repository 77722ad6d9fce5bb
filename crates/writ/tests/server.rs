//! `writ server` run as operators and functions meet it: the real binary on a loopback port,
//! administered with the `writ` CLI, and spoken to with `curl` (TLS and mTLS) and
//! `openssl` (keys, CSRs, certificate checks).

mod common;

use common::{
    KeyAndCsr, Server, Svid, TRUST_DOMAIN, TempDir, authority_key_id, cert_public_key, csr, ec_key,
    join_token_evidence, key_public_key, pem_certificates, serial, success, text, uri_sans, verify,
    wait_for,
};
use serde_json::{Value, json};

/// A new server for `example.org` in `dir/data`.
fn start(dir: &TempDir) -> Server {
    Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN])
}

/// The SPIFFE ID of a function of the test trust domain.
fn fn_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/fn/{name}")
}

/// The id part of a `writ.<kind>.<id>.<secret>` token.
fn token_id(token: &str) -> &str {
    token.split('.').nth(2).expect("token id")
}

/// Logs `function` in with a fresh join token; panics unless it gets an SVID.
fn login(server: &Server, dir: &TempDir, function: &str) -> Svid {
    let token = server.join_token(function);
    Svid::login(server, dir, function, join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login {function}: HTTP {} {}", r.status, r.body))
}

/// Writes `pem` to a new file in `dir`.
fn pem_file(dir: &TempDir, stem: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.unique_file(stem, "pem");
    std::fs::write(&path, pem).expect("write pem");
    path
}

/// The entries of a revocation feed answer.
fn entries(feed: &Value) -> Vec<Value> {
    feed["entries"].as_array().cloned().unwrap_or_default()
}

// --- 1. Join-token login ---

#[test]
fn join_token_login_issues_a_verifiable_svid_and_the_token_works_once() {
    let dir = TempDir::new("login");
    let server = start(&dir);
    server.register("orders");
    let token = server.join_token("orders");
    assert!(token.starts_with("writ.join."), "{token}");

    let svid = Svid::login(&server, &dir, "orders", join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    // The bundle that came with the SVID verifies it, and it names exactly the function.
    verify(&svid.bundle, &svid.cert).unwrap_or_else(|e| panic!("openssl verify: {e}"));
    assert_eq!(uri_sans(&svid.cert), [fn_id("orders")]);
    assert_eq!(svid.spiffe_id, fn_id("orders"));
    assert_eq!(serial(&svid.cert), svid.serial);
    // Signed for the key the CSR was made with.
    assert_eq!(cert_public_key(&svid.cert), key_public_key(&svid.key));

    // The token is single use.
    let again = Svid::login(&server, &dir, "orders", join_token_evidence(&token))
        .expect_err("second login with the same join token");
    assert_eq!(again.status, 401, "{}", again.body);
    assert_eq!(again.error_message(), "authentication failed");
    let id = token_id(&token).to_string();
    let event = server.wait_for_audit("the refused login's audit event", |e| {
        e["action"] == "writ:Login" && e["outcome"] == "denied"
    });
    let reason = event["reason"].as_str().unwrap_or("");
    assert!(reason.contains("already used"), "{event}");
    // It names the token by the HMAC of its id, never by the id or the token itself.
    assert!(reason.contains("hmac-sha256:"), "{event}");
    assert!(!reason.contains(&id), "{event}");
    assert!(!event.to_string().contains(&token), "{event}");
}

// --- 2. JWT-SVIDs ---

#[test]
fn jwt_svid_minted_over_mtls_verifies_against_the_published_jwks() {
    let dir = TempDir::new("jwt");
    let server = start(&dir);
    server.register("orders");
    let svid = login(&server, &dir, "orders");

    let minted = svid.mint_jwt(&server, "payments").expect(200).json();
    assert_eq!(minted["spiffeId"], fn_id("orders"));
    let token = minted["token"].as_str().expect("token").to_string();

    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(
        &server
            .curl("GET", "/v1/bundle/jwks")
            .send()
            .expect(200)
            .body,
    )
    .expect("JWKS");
    let header = jsonwebtoken::decode_header(&token).expect("JWT header");
    let kid = header.kid.expect("the JWT-SVID header has a kid");
    assert!(jwks.find(&kid).is_some(), "kid {kid} is in the JWKS");

    let td = writ_identity::TrustDomain::new(TRUST_DOMAIN).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let leeway = time::Duration::seconds(60);
    let (id, claims) = writ_identity::jwt_svid::verify(&token, &jwks, &td, "payments", now, leeway)
        .unwrap_or_else(|e| panic!("verify JWT-SVID: {e}"));
    assert_eq!(id.as_str(), fn_id("orders"));
    assert_eq!(claims.sub, fn_id("orders"));
    assert_eq!(claims.aud, ["payments"]);
    // It is for "payments" only.
    assert!(writ_identity::jwt_svid::verify(&token, &jwks, &td, "billing", now, leeway).is_err());

    // Without the SVID as client certificate there is no caller.
    let anonymous = server
        .curl("POST", "/v1/svid/jwt")
        .json(&json!({"audience": "payments"}))
        .send();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}

// --- 3. Renewal ---

#[test]
fn renewal_over_mtls_issues_a_new_svid_and_needs_the_client_certificate() {
    let dir = TempDir::new("renew");
    let server = start(&dir);
    server.register("orders");
    let first = login(&server, &dir, "orders");

    let renewed = first
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("renew: {} {}", r.status, r.body));
    assert_ne!(renewed.serial, first.serial);
    assert_ne!(serial(&renewed.cert), serial(&first.cert));
    verify(&renewed.bundle, &renewed.cert).unwrap_or_else(|e| panic!("openssl verify: {e}"));
    verify(&server.ca_file(), &renewed.cert).unwrap_or_else(|e| panic!("openssl verify: {e}"));
    assert_eq!(uri_sans(&renewed.cert), [fn_id("orders")]);
    assert_eq!(cert_public_key(&renewed.cert), key_public_key(&renewed.key));
    // The renewed SVID renews in turn.
    renewed
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("renew again: {} {}", r.status, r.body));

    let next = KeyAndCsr::new(&dir);
    let anonymous = server
        .curl("POST", "/v1/svid/x509")
        .json(&json!({"csr": next.csr}))
        .send();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert_eq!(anonymous.error_code(), "unauthenticated");
}

// --- 4. Revocation ---

#[test]
fn a_revoked_function_can_neither_log_in_nor_renew() {
    let dir = TempDir::new("revoke-fn");
    let server = start(&dir);
    server.register("orders");
    let svid = login(&server, &dir, "orders");
    // Made before the revocation, and never used.
    let fresh = server.join_token("orders");

    let out = server.cli_ok(&["revoke", "--fn", "orders"]);
    assert!(out.contains("revoked function"), "{out}");

    let refused = Svid::login(&server, &dir, "orders", join_token_evidence(&fresh))
        .expect_err("login of a revoked function");
    assert_eq!(refused.status, 401, "{}", refused.body);
    let renewal = svid
        .renew(&server, &dir)
        .expect_err("renewal of a revoked function");
    assert_eq!(renewal.status, 401, "{}", renewal.body);
    let jwt = svid.mint_jwt(&server, "payments");
    assert_eq!(jwt.status, 401, "{}", jwt.body);
    server.wait_for_audit("the refused renewal's audit event", |e| {
        e["action"] == "writ:RenewSvid"
            && e["outcome"] == "denied"
            && e["reason"] == "the function is revoked"
    });
}

#[test]
fn a_revoked_serial_stops_that_svid_only() {
    let dir = TempDir::new("revoke-serial");
    let server = start(&dir);
    server.register("orders");
    let revoked = login(&server, &dir, "orders");
    let other = login(&server, &dir, "orders");
    assert_ne!(revoked.serial, other.serial);

    // As openssl prints it: upper case; the server normalises.
    let printed = revoked.serial.to_ascii_uppercase();
    let answer: Value =
        serde_json::from_str(&server.cli_ok(&["revoke", "--serial", &printed, "--format", "json"]))
            .expect("revoke --format json");
    assert_eq!(answer["revocation"]["kind"], "serial");
    assert_eq!(answer["revocation"]["value"], revoked.serial);

    let refused = revoked
        .renew(&server, &dir)
        .expect_err("renewal with a revoked serial");
    assert_eq!(refused.status, 401, "{}", refused.body);
    other
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("the other SVID renews: {} {}", r.status, r.body));
    // The function itself is not revoked: it can still log in.
    login(&server, &dir, "orders");
}

#[test]
fn the_revocation_feed_lists_entries_in_order_and_long_polls_for_new_ones() {
    let dir = TempDir::new("feed");
    let server = start(&dir);
    for name in ["alpha", "beta", "gamma"] {
        server.register(name);
    }
    let svid = login(&server, &dir, "gamma");
    let admin = server.admin_token();

    let empty = server
        .curl("GET", "/v1/revocations?after=0")
        .bearer(&admin)
        .send()
        .expect(200)
        .json();
    assert!(entries(&empty).is_empty(), "{empty}");
    assert_eq!(empty["next"], 0);

    server.cli_ok(&["revoke", "--serial", &svid.serial]);
    server.cli_ok(&["revoke", "--fn", "alpha"]);
    let feed = server
        .curl("GET", "/v1/revocations?after=0")
        .bearer(&admin)
        .send()
        .expect(200)
        .json();
    let listed = entries(&feed);
    let summary: Vec<(String, String)> = listed
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or("").to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("serial".to_string(), svid.serial.clone()),
            ("function".to_string(), fn_id("alpha")),
        ],
        "{feed}"
    );
    let first = listed[0]["seq"].as_i64().expect("seq");
    let last = listed[1]["seq"].as_i64().expect("seq");
    assert!(first < last, "{feed}");
    assert_eq!(feed["next"], last);
    // Reading from a position gives only what came after it.
    let tail = server
        .curl("GET", &format!("/v1/revocations?after={first}"))
        .bearer(&admin)
        .send()
        .expect(200)
        .json();
    assert_eq!(entries(&tail).len(), 1, "{tail}");
    assert_eq!(entries(&tail)[0]["seq"], last);

    // A follower with a valid SVID may read it; nobody else.
    let beta_svid = login(&server, &dir, "beta");
    beta_svid
        .curl(&server, "GET", "/v1/revocations?after=0")
        .send()
        .expect(200);
    let anonymous = server.curl("GET", "/v1/revocations?after=0").send();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);

    // A long poll from the head returns the next revocation when it is made.
    let poll = server
        .curl("GET", &format!("/v1/revocations?after={last}&wait=5"))
        .bearer(&admin);
    let follower = std::thread::spawn(move || poll.send());
    // Only to let the poll reach the server first; the assertions hold either way.
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.cli_ok(&["revoke", "--fn", "beta"]);
    let woke = follower.join().expect("follower thread").expect(200).json();
    let new = entries(&woke);
    assert_eq!(new.len(), 1, "{woke}");
    assert_eq!(new[0]["kind"], "function");
    assert_eq!(new[0]["value"], fn_id("beta"));
    assert!(new[0]["seq"].as_i64().unwrap() > last, "{woke}");
    assert_eq!(woke["next"], new[0]["seq"]);
}

// --- 5. CA rotation ---

/// The x509 keys of a `ca show` answer.
fn x509_keys(ca: &Value) -> Vec<Value> {
    ca["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["kind"] == "x509")
        .cloned()
        .collect()
}

#[test]
fn ca_rotation_publishes_the_new_ca_first_then_signs_with_it_and_old_svids_stay_valid() {
    let dir = TempDir::new("rotate");
    let server = start(&dir);
    server.register("orders");
    let old_ca_pem = server.cli_ok(&["ca", "show", "--bundle"]);
    assert_eq!(pem_certificates(&old_ca_pem).len(), 1, "{old_ca_pem}");
    let old_ca = pem_file(&dir, "old-ca", &old_ca_pem);
    // Ready before the rotation, so the login right after it is quick.
    let token = server.join_token("orders");
    let key = KeyAndCsr::new(&dir);

    server.cli_ok(&["ca", "rotate", "--kind", "x509", "--activate-after", "2s"]);
    let ca = server.ca_show();
    let keys = x509_keys(&ca);
    assert_eq!(keys.len(), 2, "{ca}");
    let prepared: Vec<&Value> = keys.iter().filter(|k| k["status"] == "prepared").collect();
    assert_eq!(prepared.len(), 1, "{ca}");
    assert!(keys.iter().any(|k| k["status"] == "signing"), "{ca}");
    let new_id = prepared[0]["id"].as_str().expect("id").to_string();
    // Published before it signs: in the bundle at once.
    let bundle_now = ca["x509Bundle"].as_str().expect("bundle");
    assert_eq!(pem_certificates(bundle_now).len(), 2, "{bundle_now}");
    let new_ca_pem = pem_certificates(bundle_now)
        .into_iter()
        .find(|c| !old_ca_pem.contains(c.trim()))
        .expect("the new CA in the bundle");
    let new_ca = pem_file(&dir, "new-ca", &new_ca_pem);

    let old_svid = Svid::login_with(&server, &dir, "orders", join_token_evidence(&token), &key)
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    verify(&old_ca, &old_svid.cert).unwrap_or_else(|e| panic!("signed by the old CA: {e}"));
    assert!(
        verify(&new_ca, &old_svid.cert).is_err(),
        "not by the new one"
    );

    wait_for("the new CA to sign", common::PATIENCE, || {
        let ca = server.ca_show();
        x509_keys(&ca)
            .iter()
            .any(|k| k["id"] == new_id.as_str() && k["status"] == "signing")
            .then_some(())
    });
    let new_svid = login(&server, &dir, "orders");
    verify(&new_ca, &new_svid.cert).unwrap_or_else(|e| panic!("signed by the new CA: {e}"));
    assert!(
        verify(&old_ca, &new_svid.cert).is_err(),
        "not by the old one"
    );
    assert_ne!(
        authority_key_id(&new_svid.cert),
        authority_key_id(&old_svid.cert)
    );

    // Both verify against the current bundle, during the overlap.
    let current = pem_file(&dir, "current", &server.cli_ok(&["ca", "show", "--bundle"]));
    verify(&current, &old_svid.cert).unwrap_or_else(|e| panic!("old SVID: {e}"));
    verify(&current, &new_svid.cert).unwrap_or_else(|e| panic!("new SVID: {e}"));
    verify(&server.ca_file(), &old_svid.cert).unwrap_or_else(|e| panic!("ca.pem, old: {e}"));
    verify(&server.ca_file(), &new_svid.cert).unwrap_or_else(|e| panic!("ca.pem, new: {e}"));

    // The server still accepts the old CA's SVID as a client certificate.
    let renewed = old_svid
        .renew(&server, &dir)
        .unwrap_or_else(|r| panic!("renew the old-CA SVID: {} {}", r.status, r.body));
    verify(&new_ca, &renewed.cert).unwrap_or_else(|e| panic!("renewed by the new CA: {e}"));
}

// --- 6. Restart ---

#[test]
fn a_restart_keeps_functions_tokens_keys_and_revocations() {
    let dir = TempDir::new("restart");
    let data = dir.join("data");
    let mut first = start(&dir);
    assert!(first.stdout().contains("bootstrap admin token"));
    first.register("orders");
    let svid = login(&first, &dir, "orders");
    let revoked = login(&first, &dir, "orders");
    first.cli_ok(&["revoke", "--serial", &revoked.serial]);
    let kept_token = first.join_token("orders");
    let admin = first.admin_token();
    let ca_pem = std::fs::read_to_string(first.ca_file()).expect("ca.pem");
    let status = first.stop();
    assert!(
        status.success(),
        "SIGTERM ends the server cleanly: {status}"
    );
    drop(first);

    let second = Server::start(&data, &[]);
    let stdout = second.stdout();
    assert!(
        !stdout.contains("bootstrap admin token"),
        "no second bootstrap: {stdout}"
    );
    assert!(
        !stdout.contains("writ.admin."),
        "no token printed: {stdout}"
    );
    assert!(
        stdout.contains(&format!("server for trust domain {TRUST_DOMAIN} listening")),
        "{stdout}"
    );
    assert_eq!(second.admin_token(), admin);
    assert_eq!(
        std::fs::read_to_string(second.ca_file()).expect("ca.pem"),
        ca_pem,
        "the same CA"
    );

    let list = second.cli_ok(&["fn", "list"]);
    assert!(
        list.contains("orders") && list.contains(&fn_id("orders")),
        "{list}"
    );
    let again = Svid::login(&second, &dir, "orders", join_token_evidence(&kept_token))
        .unwrap_or_else(|r| panic!("login with a pre-restart token: {} {}", r.status, r.body));
    verify(&second.ca_file(), &again.cert).unwrap_or_else(|e| panic!("{e}"));
    svid.renew(&second, &dir)
        .unwrap_or_else(|r| panic!("renew a pre-restart SVID: {} {}", r.status, r.body));
    let refused = revoked
        .renew(&second, &dir)
        .expect_err("a serial revoked before the restart");
    assert_eq!(refused.status, 401, "{}", refused.body);
    drop(second);

    let err = match Server::launch(&data, &["--trust-domain", "other.example"], &[]) {
        Ok(_) => panic!("a server started under another trust domain"),
        Err(e) => e,
    };
    assert!(
        err.contains("does not match") && err.contains(TRUST_DOMAIN),
        "the error names the stored trust domain: {err}"
    );
    assert!(err.contains("other.example"), "{err}");
}

// --- 7. Bad input ---

#[test]
fn bad_requests_get_precise_4xx_answers_and_change_nothing() {
    let dir = TempDir::new("bad-input");
    let server = start(&dir);
    server.register("orders");
    let token = server.join_token("orders");
    let key = dir.join("k.pem");
    ec_key(&key);
    let login_body = |csr: &str| json!({"function": "orders", "attestation": join_token_evidence(&token), "csr": csr});

    let malformed = server
        .curl("POST", "/v1/login")
        .json(&login_body(
            "-----BEGIN CERTIFICATE REQUEST-----\nnot a csr\n",
        ))
        .send()
        .expect(400);
    assert!(
        malformed.error_message().starts_with("csr:"),
        "{}",
        malformed.body
    );
    let extra_san = csr(&key, &["-addext", "subjectAltName=DNS:evil.example"]);
    let r = server
        .curl("POST", "/v1/login")
        .json(&login_body(&extra_san))
        .send()
        .expect(400);
    let message = r.error_message();
    assert!(
        message.starts_with("csr:") && message.contains("evil.example"),
        "{}",
        r.body
    );
    let ca_true = csr(&key, &["-addext", "basicConstraints=critical,CA:TRUE"]);
    let r = server
        .curl("POST", "/v1/login")
        .json(&login_body(&ca_true))
        .send()
        .expect(400);
    let message = r.error_message();
    assert!(
        message.starts_with("csr:") && message.contains("CA"),
        "{}",
        r.body
    );
    assert!(
        !server
            .audit_events()
            .iter()
            .any(|e| e["action"] == "writ:Login" && e["outcome"] == "allowed"),
        "no SVID issued for a bad CSR"
    );

    // A body over 64 KiB.
    let huge = "A".repeat(70 * 1024);
    let r = server
        .curl("POST", "/v1/login")
        .json(&login_body(&huge))
        .send()
        .expect(413);
    assert_eq!(r.error_code(), "bodyTooLarge");

    // None of that used the token up.
    let svid = Svid::login(&server, &dir, "orders", join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("the token still works: {} {}", r.status, r.body));
    assert_eq!(uri_sans(&svid.cert), [fn_id("orders")]);

    let admin = server.admin_token();
    let functions = |server: &Server| -> Vec<String> {
        server
            .curl("GET", "/v1/functions")
            .bearer(&admin)
            .send()
            .expect(200)
            .json()["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let r = server
        .curl("POST", "/v1/functions")
        .bearer(&admin)
        .json(&json!({"name": "payments", "colour": "red"}))
        .send()
        .expect(400);
    assert!(r.error_message().contains("colour"), "{}", r.body);
    let r = server
        .curl("POST", "/v1/functions")
        .bearer(&admin)
        .body(json!({"name": "payments"}).to_string(), "text/plain")
        .send()
        .expect(415);
    assert_eq!(r.error_code(), "unsupportedMediaType");
    let r = server
        .curl("POST", "/v1/functions")
        .bearer(&admin)
        .json(&json!({"name": "Payments!"}))
        .send()
        .expect(400);
    assert!(r.error_message().starts_with("name:"), "{}", r.body);
    assert_eq!(functions(&server), ["orders"], "nothing else registered");

    let r = server
        .curl("POST", "/v1/functions")
        .bearer(&admin)
        .json(&json!({"name": "orders"}))
        .send()
        .expect(409);
    assert_eq!(r.error_code(), "conflict");
    assert_eq!(functions(&server), ["orders"]);
}

// --- 8. Scoped operators ---

#[test]
fn scoped_admin_tokens_allow_only_their_policy_and_tokens_stay_out_of_the_log() {
    let dir = TempDir::new("scoped");
    let server = start(&dir);
    let policy = dir.join("team-a.json");
    std::fs::write(
        &policy,
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "writ:RegisterFunction",
                "Resource": fn_id("team-a-*"),
            }],
        })
        .to_string(),
    )
    .unwrap();
    let scoped = server
        .cli_ok(&[
            "token",
            "create",
            "--policy",
            policy.to_str().unwrap(),
            "--description",
            "team A",
        ])
        .trim()
        .to_string();
    assert!(scoped.starts_with("writ.admin."), "{scoped}");
    let scoped_file = dir.join("team-a.token");
    std::fs::write(&scoped_file, &scoped).unwrap();
    let as_team_a = |args: &[&str]| {
        common::run(
            server
                .cli_command()
                .env("WRIT_TOKEN_FILE", &scoped_file)
                .args(args),
        )
    };

    let ok = as_team_a(&["fn", "register", "team-a-orders"]);
    success("register team-a-orders", &ok);
    let denied = as_team_a(&["fn", "register", "team-b-orders"]);
    assert!(!denied.status.success(), "team-b-orders must be refused");
    let message = text(&denied.stderr);
    assert!(
        message.contains("403") && message.contains("not allowed"),
        "{message}"
    );
    let listed = as_team_a(&["fn", "list"]);
    assert!(!listed.status.success());
    assert!(
        text(&listed.stderr).contains("403"),
        "{}",
        text(&listed.stderr)
    );

    let r = server
        .curl("POST", "/v1/functions")
        .bearer(&scoped)
        .json(&json!({"name": "team-b-orders"}))
        .send()
        .expect(403);
    assert_eq!(r.error_code(), "accessDenied");
    let r = server
        .curl("GET", "/v1/functions")
        .bearer(&scoped)
        .send()
        .expect(403);
    assert_eq!(r.error_code(), "accessDenied");
    let garbage = server
        .curl("GET", "/v1/functions")
        .bearer("writ.admin.0123456789abcdef01234567.not-the-secret")
        .send()
        .expect(401);
    assert_eq!(garbage.error_message(), "authentication failed");
    server
        .curl("GET", "/v1/functions")
        .bearer("garbage")
        .send()
        .expect(401);

    // team-b-orders was not registered; team-a-orders was.
    let list = server.cli_ok(&["fn", "list"]);
    assert!(list.contains("team-a-orders"), "{list}");
    assert!(!list.contains("team-b-orders"), "{list}");

    // Use a join token, refuse one, so every kind of token has passed through the server.
    let join = server.join_token("team-a-orders");
    Svid::login(&server, &dir, "team-a-orders", join_token_evidence(&join))
        .unwrap_or_else(|r| panic!("login: {} {}", r.status, r.body));
    let reused = Svid::login(&server, &dir, "team-a-orders", join_token_evidence(&join))
        .expect_err("reused join token");
    assert_eq!(reused.status, 401);
    let unused = server.join_token("team-a-orders");
    server.wait_for_audit("the refused login", |e| {
        e["action"] == "writ:Login" && e["outcome"] == "denied"
    });

    let log = server.log();
    assert!(!log.is_empty());
    let admin = server.admin_token();
    for (what, token) in [
        ("bootstrap admin token", admin.as_str()),
        ("scoped admin token", scoped.as_str()),
        ("used join token", join.as_str()),
        ("unused join token", unused.as_str()),
    ] {
        let secret = token.rsplit('.').next().unwrap();
        assert!(!log.contains(token), "the {what} is in the server log");
        assert!(
            !log.contains(secret),
            "the {what}'s secret is in the server log"
        );
    }
}

// --- 9. The CLI verifies the server ---

#[test]
fn the_cli_refuses_a_server_its_ca_file_does_not_vouch_for() {
    let dir = TempDir::new("wrong-ca");
    let server = start(&dir);
    let other_key = dir.join("other-ca.key");
    let other_ca = dir.join("other-ca.pem");
    ec_key(&other_key);
    common::openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        other_key.to_str().unwrap(),
        "-subj",
        "/O=writ/CN=writ CA example.org",
        "-days",
        "1",
        "-out",
        other_ca.to_str().unwrap(),
    ]);

    let out = common::run(
        server
            .cli_command()
            .env("WRIT_CACERT", &other_ca)
            .args(["fn", "register", "orders"]),
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let message = text(&out.stderr).to_lowercase();
    assert!(message.contains("certificate"), "{message}");
    let list = server.cli_ok(&["fn", "list"]);
    assert!(!list.contains("orders"), "nothing was sent: {list}");
}

// --- JWT key rotation and token revocation ---

#[test]
fn jwt_key_rotation_keeps_old_tokens_verifiable_and_signs_with_the_new_key() {
    let dir = TempDir::new("jwt-rotate");
    let server = start(&dir);
    server.register("orders");
    let svid = login(&server, &dir, "orders");
    let kid_of = |token: &str| {
        jsonwebtoken::decode_header(token)
            .expect("JWT header")
            .kid
            .expect("kid")
    };
    let mint = || {
        svid.mint_jwt(&server, "payments").expect(200).json()["token"]
            .as_str()
            .expect("token")
            .to_string()
    };
    let before = mint();
    server.cli_ok(&["ca", "rotate", "--kind", "jwt", "--activate-after", "0s"]);
    let after = mint();
    assert_ne!(kid_of(&before), kid_of(&after), "the new key signs at once");

    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(
        &server
            .curl("GET", "/v1/bundle/jwks")
            .send()
            .expect(200)
            .body,
    )
    .expect("JWKS");
    assert_eq!(jwks.keys.len(), 2, "old and new key are both published");
    let td = writ_identity::TrustDomain::new(TRUST_DOMAIN).unwrap();
    let now = time::OffsetDateTime::now_utc();
    for token in [&before, &after] {
        writ_identity::jwt_svid::verify(
            token,
            &jwks,
            &td,
            "payments",
            now,
            time::Duration::seconds(5),
        )
        .unwrap_or_else(|e| panic!("a token of either key verifies during the overlap: {e}"));
    }
    // The X.509 CA was not rotated.
    let ca = server.ca_show();
    assert_eq!(x509_keys(&ca).len(), 1);
}

#[test]
fn a_revoked_join_token_no_longer_logs_in() {
    let dir = TempDir::new("revoke-token");
    let server = start(&dir);
    server.register("orders");
    let token = server.join_token("orders");
    server.cli_ok(&["revoke", "--token-id", token_id(&token)]);
    let Err(refused) = Svid::login(&server, &dir, "orders", join_token_evidence(&token)) else {
        panic!("a revoked join token is refused");
    };
    assert_eq!(refused.status, 401, "{}", refused.body);
    let event = server.wait_for_audit("the refusal", |e| {
        e["action"] == "writ:Login" && e["outcome"] == "denied"
    });
    assert!(
        event["reason"].as_str().unwrap_or("").contains("revoked"),
        "{event}"
    );
    // A revoked admin token stops working too.
    let policy = dir.join("all.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"writ:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let admin = server.cli_ok(&["token", "create", "--policy", policy.to_str().unwrap()]);
    let admin = admin.trim().to_string();
    let list = |t: &str| server.curl("GET", "/v1/functions").bearer(t).send().status;
    assert_eq!(list(&admin), 200);
    server.cli_ok(&["revoke", "--token-id", token_id(&admin)]);
    assert_eq!(list(&admin), 401);
}

/// `writ fn list | head -0`: the reader goes away before writ prints. writ exits quietly
/// (status 0, nothing on standard error), never with a panic about a broken pipe.
#[test]
fn the_cli_exits_quietly_when_its_reader_closes_the_pipe() {
    let dir = TempDir::new("closed-pipe");
    let server = start(&dir);
    for name in ["a", "b", "c"] {
        server.register(name);
    }
    let mut child = server
        .cli_command()
        .args(["fn", "list"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start writ fn list");
    // Close the read end before writ has answered from the server.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for writ");
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
