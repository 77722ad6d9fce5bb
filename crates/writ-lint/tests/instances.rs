//! Terraform resources with `count` or `for_each` are reported once per resource, with the
//! instance in the address (`[0]`, `["key"]`, or `[*]` for every instance); `count = 0`
//! creates nothing. In `.tf` and `.tf.json`.

use writ_lint::{Config, Finding, lint_source};

fn lint(file: &str, text: &str) -> Vec<Finding> {
    lint_source(file, text, &Config::default()).findings
}

fn function(meta: &str) -> String {
    format!("resource \"aws_lambda_function\" \"api\" {{\n{meta}  runtime = \"python3.8\"\n}}\n")
}

fn runtime_messages(found: &[Finding]) -> Vec<&str> {
    found
        .iter()
        .filter(|f| f.rule == "WRIT-RUNTIME-001")
        .map(|f| f.message.as_str())
        .collect()
}

#[test]
fn count_and_for_each_name_the_instance_once() {
    for (meta, address) in [
        ("", "aws_lambda_function.api:"),
        ("  count = 3\n", "aws_lambda_function.api[*]:"),
        (
            "  count = length(var.names)\n",
            "aws_lambda_function.api[*]:",
        ),
        (
            "  count = var.enabled ? 1 : 0\n",
            "aws_lambda_function.api[*]:",
        ),
        ("  count = 1\n", "aws_lambda_function.api[0]:"),
        (
            "  for_each = var.functions\n",
            "aws_lambda_function.api[*]:",
        ),
        (
            "  for_each = { orders = 1 }\n",
            "aws_lambda_function.api[\"orders\"]:",
        ),
        (
            "  for_each = { orders = 1, users = 2 }\n",
            "aws_lambda_function.api[*]:",
        ),
    ] {
        let found = lint("main.tf", &function(meta));
        let messages = runtime_messages(&found);
        assert_eq!(messages.len(), 1, "{meta}: {messages:?}");
        assert!(messages[0].starts_with(address), "{meta}: {messages:?}");
    }
}

#[test]
fn no_instances_no_findings() {
    for meta in ["  count = 0\n", "  for_each = {}\n", "  for_each = []\n"] {
        let found = lint("main.tf", &function(meta));
        assert!(found.is_empty(), "{meta}: {found:?}");
    }
}

#[test]
fn references_to_an_instance_name_the_resource() {
    let tf = format!(
        "{}resource \"aws_lambda_function_event_invoke_config\" \"c\" {{\n  function_name = aws_lambda_function.api[0].function_name\n  destination_config {{\n    on_failure {{\n      destination = aws_sqs_queue.dlq.arn\n    }}\n  }}\n}}\n",
        function("  count = 2\n")
    );
    let found = lint("main.tf", &tf);
    assert!(!found.iter().any(|f| f.rule == "WRIT-DLQ-001"), "{found:?}");
}

#[test]
fn policies_and_tf_json_too() {
    let tf = "resource \"aws_iam_policy\" \"p\" {\n  for_each = toset(var.teams)\n  policy = jsonencode({Version = \"2012-10-17\", Statement = [{Effect = \"Allow\", Action = \"*\", Resource = \"*\"}]})\n}\n";
    let found = lint("main.tf", tf);
    let f = found.iter().find(|f| f.rule == "WRIT-IAM-001").unwrap();
    assert!(
        f.message
            .starts_with("aws_iam_policy.p[*].policy statement 1"),
        "{}",
        f.message
    );
    let json =
        r#"{"resource": {"aws_lambda_function": {"api": {"count": 2, "runtime": "python3.8"}}}}"#;
    let found = lint("main.tf.json", json);
    assert_eq!(runtime_messages(&found).len(), 1);
    assert!(runtime_messages(&found)[0].starts_with("aws_lambda_function.api[*]:"));
    let none =
        r#"{"resource": {"aws_lambda_function": {"api": {"count": 0, "runtime": "python3.8"}}}}"#;
    assert!(lint("main.tf.json", none).is_empty());
}
