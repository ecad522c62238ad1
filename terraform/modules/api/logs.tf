# The function's own log (its request lines: scope, Athena query id, bytes scanned, cost) and
# the API stage's access log, both kept log_retention_days.
resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with an AWS-owned key; a customer managed KMS key costs per month at idle.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest with an AWS-owned key; a customer managed KMS key costs per month at idle.
  name              = "/aws/apigateway/${var.name}-api"
  retention_in_days = var.log_retention_days
}
