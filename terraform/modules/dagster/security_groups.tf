# Only what must talk talks: allowed networks -> load balancer -> webserver:3000; the Dagster
# tasks (webserver, daemon, runs) -> database:5432 and -> HTTPS (the AWS APIs); nothing else.

data "aws_vpc" "selected" {
  id = var.vpc_id
}

resource "aws_security_group" "load_balancer" {
  name        = "${var.name}-dagster-lb"
  description = "Dagster UI load balancer: the allowed networks in, the webserver out."
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-dagster-tasks"
  description = "Dagster webserver, daemon and run tasks: the database and the AWS APIs out."
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "webserver" {
  name        = "${var.name}-dagster-webserver"
  description = "Dagster webserver: port 3000 from the load balancer only."
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "database" {
  name        = "${var.name}-dagster-db"
  description = "Dagster PostgreSQL: port 5432 from the Dagster tasks only."
  vpc_id      = var.vpc_id
}

# Port 80 stays one rule whether it serves the UI (internal) or redirects to HTTPS: turning
# authentication on only adds 443, so no rule is replaced by an identical one still present.
resource "aws_security_group_rule" "load_balancer_in" {
  description       = "The UI, or with authentication its redirect to HTTPS, from the allowed networks"
  type              = "ingress"
  security_group_id = aws_security_group.load_balancer.id
  protocol          = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_blocks       = var.allowed_cidr_blocks
}

resource "aws_security_group_rule" "load_balancer_https_in" {
  count             = var.authentication == null ? 0 : 1
  description       = "The UI over HTTPS, signed in first, from the allowed networks"
  type              = "ingress"
  security_group_id = aws_security_group.load_balancer.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = var.allowed_cidr_blocks
}

resource "aws_security_group_rule" "load_balancer_to_webserver" {
  description              = "To the webserver"
  type                     = "egress"
  security_group_id        = aws_security_group.load_balancer.id
  protocol                 = "tcp"
  from_port                = 3000
  to_port                  = 3000
  source_security_group_id = aws_security_group.webserver.id
}

resource "aws_security_group_rule" "load_balancer_to_identity_provider" {
  count             = var.authentication == null ? 0 : 1
  description       = "Token and user info endpoints of the identity provider"
  type              = "egress"
  security_group_id = aws_security_group.load_balancer.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "webserver_from_load_balancer" {
  description              = "From the load balancer"
  type                     = "ingress"
  security_group_id        = aws_security_group.webserver.id
  protocol                 = "tcp"
  from_port                = 3000
  to_port                  = 3000
  source_security_group_id = aws_security_group.load_balancer.id
}

resource "aws_security_group_rule" "tasks_to_database" {
  description              = "To PostgreSQL"
  type                     = "egress"
  security_group_id        = aws_security_group.tasks.id
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
  source_security_group_id = aws_security_group.database.id
}

resource "aws_security_group_rule" "tasks_to_aws_apis" {
  description       = "To the AWS APIs (S3, Glue, Athena, SQS, ECS, ECR, logs, SNS) over HTTPS"
  type              = "egress"
  security_group_id = aws_security_group.tasks.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "database_from_tasks" {
  description              = "From the Dagster tasks"
  type                     = "ingress"
  security_group_id        = aws_security_group.database.id
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
  source_security_group_id = aws_security_group.tasks.id
}
