data "archive_file" "report" {
  type        = "zip"
  source_dir  = "${path.module}/../functions/rust"
  output_path = "${path.module}/build/report.zip"
}

resource "aws_lambda_function" "report" {
  function_name    = "report"
  role             = aws_iam_role.report.arn
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  filename         = data.archive_file.report.output_path
  source_code_hash = data.archive_file.report.output_base64sha256
  tracing_config {
    mode = "Active"
  }
}
