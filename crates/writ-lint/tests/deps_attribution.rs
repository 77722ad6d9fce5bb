//! Where templates say function code lives, for `writ lint --deps` to attribute lock
//! files: SAM `CodeUri` (with `Globals`), CloudFormation `Code` as a local path,
//! Terraform `filename` (literal, or a `data "archive_file"` output) and a module's
//! `source_path`.

use writ_lint::{Config, lint_source};

fn uses(file: &str, text: &str) -> Vec<(String, String, u32)> {
    lint_source(file, text, &Config::default())
        .code_uses
        .into_iter()
        .map(|u| (u.function, u.path, u.pos.line))
        .collect()
}

fn t(f: &str, p: &str, l: u32) -> (String, String, u32) {
    (f.into(), p.into(), l)
}

#[test]
fn sam_and_cloudformation_code_locations() {
    let sam = "Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: shared/
Resources:
  A:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/a/
  B:
    Type: AWS::Serverless::Function
    Properties:
      Handler: b.handler
  C:
    Type: AWS::Lambda::Function
    Properties:
      Code: build/c.zip
  D:
    Type: AWS::Lambda::Function
    Properties:
      Code:
        S3Bucket: bucket
        S3Key: d.zip
";
    assert_eq!(
        uses("template.yaml", sam),
        vec![
            t("A", "src/a/", 9),
            t("B", "shared/", 4),
            t("C", "build/c.zip", 17)
        ]
    );
}

#[test]
fn terraform_code_locations() {
    let tf = r#"
data "archive_file" "api" {
  type        = "zip"
  source_dir  = "${path.module}/src/api"
  output_path = "${path.module}/build/api.zip"
}

resource "aws_lambda_function" "api" {
  function_name = "api"
  filename      = data.archive_file.api.output_path
}

resource "aws_lambda_function" "worker" {
  function_name = "worker"
  filename      = "dist/worker.zip"
}

resource "aws_lambda_function" "s3" {
  function_name = "s3"
  s3_bucket     = "b"
  s3_key        = "k"
}

module "orders" {
  source      = "terraform-aws-modules/lambda/aws"
  source_path = "../functions/orders"
}
"#;
    assert_eq!(
        uses("main.tf", tf),
        vec![
            t("aws_lambda_function.api", "src/api", 10),
            t("aws_lambda_function.worker", "dist/worker.zip", 15),
            t("module.orders", "../functions/orders", 26),
        ]
    );
}
