# The function's role: query through this workgroup, read this database's API tables and their
# Parquet, read and write query results under the results prefix, read the keys secret, and
# write its own log. Nothing else; in particular no write to the lake and no other table.

locals {
  function_name = "${var.name}-api"
  function_arn  = "arn:${var.partition}:lambda:${var.region}:${var.account_id}:function:${local.function_name}"

  glue_arn_prefix  = "arn:${var.partition}:glue:${var.region}:${var.account_id}"
  glue_table_arns  = [for t in sort(tolist(var.tables)) : "${local.glue_arn_prefix}:table/${var.glue_database}/${t}"]
  parquet_prefixes = [for t in sort(tolist(var.tables)) : "parquet/${t}/"]
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

data "aws_iam_policy_document" "api" {
  # ListResults, WriteResults: the workgroup's results prefix, as for every querier.
  source_policy_documents = [var.query_results_policy_json]

  statement {
    sid = "QueryThroughWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetWorkGroup",
    ]
    resources = [var.athena_workgroup_arn]
  }

  statement {
    sid = "ReadApiTables"
    actions = [
      "glue:GetDatabase",
      "glue:GetTable",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = concat(
      ["${local.glue_arn_prefix}:catalog", "${local.glue_arn_prefix}:database/${var.glue_database}"],
      local.glue_table_arns,
    )
  }

  statement {
    sid       = "LocateBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [var.lake_bucket_arn, var.results_bucket_arn]
  }

  statement {
    sid       = "ListApiTablesParquet"
    actions   = ["s3:ListBucket"]
    resources = [var.lake_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for p in local.parquet_prefixes : "${p}*"]
    }
  }

  statement {
    sid       = "ReadApiTablesParquet"
    actions   = ["s3:GetObject"]
    resources = [for p in local.parquet_prefixes : "${var.lake_bucket_arn}/${p}*"]
  }

  statement {
    sid       = "ReadApiKeys"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.api_keys.arn]
  }

  statement {
    sid       = "WriteOwnLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
}

resource "aws_iam_role" "api" {
  name                 = "${var.name}-api"
  description          = "The ${var.name} analytics API function: queries through its workgroup, reads the API tables and its keys secret."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "api" {
  name   = "api"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}
