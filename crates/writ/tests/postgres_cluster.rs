//! Two `writ server` processes on one PostgreSQL database: one deployment. Runs only when
//! `WRIT_TEST_POSTGRES_URL` is set (postgres://USER@HOST:PORT/DB); each test makes its own
//! database there and drops it afterwards.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use sqlx::Connection;

const POSTGRES_ENV: &str = "WRIT_TEST_POSTGRES_URL";

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// `base` with its database name replaced by `db`.
fn with_database(base: &str, db: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (base, None),
    };
    let authority_start = main.find("://").map_or(0, |i| i + 3);
    let root = match main[authority_start..].find('/') {
        Some(i) => &main[..authority_start + i],
        None => main,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// A fresh database, dropped (best effort) when this goes out of scope. Declare it before
/// the servers that use it, so they are stopped first.
struct TestDb {
    base: String,
    name: String,
    url: String,
}

impl TestDb {
    /// Panics, saying why, when no PostgreSQL server is configured (the test is ignored then,
    /// unless CI=true or `--include-ignored`).
    fn create() -> TestDb {
        let base = match std::env::var(POSTGRES_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ => panic!(
                "{POSTGRES_ENV} is unset: this test needs PostgreSQL (postgres://USER@HOST:PORT/DB). \
                 Under CI=true the PostgreSQL tests are required, not skipped; .ci/run sets it \
                 to the local server. Outside CI, without it, they are reported as ignored."
            ),
        };
        let name = format!("writ_test_{}", unique_suffix());
        runtime().block_on(async {
            let mut conn = sqlx::PgConnection::connect(&base)
                .await
                .unwrap_or_else(|e| panic!("connect to {POSTGRES_ENV}: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let _ = conn.close().await;
        });
        let url = with_database(&base, &name);
        TestDb { base, name, url }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        runtime().block_on(async move {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
                let _ = conn.close().await;
            }
        });
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("writ-{label}-{}", unique_suffix()));
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

/// A master key both servers share: base64 of 32 random bytes.
fn master_key() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A `writ server` child process, killed on drop.
struct Server {
    child: Child,
    data: PathBuf,
    port: Option<u16>,
    ready: mpsc::Receiver<Option<u16>>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server without waiting for it to listen.
    fn spawn(data: PathBuf, store: &str, master: &str, trust_domain: Option<&str>) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_writ"));
        cmd.args(["server", "--data-dir"])
            .arg(&data)
            .args(["--store", store, "--listen", "127.0.0.1:0"])
            .env("WRIT_MASTER_KEY", master)
            .env_remove("WRIT_STORE")
            .env_remove("WRIT_TRUST_DOMAIN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(td) = trust_domain {
            cmd.args(["--trust-domain", td]);
        }
        let mut child = cmd.spawn().expect("start writ server");
        let stdout = Arc::new(Mutex::new(Vec::new()));
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
        let (tx, ready) = mpsc::channel();
        {
            let lines = stdout.clone();
            let pipe = child.stdout.take().expect("stdout");
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let port = line
                        .split(" listening on https://127.0.0.1:")
                        .nth(1)
                        .map(|p| p.trim().parse::<u16>().ok());
                    // Record the line before announcing the port, so every earlier line
                    // (the bootstrap token) is visible by then.
                    lines.lock().unwrap().push(line);
                    if let Some(port) = port {
                        let _ = tx.send(port);
                    }
                }
            });
        }
        Server {
            child,
            data,
            port: None,
            ready,
            stdout,
            stderr,
        }
    }

    /// Waits until it listens.
    fn wait_ready(&mut self) {
        match self.ready.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(port)) => self.port = Some(port),
            _ => panic!(
                "writ server did not start; stdout:\n{}\nstderr:\n{}",
                self.stdout.lock().unwrap().join("\n"),
                self.stderr.lock().unwrap().join("\n")
            ),
        }
    }

    fn start(data: PathBuf, store: &str, master: &str, trust_domain: Option<&str>) -> Server {
        let mut s = Server::spawn(data, store, master, trust_domain);
        s.wait_ready();
        s
    }

    fn url(&self, path: &str) -> String {
        format!(
            "https://127.0.0.1:{}{path}",
            self.port.expect("server is ready")
        )
    }

    fn ca(&self) -> PathBuf {
        self.data.join("ca.pem")
    }

    /// The bootstrap admin tokens it printed.
    fn bootstrap_tokens(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.trim().starts_with("writ.admin."))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Runs the `writ` CLI against this server, trusting its own ca.pem, with the admin
    /// token in `token_file`.
    fn cli(&self, token_file: &Path, args: &[&str]) -> Value {
        self.try_cli(token_file, args)
            .unwrap_or_else(|e| panic!("writ {args:?} failed: {e}"))
    }

    /// As [`Server::cli`], but an error is returned, not a panic.
    fn try_cli(&self, token_file: &Path, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(args)
            .args(["--format", "json"])
            .env("WRIT_ADDR", self.url(""))
            .env("WRIT_CACERT", self.ca())
            .env("WRIT_TOKEN_FILE", token_file)
            .env_remove("WRIT_TOKEN")
            .output()
            .expect("run writ");
        if !out.status.success() {
            return Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(serde_json::from_slice(&out.stdout).expect("JSON output"))
    }

    /// A JSON request with curl, trusting this server's ca.pem; optionally with a client
    /// certificate (`(cert, key)`) or a bearer token.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        client_cert: Option<(&Path, &Path)>,
        bearer: Option<&str>,
        scratch: &Path,
    ) -> (u16, Value) {
        let resp = scratch.join(format!("response-{}.json", unique_suffix()));
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-X", method, "--cacert"])
            .arg(self.ca())
            .arg("-o")
            .arg(&resp)
            .args(["-w", "%{http_code}"]);
        if let Some(body) = body {
            let req = scratch.join(format!("request-{}.json", unique_suffix()));
            std::fs::write(&req, serde_json::to_vec(body).unwrap()).unwrap();
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(format!("@{}", req.display()));
        }
        if let Some((cert, key)) = client_cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some(token) = bearer {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        let out = cmd.arg(self.url(path)).output().expect("run curl");
        assert!(
            out.status.success(),
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let status = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("HTTP status");
        let text = std::fs::read_to_string(&resp).unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
}

/// A P-256 key and a CSR for it, made by openssl: (key path, CSR PEM).
fn make_csr(dir: &Path, label: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{label}-key.pem"));
    let csr = dir.join(format!("{label}-csr.pem"));
    let k = openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    assert!(k.status.success());
    let r = openssl(&[
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        &format!("/CN={label}"),
        "-out",
        csr.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    (key, std::fs::read_to_string(csr).unwrap())
}

fn join_login(function: &str, token: &str, csr: &str) -> Value {
    json!({
        "function": function,
        "attestation": {"type": "joinToken", "token": token},
        "csr": csr,
    })
}

const UNAUTHENTICATED: &str =
    r#"{"error":{"code":"unauthenticated","message":"authentication failed"}}"#;

/// Polls `check` until it is true or `within` has passed.
fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[cfg_attr(
    writ_no_test_postgres,
    ignore = "needs PostgreSQL: set WRIT_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB (.ci/run does)"
)]
fn two_servers_on_one_database_are_one_deployment() {
    let db = TestDb::create();
    let work = TempDir::new("cluster");
    let master = master_key();

    let s1 = Server::start(
        work.path().join("s1"),
        &db.url,
        &master,
        Some("example.org"),
    );
    let s2 = Server::start(work.path().join("s2"), &db.url, &master, None);

    // Only the first start initialises the deployment and prints a bootstrap token.
    let tokens = s1.bootstrap_tokens();
    assert_eq!(tokens.len(), 1, "{:?}", s1.stdout.lock().unwrap());
    assert_eq!(s2.bootstrap_tokens(), Vec::<String>::new());
    assert!(!s2.data.join("admin-token").exists());
    let admin = s1.data.join("admin-token");
    assert_eq!(
        std::fs::read_to_string(&admin).unwrap().trim(),
        tokens[0].as_str()
    );
    assert!(
        s2.stdout
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("trust domain example.org listening")),
        "the second server takes the stored trust domain"
    );
    // The keys live in the database, so both serve the same trust bundle.
    let bundle1 = std::fs::read_to_string(s1.ca()).unwrap();
    let bundle2 = std::fs::read_to_string(s2.ca()).unwrap();
    assert!(bundle1.contains("BEGIN CERTIFICATE"));
    assert_eq!(bundle1, bundle2);

    // Register through server 1; server 2 sees it, and accepts server 1's admin token.
    let f = s1.cli(&admin, &["fn", "register", "orders"]);
    assert_eq!(f["spiffeId"], "spiffe://example.org/fn/orders");
    let listed = s2.cli(&admin, &["fn", "list"]);
    assert_eq!(listed["functions"][0]["name"], "orders");

    // A join token made through server 1 logs in through server 2 ...
    let join = s1.cli(&admin, &["token", "create", "--fn", "orders"]);
    let join = join["token"].as_str().expect("join token").to_string();
    let (key, csr) = make_csr(work.path(), "orders");
    let (status, answer) = s2.request(
        "POST",
        "/v1/login",
        Some(&join_login("orders", &join, &csr)),
        None,
        None,
        work.path(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["spiffeId"], "spiffe://example.org/fn/orders");
    let svid = work.path().join("orders-svid.pem");
    std::fs::write(&svid, answer["x509Svid"].as_str().unwrap()).unwrap();
    let verify = openssl(&[
        "verify",
        "-CAfile",
        s2.ca().to_str().unwrap(),
        svid.to_str().unwrap(),
    ]);
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // ... once: the same token through server 1 is refused.
    let (status, body) = s1.request(
        "POST",
        "/v1/login",
        Some(&join_login("orders", &join, &csr)),
        None,
        None,
        work.path(),
    );
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body,
        serde_json::from_str::<Value>(UNAUTHENTICATED).unwrap()
    );

    // The SVID from server 2 renews at server 1 (mTLS against the shared bundle).
    let renew = json!({ "csr": csr });
    let renew_at_s1 = || {
        s1.request(
            "POST",
            "/v1/svid/x509",
            Some(&renew),
            Some((&svid, &key)),
            None,
            work.path(),
        )
    };
    let (status, renewed) = renew_at_s1();
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["spiffeId"], "spiffe://example.org/fn/orders");

    // Revoke the function through server 2: server 1 refuses renewal soon after.
    let revoked = s2.cli(&admin, &["revoke", "--fn", "orders"]);
    assert!(revoked.to_string().contains("orders"), "{revoked}");
    let refused = eventually(Duration::from_secs(5), || renew_at_s1().0 == 401);
    assert!(
        refused,
        "server 1 still renews a function revoked on server 2"
    );
    let (status, body) = renew_at_s1();
    assert_eq!(
        (status, body.to_string()),
        (401, UNAUTHENTICATED.to_string())
    );

    // A serial revoked through server 2 reaches server 1 through the feed.
    s1.cli(&admin, &["fn", "register", "billing"]);
    let join = s1.cli(&admin, &["token", "create", "--fn", "billing"]);
    let (bkey, bcsr) = make_csr(work.path(), "billing");
    let (status, answer) = s1.request(
        "POST",
        "/v1/login",
        Some(&join_login(
            "billing",
            join["token"].as_str().unwrap(),
            &bcsr,
        )),
        None,
        None,
        work.path(),
    );
    assert_eq!(status, 200, "{answer}");
    let serial = answer["serial"].as_str().unwrap().to_string();
    let bsvid = work.path().join("billing-svid.pem");
    std::fs::write(&bsvid, answer["x509Svid"].as_str().unwrap()).unwrap();
    let renew_billing = json!({ "csr": bcsr });
    let renew_billing_at_s1 = || {
        s1.request(
            "POST",
            "/v1/svid/x509",
            Some(&renew_billing),
            Some((&bsvid, &bkey)),
            None,
            work.path(),
        )
        .0
    };
    assert_eq!(renew_billing_at_s1(), 200);
    s2.cli(&admin, &["revoke", "--serial", &serial]);
    let refused = eventually(Duration::from_secs(5), || renew_billing_at_s1() == 401);
    assert!(
        refused,
        "server 1 still renews SVID {serial}, revoked on server 2"
    );

    // Server 1's feed lists both revocations made through server 2.
    let admin_token = tokens[0].as_str();
    let (status, feed) = s1.request(
        "GET",
        "/v1/revocations?after=0",
        None,
        None,
        Some(admin_token),
        work.path(),
    );
    assert_eq!(status, 200, "{feed}");
    let entries = feed["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "function" && e["value"] == "spiffe://example.org/fn/orders"),
        "{feed}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "serial" && e["value"] == serial.as_str()),
        "{feed}"
    );
    drop((s1, s2));
    drop(db);
}

#[test]
#[cfg_attr(
    writ_no_test_postgres,
    ignore = "needs PostgreSQL: set WRIT_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB (.ci/run does)"
)]
fn a_concurrent_first_start_initialises_the_database_once() {
    let db = TestDb::create();
    let work = TempDir::new("cluster-race");
    let master = master_key();

    // Both start at once on the brand-new database.
    let mut a = Server::spawn(work.path().join("a"), &db.url, &master, Some("example.org"));
    let mut b = Server::spawn(work.path().join("b"), &db.url, &master, Some("example.org"));
    a.wait_ready();
    b.wait_ready();

    let mut tokens = a.bootstrap_tokens();
    tokens.extend(b.bootstrap_tokens());
    assert_eq!(
        tokens.len(),
        1,
        "exactly one bootstrap token across both:\nA: {:?}\nB: {:?}",
        a.stdout.lock().unwrap(),
        b.stdout.lock().unwrap()
    );
    let (winner, loser) = if a.bootstrap_tokens().len() == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(!loser.data.join("admin-token").exists());
    let admin = winner.data.join("admin-token");

    // One set of keys: both serve the same bundle, and both answer.
    assert_eq!(
        std::fs::read_to_string(a.ca()).unwrap(),
        std::fs::read_to_string(b.ca()).unwrap()
    );
    for s in [&a, &b] {
        let (status, health) = s.request("GET", "/v1/health", None, None, None, work.path());
        assert_eq!(status, 200, "{health}");
        assert_eq!(health["trustDomain"], "example.org");
        let ca = s.cli(&admin, &["ca", "show"]);
        assert_eq!(ca["trustDomain"], "example.org");
        let x509_keys = ca["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["kind"] == "x509")
            .count();
        assert_eq!(x509_keys, 1, "one CA, not one per server: {ca}");
    }
    // A function registered through one is visible through the other.
    a.cli(&admin, &["fn", "register", "orders"]);
    let listed = b.cli(&admin, &["fn", "list"]);
    assert_eq!(listed["functions"].as_array().unwrap().len(), 1);
    drop((a, b));
    drop(db);
}

/// The certificates of a PEM bundle, one PEM string each.
fn split_pem(bundle: &str) -> Vec<String> {
    bundle
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .map(|c| format!("{}\n", c.trim()))
        .collect()
}

#[test]
#[cfg_attr(
    writ_no_test_postgres,
    ignore = "needs PostgreSQL: set WRIT_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB (.ci/run does)"
)]
fn a_rotation_through_one_server_reaches_the_other() {
    let db = TestDb::create();
    let work = TempDir::new("cluster-rotate");
    let master = master_key();
    let s1 = Server::start(
        work.path().join("s1"),
        &db.url,
        &master,
        Some("example.org"),
    );
    let s2 = Server::start(work.path().join("s2"), &db.url, &master, None);
    let admin = s1.data.join("admin-token");
    s1.cli(&admin, &["fn", "register", "orders"]);
    let old_bundle = std::fs::read_to_string(s1.ca()).unwrap();
    assert_eq!(split_pem(&old_bundle).len(), 1);
    let old_ca = work.path().join("old-ca.pem");
    std::fs::write(&old_ca, &old_bundle).unwrap();

    // Rotate both kinds through server 2, effective at once.
    let rotated = s2.cli(
        &admin,
        &["ca", "rotate", "--kind", "all", "--activate-after", "0s"],
    );
    let signing = |ca: &Value, kind: &str| -> String {
        ca["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == kind && k["status"] == "signing")
            .map(|k| k["id"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no signing {kind} key: {ca}"))
    };
    let new_ca_id = signing(&rotated, "x509");
    let new_kid = signing(&rotated, "jwt");

    // Server 1 picks the new keys up from the database within a few seconds. A CA that
    // signs at once (--activate-after 0s) changes server 1's certificate when it does: a
    // call that read ca.pem just before and connects just after cannot verify it, and
    // tries again with the new ca.pem, as any client must after such a rotation.
    let picked_up = eventually(Duration::from_secs(5), || {
        s1.try_cli(&admin, &["ca", "show"])
            .is_ok_and(|ca| signing(&ca, "x509") == new_ca_id && signing(&ca, "jwt") == new_kid)
    });
    assert!(picked_up, "server 1 still signs with the old keys");
    assert!(
        eventually(Duration::from_secs(5), || {
            split_pem(&std::fs::read_to_string(s1.ca()).unwrap()).len() == 2
        }),
        "server 1's ca.pem holds the old and the new CA"
    );

    // A login through server 1 is signed by the CA made through server 2.
    let join = s1.cli(&admin, &["token", "create", "--fn", "orders"]);
    let (key, csr) = make_csr(work.path(), "orders");
    let (status, answer) = s1.request(
        "POST",
        "/v1/login",
        Some(&join_login("orders", join["token"].as_str().unwrap(), &csr)),
        None,
        None,
        work.path(),
    );
    assert_eq!(status, 200, "{answer}");
    let svid = work.path().join("svid.pem");
    std::fs::write(&svid, answer["x509Svid"].as_str().unwrap()).unwrap();
    let against = |bundle: &Path| {
        openssl(&[
            "verify",
            "-CAfile",
            bundle.to_str().unwrap(),
            svid.to_str().unwrap(),
        ])
        .status
        .success()
    };
    assert!(against(&s1.ca()));
    assert!(against(&s2.ca()));
    assert!(!against(&old_ca), "not signed by the old CA");

    // A JWT-SVID from server 1 carries the new kid, published by server 2.
    let (status, jwt) = s1.request(
        "POST",
        "/v1/svid/jwt",
        Some(&json!({"audience": "orders-api"})),
        Some((&svid, &key)),
        None,
        work.path(),
    );
    assert_eq!(status, 200, "{jwt}");
    let token = jwt["token"].as_str().unwrap();
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], new_kid.as_str());
    let (status, jwks) = s2.request("GET", "/v1/bundle/jwks", None, None, None, work.path());
    assert_eq!(status, 200);
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == new_kid.as_str()),
        "{jwks}"
    );
    drop((s1, s2));
    drop(db);
}
