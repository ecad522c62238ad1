# Arrival notifications: the landing bucket sends s3:ObjectCreated:* under landing/ here;
# the landing queue sensor receives them, keeps each in flight until its run exists, then
# deletes it (see queue_visibility_timeout_seconds in variables.tf).
#
# The policies are set inline, with the queues' ARNs built from their names: separate
# aws_sqs_queue_policy / aws_sqs_queue_redrive_allow_policy resources would each wait
# for SQS attribute propagation again, one after another.

locals {
  landing_queue_name = "${local.name}-landing"
  landing_queue_arn  = "arn:${local.partition}:sqs:${var.region}:${local.account_id}:${local.landing_queue_name}"
}

resource "aws_sqs_queue" "landing_dlq" {
  #checkov:skip=CKV2_AWS_73:SSE-SQS (sqs_managed_sse_enabled) encrypts at rest without a CMK's per-key and per-request cost. See README.md.
  name                      = "${local.landing_queue_name}-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum: time to inspect what failed
  sqs_managed_sse_enabled   = true

  # Only the landing queue may dead-letter here.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.landing_queue_arn]
  })
}

resource "aws_sqs_queue" "landing" {
  #checkov:skip=CKV2_AWS_73:SSE-SQS (sqs_managed_sse_enabled) encrypts at rest without a CMK's per-key and per-request cost. See README.md.
  name                       = local.landing_queue_name
  visibility_timeout_seconds = var.queue_visibility_timeout_seconds
  message_retention_seconds  = 345600 # 4 days; the listing sensor recovers anything older
  sqs_managed_sse_enabled    = true
  policy                     = data.aws_iam_policy_document.landing_queue.json

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.landing_dlq.arn
    maxReceiveCount     = var.queue_max_receive_count
  })
}

data "aws_iam_policy_document" "landing_queue" {
  statement {
    sid       = "LandingBucketObjectCreated"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [local.landing_queue_arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [module.landing_bucket.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [local.landing_queue_arn]
    # {"AWS": "*"}, as in the bucket policies (see s3.tf).
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
