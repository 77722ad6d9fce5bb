//! SAM policy templates (`- DynamoDBCrudPolicy: {TableName: !Ref Table}`) are expanded as
//! SAM does, from the vendored aws-sam-translator templates, and checked like any policy,
//! in `AWS::Serverless::Function` and `AWS::Serverless::StateMachine`, YAML and JSON.

use writ_lint::{Config, Finding, lint_source};

fn lint(file: &str, text: &str) -> Vec<Finding> {
    let found = lint_source(file, text, &Config::default()).findings;
    assert!(
        !found.iter().any(|f| f.rule == "WRIT-PARSE-001"),
        "{file} must parse"
    );
    found
}

fn rules(found: &[Finding]) -> Vec<&'static str> {
    found
        .iter()
        .map(|f| f.rule)
        .filter(|r| r.starts_with("WRIT-IAM"))
        .collect()
}

/// A SAM template whose function has the policy entry `ENTRY` (YAML, at 8 spaces).
fn function(entry: &str) -> String {
    format!(
        "AWSTemplateFormatVersion: \"2010-09-09\"\nTransform: AWS::Serverless-2016-10-31\nParameters:\n  TableParam:\n    Type: String\n  NamedTable:\n    Type: String\n    Default: orders\nResources:\n  Orders:\n    Type: AWS::DynamoDB::Table\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      Policies:\n        - {entry}\n"
    )
}

#[test]
fn a_template_on_a_named_resource_is_that_resource() {
    for entry in [
        "DynamoDBCrudPolicy: {TableName: !Ref Orders}",
        "DynamoDBCrudPolicy: {TableName: !Ref NamedTable}",
        "DynamoDBCrudPolicy: {TableName: orders}",
        "S3ReadPolicy: {BucketName: uploads}",
        "SQSSendMessagePolicy: {QueueName: !GetAtt Orders.QueueName}",
        "AWSSecretsManagerGetSecretValuePolicy: {SecretArn: !Ref Orders}",
    ] {
        let found = lint("t.yaml", &function(entry));
        assert_eq!(rules(&found), Vec::<&str>::new(), "{entry}");
    }
}

#[test]
fn an_unknown_parameter_could_be_anything() {
    // A template parameter without a default, or a parameter the entry leaves out.
    for entry in [
        "DynamoDBCrudPolicy: {TableName: !Ref TableParam}",
        "DynamoDBCrudPolicy: {}",
        "DynamoDBCrudPolicy: {TableName: !Sub \"${AWS::StackName}-orders\"}",
    ] {
        let found = lint("t.yaml", &function(entry));
        let got = rules(&found);
        assert!(
            got.contains(&"WRIT-IAM-006") && got.contains(&"WRIT-IAM-008"),
            "{entry}: {got:?}"
        );
        let f = found.iter().find(|f| f.rule == "WRIT-IAM-008").unwrap();
        // At the entry, named after it.
        assert_eq!((f.line, f.column), (17, 11), "{entry}");
        assert!(
            f.message.starts_with("Fn.Policies[0].DynamoDBCrudPolicy statement 1 allows reading data from every resource (arn:aws:dynamodb:*:*:table/*)"),
            "{}",
            f.message
        );
    }
    let found = lint(
        "t.yaml",
        &function("S3ReadPolicy: {BucketName: !Ref TableParam}"),
    );
    assert!(rules(&found).contains(&"WRIT-IAM-008"), "{found:?}");
}

#[test]
fn templates_that_are_broad_by_themselves() {
    let found = lint("t.yaml", &function("TextractPolicy: {}"));
    assert!(rules(&found).contains(&"WRIT-IAM-001"), "{found:?}");
    let found = lint("t.yaml", &function("VPCAccessPolicy: {}"));
    assert!(rules(&found).contains(&"WRIT-IAM-006"), "{found:?}");
    // Only `*`-only actions: nothing to narrow.
    let found = lint("t.yaml", &function("CloudWatchPutMetricPolicy: {}"));
    assert_eq!(rules(&found), Vec::<&str>::new());
    // A managed policy name or an unknown template is not read.
    let found = lint("t.yaml", &function("AWSLambdaExecute"));
    assert_eq!(rules(&found), Vec::<&str>::new());
    let found = lint("t.yaml", &function("NoSuchPolicy: {Name: x}"));
    assert_eq!(rules(&found), Vec::<&str>::new());
}

#[test]
fn json_templates_expand_too() {
    let template = |table: &str| {
        format!(
            r#"{{"Transform": "AWS::Serverless-2016-10-31", "Parameters": {{"TableParam": {{"Type": "String"}}}}, "Resources": {{"Orders": {{"Type": "AWS::DynamoDB::Table"}}, "Fn": {{"Type": "AWS::Serverless::Function", "Properties": {{"Runtime": "python3.12", "Policies": [{{"DynamoDBReadPolicy": {{"TableName": {table}}}}}]}}}}}}}}"#
        )
    };
    assert_eq!(
        rules(&lint("t.json", &template(r#"{"Ref": "Orders"}"#))),
        Vec::<&str>::new()
    );
    let got = rules(&lint("t.json", &template(r#"{"Ref": "TableParam"}"#)));
    assert!(got.contains(&"WRIT-IAM-008"), "{got:?}");
}

#[test]
fn state_machine_policies_are_read() {
    let machine = |policies: &str| {
        format!(
            "Transform: AWS::Serverless-2016-10-31\nResources:\n  Worker:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n  Flow:\n    Type: AWS::Serverless::StateMachine\n    Properties:\n      Policies:\n{policies}"
        )
    };
    let ok = machine("        - LambdaInvokePolicy: {FunctionName: !Ref Worker}\n");
    assert_eq!(rules(&lint("m.yaml", &ok)), Vec::<&str>::new());
    let any = machine(
        "        - LambdaInvokePolicy: {FunctionName: !Ref Missing}\n        - SQSSendMessagePolicy: {QueueName: \"*\"}\n",
    );
    let got = rules(&lint("m.yaml", &any));
    assert!(got.contains(&"WRIT-IAM-006"), "{got:?}");
    let inline = machine(
        "        - Statement:\n            - Effect: Allow\n              Action: \"*\"\n              Resource: \"*\"\n",
    );
    let got = rules(&lint("m.yaml", &inline));
    assert!(got.contains(&"WRIT-IAM-001"), "{got:?}");
}
