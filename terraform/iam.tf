# Two roles. The pipeline role may touch only this deployment's buckets, Glue database,
# workgroup and queue. The analyst role may only query through the workgroup: read the
# Glue tables and the Parquet under parquet/, and read and write query results.

locals {
  landing_arn = module.landing_bucket.arn
  lake_arn    = module.lake_bucket.arn
  results_arn = module.athena_results_bucket.arn

  glue_catalog_arn  = "arn:${local.partition}:glue:${var.region}:${local.account_id}:catalog"
  glue_database_arn = "arn:${local.partition}:glue:${var.region}:${local.account_id}:database/${aws_glue_catalog_database.lake.name}"
  glue_tables_arn   = "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${aws_glue_catalog_database.lake.name}/*"
  # The Athena scale path's per-chunk scratch tables (GlueCatalog.SCRATCH_TABLE_PREFIX).
  glue_scratch_tables_arn = "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${aws_glue_catalog_database.lake.name}/scratch_*"
  # Its external tables over staged/ (athena_compaction.staged_table_name), recreated when a spec grows.
  glue_staged_tables_arn = "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${aws_glue_catalog_database.lake.name}/staged_*"

  account_root = "arn:${local.partition}:iam::${local.account_id}:root"
}

# Trust

data "aws_iam_policy_document" "pipeline_trust" {
  statement {
    sid     = "TrustedPrincipals"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.pipeline_trusted_principal_arns) > 0 ? var.pipeline_trusted_principal_arns : [local.account_root]
    }
  }

  dynamic "statement" {
    for_each = length(var.pipeline_trusted_services) > 0 ? [1] : []
    content {
      sid     = "TrustedServices"
      actions = ["sts:AssumeRole"]
      principals {
        type        = "Service"
        identifiers = var.pipeline_trusted_services
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }
}

data "aws_iam_policy_document" "analyst_trust" {
  statement {
    sid     = "TrustedPrincipals"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = length(var.analyst_trusted_principal_arns) > 0 ? var.analyst_trusted_principal_arns : [local.account_root]
    }
  }
}

# Pipeline

data "aws_iam_policy_document" "pipeline" {
  source_policy_documents = [data.aws_iam_policy_document.web_log_export.json]

  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [local.landing_arn, local.lake_arn, local.results_arn]
  }

  statement {
    sid = "LandingObjects"
    # Read arrivals; delete them once archived in the lake.
    actions   = ["s3:GetObject", "s3:DeleteObject"]
    resources = ["${local.landing_arn}/landing/*"]
  }

  statement {
    sid = "LakeObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.lake_arn}/*"]
  }

  statement {
    sid = "AthenaResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.results_arn}/${local.athena_results}*"]
  }

  statement {
    sid = "GlueTablesAndPartitions"
    # Create/update tables from the specs (a new column is applied in place) and register
    # days; no table or database deletion.
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:CreateTable",
      "glue:UpdateTable",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
      "glue:CreatePartition",
      "glue:BatchCreatePartition",
      "glue:UpdatePartition",
      "glue:BatchUpdatePartition",
      "glue:DeletePartition",
      "glue:BatchDeletePartition",
    ]
    resources = [local.glue_catalog_arn, local.glue_database_arn, local.glue_tables_arn]
  }

  statement {
    sid = "GlueScratchTables"
    # athena_compaction.py writes each chunk through a scratch table it then drops, and drops
    # its external staged table when the spec gained a field; no other table may be deleted.
    actions   = ["glue:DeleteTable"]
    resources = [local.glue_catalog_arn, local.glue_database_arn, local.glue_scratch_tables_arn, local.glue_staged_tables_arn]
  }

  statement {
    sid = "AthenaWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetWorkGroup",
    ]
    resources = [aws_athena_workgroup.analytics.arn]
  }

  statement {
    sid = "LandingQueue"
    # SendMessage: one queue serves every dataset's landing sensor, which sends a message
    # naming another dataset back to the queue for that dataset's sensor.
    actions = [
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
    ]
    resources = [aws_sqs_queue.landing.arn]
  }

  dynamic "statement" {
    for_each = var.movie_rental_db_secret_arn == "" ? [] : [1]
    content {
      sid       = "MovieRentalSourceSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [var.movie_rental_db_secret_arn]
    }
  }
}

resource "aws_iam_role" "pipeline" {
  name                 = "${local.name}-pipeline"
  description          = "Runs the ${local.name} Dagster pipeline: its buckets, Glue database, Athena workgroup and landing queue only."
  assume_role_policy   = data.aws_iam_policy_document.pipeline_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "pipeline" {
  name   = "pipeline"
  role   = aws_iam_role.pipeline.id
  policy = data.aws_iam_policy_document.pipeline.json
}

# Analyst

# What every Athena querier (the analyst role, the API function) needs of the workgroup's
# results: list and read them, and write new ones, under the results prefix only.
data "aws_iam_policy_document" "query_results" {
  statement {
    sid       = "ListResults"
    actions   = ["s3:ListBucket"]
    resources = [local.results_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.athena_results}*"]
    }
  }

  statement {
    sid = "WriteResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${local.results_arn}/${local.athena_results}*"]
  }
}

data "aws_iam_policy_document" "analyst" {
  source_policy_documents = [data.aws_iam_policy_document.query_results.json]

  statement {
    sid = "QueryThroughWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:BatchGetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryResultsStream",
      "athena:ListQueryExecutions",
      "athena:GetWorkGroup",
    ]
    resources = [aws_athena_workgroup.analytics.arn]
  }

  statement {
    sid = "ReadCatalog"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = [local.glue_catalog_arn, local.glue_database_arn, local.glue_tables_arn]
  }

  statement {
    sid       = "LocateBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [local.lake_arn, local.results_arn]
  }

  statement {
    sid       = "ListParquet"
    actions   = ["s3:ListBucket"]
    resources = [local.lake_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["parquet/*"]
    }
  }

  statement {
    sid       = "ReadParquet"
    actions   = ["s3:GetObject"]
    resources = ["${local.lake_arn}/parquet/*"]
  }
}

resource "aws_iam_role" "analyst" {
  name                 = "${local.name}-analyst"
  description          = "Read-only queries of the ${local.name} lake through its Athena workgroup."
  assume_role_policy   = data.aws_iam_policy_document.analyst_trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "analyst" {
  name   = "analyst"
  role   = aws_iam_role.analyst.id
  policy = data.aws_iam_policy_document.analyst.json
}
