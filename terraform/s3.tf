# Four buckets: landing (producers write landing/<dataset>/...), lake (staged/, parquet/,
# quarantine/, archive/), Athena query results, and the access-log bucket the other three
# log to. Names carry the account id and region because bucket names are global.
# modules/bucket is what every data bucket gets; the log bucket differs (it cannot log to
# itself, and the logging service writes to it), so it is declared here.

locals {
  bucket_suffix   = "${local.account_id}-${var.region}"
  log_bucket_name = "${local.name}-access-logs-${local.bucket_suffix}"
  athena_results  = "athena/"
}

module "landing_bucket" {
  source                            = "./modules/bucket"
  name                              = "${local.name}-landing-${local.bucket_suffix}"
  access_log_bucket                 = aws_s3_bucket_policy.logs.bucket
  noncurrent_version_retention_days = var.noncurrent_version_retention_days
  abort_incomplete_multipart_days   = var.abort_incomplete_multipart_days
  force_destroy                     = var.force_destroy_buckets
}

module "lake_bucket" {
  source                            = "./modules/bucket"
  name                              = "${local.name}-lake-${local.bucket_suffix}"
  access_log_bucket                 = aws_s3_bucket_policy.logs.bucket
  expire_prefix                     = "archive/"
  expire_days                       = var.archive_retention_days
  noncurrent_version_retention_days = var.noncurrent_version_retention_days
  abort_incomplete_multipart_days   = var.abort_incomplete_multipart_days
  force_destroy                     = var.force_destroy_buckets
}

module "athena_results_bucket" {
  source                            = "./modules/bucket"
  name                              = "${local.name}-athena-results-${local.bucket_suffix}"
  access_log_bucket                 = aws_s3_bucket_policy.logs.bucket
  expire_prefix                     = ""
  expire_days                       = var.athena_results_retention_days
  noncurrent_version_retention_days = 1
  abort_incomplete_multipart_days   = var.abort_incomplete_multipart_days
  force_destroy                     = var.force_destroy_buckets
}

# The access-log bucket

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target; logging it to itself would log its own log deliveries forever.
  #checkov:skip=CKV_AWS_144:Access logs are an audit trail of this region's buckets, kept for access_log_retention_days; not replicated.
  #checkov:skip=CKV_AWS_145:S3 server access logging delivers only to SSE-S3 buckets; SSE-KMS is not supported for log targets.
  #checkov:skip=CKV2_AWS_62:Nothing consumes log deliveries as events.
  bucket        = local.log_bucket_name
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    # {"AWS": "*"} means the same as "*" to IAM, and moto can parse it (see README.md).
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "S3ServerAccessLogsPolicy"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

# Arrivals

resource "aws_s3_bucket_notification" "landing" {
  bucket = module.landing_bucket.id

  queue {
    id            = "landing-object-created"
    queue_arn     = aws_sqs_queue.landing.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "landing/"
  }

  # S3 sends a test event when the configuration is saved: the queue policy must allow it.
  depends_on = [aws_sqs_queue.landing]
}
