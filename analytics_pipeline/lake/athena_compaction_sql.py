"""The Athena SQL of the scale path: the staged table's DDL, the deduplicating INSERT of a
chunk of days, and the counts that check it. Every name and value is validated first."""

from __future__ import annotations

from datetime import date, timedelta

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.lake.sql_text import sql_string_literal
from analytics_pipeline.lake.staging.staged_files import SOURCE_COLUMNS
from analytics_pipeline.lake.versioned_days import validate_dt, validate_identifier

# Tables the pipeline creates and drops itself (terraform/iam.tf allows glue:DeleteTable on
# these names only).
SCRATCH_TABLE_PREFIX = "scratch_"
MAX_PARTITIONS_PER_QUERY = 100  # Athena: INSERT INTO / CTAS write at most 100 partitions


def staged_table_name(spec: DatasetSpec) -> str:
    return validate_identifier(f"staged_{spec.name}")


def _dml_identifier(name: str) -> str:
    """A validated name as Athena's DML (Trino) quotes it."""
    return f'"{validate_identifier(name)}"'


def _dt_between(first: str, last: str) -> str:
    """The SQL condition selecting days first..last (validated, so never injected)."""
    low, high = sql_string_literal(validate_dt(first)), sql_string_literal(validate_dt(last))
    return f'"dt" BETWEEN {low} AND {high}'


def _ddl_identifier(name: str) -> str:
    """A validated name as Athena's DDL (Hive) quotes it."""
    return f"`{validate_identifier(name)}`"


def _bucket(name: str) -> str:
    # S3 bucket naming rules: nothing that could end a SQL string literal.
    if not name or not all(c.isalnum() or c in ".-" for c in name) or name.lower() != name:
        raise ValueError(f"invalid S3 bucket name {name!r}")
    return name


def staged_columns(spec: DatasetSpec) -> list[tuple[str, str]]:
    """The staged Parquet's columns with their Athena types (dt is the partition key)."""
    return [(f.name, f.athena_type) for f in spec.fields] + [
        ("_source_key", "string"),
        ("_source_version", "string"),
        ("_source_line", "int"),
    ]


def drop_staged_table_sql(spec: DatasetSpec, *, database: str) -> str:
    """DROP the external staged table; its files stay."""
    staged = f"{_ddl_identifier(database)}.{_ddl_identifier(staged_table_name(spec))}"
    return f"DROP TABLE IF EXISTS {staged}"


def staged_table_ddl(
    spec: DatasetSpec, *, database: str, lake_bucket: str, partitions_start: str
) -> str:
    """CREATE EXTERNAL TABLE over the staged Parquet; projection finds the days, no MSCK."""
    location = f"s3://{_bucket(lake_bucket)}/staged/{validate_identifier(spec.name)}/"
    columns = staged_columns(spec)
    column_sql = ",\n  ".join(f"{_ddl_identifier(name)} {kind}" for name, kind in columns)
    properties = {
        "classification": "parquet",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": f"{validate_dt(partitions_start)},NOW+1DAYS",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        # Staged days are append-only (no versions), so a fixed template is exact here.
        "storage.location.template": f"{location}dt=${{dt}}/",
    }
    property_sql = ",\n  ".join(
        f"{sql_string_literal(k)}={sql_string_literal(v)}" for k, v in properties.items()
    )
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {_ddl_identifier(database)}."
        f"{_ddl_identifier(staged_table_name(spec))} (\n  {column_sql}\n)\n"
        "PARTITIONED BY (`dt` string)\n"
        "STORED AS PARQUET\n"
        f"LOCATION {sql_string_literal(location)}\n"
        f"TBLPROPERTIES (\n  {property_sql}\n)"
    )


def insert_days_sql(
    spec: DatasetSpec,
    table: TableSpec,
    *,
    database: str,
    first: str,
    last: str,
    into: str | None = None,
) -> str:
    """INSERT INTO the table (or `into`, a table of the same shape) the deduplicated staged
    rows of days first..last (inclusive)."""
    first, last = validate_dt(first), validate_dt(last)
    days = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
    if not 1 <= days <= MAX_PARTITIONS_PER_QUERY:
        raise ValueError(
            f"{first}..{last} is {days} days; one query writes 1 to "
            f"{MAX_PARTITIONS_PER_QUERY} partitions"
        )
    columns = ", ".join(_dml_identifier(c) for c in table.columns)
    source = ", ".join(_dml_identifier(c) for c in SOURCE_COLUMNS)
    where = _staged_rows_where(table, first, last)
    # The same rows as compact_day: one per source record (key, version, line), whichever
    # staged batch it came from; dt leads the window so Athena can split work by day.
    return (
        f"INSERT INTO {_dml_identifier(database)}.{_dml_identifier(into or table.name)}"
        f' ({columns}, "dt")\n'
        f'SELECT {columns}, "dt" FROM (\n'
        f'  SELECT {columns}, "dt",\n'
        f'    row_number() OVER (PARTITION BY "dt", {source} ORDER BY {source}) AS "_rank"\n'
        f"  FROM {_dml_identifier(database)}.{_dml_identifier(staged_table_name(spec))}\n"
        f"  WHERE {where}\n"
        ') WHERE "_rank" = 1'
    )


def day_chunks(first: str, last: str, size: int = MAX_PARTITIONS_PER_QUERY) -> list[list[str]]:
    """The days first..last (inclusive) in runs of at most `size`."""
    start, end = date.fromisoformat(validate_dt(first)), date.fromisoformat(validate_dt(last))
    if end < start:
        raise ValueError(f"empty range {first}..{last}")
    days = [(start + timedelta(n)).isoformat() for n in range((end - start).days + 1)]
    return [days[i : i + size] for i in range(0, len(days), size)]


def insert_statements(
    spec: DatasetSpec, table: TableSpec, *, database: str, first: str, last: str
) -> list[str]:
    """One INSERT per chunk of at most 100 days."""
    return [
        insert_days_sql(spec, table, database=database, first=chunk[0], last=chunk[-1])
        for chunk in day_chunks(first, last)
    ]


def count_days_sql(table: str, *, database: str, first: str, last: str) -> str:
    """Rows per day of days first..last; days without rows are absent."""
    return (
        'SELECT "dt", count(*) AS "rows"'
        f" FROM {_dml_identifier(database)}.{_dml_identifier(table)}\n"
        f"WHERE {_dt_between(first, last)}\n"
        'GROUP BY "dt"'
    )


def _staged_rows_where(table: TableSpec, first: str, last: str) -> str:
    """The staged rows of days first..last that belong in the table."""
    where = _dt_between(first, last)
    if table.where_in is not None:
        column, wanted = table.where_in
        values = ", ".join(sql_string_literal(v) for v in wanted)
        where += f" AND {_dml_identifier(column)} IN ({values})"
    return where


def staged_distinct_sql(
    spec: DatasetSpec, table: TableSpec, *, database: str, first: str, last: str
) -> str:
    """Distinct staged records per day for the table: what its days must hold (the check).

    It reads only dt and the three source columns of staged/, a small part of its bytes."""
    source = ", ".join(_dml_identifier(c) for c in SOURCE_COLUMNS)
    where = _staged_rows_where(table, first, last)
    return (
        f'SELECT "dt", count(*) AS "rows" FROM (\n'
        f'  SELECT DISTINCT "dt", {source}\n'
        f"  FROM {_dml_identifier(database)}.{_dml_identifier(staged_table_name(spec))}\n"
        f"  WHERE {where}\n"
        ') GROUP BY "dt"'
    )
