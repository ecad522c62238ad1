output "repository_url" {
  description = "ECR repository to push the image to."
  value       = aws_ecr_repository.dagster.repository_url
}

output "cluster_name" {
  description = "ECS cluster of the services and runs."
  value       = aws_ecs_cluster.dagster.name
}

output "webserver_url" {
  description = "The Dagster UI behind the load balancer."
  value       = "${local.authenticated ? "https" : "http"}://${aws_lb.webserver.dns_name}"
}

output "alerts_topic_arn" {
  description = "ANALYTICS_ALERTS_TOPIC_ARN: SNS topic of run failures, failed checks and freshness misses."
  value       = aws_sns_topic.alerts.arn
}

output "database_address" {
  description = "DAGSTER_PG_HOST."
  value       = aws_db_instance.dagster.address
}

output "database_secret_arn" {
  description = "Secrets Manager secret holding the database password (RDS rotates it)."
  value       = aws_db_instance.dagster.master_user_secret[0].secret_arn
}

output "execution_role_arn" {
  description = "Role ECS uses to start the containers."
  value       = aws_iam_role.execution.arn
}
