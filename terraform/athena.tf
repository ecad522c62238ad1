resource "aws_athena_workgroup" "analytics" {
  name          = local.name
  description   = "Queries of the ${local.name} pipeline and its analysts; results in the results bucket."
  state         = "ENABLED"
  force_destroy = true

  configuration {
    # Clients cannot override the output location, encryption or the scan limit.
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${module.athena_results_bucket.id}/${local.athena_results}"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}
