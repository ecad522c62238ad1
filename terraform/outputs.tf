# Every value the pipeline reads (scripts/terraform_env.py renders them as ANALYTICS_* lines).

output "region" {
  description = "AWS_REGION of the deployment."
  value       = var.region
}

output "landing_bucket" {
  description = "ANALYTICS_LANDING_BUCKET: producers write landing/<dataset>/... here."
  value       = module.landing_bucket.id
}

output "lake_bucket" {
  description = "ANALYTICS_LAKE_BUCKET: staged/, parquet/, quarantine/ and archive/."
  value       = module.lake_bucket.id
}

output "athena_results_bucket" {
  description = "Bucket of Athena query results."
  value       = module.athena_results_bucket.id
}

output "athena_output" {
  description = "ANALYTICS_ATHENA_OUTPUT: the workgroup's enforced result location (s3:// URI)."
  value       = aws_athena_workgroup.analytics.configuration[0].result_configuration[0].output_location
}

output "access_log_bucket" {
  description = "Bucket receiving the S3 server access logs of the other three."
  value       = aws_s3_bucket.logs.id
}

output "glue_database" {
  description = "ANALYTICS_GLUE_DATABASE: the Glue database of the lake's tables."
  value       = aws_glue_catalog_database.lake.name
}

output "glue_tables" {
  description = "Names of the Glue tables declared from tables.json."
  value       = sort(keys(aws_glue_catalog_table.tables))
}

output "partition_projection_tables" {
  description = "Tables Athena projects instead of reading Glue partitions (the pipeline's projected_tables)."
  value       = sort(tolist(var.partition_projection_tables))
}

output "athena_workgroup" {
  description = "ANALYTICS_ATHENA_WORKGROUP: the workgroup every query runs in."
  value       = aws_athena_workgroup.analytics.name
}

output "landing_queue_url" {
  description = "ANALYTICS_LANDING_QUEUE_URL: S3 object-created notifications for landing/."
  value       = aws_sqs_queue.landing.id
}

output "landing_queue_arn" {
  description = "ARN of the landing notification queue."
  value       = aws_sqs_queue.landing.arn
}

output "landing_dlq_url" {
  description = "Dead-letter queue of notifications received queue_max_receive_count times."
  value       = aws_sqs_queue.landing_dlq.id
}

output "pipeline_role_arn" {
  description = "Role the pipeline (Dagster daemon and runs) assumes."
  value       = aws_iam_role.pipeline.arn
}

output "analyst_role_arn" {
  description = "Read-only role for querying through the workgroup."
  value       = aws_iam_role.analyst.arn
}

output "web_log_group" {
  description = "ANALYTICS_WEB_LOG_GROUP: the log group exported into landing/web_requests/."
  value       = var.web_log_group_name
}

output "dagster" {
  description = "Dagster on ECS (null unless dagster_vpc_id is set): image repository, cluster, UI URL, alerts topic, database."
  value       = one(module.dagster[*])
}

output "api" {
  description = "The analytics API (null unless api_enabled): URL, function, image repository, keys secret."
  value       = one(module.api[*])
}
