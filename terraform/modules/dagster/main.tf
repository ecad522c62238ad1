# Dagster on ECS Fargate: a webserver and a daemon service from one image, each run a task
# of the daemon's task definition (the EcsRunLauncher reuses the task it runs in), storage in
# RDS PostgreSQL. One customer-managed key encrypts the repository, logs, database, its
# secret and the alerts topic.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_111:A key policy's "*" resource is this key only; the account delegates to IAM policies, logs use it under an encryption-context condition.
  #checkov:skip=CKV_AWS_356:A key policy's "*" resource is this key only.
  #checkov:skip=CKV_AWS_109:The account root administers its own key (the default key policy); without it the key becomes unmanageable.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/ecs/${var.name}-dagster*"]
    }
  }
}

resource "aws_kms_key" "dagster" {
  description             = "Encrypts ${var.name}'s Dagster image repository, logs, database, its secret and alerts."
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "dagster" {
  name          = "alias/${var.name}-dagster"
  target_key_id = aws_kms_key.dagster.key_id
}
