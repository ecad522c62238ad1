output "url" {
  description = "Base URL of the API and its viewer (the $default stage)."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.api.id
}

output "function_name" {
  description = "Name of the API function."
  value       = aws_lambda_function.api.function_name
}

output "role_arn" {
  description = "Role the API function runs as."
  value       = aws_iam_role.api.arn
}

output "repository_url" {
  description = "ECR repository to push the API image (Dockerfile target lambda) to."
  value       = aws_ecr_repository.api.repository_url
}

output "keys_secret_name" {
  description = "ANALYTICS_API_KEYS_SECRET for `python -m analytics_pipeline.cli.api_key`."
  value       = aws_secretsmanager_secret.api_keys.name
}

output "access_log_group" {
  description = "CloudWatch Logs group of the API's access log."
  value       = aws_cloudwatch_log_group.access.name
}
