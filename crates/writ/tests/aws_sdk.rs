//! AWS SDK code runs unchanged against writ: botocore's web identity provider exchanges a
//! function's JWT-SVID for writ credentials at writ's STS, and boto3, the AWS CLI and
//! aws-lambda-powertools read secrets and parameters through writ's Secrets Manager and
//! SSM APIs, decided by writ's policies. Refusals are AWS's errors.
//!
//! `aws_sdk.py` holds the client code. It needs a Python with boto3, awscli and
//! aws-lambda-powertools: `$WRIT_TEST_PYTHON`, by default `~/.cache/writ/venv/bin/python`
//! (with `aws` beside it), which `.ci/run` creates.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, Svid, TRUST_DOMAIN, TempDir, join_token_evidence, run, success};
use serde_json::{Value, json};

fn python() -> PathBuf {
    let python = std::env::var_os("WRIT_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/writ/venv/bin/python")
        });
    if !python.exists() {
        panic!(
            "this test needs a Python with boto3, awscli and aws-lambda-powertools, and {} \
             does not exist.\nInstall it as .ci/run does:\n  \
             python3 -m venv ~/.cache/writ/venv && ~/.cache/writ/venv/bin/pip install boto3 \
             awscli aws-lambda-powertools\nor point WRIT_TEST_PYTHON at a Python that has them.",
            python.display()
        );
    }
    python
}

/// The AWS CLI beside the Python.
fn aws_cli() -> PathBuf {
    let cli = python().with_file_name("aws");
    assert!(
        cli.exists(),
        "this test needs the AWS CLI beside {}: pip install awscli",
        python().display()
    );
    cli
}

/// A server, a function `orders` allowed the prod secrets, a function `billing` allowed
/// nothing, and the secrets of the seed article.
struct Env {
    dir: TempDir,
    server: Server,
}

const ORDERS_DB: &str =
    r#"{"host": "db.internal", "username": "orders", "password": "s3cr3t-from-writ"}"#;
const API_ENDPOINT: &str = "https://api.internal/orders";

impl Env {
    fn new() -> Env {
        let dir = TempDir::new("aws-sdk");
        let server = Server::start(&dir.join("data"), &["--trust-domain", TRUST_DOMAIN]);
        let policy = dir.join("orders-policy.json");
        std::fs::write(
            &policy,
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow",
                 "Action": ["secrets:GetSecretValue", "secrets:DescribeSecret",
                            "secrets:CreateSecret", "secrets:PutSecretValue",
                            "secrets:DeleteSecret", "secrets:RestoreSecret",
                            "secrets:PutResourcePolicy", "secrets:RotateSecret"],
                 "Resource": "writ:secret/prod/*"},
                {"Effect": "Allow", "Action": "secrets:ListSecrets", "Resource": "writ:secrets"}
            ]})
            .to_string(),
        )
        .unwrap();
        server.cli_ok(&["fn", "register", "orders", "--policy", path(&policy)]);
        server.register("billing");
        let env = Env { dir, server };
        env.put("prod/orders-db", ORDERS_DB);
        env.put("prod/orders/api-endpoint", API_ENDPOINT);
        env
    }

    fn put(&self, name: &str, value: &str) {
        let file = self.dir.unique_file("value", "txt");
        std::fs::write(&file, value).unwrap();
        self.server
            .cli_ok(&["secret", "put", name, "--value-file", path(&file)]);
    }

    /// A JWT-SVID for the server, minted by `function` over mTLS, in a file.
    fn token_file(&self, function: &str) -> PathBuf {
        let token = self.server.join_token(function);
        let svid = Svid::login(
            &self.server,
            &self.dir,
            function,
            join_token_evidence(&token),
        )
        .unwrap_or_else(|r| panic!("login {function}: HTTP {} {}", r.status, r.body));
        let minted = svid
            .mint_jwt(
                &self.server,
                &format!("spiffe://{TRUST_DOMAIN}/writ/server"),
            )
            .expect(200)
            .json();
        let file = self.dir.unique_file("web-identity-token", "jwt");
        std::fs::write(&file, minted["token"].as_str().unwrap()).unwrap();
        file
    }

    /// The environment an AWS SDK reads: web identity credentials for `function`, every
    /// endpoint at writ, writ's CA.
    fn sdk_env(&self, cmd: &mut Command, function: &str) {
        clean_aws_env(cmd);
        cmd.env("AWS_WEB_IDENTITY_TOKEN_FILE", self.token_file(function))
            .env(
                "AWS_ROLE_ARN",
                format!("arn:aws:iam::000000000000:role/{function}"),
            )
            .env("AWS_ROLE_SESSION_NAME", format!("{function}-test"));
        self.endpoints(cmd);
    }

    fn endpoints(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", self.server.addr())
            .env("AWS_CA_BUNDLE", self.server.ca_file())
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_DEFAULT_REGION", "eu-west-1");
    }

    /// Runs `aws_sdk.py ARGS` as `function`; returns its JSON.
    fn sdk(&self, function: &str, args: &[&str]) -> Value {
        let mut cmd = Command::new(python());
        cmd.arg(script()).args(args);
        self.sdk_env(&mut cmd, function);
        let out = success(&format!("aws_sdk.py {}", args.join(" ")), &run(&mut cmd));
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("aws_sdk.py: {e}: {out}"))
    }
}

/// No AWS setting of the caller's environment reaches the SDK.
fn clean_aws_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_sdk.py")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn the_seed_articles_boto3_code_reads_writ_secrets_with_web_identity_credentials() {
    let env = Env::new();
    let got = env.sdk("orders", &["article"]);
    assert_eq!(got["host"], "db.internal");
    assert_eq!(got["user"], "orders");
    assert_eq!(got["password"], "s3cr3t-from-writ");
    assert_eq!(got["api_endpoint"], API_ENDPOINT);
    assert_eq!(got["ssm_calls"], 1);
    // Each issue of credentials and each read is on record, by the function.
    let fn_id = format!("spiffe://{TRUST_DOMAIN}/fn/orders");
    let issued = env.server.wait_for_audit("the credentials' issue", |e| {
        e["action"] == "sts:AssumeRoleWithWebIdentity" && e["outcome"] == "allowed"
    });
    assert_eq!(issued["actor"], fn_id.as_str());
    assert_eq!(issued["resource"], "arn:aws:iam::000000000000:role/orders");
    let read = env.server.wait_for_audit("the secret's read", |e| {
        e["action"] == "secrets:GetSecretValue" && e["resource"] == "writ:secret/prod/orders-db"
    });
    assert_eq!(read["actor"], fn_id.as_str());
    assert_eq!(read["authenticatedBy"], "awsSigV4");
    // Neither the value nor the credentials' secrets are in the log or the audit trail.
    let trail = serde_json::to_string(&env.server.audit_events()).unwrap();
    for text in [&trail, &env.server.log()] {
        assert!(!text.contains("s3cr3t-from-writ"));
        assert!(!text.contains("writ.sts."));
    }
}

#[test]
fn boto3_speaks_secrets_manager_and_ssm_to_writ() {
    let env = Env::new();
    let out = env.sdk("orders", &["boto3"]);
    let identity = &out["identity"];
    assert_eq!(
        identity["Arn"],
        "arn:aws:sts::000000000000:assumed-role/orders/orders-test"
    );
    assert_eq!(identity["Account"], "000000000000");
    assert!(
        identity["UserId"]
            .as_str()
            .unwrap()
            .ends_with(":orders-test")
    );
    let arn = out["get"]["ARN"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:eu-west-1:000000000000:secret:prod/orders-db-"),
        "{arn}"
    );
    assert_eq!(
        arn.len(),
        "arn:aws:secretsmanager:eu-west-1:000000000000:secret:prod/orders-db-".len() + 6
    );
    assert_eq!(out["get"]["SecretString"], ORDERS_DB);
    assert_eq!(out["get"]["VersionStages"], json!(["AWSCURRENT"]));
    assert_eq!(out["get_by_arn"], ORDERS_DB);
    assert_eq!(out["created"]["Name"], "prod/orders-token");
    assert_eq!(out["put"]["VersionStages"], json!(["AWSCURRENT"]));
    assert_eq!(out["after_put"], "t1");
    assert_eq!(out["previous"], "t0");
    assert_eq!(out["binary"], json!([255, 0, 254]));
    assert_eq!(out["described"]["Description"], "made by boto3");
    assert_eq!(
        out["described"]["Tags"],
        json!([{"Key": "team", "Value": "orders"}])
    );
    assert_eq!(
        out["described"]["Stages"],
        json!(["AWSCURRENT", "AWSPREVIOUS"])
    );
    assert_eq!(out["described"]["has_dates"], true);
    assert_eq!(out["after_stage_move"], "t0");
    assert_eq!(
        out["listed"],
        json!([
            "prod/orders-cert",
            "prod/orders-db",
            "prod/orders-token",
            "prod/orders/api-endpoint"
        ])
    );
    assert_eq!(out["batch"], json!(["prod/orders-db", "prod/orders-token"]));
    assert_eq!(out["by_version"], "t1");
    assert_eq!(
        out["policy"]["Statement"][0]["Principal"]["SPIFFE"],
        format!("spiffe://{TRUST_DOMAIN}/fn/billing")
    );
    assert_eq!(
        out["deleted"],
        json!({"Name": "prod/orders-cert", "has_date": true})
    );
    assert_eq!(out["while_deleted"]["code"], "ResourceNotFoundException");
    assert_eq!(out["restored"], json!([255, 0, 254]));
    for (refused, names) in [
        ("force_delete", "ForceDeleteWithoutRecovery"),
        ("rotate_lambda", "RotationLambdaARN"),
        ("rotate_without_hook", "hook"),
        ("kms_key", "KmsKeyId"),
    ] {
        assert_eq!(
            out[refused]["code"], "InvalidParameterException",
            "{refused}: {}",
            out[refused]
        );
        assert!(
            out[refused]["message"].as_str().unwrap().contains(names),
            "{refused}: {}",
            out[refused]
        );
    }
    assert_eq!(out["missing"]["code"], "ResourceNotFoundException");
    assert_eq!(out["exists"]["code"], "ResourceExistsException");
    assert_eq!(out["put_parameter"], 1);
    assert_eq!(out["overwrite"], 2);
    assert_eq!(
        out["parameter"],
        json!({"Name": "/prod/orders/region", "Type": "String", "Value": "eu-central-1",
               "Version": 2, "ARN": "arn:aws:ssm:eu-west-1:000000000000:parameter/prod/orders/region"})
    );
    assert_eq!(out["parameters"]["found"], json!(["/prod/orders/region"]));
    assert_eq!(out["parameters"]["invalid"], json!(["/prod/orders/none"]));
    assert_eq!(
        out["by_path"],
        json!([
            ["/prod/orders/api-endpoint", API_ENDPOINT],
            ["/prod/orders/region", "eu-central-1"]
        ])
    );
    assert_eq!(out["no_decryption"]["code"], "ValidationException");
    assert!(
        out["no_decryption"]["message"]
            .as_str()
            .unwrap()
            .contains("WithDecryption")
    );
    assert_eq!(out["string_list"]["code"], "ValidationException");
    assert_eq!(out["parameter_exists"]["code"], "ParameterAlreadyExists");
}

#[test]
fn the_aws_cli_reads_a_secret_and_a_parameter_from_writ() {
    let env = Env::new();
    let cli = |args: &[&str]| -> Value {
        let mut cmd = Command::new(aws_cli());
        cmd.args(args)
            .args(["--endpoint-url", &env.server.addr(), "--output", "json"]);
        env.sdk_env(&mut cmd, "orders");
        let out = success(&format!("aws {}", args.join(" ")), &run(&mut cmd));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws: {e}: {out}"))
    };
    let secret = cli(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "prod/orders-db",
    ]);
    assert_eq!(secret["SecretString"], ORDERS_DB);
    assert_eq!(secret["Name"], "prod/orders-db");
    let parameter = cli(&[
        "ssm",
        "get-parameter",
        "--name",
        "/prod/orders/api-endpoint",
        "--with-decryption",
    ]);
    assert_eq!(parameter["Parameter"]["Value"], API_ENDPOINT);
    assert_eq!(parameter["Parameter"]["Type"], "SecureString");
}

#[test]
fn aws_lambda_powertools_parameters_read_through_writ() {
    let env = Env::new();
    let out = env.sdk("orders", &["powertools"]);
    assert_eq!(out["secret"], "orders");
    assert_eq!(out["parameter"], API_ENDPOINT);
}

/// Every operation of the table, each with AWS's refusal `code` (HTTP `status`).
fn assert_walk(got: &Value, code: &str, status: u64, why: &str) {
    for op in writ_server::aws::dispatch::OPERATIONS {
        let key = format!("{}.{}", op.service.signing_name(), op.name);
        let r = &got[&key];
        assert_eq!(r["code"], code, "{key} {why}: {r}");
        assert_eq!(r["status"], status, "{key} {why}: {r}");
    }
}

#[test]
fn every_operation_refuses_an_unsigned_request() {
    let env = Env::new();
    let got = env.sdk("orders", &["walk", "unsigned"]);
    assert_walk(&got, "MissingAuthenticationTokenException", 403, "unsigned");
}

#[test]
fn every_operation_refuses_a_tampered_signature() {
    let env = Env::new();
    let got = env.sdk("orders", &["walk", "tampered"]);
    assert_walk(&got, "InvalidSignatureException", 403, "tampered");
    env.server.wait_for_audit("a refused signature", |e| {
        e["authenticatedBy"] == "awsSigV4"
            && e["outcome"] == "denied"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("does not match"))
    });
}

#[test]
fn every_operation_refuses_a_function_its_policies_do_not_allow() {
    let env = Env::new();
    let got = env.sdk("billing", &["walk", "denied"]);
    assert_walk(&got, "AccessDeniedException", 400, "not allowed");
    let message = got["secretsmanager.GetSecretValue"]["message"]
        .as_str()
        .unwrap();
    // The message names the AWS action and writ's action and resource.
    for part in [
        "secretsmanager:GetSecretValue",
        "secrets:GetSecretValue",
        "writ:secret/prod/orders-db",
    ] {
        assert!(message.contains(part), "{message}");
    }
    let denied = env.server.wait_for_audit("the denial", |e| {
        e["action"] == "secrets:GetSecretValue" && e["outcome"] == "denied"
    });
    assert_eq!(
        denied["actor"],
        format!("spiffe://{TRUST_DOMAIN}/fn/billing")
    );
}

#[test]
fn sts_refuses_another_functions_role_and_a_foreign_token() {
    let env = Env::new();
    let token = std::fs::read_to_string(env.token_file("billing")).unwrap();
    let assume = |role: &str, token: &str| {
        env.server
            .curl("POST", "/")
            .body(
                format!(
                    "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&\
                     RoleSessionName=s1&WebIdentityToken={token}",
                    role.replace(':', "%3A").replace('/', "%2F")
                ),
                "application/x-www-form-urlencoded",
            )
            .send()
    };
    let r = assume("arn:aws:iam::000000000000:role/orders", &token);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("<Code>AccessDenied</Code>"), "{}", r.body);
    env.server.wait_for_audit("the refused role", |e| {
        e["action"] == "sts:AssumeRoleWithWebIdentity"
            && e["outcome"] == "denied"
            && e["resource"] == "arn:aws:iam::000000000000:role/orders"
    });
    let r = assume(
        "arn:aws:iam::000000000000:role/billing",
        "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("<Code>InvalidIdentityToken</Code>"),
        "{}",
        r.body
    );
    let r = assume("arn:aws:iam::000000000000:role/billing", &token);
    assert_eq!(r.status, 200, "{}", r.body);
    for part in [
        "<AccessKeyId>ASIA",
        "<SessionToken>writ.sts.",
        "<Arn>arn:aws:sts::000000000000:assumed-role/billing/s1</Arn>",
        &format!(
            "<SubjectFromWebIdentityToken>spiffe://{TRUST_DOMAIN}/fn/billing</SubjectFromWebIdentityToken>"
        ),
    ] {
        assert!(r.body.contains(part), "{part}: {}", r.body);
    }
}

#[test]
fn a_revoked_functions_credentials_stop_working_and_gateways_get_scoped_keys() {
    let env = Env::new();
    let creds = env.sdk("orders", &["credentials"]);
    let with = |creds: &Value| -> Value {
        let mut cmd = Command::new(python());
        cmd.arg(script())
            .args(["with-credentials", "prod/orders-db"]);
        clean_aws_env(&mut cmd);
        env.endpoints(&mut cmd);
        cmd.env(
            "AWS_ACCESS_KEY_ID",
            creds["access_key_id"].as_str().unwrap(),
        )
        .env("AWS_SECRET_ACCESS_KEY", creds["secret"].as_str().unwrap())
        .env("AWS_SESSION_TOKEN", creds["token"].as_str().unwrap());
        let out = success("with-credentials", &run(&mut cmd));
        serde_json::from_str(out.trim()).unwrap()
    };
    assert_eq!(with(&creds)["value"], ORDERS_DB);

    // A gateway (an operator's token) gets the signing key of one scope, not the secret.
    let ask = |akid: &str| {
        env.server
            .curl("POST", "/v1/aws/signing-key")
            .bearer(&env.server.admin_token())
            .json(&json!({
                "accessKeyId": akid,
                "sessionToken": creds["token"],
                "date": today(),
                "region": "eu-west-1",
                "service": "secretsmanager",
            }))
            .send()
    };
    let key = ask(creds["access_key_id"].as_str().unwrap())
        .expect(200)
        .json();
    assert_eq!(key["function"], "orders");
    assert_eq!(
        key["spiffeId"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );
    assert_eq!(
        key["signingKey"].as_str().unwrap(),
        signing_key(
            creds["secret"].as_str().unwrap(),
            &today(),
            "eu-west-1",
            "secretsmanager"
        )
    );
    let wrong = ask("ASIAAAAAAAAAAAAAAAAA").expect(403);
    assert_eq!(wrong.error_code(), "accessDenied");

    env.server.cli_ok(&["revoke", "--fn", "orders"]);
    common::wait_for(
        "the revocation to reach the credentials",
        common::PATIENCE,
        || {
            let r = with(&creds);
            (r["error"]["code"] == "UnrecognizedClientException").then_some(())
        },
    );
    ask(creds["access_key_id"].as_str().unwrap()).expect(403);
    env.server
        .wait_for_audit("the revoked credentials' refusal", |e| {
            e["authenticatedBy"] == "awsSigV4"
                && e["outcome"] == "denied"
                && e["reason"].as_str().is_some_and(|r| r.contains("revoked"))
        });
}

/// Today's date, `YYYYMMDD`, in UTC.
fn today() -> String {
    let out = success("date", &run(Command::new("date").args(["-u", "+%Y%m%d"])));
    out.trim().to_string()
}

/// SigV4's signing key, computed as AWS documents it.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> String {
    use ring::hmac;
    let step = |key: &[u8], data: &str| {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
            .as_ref()
            .to_vec()
    };
    let k = step(format!("AWS4{secret}").as_bytes(), date);
    let k = step(&k, region);
    let k = step(&k, service);
    let k = step(&k, "aws4_request");
    k.iter().map(|b| format!("{b:02x}")).collect()
}

/// A gateway in front of `payments`, whose route takes SigV4 signatures made with writ
/// credentials (`auth = ["aws-iam"]`), forwarding to an echo upstream; and its port.
fn gateway_for_payments(env: &Env) -> (common::gateway::Gateway, common::Proc) {
    common::gateway::token(
        &env.server,
        &env.dir,
        &[json!({"Effect": "Allow", "Action": "writ:DeriveAwsSigningKey", "Resource": "*"})],
    );
    let (upstream, up_port) = common::echo_upstream(&env.dir);
    let (gateway_ca, cert, key) = common::localhost_certificate(&env.dir, "gateway");
    std::fs::write(
        env.dir.join("gateway.toml"),
        format!(
            r#"{}
[[route]]
name = "payments"
function = "payments"
path_prefix = "/pay"
upstream = "http://127.0.0.1:{up_port}"
auth = ["aws-iam"]
aws_iam = {{ service = "lambda", region = "eu-west-1" }}
"#,
            common::gateway::config_head(&env.server, &cert, &key)
        ),
    )
    .unwrap();
    let mut cmd = common::writ_command();
    cmd.args(["gateway", "--config"])
        .arg(env.dir.join("gateway.toml"));
    (
        common::gateway::Gateway::start(cmd, &env.dir, gateway_ca),
        upstream,
    )
}

/// `curl` of a POST of `body` to `url` with `headers`, trusting `ca`: the status and body.
fn curl_post(url: &str, ca: &Path, headers: &[(String, String)], body: &str) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        "POST",
        "--cacert",
    ])
    .arg(ca)
    .args(["--data-binary", body]);
    for (n, v) in headers {
        cmd.args(["-H", &format!("{n}: {v}")]);
    }
    let out = run(cmd.arg(url));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The headers of a POST of `body` to `/pay/charge` on `host`, signed by writ-sigv4 (this
/// repository's signer, checked against AWS's suite) with `creds` at `at`, service lambda.
fn signed_headers(
    host: &str,
    body: &str,
    creds: &writ_sigv4::Credentials,
    at: time::OffsetDateTime,
) -> Vec<(String, String)> {
    signed_headers_with(host, body, creds, at, false)
}

/// [`signed_headers`], with the body left out of the signature (`UNSIGNED-PAYLOAD`) when
/// `unsigned`.
fn signed_headers_with(
    host: &str,
    body: &str,
    creds: &writ_sigv4::Credentials,
    at: time::OffsetDateTime,
    unsigned: bool,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("host".to_string(), host.to_string()),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let view: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = writ_sigv4::SignableRequest::new(
        "POST",
        "/pay/charge",
        "",
        &view,
        if unsigned {
            writ_sigv4::Payload::Unsigned
        } else {
            writ_sigv4::Payload::Bytes(body.as_bytes())
        },
    );
    let signed = writ_sigv4::sign_headers(
        &request,
        &writ_sigv4::SigningParams::new(creds, "eu-west-1", "lambda", at),
    )
    .unwrap();
    headers.extend(signed.headers.into_iter().map(|(n, v)| (n.to_string(), v)));
    headers
}

#[test]
fn the_gateway_takes_calls_signed_with_writ_credentials_as_the_function_that_signed() {
    let env = Env::new();
    env.server.register("payments");
    env.server
        .cli_ok(&["intention", "allow", "orders", "payments"]);
    let (gateway, _upstream) = gateway_for_payments(&env);
    let (port, gateway_ca) = (gateway.port, gateway.ca.clone());
    let url = format!("https://127.0.0.1:{port}/pay/charge");
    let orders = env.sdk("orders", &["credentials"]);
    let billing = env.sdk("billing", &["credentials"]);
    let with_static = |cmd: &mut Command, creds: &Value| {
        clean_aws_env(cmd);
        cmd.env(
            "AWS_ACCESS_KEY_ID",
            creds["access_key_id"].as_str().unwrap(),
        )
        .env("AWS_SECRET_ACCESS_KEY", creds["secret"].as_str().unwrap())
        .env("AWS_SESSION_TOKEN", creds["token"].as_str().unwrap())
        .env("AWS_REGION", "eu-west-1")
        .env("GATEWAY_CA", &gateway_ca)
        .env("REQUESTS_CA_BUNDLE", &gateway_ca);
    };
    let botocore_call = |creds: &Value| -> Value {
        let mut cmd = Command::new(python());
        cmd.arg(script())
            .args(["sigv4-call", &url, r#"{"amount": 1}"#]);
        with_static(&mut cmd, creds);
        let out = success("aws_sdk.py sigv4-call", &run(&mut cmd));
        serde_json::from_str(out.trim()).unwrap()
    };

    // A request botocore signed, as a caller of a function URL with AWS_IAM signs it: the
    // upstream sees the function that signed, and none of the credentials.
    let answered = common::wait_for("the gateway to sync", common::PATIENCE, || {
        let r = botocore_call(&orders);
        (r["status"] == 200).then_some(r)
    });
    let seen = &answered["body"]["headers"];
    assert_eq!(
        seen["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );
    assert_eq!(seen["x-writ-authenticated-by"], "aws-iam");
    assert!(seen.get("authorization").is_none(), "{seen}");
    assert!(seen.get("x-amz-security-token").is_none(), "{seen}");

    // awscurl, unchanged.
    let mut cmd = Command::new(python().with_file_name("awscurl"));
    cmd.args([
        "--service",
        "lambda",
        "--region",
        "eu-west-1",
        "-X",
        "POST",
        "-d",
        r#"{"amount": 2}"#,
        &url,
    ]);
    with_static(&mut cmd, &orders);
    let out = success("awscurl", &run(&mut cmd));
    let seen: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        seen["headers"]["x-writ-caller"],
        format!("spiffe://{TRUST_DOMAIN}/fn/orders")
    );

    // billing's own credentials verify, and no intention lets billing call payments.
    let denied = botocore_call(&billing);
    assert_eq!(denied["status"], 403, "{denied}");
    // Credentials fall with the X.509-SVID they were issued for: revoking its serial
    // reaches the gateway's kept signing key through the revocation feed.
    let access_key = billing["access_key_id"].as_str().unwrap().to_string();
    let issued = env
        .server
        .wait_for_audit("billing's credentials issued", |e| {
            e["action"] == "sts:AssumeRoleWithWebIdentity"
                && e["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(&access_key))
        });
    let serial = issued["serial"]
        .as_str()
        .expect("the SVID serial")
        .to_string();
    env.server.cli_ok(&["revoke", "--serial", &serial]);
    common::wait_for(
        "the serial's revocation to reach the gateway",
        common::PATIENCE,
        || (botocore_call(&billing)["status"] == 401).then_some(()),
    );

    // Forgeries: another secret key, a body changed after signing, a stale date.
    let host = format!("127.0.0.1:{port}");
    let body = r#"{"amount": 3}"#;
    let now = time::OffsetDateTime::now_utc();
    let creds = |secret: &str| {
        writ_sigv4::Credentials::new(orders["access_key_id"].as_str().unwrap(), secret)
            .with_session_token(orders["token"].as_str().unwrap())
    };
    let real = creds(orders["secret"].as_str().unwrap());
    let (status, answer) = curl_post(
        &url,
        &gateway_ca,
        &signed_headers(&host, body, &real, now),
        body,
    );
    assert_eq!(
        status, 200,
        "the same request, signed here, passes: {answer}"
    );
    let forged = creds("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let (status, answer) = curl_post(
        &url,
        &gateway_ca,
        &signed_headers(&host, body, &forged, now),
        body,
    );
    assert_eq!(status, 401, "another key: {answer}");
    let (status, answer) = curl_post(
        &url,
        &gateway_ca,
        &signed_headers(&host, body, &real, now),
        r#"{"amount": 3000}"#,
    );
    assert_eq!(status, 401, "a tampered body: {answer}");
    // A body the signature leaves out (UNSIGNED-PAYLOAD) could be anything: refused.
    let (status, answer) = curl_post(
        &url,
        &gateway_ca,
        &signed_headers_with(&host, body, &real, now, true),
        r#"{"amount": 3000}"#,
    );
    assert_eq!(status, 401, "an unsigned body: {answer}");
    let stale = now - time::Duration::minutes(10);
    let (status, answer) = curl_post(
        &url,
        &gateway_ca,
        &signed_headers(&host, body, &real, stale),
        body,
    );
    assert_eq!(status, 401, "a stale date: {answer}");
    let refusals = |needle: &str| {
        env.server
            .audit_events()
            .iter()
            .filter(|e| {
                e["resource"] == "writ:fn/payments"
                    && e["outcome"] == "denied"
                    && e["reason"].as_str().is_some_and(|r| r.contains(needle))
            })
            .count()
    };
    common::wait_for(
        "the gateway's refusals in the audit log",
        common::PATIENCE,
        || {
            (refusals("does not match the request") >= 2
                && refusals("behind the server's clock") == 1)
                .then_some(())
        },
    );
    env.server.wait_for_audit("the allowed call", |e| {
        e["authenticatedBy"] == "aws-iam"
            && e["actor"] == format!("spiffe://{TRUST_DOMAIN}/fn/orders")
            && e["outcome"] == "allowed"
    });

    // Revoked with their function: the gateway asks the server again, which refuses.
    env.server.cli_ok(&["revoke", "--fn", "orders"]);
    common::wait_for(
        "the revocation to reach the gateway",
        common::PATIENCE,
        || {
            let r = botocore_call(&orders);
            (r["status"] == 401).then_some(())
        },
    );
}

#[test]
fn the_agent_serves_writ_credentials_to_aws_sdks_as_a_container_credentials_endpoint() {
    const CALLER: &str = "caller-token-of-the-function";
    let env = Env::new();
    let mut agent = common::writ_command();
    agent
        .args([
            "agent",
            "--function",
            "orders",
            "--server",
            &env.server.addr(),
            "--ca-file",
            path(&env.server.ca_file()),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("WRIT_JOIN_TOKEN", env.server.join_token("orders"))
        .env("AWS_SESSION_TOKEN", CALLER);
    let (_agent, port) =
        common::start_until_port(agent, &env.dir, "agent", "writ: agent ready in ");
    let uri = format!("http://127.0.0.1:{port}/v1/aws/credentials");
    let sdk = |token: &str| {
        let mut cmd = Command::new(python());
        cmd.arg(script())
            .args(["with-credentials", "prod/orders-db"]);
        clean_aws_env(&mut cmd);
        env.endpoints(&mut cmd);
        cmd.env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri)
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", token);
        run(&mut cmd)
    };
    // boto3's own container credentials provider, unchanged: writ credentials for orders,
    // which read orders' secret through the Secrets Manager API.
    let out = success("boto3 with the agent's credentials", &sdk(CALLER));
    let read: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(read["value"], ORDERS_DB);
    env.server.wait_for_audit("the credentials' issue", |e| {
        e["action"] == "writ:GetAwsCredentials"
            && e["actor"] == format!("spiffe://{TRUST_DOMAIN}/fn/orders")
            && e["outcome"] == "allowed"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("access key ASIA"))
    });
    // A parameter, as the AWS extension serves it, read through the server's SSM API with
    // those credentials; one orders may not read is refused as the server refuses it.
    env.put("other/thing", "not for orders");
    let get = |query: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-w",
                "\n%{http_code}",
                "-H",
                &format!("X-Aws-Parameters-Secrets-Token: {CALLER}"),
            ])
            .arg(format!(
                "http://127.0.0.1:{port}/systemsmanager/parameters/get?{query}"
            ))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (
            code.to_string(),
            serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
        )
    };
    let (code, parameter) = get("name=%2Fprod%2Forders%2Fapi-endpoint&withDecryption=true");
    assert_eq!(code, "200", "{parameter}");
    assert_eq!(parameter["Parameter"]["Value"], API_ENDPOINT);
    assert_eq!(parameter["Parameter"]["Type"], "SecureString");
    let (code, denied) = get("name=%2Fother%2Fthing&withDecryption=true");
    assert_eq!(code, "400", "{denied}");
    assert_eq!(denied["__type"], "AccessDeniedException", "{denied}");

    // Without the caller token, no credentials.
    let refused = sdk("another-token");
    assert!(!refused.status.success());
    let answer = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", &uri])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&answer.stdout);
    assert!(text.ends_with("\n401"), "{text}");
}
