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
}

resource "aws_lambda_function_url" "api" {
  function_name = aws_lambda_function.api.function_name
  # writ:ignore WRIT-URL-001 public webhook; the handler verifies an HMAC signature
  authorization_type = "NONE"
}
