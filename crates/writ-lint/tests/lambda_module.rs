//! The inputs of the widely used terraform-aws-modules/lambda/aws module are read as the
//! module uses them: the function it creates (environment variables), its function URL
//! (`authorization_type` defaults to NONE), and the policies it attaches to the role it
//! creates (`policy_json`, `policy_jsons`, `policy_statements`, each only when its
//! `attach_*` flag is set).

use writ_lint::{Config, Finding, lint_source};

fn lint(text: &str) -> Vec<Finding> {
    lint_source("main.tf", text, &Config::default()).findings
}

fn found(findings: &[Finding]) -> Vec<(&'static str, u32, u32)> {
    findings
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

fn has(findings: &[Finding], rule: &str) -> bool {
    findings.iter().any(|f| f.rule == rule)
}

#[test]
fn a_function_url_without_authorization_type_is_public_as_the_module_defaults_it() {
    let tf = r#"module "api" {
  source  = "terraform-aws-modules/lambda/aws"
  version = "~> 7.0"

  function_name              = "api"
  handler                    = "index.handler"
  runtime                    = "python3.12"
  source_path                = "src/api"
  create_lambda_function_url = true
}
"#;
    let findings = lint(tf);
    let url: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "WRIT-URL-001")
        .collect();
    assert_eq!(url.len(), 1, "{:?}", found(&findings));
    assert_eq!((url[0].line, url[0].column), (1, 1));
    assert!(
        url[0]
            .message
            .contains("module.api.aws_lambda_function_url.this[0]"),
        "{}",
        url[0].message
    );
}

#[test]
fn an_explicit_none_is_reported_where_it_is_written_and_aws_iam_is_not() {
    let none = r#"module "api" {
  source                     = "terraform-aws-modules/lambda/aws"
  create_lambda_function_url = true
  authorization_type         = "NONE"
}
"#;
    assert!(
        found(&lint(none)).contains(&("WRIT-URL-001", 4, 32)),
        "{:?}",
        found(&lint(none))
    );
    let iam = none.replace("\"NONE\"", "\"AWS_IAM\"");
    assert!(!has(&lint(&iam), "WRIT-URL-001"));
    // No URL unless the module is asked for one.
    let no_url = none.replace("create_lambda_function_url = true", "");
    assert!(!has(&lint(&no_url), "WRIT-URL-001"));
}

#[test]
fn policy_json_is_checked_when_the_module_attaches_it() {
    let tf = r#"module "worker" {
  source             = "terraform-aws-modules/lambda/aws"
  function_name      = "worker"
  attach_policy_json = true
  policy_json        = <<-EOT
    {
      "Version": "2012-10-17",
      "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
      ]
    }
  EOT
}
"#;
    let findings = lint(tf);
    assert!(
        found(&findings).contains(&("WRIT-IAM-001", 9, 9)),
        "{:?}",
        found(&findings)
    );
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("module.worker.policy_json"))
    );
    // Not attached: the module ignores it, and so does the linter.
    let detached = tf.replace("attach_policy_json = true", "attach_policy_json = false");
    assert!(!has(&lint(&detached), "WRIT-IAM-001"));
}

#[test]
fn policy_statements_become_a_policy_and_are_judged_by_access_level() {
    let tf = r#"module "deployer" {
  source                   = "terraform-aws-modules/lambda/aws"
  function_name            = "deployer"
  attach_policy_statements = true
  policy_statements = {
    deploy = {
      effect    = "Allow"
      actions   = ["lambda:CreateFunction", "iam:PassRole"]
      resources = ["*"]
    }
    read = {
      actions   = ["s3:GetObject"]
      resources = ["arn:aws:s3:::artifacts/*"]
      condition = {
        org = {
          test     = "StringEquals"
          variable = "aws:PrincipalOrgID"
          values   = ["o-abc123"]
        }
      }
    }
  }
}
"#;
    let findings = lint(tf);
    assert!(has(&findings, "WRIT-IAM-007"), "{:?}", found(&findings));
    assert!(
        findings
            .iter()
            .filter(|f| f.rule.starts_with("WRIT-IAM"))
            .all(|f| f.message.contains("module.deployer.policy_statements")),
        "{:?}",
        findings.iter().map(|f| &f.message).collect::<Vec<_>>()
    );
    // The narrow, conditioned statement alone raises nothing.
    let narrow = tf.replace(
        r#"actions   = ["lambda:CreateFunction", "iam:PassRole"]
      resources = ["*"]"#,
        r#"actions   = ["lambda:GetFunction"]
      resources = ["arn:aws:lambda:us-east-1:123456789012:function:deployer"]"#,
    );
    let narrow_findings = lint(&narrow);
    assert!(
        !narrow_findings
            .iter()
            .any(|f| f.rule.starts_with("WRIT-IAM")),
        "{:?}",
        found(&narrow_findings)
    );
}

#[test]
fn policy_statements_only_known_at_plan_time_are_reported_as_unread() {
    let tf = r#"module "w" {
  source                   = "terraform-aws-modules/lambda/aws"
  attach_policy_statements = true
  policy_statements        = var.statements
}
"#;
    let findings = lint(tf);
    assert!(has(&findings, "WRIT-IAM-004"), "{:?}", found(&findings));
}

#[test]
fn environment_variables_of_the_module_function_are_checked() {
    let tf = r#"module "api" {
  source        = "terraform-aws-modules/lambda/aws"
  function_name = "api"
  environment_variables = {
    TABLE             = "orders"
    AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
  }
}
"#;
    let findings = lint(tf);
    assert!(
        findings
            .iter()
            .any(|f| f.rule.starts_with("WRIT-ENV") && f.line == 6),
        "{:?}",
        found(&findings)
    );
}

#[test]
fn other_modules_and_modules_told_not_to_create_are_not_read_as_lambda() {
    let other = r#"module "bucket" {
  source                     = "terraform-aws-modules/s3-bucket/aws"
  create_lambda_function_url = true
}
"#;
    assert!(!has(&lint(other), "WRIT-URL-001"));
    let off = r#"module "api" {
  source                     = "terraform-aws-modules/lambda/aws"
  create                     = false
  create_lambda_function_url = true
}
"#;
    assert!(!has(&lint(off), "WRIT-URL-001"));
    let github = r#"module "api" {
  source                     = "git::https://github.com/terraform-aws-modules/terraform-aws-lambda.git?ref=v7.20.0"
  create_lambda_function_url = true
}
"#;
    assert!(has(&lint(github), "WRIT-URL-001"));
}

#[test]
fn the_module_is_read_from_terraform_json_too() {
    let json = r#"{
  "module": {
    "api": {
      "source": "terraform-aws-modules/lambda/aws",
      "create_lambda_function_url": true,
      "attach_policy_statements": true,
      "policy_statements": {
        "all": {"actions": ["s3:*"], "resources": ["*"]}
      }
    }
  }
}
"#;
    let findings = lint_source("main.tf.json", json, &Config::default()).findings;
    assert!(has(&findings, "WRIT-URL-001"), "{:?}", found(&findings));
    assert!(
        findings.iter().any(|f| f.rule.starts_with("WRIT-IAM")
            && f.message.contains("module.api.policy_statements")),
        "{:?}",
        found(&findings)
    );
}
