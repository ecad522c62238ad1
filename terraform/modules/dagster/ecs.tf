# Two services of one image. Each run is a task of the daemon's task definition: the
# EcsRunLauncher (DAGSTER_RUN_LAUNCHER=ecs) copies the task it runs in and overrides the command.

locals {
  image      = "${aws_ecr_repository.dagster.repository_url}:${var.image_tag}"
  db_secrets = [{ name = "DAGSTER_PG_PASSWORD", valueFrom = "${aws_db_instance.dagster.master_user_secret[0].secret_arn}:password::" }]
  dagster_environment = merge(var.environment, {
    DAGSTER_PG_HOST             = aws_db_instance.dagster.address
    DAGSTER_PG_PORT             = tostring(aws_db_instance.dagster.port)
    DAGSTER_PG_DB               = aws_db_instance.dagster.db_name
    DAGSTER_PG_USER             = aws_db_instance.dagster.username
    DAGSTER_RUN_LAUNCHER        = "ecs"
    DAGSTER_COMPUTE_LOGS_BUCKET = var.compute_logs_bucket
    DAGSTER_COMPUTE_LOGS_PREFIX = var.compute_logs_prefix
    ANALYTICS_ALERTS_TOPIC_ARN  = aws_sns_topic.alerts.arn
  })
  services = {
    webserver = {
      command       = ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
      cpu           = 512
      memory        = 1024
      port          = [{ containerPort = 3000, protocol = "tcp" }]
      groups        = [aws_security_group.tasks.id, aws_security_group.webserver.id]
      health_check  = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/server_info', timeout=4)"]
      load_balanced = true
    }
    daemon = {
      command       = ["dagster-daemon", "run", "-w", "workspace.yaml"]
      cpu           = 1024
      memory        = 2048
      port          = []
      groups        = [aws_security_group.tasks.id]
      health_check  = ["CMD", "dagster-daemon", "liveness-check"]
      load_balanced = false
    }
  }
}

resource "aws_ecs_cluster" "dagster" {
  name = "${var.name}-dagster"

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_task_definition" "dagster" {
  for_each                 = local.services
  family                   = "${var.name}-dagster-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  task_role_arn            = var.task_role_arn
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name         = "dagster"
    image        = local.image
    essential    = true
    command      = each.value.command
    portMappings = each.value.port
    environment  = [for k, v in local.dagster_environment : { name = k, value = v }]
    secrets      = local.db_secrets
    healthCheck  = { command = each.value.health_check, interval = 30, timeout = 5, retries = 3, startPeriod = 120 }
    # dagster.yaml is rendered into DAGSTER_HOME at start, so the root file system stays writable.
    readonlyRootFilesystem = false
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.dagster[each.key].name
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
}

resource "aws_ecs_service" "dagster" {
  for_each               = local.services
  name                   = "${var.name}-dagster-${each.key}"
  cluster                = aws_ecs_cluster.dagster.id
  task_definition        = aws_ecs_task_definition.dagster[each.key].arn
  desired_count          = 1
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  propagate_tags         = "SERVICE"
  enable_execute_command = false
  # One daemon at a time: stop the old task before starting the new one.
  deployment_minimum_healthy_percent = each.key == "daemon" ? 0 : 100
  deployment_maximum_percent         = each.key == "daemon" ? 100 : 200

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = each.value.groups
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.value.load_balanced ? [1] : []
    content {
      target_group_arn = aws_lb_target_group.webserver.arn
      container_name   = "dagster"
      container_port   = 3000
    }
  }

  depends_on = [aws_lb_listener.internal, aws_lb_listener.authenticated]
}
