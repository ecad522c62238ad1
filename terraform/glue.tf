# One Glue table per table the pipeline writes, from tables.json, which the pipeline
# generates from its dataset specs and SQL (python -m analytics_pipeline.cli.glue_tables).
# Each table matches what analytics_pipeline.resources.aws.glue_catalog.GlueCatalog.table_input
# builds, so the pipeline finds them unchanged and only registers partitions.

locals {
  tables        = jsondecode(file("${path.module}/tables.json")).tables
  lake_location = "s3://${module.lake_bucket.id}/parquet"

  table_parameters = {
    classification        = "parquet"
    EXTERNAL              = "TRUE"
    "parquet.compression" = "SNAPPY"
  }

  # Athena ignores Glue partitions of a projected table and reads the template instead.
  projection_parameters = {
    for name in keys(local.tables) : name => {
      "projection.enabled"          = "true"
      "projection.dt.type"          = "date"
      "projection.dt.format"        = "yyyy-MM-dd"
      "projection.dt.range"         = "${var.partition_projection_start},NOW+1DAYS"
      "projection.dt.interval"      = "1"
      "projection.dt.interval.unit" = "DAYS"
      "storage.location.template"   = "${local.lake_location}/${name}/dt=$${dt}/"
    }
  }
}

resource "aws_glue_catalog_database" "lake" {
  name        = replace("${local.name}_lake", "-", "_")
  description = "Tables of the ${local.name} lake: one per dataset table and analytics query."
}

resource "aws_glue_catalog_table" "tables" {
  for_each      = local.tables
  database_name = aws_glue_catalog_database.lake.name
  name          = each.key
  description   = each.value.description
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(
    local.table_parameters,
    contains(var.partition_projection_tables, each.key) ? local.projection_parameters[each.key] : {},
  )

  partition_keys {
    name    = "dt"
    type    = "string"
    comment = "event date, YYYY-MM-DD (UTC)"
  }

  storage_descriptor {
    location      = "${local.lake_location}/${each.key}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }

  lifecycle {
    precondition {
      condition     = length(setsubtract(var.partition_projection_tables, keys(local.tables))) == 0
      error_message = "partition_projection_tables names tables that are not in tables.json."
    }
  }
}
