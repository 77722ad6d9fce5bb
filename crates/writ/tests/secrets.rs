//! Secrets end to end against the real `writ` binary: functions read them over mTLS or with
//! a JWT-SVID as their policies allow, and every read and refusal is audited; values never
//! reach the disk, the logs or the audit trail in the clear; tampered ciphertexts are
//! refused; versions, staging labels, deletion and restore through the `writ secret` CLI.
//!
//! Tampering is done as an attacker with write access to the database would: with
//! `python3`'s `sqlite3` module on DATA_DIR/writ.db while the server is stopped.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Response, Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, run, success};
use serde_json::{Value, json};

// --- Helpers ---

/// A new server for `example.org` in `dir/data`.
fn start(dir: &TempDir) -> Server {
    Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN])
}

/// The SPIFFE ID of a function of the test trust domain.
fn fn_id(name: &str) -> String {
    format!("spiffe://{TRUST_DOMAIN}/fn/{name}")
}

/// The audience a JWT-SVID must carry to authenticate to the server.
fn server_audience() -> String {
    format!("spiffe://{TRUST_DOMAIN}/writ/server")
}

/// Logs `function` in with a fresh join token; panics unless it gets an SVID.
fn login(server: &Server, dir: &TempDir, function: &str) -> Svid {
    let token = server.join_token(function);
    Svid::login(server, dir, function, join_token_evidence(&token))
        .unwrap_or_else(|r| panic!("login {function}: HTTP {} {}", r.status, r.body))
}

/// A JWT-SVID for the server's audience, minted over mTLS with `svid`.
fn server_jwt(server: &Server, svid: &Svid) -> String {
    let minted = svid.mint_jwt(server, &server_audience()).expect(200).json();
    minted["token"].as_str().expect("token").to_string()
}

/// A string no other test (or run) uses, so finding it anywhere means it leaked from here.
fn marker(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        common::unique()
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{label}-{hex}")
}

/// 64 bytes derived from `seed` that are not UTF-8 (they start with 0xff 0x00).
fn binary_value(seed: &str) -> Vec<u8> {
    let a = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let b = ring::digest::digest(&ring::digest::SHA256, a.as_ref());
    let mut v = vec![0xff, 0x00, 0xfe];
    v.extend_from_slice(a.as_ref());
    v.extend_from_slice(b.as_ref());
    v.truncate(64);
    v
}

/// Writes `bytes` to a new file in `dir`.
fn value_file(dir: &TempDir, bytes: &[u8]) -> PathBuf {
    let path = dir.unique_file("value", "bin");
    std::fs::write(&path, bytes).expect("write value file");
    path
}

/// `writ secret put NAME --value-file F [extra...] --format json` as the operator;
/// returns its JSON.
fn put(server: &Server, inputs: &TempDir, name: &str, value: &[u8], extra: &[&str]) -> Value {
    let file = value_file(inputs, value);
    let mut args = vec!["secret", "put", name, "--value-file", path_str(&file)];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--format", "json"]);
    let out = server.cli_ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("put answer ({e}): {out}"))
}

/// `put`, returning the new version's id.
fn put_version(server: &Server, inputs: &TempDir, name: &str, value: &str) -> String {
    put(server, inputs, name, value.as_bytes(), &[])["versionId"]
        .as_str()
        .expect("versionId")
        .to_string()
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs the CLI as the operator with `input` on standard input.
fn cli_stdin(server: &Server, args: &[&str], input: &[u8]) -> Output {
    let mut child = server
        .cli_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start writ");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait for writ");
    let _ = writer.join();
    out
}

/// `writ secret get NAME ARGS...`: the raw bytes it printed; panics if it failed.
fn cli_get(server: &Server, name: &str, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["secret", "get", name];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    success(&format!("writ {}", all.join(" ")), &out);
    out.stdout
}

/// `POST /v1/secrets/{op}` with the bootstrap admin token.
fn api(server: &Server, op: &str, body: &Value) -> Response {
    server
        .curl("POST", &format!("/v1/secrets/{op}"))
        .bearer(&server.admin_token())
        .json(body)
        .send()
}

/// `POST /v1/secrets/get` over mTLS with `svid`.
fn fn_get(server: &Server, svid: &Svid, name: &str) -> Response {
    svid.curl(server, "POST", "/v1/secrets/get")
        .json(&json!({"name": name}))
        .send()
}

/// `POST /v1/secrets/get` with a JWT-SVID as the bearer token.
fn jwt_get(server: &Server, jwt: &str, name: &str) -> Response {
    server
        .curl("POST", "/v1/secrets/get")
        .bearer(jwt)
        .json(&json!({"name": name}))
        .send()
}

/// An identity policy allowing `actions` on `resource`, in a new file.
fn identity_policy(dir: &TempDir, actions: &[&str], resource: &str) -> PathBuf {
    let path = dir.unique_file("identity-policy", "json");
    let doc = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
    });
    std::fs::write(&path, doc.to_string()).expect("write policy");
    path
}

/// A resource policy with `statements`, in a new file.
fn resource_policy(dir: &TempDir, statements: Value) -> PathBuf {
    let path = dir.unique_file("resource-policy", "json");
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    std::fs::write(&path, doc.to_string()).expect("write policy");
    path
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs `python3 -c SCRIPT ARGS...`, asserting success; returns stdout.
fn python(script: &str, args: &[&str]) -> String {
    success(
        "python3",
        &run(common::python3().arg("-c").arg(script).args(args)),
    )
}

/// Edits DATA_DIR/writ.db behind the server's back (it must be stopped): `flip NAME ID`
/// flips a bit of a version's ciphertext; `copy NAME ID NAME2 ID2` copies a version's
/// wrapped key and ciphertext onto another row; `expire NAME` ends a deleted secret's
/// recovery window; `count NAME` counts its versions and labels. Prints the row count.
const TAMPER: &str = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
op = sys.argv[2]
q = "SELECT wrapped_key, ciphertext FROM secret_versions WHERE name = ? AND version_id = ?"
if op == "flip":
    (wk, ct) = db.execute(q, (sys.argv[3], sys.argv[4])).fetchone()
    ct = bytearray(ct)
    ct[len(ct) // 2] ^= 0x01
    n = db.execute("UPDATE secret_versions SET ciphertext = ? WHERE name = ? AND version_id = ?",
                   (bytes(ct), sys.argv[3], sys.argv[4])).rowcount
elif op == "copy":
    (wk, ct) = db.execute(q, (sys.argv[3], sys.argv[4])).fetchone()
    n = db.execute("UPDATE secret_versions SET wrapped_key = ?, ciphertext = ? "
                   "WHERE name = ? AND version_id = ?",
                   (wk, ct, sys.argv[5], sys.argv[6])).rowcount
elif op == "expire":
    n = db.execute("UPDATE secrets SET recovery_until = 1 WHERE name = ?", (sys.argv[3],)).rowcount
elif op == "count":
    n = db.execute("SELECT (SELECT COUNT(*) FROM secret_versions WHERE name = ?) + "
                   "(SELECT COUNT(*) FROM secret_labels WHERE name = ?)",
                   (sys.argv[3], sys.argv[3])).fetchone()[0]
db.commit()
db.close()
print(n)
"#;

fn tamper(db: &Path, args: &[&str]) -> i64 {
    let mut all = vec![path_str(db)];
    all.extend_from_slice(args);
    python(TAMPER, &all)
        .trim()
        .parse()
        .expect("row count from python")
}

// --- 1. Access: identity policies, resource policies, audit ---

#[test]
fn functions_read_secrets_only_as_their_policies_allow_and_every_decision_is_audited() {
    let dir = TempDir::new("secrets-access");
    let inputs = TempDir::new("secrets-access-inputs");
    let server = start(&dir);
    let value = marker("orders-db-password");
    let other_value = marker("payments-db-password");
    put_version(&server, &inputs, "prod/orders-db", &value);
    put_version(&server, &inputs, "prod/payments-db", &other_value);

    let allow = identity_policy(
        &dir,
        &["secrets:GetSecretValue"],
        "writ:secret/prod/orders-db",
    );
    server.cli_ok(&["fn", "register", "orders", "--policy", path_str(&allow)]);
    server.register("billing");
    server.register("other");
    let orders = login(&server, &dir, "orders");
    let billing = login(&server, &dir, "billing");
    let other = login(&server, &dir, "other");

    // Allowed over mTLS, and for that secret only.
    let r = fn_get(&server, &orders, "prod/orders-db")
        .expect(200)
        .json();
    assert_eq!(r["secretString"], value, "{r}");
    assert_eq!(r["versionStages"], json!(["AWSCURRENT"]));
    let r = fn_get(&server, &orders, "prod/payments-db").expect(403);
    assert_eq!(r.error_code(), "accessDenied");
    assert!(!r.body.contains(&other_value));
    // Allowed with a JWT-SVID for the server's audience; not with one for another audience.
    let jwt = server_jwt(&server, &orders);
    let r = jwt_get(&server, &jwt, "prod/orders-db").expect(200).json();
    assert_eq!(r["secretString"], value, "{r}");
    let elsewhere = orders.mint_jwt(&server, "payments").expect(200).json();
    let r = jwt_get(
        &server,
        elsewhere["token"].as_str().expect("token"),
        "prod/orders-db",
    )
    .expect(401);
    assert!(!r.body.contains(&value));
    // Nobody at all: refused.
    let r = server
        .curl("POST", "/v1/secrets/get")
        .json(&json!({"name": "prod/orders-db"}))
        .send();
    assert_eq!(r.status, 401, "{}", r.body);

    // The allowed reads are on record, as allowed, without the value.
    for by in ["x509Svid", "jwtSvid"] {
        let event = server.wait_for_audit(&format!("the allowed read by {by}"), |e| {
            e["action"] == "secrets:GetSecretValue"
                && e["actor"] == fn_id("orders")
                && e["authenticatedBy"] == by
                && e["outcome"] == "allowed"
        });
        assert_eq!(event["resource"], "writ:secret/prod/orders-db", "{event}");
        assert_eq!(event["decision"], "allowed", "{event}");
        assert!(!event.to_string().contains(&value), "{event}");
    }

    // No policy: refused (implicitly), and the refusal is on record.
    let r = fn_get(&server, &billing, "prod/orders-db").expect(403);
    assert_eq!(r.error_code(), "accessDenied");
    assert!(r.error_message().contains("implicitDeny"), "{}", r.body);
    assert!(!r.body.contains(&value));
    let event = server.wait_for_audit("billing's refused read", |e| {
        e["action"] == "secrets:GetSecretValue" && e["actor"] == fn_id("billing")
    });
    assert_eq!(event["outcome"], "denied", "{event}");
    assert_eq!(event["decision"], "implicitDeny", "{event}");
    assert_eq!(event["resource"], "writ:secret/prod/orders-db", "{event}");
    // Nor may it do anything else to the secret.
    let r = billing
        .curl(&server, "POST", "/v1/secrets/put")
        .json(&json!({"name": "prod/orders-db", "secretString": "overwritten"}))
        .send();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        cli_get(&server, "prod/orders-db", &[]),
        value.as_bytes(),
        "the refused put changed nothing"
    );

    // A resource policy alone grants another function, and only the action it names.
    let grant_other = json!({
        "Sid": "OtherReads",
        "Effect": "Allow",
        "Principal": {"SPIFFE": fn_id("other")},
        "Action": "secrets:GetSecretValue",
        "Resource": "writ:secret/prod/orders-db",
    });
    fn_get(&server, &other, "prod/orders-db").expect(403);
    let file = resource_policy(&dir, json!([grant_other.clone()]));
    server.cli_ok(&[
        "secret",
        "policy",
        "prod/orders-db",
        "--file",
        path_str(&file),
    ]);
    let r = fn_get(&server, &other, "prod/orders-db");
    assert_eq!(
        r.status, 200,
        "the resource policy grants other: {}",
        r.body
    );
    assert_eq!(r.json()["secretString"], value);
    let r = other
        .curl(&server, "POST", "/v1/secrets/describe")
        .json(&json!({"name": "prod/orders-db"}))
        .send();
    assert_eq!(r.status, 403, "only GetSecretValue was granted: {}", r.body);
    // ... and not billing, whom it does not name.
    fn_get(&server, &billing, "prod/orders-db").expect(403);
    // The identity allow still works next to it.
    fn_get(&server, &orders, "prod/orders-db").expect(200);

    // An explicit deny in the resource policy beats the identity policy's allow, over
    // mTLS and with a JWT-SVID.
    let deny_orders = json!({
        "Sid": "NotOrders",
        "Effect": "Deny",
        "Principal": {"SPIFFE": fn_id("orders")},
        "Action": "secrets:GetSecretValue",
        "Resource": "writ:secret/prod/orders-db",
    });
    let file = resource_policy(&dir, json!([grant_other, deny_orders]));
    server.cli_ok(&[
        "secret",
        "policy",
        "prod/orders-db",
        "--file",
        path_str(&file),
    ]);
    let r = fn_get(&server, &orders, "prod/orders-db").expect(403);
    assert!(r.error_message().contains("explicitDeny"), "{}", r.body);
    assert!(!r.body.contains(&value));
    let r = jwt_get(&server, &jwt, "prod/orders-db").expect(403);
    assert!(!r.body.contains(&value));
    let event = server.wait_for_audit("the explicitly denied read", |e| {
        e["action"] == "secrets:GetSecretValue"
            && e["actor"] == fn_id("orders")
            && e["resource"] == "writ:secret/prod/orders-db"
            && e["outcome"] == "denied"
    });
    assert_eq!(event["decision"], "explicitDeny", "{event}");
    assert!(
        event.to_string().contains("NotOrders"),
        "the deciding statement is named: {event}"
    );
    fn_get(&server, &other, "prod/orders-db").expect(200);
    // The policy is shown by describe.
    let described = api(&server, "describe", &json!({"name": "prod/orders-db"}))
        .expect(200)
        .json();
    assert_eq!(
        described["resourcePolicy"]["Statement"][1]["Sid"], "NotOrders",
        "{described}"
    );

    // Removed: back to the identity policies alone.
    server.cli_ok(&["secret", "policy", "prod/orders-db", "--remove"]);
    fn_get(&server, &orders, "prod/orders-db").expect(200);
    fn_get(&server, &other, "prod/orders-db").expect(403);

    // An invalid resource policy is refused, and the secret keeps none.
    let r = api(
        &server,
        "policy",
        &json!({"name": "prod/orders-db", "policy": {"Statement": "nonsense"}}),
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // Nothing the server recorded holds the value.
    let audit = std::fs::read(server.audit_file()).expect("audit file");
    assert!(
        !contains(&audit, value.as_bytes()),
        "value in the audit file"
    );
    assert!(!server.log().contains(&value), "value in the server log");
}

/// A scoped admin token gets only the secrets actions its policy names.
#[test]
fn a_scoped_admin_token_is_held_to_its_policy() {
    let dir = TempDir::new("secrets-scoped");
    let inputs = TempDir::new("secrets-scoped-inputs");
    let server = start(&dir);
    let value = marker("scoped");
    put_version(&server, &inputs, "team-a/key", &value);
    put_version(&server, &inputs, "team-b/key", &marker("team-b"));
    let policy = identity_policy(
        &dir,
        &["secrets:GetSecretValue", "secrets:DescribeSecret"],
        "writ:secret/team-a/*",
    );
    let token = server
        .cli_ok(&["token", "create", "--policy", path_str(&policy)])
        .trim()
        .to_string();
    let call = |op: &str, name: &str| {
        server
            .curl("POST", &format!("/v1/secrets/{op}"))
            .bearer(&token)
            .json(&json!({"name": name}))
            .send()
    };
    assert_eq!(
        call("get", "team-a/key").expect(200).json()["secretString"],
        value
    );
    call("describe", "team-a/key").expect(200);
    call("get", "team-b/key").expect(403);
    call("delete", "team-a/key").expect(403);
    let r = server
        .curl("POST", "/v1/secrets/put")
        .bearer(&token)
        .json(&json!({"name": "team-a/key", "secretString": "replaced"}))
        .send();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(cli_get(&server, "team-a/key", &[]), value.as_bytes());
}

// --- 2. Plaintext never on disk ---

#[test]
fn values_never_reach_the_disk_the_logs_or_the_audit_trail() {
    let dir = TempDir::new("secrets-disk");
    // The values' input files live elsewhere, so everything under `dir` can be searched.
    let inputs = TempDir::new("secrets-disk-inputs");
    let data = dir.join("data");
    let mut server = Server::launch(
        &data,
        &["--trust-domain", TRUST_DOMAIN],
        &[("WRIT_LOG", "debug")],
    )
    .unwrap_or_else(|e| panic!("{e}"));

    let first = marker("first-string-value");
    let second = marker("second-string-value");
    let stdin_value = marker("value-from-stdin");
    let binary = binary_value(&marker("binary-seed"));
    let big_seed = marker("big-value");
    let big: String = big_seed.repeat(30 * 1024 / big_seed.len());
    let unsent = marker("unsent-value");

    put(&server, &inputs, "disk/db", first.as_bytes(), &[]);
    put(&server, &inputs, "disk/db", second.as_bytes(), &[]);
    put(&server, &inputs, "disk/bin", &binary, &["--binary"]);
    put(&server, &inputs, "disk/big", big.as_bytes(), &[]);
    let out = cli_stdin(
        &server,
        &["secret", "put", "disk/stdin", "--value-stdin"],
        stdin_value.as_bytes(),
    );
    success("put --value-stdin", &out);

    // Read back every way there is, so the read paths run too.
    assert_eq!(cli_get(&server, "disk/db", &[]), second.as_bytes());
    assert_eq!(
        cli_get(&server, "disk/db", &["--version-stage", "AWSPREVIOUS"]),
        first.as_bytes()
    );
    assert_eq!(cli_get(&server, "disk/bin", &[]), binary);
    assert_eq!(cli_get(&server, "disk/big", &[]), big.as_bytes());
    assert_eq!(cli_get(&server, "disk/stdin", &[]), stdin_value.as_bytes());
    let r = api(&server, "get", &json!({"name": "disk/bin"}))
        .expect(200)
        .json();
    assert_eq!(r["secretBinary"], STANDARD.encode(&binary));
    assert!(r.get("secretString").is_none(), "{r}");
    let dir_fn = TempDir::new("secrets-disk-fn");
    let policy = identity_policy(&dir_fn, &["secrets:GetSecretValue"], "writ:secret/disk/*");
    server.cli_ok(&["fn", "register", "reader", "--policy", path_str(&policy)]);
    let reader = login(&server, &dir_fn, "reader");
    fn_get(&server, &reader, "disk/db").expect(200);
    jwt_get(&server, &server_jwt(&server, &reader), "disk/big").expect(200);
    server.cli_ok(&["secret", "describe", "disk/db"]);
    server.cli_ok(&["secret", "list"]);
    // Refused requests carrying a value do not echo it anywhere either.
    for body in [
        json!({"name": "disk/db", "secretString": unsent, "extra": 1}),
        json!({"name": "disk bad", "secretString": unsent}),
        json!({"name": "disk/db", "secretString": unsent, "secretBinary": "AAAA"}),
        json!({"name": "disk/nope", "secretString": unsent}),
    ] {
        let r = api(&server, "put", &body);
        assert!(r.status >= 400, "{}", r.body);
        assert!(!r.body.contains(&unsent), "{}", r.body);
    }
    let refused = server.cli(&["secret", "put", "disk/cli", "--value", &unsent]);
    assert!(!refused.status.success());
    assert!(!common::text(&refused.stderr).contains(&unsent));
    assert!(!common::text(&refused.stdout).contains(&unsent));

    let needles: Vec<(String, Vec<u8>)> = vec![
        ("first".into(), first.clone().into_bytes()),
        ("second".into(), second.clone().into_bytes()),
        ("stdin".into(), stdin_value.clone().into_bytes()),
        ("binary".into(), binary.clone()),
        (
            "binary as base64".into(),
            STANDARD.encode(&binary).into_bytes(),
        ),
        ("big".into(), big_seed.clone().into_bytes()),
        ("unsent".into(), unsent.clone().into_bytes()),
    ];

    let scan = |when: &str| {
        let mut files: Vec<PathBuf> = Vec::new();
        let mut stack = vec![dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        let names: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect();
        assert!(names.iter().any(|n| n == "writ.db"), "{when}: {names:?}");
        assert!(
            names.iter().any(|n| n.ends_with(".audit.jsonl")),
            "{when}: {names:?}"
        );
        assert!(
            names.iter().any(|n| n.ends_with(".stderr")),
            "{when}: {names:?}"
        );
        let mut stored = false;
        for file in &files {
            let bytes = std::fs::read(file).unwrap_or_default();
            let is_db = file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("writ.db"));
            // The secrets' rows are in what is searched (their names are not secret).
            stored |= is_db && contains(&bytes, b"disk/stdin");
            for (what, needle) in &needles {
                assert!(
                    !contains(&bytes, needle),
                    "{when}: the {what} value is in {} in the clear",
                    file.display()
                );
            }
        }
        assert!(
            stored,
            "{when}: the secrets' rows are in the files searched"
        );
        names
    };
    // The search finds what is there: the input files hold the values in the clear.
    let inputs_bytes: Vec<Vec<u8>> = std::fs::read_dir(inputs.path())
        .expect("read inputs")
        .flatten()
        .map(|e| std::fs::read(e.path()).expect("read input"))
        .collect();
    for (what, needle) in &needles {
        if ["first", "second", "binary", "big"].contains(&what.as_str()) {
            assert!(
                inputs_bytes.iter().any(|b| contains(b, needle)),
                "control: {what}"
            );
        }
    }
    let running = scan("while running");
    assert!(
        running.iter().any(|n| n == "writ.db-wal"),
        "the WAL is searched too: {running:?}"
    );
    // The reads were audited (and the audit file is what was searched).
    let events = server.audit_events();
    assert!(
        events
            .iter()
            .filter(|e| e["action"] == "secrets:GetSecretValue" && e["outcome"] == "allowed")
            .count()
            >= 7,
        "{events:?}"
    );
    server.stop();
    scan("after stopping");
}

// --- 3. Tampering ---

#[test]
fn tampered_or_moved_ciphertexts_do_not_decrypt_and_other_versions_still_read() {
    let dir = TempDir::new("secrets-tamper");
    let inputs = TempDir::new("secrets-tamper-inputs");
    let data = dir.join("data");
    let mut server = start(&dir);
    let alpha1 = marker("alpha-one");
    let alpha2 = marker("alpha-two");
    let bravo = marker("bravo");
    let charlie1 = marker("charlie-one");
    let charlie2 = marker("charlie-two");
    let a1 = put_version(&server, &inputs, "tamper/alpha", &alpha1);
    let a2 = put_version(&server, &inputs, "tamper/alpha", &alpha2);
    let b1 = put_version(&server, &inputs, "tamper/bravo", &bravo);
    let c1 = put_version(&server, &inputs, "tamper/charlie", &charlie1);
    let c2 = put_version(&server, &inputs, "tamper/charlie", &charlie2);
    server.stop();

    let db = data.join("writ.db");
    // One flipped bit in alpha's first version.
    assert_eq!(tamper(&db, &["flip", "tamper/alpha", &a1]), 1);
    // Alpha's current version moved onto bravo's (another secret).
    assert_eq!(
        tamper(&db, &["copy", "tamper/alpha", &a2, "tamper/bravo", &b1]),
        1
    );
    // Charlie's first version moved onto its second (another version of the same secret).
    assert_eq!(
        tamper(&db, &["copy", "tamper/charlie", &c1, "tamper/charlie", &c2]),
        1
    );

    let server = Server::start(&data, &["--trust-domain", TRUST_DOMAIN]);
    let refused = |body: Value, not: &[&str]| {
        let r = api(&server, "get", &body);
        assert_eq!(r.status, 500, "{body}: {}", r.body);
        assert_eq!(r.error_code(), "internal", "{}", r.body);
        assert!(r.error_message().contains("does not decrypt"), "{}", r.body);
        for v in not {
            assert!(!r.body.contains(v), "{body} gave a value: {}", r.body);
        }
    };
    refused(
        json!({"name": "tamper/alpha", "versionStage": "AWSPREVIOUS"}),
        &[&alpha1],
    );
    refused(json!({"name": "tamper/alpha", "versionId": a1}), &[&alpha1]);
    refused(json!({"name": "tamper/bravo"}), &[&alpha2, &bravo]);
    refused(json!({"name": "tamper/charlie"}), &[&charlie1, &charlie2]);
    // The CLI fails too, printing no value.
    let out = server.cli(&["secret", "get", "tamper/bravo"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", common::text(&out.stdout));
    assert!(!common::text(&out.stderr).contains(&alpha2));

    // The untouched versions still read.
    assert_eq!(cli_get(&server, "tamper/alpha", &[]), alpha2.as_bytes());
    assert_eq!(
        cli_get(
            &server,
            "tamper/charlie",
            &["--version-stage", "AWSPREVIOUS"]
        ),
        charlie1.as_bytes()
    );
    assert_eq!(
        cli_get(&server, "tamper/charlie", &["--version-id", &c1]),
        charlie1.as_bytes()
    );
    // A new value makes the secret usable again.
    let fresh = marker("bravo-again");
    put_version(&server, &inputs, "tamper/bravo", &fresh);
    assert_eq!(cli_get(&server, "tamper/bravo", &[]), fresh.as_bytes());
    // The failures were logged, without the values.
    let log = server.log();
    assert!(log.contains("does not decrypt"), "{log}");
    for v in [&alpha1, &alpha2, &bravo, &charlie1, &charlie2] {
        assert!(!log.contains(v.as_str()));
    }
}

// --- 4. Versions and labels through the CLI ---

#[test]
fn the_cli_puts_versions_moves_labels_and_refuses_values_on_the_command_line() {
    let dir = TempDir::new("secrets-cli");
    let inputs = TempDir::new("secrets-cli-inputs");
    let server = start(&dir);
    let one = marker("v-one");
    let two = marker("v-two");
    let three = marker("v-three");
    let created = put(
        &server,
        &inputs,
        "app/api-key",
        one.as_bytes(),
        &["--description", "the API key"],
    );
    let v1 = created["versionId"]
        .as_str()
        .expect("versionId")
        .to_string();
    let v2 = put_version(&server, &inputs, "app/api-key", &two);
    assert_ne!(v1, v2);
    // Text mode prints text for people, never the value; --format json the answer.
    let text_file = value_file(&inputs, marker("v-text").as_bytes());
    let text = server.cli_ok(&[
        "secret",
        "put",
        "app/text",
        "--value-file",
        path_str(&text_file),
    ]);
    assert!(text.starts_with("created app/text: version "), "{text}");
    let text = server.cli_ok(&[
        "secret",
        "put",
        "app/text",
        "--value-file",
        path_str(&text_file),
    ]);
    assert!(
        text.starts_with("stored app/text: version ") && text.contains("AWSCURRENT"),
        "{text}"
    );
    let text = server.cli_ok(&["secret", "describe", "app/text"]);
    assert!(text.starts_with("name:         app/text\n"), "{text}");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let text = server.cli_ok(&["secret", "delete", "app/text", "--recovery-days", "7"]);
    assert!(
        text.starts_with("app/text is scheduled for deletion on "),
        "{text}"
    );
    let text = server.cli_ok(&["secret", "restore", "app/text"]);
    assert_eq!(text.trim(), "restored app/text");

    assert_eq!(cli_get(&server, "app/api-key", &[]), two.as_bytes());
    assert_eq!(
        cli_get(&server, "app/api-key", &["--version-stage", "AWSCURRENT"]),
        two.as_bytes()
    );
    assert_eq!(
        cli_get(&server, "app/api-key", &["--version-stage", "AWSPREVIOUS"]),
        one.as_bytes()
    );
    assert_eq!(
        cli_get(&server, "app/api-key", &["--version-id", &v1]),
        one.as_bytes()
    );
    assert_eq!(
        cli_get(&server, "app/api-key", &["--version-id", &v2]),
        two.as_bytes()
    );
    // JSON output carries the metadata.
    let got: Value = serde_json::from_str(&server.cli_ok(&[
        "secret",
        "get",
        "app/api-key",
        "--version-id",
        &v1,
        "--format",
        "json",
    ]))
    .expect("json");
    assert_eq!(got["secretString"], one);
    assert_eq!(got["versionStages"], json!(["AWSPREVIOUS"]));

    let stages = |described: &Value| -> Vec<(String, Vec<String>)> {
        let mut all: Vec<(String, Vec<String>)> = described["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| {
                let id = v["versionId"].as_str().expect("versionId").to_string();
                let s = v["versionStages"]
                    .as_array()
                    .expect("stages")
                    .iter()
                    .map(|s| s.as_str().expect("stage").to_string())
                    .collect();
                (id, s)
            })
            .collect();
        all.sort();
        all
    };
    let described: Value = serde_json::from_str(&server.cli_ok(&[
        "secret",
        "describe",
        "app/api-key",
        "--format",
        "json",
    ]))
    .expect("describe json");
    assert_eq!(described["name"], "app/api-key");
    assert_eq!(described["description"], "the API key");
    let mut expected = vec![
        (v1.clone(), vec!["AWSPREVIOUS".to_string()]),
        (v2.clone(), vec!["AWSCURRENT".to_string()]),
    ];
    expected.sort();
    assert_eq!(stages(&described), expected);
    assert!(
        !described.to_string().contains(&one),
        "describe shows no value"
    );
    assert!(
        !described.to_string().contains(&two),
        "describe shows no value"
    );

    // A third put: AWSPREVIOUS moves on, the first version keeps no label but still reads.
    let v3 = put_version(&server, &inputs, "app/api-key", &three);
    let described: Value = serde_json::from_str(&server.cli_ok(&[
        "secret",
        "describe",
        "app/api-key",
        "--format",
        "json",
    ]))
    .expect("describe json");
    let mut expected = vec![
        (v1.clone(), vec![]),
        (v2.clone(), vec!["AWSPREVIOUS".to_string()]),
        (v3.clone(), vec!["AWSCURRENT".to_string()]),
    ];
    expected.sort();
    assert_eq!(stages(&described), expected);
    assert_eq!(
        cli_get(&server, "app/api-key", &["--version-id", &v1]),
        one.as_bytes()
    );
    assert_eq!(
        cli_get(&server, "app/api-key", &["--version-stage", "AWSPREVIOUS"]),
        two.as_bytes()
    );
    // Unknown stage or version: 404, and the CLI fails.
    let out = server.cli(&[
        "secret",
        "get",
        "app/api-key",
        "--version-stage",
        "AWSPENDING",
    ]);
    assert!(!out.status.success());
    assert!(common::text(&out.stderr).contains("404"), "{out:?}");
    let out = server.cli(&["secret", "get", "app/api-key", "--version-id", "ffff"]);
    assert!(!out.status.success());
    api(
        &server,
        "get",
        &json!({"name": "app/api-key", "versionId": v1, "versionStage": "AWSCURRENT"}),
    )
    .expect(400);

    // Binary values round-trip byte for byte; text that is not UTF-8 needs --binary.
    let bytes = binary_value(&marker("cli-binary"));
    put(&server, &inputs, "app/cert-key", &bytes, &["--binary"]);
    assert_eq!(cli_get(&server, "app/cert-key", &[]), bytes);
    let file = value_file(&inputs, &bytes);
    let out = server.cli(&[
        "secret",
        "put",
        "app/not-text",
        "--value-file",
        path_str(&file),
    ]);
    assert!(!out.status.success());
    assert!(common::text(&out.stderr).contains("--binary"), "{out:?}");
    // From standard input.
    let piped = marker("piped");
    let out = cli_stdin(
        &server,
        &["secret", "put", "app/api-key", "--value-stdin"],
        piped.as_bytes(),
    );
    success("put --value-stdin", &out);
    assert_eq!(cli_get(&server, "app/api-key", &[]), piped.as_bytes());

    // A value on the command line is refused with a hint, and nothing is stored.
    let leaked = marker("on-the-command-line");
    let out = server.cli(&["secret", "put", "app/cmdline", "--value", &leaked]);
    assert!(!out.status.success(), "{out:?}");
    let err = common::text(&out.stderr);
    assert!(
        err.contains("--value-file") && err.contains("--value-stdin"),
        "{err}"
    );
    assert!(!err.contains(&leaked), "{err}");
    let r = api(&server, "describe", &json!({"name": "app/cmdline"}));
    assert_eq!(r.status, 404, "{}", r.body);

    // Over 64 KiB: the CLI refuses before sending (from a file or standard input) ...
    let too_big = vec![b'x'; 64 * 1024 + 1];
    let file = value_file(&inputs, &too_big);
    let out = server.cli(&[
        "secret",
        "put",
        "app/api-key",
        "--value-file",
        path_str(&file),
    ]);
    assert!(!out.status.success());
    let err = common::text(&out.stderr);
    assert!(err.contains("65536"), "{err}");
    assert!(
        !err.contains("server refused"),
        "checked before sending: {err}"
    );
    let out = cli_stdin(
        &server,
        &["secret", "put", "app/api-key", "--value-stdin"],
        &too_big,
    );
    assert!(!out.status.success());
    assert!(common::text(&out.stderr).contains("65536"), "{out:?}");
    // ... and so does the server.
    let r = api(
        &server,
        "put",
        &json!({"name": "app/api-key", "secretString": String::from_utf8(too_big).unwrap()}),
    );
    assert!(
        r.status == 400 || r.status == 413,
        "a value over 64 KiB is refused: {} {}",
        r.status,
        r.body
    );
    let r = api(
        &server,
        "put",
        &json!({"name": "app/api-key", "secretBinary": STANDARD.encode(vec![7u8; 64 * 1024 + 1])}),
    );
    assert!(
        r.status == 400 || r.status == 413,
        "{} {}",
        r.status,
        r.body
    );
    assert_eq!(cli_get(&server, "app/api-key", &[]), piped.as_bytes());
}

// --- 5. Delete, restore, names ---

#[test]
fn deleted_secrets_are_hidden_until_restored_and_purged_after_the_window() {
    let dir = TempDir::new("secrets-delete");
    let inputs = TempDir::new("secrets-delete-inputs");
    let data = dir.join("data");
    let mut server = start(&dir);
    let value = marker("to-delete");
    put_version(&server, &inputs, "gone/soon", &value);
    put_version(&server, &inputs, "stays/here", &marker("stays"));
    let listed = |server: &Server| -> Vec<String> {
        let out = server.cli_ok(&["secret", "list", "--format", "json"]);
        let v: Value = serde_json::from_str(&out).expect("list json");
        v["secrets"]
            .as_array()
            .expect("secrets")
            .iter()
            .map(|s| s["name"].as_str().expect("name").to_string())
            .collect()
    };
    assert_eq!(listed(&server), ["gone/soon", "stays/here"]);

    // Recovery windows are 7 to 30 days.
    for days in [3, 6, 31] {
        let r = api(
            &server,
            "delete",
            &json!({"name": "gone/soon", "recoveryDays": days}),
        );
        assert_eq!(r.status, 400, "{days} days: {}", r.body);
        assert!(r.error_message().contains("recoveryDays"), "{}", r.body);
    }
    let out = server.cli(&["secret", "delete", "gone/soon", "--recovery-days", "3"]);
    assert!(!out.status.success());
    assert_eq!(cli_get(&server, "gone/soon", &[]), value.as_bytes());

    let deleted: Value = serde_json::from_str(&server.cli_ok(&[
        "secret",
        "delete",
        "gone/soon",
        "--recovery-days",
        "7",
        "--format",
        "json",
    ]))
    .expect("delete json");
    let when = time::OffsetDateTime::parse(
        deleted["deletionDate"].as_str().expect("deletionDate"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("deletionDate is RFC 3339");
    let days = (when - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((167..=168).contains(&days), "7 days from now: {deleted}");

    let r = api(&server, "get", &json!({"name": "gone/soon"}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        r.error_message().contains("scheduled for deletion"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(&value));
    let out = server.cli(&["secret", "get", "gone/soon"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(listed(&server), ["stays/here"]);
    api(&server, "describe", &json!({"name": "gone/soon"})).expect(404);
    // It cannot be written to, or created again, while it can be restored.
    let file = value_file(&inputs, b"replacement");
    let out = server.cli(&[
        "secret",
        "put",
        "gone/soon",
        "--value-file",
        path_str(&file),
    ]);
    assert!(!out.status.success(), "{out:?}");
    let r = api(
        &server,
        "create",
        &json!({"name": "gone/soon", "secretString": "replacement"}),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    api(&server, "delete", &json!({"name": "gone/soon"})).expect(404);

    server.cli_ok(&["secret", "restore", "gone/soon"]);
    assert_eq!(cli_get(&server, "gone/soon", &[]), value.as_bytes());
    assert_eq!(listed(&server), ["gone/soon", "stays/here"]);
    // Restoring what is not deleted (or does not exist) is a 404.
    api(&server, "restore", &json!({"name": "gone/soon"})).expect(404);
    api(&server, "restore", &json!({"name": "never/was"})).expect(404);
    assert!(
        server
            .audit_events()
            .iter()
            .any(|e| e["action"] == "secrets:DeleteSecret"
                && e["resource"] == "writ:secret/gone/soon"
                && e["outcome"] == "allowed")
    );
    server.wait_for_audit("the restore", |e| {
        e["action"] == "secrets:RestoreSecret" && e["outcome"] == "allowed"
    });

    // Past its window a deleted secret is purged at the next access: versions and labels
    // go, and the name is free again.
    server.cli_ok(&["secret", "delete", "gone/soon", "--recovery-days", "7"]);
    server.stop();
    let db = data.join("writ.db");
    assert_eq!(tamper(&db, &["expire", "gone/soon"]), 1);
    assert_eq!(
        tamper(&db, &["count", "gone/soon"]),
        2,
        "one version, one label"
    );
    let mut server = Server::start(&data, &["--trust-domain", TRUST_DOMAIN]);
    let r = api(&server, "get", &json!({"name": "gone/soon"}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.error_message().contains("no secret named"), "{}", r.body);
    api(&server, "restore", &json!({"name": "gone/soon"})).expect(404);
    let fresh = marker("fresh");
    put_version(&server, &inputs, "gone/soon", &fresh);
    assert_eq!(cli_get(&server, "gone/soon", &[]), fresh.as_bytes());
    let out = server.cli(&[
        "secret",
        "get",
        "gone/soon",
        "--version-stage",
        "AWSPREVIOUS",
    ]);
    assert!(!out.status.success(), "no version survived the purge");
    server.stop();
    assert_eq!(
        tamper(&db, &["count", "gone/soon"]),
        2,
        "only the new version and its label"
    );
}

#[test]
fn secret_names_are_validated() {
    let dir = TempDir::new("secrets-names");
    let server = start(&dir);
    for bad in ["a//b", "/lead", "trail/", "sp ace", "semi;colon", ""] {
        for op in ["create", "put"] {
            let r = api(&server, op, &json!({"name": bad, "secretString": "v"}));
            assert_eq!(r.status, 400, "{op} {bad:?}: {}", r.body);
            assert!(r.error_message().starts_with("name:"), "{}", r.body);
        }
        for op in ["get", "describe", "delete", "restore"] {
            let r = api(&server, op, &json!({"name": bad}));
            assert_eq!(r.status, 400, "{op} {bad:?}: {}", r.body);
        }
    }
    let long = "n".repeat(513);
    api(
        &server,
        "create",
        &json!({"name": long, "secretString": "v"}),
    )
    .expect(400);
    // Good names with every allowed character work.
    let good = "team_a/x+y=z.w@host-1";
    api(
        &server,
        "create",
        &json!({"name": good, "secretString": "v"}),
    )
    .expect(200);
    assert_eq!(cli_get(&server, good, &[]), b"v");
    // The CLI passes the server's answer on.
    let inputs = TempDir::new("secrets-names-inputs");
    let file = value_file(&inputs, b"v");
    let out = server.cli(&["secret", "put", "a//b", "--value-file", path_str(&file)]);
    assert!(!out.status.success());
    assert!(common::text(&out.stderr).contains("400"), "{out:?}");
    // Exactly one of secretString and secretBinary; binary must be base64.
    api(&server, "create", &json!({"name": "x/y"})).expect(400);
    api(
        &server,
        "create",
        &json!({"name": "x/y", "secretString": "v", "secretBinary": "dg=="}),
    )
    .expect(400);
    let r = api(
        &server,
        "create",
        &json!({"name": "x/y", "secretBinary": "not base64!"}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.error_message().contains("secretBinary"), "{}", r.body);
    api(&server, "describe", &json!({"name": "x/y"})).expect(404);
}

// --- Server bugs found by these tests (ignored until fixed; run with --ignored) ---

/// MAX_VALUE_BYTES is 64 KiB, as in Secrets Manager, and the CLI lets such a value through,
/// but the request body limit (also 64 KiB) refuses it with 413 first: the largest value
/// that fits is about 65,500 bytes of text, or about 49,000 binary bytes (base64). The
/// API's own 400 for an oversized value is unreachable.
#[test]
fn a_value_of_exactly_64_kib_is_accepted_and_a_larger_one_gets_400() {
    let dir = TempDir::new("secrets-64k");
    let inputs = TempDir::new("secrets-64k-inputs");
    let server = start(&dir);
    let max = vec![b'x'; 64 * 1024];
    let file = value_file(&inputs, &max);
    let out = server.cli(&["secret", "put", "big/text", "--value-file", path_str(&file)]);
    success("put a 64 KiB value", &out);
    assert_eq!(cli_get(&server, "big/text", &[]), max);
    let bin = vec![0xffu8; 64 * 1024];
    put(&server, &inputs, "big/bin", &bin, &["--binary"]);
    assert_eq!(cli_get(&server, "big/bin", &[]), bin);
    let r = api(
        &server,
        "put",
        &json!({"name": "big/text", "secretString": "x".repeat(64 * 1024 + 1)}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

/// The JWT-SVID path authorizes from the function's record without checking whether the
/// function was revoked (the mTLS path refuses it): a revoked function keeps reading
/// secrets with any JWT-SVID it minted before, until that expires (up to --jwt-max-ttl).
#[test]
fn a_revoked_function_cannot_read_secrets_with_a_jwt_svid() {
    let dir = TempDir::new("secrets-revoked");
    let inputs = TempDir::new("secrets-revoked-inputs");
    let server = start(&dir);
    let value = marker("revoked");
    put_version(&server, &inputs, "prod/orders-db", &value);
    let allow = identity_policy(
        &dir,
        &["secrets:GetSecretValue"],
        "writ:secret/prod/orders-db",
    );
    server.cli_ok(&["fn", "register", "orders", "--policy", path_str(&allow)]);
    let orders = login(&server, &dir, "orders");
    let jwt = server_jwt(&server, &orders);
    jwt_get(&server, &jwt, "prod/orders-db").expect(200);
    server.cli_ok(&["revoke", "--fn", "orders"]);
    let r = fn_get(&server, &orders, "prod/orders-db");
    assert_eq!(r.status, 401, "mTLS is refused: {}", r.body);
    let r = jwt_get(&server, &jwt, "prod/orders-db");
    assert!(
        !r.body.contains(&value),
        "the revoked function read the value"
    );
    assert_eq!(r.status, 401, "{}", r.body);
}

/// `get` (and `put`, `describe`, `delete`, `policy`) look the secret up before
/// authenticating the caller: anyone, with no credentials at all, learns which names exist
/// and which are scheduled for deletion (404 "no secret named" or "scheduled for deletion"
/// versus 401), and a function without access learns it too (404 versus 403).
#[test]
fn callers_without_access_cannot_tell_which_secrets_exist() {
    let dir = TempDir::new("secrets-oracle");
    let inputs = TempDir::new("secrets-oracle-inputs");
    let server = start(&dir);
    put_version(&server, &inputs, "prod/exists", &marker("exists"));
    put_version(&server, &inputs, "prod/deleted", &marker("deleted"));
    server.cli_ok(&["secret", "delete", "prod/deleted"]);
    server.register("nobody");
    let nobody = login(&server, &dir, "nobody");
    for name in ["prod/exists", "prod/deleted", "prod/missing"] {
        let r = server
            .curl("POST", "/v1/secrets/get")
            .json(&json!({"name": name}))
            .send();
        assert_eq!(r.status, 401, "anonymous get {name}: {}", r.body);
        let r = fn_get(&server, &nobody, name);
        assert_eq!(r.status, 403, "unauthorized get {name}: {}", r.body);
    }
}
