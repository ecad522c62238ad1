# The execution role only starts containers: pull this image, write these logs, read this
# one secret. The task role (the pipeline role) gains what the run launcher and alerts need.

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions.
  }

  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.dagster.arn]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for g in aws_cloudwatch_log_group.dagster : "${g.arn}:*"]
  }

  statement {
    sid       = "ReadDatabasePassword"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_db_instance.dagster.master_user_secret[0].secret_arn]
  }

  statement {
    sid       = "DecryptWithTheKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.dagster.arn]
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-dagster-execution"
  description        = "Starts ${var.name}'s Dagster containers: image pull, logs, the database secret."
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

locals {
  cluster_tasks = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.dagster.name}/*"
  run_family    = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task-definition/${var.name}-dagster-daemon:*"
}

data "aws_iam_policy_document" "run_launcher" {
  statement {
    sid       = "RunTasksOfTheDaemonDefinition"
    actions   = ["ecs:RunTask"]
    resources = [local.run_family]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.dagster.arn]
    }
  }

  statement {
    sid       = "WatchAndStopRuns"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask", "ecs:TagResource"]
    resources = [local.cluster_tasks]
  }

  statement {
    sid       = "ReadTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"] # DescribeTaskDefinition has no resource-level permissions.
  }

  statement {
    sid       = "PassTheTaskRoles"
    actions   = ["iam:PassRole"]
    resources = [var.task_role_arn, aws_iam_role.execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }

  statement {
    sid       = "Alert"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "EncryptAlerts"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.dagster.arn]
  }
}

resource "aws_iam_role_policy" "run_launcher" {
  name   = "dagster-run-launcher"
  role   = var.task_role_name
  policy = data.aws_iam_policy_document.run_launcher.json
}
