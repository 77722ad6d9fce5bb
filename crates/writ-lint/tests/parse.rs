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

fn duplicates(name: &str, text: &str) -> Vec<(u32, u32, String)> {
    lint_source(name, text, &Config::default())
        .findings
        .iter()
        .filter(|f| f.rule == "WRIT-PARSE-002")
        .map(|f| (f.line, f.column, f.message.clone()))
        .collect()
}

#[test]
fn a_duplicate_key_is_read_and_reported_as_a_warning() {
    let text = "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Url:\n    Type: AWS::Lambda::Url\n    Properties:\n      AuthType: NONE\n      TargetFunctionArn: arn\n      AuthType: AWS_IAM\n";
    let report = lint_source("template.yaml", text, &Config::default());
    // Still read and checked (the first value), and the repeat is a medium finding.
    let rules: Vec<_> = report.findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"WRIT-URL-001"), "{rules:?}");
    let dup = report
        .findings
        .iter()
        .find(|f| f.rule == "WRIT-PARSE-002")
        .expect("a duplicate-key finding");
    assert_eq!((dup.line, dup.column), (8, 7));
    assert_eq!(dup.severity, writ_lint::Severity::Medium);
    assert!(dup.message.contains("\"AuthType\""), "{}", dup.message);
    assert!(dup.message.contains("line 6, column 7"), "{}", dup.message);
}

#[test]
fn duplicate_keys_in_json_policies_and_large_mappings_are_reported() {
    let policy = "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\",\n \"Action\": \"s3:GetObject\", \"Resource\": \"*\", \"Action\": \"s3:*\"}]}";
    let found = duplicates("policy.json", policy);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (2, 45));
    // More than eight keys take the sorting path.
    let mut text = String::from("AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n");
    for i in 0..20 {
        text.push_str(&format!("  Q{i}:\n    Type: AWS::SQS::Queue\n"));
    }
    text.push_str("  Q3:\n    Type: AWS::SNS::Topic\n");
    let found = duplicates("template.yaml", &text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0, found[0].1), (43, 3));
    assert!(found[0].2.contains("line 9, column 3"), "{}", found[0].2);
    assert!(duplicates("template.yaml", "AWSTemplateFormatVersion: x\nA: 1\nB: 1\n").is_empty());
}

/// Lints `text` as `name`: its findings and why it was skipped, if it was.
fn skip_of(name: &str, text: &str) -> (Vec<&'static str>, Option<String>) {
    let r = lint_source(name, text, &Config::default());
    (r.findings.iter().map(|f| f.rule).collect(), r.skipped)
}

#[test]
fn files_that_are_not_templates_are_skipped_not_failed() {
    let sln = "\u{feff}\nMicrosoft Visual Studio Solution File, Format Version 12.00\nProject(\"{FAE04EC0}\") = \"$safeprojectname$\", \"{$guid1$}\"\nEndProject\nGlobal\n\tGlobalSection(SolutionConfigurationPlatforms) = preSolution\n\tEndGlobalSection\nEndGlobal\n";
    for (name, text) in [
        ("App.sln.template", sln),
        ("ci.yml", "name: build\non: [push\nsteps:\n  - run: make\n"),
        (
            "package.json",
            "{\"name\": \"app\", \"scripts\": {\"build\": \"tsc\",}}",
        ),
        ("odd.template", "{ not json at all"),
    ] {
        let (rules, skipped) = skip_of(name, text);
        assert!(rules.is_empty(), "{name}: {rules:?}");
        let why = skipped.unwrap_or_else(|| panic!("{name}: not skipped"));
        // A solution file happens to be valid YAML; the others are not.
        let invalid = name != "App.sln.template";
        assert_eq!(
            why.contains("not valid YAML or JSON") && why.contains("line "),
            invalid,
            "{name}: {why}"
        );
    }
    let (rules, skipped) = skip_of("config.yaml", "db:\n  host: localhost\n");
    assert!(rules.is_empty());
    assert!(
        skipped
            .unwrap()
            .contains("not a CloudFormation/SAM template")
    );
}

#[test]
fn templates_and_policies_with_syntax_errors_still_fail() {
    for (name, text) in [
        (
            "t.yaml",
            "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Fn: [unclosed\n",
        ),
        ("t.template", "Resources:\n  Fn: {a: [b\n"),
        ("t.json", "{\"Resources\": {\"Fn\": }}"),
        ("p.json", "{\"Version\": \"2012-10-17\", \"Statement\": [}"),
        (
            "sam.yaml",
            "Transform: AWS::Serverless-2016-10-31\nGlobals: [\n",
        ),
    ] {
        let (rules, skipped) = skip_of(name, text);
        assert_eq!(rules, vec!["WRIT-PARSE-001"], "{name}");
        assert_eq!(skipped, None, "{name}");
    }
    let (_, skipped) = skip_of(
        "t.yaml",
        "AWSTemplateFormatVersion: \"2010-09-09\"\nResources: {}\n",
    );
    assert_eq!(skipped, None);
}
