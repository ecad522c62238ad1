# What every process of the aws deployment reads (its settings); each process adds its own.
locals {
  deployment_environment = {
    ANALYTICS_PIPELINE_ENV     = "aws"
    ANALYTICS_LANDING_BUCKET   = module.landing_bucket.id
    ANALYTICS_LAKE_BUCKET      = module.lake_bucket.id
    ANALYTICS_ATHENA_OUTPUT    = aws_athena_workgroup.analytics.configuration[0].result_configuration[0].output_location
    ANALYTICS_GLUE_DATABASE    = aws_glue_catalog_database.lake.name
    ANALYTICS_ATHENA_WORKGROUP = aws_athena_workgroup.analytics.name
  }
}
