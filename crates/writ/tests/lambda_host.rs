//! `writ lambda` with runtime clients nobody here wrote: a Python handler run by AWS's
//! `awslambdaric`, invoked by `boto3.client('lambda', endpoint_url=...)`, both from the venv
//! `.ci/run` creates (`$WRIT_TEST_PYTHON`, by default `~/.cache/writ/venv/bin/python`, with
//! `awslambdaric` and `boto3` installed).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::lambda::{self, write_private};
use common::{PATIENCE, Server, TRUST_DOMAIN, TempDir, run, wait_for, writ_command};
use serde_json::Value;

const ALICE: (&str, &str) = ("AKIDALICEEXAMPLE", "alice/secret+key-never-logged");
const BOB: (&str, &str) = ("AKIDBOBEXAMPLE", "bob/secret+key-never-logged");

const HANDLER: &str = r#"
import json, os, time

def handler(event, context):
    if event.get("raise"):
        raise ValueError("boom from the handler")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("hold"):
        # Holds its environment until the test creates HOLD/release.
        open(os.path.join(event["hold"], "held-" + context.aws_request_id), "w").close()
        while not os.path.exists(os.path.join(event["hold"], "release")):
            time.sleep(0.02)
    print("handled", context.aws_request_id)
    return {
        "echo": event,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "region": os.environ.get("AWS_REGION"),
        "default_region": os.environ.get("AWS_DEFAULT_REGION"),
        "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
        "log_group": os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME"),
        "task_root": os.environ.get("LAMBDA_TASK_ROOT"),
        "greeting": os.environ.get("GREETING"),
        "has_access_key": "AWS_ACCESS_KEY_ID" in os.environ,
        "client_context": context.client_context.custom if context.client_context else None,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "request_id": context.aws_request_id,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }

def with_agent(event, context):
    import urllib.request
    token = open(os.environ["CALLER_TOKEN_FILE"]).read().strip()
    url = "http://127.0.0.1:%s/secretsmanager/get?secretId=prod%%2Fhello-db" % os.environ["AGENT_PORT"]
    request = urllib.request.Request(url, headers={"X-Aws-Parameters-Secrets-Token": token})
    answer = json.loads(urllib.request.urlopen(request, timeout=5).read())
    if "OUTBOUND_PORT" in os.environ:
        # A call to payments through the agent's outbound listener, which takes it to the
        # gateway over mTLS as this function.
        call = urllib.request.Request(
            "http://127.0.0.1:%s/pay/charge" % os.environ["OUTBOUND_PORT"],
            data=b'{"amount": 7}', method="POST")
        answer["payments"] = json.loads(urllib.request.urlopen(call, timeout=5).read())
    return answer

def failing(event, context):
    with open(os.path.join(os.environ["MARK_DIR"], "%s-%f" % (context.aws_request_id, time.time())), "w"):
        pass
    raise RuntimeError("event failure")
"#;

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    MemorySize: 256
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Timeout: 2
      ReservedConcurrentExecutions: 2
      Environment:
        Variables:
          GREETING: hello from the template
  BobMayInvokeHello:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt Hello.Arn
      Action: lambda:InvokeFunction
      Principal: arn:aws:iam::123456789012:user/bob
  Private:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.failing
"#;

/// A running `writ lambda` in its own directory, which outlives it; with the Python that
/// runs boto3.
struct Hosted {
    host: lambda::Host,
    python: PathBuf,
    _dir: TempDir,
}

impl std::ops::Deref for Hosted {
    type Target = lambda::Host;
    fn deref(&self) -> &lambda::Host {
        &self.host
    }
}

impl std::ops::DerefMut for Hosted {
    fn deref_mut(&mut self) -> &mut lambda::Host {
        &mut self.host
    }
}

fn setup(label: &str) -> (TempDir, PathBuf) {
    let python = lambda::python();
    let dir = TempDir::new(label);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("marks")).unwrap();
    std::fs::write(dir.join("src/app.py"), HANDLER).unwrap();
    std::fs::write(
        dir.join("src/broken.py"),
        "raise ImportError('a dependency is missing')\n",
    )
    .unwrap();
    std::fs::write(dir.join("template.yaml"), TEMPLATE).unwrap();
    std::fs::write(
        dir.join("lambda.toml"),
        format!(
            "on_failure_dir = \"failures\"\nretry_delays_seconds = [0.2, 0.4]\n\
             [runtimes]\npython = {:?}\n[functions.Broken]\nhandler = \"broken.handler\"\nruntime = \"python3.12\"\n\
             code_uri = \"src\"\n[functions.Failing.environment]\nMARK_DIR = {:?}\n",
            python.display().to_string(),
            dir.join("marks").display().to_string()
        ),
    )
    .unwrap();
    write_private(
        &dir.join("credentials.toml"),
        &format!(
            r#"
[[credential]]
access_key_id = "{}"
secret_access_key = "{}"
principal = "arn:aws:iam::123456789012:user/alice"
policies = ['{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:123456789012:function:*"}}]}}']

[[credential]]
access_key_id = "{}"
secret_access_key = "{}"
principal = "arn:aws:iam::123456789012:user/bob"
"#,
            ALICE.0, ALICE.1, BOB.0, BOB.1
        ),
    );
    (dir, python)
}

fn start(dir: TempDir, python: PathBuf) -> Hosted {
    Hosted {
        host: lambda::Host::start(dir.path()),
        python,
        _dir: dir,
    }
}

const CLIENT: &str = r#"
import json, sys, boto3, botocore
from botocore.config import Config
endpoint, akid, secret, fn, itype, payload = sys.argv[1:7]
extra = {}
if len(sys.argv) > 7:
    extra["ClientContext"] = sys.argv[7]
cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=60, connect_timeout=5)
if akid == "-":
    cfg = cfg.merge(Config(signature_version=botocore.UNSIGNED))
    akid, secret = "unused", "unused"
c = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id=akid, aws_secret_access_key=secret, config=cfg)
try:
    r = c.invoke(FunctionName=fn, InvocationType=itype, Payload=payload.encode(), **extra)
    print(json.dumps({"status": r["StatusCode"], "functionError": r.get("FunctionError"),
                      "version": r.get("ExecutedVersion"), "payload": r["Payload"].read().decode()}))
except botocore.exceptions.ClientError as e:
    print(json.dumps({"status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                      "code": e.response["Error"]["Code"], "message": e.response["Error"].get("Message")}))
"#;

impl Hosted {
    fn invoke(
        &self,
        who: Option<(&str, &str)>,
        function: &str,
        kind: &str,
        payload: &str,
    ) -> Value {
        self.run_client(who, &[function, kind, payload])
    }

    fn invoke_with_context(
        &self,
        who: Option<(&str, &str)>,
        function: &str,
        payload: &str,
        context: &str,
    ) -> Value {
        self.run_client(who, &[function, "RequestResponse", payload, context])
    }

    fn run_client(&self, who: Option<(&str, &str)>, rest: &[&str]) -> Value {
        let (akid, secret) = who.unwrap_or(("-", "-"));
        let out = Command::new(&self.python)
            .args(["-c", CLIENT, &self.endpoint, akid, secret])
            .args(rest)
            .stdin(Stdio::null())
            .output()
            .expect("run boto3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "boto3 failed: {}\n{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

fn payload(r: &Value) -> Value {
    serde_json::from_str(r["payload"].as_str().unwrap()).unwrap()
}

#[test]
fn boto3_invokes_a_python_handler_under_awslambdaric() {
    let (dir, python) = setup("lambda-host");
    let host = start(dir, python);

    // Allowed by alice's identity policy: 200 and the handler's result.
    let r = host.invoke(Some(ALICE), "Hello", "RequestResponse", r#"{"n": 1}"#);
    assert_eq!(r["status"], 200, "{r}\n{}", host.log());
    assert_eq!(r["functionError"], Value::Null, "{r}");
    assert_eq!(r["version"], "$LATEST");
    let p = payload(&r);
    assert_eq!(p["echo"]["n"], 1);
    assert_eq!(p["name"], "Hello");
    assert_eq!(
        p["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:Hello"
    );
    assert_eq!(p["memory"], "256");
    assert_eq!(p["region"], "us-east-1");
    assert_eq!(p["default_region"], "us-east-1");
    assert_eq!(p["version"], "$LATEST");
    assert_eq!(p["log_group"], "/aws/lambda/Hello");
    assert_eq!(p["greeting"], "hello from the template");
    assert_eq!(p["has_access_key"], false);
    assert!(p["cwd"].as_str().unwrap().ends_with("/src"), "{p}");
    let remaining = p["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 2000, "{p}");
    assert!(p["trace"].as_str().unwrap().starts_with("Root=1-"), "{p}");
    assert_eq!(p["request_id"].as_str().unwrap().len(), 36, "{p}");
    let first_pid = p["pid"].clone();

    // The warm environment is reused.
    let r = host.invoke(Some(ALICE), "Hello", "RequestResponse", "{}");
    assert_eq!(payload(&r)["pid"], first_pid);

    // By ARN and qualifier, with a client context (base64 JSON, as boto3 sends it).
    let context = "eyJjdXN0b20iOiB7InRlbmFudCI6ICJhY21lIn19"; // {"custom": {"tenant": "acme"}}
    let r = host.invoke_with_context(
        Some(ALICE),
        "arn:aws:lambda:us-east-1:123456789012:function:Hello:$LATEST",
        "{}",
        context,
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(payload(&r)["client_context"]["tenant"], "acme", "{r}");

    // Allowed by the function's resource policy (AWS::Lambda::Permission) for bob.
    let r = host.invoke(Some(BOB), "Hello", "RequestResponse", "{}");
    assert_eq!(r["status"], 200, "{r}");

    // Refused by policy: nothing allows bob to invoke Private.
    let r = host.invoke(Some(BOB), "Private", "RequestResponse", "{}");
    assert_eq!(r["status"], 403, "{r}");
    assert_eq!(r["code"], "AccessDeniedException");
    let message = r["message"].as_str().unwrap();
    assert!(
        message.contains("arn:aws:iam::123456789012:user/bob"),
        "{message}"
    );
    assert!(message.contains("lambda:InvokeFunction"), "{message}");
    assert!(
        message.contains("arn:aws:lambda:us-east-1:123456789012:function:Private"),
        "{message}"
    );

    // Unsigned: 403 MissingAuthenticationTokenException, as Lambda answers.
    let r = host.invoke(None, "Hello", "RequestResponse", "{}");
    assert_eq!(r["status"], 403, "{r}");
    assert_eq!(r["code"], "MissingAuthenticationTokenException");

    // A wrong secret: 403 InvalidSignatureException.
    let r = host.invoke(Some((ALICE.0, "wrong")), "Hello", "RequestResponse", "{}");
    assert_eq!(r["status"], 403, "{r}");
    assert_eq!(r["code"], "InvalidSignatureException");

    // Unknown function (alice may invoke any): 404 ResourceNotFoundException.
    let r = host.invoke(Some(ALICE), "Nope", "RequestResponse", "{}");
    assert_eq!(r["status"], 404, "{r}");
    assert_eq!(r["code"], "ResourceNotFoundException");

    // The handler raises: 200 with X-Amz-Function-Error and awslambdaric's error payload.
    let r = host.invoke(
        Some(ALICE),
        "Hello",
        "RequestResponse",
        r#"{"raise": true}"#,
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["functionError"], "Unhandled");
    let p = payload(&r);
    assert_eq!(p["errorType"], "ValueError", "{p}");
    assert_eq!(p["errorMessage"], "boom from the handler");

    // A handler module that fails to import: awslambdaric's error, as Lambda answers it.
    let r = host.invoke(Some(ALICE), "Broken", "RequestResponse", "{}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["functionError"], "Unhandled", "{r}");
    let p = payload(&r);
    assert!(
        p["errorType"].as_str().unwrap().starts_with("Runtime."),
        "{p}"
    );

    // DryRun: 204.
    let r = host.invoke(Some(ALICE), "Hello", "DryRun", "{}");
    assert_eq!(r["status"], 204, "{r}");

    // Timeout (Timeout: 2): the environment is killed, the answer is Lambda's timeout error.
    let r = host.invoke(Some(ALICE), "Hello", "RequestResponse", r#"{"sleep": 5}"#);
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["functionError"], "Unhandled");
    let p = payload(&r);
    assert!(
        p["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 2.00 seconds"),
        "{p}"
    );
    // ... and the next invocation gets a fresh environment.
    let r = host.invoke(Some(ALICE), "Hello", "RequestResponse", "{}");
    assert_eq!(r["status"], 200, "{r}");
    assert_ne!(payload(&r)["pid"], first_pid);

    // Event: 202 at once; the handler fails, is retried twice, and lands in the failure dir.
    let r = host.invoke(Some(ALICE), "Failing", "Event", r#"{"order": 7}"#);
    assert_eq!(r["status"], 202, "{r}");
    let failures = host.dir.join("failures");
    let record: Value = wait_for("the failed event in the failure dir", PATIENCE, || {
        let entry = std::fs::read_dir(&failures).ok()?.next()?.ok()?;
        serde_json::from_str(&std::fs::read_to_string(entry.path()).ok()?).ok()
    });
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(record["requestPayload"]["order"], 7);
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorType"], "RuntimeError");
    let marks = std::fs::read_dir(host.dir.join("marks")).unwrap().count();
    assert_eq!(marks, 3, "three attempts");

    // Runtime output reaches the host's log with the function's name; secrets never do.
    std::thread::sleep(Duration::from_millis(200));
    let log = host.log();
    assert!(log.contains("handled"), "{log}");
    assert!(log.contains("Hello"), "{log}");
    assert!(
        !log.contains(ALICE.1) && !log.contains(BOB.1),
        "a secret in the log"
    );

    // Every decision is audited.
    let audit = host.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["principal"] == "arn:aws:iam::123456789012:user/bob"
                && e["outcome"] == "implicitDeny"
                && e["resource"] == "arn:aws:lambda:us-east-1:123456789012:function:Private"),
        "{audit:?}"
    );
    assert!(audit.iter().any(|e| e["outcome"] == "allowed"));
    assert!(audit.iter().any(|e| e["outcome"] == "unauthenticated"));
    let text = std::fs::read_to_string(host.dir.join("data/lambda-audit.jsonl")).unwrap();
    assert!(
        !text.contains(ALICE.1) && !text.contains(BOB.1),
        "a secret in the audit log"
    );
}

#[test]
fn concurrency_beyond_reserved_is_throttled() {
    let (dir, python) = setup("lambda-throttle");
    // Hello may have 2 environments; held invocations must not time out meanwhile.
    let mut config = std::fs::read_to_string(dir.join("lambda.toml")).unwrap();
    config.push_str("[functions.Hello]\ntimeout = 120\n");
    std::fs::write(dir.join("lambda.toml"), config).unwrap();
    let hold = dir.join("hold");
    std::fs::create_dir_all(&hold).unwrap();
    let host = std::sync::Arc::new(start(dir, python));
    // Two invocations hold both environments until released; a third is throttled.
    let event = serde_json::json!({"hold": hold.display().to_string()}).to_string();
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (h, event) = (host.clone(), event.clone());
            std::thread::spawn(move || h.invoke(Some(ALICE), "Hello", "RequestResponse", &event))
        })
        .collect();
    wait_for("both environments to be held", PATIENCE * 4, || {
        (std::fs::read_dir(&hold).ok()?.count() == 2).then_some(())
    });
    let r = host.invoke(Some(ALICE), "Hello", "RequestResponse", "{}");
    assert_eq!(r["status"], 429, "{r}");
    assert_eq!(r["code"], "TooManyRequestsException");
    std::fs::write(hold.join("release"), "").unwrap();
    for t in held {
        let r = t.join().unwrap();
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["functionError"], Value::Null, "{r}");
    }
    // Released, an environment takes the next invocation again.
    let r = host.invoke(Some(ALICE), "Hello", "RequestResponse", "{}");
    assert_eq!(r["status"], 200, "{r}");
}

#[test]
fn bad_input_is_reported_with_its_place() {
    let (dir, _python) = setup("lambda-bad");
    std::fs::write(
        dir.join("template.yaml"),
        TEMPLATE.replace("Handler: app.failing", "Handler: !Ref Nothing"),
    )
    .unwrap();
    let out = writ_command()
        .current_dir(dir.path())
        .args(["lambda", "--template", "template.yaml", "--print-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("template.yaml:31:16:"), "{err}");
    assert!(err.contains("Handler"), "{err}");

    // A credentials file others may read is refused, without quoting it.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(dir.join("template.yaml"), TEMPLATE).unwrap();
    std::fs::set_permissions(
        dir.join("credentials.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = writ_command()
        .current_dir(dir.path())
        .args([
            "lambda",
            "--template",
            "template.yaml",
            "--credentials",
            "credentials.toml",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(ALICE.1), "{err}");
}

/// A server with the function `with-agent`, allowed to read `prod/hello-db`; its join token
/// and the caller token in files of `dir`, and a free port for its agent.
fn agent_function(dir: &TempDir) -> (Server, u16) {
    let server = Server::start(&dir.join("server"), &["--trust-domain", TRUST_DOMAIN]);
    let policy = dir.join("with-agent-policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secrets:GetSecretValue","Resource":"writ:secret/prod/hello-*"}]}"#,
    )
    .unwrap();
    server.cli_ok(&[
        "fn",
        "register",
        "with-agent",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    std::fs::write(dir.join("db-url"), "postgres://hello:pw@db/hello").unwrap();
    let value = dir.join("db-url");
    server.cli_ok(&[
        "secret",
        "put",
        "prod/hello-db",
        "--value-file",
        value.to_str().unwrap(),
    ]);
    write_private(&dir.join("join-token"), &server.join_token("with-agent"));
    write_private(&dir.join("caller-token"), "caller-token-for-the-function");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (server, port)
}

/// Adds the function `WithAgent` (handler `app.with_agent`) to the host's config, with
/// `extension` as its one extension and `environment` added to its own.
fn add_with_agent(dir: &TempDir, port: u16, extension: &[String], environment: &[(&str, String)]) {
    let mut config = std::fs::read_to_string(dir.join("lambda.toml")).unwrap();
    config.push_str(&format!(
        "[functions.WithAgent]\nhandler = \"app.with_agent\"\nruntime = \"python3.12\"\n\
         code_uri = \"src\"\ntimeout = 10\nextensions = [{extension:?}]\n\
         [functions.WithAgent.environment]\nAGENT_PORT = \"{port}\"\nCALLER_TOKEN_FILE = {:?}\n",
        dir.join("caller-token").display().to_string()
    ));
    for (k, v) in environment {
        config.push_str(&format!("{k} = {v:?}\n"));
    }
    std::fs::write(dir.join("lambda.toml"), config).unwrap();
}

#[test]
fn writ_agent_runs_as_an_extension_of_a_hosted_function() {
    let (dir, python) = setup("lambda-agent");
    let (server, port) = agent_function(&dir);
    let extension: Vec<String> = [
        env!("CARGO_BIN_EXE_writ"),
        "agent",
        "--function",
        "with-agent",
        "--server",
        &server.addr(),
        "--ca-file",
        server.ca_file().to_str().unwrap(),
        "--join-token-file",
        dir.join("join-token").to_str().unwrap(),
        "--caller-token-file",
        dir.join("caller-token").to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    add_with_agent(&dir, port, &extension, &[]);
    let mut host = start(dir, python);

    let r = host.invoke(Some(ALICE), "WithAgent", "RequestResponse", "{}");
    assert_eq!(r["status"], 200, "{r}\n{}", host.log());
    assert_eq!(r["functionError"], Value::Null, "{r}\n{}", host.log());
    let p = payload(&r);
    assert_eq!(p["SecretString"], "postgres://hello:pw@db/hello", "{p}");
    let log = host.log();
    assert!(log.contains("extension registered"), "{log}");
    assert!(log.contains("writ-agent"), "{log}");

    // The host stops: the agent gets SHUTDOWN and leaves on its own (exit 0).
    let pid = host.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_for("the host to stop", PATIENCE, || {
        host.child.try_wait().ok().flatten()
    });
    assert!(status.success(), "{status}\n{}", host.log());
    let log = host.log();
    assert!(
        log.lines()
            .any(|l| l.contains("extension ended") && l.contains("exit status: 0")),
        "{log}"
    );
}

/// Unpacks a zip as Lambda unpacks a layer: every file, with the Unix mode it was stored
/// with (Python's zipfile, which nobody here wrote).
fn unpack_layer(python: &Path, zip: &Path, into: &Path) -> Vec<(String, u32)> {
    let script = r#"
import json, os, sys, zipfile
listed = []
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        path = z.extract(info, sys.argv[2])
        mode = (info.external_attr >> 16) & 0o7777
        os.chmod(path, mode)
        listed.append([info.filename, mode])
print(json.dumps(listed))
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(zip)
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_agent_layer_runs_as_the_extension_of_a_hosted_function_configured_by_its_environment() {
    // Its function reads a secret through :2773 and calls payments through the gateway as
    // itself.
    let (dir, python) = setup("lambda-layer");
    let (server, port) = agent_function(&dir);
    let zip = dir.join("writ-agent-layer.zip");
    let out = run(Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["layer", "build", "--out"])
        .arg(&zip)
        .arg("--ca-file")
        .arg(server.ca_file()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opt = dir.join("opt");
    let listed = unpack_layer(&python, &zip, &opt);
    assert_eq!(
        listed,
        [
            ("extensions/writ-agent".to_string(), 0o755),
            ("writ/bin/writ".to_string(), 0o755),
            ("writ/ca.pem".to_string(), 0o644)
        ]
    );
    // Started with no arguments, as Lambda starts /opt/extensions/*: everything comes from
    // the function's environment, and the trust bundle from the layer.
    // payments, behind a gateway that lets with-agent call it.
    server.register("payments");
    server.cli_ok(&["intention", "allow", "with-agent", "payments"]);
    common::gateway::token(&server, &dir, &[]);
    let (_upstream, up_port) = common::echo_upstream(&dir);
    let (gateway_ca, cert, key) = common::localhost_certificate(&dir, "gateway");
    std::fs::write(
        dir.join("gateway.toml"),
        format!(
            "{}\n[[route]]\nname = \"payments\"\nfunction = \"payments\"\npath_prefix = \"/pay\"\n\
             upstream = \"http://127.0.0.1:{up_port}\"\nauth = [\"mtls\"]\n",
            common::gateway::config_head(&server, &cert, &key)
        ),
    )
    .unwrap();
    let mut cmd = writ_command();
    cmd.args(["gateway", "--config"])
        .arg(dir.join("gateway.toml"));
    let gateway = common::gateway::Gateway::start(cmd, &dir, gateway_ca);
    // Synced once it refuses a caller without credentials for want of them (not 503).
    wait_for("the gateway to sync", PATIENCE, || {
        (gateway.curl("POST", "/pay/charge").send().status == 401).then_some(())
    });
    let outbound = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extension = vec![opt.join("extensions/writ-agent").display().to_string()];
    add_with_agent(
        &dir,
        port,
        &extension,
        &[
            ("WRIT_ADDR", server.addr()),
            ("WRIT_FUNCTION", "with-agent".into()),
            (
                "WRIT_JOIN_TOKEN_FILE",
                dir.join("join-token").display().to_string(),
            ),
            (
                "WRIT_CALLER_TOKEN_FILE",
                dir.join("caller-token").display().to_string(),
            ),
            ("WRIT_AGENT_LISTEN", format!("127.0.0.1:{port}")),
            ("WRIT_OUTBOUND", format!("payments=127.0.0.1:{outbound}")),
            (
                "WRIT_GATEWAY",
                format!("https://127.0.0.1:{}", gateway.port),
            ),
            ("WRIT_GATEWAY_CACERT", gateway.ca.display().to_string()),
            ("OUTBOUND_PORT", outbound.to_string()),
        ],
    );
    let host = start(dir, python);
    let r = host.invoke(Some(ALICE), "WithAgent", "RequestResponse", "{}");
    assert_eq!(r["status"], 200, "{r}\n{}", host.log());
    assert_eq!(r["functionError"], Value::Null, "{r}\n{}", host.log());
    let answer = payload(&r);
    assert_eq!(answer["SecretString"], "postgres://hello:pw@db/hello");
    // payments saw the call come from this function, through the gateway.
    assert_eq!(
        answer["payments"]["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/with-agent"),
        "{answer}"
    );
    assert_eq!(
        answer["payments"]["headers"]["x-writ-authenticated-by"],
        "mtls"
    );
    let log = host.log();
    assert!(log.contains("extension registered"), "{log}");
}

#[test]
fn an_agent_that_cannot_reach_the_server_fails_the_functions_init_with_the_cause() {
    let (dir, python) = setup("lambda-agent-unreachable");
    let (server, port) = agent_function(&dir);
    // A port nothing listens on: the agent retries within WRIT_INIT_TIMEOUT, then reports
    // an init error to the Extensions API, and the function's init fails with its kind.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let extension = vec![env!("CARGO_BIN_EXE_writ").to_string(), "agent".to_string()];
    add_with_agent(
        &dir,
        port,
        &extension,
        &[
            ("WRIT_ADDR", format!("https://127.0.0.1:{closed}")),
            ("WRIT_CACERT", server.ca_file().display().to_string()),
            ("WRIT_FUNCTION", "with-agent".into()),
            (
                "WRIT_JOIN_TOKEN_FILE",
                dir.join("join-token").display().to_string(),
            ),
            (
                "WRIT_CALLER_TOKEN_FILE",
                dir.join("caller-token").display().to_string(),
            ),
            ("WRIT_AGENT_LISTEN", format!("127.0.0.1:{port}")),
            ("WRIT_INIT_TIMEOUT", "1s".into()),
        ],
    );
    let host = start(dir, python);
    let r = host.invoke(Some(ALICE), "WithAgent", "RequestResponse", "{}");
    assert_ne!(r["functionError"], Value::Null, "{r}\n{}", host.log());
    let log = host.log();
    assert!(log.contains("Extension.WritUnavailable"), "{r}\n{log}");
    assert!(log.contains("gave up after"), "{log}");
}

/// Builds the Rust handler in tests/fixtures/rust-handler (AWS's `lambda_runtime` crate) into
/// the same target directory as this test, and returns the `bootstrap` binary.
fn build_rust_handler() -> PathBuf {
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rust-handler/Cargo.toml");
    let target_dir = Path::new(env!("CARGO_BIN_EXE_writ"))
        .parent()
        .and_then(Path::parent)
        .expect("the writ binary is in TARGET/PROFILE")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "building the lambda_runtime handler failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("debug/bootstrap")
}

#[test]
fn a_rust_handler_on_lambda_runtime_answers_through_the_host() {
    let bootstrap = build_rust_handler();
    let (dir, python) = setup("lambda-rust");
    std::fs::create_dir_all(dir.join("rust")).unwrap();
    std::fs::copy(&bootstrap, dir.join("rust/bootstrap")).unwrap();
    let mut config = std::fs::read_to_string(dir.join("lambda.toml")).unwrap();
    config.push_str(
        "[functions.RustHello]\nhandler = \"bootstrap\"\nruntime = \"provided.al2023\"\n\
         code_uri = \"rust\"\n",
    );
    std::fs::write(dir.join("lambda.toml"), config).unwrap();
    let host = start(dir, python);

    let r = host.invoke(Some(ALICE), "RustHello", "RequestResponse", r#"{"n": 2}"#);
    assert_eq!(r["status"], 200, "{r}\n{}", host.log());
    assert_eq!(r["functionError"], Value::Null, "{r}");
    let p = payload(&r);
    assert_eq!(p["echo"]["n"], 2);
    assert_eq!(p["function"], "RustHello");
    assert_eq!(
        p["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:RustHello"
    );

    let r = host.invoke(
        Some(ALICE),
        "RustHello",
        "RequestResponse",
        r#"{"raise": true}"#,
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["functionError"], "Unhandled", "{r}");
    assert!(
        r["payload"]
            .as_str()
            .unwrap()
            .contains("boom from the Rust handler"),
        "{r}"
    );

    let r = host.invoke(Some(BOB), "RustHello", "RequestResponse", "{}");
    assert_eq!(r["code"], "AccessDeniedException", "{r}");
}

/// AWS's Node runtime interface client, `aws-lambda-ric` (npm): `$WRIT_TEST_NODE_RIC`, by
/// default `~/.cache/writ/node/node_modules/.bin/aws-lambda-ric`, which `.ci/run` installs.
/// Without it (or without `node`) the test fails here, saying how to get it.
fn node_ric() -> PathBuf {
    let ric = std::env::var_os("WRIT_TEST_NODE_RIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/writ/node/node_modules/.bin/aws-lambda-ric")
        });
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node && ric.exists(),
        "this test needs node on PATH and AWS's aws-lambda-ric at {}. Install them as .ci/run \
         does:\n  apt-get install -y nodejs npm cmake autoconf automake libtool g++ make\n  \
         mkdir -p ~/.cache/writ/node && npm install --prefix ~/.cache/writ/node aws-lambda-ric\n\
         or point WRIT_TEST_NODE_RIC at an aws-lambda-ric executable.",
        ric.display()
    );
    ric
}

const NODE_HANDLER: &str = r#"
exports.handler = async (event, context) => {
  if (event.raise) {
    throw new TypeError("boom from the Node handler");
  }
  console.log("node handled", context.awsRequestId);
  return {
    echo: event,
    name: context.functionName,
    arn: context.invokedFunctionArn,
    requestId: context.awsRequestId,
    remainingMs: context.getRemainingTimeInMillis(),
    memory: context.memoryLimitInMB,
    region: process.env.AWS_REGION,
    taskRoot: process.env.LAMBDA_TASK_ROOT,
    node: process.version,
  };
};
"#;

#[test]
fn boto3_invokes_a_node_handler_under_aws_lambda_ric() {
    let ric = node_ric();
    let (dir, python) = setup("lambda-node");
    std::fs::create_dir_all(dir.join("node")).unwrap();
    std::fs::write(dir.join("node/app.js"), NODE_HANDLER).unwrap();
    let config = std::fs::read_to_string(dir.join("lambda.toml"))
        .unwrap()
        .replace(
            "[runtimes]\n",
            &format!("[runtimes]\nnode = {:?}\n", ric.display().to_string()),
        );
    std::fs::write(
        dir.join("lambda.toml"),
        config
            + "[functions.NodeHello]\nhandler = \"app.handler\"\nruntime = \"nodejs20.x\"\n\
               code_uri = \"node\"\ntimeout = 10\nmemory_size = 512\n",
    )
    .unwrap();
    let host = start(dir, python);

    // Allowed by alice's identity policy: the handler's answer, with Lambda's context.
    let r = host.invoke(Some(ALICE), "NodeHello", "RequestResponse", r#"{"n": 3}"#);
    assert_eq!(r["status"], 200, "{r}\n{}", host.log());
    assert_eq!(r["functionError"], Value::Null, "{r}\n{}", host.log());
    let p = payload(&r);
    assert_eq!(p["echo"]["n"], 3);
    assert_eq!(p["name"], "NodeHello");
    assert_eq!(
        p["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:NodeHello"
    );
    assert_eq!(p["memory"], "512");
    assert_eq!(p["region"], "us-east-1");
    assert!(p["taskRoot"].as_str().unwrap().ends_with("/node"), "{p}");
    assert_eq!(p["requestId"].as_str().unwrap().len(), 36, "{p}");
    let remaining = p["remainingMs"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 10_000, "{p}");

    // The handler throws: X-Amz-Function-Error and aws-lambda-ric's error payload.
    let r = host.invoke(
        Some(ALICE),
        "NodeHello",
        "RequestResponse",
        r#"{"raise": true}"#,
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["functionError"], "Unhandled", "{r}");
    let p = payload(&r);
    assert_eq!(p["errorType"], "TypeError", "{p}");
    assert_eq!(p["errorMessage"], "boom from the Node handler", "{p}");

    // Refused by policy: nothing allows bob to invoke NodeHello.
    let r = host.invoke(Some(BOB), "NodeHello", "RequestResponse", "{}");
    assert_eq!(r["status"], 403, "{r}");
    assert_eq!(r["code"], "AccessDeniedException", "{r}");
    let audit = host.audit();
    assert!(
        audit
            .iter()
            .any(|e| e["principal"] == "arn:aws:iam::123456789012:user/bob"
                && e["outcome"] == "implicitDeny"
                && e["resource"] == "arn:aws:lambda:us-east-1:123456789012:function:NodeHello"),
        "{audit:?}"
    );
    // The runtime's console output reaches the host's log.
    wait_for("the handler's output in the host's log", PATIENCE, || {
        host.log().contains("node handled").then_some(())
    });
}
