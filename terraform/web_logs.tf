# The web app's request log group, which the pipeline exports into landing/web_requests/
# every 10 minutes. The app owns the group (its retention and encryption); the pipeline
# role may only read it (this document is part of the pipeline role's policy, iam.tf).

locals {
  web_log_group_arn = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${var.web_log_group_name}"
}

data "aws_iam_policy_document" "web_log_export" {
  statement {
    sid     = "ReadWebLogGroup"
    actions = ["logs:FilterLogEvents", "logs:GetLogEvents"]
    # FilterLogEvents acts on the group; GetLogEvents on its streams.
    resources = [local.web_log_group_arn, "${local.web_log_group_arn}:log-stream:*"]
  }
}
