# The FastAPI app (serving/aws_lambda.py through awslambdaric) from the API image. Billed per
# request and duration: nothing while nobody asks.
resource "aws_lambda_function" "api" {
  #checkov:skip=CKV_AWS_116:API Gateway invokes it synchronously and returns the error; a dead-letter queue only receives failed asynchronous invocations.
  #checkov:skip=CKV_AWS_117:It calls only AWS APIs (Athena, Glue, S3, Secrets Manager); inside a VPC it would need a NAT gateway or endpoints, which cost by the hour at idle.
  #checkov:skip=CKV_AWS_173:Its variables name buckets, the database, the workgroup and the keys secret, no secret values; Lambda encrypts them at rest with an AWS-managed key.
  #checkov:skip=CKV_AWS_272:Code signing applies to .zip packages only; the image is pinned by tag in an immutable, scanned repository.
  #checkov:skip=CKV_AWS_50:X-Ray needs xray:PutTraceSegments on "*" and costs per trace; every response already carries and logs its Athena query id, seconds, bytes scanned and cost.
  function_name = local.function_name
  description   = "The ${var.name} analytics API (FastAPI through Mangum) behind the HTTP API."
  role          = aws_iam_role.api.arn
  package_type  = "Image"
  image_uri     = "${aws_ecr_repository.api.repository_url}:${var.image_tag}"
  architectures = ["x86_64"]
  memory_size   = var.memory_mb
  # The HTTP API gives up on an integration after 30 s; stop before it does.
  timeout                        = 29
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = merge(var.environment, {
      ANALYTICS_API_KEYS_SECRET = aws_secretsmanager_secret.api_keys.name
    })
  }

  depends_on = [
    aws_iam_role_policy.api,
    aws_ecr_repository_policy.api,
    aws_cloudwatch_log_group.function,
  ]
}
