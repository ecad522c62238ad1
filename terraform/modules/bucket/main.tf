# One private bucket of the lake: SSE-S3 by default, versioned, all four public-access
# blocks, ACLs disabled, TLS-only policy, access logs to the log bucket, and lifecycle
# rules that expire what is disposable and abort forgotten multipart uploads.

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; the lake is rebuilt from landing/archive and every bucket is versioned.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) by default: a KMS CMK costs per key and per request and every reader would need kms:Decrypt (see terraform/README.md).
  #checkov:skip=CKV2_AWS_62:Only the landing bucket's arrivals are events the pipeline consumes; the root module wires them to SQS (aws_s3_bucket_notification.landing).
  bucket        = var.name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${var.name}/"
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
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
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
  }

  # Always declared, disabled without expire_prefix (a dynamic block here hides the
  # other rules from checkov's CKV_AWS_300).
  rule {
    id     = var.expire_prefix == null || var.expire_prefix == "" ? "expire-objects" : "expire-${trimsuffix(var.expire_prefix, "/")}"
    status = var.expire_prefix == null ? "Disabled" : "Enabled"
    filter {
      # "" is the whole bucket (coalesce would skip it).
      prefix = var.expire_prefix == null ? "unused/" : var.expire_prefix
    }
    expiration {
      days = var.expire_days == null ? 36500 : var.expire_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
