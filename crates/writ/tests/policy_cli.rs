//! `writ policy validate` and `writ policy simulate`, run as a user runs them: the real
//! binary, real files, exit codes and output checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn writ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run writ")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const ROLE: &str = "examples/policies/orders-role.json";
const EVERYTHING: &str = "examples/policies/allow-everything.json";
const INVOKE: &str = "examples/policies/orders-api-invoke.json";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789:table/orders";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789:function:orders-api";

fn simulate_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["policy", "simulate", "--format", "json"];
    all.extend_from_slice(args);
    let out = writ(&all);
    let code = out.status.code().expect("exit code");
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (code, doc)
}

// --- The seed's least-privilege execution role ---

#[test]
fn seed_role_allows_getitem_on_the_orders_table() {
    let (code, doc) = simulate_json(&[
        "--policy",
        ROLE,
        "--action",
        "dynamodb:GetItem",
        "--resource",
        TABLE,
    ]);
    assert_eq!(code, 0);
    assert_eq!(doc["decision"], "allowed");
    assert_eq!(doc["matched"][0]["sid"], "ReadSpecificDynamoTable");
    assert_eq!(doc["matched"][0]["policy"], ROLE);
    assert_eq!(doc["matched"][0]["policyType"], "identity");
}

#[test]
fn seed_role_implicitly_denies_deleteitem_and_s3() {
    for (action, resource) in [
        ("dynamodb:DeleteItem", TABLE),
        ("s3:GetObject", "arn:aws:s3:::orders-bucket/report.csv"),
    ] {
        let (code, doc) =
            simulate_json(&["--policy", ROLE, "--action", action, "--resource", resource]);
        assert_eq!(code, 2, "{action}");
        assert_eq!(doc["decision"], "implicitDeny", "{action}");
        assert_eq!(doc["matched"], serde_json::json!([]), "{action}");
        assert_eq!(doc["reason"], "noAllow", "{action}");
    }
}

#[test]
fn seed_role_allows_secrets_only_under_the_api_key_prefix() {
    let secret = |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789:secret:{name}");
    for (name, allowed) in [
        ("prod/orders-api-key-AbCdEf", true),
        ("prod/orders-api-key-", true),
        ("prod/orders-db-AbCdEf", false),
        ("staging/orders-api-key-AbCdEf", false),
    ] {
        let (code, doc) = simulate_json(&[
            "--policy",
            ROLE,
            "--action",
            "secretsmanager:GetSecretValue",
            "--resource",
            &secret(name),
        ]);
        assert_eq!(code == 0, allowed, "{name}: {doc}");
        if allowed {
            assert_eq!(doc["matched"][0]["sid"], "ReadSpecificSecret");
        }
    }
}

#[test]
fn actions_are_case_insensitive_resources_are_not() {
    let (code, _) = simulate_json(&[
        "--policy",
        ROLE,
        "--action",
        "DynamoDB:getitem",
        "--resource",
        TABLE,
    ]);
    assert_eq!(code, 0);
    let (code, _) = simulate_json(&[
        "--policy",
        ROLE,
        "--action",
        "dynamodb:GetItem",
        "--resource",
        &TABLE.replace("orders", "Orders"),
    ]);
    assert_eq!(code, 2);
}

#[test]
fn seed_wildcard_policy_allows_everything_and_validate_warns() {
    for (action, resource) in [
        ("dynamodb:DeleteItem", TABLE),
        ("iam:CreateUser", "arn:aws:iam::123456789:user/mallory"),
        ("s3:GetObject", "arn:aws:s3:::any/thing"),
    ] {
        let (code, doc) = simulate_json(&[
            "--policy",
            EVERYTHING,
            "--action",
            action,
            "--resource",
            resource,
        ]);
        assert_eq!(code, 0, "{action}");
        assert_eq!(doc["decision"], "allowed");
        assert_eq!(doc["warnings"][0]["diagnostic"]["code"], "allow-all");
    }
    let out = writ(&["policy", "validate", EVERYTHING]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning alone is not a failure"
    );
    let text = stdout(&out);
    assert!(
        text.contains("allow-everything.json:4:5: warning: Statement[0]: this statement allows every action on every resource"),
        "{text}"
    );
}

// --- The seed's resource-based policy and the confused deputy ---

#[test]
fn seed_resource_policy_allows_api_gateway_from_the_right_api() {
    let (code, doc) = simulate_json(&[
        "--resource-policy",
        INVOKE,
        "--principal",
        "apigateway.amazonaws.com",
        "--action",
        "lambda:InvokeFunction",
        "--resource",
        FUNCTION,
        "--context",
        "aws:SourceArn=arn:aws:execute-api:us-east-1:123456789:abc123/prod/POST/orders",
    ]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["matched"][0]["sid"], "AllowAPIGateway");
    assert_eq!(doc["matched"][0]["policyType"], "resource");
}

#[test]
fn seed_resource_policy_denies_another_accounts_api() {
    for source in [
        "arn:aws:execute-api:us-east-1:999999999999:abc123/prod/POST/orders",
        "arn:aws:execute-api:us-east-1:123456789:zzz999/prod/POST/orders",
    ] {
        let (code, doc) = simulate_json(&[
            "--resource-policy",
            INVOKE,
            "--principal",
            "apigateway.amazonaws.com",
            "--action",
            "lambda:InvokeFunction",
            "--resource",
            FUNCTION,
            "--context",
            &format!("aws:SourceArn={source}"),
        ]);
        assert_eq!(code, 2, "{source}");
        assert_eq!(doc["decision"], "implicitDeny");
        let st = &doc["statements"][0];
        assert_eq!(st["miss"]["element"], "condition");
        assert_eq!(st["miss"]["key"], "AWS:SourceArn");
    }
}

#[test]
fn seed_resource_policy_denies_without_source_arn_or_other_principal() {
    let base = [
        "--resource-policy",
        INVOKE,
        "--action",
        "lambda:InvokeFunction",
        "--resource",
        FUNCTION,
    ];
    let mut args = base.to_vec();
    args.extend(["--principal", "apigateway.amazonaws.com"]);
    let (code, doc) = simulate_json(&args);
    assert_eq!(code, 2);
    assert_eq!(doc["statements"][0]["miss"]["keyMissing"], true);

    let mut args = base.to_vec();
    args.extend([
        "--principal",
        "events.amazonaws.com",
        "--context",
        "aws:SourceArn=arn:aws:execute-api:us-east-1:123456789:abc123/prod/GET/",
    ]);
    let (code, doc) = simulate_json(&args);
    assert_eq!(code, 2);
    assert_eq!(doc["statements"][0]["miss"]["element"], "principal");
}

#[test]
fn text_output_explains_the_decision() {
    let out = writ(&[
        "policy",
        "simulate",
        "--resource-policy",
        INVOKE,
        "--principal",
        "apigateway.amazonaws.com",
        "--action",
        "lambda:InvokeFunction",
        "--resource",
        FUNCTION,
        "--context",
        "aws:SourceArn=arn:aws:execute-api:us-east-1:999999999999:abc123/prod/GET/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.starts_with("decision: implicitDeny\n"), "{text}");
    assert!(
        text.contains("Statement[0] (Sid \"AllowAPIGateway\") [Allow]: condition ArnLike on AWS:SourceArn does not hold for \"arn:aws:execute-api:us-east-1:999999999999:abc123/prod/GET/\""),
        "{text}"
    );
}

// --- Explicit deny, boundaries, typed context ---

fn temp_policy(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("writ-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write policy");
    path
}

#[test]
fn explicit_deny_wins_over_allow_everything() {
    let deny = temp_policy(
        "deny-outside-vpn.json",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"DenyOutsideVpn","Effect":"Deny",
            "Action":"*","Resource":"*",
            "Condition":{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}}]}"#,
    );
    let deny = deny.to_str().unwrap();
    let (code, doc) = simulate_json(&[
        "--policy",
        EVERYTHING,
        "--policy",
        deny,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
        "--context",
        "aws:SourceIp:ip=203.0.113.9",
    ]);
    assert_eq!(code, 2);
    assert_eq!(doc["decision"], "explicitDeny");
    assert_eq!(doc["matched"][0]["sid"], "DenyOutsideVpn");
    assert_eq!(doc["matched"][0]["effect"], "Deny");

    let (code, _) = simulate_json(&[
        "--policy",
        EVERYTHING,
        "--policy",
        deny,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
        "--context",
        "aws:SourceIp:ip=2001:db8::7",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn permissions_boundary_limits_identity_policies() {
    let boundary = temp_policy(
        "boundary.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"}]}"#,
    );
    let boundary = boundary.to_str().unwrap();
    let (code, _) = simulate_json(&[
        "--policy",
        EVERYTHING,
        "--boundary",
        boundary,
        "--action",
        "dynamodb:Query",
        "--resource",
        TABLE,
    ]);
    assert_eq!(code, 0);
    let (code, doc) = simulate_json(&[
        "--policy",
        EVERYTHING,
        "--boundary",
        boundary,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
    ]);
    assert_eq!(code, 2);
    assert_eq!(doc["reason"], "notInBoundary");
}

#[test]
fn typed_context_values_are_checked() {
    let out = writ(&[
        "policy",
        "simulate",
        "--policy",
        ROLE,
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
        "--context",
        "aws:SourceIp:ip=not-an-ip",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--context aws:SourceIp: \"not-an-ip\" is not a valid IP address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn context_cannot_override_keys_derived_from_the_principal() {
    let out = writ(&[
        "policy",
        "simulate",
        "--policy",
        ROLE,
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
        "--principal",
        "arn:aws:iam::123456789012:user/alice",
        "--context",
        "aws:username=bob",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--context aws:username: this key is derived from --principal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn spiffe_principals_and_time_conditions() {
    let policy = temp_policy(
        "payments-invoke.json",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"OrdersMayCharge","Effect":"Allow",
            "Principal":{"SPIFFE":"spiffe://example.org/fn/orders"},
            "Action":"writ:Invoke","Resource":"spiffe://example.org/fn/payments",
            "Condition":{"DateLessThan":{"aws:CurrentTime":"2999-01-01T00:00:00Z"},
                         "StringEquals":{"writ:Method":"POST"}}}]}"#,
    );
    let policy = policy.to_str().unwrap();
    let call = |who: &str, method: &str| {
        simulate_json(&[
            "--resource-policy",
            policy,
            "--principal",
            who,
            "--action",
            "writ:Invoke",
            "--resource",
            "spiffe://example.org/fn/payments",
            "--context",
            &format!("writ:Method={method}"),
        ])
        .0
    };
    assert_eq!(call("spiffe://example.org/fn/orders", "POST"), 0);
    assert_eq!(call("spiffe://example.org/fn/orders", "DELETE"), 2);
    assert_eq!(call("spiffe://example.org/fn/reports", "POST"), 2);
    assert_eq!(call("spiffe://other.org/fn/orders", "POST"), 2);
}

// --- Validation errors: what and where ---

#[test]
fn validate_names_line_column_and_path() {
    let out = writ(&["policy", "validate", "examples/policies/broken.json"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "broken.json:19:9: error: Statement[2].Condition: unknown operator \"StringLik\", did you mean \"StringLike\"? [unknown-operator]"
        ),
        "{text}"
    );
    assert!(
        text.contains("broken.json:15:7: error: Statement[2].Effect: unknown Effect \"Alow\", did you mean \"Allow\"?"),
        "{text}"
    );
}

#[test]
fn validate_json_output_and_mixed_results() {
    let out = writ(&[
        "policy",
        "validate",
        "--format",
        "json",
        ROLE,
        "examples/policies/broken.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["files"][0]["valid"], true);
    assert_eq!(doc["files"][1]["valid"], false);
    let d = &doc["files"][1]["diagnostics"][1];
    assert_eq!(d["code"], "unknown-operator");
    assert_eq!(d["path"], "Statement[2].Condition");
    assert_eq!(d["location"], serde_json::json!({"line": 19, "column": 9}));
}

#[test]
fn validate_detects_resource_policies() {
    let out = writ(&["policy", "validate", INVOKE]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("valid resource policy"));
    let out = writ(&["policy", "validate", "--type", "identity", INVOKE]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("[unexpected-principal]"));
}

#[test]
fn malformed_files_get_clear_errors_and_never_crash() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("invalid-json.json", b"{\"Version\": \"2012-10-17\",}".to_vec(), "1:25: error: invalid JSON: Trailing commas are not allowed"),
        ("wrong-type.json", br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":42,"Resource":"*"}]}"#.to_vec(), "Statement[0].Action: expected a string or an array of strings, found a number"),
        ("unknown-element.json", br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Actions":"s3:*","Resource":"*"}]}"#.to_vec(), "unknown element \"Actions\" in a statement, did you mean \"Action\"?"),
        ("invalid-utf8.json", b"{\"Version\": \"2012-10-17\xff\"}".to_vec(), "1:24: error: the text is not valid UTF-8"),
        ("deep.json", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(), "error: JSON nesting is deeper than 32 levels"),
        ("empty.json", Vec::new(), "1:1: error: the document is empty"),
        ("not-object.json", b"[]".to_vec(), "a policy must be a JSON object, not an array"),
    ];
    for (name, body, expected) in cases {
        let path = temp_policy(name, "");
        std::fs::write(&path, &body).unwrap();
        let out = writ(&["policy", "validate", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(stdout(&out).contains(expected), "{name}: {}", stdout(&out));
        assert!(stderr(&out).is_empty(), "{name}: {}", stderr(&out));
    }
}

#[test]
fn a_one_megabyte_policy_is_refused_with_its_size() {
    let statement = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/k"},"#;
    let mut body = String::from(r#"{"Version":"2012-10-17","Statement":["#);
    while body.len() < 1_000_000 {
        body.push_str(statement);
    }
    body.pop();
    body.push_str("]}");
    let path = temp_policy("huge.json", &body);
    let out = writ(&["policy", "validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("1:1: error: the policy is 1000")
            && stdout(&out).contains("bytes; the limit is 131072 bytes"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn simulate_refuses_invalid_policies_and_missing_files() {
    let out = writ(&[
        "policy",
        "simulate",
        "--policy",
        "examples/policies/broken.json",
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid policy; nothing was simulated"));
    let out = writ(&[
        "policy",
        "simulate",
        "--policy",
        "no/such/file.json",
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no/such/file.json: No such file"),
        "{}",
        stderr(&out)
    );
}

// --- Accounts: delegation and cross-account access ---

#[test]
fn simulate_says_which_half_is_missing_for_account_principals() {
    let bucket = temp_policy(
        "bucket-names-account.json",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Account","Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::111122223333:root"},
            "Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
    );
    let bucket = bucket.to_str().unwrap();
    let user = "arn:aws:iam::111122223333:user/alice";
    let base = [
        "--resource-policy",
        bucket,
        "--principal",
        user,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
    ];
    let out = writ(&[&["policy", "simulate"][..], &base[..]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "why:      the resource policy allows the account 111122223333, which delegates \
             to its identity policies, and none of them allows this"
        ),
        "{}",
        stdout(&out)
    );
    let (code, doc) = simulate_json(&base);
    assert_eq!(code, 2);
    assert_eq!(doc["reason"], "accountDelegated");
    // With an identity policy of the account that allows, it is allowed.
    let (code, _) = simulate_json(&[&base[..], &["--policy", EVERYTHING][..]].concat());
    assert_eq!(code, 0);
    // The bucket in another account: the identity policy alone is not enough.
    let (code, doc) = simulate_json(&[
        "--policy",
        EVERYTHING,
        "--principal",
        user,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
        "--context",
        "aws:ResourceAccount=444455556666",
    ]);
    assert_eq!(code, 2);
    assert_eq!(doc["reason"], "crossAccountNoResourceAllow");
    assert!(
        doc["why"]
            .as_str()
            .unwrap()
            .contains("no resource policy of account 444455556666 does"),
        "{doc}"
    );
}

// --- Policy variables the request cannot supply ---

#[test]
fn simulate_explains_a_statement_with_an_unresolvable_variable() {
    let policy = temp_policy(
        "not-resource-username.json",
        r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"AllButOthersHomes","Effect":"Allow","Action":"s3:GetObject",
             "NotResource":"arn:aws:s3:::home/${aws:username}/*"},
            {"Sid":"NoDeletes","Effect":"Deny","Action":"s3:DeleteObject",
             "Resource":"arn:aws:s3:::home/${aws:username}/*"}]}"#,
    );
    let policy = policy.to_str().unwrap();
    let session = "arn:aws:sts::111122223333:assumed-role/app/s1";
    let out = writ(&[
        "policy",
        "simulate",
        "--policy",
        policy,
        "--principal",
        session,
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::home/bob/x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "Statement[0] (Sid \"AllButOthersHomes\") [Allow]: ${aws:username} has no value in \
             this request"
        ),
        "{}",
        stdout(&out)
    );
    let (code, doc) = simulate_json(&[
        "--policy",
        policy,
        "--policy",
        EVERYTHING,
        "--principal",
        session,
        "--action",
        "s3:DeleteObject",
        "--resource",
        "arn:aws:s3:::home/bob/x",
    ]);
    assert_eq!(code, 2, "{doc}");
    assert_eq!(doc["decision"], "explicitDeny");
    assert_eq!(doc["matched"][0]["sid"], "NoDeletes");
    assert_eq!(doc["statements"][1]["unresolvedVariable"], "aws:username");
}

#[test]
fn a_session_may_be_given_its_own_role_as_aws_principal_arn_and_no_other() {
    let bucket = temp_policy(
        "bucket-admin-role.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"s3:GetObject","Resource":"*",
            "Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/ops/admin"}}}]}"#,
    );
    let bucket = bucket.to_str().unwrap();
    let run = |session: &str, role: &str| {
        let context = format!("aws:PrincipalArn={role}");
        writ(&[
            "policy",
            "simulate",
            "--resource-policy",
            bucket,
            "--principal",
            session,
            "--action",
            "s3:GetObject",
            "--resource",
            "arn:aws:s3:::b/k",
            "--context",
            &context,
        ])
    };
    let admin = "arn:aws:sts::111122223333:assumed-role/admin/s1";
    let out = run(admin, "arn:aws:iam::111122223333:role/ops/admin");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Another role's session cannot borrow the admin role's ARN.
    let app = "arn:aws:sts::111122223333:assumed-role/app/s1";
    let out = run(app, "arn:aws:iam::111122223333:role/ops/admin");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is not the role of the session"),
        "{}",
        stderr(&out)
    );
}
