# Dagster's run, event and schedule storage. RDS generates the master password and keeps it
# in Secrets Manager; ECS injects it as DAGSTER_PG_PASSWORD.

resource "aws_db_subnet_group" "dagster" {
  name       = "${var.name}-dagster"
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "dagster" {
  name   = "${var.name}-dagster"
  family = "postgres16"

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_db_instance" "dagster" {
  #checkov:skip=CKV_AWS_157:Multi-AZ doubles the instance cost; runs survive a restart (run monitoring resumes them) and backups restore the storage.
  #checkov:skip=CKV_AWS_118:Enhanced monitoring needs its own role and costs per instance; Performance Insights and the exported logs cover it.
  #checkov:skip=CKV2_AWS_30:Statement logging would log every Dagster event write; slow statements (over 1 s) are logged instead.
  identifier                          = "${var.name}-dagster"
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.db_instance_class
  allocated_storage                   = 20
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.dagster.arn
  db_name                             = "dagster"
  username                            = "dagster"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.dagster.key_id
  iam_database_authentication_enabled = true
  db_subnet_group_name                = aws_db_subnet_group.dagster.name
  parameter_group_name                = aws_db_parameter_group.dagster.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  publicly_accessible                 = false
  backup_retention_period             = var.db_backup_retention_days
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = var.force_destroy
  final_snapshot_identifier           = var.force_destroy ? null : "${var.name}-dagster-final"
  auto_minor_version_upgrade          = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.dagster.arn
}
