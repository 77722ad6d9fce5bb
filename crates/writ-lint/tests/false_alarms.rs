//! Fewer false alarms, and the secrets the name and entropy rules cannot see: the default
//! KMS key policy is not a critical wildcard; a service principal without a source guard on an
//! SNS topic, SQS queue or S3 bucket policy is medium, not high; a NoEcho parameter default or a
//! Cognito client secret in an environment variable is WRIT-ENV-004. CloudFormation YAML and
//! JSON, SAM and Terraform.

use writ_lint::{Config, Finding, Severity, lint_source};

fn lint(file: &str, text: &str) -> Vec<Finding> {
    let found = lint_source(file, text, &Config::default()).findings;
    assert!(
        !found.iter().any(|f| f.rule == "WRIT-PARSE-001"),
        "{file} must parse"
    );
    found
}

fn has(found: &[Finding], rule: &str) -> bool {
    found.iter().any(|f| f.rule == rule)
}

const KEY_YAML: &str = r#"Resources:
  Key:
    Type: AWS::KMS::Key
    Properties:
      KeyPolicy:
        Version: "2012-10-17"
        Statement:
          - Sid: Enable IAM User Permissions
            Effect: Allow
            Principal:
              AWS: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root
            Action: kms:*
            Resource: "*"
"#;

const KEY_JSON: &str = r#"{"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}}, "Action": "kms:*", "Resource": "*"}]}}}}}"#;

const KEY_TF: &str = r#"data "aws_caller_identity" "current" {}

resource "aws_kms_key" "k" {
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}
"#;

#[test]
fn the_default_key_policy_is_not_a_wildcard_finding() {
    for (file, text) in [("k.yaml", KEY_YAML), ("k.json", KEY_JSON), ("k.tf", KEY_TF)] {
        let found = lint(file, text);
        assert!(!has(&found, "WRIT-IAM-001"), "{file}: {found:?}");
        // A literal account id is the account too.
        let literal = text.replace(
            "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root",
            "arn:aws:iam::123456789012:root",
        );
        assert!(!has(&lint(file, &literal), "WRIT-IAM-001"), "{file}");
    }
    // Anyone else with kms:* on the key, or the root with every action, still is.
    let role = KEY_YAML.replace(
        "!Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root",
        "arn:aws:iam::123456789012:role/app",
    );
    assert!(has(&lint("k.yaml", &role), "WRIT-IAM-001"));
    let json_role = KEY_JSON.replace(":root", ":role/app");
    assert!(has(&lint("k.json", &json_role), "WRIT-IAM-001"));
    let tf_role = KEY_TF.replace(":root", ":role/app");
    assert!(has(&lint("k.tf", &tf_role), "WRIT-IAM-001"));
    let all = KEY_YAML.replace("Action: kms:*", "Action: \"*\"");
    assert!(has(&lint("k.yaml", &all), "WRIT-IAM-001"));
    // Outside a key policy the same statement is a wildcard.
    let bucket = KEY_YAML
        .replace("AWS::KMS::Key", "AWS::S3::BucketPolicy")
        .replace("KeyPolicy:", "PolicyDocument:");
    assert!(has(&lint("b.yaml", &bucket), "WRIT-IAM-001"));
}

fn perm_severity(found: &[Finding]) -> Option<Severity> {
    found
        .iter()
        .find(|f| f.rule == "WRIT-PERM-001")
        .map(|f| f.severity)
}

#[test]
fn notification_policies_without_a_source_guard_are_medium() {
    let statement = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": "*"}]}"#;
    for (ty, key) in [
        ("AWS::SQS::QueuePolicy", "PolicyDocument"),
        ("AWS::SNS::TopicPolicy", "PolicyDocument"),
        ("AWS::S3::BucketPolicy", "PolicyDocument"),
    ] {
        let json = format!(
            r#"{{"Resources": {{"P": {{"Type": "{ty}", "Properties": {{"{key}": {statement}}}}}}}}}"#
        );
        assert_eq!(
            perm_severity(&lint("p.json", &json)),
            Some(Severity::Medium),
            "{ty}"
        );
    }
    let yaml = "Resources:\n  P:\n    Type: AWS::SNS::TopicPolicy\n    Properties:\n      PolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Principal:\n              Service: events.amazonaws.com\n            Action: sns:Publish\n            Resource: \"*\"\n";
    assert_eq!(perm_severity(&lint("p.yaml", yaml)), Some(Severity::Medium));
    for ty in [
        "aws_sqs_queue_policy",
        "aws_sns_topic_policy",
        "aws_s3_bucket_policy",
    ] {
        let tf = format!(
            "resource \"{ty}\" \"p\" {{\n  policy = jsonencode({statement})\n}}\n",
            statement = statement
                .replace(": ", " = ")
                .replace("\"Version\" =", "Version =")
        );
        let tf = tf.replace("{\"Version\"", "{ \"Version\"");
        assert_eq!(
            perm_severity(&lint("p.tf", &tf)),
            Some(Severity::Medium),
            "{ty}: {tf}"
        );
    }
    // On a secret or a key (or a Lambda permission) it stays high.
    let secret = format!(
        r#"{{"Resources": {{"P": {{"Type": "AWS::SecretsManager::ResourcePolicy", "Properties": {{"ResourcePolicy": {statement}}}}}}}}}"#
    );
    assert_eq!(
        perm_severity(&lint("p.json", &secret)),
        Some(Severity::High)
    );
    // And a guard still silences it.
    let guarded = yaml.replace(
        "            Resource: \"*\"\n",
        "            Resource: \"*\"\n            Condition:\n              ArnEquals:\n                aws:SourceArn: !GetAtt Rule.Arn\n",
    );
    assert_eq!(perm_severity(&lint("p.yaml", &guarded)), None);
}

/// A function whose variable `DB` is set to `VALUE` (YAML), with a NoEcho parameter and a
/// Cognito client in the template.
fn template(value: &str, no_echo_default: &str) -> String {
    format!(
        "Parameters:\n  DbPassword:\n    Type: String\n    NoEcho: true\n{no_echo_default}  Plain:\n    Type: String\n    Default: orders\nResources:\n  Client:\n    Type: AWS::Cognito::UserPoolClient\n    Properties:\n      GenerateSecret: true\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Environment:\n        Variables:\n          DB: {value}\n"
    )
}

#[test]
fn secrets_from_no_echo_defaults_and_cognito_client_secrets() {
    let default = "    Default: hunter2-but-longer\n";
    for value in [
        "!Ref DbPassword",
        "!Sub \"postgres://app:${DbPassword}@db:5432/orders\"",
        "!GetAtt Client.ClientSecret",
        "!Sub \"${Client.ClientSecret}\"",
        "!Join [\":\", [app, !Ref DbPassword]]",
    ] {
        let found = lint("t.yaml", &template(value, default));
        assert!(has(&found, "WRIT-ENV-004"), "{value}: {found:?}");
        let f = found.iter().find(|f| f.rule == "WRIT-ENV-004").unwrap();
        assert!(!f.message.contains("hunter2"), "{}", f.message);
    }
    // Without a default the secret is given at deploy time; other references are fine.
    for (value, d) in [
        ("!Ref DbPassword", ""),
        ("!Ref Plain", default),
        ("!GetAtt Client.Name", default),
        ("!Ref Client", default),
    ] {
        let found = lint("t.yaml", &template(value, d));
        assert!(!has(&found, "WRIT-ENV-004"), "{value}: {found:?}");
    }
    // JSON, and SAM Globals.
    let json = r#"{"Parameters": {"Token": {"Type": "String", "NoEcho": "true", "Default": "abc"}}, "Resources": {"Fn": {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "python3.12", "Environment": {"Variables": {"UPSTREAM": {"Ref": "Token"}}}}}}}"#;
    assert!(has(&lint("t.json", json), "WRIT-ENV-004"));
    assert!(!has(
        &lint("t.json", &json.replace(", \"Default\": \"abc\"", "")),
        "WRIT-ENV-004"
    ));
    let globals = "Parameters:\n  Key:\n    Type: String\n    NoEcho: true\n    Default: abc\nGlobals:\n  Function:\n    Environment:\n      Variables:\n        KEY: !Ref Key\nResources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n";
    assert!(has(&lint("t.yaml", globals), "WRIT-ENV-004"));
}

#[test]
fn terraform_sensitive_defaults_and_cognito_client_secrets() {
    let tf = |value: &str, sensitive: &str| {
        format!(
            "variable \"db_password\" {{\n  type = string\n  default = \"hunter2-but-longer\"\n{sensitive}}}\n\nresource \"aws_cognito_user_pool_client\" \"app\" {{\n  generate_secret = true\n}}\n\nresource \"aws_lambda_function\" \"api\" {{\n  runtime = \"python3.12\"\n  environment {{\n    variables = {{\n      UPSTREAM = {value}\n    }}\n  }}\n}}\n"
        )
    };
    for value in [
        "var.db_password",
        "\"postgres://app:${var.db_password}@db/orders\"",
        "aws_cognito_user_pool_client.app.client_secret",
    ] {
        let found = lint("m.tf", &tf(value, "  sensitive = true\n"));
        assert!(has(&found, "WRIT-ENV-004"), "{value}: {found:?}");
    }
    let found = lint(
        "m.tf",
        &tf(
            "aws_cognito_user_pool_client.app.id",
            "  sensitive = true\n",
        ),
    );
    assert!(!has(&found, "WRIT-ENV-004"), "{found:?}");
    let found = lint("m.tf", &tf("var.db_password", ""));
    assert!(!has(&found, "WRIT-ENV-004"), "{found:?}");
}
