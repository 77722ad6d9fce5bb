//! Shared helpers for tests that run the real `writ` binary as a server and talk to it the
//! way operators and functions do: the `writ` CLI, `curl` and `openssl`.
//!
//! Everything lives in a [`TempDir`] removed on drop; a [`Server`] is killed on drop.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub mod gateway;
pub mod lambda;

/// The trust domain the tests' servers are created with.
pub const TRUST_DOMAIN: &str = "example.org";

/// How long to wait for things that should happen promptly (a server starting, a log line).
pub const PATIENCE: Duration = Duration::from_secs(15);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A number unique within this test process.
pub fn unique() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/writ-<label>-<pid>-<n>-<nanos>`.
    pub fn new(label: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "writ-{label}-{}-{}-{nanos}",
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// A path inside the directory that no other call has returned: `<stem>-<n>.<ext>`.
    pub fn unique_file(&self, stem: &str, ext: &str) -> PathBuf {
        self.path.join(format!("{stem}-{}.{ext}", unique()))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lossy UTF-8.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a command succeeded and returns its stdout.
pub fn success(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a command to completion, panicking only if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

/// The environment variables that configure `writ`; removed from every child so the
/// caller's environment cannot leak into a test.
const WRIT_ENV: &[&str] = &[
    "WRIT_ADDR",
    "WRIT_CACERT",
    "WRIT_TOKEN",
    "WRIT_TOKEN_FILE",
    "WRIT_DATA_DIR",
    "WRIT_STORE",
    "WRIT_LISTEN",
    "WRIT_TRUST_DOMAIN",
    "WRIT_MASTER_KEY",
    "WRIT_LOG",
    "WRIT_HOOK_ALLOW_NETS",
];

/// A `writ` command with none of the `WRIT_*` settings inherited.
pub fn writ_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_writ"));
    for var in WRIT_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A running `writ server` on 127.0.0.1 with an OS-chosen port. Its stdout and stderr go
/// to files beside the data dir; it is killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The data dir it was started with.
    pub data_dir: PathBuf,
    /// The port it listens on.
    pub port: u16,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    audit_path: PathBuf,
}

impl Server {
    /// Starts `writ server --data-dir DATA_DIR --listen 127.0.0.1:0 ARGS...` and waits
    /// for its "listening" line; panics with its output if it does not come up.
    pub fn start(data_dir: &Path, args: &[&str]) -> Server {
        Server::launch(data_dir, args, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Server::start`], with extra environment variables, and returning the
    /// server's output as the error if it exits instead of listening.
    pub fn launch(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
        let n = unique();
        let base = data_dir.display().to_string();
        let stdout_path = PathBuf::from(format!("{base}.server{n}.stdout"));
        let stderr_path = PathBuf::from(format!("{base}.server{n}.stderr"));
        let audit_path = PathBuf::from(format!("{base}.server{n}.audit.jsonl"));
        let create = |p: &Path| {
            std::fs::File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()))
        };
        let mut cmd = writ_command();
        cmd.arg("server").arg("--data-dir").arg(data_dir);
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.arg("--audit-file")
            .arg(&audit_path)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(create(&stdout_path))
            .stderr(create(&stderr_path));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start writ server: {e}"));
        let mut server = Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            port: 0,
            stdout_path,
            stderr_path,
            audit_path,
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(port) = listening_port(&server.stdout()) {
                server.port = port;
                return Ok(server);
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                server.child = None;
                return Err(format!(
                    "writ server exited ({status}) before listening\nstdout: {}\nstderr: {}",
                    server.stdout(),
                    server.log()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "writ server did not listen within {PATIENCE:?}\nstdout: {}\nstderr: {}",
                    server.stdout(),
                    server.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM) and starts it again on the same data dir and port, as
    /// an operator's restart does: its clients must connect anew.
    pub fn restart(&mut self) {
        self.stop();
        let listen = format!("127.0.0.1:{}", self.port);
        let again = Server::start(&self.data_dir, &["--listen", &listen]);
        assert_eq!(again.port, self.port, "restarted on another port");
        *self = again;
    }

    /// `https://127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.addr())
    }

    /// `DATA_DIR/ca.pem`, the trust bundle the server keeps current.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("ca.pem")
    }

    /// `DATA_DIR/admin-token`, the bootstrap admin token's file.
    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin-token")
    }

    /// The bootstrap admin token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.admin_token_file())
            .expect("read admin-token")
            .trim()
            .to_string()
    }

    /// Everything the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    /// Everything the server logged (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The audit events committed so far, from the server's `--audit-file` copy.
    pub fn audit_events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|l| l["event"].clone())
            .collect()
    }

    /// Waits until an audit event satisfies `matches`, and returns it.
    pub fn wait_for_audit(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, PATIENCE, || {
            self.audit_events().into_iter().find(|e| matches(e))
        })
    }

    /// A `writ` CLI command aimed at this server: WRIT_ADDR, WRIT_CACERT (DATA_DIR/ca.pem)
    /// and WRIT_TOKEN_FILE (the bootstrap token) set; override them on the command.
    pub fn cli_command(&self) -> Command {
        let mut cmd = writ_command();
        cmd.env("WRIT_ADDR", self.addr())
            .env("WRIT_CACERT", self.ca_file())
            .env("WRIT_TOKEN_FILE", self.admin_token_file());
        cmd
    }

    /// Runs the CLI with `args` as the bootstrap operator.
    pub fn cli(&self, args: &[&str]) -> Output {
        run(self.cli_command().args(args))
    }

    /// Runs the CLI with `args`, asserting success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        success(&format!("writ {}", args.join(" ")), &self.cli(args))
    }

    /// `writ fn register NAME`, asserting success.
    pub fn register(&self, name: &str) {
        self.cli_ok(&["fn", "register", name]);
    }

    /// `writ token create --fn NAME`: a fresh join token.
    pub fn join_token(&self, function: &str) -> String {
        self.cli_ok(&["token", "create", "--fn", function])
            .trim()
            .to_string()
    }

    /// `writ ca show --format json`.
    pub fn ca_show(&self) -> Value {
        let out = self.cli_ok(&["ca", "show", "--format", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ca show: {e}: {out}"))
    }

    /// A request to this server made with `curl`, verifying it against DATA_DIR/ca.pem.
    pub fn curl(&self, method: &str, path: &str) -> Curl {
        Curl::new(method, &self.url(path), &self.ca_file())
    }

    /// Asks the server to stop (SIGTERM) and waits for it to exit; kills it if it does
    /// not within [`PATIENCE`]. Returns how it exited.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait for writ server") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait().expect("wait for writ server");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The port of a "writ: server ... listening on https://HOST:PORT" line, if printed.
fn listening_port(stdout: &str) -> Option<u16> {
    stdout
        .lines()
        .find_map(|l| l.split("listening on https://").nth(1))
        .and_then(|addr| addr.trim().rsplit(':').next()?.parse().ok())
}

/// One HTTP request made with `curl`.
pub struct Curl {
    args: Vec<OsString>,
    body: Option<Vec<u8>>,
}

/// What `curl` got back.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
    /// The response headers as curl's `%{header_json}` gives them: each (lowercase) name
    /// to an array of its values.
    pub headers: Value,
}

impl Curl {
    /// A request to `url`, trusting only the certificates in `ca_file`.
    pub fn new(method: &str, url: &str, ca_file: &Path) -> Curl {
        let mut args: Vec<OsString> = ["-sS", "--max-time", "30", "-X", method, "--cacert"]
            .into_iter()
            .map(OsString::from)
            .collect();
        args.push(ca_file.into());
        args.push(url.into());
        Curl { args, body: None }
    }

    /// Adds a header.
    pub fn header(mut self, header: &str) -> Curl {
        self.args.push("-H".into());
        self.args.push(header.into());
        self
    }

    /// Connects from this local address (`127.0.0.2`: another source on loopback).
    pub fn source_address(mut self, address: &str) -> Curl {
        self.args.push("--interface".into());
        self.args.push(address.into());
        self
    }

    /// Resolves `HOST:PORT` to `ADDRESS` (`--resolve HOST:PORT:ADDRESS`), so a server on
    /// loopback is called by a name its certificate carries.
    pub fn resolve(mut self, host_port_address: &str) -> Curl {
        self.args.push("--resolve".into());
        self.args.push(host_port_address.into());
        self
    }

    /// Sends `Authorization: Bearer TOKEN`.
    pub fn bearer(self, token: &str) -> Curl {
        self.header(&format!("Authorization: Bearer {token}"))
    }

    /// Sends `value` as an `application/json` body.
    pub fn json(self, value: &Value) -> Curl {
        self.body(value.to_string(), "application/json")
    }

    /// Sends `bytes` as the body with the given content type.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: &str) -> Curl {
        self.body = Some(bytes.into());
        self.header(&format!("Content-Type: {content_type}"))
    }

    /// Presents a client certificate (mTLS).
    pub fn client_cert(mut self, cert: &Path, key: &Path) -> Curl {
        self.args.push("--cert".into());
        self.args.push(cert.into());
        self.args.push("--key".into());
        self.args.push(key.into());
        self
    }

    /// Sends the request; panics if `curl` itself fails (connection or TLS error).
    pub fn send(self) -> Response {
        self.try_send().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends the request; `Err` carries curl's message when it got no HTTP answer.
    pub fn try_send(mut self) -> Result<Response, String> {
        const MARK: &str = "\n--writ-test-status:";
        self.args.push("-w".into());
        self.args
            .push(format!("{MARK}%{{http_code}}\n%{{header_json}}").into());
        let mut cmd = Command::new("curl");
        cmd.args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.body.is_some() {
            cmd.arg("--data-binary").arg("@-").stdin(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd.spawn().map_err(|e| format!("run curl: {e}"))?;
        // Written from another thread: curl may answer (413) before reading it all.
        let writer = match (self.body.take(), child.stdin.take()) {
            (Some(body), Some(mut stdin)) => Some(std::thread::spawn(move || {
                let _ = stdin.write_all(&body);
            })),
            _ => None,
        };
        let out = child
            .wait_with_output()
            .map_err(|e| format!("wait for curl: {e}"))?;
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = text(&out.stdout);
        let (body, status) = stdout
            .rsplit_once(MARK)
            .ok_or_else(|| format!("curl printed no status: {stdout}{}", text(&out.stderr)))?;
        let (status, headers) = status.split_once('\n').unwrap_or((status, ""));
        let status: u16 = status.trim().parse().unwrap_or(0);
        let headers: Value = serde_json::from_str(headers).unwrap_or(Value::Null);
        if !out.status.success() || status == 0 {
            return Err(format!(
                "curl failed ({}): {}{}",
                out.status,
                text(&out.stderr),
                body
            ));
        }
        Ok(Response {
            status,
            body: body.to_string(),
            headers,
        })
    }
}

impl Response {
    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.body)
        })
    }

    /// `error.code` of an error answer ("" if absent).
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// `error.message` of an error answer ("" if absent).
    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Asserts the status, showing the body if it differs; returns self.
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }
}

/// Runs `openssl ARGS`, asserting success; returns stdout.
pub fn openssl(args: &[&str]) -> String {
    success(
        &format!("openssl {}", args.join(" ")),
        &run(Command::new("openssl").args(args)),
    )
}

/// Writes a new ECDSA P-256 private key (PEM) to `path`.
pub fn ec_key(path: &Path) {
    let p = path.to_str().expect("utf-8 path");
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        p,
    ]);
}

/// A PEM CSR for `key` with subject /O=x, plus `extra` arguments to `openssl req`
/// (such as `-addext subjectAltName=DNS:x`).
pub fn csr(key: &Path, extra: &[&str]) -> String {
    let k = key.to_str().expect("utf-8 path");
    let mut args = vec!["req", "-new", "-key", k, "-subj", "/O=x"];
    args.extend_from_slice(extra);
    openssl(&args)
}

/// `openssl verify -CAfile BUNDLE CERT`: `Ok` with its output if the certificate chains to
/// the bundle, `Err` with its output if not.
pub fn verify(bundle: &Path, cert: &Path) -> Result<String, String> {
    let out = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(bundle)
        .arg(cert));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    if out.status.success() {
        Ok(all)
    } else {
        Err(all)
    }
}

/// `openssl x509 -noout ARGS -in CERT`.
pub fn x509(cert: &Path, args: &[&str]) -> String {
    let c = cert.to_str().expect("utf-8 path");
    let mut all = vec!["x509", "-noout", "-in", c];
    all.extend_from_slice(args);
    openssl(&all)
}

/// The certificate's URI subject alternative names.
pub fn uri_sans(cert: &Path) -> Vec<String> {
    x509(cert, &["-ext", "subjectAltName"])
        .split([',', '\n'])
        .filter_map(|part| part.trim().strip_prefix("URI:").map(str::to_string))
        .collect()
}

/// Every subject alternative name, as openssl prints them (`URI:...`, `DNS:...`).
pub fn all_sans(cert: &Path) -> Vec<String> {
    x509(cert, &["-ext", "subjectAltName"])
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .map(|p| p.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The certificate's serial number in lowercase hex.
pub fn serial(cert: &Path) -> String {
    x509(cert, &["-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

/// The certificate's authority key identifier, as openssl prints it.
pub fn authority_key_id(cert: &Path) -> String {
    x509(cert, &["-ext", "authorityKeyIdentifier"])
        .lines()
        .skip(1)
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("")
}

/// The public key (PEM) of a certificate.
pub fn cert_public_key(cert: &Path) -> String {
    x509(cert, &["-pubkey"])
}

/// The public key (PEM) of a private key.
pub fn key_public_key(key: &Path) -> String {
    let k = key.to_str().expect("utf-8 path");
    openssl(&["pkey", "-in", k, "-pubout"])
}

/// Splits concatenated PEM certificates into one string per certificate.
pub fn pem_certificates(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    bundle
        .split_inclusive(END)
        .filter(|c| c.contains("-----BEGIN CERTIFICATE-----"))
        .map(|c| format!("{}\n", c.trim()))
        .collect()
}

/// Join-token evidence for a login.
pub fn join_token_evidence(token: &str) -> Value {
    json!({"type": "joinToken", "token": token})
}

/// A key pair and its CSR, made before they are needed (for timing-sensitive steps).
pub struct KeyAndCsr {
    /// The private key file (PEM).
    pub key: PathBuf,
    /// The CSR (PEM).
    pub csr: String,
}

impl KeyAndCsr {
    /// A new P-256 key in `dir` and a plain CSR for it.
    pub fn new(dir: &TempDir) -> KeyAndCsr {
        let key = dir.unique_file("key", "pem");
        ec_key(&key);
        let csr = csr(&key, &[]);
        KeyAndCsr { key, csr }
    }
}

/// An X.509-SVID held on disk, as a function holds it: key, certificate and bundle files.
#[derive(Debug, Clone)]
pub struct Svid {
    /// The private key (PEM).
    pub key: PathBuf,
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The trust bundle that came with it (PEM).
    pub bundle: PathBuf,
    /// `serial` from the answer (lowercase hex).
    pub serial: String,
    /// `spiffeId` from the answer.
    pub spiffe_id: String,
    /// The whole answer.
    pub answer: Value,
}

impl Svid {
    /// Saves a login or renewal answer for the key in `key` as files in `dir`.
    pub fn from_answer(dir: &TempDir, key: &Path, answer: Value) -> Svid {
        let cert = dir.unique_file("svid", "pem");
        let bundle = dir.unique_file("bundle", "pem");
        let field = |name: &str| {
            answer[name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in {answer}"))
                .to_string()
        };
        std::fs::write(&cert, field("x509Svid")).expect("write svid");
        std::fs::write(&bundle, field("x509Bundle")).expect("write bundle");
        Svid {
            key: key.to_path_buf(),
            cert,
            bundle,
            serial: field("serial"),
            spiffe_id: field("spiffeId"),
            answer,
        }
    }

    /// `POST /v1/login` for `function` with `evidence` and a prepared key and CSR.
    /// `Ok` with the SVID on 200, `Err` with the answer otherwise.
    pub fn login_with(
        server: &Server,
        dir: &TempDir,
        function: &str,
        evidence: Value,
        key: &KeyAndCsr,
    ) -> Result<Svid, Response> {
        let r = server
            .curl("POST", "/v1/login")
            .json(&json!({"function": function, "attestation": evidence, "csr": key.csr}))
            .send();
        if r.status == 200 {
            Ok(Svid::from_answer(dir, &key.key, r.json()))
        } else {
            Err(r)
        }
    }

    /// `POST /v1/login` with a new key.
    pub fn login(
        server: &Server,
        dir: &TempDir,
        function: &str,
        evidence: Value,
    ) -> Result<Svid, Response> {
        Svid::login_with(server, dir, function, evidence, &KeyAndCsr::new(dir))
    }

    /// A curl request to `path` over mTLS with this SVID.
    pub fn curl(&self, server: &Server, method: &str, path: &str) -> Curl {
        server.curl(method, path).client_cert(&self.cert, &self.key)
    }

    /// `POST /v1/svid/x509` over mTLS with this SVID and a new key: renewal.
    pub fn renew(&self, server: &Server, dir: &TempDir) -> Result<Svid, Response> {
        let next = KeyAndCsr::new(dir);
        let r = self
            .curl(server, "POST", "/v1/svid/x509")
            .json(&json!({"csr": next.csr}))
            .send();
        if r.status == 200 {
            Ok(Svid::from_answer(dir, &next.key, r.json()))
        } else {
            Err(r)
        }
    }

    /// `POST /v1/svid/jwt` over mTLS with this SVID.
    pub fn mint_jwt(&self, server: &Server, audience: &str) -> Response {
        self.curl(server, "POST", "/v1/svid/jwt")
            .json(&json!({"audience": audience}))
            .send()
    }
}

impl Server {
    /// The `--audit-file` this server appends committed audit events to (JSON lines).
    pub fn audit_file(&self) -> PathBuf {
        self.audit_path.clone()
    }
}

/// A CA of the test's own, and a certificate for 127.0.0.1 that it signed (PEM files in
/// `dir`, named after `name`): for TLS servers the tests run (a gateway, a hook), which
/// clients trust through the CA file. Returns (CA, certificate, key).
pub fn localhost_certificate(dir: &TempDir, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-ca.key")),
    );
    let (cert, key, csr) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.csr")),
    );
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write extensions");
    let s = |p: &PathBuf| p.to_str().expect("utf-8 path").to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&ca_key),
        "-out",
        &s(&ca),
        "-subj",
        &format!("/CN={name} test CA"),
        "-days",
        "1",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(&ca),
        "-CAkey",
        &s(&ca_key),
        "-CAcreateserial",
        "-out",
        &s(&cert),
        "-days",
        "1",
        "-extfile",
        &s(&ext),
    ]);
    (ca, cert, key)
}

/// A child process killed on drop, with its stdout and stderr in files.
pub struct Proc {
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    /// A started child whose standard error goes to `stderr`.
    pub fn new(child: Child, stderr: PathBuf) -> Proc {
        Proc { child, stderr }
    }

    /// Whether it has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What it wrote to standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends it `signal` (`HUP`, `TERM`, ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let out = run(Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string()));
        success(&format!("kill -{signal}"), &out);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, waiting for a stdout line starting with `marker` and ending in a port.
pub fn start_until_port(mut cmd: Command, dir: &TempDir, name: &str, marker: &str) -> (Proc, u16) {
    let stderr = dir.unique_file(name, "stderr");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let proc = Proc { child, stderr };
    let port = line
        .trim()
        .strip_prefix(marker)
        .and_then(|rest| rest.rsplit(':').next())
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("{name} did not start: {line:?}\n{}", proc.log()));
    // Keep draining stdout so the process never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    (proc, port)
}

/// A `python3` command, for the tests whose stand-ins (upstreams, a Lambda Runtime API, an
/// SQLite editor) are Python scripts. Without `python3` on PATH the test fails here, saying
/// what it needs and how to get it, rather than later with an obscure spawn error.
pub fn python3() -> Command {
    static FOUND: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let found = *FOUND.get_or_init(|| {
        Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        found,
        "this test needs python3 on PATH (its stand-in upstream or API is a Python script, \
         standard library only): install it (apt-get install python3; .ci/run does) and \
         run the test again"
    );
    Command::new("python3")
}

/// The Python upstream that answers every request with what it received, as JSON.
pub fn echo_upstream(dir: &TempDir) -> (Proc, u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/echo_upstream.py");
    let mut cmd = python3();
    cmd.arg(script);
    start_until_port(cmd, dir, "upstream", "listening ")
}

/// Sends `request` as it is, byte for byte, over TLS to `127.0.0.1:port` (trusting
/// `ca_file`), and returns everything the server answers until it closes the connection or
/// 5 seconds pass: for requests `curl` will not make (two `Host` headers, none).
pub fn raw_tls(port: u16, ca_file: &Path, request: &[u8]) -> String {
    use std::io::Read;
    use std::sync::Arc;

    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca_file).expect("read the CA file");
    for cert in ::pem::parse_many(&pem).expect("CA file is PEM") {
        roots
            .add(rustls::pki_types::CertificateDer::from(
                cert.into_contents(),
            ))
            .expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(request).expect("send the request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads `child`'s stdout until `writ dev` says it is serving; returns what it printed.
pub fn until_serving(child: &mut Child) -> String {
    let mut out = String::new();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("Serving until Ctrl-C") || Instant::now() > deadline {
            break;
        }
    }
    out
}
