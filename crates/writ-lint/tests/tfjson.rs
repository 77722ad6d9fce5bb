//! Terraform JSON syntax (`.tf.json`) is read like `.tf`, with findings at the JSON keys.

use std::path::Path;

use writ_lint::{Config, FileFormat, is_candidate, lint_source};

fn found(file: &str, text: &str) -> Vec<(&'static str, u32, u32)> {
    let report = lint_source(file, text, &Config::default());
    assert_eq!(report.format, Some(FileFormat::Terraform), "{file}");
    report
        .findings
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

const HARDENED: &str = r#"{
  "resource": {
    "aws_lambda_function": {
      "api": {
        "function_name": "api",
        "role": "${aws_iam_role.api.arn}",
        "runtime": "python3.12",
        "kms_key_arn": "${aws_kms_key.fn.arn}",
        "reserved_concurrent_executions": 10,
        "code_signing_config_arn": "${aws_lambda_code_signing_config.c.arn}",
        "tracing_config": {"mode": "Active"},
        "dead_letter_config": {"target_arn": "${aws_sqs_queue.dlq.arn}"},
        "environment": {"variables": {"TABLE": "orders"}}
      }
    }
  }
}"#;

#[test]
fn tf_json_files_are_candidates() {
    assert!(is_candidate(Path::new("infra/main.tf.json")));
}

#[test]
fn a_hardened_function_has_no_findings() {
    assert_eq!(found("main.tf.json", HARDENED), vec![]);
}

#[test]
fn function_rules_point_at_the_json_keys() {
    let weak = HARDENED
        .replace("\"python3.12\"", "\"python3.8\"")
        .replace(
            "\"TABLE\": \"orders\"",
            "\"DB_PASSWORD\": \"hunter2hunter2\"",
        )
        .replace("\"tracing_config\": {\"mode\": \"Active\"},\n        ", "");
    let got = found("main.tf.json", &weak);
    assert!(got.contains(&("WRIT-RUNTIME-001", 7, 9)), "{got:?}");
    assert!(
        got.iter().any(|(r, l, _)| *r == "WRIT-ENV-001" && *l == 12),
        "{got:?}"
    );
    assert!(
        got.iter().any(|(r, _, _)| *r == "WRIT-TRACE-001"),
        "{got:?}"
    );
    let url = r#"{"resource": {"aws_lambda_function_url": {"u": {"function_name": "${aws_lambda_function.api.function_name}", "authorization_type": "NONE"}}}}"#;
    let column = u32::try_from(url.find("\"authorization_type\"").unwrap() + 1).unwrap();
    assert_eq!(found("u.tf.json", url), vec![("WRIT-URL-001", 1, column)]);
}

#[test]
fn policies_in_every_json_shape() {
    // jsonencode in an interpolation, a JSON string, and a policy document data source.
    let encoded = r#"{"resource": {"aws_iam_role_policy": {"p": {
  "role": "${aws_iam_role.api.id}",
  "policy": "${jsonencode({Version = \"2012-10-17\", Statement = [{Effect = \"Allow\", Action = \"*\", Resource = \"*\"}]})}"
}}}}"#;
    assert!(found("p.tf.json", encoded).contains(&("WRIT-IAM-001", 3, 3)));
    let string = r#"{"resource": {"aws_iam_policy": {"p": {
  "policy": "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"iam:PassRole\", \"Resource\": \"*\"}]}"
}}}}"#;
    assert!(found("p.tf.json", string).contains(&("WRIT-IAM-002", 2, 3)));
    let data = r#"{"data": {"aws_iam_policy_document": {"d": {
  "statement": [
    {"actions": ["s3:GetObject"], "resources": ["arn:aws:s3:::orders/*"]},
    {"actions": ["secretsmanager:GetSecretValue"], "resources": ["*"]}
  ]
}}}}"#;
    let got = found("d.tf.json", data);
    assert!(got.iter().any(|(r, _, _)| *r == "WRIT-IAM-008"), "{got:?}");
    assert_eq!(
        got.iter().filter(|(r, _, _)| *r == "WRIT-IAM-008").count(),
        1
    );
}

#[test]
fn locals_and_variables_are_evaluated() {
    let tf = r#"{
  "variable": {"actions": {"default": ["*"]}},
  "locals": {"everything": "*"},
  "resource": {"aws_iam_policy": {"p": {
    "policy": "${jsonencode({Version = \"2012-10-17\", Statement = [{Effect = \"Allow\", Action = var.actions, Resource = local.everything}]})}"
  }}}
}"#;
    assert!(
        found("v.tf.json", tf)
            .iter()
            .any(|(r, _, _)| *r == "WRIT-IAM-001")
    );
}

#[test]
fn invalid_json_is_a_parse_error() {
    let got = found("bad.tf.json", "{\"resource\": {\n  \"x\": [}\n}");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "WRIT-PARSE-001");
    assert_eq!(got[0].1, 2);
}

#[test]
fn an_interpolation_over_several_lines_keeps_later_positions() {
    let tf = "{\"resource\": {\"aws_iam_policy\": {\"p\": {\n  \"policy\": \"${jsonencode({\\n  Version = \\\"2012-10-17\\\"\\n  Statement = [{Effect = \\\"Allow\\\", Action = \\\"s3:*\\\", Resource = \\\"*\\\"}]\\n})}\"\n}},\n \"aws_lambda_function_url\": {\"u\": {\"authorization_type\": \"NONE\"}}}}\n";
    assert_eq!(
        found("m.tf.json", tf),
        vec![("WRIT-IAM-001", 2, 3), ("WRIT-URL-001", 4, 36)]
    );
}
