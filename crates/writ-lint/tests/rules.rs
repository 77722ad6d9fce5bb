//! Every rule, failing and passing, in each format where it applies: Terraform, CloudFormation
//! YAML, CloudFormation JSON and standalone IAM policy JSON.

use writ_lint::{Config, lint_source};

fn rules_of(file: &str, text: &str, config: &Config) -> Vec<&'static str> {
    lint_source(file, text, config)
        .findings
        .iter()
        .map(|f| f.rule)
        .collect()
}

#[track_caller]
fn fails(rule: &str, file: &str, text: &str) {
    let got = rules_of(file, text, &Config::default());
    assert!(
        got.contains(&rule),
        "{rule} expected in {file}, got {got:?}\n{text}"
    );
}

#[track_caller]
fn passes(rule: &str, file: &str, text: &str) {
    let got = rules_of(file, text, &Config::default());
    assert!(
        !got.contains(&rule),
        "{rule} not expected in {file}, got {got:?}\n{text}"
    );
    assert!(
        !got.contains(&"WRIT-PARSE-001"),
        "{file} must parse: {got:?}"
    );
}

/// A Terraform function that passes every function rule.
const TF_FN: &str = r#"
resource "aws_lambda_function" "api" {
  function_name                  = "api"
  role                           = aws_iam_role.api.arn
  runtime                        = "python3.12"
  kms_key_arn                    = aws_kms_key.fn.arn
  reserved_concurrent_executions = 10
  code_signing_config_arn        = aws_lambda_code_signing_config.c.arn
  tracing_config {
    mode = "Active"
  }
  dead_letter_config {
    target_arn = aws_sqs_queue.dlq.arn
  }
  environment {
    variables = {
      TABLE = "orders"
    }
  }
}
"#;

/// A CloudFormation YAML function that passes every function rule.
const YAML_FN: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Api:
    Type: AWS::Lambda::Function
    Properties:
      Role: !GetAtt ApiRole.Arn
      Runtime: python3.12
      KmsKeyArn: !GetAtt Key.Arn
      ReservedConcurrentExecutions: 10
      CodeSigningConfigArn: !Ref Signing
      TracingConfig:
        Mode: Active
      DeadLetterConfig:
        TargetArn: !GetAtt Dlq.Arn
      Environment:
        Variables:
          TABLE: orders
"#;

/// The same in JSON.
const JSON_FN: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {
    "Api": {
      "Type": "AWS::Lambda::Function",
      "Properties": {
        "Role": {"Fn::GetAtt": ["ApiRole", "Arn"]},
        "Runtime": "python3.12",
        "KmsKeyArn": {"Fn::GetAtt": ["Key", "Arn"]},
        "ReservedConcurrentExecutions": 10,
        "CodeSigningConfigArn": {"Ref": "Signing"},
        "TracingConfig": {"Mode": "Active"},
        "DeadLetterConfig": {"TargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}},
        "Environment": {"Variables": {"TABLE": "orders"}}
      }
    }
  }
}"#;

#[test]
fn hardened_functions_have_no_findings() {
    for (file, text) in [("a.tf", TF_FN), ("a.yaml", YAML_FN), ("a.json", JSON_FN)] {
        let got = rules_of(file, text, &Config::default());
        assert!(got.is_empty(), "{file}: {got:?}");
    }
}

#[track_caller]
fn variants(rule: &str, edits: [(&str, &str); 3]) {
    let bases = [("a.tf", TF_FN), ("a.yaml", YAML_FN), ("a.json", JSON_FN)];
    for ((file, base), (from, to)) in bases.into_iter().zip(edits) {
        assert!(base.contains(from), "{file}: {from:?} not in base");
        passes(rule, file, base);
        fails(rule, file, &base.replacen(from, to, 1));
    }
}

#[test]
fn deprecated_runtime() {
    variants(
        "WRIT-RUNTIME-001",
        [
            ("\"python3.12\"", "\"python3.8\""),
            ("python3.12", "nodejs16.x"),
            ("\"python3.12\"", "\"dotnetcore3.1\""),
        ],
    );
    passes(
        "WRIT-RUNTIME-001",
        "a.tf",
        &TF_FN.replace("python3.12", "java8.al2"),
    );
    fails(
        "WRIT-RUNTIME-001",
        "a.tf",
        &TF_FN.replace("python3.12", "java8"),
    );
    fails(
        "WRIT-RUNTIME-001",
        "a.tf",
        &TF_FN.replace("python3.12", "ruby2.7"),
    );
}

#[test]
fn tracing() {
    variants(
        "WRIT-TRACE-001",
        [
            ("\"Active\"", "\"PassThrough\""),
            ("Mode: Active", "Mode: PassThrough"),
            ("{\"Mode\": \"Active\"}", "{}"),
        ],
    );
}

#[test]
fn dead_letter_queue() {
    variants(
        "WRIT-DLQ-001",
        [
            ("target_arn = aws_sqs_queue.dlq.arn", ""),
            ("DeadLetterConfig:", "Other:"),
            ("\"DeadLetterConfig\"", "\"Other\""),
        ],
    );
    // An on-failure destination counts as well as a dead-letter queue.
    let without = TF_FN.replace("target_arn = aws_sqs_queue.dlq.arn", "");
    let with_destination = format!(
        "{without}\nresource \"aws_lambda_function_event_invoke_config\" \"api\" {{\n  function_name = aws_lambda_function.api.function_name\n  destination_config {{\n    on_failure {{\n      destination = aws_sqs_queue.failed.arn\n    }}\n  }}\n}}\n"
    );
    passes("WRIT-DLQ-001", "a.tf", &with_destination);
}

#[test]
fn reserved_concurrency() {
    variants(
        "WRIT-CONC-001",
        [
            (
                "reserved_concurrent_executions = 10",
                "reserved_concurrent_executions = -1",
            ),
            ("ReservedConcurrentExecutions: 10", ""),
            ("\"ReservedConcurrentExecutions\": 10,", ""),
        ],
    );
}

#[test]
fn code_signing() {
    variants(
        "WRIT-SIGN-001",
        [
            ("code_signing_config_arn", "description"),
            ("CodeSigningConfigArn", "Description"),
            ("\"CodeSigningConfigArn\"", "\"Description\""),
        ],
    );
}

#[test]
fn kms_key() {
    variants(
        "WRIT-KMS-001",
        [
            ("kms_key_arn", "description"),
            ("KmsKeyArn", "Description"),
            ("\"KmsKeyArn\"", "\"Description\""),
        ],
    );
}

#[test]
fn secret_names() {
    variants(
        "WRIT-ENV-001",
        [
            ("TABLE = \"orders\"", "DB_PASSWORD = \"hunter2-orders\""),
            ("TABLE: orders", "API_KEY: k-orders-1"),
            ("\"TABLE\": \"orders\"", "\"JWT_SECRET\": \"change-me\""),
        ],
    );
    // References to a secret are the right way.
    passes(
        "WRIT-ENV-001",
        "a.tf",
        &TF_FN.replace(
            "TABLE = \"orders\"",
            "DB_PASSWORD_ARN = aws_secretsmanager_secret.db.arn",
        ),
    );
    passes(
        "WRIT-ENV-001",
        "a.yaml",
        &YAML_FN.replace(
            "TABLE: orders",
            "DB_PASSWORD: '{{resolve:secretsmanager:db:SecretString:password}}'",
        ),
    );
    // A Terraform variable still lands in the function's configuration in plain text.
    fails(
        "WRIT-ENV-001",
        "a.tf",
        &TF_FN.replace("TABLE = \"orders\"", "DB_PASSWORD = var.db_password"),
    );
}

#[test]
fn credential_values_never_printed() {
    let key = "AKIAIOSFODNN7EXAMPLE";
    let pem = "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----";
    variants(
        "WRIT-ENV-002",
        [
            ("TABLE = \"orders\"", &format!("UPSTREAM = \"{key}\"")),
            ("TABLE: orders", "SLACK: xoxb-123456789012-abcdefghij"),
            ("\"TABLE\": \"orders\"", &format!("\"CERT\": \"{pem}\"")),
        ],
    );
    let text = TF_FN.replace("TABLE = \"orders\"", &format!("UPSTREAM = \"{key}\""));
    let r = lint_source("a.tf", &text, &Config::default());
    for f in &r.findings {
        assert!(
            !f.message.contains(key) && !f.subject.contains(key),
            "{f:?}"
        );
    }
}

#[test]
fn high_entropy_values() {
    let v = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    variants(
        "WRIT-ENV-003",
        [
            ("TABLE = \"orders\"", &format!("UPSTREAM = \"{v}\"")),
            ("TABLE: orders", &format!("UPSTREAM: {v}")),
            ("\"TABLE\": \"orders\"", &format!("\"UPSTREAM\": \"{v}\"")),
        ],
    );
}

#[test]
fn names_are_not_high_entropy_secrets() {
    // Each of these has entropy above the threshold; they are names, not secrets.
    for v in [
        "anthropic.claude-instant-v1",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/orders:v1.2.3",
        "com.example.orders.OrderHandler::handleRequest",
        "team:payments/env:production/CostCenter:4711",
    ] {
        for (file, base, from, to) in [
            (
                "a.tf",
                TF_FN,
                "TABLE = \"orders\"",
                format!("MODEL_ID = \"{v}\""),
            ),
            (
                "a.yaml",
                YAML_FN,
                "TABLE: orders",
                format!("MODEL_ID: \"{v}\""),
            ),
            (
                "a.json",
                JSON_FN,
                "\"TABLE\": \"orders\"",
                format!("\"MODEL_ID\": \"{v}\""),
            ),
        ] {
            passes("WRIT-ENV-003", file, &base.replacen(from, &to, 1));
        }
    }
    // A token with dots is still one when its parts are random (a JWT).
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    fails(
        "WRIT-ENV-003",
        "a.yaml",
        &YAML_FN.replacen("TABLE: orders", &format!("UPSTREAM: {jwt}"), 1),
    );
}

#[test]
fn shared_role() {
    let tf_two = format!("{TF_FN}{}", TF_FN.replace("\"api\" {", "\"worker\" {"));
    passes("WRIT-ROLE-001", "a.tf", TF_FN);
    fails("WRIT-ROLE-001", "a.tf", &tf_two);
    let tf_own = format!(
        "{TF_FN}{}",
        TF_FN
            .replace("\"api\" {", "\"worker\" {")
            .replace("aws_iam_role.api.arn", "aws_iam_role.worker.arn")
    );
    passes("WRIT-ROLE-001", "a.tf", &tf_own);
    let yaml_two = format!(
        "{YAML_FN}{}",
        YAML_FN
            .split_once("Resources:\n")
            .unwrap()
            .1
            .replace("  Api:", "  Worker:")
    );
    fails("WRIT-ROLE-001", "a.yaml", &yaml_two);
    let json_two = JSON_FN.replace(
        "\"Resources\": {",
        "\"Resources\": {\"Worker\": {\"Type\": \"AWS::Lambda::Function\", \"Properties\": {\"Role\": {\"Fn::GetAtt\": \"ApiRole.Arn\"}}},",
    );
    fails("WRIT-ROLE-001", "a.json", &json_two);
}

#[test]
fn shared_role_across_files_of_one_module() {
    let dir = std::env::temp_dir().join(format!("writ-lint-roles-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.tf"), TF_FN).unwrap();
    std::fs::write(dir.join("b.tf"), TF_FN.replace("\"api\" {", "\"worker\" {")).unwrap();
    let (files, errors) = writ_lint::walk::collect(std::slice::from_ref(&dir));
    assert!(errors.is_empty());
    let reports = writ_lint::walk::lint_files(&files, &Config::default(), 2, None);
    for r in &reports {
        assert!(
            r.findings.iter().any(|f| f.rule == "WRIT-ROLE-001"),
            "{:?}",
            r.findings
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layers_outside_the_allow_list() {
    let config = Config {
        allow_layer_accounts: vec!["123456789012".into()],
    };
    let ours = "arn:aws:lambda:us-east-1:123456789012:layer:deps:4";
    let theirs = "arn:aws:lambda:us-east-1:999999999999:layer:deps:4";
    for (file, base, from, fmt) in [
        ("a.tf", TF_FN, "runtime ", "layers = [\"{}\"]\n  runtime "),
        (
            "a.yaml",
            YAML_FN,
            "      Runtime:",
            "      Layers: [\"{}\"]\n      Runtime:",
        ),
        (
            "a.json",
            JSON_FN,
            "\"Runtime\"",
            "\"Layers\": [\"{}\"], \"Runtime\"",
        ),
    ] {
        let with = |arn: &str| base.replacen(from, &fmt.replace("{}", arn), 1);
        assert!(
            !rules_of(file, &with(ours), &config).contains(&"WRIT-LAYER-001"),
            "{file}"
        );
        assert!(
            rules_of(file, &with(theirs), &config).contains(&"WRIT-LAYER-001"),
            "{file}"
        );
        // Without an allow list the rule is off.
        assert!(!rules_of(file, &with(theirs), &Config::default()).contains(&"WRIT-LAYER-001"));
    }
}

#[test]
fn function_url_auth() {
    let tf = "resource \"aws_lambda_function_url\" \"u\" {\n  function_name = aws_lambda_function.api.function_name\n  authorization_type = \"AWS_IAM\"\n}\n";
    passes("WRIT-URL-001", "u.tf", tf);
    fails("WRIT-URL-001", "u.tf", &tf.replace("AWS_IAM", "NONE"));
    let yaml = "Resources:\n  U:\n    Type: AWS::Lambda::Url\n    Properties:\n      TargetFunctionArn: !Ref Api\n      AuthType: AWS_IAM\n";
    passes("WRIT-URL-001", "u.yaml", yaml);
    fails("WRIT-URL-001", "u.yaml", &yaml.replace("AWS_IAM", "NONE"));
    let sam = "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.12\n      FunctionUrlConfig:\n        AuthType: AWS_IAM\n";
    passes("WRIT-URL-001", "sam.yaml", sam);
    fails("WRIT-URL-001", "sam.yaml", &sam.replace("AWS_IAM", "NONE"));
    let json = r#"{"Resources": {"U": {"Type": "AWS::Lambda::Url", "Properties": {"TargetFunctionArn": {"Ref": "Api"}, "AuthType": "AWS_IAM"}}}}"#;
    passes("WRIT-URL-001", "u.json", json);
    fails("WRIT-URL-001", "u.json", &json.replace("AWS_IAM", "NONE"));
}

#[test]
fn cors_any_origin_with_credentials() {
    let tf = "resource \"aws_lambda_function_url\" \"u\" {\n  authorization_type = \"AWS_IAM\"\n  cors {\n    allow_credentials = true\n    allow_origins = [\"https://app.example.com\"]\n  }\n}\n";
    passes("WRIT-CORS-001", "u.tf", tf);
    fails(
        "WRIT-CORS-001",
        "u.tf",
        &tf.replace("https://app.example.com", "*"),
    );
    passes(
        "WRIT-CORS-001",
        "u.tf",
        &tf.replace("https://app.example.com", "*")
            .replace("true", "false"),
    );
    let tf_api = "resource \"aws_apigatewayv2_api\" \"a\" {\n  cors_configuration {\n    allow_origins = [\"*\"]\n    allow_credentials = true\n  }\n}\n";
    fails("WRIT-CORS-001", "a.tf", tf_api);
    let sam_api = "Resources:\n  Api:\n    Type: AWS::Serverless::Api\n    Properties:\n      Cors:\n        AllowOrigin: \"'https://app.example.com'\"\n        AllowCredentials: true\n";
    passes("WRIT-CORS-001", "api.yaml", sam_api);
    fails(
        "WRIT-CORS-001",
        "api.yaml",
        &sam_api.replace("https://app.example.com", "*"),
    );
    let json = r#"{"Resources": {"U": {"Type": "AWS::Lambda::Url", "Properties": {"AuthType": "AWS_IAM", "Cors": {"AllowOrigins": ["https://app.example.com"], "AllowCredentials": true}}}}}"#;
    passes("WRIT-CORS-001", "u.json", json);
    fails(
        "WRIT-CORS-001",
        "u.json",
        &json.replace("https://app.example.com", "*"),
    );
}

#[test]
fn permission_source_guard() {
    let tf = "resource \"aws_lambda_permission\" \"s3\" {\n  action = \"lambda:InvokeFunction\"\n  function_name = aws_lambda_function.api.function_name\n  principal = \"s3.amazonaws.com\"\n  source_arn = aws_s3_bucket.in.arn\n  source_account = \"123456789012\"\n}\n";
    passes("WRIT-PERM-001", "p.tf", tf);
    fails(
        "WRIT-PERM-001",
        "p.tf",
        &tf.replace("  source_arn = aws_s3_bucket.in.arn\n", "")
            .replace("  source_account = \"123456789012\"\n", ""),
    );
    let yaml = "Resources:\n  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      Action: lambda:InvokeFunction\n      FunctionName: !Ref Api\n      Principal: events.amazonaws.com\n      SourceArn: !GetAtt Rule.Arn\n";
    passes("WRIT-PERM-001", "p.yaml", yaml);
    fails(
        "WRIT-PERM-001",
        "p.yaml",
        &yaml.replace("      SourceArn: !GetAtt Rule.Arn\n", ""),
    );
    let json = r#"{"Resources": {"P": {"Type": "AWS::Lambda::Permission", "Properties": {"Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "Api"}, "Principal": "sns.amazonaws.com", "SourceArn": {"Ref": "Topic"}}}}}"#;
    passes("WRIT-PERM-001", "p.json", json);
    fails(
        "WRIT-PERM-001",
        "p.json",
        &json.replace(", \"SourceArn\": {\"Ref\": \"Topic\"}", ""),
    );
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:api", "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}}]}"#;
    passes("WRIT-PERM-001", "fn-policy.json", policy);
    let unguarded = policy.replace(r#", "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/*"}}"#, "");
    fails("WRIT-PERM-001", "fn-policy.json", &unguarded);
    // A role trust policy lets lambda.amazonaws.com assume the role: no source guard needed.
    let trust = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    let got = rules_of("trust.json", trust, &Config::default());
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn public_principal() {
    let tf = "resource \"aws_lambda_permission\" \"p\" {\n  function_name = aws_lambda_function.api.function_name\n  principal = \"123456789012\"\n}\n";
    passes("WRIT-PERM-002", "p.tf", tf);
    fails("WRIT-PERM-002", "p.tf", &tf.replace("123456789012", "*"));
    let yaml = "Resources:\n  P:\n    Type: AWS::Lambda::Permission\n    Properties:\n      FunctionName: !Ref Api\n      Principal: \"123456789012\"\n";
    passes("WRIT-PERM-002", "p.yaml", yaml);
    fails(
        "WRIT-PERM-002",
        "p.yaml",
        &yaml.replace("123456789012", "*"),
    );
    let json = r#"{"Resources": {"P": {"Type": "AWS::Lambda::Permission", "Properties": {"FunctionName": {"Ref": "Api"}, "Principal": "123456789012"}}}}"#;
    passes("WRIT-PERM-002", "p.json", json);
    fails(
        "WRIT-PERM-002",
        "p.json",
        &json.replace("123456789012", "*"),
    );
    let policy = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}]}"#;
    passes("WRIT-PERM-002", "bucket.json", policy);
    fails(
        "WRIT-PERM-002",
        "bucket.json",
        &policy.replace(r#"{"AWS": "arn:aws:iam::123456789012:root"}"#, r#""*""#),
    );
}

#[test]
fn security_group_egress() {
    let tf = r#"
resource "aws_lambda_function" "api" {
  vpc_config {
    subnet_ids         = [aws_subnet.a.id]
    security_group_ids = [aws_security_group.fn.id]
  }
}
resource "aws_security_group" "fn" {
  egress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"#;
    passes("WRIT-SG-001", "sg.tf", tf);
    let open = tf
        .replace("from_port   = 443", "from_port   = 0")
        .replace("to_port     = 443", "to_port     = 0")
        .replace("\"tcp\"", "\"-1\"");
    fails("WRIT-SG-001", "sg.tf", &open);
    // Only a function's group counts.
    passes(
        "WRIT-SG-001",
        "sg.tf",
        &open.replace("aws_security_group.fn.id", "aws_security_group.other.id"),
    );
    let rule = "resource \"aws_lambda_function\" \"api\" {\n  vpc_config {\n    security_group_ids = [aws_security_group.fn.id]\n  }\n}\nresource \"aws_vpc_security_group_egress_rule\" \"all\" {\n  security_group_id = aws_security_group.fn.id\n  cidr_ipv4 = \"0.0.0.0/0\"\n  ip_protocol = \"-1\"\n}\n";
    fails("WRIT-SG-001", "rule.tf", rule);
    passes(
        "WRIT-SG-001",
        "rule.tf",
        &rule.replace("0.0.0.0/0", "10.0.0.0/8"),
    );
    let yaml = "Resources:\n  Api:\n    Type: AWS::Lambda::Function\n    Properties:\n      VpcConfig:\n        SecurityGroupIds: [!Ref Sg]\n  Sg:\n    Type: AWS::EC2::SecurityGroup\n    Properties:\n      GroupDescription: fn\n      SecurityGroupEgress:\n        - IpProtocol: tcp\n          FromPort: 443\n          ToPort: 443\n          CidrIp: 10.0.0.0/8\n";
    passes("WRIT-SG-001", "sg.yaml", yaml);
    fails(
        "WRIT-SG-001",
        "sg.yaml",
        &yaml
            .replace("IpProtocol: tcp", "IpProtocol: -1")
            .replace("10.0.0.0/8", "0.0.0.0/0"),
    );
    // Without SecurityGroupEgress, CloudFormation keeps the default allow-all rule.
    let default_open = yaml.split("      SecurityGroupEgress:").next().unwrap();
    fails("WRIT-SG-001", "sg.yaml", default_open);
    let json = r#"{"Resources": {"Api": {"Type": "AWS::Lambda::Function", "Properties": {"VpcConfig": {"SecurityGroupIds": [{"Fn::GetAtt": ["Sg", "GroupId"]}]}}}, "Sg": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"SecurityGroupEgress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8"}]}}}}"#;
    passes("WRIT-SG-001", "sg.json", json);
    fails(
        "WRIT-SG-001",
        "sg.json",
        &json
            .replace("\"tcp\"", "\"-1\"")
            .replace("10.0.0.0/8", "0.0.0.0/0"),
    );
}

const IAM_OK: &str = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"}]}"#;

#[test]
fn wildcard_actions_on_every_resource() {
    passes("WRIT-IAM-001", "p.json", IAM_OK);
    fails(
        "WRIT-IAM-001",
        "p.json",
        &IAM_OK
            .replace("dynamodb:GetItem", "*")
            .replace("arn:aws:dynamodb:us-east-1:123456789012:table/orders", "*"),
    );
    fails(
        "WRIT-IAM-001",
        "p.json",
        &IAM_OK
            .replace("dynamodb:GetItem", "s3:*")
            .replace("arn:aws:dynamodb:us-east-1:123456789012:table/orders", "*"),
    );
    passes(
        "WRIT-IAM-001",
        "p.json",
        &IAM_OK.replace("dynamodb:GetItem", "s3:*"),
    );
    let tf = "resource \"aws_iam_role_policy\" \"p\" {\n  role = aws_iam_role.api.id\n  policy = jsonencode({\n    Version = \"2012-10-17\"\n    Statement = [{\n      Effect = \"Allow\"\n      Action = [\"dynamodb:GetItem\"]\n      Resource = aws_dynamodb_table.orders.arn\n    }]\n  })\n}\n";
    passes("WRIT-IAM-001", "p.tf", tf);
    fails(
        "WRIT-IAM-001",
        "p.tf",
        &tf.replace("\"dynamodb:GetItem\"", "\"*\"")
            .replace("aws_dynamodb_table.orders.arn", "\"*\""),
    );
    // Through a local, a heredoc and a policy document data source.
    let local = format!(
        "locals {{\n  everything = \"*\"\n}}\n{}",
        tf.replace("\"dynamodb:GetItem\"", "local.everything")
            .replace("aws_dynamodb_table.orders.arn", "local.everything")
    );
    fails("WRIT-IAM-001", "p.tf", &local);
    let heredoc = "resource \"aws_iam_policy\" \"p\" {\n  policy = <<EOF\n{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"ec2:*\", \"Resource\": \"*\"}]}\nEOF\n}\n";
    fails("WRIT-IAM-001", "p.tf", heredoc);
    let data = "data \"aws_iam_policy_document\" \"d\" {\n  statement {\n    actions   = [\"s3:GetObject\"]\n    resources = [\"arn:aws:s3:::b/*\"]\n  }\n}\n";
    passes("WRIT-IAM-001", "d.tf", data);
    fails(
        "WRIT-IAM-001",
        "d.tf",
        &data
            .replace("\"s3:GetObject\"", "\"s3:*\"")
            .replace("\"arn:aws:s3:::b/*\"", "\"*\""),
    );
    let yaml = "Resources:\n  P:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Action: dynamodb:GetItem\n            Resource: !GetAtt Table.Arn\n";
    passes("WRIT-IAM-001", "p.yaml", yaml);
    fails(
        "WRIT-IAM-001",
        "p.yaml",
        &yaml
            .replace("dynamodb:GetItem", "\"*\"")
            .replace("!GetAtt Table.Arn", "\"*\""),
    );
    let json = format!(
        r#"{{"Resources": {{"P": {{"Type": "AWS::IAM::Policy", "Properties": {{"PolicyDocument": {IAM_OK}}}}}}}}}"#
    );
    passes("WRIT-IAM-001", "p.json", &json);
    fails(
        "WRIT-IAM-001",
        "p.json",
        &json
            .replace("dynamodb:GetItem", "*")
            .replace("arn:aws:dynamodb:us-east-1:123456789012:table/orders", "*"),
    );
}

#[test]
fn pass_role_on_every_role() {
    let ok = IAM_OK.replace("dynamodb:GetItem", "iam:PassRole").replace(
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
        "arn:aws:iam::123456789012:role/worker",
    );
    passes("WRIT-IAM-002", "p.json", &ok);
    fails(
        "WRIT-IAM-002",
        "p.json",
        &ok.replace("arn:aws:iam::123456789012:role/worker", "*"),
    );
    fails(
        "WRIT-IAM-002",
        "p.json",
        &ok.replace("iam:PassRole", "iam:Pass*")
            .replace("arn:aws:iam::123456789012:role/worker", "*"),
    );
    let tf = "data \"aws_iam_policy_document\" \"d\" {\n  statement {\n    actions   = [\"iam:PassRole\"]\n    resources = [aws_iam_role.worker.arn]\n  }\n}\n";
    passes("WRIT-IAM-002", "d.tf", tf);
    fails(
        "WRIT-IAM-002",
        "d.tf",
        &tf.replace("aws_iam_role.worker.arn", "\"*\""),
    );
    let yaml = "Resources:\n  P:\n    Type: AWS::IAM::Policy\n    Properties:\n      PolicyDocument:\n        Statement:\n          - Effect: Allow\n            Action: iam:PassRole\n            Resource: !GetAtt Worker.Arn\n";
    passes("WRIT-IAM-002", "p.yaml", yaml);
    fails(
        "WRIT-IAM-002",
        "p.yaml",
        &yaml.replace("!GetAtt Worker.Arn", "'*'"),
    );
}

#[test]
fn not_action_and_not_resource_with_allow() {
    passes("WRIT-IAM-003", "p.json", IAM_OK);
    fails(
        "WRIT-IAM-003",
        "p.json",
        &IAM_OK.replace("\"Action\"", "\"NotAction\""),
    );
    fails(
        "WRIT-IAM-003",
        "p.json",
        &IAM_OK.replace("\"Resource\"", "\"NotResource\""),
    );
    passes(
        "WRIT-IAM-003",
        "p.json",
        &IAM_OK
            .replace("\"Action\"", "\"NotAction\"")
            .replace("Allow", "Deny"),
    );
    let tf = "data \"aws_iam_policy_document\" \"d\" {\n  statement {\n    actions   = [\"s3:GetObject\"]\n    resources = [\"arn:aws:s3:::b/*\"]\n  }\n}\n";
    passes("WRIT-IAM-003", "d.tf", tf);
    fails(
        "WRIT-IAM-003",
        "d.tf",
        &tf.replace("actions ", "not_actions"),
    );
    let yaml = "Resources:\n  P:\n    Type: AWS::IAM::Policy\n    Properties:\n      PolicyDocument:\n        Statement:\n          - Effect: Allow\n            Action: s3:GetObject\n            Resource: arn:aws:s3:::b/*\n";
    passes("WRIT-IAM-003", "p.yaml", yaml);
    fails(
        "WRIT-IAM-003",
        "p.yaml",
        &yaml.replace("Resource:", "NotResource:"),
    );
}

#[test]
fn policy_validation_findings_point_into_the_file() {
    let bad = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\n    \"Effect\": \"Allow\",\n    \"Action\": \"s3:GetObject\",\n    \"Resource\": \"arn:aws:s3:::b/*\",\n    \"Condition\": {\"StringEqualz\": {\"aws:PrincipalTag/team\": \"x\"}}\n  }]\n}\n";
    let r = lint_source("p.json", bad, &Config::default());
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "WRIT-IAM-000")
        .expect("validation finding");
    assert_eq!(f.line, 7, "{f:?}");
    passes("WRIT-IAM-000", "p.json", IAM_OK);
    let yaml = "Resources:\n  P:\n    Type: AWS::IAM::Policy\n    Properties:\n      PolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Action: s3:GetObject\n            Resource: !Sub \"arn:aws:s3:::${Bucket}/*\"\n            Condition:\n              StringEqualz:\n                aws:PrincipalTag/team: x\n";
    let r = lint_source("p.yaml", yaml, &Config::default());
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "WRIT-IAM-000")
        .expect("validation finding");
    assert!(f.line >= 11, "{f:?}");
    // The unresolved !Sub is not reported as a malformed ARN.
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.rule == "WRIT-IAM-000")
            .count(),
        1,
        "{:?}",
        r.findings
    );
    let tf = "data \"aws_iam_policy_document\" \"d\" {\n  statement {\n    actions   = [\"s3:GetObject\"]\n    resources = [\"${aws_s3_bucket.b.arn}/*\"]\n    condition {\n      test     = \"StringEqualz\"\n      variable = \"aws:PrincipalTag/team\"\n      values   = [\"x\"]\n    }\n  }\n}\n";
    let r = lint_source("d.tf", tf, &Config::default());
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "WRIT-IAM-000")
        .expect("validation finding");
    assert_eq!(f.line, 5, "{f:?}");
}

#[test]
fn suppressions_need_a_reason() {
    let url = "resource \"aws_lambda_function_url\" \"u\" {\n  # writ:ignore WRIT-URL-001 public webhook, HMAC checked in the handler\n  authorization_type = \"NONE\"\n}\n";
    let r = lint_source("u.tf", url, &Config::default());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert_eq!(r.suppressed, 1);
    let same_line = "resource \"aws_lambda_function_url\" \"u\" {\n  authorization_type = \"NONE\" // writ:ignore WRIT-URL-001 public webhook\n}\n";
    assert!(
        lint_source("u.tf", same_line, &Config::default())
            .findings
            .is_empty()
    );
    let no_reason = url.replace(" public webhook, HMAC checked in the handler", "");
    let got = rules_of("u.tf", &no_reason, &Config::default());
    assert!(
        got.contains(&"WRIT-SUPPRESS-001") && got.contains(&"WRIT-URL-001"),
        "{got:?}"
    );
    let unknown = url.replace("WRIT-URL-001", "WRIT-NOPE-001");
    let got = rules_of("u.tf", &unknown, &Config::default());
    assert!(
        got.contains(&"WRIT-SUPPRESS-001") && got.contains(&"WRIT-URL-001"),
        "{got:?}"
    );
    let yaml = "Resources:\n  U:\n    Type: AWS::Lambda::Url\n    Properties:\n      # writ:ignore WRIT-URL-001 public status page\n      AuthType: NONE\n";
    assert!(
        lint_source("u.yaml", yaml, &Config::default())
            .findings
            .is_empty()
    );
    // Two lines above is too far.
    let far = yaml.replace(
        "      AuthType: NONE",
        "      TargetFunctionArn: !Ref F\n      AuthType: NONE",
    );
    assert!(rules_of("u.yaml", &far, &Config::default()).contains(&"WRIT-URL-001"));
}

#[test]
fn malformed_files_report_position() {
    for (file, text, line, col) in [
        ("bad.tf", "resource \"a\" \"b\" {\n  x = \n}\n", 2, 7),
        ("bad.yaml", "Resources:\n  a: [1, 2\n  b: c\n", 3, 4),
        ("bad.json", "{\n  \"Statement\": [\n}\n", 3, 1),
    ] {
        let r = lint_source(file, text, &Config::default());
        assert_eq!(r.findings.len(), 1, "{file}: {:?}", r.findings);
        let f = &r.findings[0];
        assert_eq!(f.rule, "WRIT-PARSE-001");
        assert_eq!((f.line, f.column), (line, col), "{file}: {}", f.message);
    }
}

#[test]
fn other_files_are_not_linted() {
    for (file, text) in [
        ("package.json", "{\"name\": \"x\", \"version\": \"1.0.0\"}"),
        (
            "workflow.yaml",
            "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n",
        ),
        ("notes.md", "# hi"),
    ] {
        let r = lint_source(file, text, &Config::default());
        assert!(r.format.is_none() && r.findings.is_empty(), "{file}");
    }
}

#[test]
fn conditional_roles_are_not_taken_for_one_role() {
    let yaml = "Resources:\n  A:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !If [IsProd, !GetAtt ProdA.Arn, !GetAtt DevA.Arn]\n  B:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !If [IsProd, !GetAtt ProdB.Arn, !GetAtt DevB.Arn]\n";
    passes("WRIT-ROLE-001", "r.yaml", yaml);
    fails(
        "WRIT-ROLE-001",
        "r.yaml",
        &yaml.replace("ProdB", "ProdA").replace("DevB", "DevA"),
    );
}
