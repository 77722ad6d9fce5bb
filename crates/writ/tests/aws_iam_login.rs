//! AWS IAM attestation end to end, against moto's real STS: moto's server on 127.0.0.1, an
//! IAM role made in it and credentials from its AssumeRole (boto3), the real `writ agent`
//! attesting with those credentials in its environment, and the real `writ server` sending
//! the signed GetCallerIdentity request on to moto (`--aws-sts-endpoint`). After the setup,
//! moto checks every request's signature (`/moto-api/reset-auth`), as STS does.
//!
//! Refusals are a plain 401 to the caller, with the reason in the audit log. moto and boto3
//! come from the Python at `$WRIT_TEST_PYTHON` (default `~/.cache/writ/venv/bin/python`),
//! which `.ci/run` makes; without it the test is reported ignored (failed under CI=true).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    KeyAndCsr, PATIENCE, Proc, Server, Svid, TRUST_DOMAIN, TempDir, wait_for, writ_command,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use writ_client::aws_iam::{AwsEnvironment, sign_get_caller_identity};

const ACCOUNT: &str = "123456789012";

fn python() -> PathBuf {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/writ/venv/bin/python")
        });
    let ok = Command::new(&python)
        .args(["-c", "import moto.server, boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs a Python with moto's server and boto3 at {}. Install them as .ci/run \
         does:\n  python3 -m venv ~/.cache/writ/venv && ~/.cache/writ/venv/bin/pip install \
         'moto[server]' boto3\nor point WRIT_TEST_PYTHON at a Python that has them. Outside \
         CI=true, the test is reported ignored when there is none (rebuild after installing).",
        python.display()
    );
    python
}

/// A port free now on 127.0.0.1 (moto takes its port as a flag).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// moto's server, killed on drop.
struct Moto {
    _proc: Proc,
    port: u16,
}

impl Moto {
    fn start(python: &Path, dir: &TempDir) -> Moto {
        let port = free_port();
        let stderr = dir.unique_file("moto", "stderr");
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
            .env_remove("MOTO_ACCOUNT_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("moto stderr"))
            .spawn()
            .expect("start moto");
        let mut proc = Proc::new(child, stderr);
        wait_for("moto to listen", Duration::from_secs(60), || {
            if let Some(status) = proc.try_wait() {
                panic!("moto exited ({status}):\n{}", proc.log());
            }
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Moto { _proc: proc, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Makes the roles `orders-fn` (with a path, which STS drops from the assumed-role ARN) and
/// `payments-fn` in moto, assumes each with the session name `orders`, and then turns on
/// moto's signature checks. Returns each role's temporary credentials.
const SETUP: &str = r#"
import json, sys, urllib.request
import boto3
endpoint = sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="us-east-1",
          aws_access_key_id="AKIDSETUPEXAMPLE", aws_secret_access_key="setup-secret")
iam = boto3.client("iam", **kw)
sts = boto3.client("sts", **kw)
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
out = {}
for name, path in [("orders-fn", "/service-role/"), ("payments-fn", "/")]:
    arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    c = sts.assume_role(RoleArn=arn, RoleSessionName="orders")["Credentials"]
    out[name] = {"id": c["AccessKeyId"], "secret": c["SecretAccessKey"], "token": c["SessionToken"]}
urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0",
    method="POST", headers={"Content-Type": "text/plain"})).read()
print(json.dumps(out))
"#;

/// One role's temporary credentials.
#[derive(Clone)]
struct RoleCredentials {
    id: String,
    secret: String,
    token: String,
}

impl RoleCredentials {
    fn environment(&self, sts: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
            ("AWS_SESSION_TOKEN", self.token.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL_STS", sts.into()),
        ]
    }

    fn aws(&self, sts: &str) -> AwsEnvironment {
        let vars = self.environment(sts);
        AwsEnvironment::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        })
        .expect("AWS environment")
    }
}

fn setup_roles(python: &Path, moto: &Moto) -> (RoleCredentials, RoleCredentials) {
    let out = Command::new(python)
        .args(["-c", SETUP, &moto.url()])
        .stdin(Stdio::null())
        .output()
        .expect("run the moto setup");
    assert!(
        out.status.success(),
        "moto setup failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("setup JSON");
    let role = |name: &str| RoleCredentials {
        id: v[name]["id"].as_str().unwrap().into(),
        secret: v[name]["secret"].as_str().unwrap().into(),
        token: v[name]["token"].as_str().unwrap().into(),
    };
    (role("orders-fn"), role("payments-fn"))
}

/// `writ agent --attest aws-iam --exit-when-ready` for `orders` with `role`'s credentials.
fn agent(server: &Server, role: &RoleCredentials, sts: &str) -> std::process::Output {
    agent_with(server, role, sts, &[])
}

/// [`agent`], with more environment variables.
fn agent_with(
    server: &Server,
    role: &RoleCredentials,
    sts: &str,
    envs: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = writ_command();
    cmd.args([
        "agent",
        "--function",
        "orders",
        "--attest",
        "aws-iam",
        "--exit-when-ready",
    ])
    .args(["--listen", "127.0.0.1:0", "--server"])
    .arg(server.addr())
    .arg("--ca-file")
    .arg(server.ca_file())
    .env_remove("AWS_DEFAULT_REGION")
    .env_remove("AWS_PROFILE")
    .env_remove("WRIT_JOIN_TOKEN")
    .env_remove("WRIT_ATTEST")
    .env_remove("WRIT_AWS_IAM_SERVER_ID")
    .envs(role.environment(sts))
    .envs(envs.iter().copied())
    .stdin(Stdio::null());
    cmd.output().expect("run writ agent")
}

/// `{"type": "awsIam", "request": ...}` signed in this process with `aws`'s credentials.
fn evidence(aws: &AwsEnvironment, server_id: &str, at: OffsetDateTime) -> Value {
    let request = sign_get_caller_identity(aws, server_id, at).expect("sign");
    json!({"type": "awsIam", "request": request})
}

/// The login refusal the audit log records after its first `before` events.
fn refusal(server: &Server, before: usize) -> Value {
    wait_for("the refused login's audit event", PATIENCE, || {
        server
            .audit_events()
            .into_iter()
            .skip(before)
            .find(|e| e["action"] == "writ:Login" && e["outcome"] == "denied")
    })
}

/// Logs in with `evidence`; asserts a plain 401 and returns the audited reason.
fn refused_login(server: &Server, dir: &TempDir, evidence: Value) -> String {
    let before = server.audit_events().len();
    let r = Svid::login(server, dir, "orders", evidence).expect_err("the login must be refused");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.error_message(), "authentication failed");
    let event = refusal(server, before);
    assert_eq!(event["authenticatedBy"], "awsIam", "{event}");
    event["reason"].as_str().unwrap_or_default().to_string()
}

#[test]
#[cfg_attr(
    writ_no_test_moto,
    ignore = "needs moto's STS: a Python with moto[server] and boto3 at WRIT_TEST_PYTHON (default ~/.cache/writ/venv/bin/python; .ci/run makes it)"
)]
fn aws_iam_attestation_against_motos_sts() {
    let python = python();
    let dir = TempDir::new("aws-iam");
    let moto = Moto::start(&python, &dir);
    let (orders, payments) = setup_roles(&python, &moto);
    let sts = moto.url();
    let server = Server::start(
        &dir.join("data"),
        &["--trust-domain", TRUST_DOMAIN, "--aws-sts-endpoint", &sts],
    );
    let pattern = format!("arn:aws:iam::{ACCOUNT}:role/orders-*");
    server.cli_ok(&[
        "fn",
        "register",
        "orders",
        "--aws-iam-role",
        &pattern,
        "--aws-iam-session-name",
        "orders",
    ]);
    let shown: Value =
        serde_json::from_str(&server.cli_ok(&["fn", "show", "orders", "--format", "json"]))
            .expect("fn show JSON");
    assert_eq!(
        shown["attestation"],
        json!([{"type": "awsIam", "roleArns": [pattern], "sessionName": "orders"}])
    );

    // The right role: the agent attests with the credentials in its environment and is
    // ready with the function's SVID. The role has a path; STS drops it, and so does the
    // pattern.
    let out = agent(&server, &orders, &sts);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains("agent ready")
            && stdout.contains("spiffe://example.org/fn/orders"),
        "the agent should attest with the orders-fn role:\nstdout: {stdout}\nstderr: {}\nserver: {}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    let allowed = server.wait_for_audit("the login's audit event", |e| {
        e["action"] == "writ:Login" && e["outcome"] == "allowed"
    });
    assert_eq!(allowed["authenticatedBy"], "awsIam");
    assert_eq!(allowed["actor"], "spiffe://example.org/fn/orders");
    assert_eq!(
        allowed["reason"],
        format!(
            "AWS IAM: arn:aws:sts::{ACCOUNT}:assumed-role/orders-fn/orders as arn:aws:iam::{ACCOUNT}:role/orders-fn"
        )
    );

    // Another role: STS vouches for it, the rule does not admit it.
    let before = server.audit_events().len();
    let out = agent(&server, &payments, &sts);
    assert!(
        !out.status.success(),
        "payments-fn must not log in as orders"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    let reason = refusal(&server, before)["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains(&format!(
            "arn:aws:iam::{ACCOUNT}:role/payments-fn matches none of roleArns"
        )),
        "{reason}"
    );

    // Evidence made in this process, for the other cases.
    let aws = orders.aws(&sts);
    let now = OffsetDateTime::now_utc();

    // Good evidence logs in once; the same signed request again is refused.
    let once = evidence(&aws, TRUST_DOMAIN, now);
    let before = server.audit_events().len();
    Svid::login_with(&server, &dir, "orders", once.clone(), &KeyAndCsr::new(&dir)).unwrap_or_else(
        |r| {
            panic!(
                "a fresh signed request should log in: {}\naudit: {}",
                r.body,
                refusal(&server, before)
            )
        },
    );
    let reason = refused_login(&server, &dir, once);
    assert!(reason.contains("was already used"), "{reason}");

    // A stale X-Amz-Date: signed ten minutes ago.
    let reason = refused_login(
        &server,
        &dir,
        evidence(&aws, TRUST_DOMAIN, now - time::Duration::minutes(10)),
    );
    assert!(reason.contains("stale"), "{reason}");

    // moto refuses a bad signature (the secret key is not the role's).
    let mut forged = orders.clone();
    forged.secret = format!("{}x", orders.secret);
    let reason = refused_login(
        &server,
        &dir,
        evidence(&forged.aws(&sts), TRUST_DOMAIN, now),
    );
    assert!(
        reason.contains("STS refused the request (HTTP 403): SignatureDoesNotMatch"),
        "{reason}"
    );

    // Signed for real AWS STS: writ sends requests to its own endpoint only.
    let mut elsewhere = aws.clone();
    elsewhere.endpoint = "https://sts.us-east-1.amazonaws.com".into();
    let reason = refused_login(&server, &dir, evidence(&elsewhere, TRUST_DOMAIN, now));
    assert!(
        reason.contains("is not this server's STS endpoint"),
        "{reason}"
    );

    // Evidence made for this server (its id is its trust domain), replayed to another,
    // whose id is set with --aws-iam-server-id: refused, naming both.
    let other_dir = TempDir::new("aws-iam-other");
    let other = Server::start(
        &other_dir.join("data"),
        &[
            "--trust-domain",
            "other.example",
            "--aws-sts-endpoint",
            &sts,
            "--aws-iam-server-id",
            "writ-other",
        ],
    );
    other.cli_ok(&["fn", "register", "orders", "--aws-iam-role", &pattern]);
    let reason = refused_login(&other, &other_dir, evidence(&aws, TRUST_DOMAIN, now));
    assert!(
        reason.contains("is for the writ server \"example.org\"")
            && reason.contains("not this one (\"writ-other\")"),
        "{reason}"
    );
    // The agent told the other server's id signs for it, and logs in there.
    let before = other.audit_events().len();
    let out = agent_with(
        &other,
        &orders,
        &sts,
        &[("WRIT_AWS_IAM_SERVER_ID", "writ-other")],
    );
    assert!(
        out.status.success(),
        "the agent should log in with --aws-iam-server-id:\nstdout: {}\nstderr: {}\naudit: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        refusal(&other, before)
    );

    // Nothing secret reached a log or the audit trail.
    for (what, text) in [
        (
            "audit",
            std::fs::read_to_string(server.audit_file()).unwrap_or_default(),
        ),
        (
            "other audit",
            std::fs::read_to_string(other.audit_file()).unwrap_or_default(),
        ),
        ("server log", server.log()),
        ("other server log", other.log()),
    ] {
        for secret in [
            &orders.secret,
            &orders.token,
            &payments.secret,
            &payments.token,
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a credential is in the {what}"
            );
        }
        assert!(!text.contains("Signature="), "a signature is in the {what}");
    }
}
