# The analytics API on AWS (modules/api): a Lambda from the API image behind an API Gateway
# HTTP API, deployed when api_enabled is set. It queries through the workgroup with Athena.

locals {
  # The tables the API queries (serving/queries.py).
  api_tables = ["web_requests", "web_session_days"]
}

module "api" {
  source = "./modules/api"
  count  = var.api_enabled ? 1 : 0

  name       = local.name
  region     = var.region
  account_id = local.account_id
  partition  = local.partition
  image_tag  = var.api_image_tag
  # Lambda sets AWS_REGION itself (a reserved variable).
  environment               = local.deployment_environment
  lake_bucket_arn           = module.lake_bucket.arn
  results_bucket_arn        = module.athena_results_bucket.arn
  query_results_policy_json = data.aws_iam_policy_document.query_results.json
  athena_workgroup_arn      = aws_athena_workgroup.analytics.arn
  glue_database             = aws_glue_catalog_database.lake.name
  tables                    = local.api_tables
  memory_mb                 = var.api_memory_mb
  reserved_concurrency      = var.api_reserved_concurrency
  throttling_rate_limit     = var.api_throttling_rate_limit
  throttling_burst_limit    = var.api_throttling_burst_limit
  log_retention_days        = var.api_log_retention_days
  force_destroy             = var.force_destroy_buckets
}
