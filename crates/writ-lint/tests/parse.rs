//! Everything libyaml and PyYAML read is read: flow collections and quoted scalars whose
//! lines sit at or left of their key's column (the YAML test suite's cases are fixtures
//! under `tests/fixtures/yaml-flow`, checked in `src/yaml.rs`), with CloudFormation's short
//! tags and positions intact.

use writ_lint::{Config, lint_source};

fn rules_at(name: &str, text: &str) -> Vec<(&'static str, u32, u32)> {
    lint_source(name, text, &Config::default())
        .findings
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

/// The flow sequence of the issue: continuation and closing lines left of `Action`.
const FLOW_POLICY: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Broad:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: [
          "s3:*",
          "dynamodb:GetItem"
        ]
            Resource: !Sub "*"
"#;

#[test]
fn a_flow_sequence_left_of_its_key_is_read_and_checked() {
    let found = rules_at("template.yaml", FLOW_POLICY);
    assert!(!found.iter().any(|f| f.0 == "WRIT-PARSE-001"), "{found:?}");
    // s3:* on *, reported at its statement in the original text.
    assert!(found.contains(&("WRIT-IAM-001", 9, 13)), "{found:?}");
}

#[test]
fn a_flow_mapping_closed_at_column_one_is_read() {
    let text = "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Url:\n    Type: AWS::Lambda::Url\n    Properties: {\n  TargetFunctionArn: !GetAtt Fn.Arn,\n  AuthType: NONE\n}\n";
    let found = rules_at("template.yml", text);
    assert_eq!(found, vec![("WRIT-URL-001", 7, 13)]);
}

#[test]
fn a_quoted_scalar_continued_left_of_its_key_is_read() {
    let text = "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Url:\n    Type: AWS::Lambda::Url\n    Properties:\n      TargetFunctionArn: \"arn:aws:lambda:us-east-1:\n123456789012:function:f\"\n      AuthType: NONE\n";
    let found = rules_at("template.yaml", text);
    assert_eq!(found, vec![("WRIT-URL-001", 8, 17)]);
}

#[test]
fn invalid_flow_is_still_a_parse_error_with_its_position() {
    let text = "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  P:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      Tags: [a,\n  b,,\n]\n";
    let found = rules_at("template.yaml", text);
    assert_eq!(found, vec![("WRIT-PARSE-001", 7, 5)]);
}
