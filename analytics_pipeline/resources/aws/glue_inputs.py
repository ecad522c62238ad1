"""What the Glue API is sent for the lake's tables: table and partition inputs (external
Parquet, partitioned by dt) and the GetPartitions expressions that select days."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from analytics_pipeline.datasets.spec import is_column_type
from analytics_pipeline.lake.versioned_days import validate_dt, validate_identifier
from analytics_pipeline.resources.catalog import TableDef

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
# Where the registered file URI is kept (Glue itself only knows the directory).
LOCATION_PARAMETER = "analytics_pipeline.location"
# Glue's limit on a GetPartitions expression.
MAX_EXPRESSION_CHARS = 2048


def table_input(table: TableDef, location: str, projection_start: str | None) -> dict[str, Any]:
    """The TableInput of a lake table at `location`; with a projection_start, its days are
    projected by Athena from a fixed dt=${dt}/ template instead of read from Glue."""
    name = validate_identifier(table.name)
    for column, kind in table.columns:
        validate_identifier(column)
        if not is_column_type(kind):
            raise ValueError(f"table {name}: unknown type {kind!r} for {column}")
    parameters = {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        # What Athena INSERT INTO (the scale path) writes; the in-process path writes snappy.
        "parquet.compression": "SNAPPY",
    }
    if projection_start is not None:
        parameters.update(
            {
                "projection.enabled": "true",
                "projection.dt.type": "date",
                "projection.dt.format": "yyyy-MM-dd",
                "projection.dt.range": f"{validate_dt(projection_start)},NOW+1DAYS",
                "projection.dt.interval": "1",
                "projection.dt.interval.unit": "DAYS",
                "storage.location.template": f"{location}dt=${{dt}}/",
            }
        )
    return {
        "Name": name,
        "Description": table.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [
            {"Name": "dt", "Type": "string", "Comment": "event date, YYYY-MM-DD (UTC)"}
        ],
        "StorageDescriptor": storage_descriptor(table, location),
    }


def storage_descriptor(table: TableDef, location: str) -> dict[str, Any]:
    return {
        "Columns": [{"Name": c, "Type": kind} for c, kind in table.columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
    }


def partition_input(
    storage: dict[str, Any], dt: str, directory: str, location: str
) -> dict[str, Any]:
    """A day at `directory`; the file URI the caller registered is kept in its parameters."""
    return {
        "Values": [dt],
        "StorageDescriptor": {**storage, "Location": directory},
        "Parameters": {LOCATION_PARAMETER: location},
    }


def registered_location(partition: dict[str, Any]) -> str:
    """The location as registered: the file URI we stored, else Glue's directory."""
    stored = (partition.get("Parameters") or {}).get(LOCATION_PARAMETER)
    return stored or partition["StorageDescriptor"]["Location"]


def merged_parameters(current: dict[str, str], wanted: dict[str, str]) -> dict[str, str]:
    """Keep parameters others set (Athena, Lake Formation); ours win; a projection switched
    off loses its projection.* and template keys, or Athena would keep projecting."""
    kept = {
        k: v
        for k, v in current.items()
        if not (k.startswith("projection.") or k == "storage.location.template")
    }
    return {**kept, **wanted}


def dt_expressions(dts: Iterable[str], limit: int = MAX_EXPRESSION_CHARS) -> list[str]:
    """`dt IN (...)` GetPartitions expressions, as few as fit Glue's 2,048-character limit."""
    expressions: list[str] = []
    current: list[str] = []
    for dt in sorted(set(dts)):
        literal = f"'{validate_dt(dt)}'"
        if current and len(_in_expression([*current, literal])) > limit:
            expressions.append(_in_expression(current))
            current = []
        current.append(literal)
    if current:
        expressions.append(_in_expression(current))
    return expressions


def _in_expression(literals: list[str]) -> str:
    return f"dt IN ({','.join(literals)})"
