//! The gateway's Lambda upstream invoking functions hosted by `writ lambda`, all real
//! binaries: `writ server`, `writ lambda` running Python handlers under AWS's
//! `awslambdaric` (from the venv `.ci/run` creates, `$WRIT_TEST_PYTHON`), and
//! `writ gateway` signing its invocations with AWS credentials the host's credentials file
//! allows to invoke two of the three functions.

mod common;

use std::time::Duration;

use common::gateway::Gateway;
use common::lambda::{self, write_private};
use common::{Server, TRUST_DOMAIN, TempDir, wait_for};
use serde_json::{Value, json};

const KEY_ID: &str = "AKIDGATEWAYTOHOST";
const SECRET: &str = "gateway/to+host-secret-never-logged";
const GATEWAY_PRINCIPAL: &str = "arn:aws:iam::123456789012:user/gateway";

/// Each invocation leaves a file named by its request id in `MARK_DIR`, so the test can
/// count what reached a handler.
const HANDLER: &str = r#"
import json, os

def handler(event, context):
    open(os.path.join(os.environ["MARK_DIR"], context.aws_request_id), "w").close()
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-handled-by": context.function_name},
        "body": json.dumps({"event": event, "function": context.function_name}),
    }

def fails(event, context):
    open(os.path.join(os.environ["MARK_DIR"], context.aws_request_id), "w").close()
    raise ValueError("the db password is hunter2")
"#;

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    Timeout: 10
Resources:
  Payments:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
  Fails:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.fails
  Private:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
"#;

struct Env {
    dir: TempDir,
    server: Server,
    host: lambda::Host,
    gateway: Gateway,
}

impl Env {
    fn new() -> Env {
        let python = lambda::python();
        let dir = TempDir::new("gw-lambda-host");

        // The control plane: orders may call payments, stranger is denied by an intention.
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        for f in ["orders", "payments", "stranger"] {
            server.register(f);
        }
        server.cli_ok(&["intention", "allow", "orders", "payments"]);
        server.cli_ok(&["intention", "deny", "stranger", "payments"]);

        // The host: the gateway's key may invoke Payments and Fails, not Private.
        let host_dir = dir.join("host");
        for d in ["src", "marks"] {
            std::fs::create_dir_all(host_dir.join(d)).unwrap();
        }
        std::fs::write(host_dir.join("src/app.py"), HANDLER).unwrap();
        std::fs::write(host_dir.join("template.yaml"), TEMPLATE).unwrap();
        let marks = host_dir.join("marks").display().to_string();
        std::fs::write(
            host_dir.join("lambda.toml"),
            format!(
                "[runtimes]\npython = {:?}\n\
                 [functions.Payments.environment]\nMARK_DIR = {marks:?}\n\
                 [functions.Fails.environment]\nMARK_DIR = {marks:?}\n\
                 [functions.Private.environment]\nMARK_DIR = {marks:?}\n",
                python.display().to_string()
            ),
        )
        .unwrap();
        write_private(
            &host_dir.join("credentials.toml"),
            &format!(
                r#"
[[credential]]
access_key_id = "{KEY_ID}"
secret_access_key = "{SECRET}"
principal = "{GATEWAY_PRINCIPAL}"
policies = ['{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":["arn:aws:lambda:us-east-1:123456789012:function:Payments","arn:aws:lambda:us-east-1:123456789012:function:Fails"]}}]}}']
"#
            ),
        );
        let host = lambda::Host::start(&host_dir);

        // The gateway, one route per hosted function, all for the destination payments.
        common::gateway::token(&server, &dir, &[]);
        let (gateway_ca, cert, key) = common::localhost_certificate(&dir, "gateway");
        let route = |name: &str, function: &str| {
            format!(
                r#"
[[route]]
name = "{name}"
function = "payments"
path_prefix = "/{name}"
auth = ["mtls", "jwt"]
timeout = "20s"
lambda = {{ function = "{function}", region = "us-east-1", endpoint = "http://127.0.0.1:{port}" }}
"#,
                port = host.port()
            )
        };
        let config = common::gateway::config_head(&server, &cert, &key)
            + &route("payments", "Payments")
            + &route("fails", "Fails")
            + &route("private", "Private");
        std::fs::write(dir.join("gateway.toml"), config).unwrap();
        let mut cmd = common::writ_command();
        cmd.args(["gateway", "--config"])
            .arg(dir.join("gateway.toml"))
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET);
        let gateway = Gateway::start(cmd, &dir, gateway_ca);
        Env {
            dir,
            server,
            host,
            gateway,
        }
    }

    /// How many invocations reached a handler.
    fn handled(&self) -> usize {
        std::fs::read_dir(self.host.dir.join("marks"))
            .unwrap()
            .count()
    }
}

#[test]
fn the_gateway_invokes_functions_hosted_by_writ_lambda_as_the_verified_caller() {
    let env = Env::new();
    let orders = common::gateway::login(&env.server, &env.dir, "orders");
    // Ready once the gateway has the intentions (the first call also starts Payments'
    // runtime: a cold start).
    wait_for("the gateway to sync", Duration::from_secs(30), || {
        let r = env.gateway.as_caller(&orders, "GET", "/payments").send();
        (r.status == 200).then_some(())
    });

    // Allowed by the intention, over mTLS: the handler's answer, with the verified caller
    // in the payload 2.0 event's requestContext.authorizer.
    let r = env
        .gateway
        .as_caller(&orders, "POST", "/payments/charge?currency=eur")
        .json(&json!({"amount": 5}))
        .send()
        .expect(200);
    assert_eq!(r.headers["x-handled-by"][0], "Payments");
    let answer = r.json();
    assert_eq!(answer["function"], "Payments");
    let event = &answer["event"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/payments/charge");
    assert_eq!(event["queryStringParameters"], json!({"currency": "eur"}));
    assert_eq!(event["body"], r#"{"amount":5}"#);
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(
        event["requestContext"]["authorizer"],
        json!({"writ": {"principal": format!("spiffe://{TRUST_DOMAIN}/fn/orders"),
                        "authenticatedBy": "mtls", "route": "payments"}})
    );
    assert_eq!(
        event["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );

    // Allowed, with a JWT-SVID: the function sees who called, never the token.
    let jwt = orders
        .mint_jwt(&env.server, &format!("spiffe://{TRUST_DOMAIN}/fn/payments"))
        .expect(200)
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = env
        .gateway
        .curl("GET", "/payments/status")
        .bearer(&jwt)
        .send()
        .expect(200)
        .json();
    let event = &answer["event"];
    assert_eq!(
        event["requestContext"]["authorizer"]["writ"],
        json!({"principal": format!("spiffe://{TRUST_DOMAIN}/fn/orders"),
               "authenticatedBy": "jwt", "route": "payments"})
    );
    assert!(event["headers"].get("authorization").is_none(), "{event}");
    assert!(
        !answer.to_string().contains(&jwt),
        "the token reached the function"
    );

    // Every invocation the host saw so far came from the gateway's key and was allowed.
    let audit = env.host.audit();
    assert!(!audit.is_empty());
    for e in &audit {
        assert_eq!(e["principal"], GATEWAY_PRINCIPAL, "{e}");
        assert_eq!(e["accessKeyId"], KEY_ID, "{e}");
        assert_eq!(e["outcome"], "allowed", "{e}");
    }

    // Denied by an intention: 403 from the gateway, and the host never hears of it.
    let stranger = common::gateway::login(&env.server, &env.dir, "stranger");
    let (decisions, handled) = (env.host.audit().len(), env.handled());
    let r = env
        .gateway
        .as_caller(&stranger, "POST", "/payments/charge")
        .json(&json!({"amount": 1}))
        .send()
        .expect(403);
    assert_eq!(r.error_code(), "accessDenied", "{}", r.body);
    assert!(
        r.error_message().contains("denied by intention"),
        "{}",
        r.body
    );
    env.server.wait_for_audit("the gateway's deny", |e| {
        e["action"] == "writ:Invoke"
            && e["actor"] == stranger.spiffe_id.as_str()
            && e["decision"] == "explicitDeny"
    });
    assert_eq!(env.host.audit().len(), decisions, "the host was asked");
    assert_eq!(env.handled(), handled, "the function was invoked");

    // The handler raises: 502 naming the function error, without its message; the host
    // ran it (an allowed invocation), the gateway's audit names the error type.
    let r = env
        .gateway
        .as_caller(&orders, "GET", "/fails")
        .send()
        .expect(502);
    assert_eq!(r.error_code(), "functionError", "{}", r.body);
    assert_eq!(r.error_message(), "the function failed");
    assert!(!r.body.contains("hunter2"), "{}", r.body);
    assert_eq!(env.handled(), handled + 1);
    let audited = env.server.wait_for_audit("the function error", |e| {
        e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("function error ValueError"))
    });
    assert!(!audited.to_string().contains("hunter2"), "{audited}");
    assert!(env.host.audit().iter().any(|e| e["resource"]
        == "arn:aws:lambda:us-east-1:123456789012:function:Fails"
        && e["outcome"] == "allowed"));

    // The host's policy does not let the gateway's key invoke Private: the host refuses
    // (an implicit deny in its audit file), the gateway answers 502 naming the refusal,
    // and the function never runs.
    let r = env
        .gateway
        .as_caller(&orders, "GET", "/private")
        .send()
        .expect(502);
    assert_eq!(r.error_code(), "upstreamFailed", "{}", r.body);
    assert!(
        r.error_message().contains("AccessDeniedException"),
        "{}",
        r.body
    );
    assert_eq!(env.handled(), handled + 1);
    let refused: Vec<Value> = env
        .host
        .audit()
        .into_iter()
        .filter(|e| e["resource"] == "arn:aws:lambda:us-east-1:123456789012:function:Private")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["outcome"], "implicitDeny");
    assert_eq!(refused[0]["principal"], GATEWAY_PRINCIPAL);

    // The secret key signed every invocation and is nowhere in a log or audit file.
    let logs = [
        env.gateway.proc.log(),
        env.host.log(),
        std::fs::read_to_string(env.host.dir.join("data/lambda-audit.jsonl")).unwrap(),
    ];
    for log in logs {
        assert!(!log.contains(SECRET), "the secret key in a log:\n{log}");
        assert!(!log.contains(&jwt), "a JWT-SVID in a log:\n{log}");
    }
}
