//! `writ policy diff` and `writ policy check --not-granted`, run as a user runs them: the
//! real binary, the example policies, exit codes and every output format checked. The
//! README's examples are the first tests here.

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

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

const ROLE: &str = "examples/policies/orders-role.json";
const ROLE_NEW: &str = "examples/policies/diff/orders-role.new.json";
const INVOKE: &str = "examples/policies/orders-api-invoke.json";
const INVOKE_NEW: &str = "examples/policies/diff/orders-api-invoke.new.json";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789:table/orders";

// --- The README's examples ---

#[test]
fn readme_diff_of_the_orders_role() {
    let out = writ(&["policy", "diff", ROLE, ROLE_NEW]);
    assert_eq!(code(&out), 1, "NEW grants more: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("+ allows dynamodb:Delete* on {TABLE}\n")),
        "{text}"
    );
    assert!(
        text.contains(
            "+ allows secretsmanager:GetSecretValue on \
             arn:aws:secretsmanager:us-east-1:123456789:secret:prod/orders-* except \
             arn:aws:secretsmanager:us-east-1:123456789:secret:prod/orders-api-key-*"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "    witness: dynamodb:delete on {TABLE} (OLD: implicitDeny, NEW: allowed)"
        )),
        "{text}"
    );
    assert!(
        text.contains("- no longer allows logs:CreateLogGroup on"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "{ROLE_NEW} grants more than {ROLE}: 2 added, 1 removed\n"
        )),
        "{text}"
    );
}

#[test]
fn readme_diff_of_a_function_policy_reports_the_condition() {
    let out = writ(&["policy", "diff", INVOKE, INVOKE_NEW]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains(
            "+ allows lambda:InvokeFunction on \
             arn:aws:lambda:us-east-1:123456789:function:orders-api to Service apigateway.amazonaws.com\n    \
             when: not (ArnLike AWS:SourceArn arn:aws:execute-api:us-east-1:123456789:abc123/*)"
        ),
        "{text}"
    );
    assert!(
        text.contains("witness: principal apigateway.amazonaws.com lambda:invokefunction"),
        "{text}"
    );
    // Adding the condition back takes access away and grants nothing.
    let back = writ(&["policy", "diff", INVOKE_NEW, INVOKE]);
    assert_eq!(code(&back), 0, "{}", stdout(&back));
    assert!(stdout(&back).contains("- no longer allows lambda:InvokeFunction"));
}

#[test]
fn readme_check_not_granted() {
    let out = writ(&[
        "policy",
        "check",
        "--not-granted",
        "dynamodb:Delete*,iam:*",
        ROLE,
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out),
        "not granted: no request for dynamodb:Delete*, iam:* on * is allowed\n"
    );
    let out = writ(&[
        "policy",
        "check",
        "--not-granted",
        "dynamodb:Delete*,iam:*",
        ROLE_NEW,
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("granted: dynamodb:Delete* on {TABLE}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("witness: dynamodb:delete on {TABLE} (allowed)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("by:   {ROLE_NEW} Statement[0]")),
        "{text}"
    );
}

// --- Exit codes ---

#[test]
fn the_same_policy_grants_nothing_more() {
    let out = writ(&["policy", "diff", ROLE, ROLE]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        format!("{ROLE} grants nothing that {ROLE} does not: 0 added, 0 removed\n")
    );
}

#[test]
fn the_reverse_diff_swaps_added_and_removed() {
    let out = writ(&["policy", "diff", ROLE_NEW, ROLE]);
    assert_eq!(code(&out), 1, "the old role still had logs:CreateLogGroup");
    assert!(stdout(&out).contains("- no longer allows dynamodb:Delete*"));
    assert!(stdout(&out).contains("+ allows logs:CreateLogGroup"));
}

#[test]
fn invalid_policies_exit_two_with_file_line_column() {
    let out = writ(&["policy", "diff", "examples/policies/broken.json", ROLE]);
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(
        err.contains("examples/policies/broken.json:15:7: error:"),
        "{err}"
    );
    assert!(err.contains("nothing was compared"), "{err}");
    let out = writ(&["policy", "diff", ROLE, "no-such-file.json"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no-such-file.json"));
    let out = writ(&["policy", "check", "--not-granted", ",", ROLE]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--not-granted"));
}

#[test]
fn kinds_must_agree() {
    let out = writ(&["policy", "diff", ROLE, INVOKE]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("pass --kind"), "{}", stderr(&out));
    let out = writ(&["policy", "diff", "--kind", "identity", ROLE, INVOKE]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("orders-api-invoke.json:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn boundaries_compare_as_limits() {
    let out = writ(&["policy", "diff", "--kind", "boundary", ROLE, ROLE_NEW]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("+ allows dynamodb:Delete*"));
}

// --- JSON ---

#[test]
fn diff_json() {
    let out = writ(&["policy", "diff", "--format", "json", ROLE, ROLE_NEW]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    assert_eq!(doc["grantsMore"], true);
    assert_eq!(doc["policyType"], "identity");
    assert_eq!(doc["old"], ROLE);
    let added = doc["added"].as_array().unwrap();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["change"], "added");
    assert_eq!(added[0]["actions"][0]["description"], "dynamodb:Delete*");
    assert_eq!(added[0]["unconditional"], true);
    assert_eq!(added[0]["witness"]["action"], "dynamodb:delete");
    assert_eq!(added[0]["witness"]["old"], "implicitDeny");
    assert_eq!(added[0]["witness"]["new"], "allowed");
    assert_eq!(
        added[0]["allowedBy"][0],
        format!("NEW {ROLE_NEW} Statement[0] (Sid \"ReadSpecificDynamoTable\")")
    );
    assert_eq!(doc["removed"].as_array().unwrap().len(), 1);
}

#[test]
fn diff_json_conditions_and_principals() {
    let out = writ(&["policy", "diff", "--format", "json", INVOKE, INVOKE_NEW]);
    let doc = json(&out);
    assert_eq!(doc["policyType"], "resource");
    let f = &doc["added"][0];
    assert_eq!(f["unconditional"], false);
    assert_eq!(
        f["conditions"][0]["fails"][0],
        "ArnLike AWS:SourceArn arn:aws:execute-api:us-east-1:123456789:abc123/*"
    );
    assert_eq!(
        f["principals"][0]["description"],
        "Service apigateway.amazonaws.com"
    );
    assert_eq!(f["witness"]["principal"]["type"], "Service");
}

#[test]
fn check_json() {
    let out = writ(&[
        "policy",
        "check",
        "--format",
        "json",
        "--not-granted",
        "dynamodb:DeleteItem",
        "--on",
        TABLE,
        ROLE_NEW,
    ]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    assert_eq!(doc["granted"], true);
    assert_eq!(
        doc["findings"][0]["witness"]["action"],
        "dynamodb:deleteitem"
    );
    assert_eq!(doc["findings"][0]["witness"]["resource"], TABLE);
}

// --- SARIF ---

#[test]
fn diff_sarif() {
    let out = writ(&["policy", "diff", "--format", "sarif", ROLE, ROLE_NEW]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "writ-policy-diff/added-access",
            "writ-policy-diff/possible-added-access",
            "writ-policy-diff/removed-access",
            "writ-policy-diff/possible-removed-access"
        ]
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["ruleId"], "writ-policy-diff/added-access");
    assert_eq!(results[0]["ruleIndex"], 0);
    assert_eq!(results[0]["level"], "error");
    assert!(
        results[0]["message"]["text"]
            .as_str()
            .unwrap()
            .contains("witness: dynamodb:delete")
    );
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        ROLE_NEW
    );
    assert_eq!(results[2]["ruleId"], "writ-policy-diff/removed-access");
    assert_eq!(results[2]["level"], "note");
}

#[test]
fn check_sarif() {
    let out = writ(&[
        "policy",
        "check",
        "--format",
        "sarif",
        "--not-granted",
        "dynamodb:Delete*",
        ROLE_NEW,
    ]);
    assert_eq!(code(&out), 1);
    let doc = json(&out);
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results[0]["ruleId"], "writ-policy-check/granted");
    let out = writ(&[
        "policy",
        "check",
        "--format",
        "sarif",
        "--not-granted",
        "dynamodb:Delete*",
        ROLE,
    ]);
    assert_eq!(code(&out), 0);
    assert!(
        json(&out)["runs"][0]["results"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
