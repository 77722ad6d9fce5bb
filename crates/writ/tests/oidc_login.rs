//! OIDC attestation end to end: the real `writ server`, a function registered with the real
//! CLI, a test OIDC issuer serving its JWKS over HTTP on 127.0.0.1, CSRs made by `openssl`,
//! and logins sent with `curl`. Every refusal must be a plain 401 to the caller, with the
//! cause only in the server's audit log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "writ";
const SUBJECT: &str = "repo:acme/orders:ref:refs/heads/main";
const FUNCTION_ID: &str = "spiffe://example.org/fn/orders";

// --- a temporary directory ---

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!(
            "writ-{label}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// --- the writ server, as a child process ---

struct Server {
    child: Child,
    port: u16,
    dir: TempDir,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start() -> Server {
        let dir = TempDir::new("oidc");
        let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(["server", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--trust-domain",
                "example.org",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .arg("--audit-file")
            .arg(dir.path().join("audit.jsonl"))
            .env_remove("WRIT_MASTER_KEY")
            .env_remove("WRIT_STORE")
            .env("WRIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start writ server");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        {
            let lines = stderr.clone();
            let pipe = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        {
            let pipe = child.stdout.take().expect("stdout");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split(" listening on https://127.0.0.1:").nth(1) {
                        let _ = tx.send(rest.trim().parse::<u16>().ok());
                    }
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "writ server did not report its port; stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        Server {
            child,
            port,
            dir,
            stderr,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// Runs the `writ` CLI against this server with its bootstrap token.
    fn cli(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(args)
            .args(["--format", "json"])
            .env("WRIT_ADDR", self.url(""))
            .env("WRIT_CACERT", self.data().join("ca.pem"))
            .env("WRIT_TOKEN_FILE", self.data().join("admin-token"))
            .env_remove("WRIT_TOKEN")
            .output()
            .expect("run writ");
        assert!(
            out.status.success(),
            "writ {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }

    /// Registers `name` with these attestation rules, through the CLI.
    fn register(&self, name: &str, rules: &Value) -> Value {
        let file = self.dir.path().join(format!("{name}-rules.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(rules).unwrap()).unwrap();
        let f = self.cli(&[
            "fn",
            "register",
            name,
            "--attestation",
            file.to_str().unwrap(),
        ]);
        assert_eq!(f["name"], name);
        f
    }

    /// The audit events committed so far, from the server's `--audit-file` copy.
    fn audit_events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|l| l["event"].clone())
            .collect()
    }

    /// Waits for the first `writ:Login` audit event after the first `seen` events.
    fn login_event_after(&self, seen: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.audit_events();
            if let Some(e) = events
                .iter()
                .skip(seen)
                .find(|e| e["action"] == "writ:Login")
            {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no writ:Login audit event; stderr:\n{}",
                self.stderr.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POST /v1/login with curl: the status and the JSON body.
    fn login(&self, function: &str, jwt: &str, csr: &str) -> (u16, Value) {
        let body = json!({
            "function": function,
            "attestation": {"type": "oidc", "token": jwt},
            "csr": csr,
        });
        let req = self.dir.path().join("login-request.json");
        let resp = self.dir.path().join("login-response.json");
        std::fs::write(&req, serde_json::to_vec(&body).unwrap()).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(self.data().join("ca.pem"))
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(format!("@{}", req.display()))
            .arg("-o")
            .arg(&resp)
            .args(["-w", "%{http_code}"])
            .arg(self.url("/v1/login"))
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status: u16 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("HTTP status");
        let text = std::fs::read_to_string(&resp).unwrap_or_default();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("login answer is not JSON ({e}): {text}"));
        (status, value)
    }

    /// A login that must be refused: a plain 401, and a denied audit event whose reason
    /// contains `word`. Returns the reason.
    fn refused(&self, case: &str, function: &str, jwt: &str, csr: &str, word: &str) -> String {
        let seen = self.audit_events().len();
        let (status, body) = self.login(function, jwt, csr);
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(
            body,
            json!({"error": {"code": "unauthenticated", "message": "authentication failed"}}),
            "{case}: the caller learns nothing about the cause"
        );
        let event = self.login_event_after(seen);
        assert_eq!(event["outcome"], "denied", "{case}: {event}");
        assert_eq!(event["authenticatedBy"], "oidc", "{case}: {event}");
        assert_eq!(
            event["resource"],
            format!("spiffe://example.org/fn/{function}"),
            "{case}: {event}"
        );
        let reason = event["reason"].as_str().unwrap_or_default().to_string();
        assert!(
            reason.contains(word),
            "{case}: the audit reason should say {word:?}: {reason}"
        );
        assert!(
            !reason.contains(jwt),
            "{case}: the audit reason must not carry the token"
        );
        reason
    }

    /// A login that must succeed: 200, an SVID for the function that chains to the bundle,
    /// and an allowed audit event with its serial.
    fn accepted(&self, case: &str, function: &str, jwt: &str, csr: &str) -> Value {
        let seen = self.audit_events().len();
        let (status, body) = self.login(function, jwt, csr);
        assert_eq!(status, 200, "{case}: {body}");
        let id = format!("spiffe://example.org/fn/{function}");
        assert_eq!(body["spiffeId"], id.as_str(), "{case}");
        let svid = body["x509Svid"].as_str().expect("x509Svid");
        let svid_file = self.dir.path().join("svid.pem");
        let bundle_file = self.dir.path().join("bundle.pem");
        std::fs::write(&svid_file, svid).unwrap();
        std::fs::write(&bundle_file, body["x509Bundle"].as_str().unwrap()).unwrap();
        let verify = openssl(&[
            "verify",
            "-CAfile",
            bundle_file.to_str().unwrap(),
            svid_file.to_str().unwrap(),
        ]);
        assert!(verify.contains("OK"), "{case}: {verify}");
        let text = openssl(&[
            "x509",
            "-noout",
            "-text",
            "-in",
            svid_file.to_str().unwrap(),
        ]);
        assert!(text.contains(&format!("URI:{id}")), "{case}: {text}");
        let event = self.login_event_after(seen);
        assert_eq!(event["outcome"], "allowed", "{case}: {event}");
        assert_eq!(event["authenticatedBy"], "oidc", "{case}: {event}");
        assert_eq!(event["serial"], body["serial"], "{case}: {event}");
        body
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh P-256 key and a CSR for it, made by openssl.
fn make_csr(dir: &Path) -> String {
    let key = dir.join("fn-key.pem");
    let csr = dir.join("fn-csr.pem");
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=orders",
        "-out",
        csr.to_str().unwrap(),
    ]);
    std::fs::read_to_string(csr).unwrap()
}

// --- the test OIDC issuer ---

/// An ES256 signing key with its `kid`.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    public: Vec<u8>,
    jwk: Jwk,
}

impl SigningKey {
    fn new(kid: &str) -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.into());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        SigningKey {
            kid: kid.into(),
            encoding,
            public: pair.public_key().as_ref().to_vec(),
            jwk,
        }
    }

    /// Signs `claims` with ES256, naming `kid` in the header.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn jwks(keys: &[&SigningKey]) -> Value {
    serde_json::to_value(JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    })
    .unwrap()
}

/// A tiny HTTP server on 127.0.0.1 serving `GET /jwks`, whose document can be swapped.
/// `GET /moved` answers a redirect to `moved_to`.
struct Issuer {
    host: &'static str,
    port: u16,
    jwks: Arc<Mutex<String>>,
    moved_to: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    fn start(initial: &Value) -> Issuer {
        Issuer::start_on("127.0.0.1", initial)
    }

    fn start_on(host: &'static str, initial: &Value) -> Issuer {
        let listener = TcpListener::bind((host, 0)).expect("bind issuer");
        let port = listener.local_addr().unwrap().port();
        let jwks = Arc::new(Mutex::new(initial.to_string()));
        let moved_to = Arc::new(Mutex::new(String::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count, location) = (jwks.clone(), fetches.clone(), moved_to.clone());
        // Detached: it ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let request = String::from_utf8_lossy(&request);
                let (status, extra, body) = if request.starts_with("GET /jwks ") {
                    count.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", String::new(), doc.lock().unwrap().clone())
                } else if request.starts_with("GET /moved ") {
                    let to = location.lock().unwrap().clone();
                    ("302 Found", format!("Location: {to}\r\n"), String::new())
                } else {
                    ("404 Not Found", String::new(), "{}".to_string())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Issuer {
            host,
            port,
            jwks,
            moved_to,
            fetches,
        }
    }

    fn url(&self) -> String {
        format!("http://{}:{}/jwks", self.host, self.port)
    }

    /// A URL on this issuer that redirects to `to`.
    fn redirect_url(&self, to: &str) -> String {
        *self.moved_to.lock().unwrap() = to.to_string();
        format!("http://{}:{}/moved", self.host, self.port)
    }

    fn serve(&self, jwks: &Value) {
        *self.jwks.lock().unwrap() = jwks.to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims that satisfy the rule.
fn good_claims() -> Value {
    let t = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "iat": t,
        "nbf": t - 5,
        "exp": t + 300,
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn url_rule(issuer: &Issuer) -> Value {
    json!([{
        "type": "oidc",
        "issuer": ISSUER,
        "jwksUrl": issuer.url(),
        "audience": AUDIENCE,
        "subject": "repo:acme/orders:*",
    }])
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// --- the tests ---

#[test]
fn a_valid_token_logs_in_and_each_forgery_is_refused_with_its_cause_audited() {
    let key = SigningKey::new("k1");
    let issuer = Issuer::start(&jwks(&[&key]));
    let server = Server::start();
    let f = server.register("orders", &url_rule(&issuer));
    assert_eq!(f["spiffeId"], FUNCTION_ID);
    assert_eq!(f["attestation"][0]["jwksUrl"], issuer.url());
    let csr = make_csr(server.dir.path());

    // A valid token: an SVID for the function.
    let answer = server.accepted("valid token", "orders", &key.sign(&good_claims()), &csr);
    assert!(answer["jwks"]["keys"].is_array());
    assert!(
        issuer.fetches() >= 1,
        "the server fetched the issuer's JWKS"
    );

    let attacker = SigningKey::new("k1");
    let t = now();
    let alg_none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT", "kid": "k1"})
            .to_string()
            .as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(
            &header,
            &good_claims(),
            &EncodingKey::from_secret(&key.public),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            key.sign(&with(good_claims(), "iss", json!("https://evil.test"))),
            "issuer is not the one the rule trusts",
        ),
        (
            "wrong audience",
            key.sign(&with(good_claims(), "aud", json!("someone-else"))),
            "audience",
        ),
        (
            "subject outside the glob",
            key.sign(&with(
                good_claims(),
                "sub",
                json!("repo:acme/billing:ref:refs/heads/main"),
            )),
            "subject",
        ),
        (
            // Well past the server's 60 s leeway.
            "expired",
            key.sign(&with(
                with(good_claims(), "exp", json!(t - 600)),
                "iat",
                json!(t - 1200),
            )),
            "expired",
        ),
        // `none` is not an algorithm the JWT library can even parse the header with, so
        // the token is refused as malformed before any key is looked up.
        ("alg none", alg_none, "not a well-formed JWT"),
        (
            "HS256 keyed with the public key",
            hs256_with_public_key,
            "algorithm is not allowed",
        ),
        (
            "unknown kid",
            attacker.sign_as("k-unknown", &good_claims()),
            "no key in the issuer's JWKS",
        ),
        (
            "another key with the same kid",
            attacker.sign(&good_claims()),
            "signature does not verify",
        ),
    ];
    let mut reasons = Vec::new();
    for (case, jwt, word) in &cases {
        let reason = server.refused(case, "orders", jwt, &csr, word);
        reasons.push(reason);
    }
    // Each case was refused for its own reason.
    let mut distinct = reasons.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), cases.len(), "{reasons:#?}");

    // The refusals changed nothing: a valid token still logs in.
    // (A token of its own: the same claims signed in the same second are the same token,
    // and each token logs in once.)
    server.accepted(
        "valid token again",
        "orders",
        &key.sign(&with(good_claims(), "jti", json!("again"))),
        &csr,
    );
}

#[test]
fn an_inline_jwks_rule_works_without_contacting_the_issuer() {
    let key = SigningKey::new("inline-1");
    // The issuer serves a different key: an inline rule must not use it.
    let decoy = SigningKey::new("inline-1");
    let issuer = Issuer::start(&jwks(&[&decoy]));
    let server = Server::start();
    let rules = json!([{
        "type": "oidc",
        "issuer": ISSUER,
        "jwks": jwks(&[&key]),
        "audience": AUDIENCE,
        "subject": "repo:acme/orders:*",
    }]);
    let f = server.register("orders", &rules);
    assert_eq!(f["attestation"][0]["jwks"]["keys"][0]["kid"], "inline-1");
    let csr = make_csr(server.dir.path());

    server.accepted("inline JWKS", "orders", &key.sign(&good_claims()), &csr);
    server.refused(
        "signed by the issuer's served key",
        "orders",
        &decoy.sign(&good_claims()),
        &csr,
        "signature does not verify",
    );
    server.refused(
        "unknown kid against an inline JWKS",
        "orders",
        &decoy.sign_as("other", &good_claims()),
        &csr,
        "no key in the issuer's JWKS",
    );
    server.refused(
        "wrong audience against an inline JWKS",
        "orders",
        &key.sign(&with(good_claims(), "aud", json!(["a", "b"]))),
        &csr,
        "audience",
    );
    assert_eq!(issuer.fetches(), 0, "an inline JWKS needs no fetch");
}

#[test]
fn the_server_refetches_the_jwks_when_the_issuer_rotates_to_a_new_kid() {
    let old = SigningKey::new("2024-a");
    let new = SigningKey::new("2024-b");
    let issuer = Issuer::start(&jwks(&[&old]));
    let server = Server::start();
    server.register("orders", &url_rule(&issuer));
    let csr = make_csr(server.dir.path());

    server.accepted("old key", "orders", &old.sign(&good_claims()), &csr);
    let first_fetch = Instant::now();
    assert_eq!(issuer.fetches(), 1);

    // The issuer rotates: only the new key is published now.
    issuer.serve(&jwks(&[&new]));

    // The server refetches on an unknown kid at most every 10 s (JWKS_REFETCH_MIN in
    // crates/writ-server/src/attest.rs), so right after the first fetch the new kid is
    // still unknown and the issuer is not asked again.
    let reason = server.refused(
        "new kid within the refetch interval",
        "orders",
        &new.sign(&good_claims()),
        &csr,
        "no key in the issuer's JWKS",
    );
    assert!(reason.contains("no key"), "{reason}");
    assert_eq!(issuer.fetches(), 1, "refetches are rate limited");

    let wait = Duration::from_secs(11).saturating_sub(first_fetch.elapsed());
    std::thread::sleep(wait);

    // Now the unknown kid makes the server fetch the JWKS again, and the login succeeds.
    server.accepted("new key", "orders", &new.sign(&good_claims()), &csr);
    assert_eq!(issuer.fetches(), 2, "one refetch on the unknown kid");

    // The old key left the issuer's JWKS, so its tokens no longer verify.
    server.refused(
        "old key after the rotation",
        "orders",
        &old.sign(&good_claims()),
        &csr,
        "no key in the issuer's JWKS",
    );
    // And a new-key token keeps working from the cache. (A token of its own: signing the
    // same claims in the same second gives the same token, and each logs in once.)
    let another = with(good_claims(), "jti", json!("another"));
    server.accepted("new key again", "orders", &new.sign(&another), &csr);
    assert_eq!(issuer.fetches(), 2);
}

#[test]
fn a_jwks_url_may_not_redirect_to_a_host_the_rule_check_refuses() {
    let key = SigningKey::new("k1");
    // 127.0.0.2 is not a host a rule may name over http (only 127.0.0.1, [::1], localhost).
    let elsewhere = Issuer::start_on("127.0.0.2", &jwks(&[&key]));
    let front = Issuer::start(&json!({"keys": []}));
    let server = Server::start();
    let direct = json!([{
        "type": "oidc", "issuer": ISSUER, "jwksUrl": elsewhere.url(), "audience": AUDIENCE,
        "subject": "repo:acme/orders:*",
    }]);
    let file = server.dir.path().join("direct.json");
    std::fs::write(&file, direct.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["fn", "register", "direct", "--attestation"])
        .arg(&file)
        .env("WRIT_ADDR", server.url(""))
        .env("WRIT_CACERT", server.data().join("ca.pem"))
        .env("WRIT_TOKEN_FILE", server.data().join("admin-token"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the rule check refuses that host");

    let via_redirect = json!([{
        "type": "oidc", "issuer": ISSUER, "audience": AUDIENCE,
        "jwksUrl": front.redirect_url(&elsewhere.url()), "subject": "repo:acme/orders:*",
    }]);
    server.register("orders", &via_redirect);
    let csr = make_csr(server.dir.path());
    let (status, body) = server.login("orders", &key.sign(&good_claims()), &csr);
    assert_eq!(
        elsewhere.fetches(),
        0,
        "the server followed the redirect to {} and the login answered {status}: {body}",
        elsewhere.url()
    );
    assert_eq!(status, 401);
}

/// An OIDC token logs in once: a token seen in transit or in a log is no credential. The
/// replay is refused and audited; a new token from the issuer logs in.
#[test]
fn an_oidc_token_logs_in_once() {
    let key = SigningKey::new("once-1");
    let issuer = Issuer::start(&jwks(&[&key]));
    let server = Server::start();
    server.register("orders", &url_rule(&issuer));
    let csr = make_csr(server.dir.path());
    let token = key.sign(&with(good_claims(), "jti", json!("first")));
    server.accepted("first use", "orders", &token, &csr);
    let reason = server.refused("replay", "orders", &token, &csr, "already used");
    assert!(!reason.contains(&token), "{reason}");
    server.accepted(
        "a new token",
        "orders",
        &key.sign(&with(good_claims(), "jti", json!("second"))),
        &csr,
    );
}

/// The escalation the attack corpus found, end to end: an operator scoped to team B's
/// functions registers `team-b-evil` with an OIDC rule trusting an issuer of its own and
/// an identity policy allowing `secrets:*` on everything, logs in with a token it signed
/// itself, and asks for a secret it may not read. The function's policies are bounded by
/// the operator's own, so the read is refused (and the login itself worked: the operator
/// may make such functions, just not give them more than it has).
#[test]
fn a_scoped_operator_with_its_own_issuer_cannot_read_other_teams_secrets() {
    let key = SigningKey::new("attacker-1");
    let issuer = Issuer::start(&jwks(&[&key]));
    let server = Server::start();
    let dir = server.dir.path().to_path_buf();
    std::fs::write(dir.join("stripe.txt"), "sk_live_team_a_only").unwrap();
    server.cli(&[
        "secret",
        "put",
        "payments/stripe-key",
        "--value-file",
        dir.join("stripe.txt").to_str().unwrap(),
    ]);
    let scope = dir.join("team-b.json");
    std::fs::write(
        &scope,
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": ["writ:RegisterFunction", "writ:PutAttestationRules",
                       "writ:PutFunctionPolicy"],
            "Resource": "spiffe://example.org/fn/team-b-*"}]})
        .to_string(),
    )
    .unwrap();
    let token = server.cli(&["token", "create", "--policy", scope.to_str().unwrap()])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let rules = dir.join("evil-rules.json");
    std::fs::write(&rules, url_rule(&issuer).to_string()).unwrap();
    let grant = dir.join("evil-policy.json");
    std::fs::write(
        &grant,
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "secrets:*", "Resource": "*"}]})
        .to_string(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["fn", "register", "team-b-evil", "--attestation"])
        .arg(&rules)
        .arg("--policy")
        .arg(&grant)
        .env("WRIT_ADDR", server.url(""))
        .env("WRIT_CACERT", server.data().join("ca.pem"))
        .env("WRIT_TOKEN", &token)
        .env_remove("WRIT_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let csr = make_csr(&dir);
    let answer = server.accepted(
        "the attacker's own token",
        "team-b-evil",
        &key.sign(&good_claims()),
        &csr,
    );
    let cert = dir.join("evil.pem");
    std::fs::write(&cert, answer["x509Svid"].as_str().unwrap()).unwrap();
    let read = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(server.data().join("ca.pem"))
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(dir.join("fn-key.pem"))
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"name": "payments/stripe-key"}"#)
        .args(["-w", "\n%{http_code}"])
        .arg(server.url("/v1/secrets/get"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&read.stdout);
    assert!(text.ends_with("\n403"), "{text}");
    assert!(text.contains("permissions boundary"), "{text}");
    assert!(!text.contains("sk_live"), "{text}");
}
