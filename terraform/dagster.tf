# Dagster itself on ECS Fargate (modules/dagster), deployed when dagster_vpc_id is set: the
# lake needs no network, Dagster's tasks and database do, and the VPC (its NAT or endpoints,
# peering, address plan) belongs to the account, not to this pipeline.

module "dagster" {
  source = "./modules/dagster"
  count  = var.dagster_vpc_id == null ? 0 : 1

  name                     = local.name
  vpc_id                   = var.dagster_vpc_id
  subnet_ids               = var.dagster_subnet_ids
  load_balancer_subnet_ids = coalesce(var.dagster_load_balancer_subnet_ids, var.dagster_subnet_ids)
  allowed_cidr_blocks      = var.dagster_allowed_cidr_blocks
  authentication           = var.dagster_authentication
  task_role_arn            = aws_iam_role.pipeline.arn
  task_role_name           = aws_iam_role.pipeline.name
  image_tag                = var.dagster_image_tag
  alert_email              = var.alert_email
  log_retention_days       = var.dagster_log_retention_days
  db_instance_class        = var.dagster_db_instance_class
  db_backup_retention_days = var.dagster_db_backup_retention_days
  deletion_protection      = var.dagster_deletion_protection
  force_destroy            = var.force_destroy_buckets
  compute_logs_bucket      = module.lake_bucket.id
  compute_logs_prefix      = "dagster/compute-logs"
  environment = merge(local.deployment_environment, {
    AWS_REGION                  = var.region
    AWS_DEFAULT_REGION          = var.region # what boto3 reads; Fargate may set only AWS_REGION
    ANALYTICS_LANDING_QUEUE_URL = aws_sqs_queue.landing.id
    # The movie_rental source's RDS secret (empty: no source on AWS); the pipeline role reads it.
    ANALYTICS_MOVIE_RENTAL_DB_SECRET = var.movie_rental_db_secret_arn
  })
}
