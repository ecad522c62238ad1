# The webserver has no authentication of its own: by default the load balancer is internal
# (reachable from allowed_cidr_blocks inside the VPC); with `authentication` it is an
# internet-facing HTTPS ALB that signs users in with OIDC or Cognito before forwarding.

locals {
  authenticated = var.authentication != null
}

resource "aws_lb" "webserver" {
  #checkov:skip=CKV_AWS_91:Access logs would need one more bucket; the webserver logs every request to CloudWatch.
  #checkov:skip=CKV2_AWS_28:A WAF costs per ACL and rule; the default load balancer is internal, the public one authenticates every request.
  #checkov:skip=CKV2_AWS_20:The internal default has no certificate to redirect to; with authentication port 80 redirects to HTTPS.
  name                       = "${var.name}-dagster"
  internal                   = !local.authenticated
  load_balancer_type         = "application"
  subnets                    = var.load_balancer_subnet_ids
  security_groups            = [aws_security_group.load_balancer.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
}

resource "aws_lb_target_group" "webserver" {
  #checkov:skip=CKV_AWS_378:The webserver serves plain HTTP on 3000, reachable only from the load balancer's security group inside the VPC.
  name        = "${var.name}-dagster-web"
  port        = 3000
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path    = "/server_info"
    matcher = "200"
  }
}

resource "aws_lb_listener" "internal" {
  #checkov:skip=CKV_AWS_2:Internal by default without a certificate; set `authentication` (with certificate_arn) for HTTPS.
  #checkov:skip=CKV_AWS_103:Plain HTTP inside the VPC only; the authenticated listener uses a TLS 1.2+ policy.
  count             = local.authenticated ? 0 : 1
  load_balancer_arn = aws_lb.webserver.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.webserver.arn
  }
}

resource "aws_lb_listener" "authenticated" {
  count             = local.authenticated ? 1 : 0
  load_balancer_arn = aws_lb.webserver.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.authentication.certificate_arn

  dynamic "default_action" {
    for_each = var.authentication.oidc == null ? [] : [var.authentication.oidc]
    content {
      type  = "authenticate-oidc"
      order = 1
      authenticate_oidc {
        issuer                 = default_action.value.issuer
        authorization_endpoint = default_action.value.authorization_endpoint
        token_endpoint         = default_action.value.token_endpoint
        user_info_endpoint     = default_action.value.user_info_endpoint
        client_id              = default_action.value.client_id
        client_secret          = default_action.value.client_secret
      }
    }
  }

  dynamic "default_action" {
    for_each = var.authentication.cognito == null ? [] : [var.authentication.cognito]
    content {
      type  = "authenticate-cognito"
      order = 1
      authenticate_cognito {
        user_pool_arn       = default_action.value.user_pool_arn
        user_pool_client_id = default_action.value.user_pool_client_id
        user_pool_domain    = default_action.value.user_pool_domain
      }
    }
  }

  default_action {
    type             = "forward"
    order            = 2
    target_group_arn = aws_lb_target_group.webserver.arn
  }

  lifecycle {
    precondition {
      condition     = (var.authentication.oidc == null) != (var.authentication.cognito == null)
      error_message = "authentication needs exactly one of oidc or cognito."
    }
  }
}

resource "aws_lb_listener" "redirect_to_https" {
  count             = local.authenticated ? 1 : 0
  load_balancer_arn = aws_lb.webserver.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}
