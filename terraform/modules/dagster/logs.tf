# One log group per service; runs, tasks of the daemon's definition, log to the daemon's group.
resource "aws_cloudwatch_log_group" "dagster" {
  for_each          = local.services
  name              = "/ecs/${var.name}-dagster/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.dagster.arn
}
