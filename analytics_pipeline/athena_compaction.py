"""The scale path: build a table's daily Parquet inside Athena instead of in-process.

An external table over staged/<dataset>/ (the staged Parquet, days found by partition
projection), then per chunk of at most 100 days (Athena's limit of partitions one query
may write): deregister the days and delete their objects, then INSERT INTO the table
from the staged table, deduplicated by source record exactly as `compaction.compact_day`.

This is dbt-athena's `insert_overwrite` on Hive tables: delete first, write second. A
failure between the two leaves the chunk's days empty until the re-run. The in-process
default (write a new version, repoint, delete the old) never does; use this path when a
backfill is too big for one machine, and re-run a chunk that failed.

Athena writes its files directly under parquet/<table>/dt=D/ (no version folder) and
registers the partition at that directory itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.partitions import partition_prefix, validate_dt, validate_identifier
from analytics_pipeline.resources.catalog import TableDef
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.glue_catalog import GlueCatalog
from analytics_pipeline.resources.store import LakeStore
from analytics_pipeline.staging import SOURCE_COLUMNS

MAX_PARTITIONS_PER_QUERY = 100  # Athena: INSERT INTO / CTAS write at most 100 partitions


def staged_table_name(spec: DatasetSpec) -> str:
    return validate_identifier(f"staged_{spec.name}")


def _quoted(name: str) -> str:
    return f'"{validate_identifier(name)}"'


def _backticked(name: str) -> str:
    return f"`{validate_identifier(name)}`"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _bucket(name: str) -> str:
    # S3 bucket naming rules: nothing that could end a SQL string literal.
    if not name or not all(c.isalnum() or c in ".-" for c in name) or name.lower() != name:
        raise ValueError(f"invalid S3 bucket name {name!r}")
    return name


def staged_table_ddl(
    spec: DatasetSpec, *, database: str, lake_bucket: str, partitions_start: str
) -> str:
    """CREATE EXTERNAL TABLE over the staged Parquet; projection finds the days, no MSCK."""
    location = f"s3://{_bucket(lake_bucket)}/staged/{validate_identifier(spec.name)}/"
    columns = [(f.name, f.athena_type) for f in spec.fields] + [
        ("_source_key", "string"),
        ("_source_version", "string"),
        ("_source_line", "int"),
    ]
    column_sql = ",\n  ".join(f"{_backticked(name)} {kind}" for name, kind in columns)
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
    property_sql = ",\n  ".join(f"{_literal(k)}={_literal(v)}" for k, v in properties.items())
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {_backticked(database)}."
        f"{_backticked(staged_table_name(spec))} (\n  {column_sql}\n)\n"
        "PARTITIONED BY (`dt` string)\n"
        "STORED AS PARQUET\n"
        f"LOCATION {_literal(location)}\n"
        f"TBLPROPERTIES (\n  {property_sql}\n)"
    )


def insert_days_sql(
    spec: DatasetSpec, table: TableSpec, *, database: str, first: str, last: str
) -> str:
    """INSERT INTO the table the deduplicated staged rows of days first..last (inclusive)."""
    first, last = validate_dt(first), validate_dt(last)
    days = (date.fromisoformat(last) - date.fromisoformat(first)).days + 1
    if not 1 <= days <= MAX_PARTITIONS_PER_QUERY:
        raise ValueError(
            f"{first}..{last} is {days} days; one query writes 1 to "
            f"{MAX_PARTITIONS_PER_QUERY} partitions"
        )
    columns = ", ".join(_quoted(c) for c in table.columns)
    source = ", ".join(_quoted(c) for c in SOURCE_COLUMNS)
    where = f'"dt" BETWEEN {_literal(first)} AND {_literal(last)}'
    if table.where is not None:
        where += f" AND {_quoted(table.where[0])} = {_literal(table.where[1])}"
    # The same rows as compact_day: one per source record (key, version, line), whichever
    # staged batch it came from; dt leads the window so Athena can split work by day.
    return (
        f'INSERT INTO {_quoted(database)}.{_quoted(table.name)} ({columns}, "dt")\n'
        f'SELECT {columns}, "dt" FROM (\n'
        f'  SELECT {columns}, "dt",\n'
        f'    row_number() OVER (PARTITION BY "dt", {source} ORDER BY {source}) AS "_rank"\n'
        f"  FROM {_quoted(database)}.{_quoted(staged_table_name(spec))}\n"
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


@dataclass(frozen=True)
class ChunkRun:
    first: str
    last: str
    stats: dict[str, Any]


@dataclass
class AthenaCompaction:
    table: str
    days: int = 0
    chunks: list[ChunkRun] = field(default_factory=list)

    @property
    def bytes_scanned(self) -> int:
        return int(sum(c.stats.get("athena_bytes_scanned", 0) for c in self.chunks))

    @property
    def cost_usd(self) -> float:
        return float(sum(c.stats.get("athena_cost_usd", 0.0) for c in self.chunks))


def compact_days_in_athena(
    engine: QueryEngine,
    store: LakeStore,
    catalog: GlueCatalog,
    spec: DatasetSpec,
    table: TableSpec,
    first: str,
    last: str,
    *,
    partitions_start: str,
) -> AthenaCompaction:
    """Overwrite the table's days first..last from staged data, 100 days per query."""
    catalog.ensure_table(
        TableDef(
            table.name,
            tuple((f.name, f.athena_type) for f in spec.table_fields(table)),
            table.description,
        )
    )
    engine.run_query(
        staged_table_ddl(
            spec,
            database=catalog.database,
            lake_bucket=catalog.lake_bucket,
            partitions_start=partitions_start,
        )
    )
    report = AthenaCompaction(table.name)
    for chunk in day_chunks(first, last):
        # Overwrite, not append: INSERT INTO adds files to whatever the day holds, and writes
        # into a registered partition's own location (an old version folder).
        catalog.delete_partitions(table.name, chunk)
        for dt in chunk:
            store.delete_prefix(partition_prefix(table.name, dt))
        result = engine.run_query(
            insert_days_sql(spec, table, database=catalog.database, first=chunk[0], last=chunk[-1])
        )
        report.chunks.append(ChunkRun(chunk[0], chunk[-1], dict(result.stats)))
        report.days += len(chunk)
    return report
