//! No policy is skipped in silence: Terraform heredoc policies with `${...}` are checked
//! with the unknown parts read as "could be anything", a policy that cannot be read at all
//! is an informational finding (WRIT-IAM-004), and the policies of `AWS::IAM::ManagedPolicy`,
//! `AWS::IAM::Role` inline policies and `aws_iam_role_policy` are checked.

use writ_lint::{Config, Finding, lint_source};

fn lint(name: &str, text: &str) -> Vec<Finding> {
    lint_source(name, text, &Config::default()).findings
}

fn rules(findings: &[Finding]) -> Vec<(&'static str, u32, u32)> {
    findings
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

#[test]
fn an_unknown_action_in_a_heredoc_counts_as_every_action() {
    let tf = r#"variable "action" {}

resource "aws_iam_role_policy" "p" {
  role   = aws_iam_role.r.id
  policy = <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "${var.action}", "Resource": "*"}
  ]
}
EOF
}
"#;
    let found = lint("main.tf", tf);
    assert!(
        rules(&found).contains(&("WRIT-IAM-001", 9, 5)),
        "{:?}",
        rules(&found)
    );
    assert!(!found.iter().any(|f| f.rule == "WRIT-IAM-004"));
}

#[test]
fn an_unquoted_unknown_list_of_actions_counts_as_every_action() {
    let tf = r#"resource "aws_iam_policy" "p" {
  policy = <<-EOF
    {"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": ${jsonencode(var.actions)}, "Resource": "*"}
    ]}
  EOF
}
"#;
    let found = lint("main.tf", tf);
    assert!(
        rules(&found).contains(&("WRIT-IAM-001", 4, 7)),
        "{:?}",
        rules(&found)
    );
}

#[test]
fn a_heredoc_naming_resources_is_checked_without_inventing_wildcards() {
    // The bucket reference is one ARN: `s3:*` on it is not every resource. The heredoc
    // used to be skipped whole; now its PassRole on every role is found, and the
    // resource policy's unknown principal is not taken for "anyone".
    let tf = r#"locals {
  everything = "*"
}

resource "aws_iam_role_policy" "p" {
  role   = aws_iam_role.r.id
  policy = <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "s3:*", "Resource": "${aws_s3_bucket.b.arn}/*"},
    {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "${aws_s3_bucket.b.arn}${local.everything}"}
  ]
}
EOF
}

resource "aws_s3_bucket_policy" "b" {
  bucket = aws_s3_bucket.b.id
  policy = <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"AWS": "${var.reader_arn}"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::${var.bucket}/*"
  }]
}
EOF
}
"#;
    let found = lint("main.tf", tf);
    let r = rules(&found);
    for absent in ["WRIT-IAM-001", "WRIT-PERM-002", "WRIT-IAM-004"] {
        assert!(!r.iter().any(|f| f.0 == absent), "{absent}: {r:?}");
    }
    // Checked all the same: a policy that does not validate would say so.
    let bad = tf.replace(
        "\"Effect\": \"Allow\", \"Action\": \"s3:*\"",
        "\"Effect\": \"Maybe\", \"Action\": \"s3:*\"",
    );
    let r = rules(&lint("main.tf", &bad));
    assert!(
        r.iter().any(|f| f.0 == "WRIT-IAM-000" && f.1 == 11),
        "{r:?}"
    );
}

#[test]
fn an_unknown_inside_a_resource_counts_as_a_wildcard() {
    let tf = r#"resource "aws_iam_policy" "p" {
  policy = <<EOF
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "${var.role}"}
]}
EOF
}
"#;
    let r = rules(&lint("main.tf", tf));
    assert!(r.iter().any(|f| f.0 == "WRIT-IAM-002" && f.1 == 4), "{r:?}");
}

#[test]
fn a_policy_that_cannot_be_read_is_an_informational_finding() {
    let tf = r#"resource "aws_iam_role_policy" "from_file" {
  role   = aws_iam_role.r.id
  policy = file("${path.module}/policy.json")
}

resource "aws_iam_policy" "looped" {
  policy = <<EOF
{"Version": "2012-10-17", "Statement": [
%{ for b in var.buckets }
  {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::${b}/*"},
%{ endfor }
]}
EOF
}

resource "aws_iam_role" "r" {
  assume_role_policy = <<EOF
{"Version": "2012-10-17", "Statement": [ "Effect": "Allow" ]}
EOF
}

resource "aws_iam_role_policy" "from_document" {
  role   = aws_iam_role.r.id
  policy = data.aws_iam_policy_document.doc.json
}

resource "aws_ecr_lifecycle_policy" "keep" {
  repository = "r"
  policy     = file("lifecycle.json")
}
"#;
    let found = lint("main.tf", tf);
    let unread: Vec<&Finding> = found.iter().filter(|f| f.rule == "WRIT-IAM-004").collect();
    let at: Vec<(u32, u32)> = unread.iter().map(|f| (f.line, f.column)).collect();
    assert_eq!(at, vec![(3, 12), (7, 12), (17, 24)], "{unread:#?}");
    assert!(
        unread[0]
            .message
            .starts_with("aws_iam_role_policy.from_file.policy: ")
    );
    assert!(
        unread[0].message.contains("plan time"),
        "{}",
        unread[0].message
    );
    assert!(
        unread[1].message.contains("template directive"),
        "{}",
        unread[1].message
    );
    assert!(
        unread[2].message.contains("not valid JSON"),
        "{}",
        unread[2].message
    );
    assert!(
        unread
            .iter()
            .all(|f| f.severity == writ_lint::Severity::Low)
    );
}

#[test]
fn managed_policies_role_inline_policies_and_role_policies_are_checked() {
    let cfn = r#"AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: "*"
            Resource: "*"
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: lambda.amazonaws.com}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: inline
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: iam:PassRole
                Resource: "*"
"#;
    let r = rules(&lint("template.yaml", cfn));
    assert!(r.iter().any(|f| f.0 == "WRIT-IAM-001" && f.1 == 9), "{r:?}");
    assert!(
        r.iter().any(|f| f.0 == "WRIT-IAM-002" && f.1 == 26),
        "{r:?}"
    );
    let tf = r#"resource "aws_iam_role_policy" "p" {
  role = aws_iam_role.r.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "dynamodb:*", Resource = "*" }]
  })
}
"#;
    let r = rules(&lint("main.tf", tf));
    assert!(r.iter().any(|f| f.0 == "WRIT-IAM-001"), "{r:?}");
}
