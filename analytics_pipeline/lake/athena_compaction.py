"""The scale path: build a table's daily Parquet inside Athena instead of in-process.

An external table over staged/<dataset>/ (the staged Parquet, days found by partition
projection); then per chunk of at most 100 days (Athena's limit of partitions one query
may write), the same atomic replacement as the in-process path:
1. a fresh version name V (the in-process path's format, so versions of both paths sort by
   time together) and a scratch Glue table whose days are registered at
   parquet/<table>/dt=D/V/ (INSERT INTO appends to a registered partition in that
   partition's own location: Trino's Hive connector, Athena engine 3's base, does so in
   its APPEND mode, see trinodb/trino#30580; new partitions would go to <location>/dt=D/
   and be registered by Athena itself, as AWS's "CTAS and INSERT INTO for ETL" shows);
2. INSERT INTO the scratch table the staged rows of the chunk, deduplicated by source
   record exactly as `compaction.compact_day`;
3. SELECT dt, count(*) from the scratch table: the rows of each day (one cheap query);
4. repoint the table's days that have rows at dt=D/V/ (Glue create or update partition),
   delete the versions older than V, and drop the scratch table.
A failure before step 4 leaves the table's days as they were (the chunk's new files are
deleted); chunks already done stay done. A day with no staged rows is left as it was.

Layouts: a day is always a version folder, whichever path wrote it: the in-process path's
`part-00000.snappy.parquet` or Athena's extensionless files in dt=D/V/. `versioned_days.versions`
lists only `.parquet` files, so the in-process path never takes Athena's files for its own
versions; `versioned_days.delete_older_versions` removes older version folders whatever files
they hold. Tables with partition projection are refused: Athena would read every version
under dt=D/ at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.lake.athena_compaction_sql import (
    MAX_PARTITIONS_PER_QUERY,
    SCRATCH_TABLE_PREFIX,
    count_days_sql,
    day_chunks,
    drop_staged_table_sql,
    insert_days_sql,
    staged_columns,
    staged_table_ddl,
    staged_table_name,
)
from analytics_pipeline.lake.table_definition import TableDef
from analytics_pipeline.lake.versioned_days import (
    ProjectionLayoutError,
    delete_older_versions,
    partition_prefix,
    validate_identifier,
)

if TYPE_CHECKING:
    from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog
    from analytics_pipeline.resources.engine import QueryEngine
    from analytics_pipeline.resources.store import LakeStore

# What the pipeline role needs for this path (terraform/iam.tf grants each; a test checks).
REQUIRED_ACTIONS = (
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
    "athena:StopQueryExecution",
    "glue:GetTable",
    "glue:CreateTable",  # the staged table (Athena DDL) and each chunk's scratch table
    "glue:UpdateTable",
    "glue:DeleteTable",  # scratch tables, and the staged table when the spec grew
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchGetPartition",
    "glue:BatchCreatePartition",
    "glue:UpdatePartition",
    "glue:BatchUpdatePartition",
    "s3:ListBucket",
    "s3:GetObject",  # staged/ (read by Athena as the caller), query results
    "s3:PutObject",  # parquet/ (written by Athena as the caller), query results
    "s3:DeleteObject",  # parquet/: older versions, and a failed chunk's files
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


def drop_stale_staged_table(engine: QueryEngine, catalog: GlueCatalog, spec: DatasetSpec) -> bool:
    """Drop the external staged table if its columns are not the spec's (a field was added
    since it was created): CREATE ... IF NOT EXISTS would keep the old columns, and the
    INSERT would fail on the new one. Dropping an external table leaves its files."""
    name = staged_table_name(spec)
    columns = catalog.table_columns(name)
    if columns is None:
        return False
    if columns == staged_columns(spec):
        return False
    engine.run_query(drop_staged_table_sql(spec, database=catalog.database))
    return True


def new_version() -> str:
    """A version folder name, in `versioned_days.write_partition`'s format (sorts by time)."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def scratch_table_name(table: str, version: str) -> str:
    return validate_identifier(f"{SCRATCH_TABLE_PREFIX}{table}_{version[-8:]}"[:128])


@dataclass(frozen=True)
class ChunkRun:
    first: str
    last: str
    version: str
    rows: dict[str, int]  # rows per day written; days without staged rows are absent
    insert_stats: dict[str, Any]
    count_stats: dict[str, Any]

    @property
    def stats(self) -> dict[str, Any]:
        """The chunk's two queries together (bytes scanned and cost added up)."""
        return {
            "athena_bytes_scanned": int(self.insert_stats.get("athena_bytes_scanned", 0))
            + int(self.count_stats.get("athena_bytes_scanned", 0)),
            "athena_cost_usd": float(self.insert_stats.get("athena_cost_usd", 0.0))
            + float(self.count_stats.get("athena_cost_usd", 0.0)),
            "athena_query_ids": [
                q
                for q in (
                    self.insert_stats.get("athena_query_id"),
                    self.count_stats.get("athena_query_id"),
                )
                if q
            ],
        }


@dataclass
class AthenaCompaction:
    """What compact_days_in_athena did, for materialization metadata."""

    table: str
    days: int = 0  # days in the range
    chunks: list[ChunkRun] = field(default_factory=list)
    # Each day now served from a new version: its directory, and the location it replaced.
    locations: dict[str, str] = field(default_factory=dict)
    previous_locations: dict[str, str | None] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # lake paths of older versions deleted
    ddl_stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_by_day(self) -> dict[str, int]:
        """Rows of every day in the range (0: no staged rows, the day was left as it was)."""
        rows: dict[str, int] = {}
        for chunk in self.chunks:
            for dt in day_chunks(chunk.first, chunk.last, size=MAX_PARTITIONS_PER_QUERY)[0]:
                rows[dt] = chunk.rows.get(dt, 0)
        return rows

    @property
    def rows(self) -> int:
        return sum(sum(c.rows.values()) for c in self.chunks)

    @property
    def empty_days(self) -> list[str]:
        return [dt for dt, n in self.rows_by_day.items() if n == 0]

    @property
    def bytes_scanned(self) -> int:
        return int(sum(c.stats["athena_bytes_scanned"] for c in self.chunks))

    @property
    def cost_usd(self) -> float:
        return float(sum(c.stats["athena_cost_usd"] for c in self.chunks))

    @property
    def query_ids(self) -> list[str]:
        ddl = [self.ddl_stats["athena_query_id"]] if self.ddl_stats.get("athena_query_id") else []
        return ddl + [q for c in self.chunks for q in c.stats["athena_query_ids"]]

    def metadata(self) -> dict[str, Any]:
        """Materialization metadata: the standard row count plus Athena's bill."""
        return {
            "dagster/row_count": self.rows,
            "days": self.days,
            "days_written": len(self.locations),
            "days_without_rows": len(self.empty_days),
            "athena_queries": len(self.query_ids),
            "athena_bytes_scanned": self.bytes_scanned,
            "athena_cost_usd": round(self.cost_usd, 6),
            "athena_query_ids": ", ".join(self.query_ids),
            "older_versions_removed": len(self.removed),
        }


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
    """Replace the table's days first..last with the deduplicated staged rows, built by
    Athena, 100 days per INSERT, each day repointed atomically (see the module docstring).

    Raises AthenaQueryError (Athena's reason and query id) if a chunk's query fails; the
    chunks before it are done, the failed one's days keep their previous version."""
    if catalog.is_projected(table.name):
        raise ProjectionLayoutError(
            f"table {table.name} uses partition projection: Athena would read every version "
            "under dt=D/ at once; build it in-process, or remove it from projected_tables"
        )
    definition = TableDef(
        table.name,
        tuple((f.name, f.athena_type) for f in spec.table_fields(table)),
        table.description,
    )
    catalog.ensure_table(definition)
    drop_stale_staged_table(engine, catalog, spec)
    ddl = engine.run_query(
        staged_table_ddl(
            spec,
            database=catalog.database,
            lake_bucket=catalog.lake_bucket,
            partitions_start=partitions_start,
        )
    )
    report = AthenaCompaction(table.name, ddl_stats=dict(ddl.stats))
    for chunk in day_chunks(first, last):
        _compact_chunk(engine, store, catalog, spec, table, definition, chunk, report)
        report.days += len(chunk)
    return report


def _compact_chunk(
    engine: QueryEngine,
    store: LakeStore,
    catalog: GlueCatalog,
    spec: DatasetSpec,
    table: TableSpec,
    definition: TableDef,
    chunk: list[str],
    report: AthenaCompaction,
) -> None:
    version = new_version()
    scratch = scratch_table_name(table.name, version)
    directories = {
        dt: store.location(f"{partition_prefix(table.name, dt)}{version}") + "/" for dt in chunk
    }
    database = catalog.database
    published = False
    try:
        catalog.create_scratch_table(scratch, definition, directories)
        inserted = engine.run_query(
            insert_days_sql(
                spec, table, database=database, first=chunk[0], last=chunk[-1], into=scratch
            )
        )
        counted = engine.run_query(
            count_days_sql(scratch, database=database, first=chunk[0], last=chunk[-1])
        )
        rows = {
            str(dt): int(n)
            for dt, n in zip(
                counted.table.column("dt").to_pylist() if counted.table.num_rows else [],
                counted.table.column("rows").to_pylist() if counted.table.num_rows else [],
                strict=True,
            )
            if n
        }
        written = {dt: directories[dt] for dt in chunk if rows.get(dt)}
        # From here the new files must stay: a repoint that fails part way has already
        # moved some days onto them.
        published = True
        previous = catalog.register_partitions(table.name, written)
    finally:
        if not published:
            # The table still serves the previous versions: remove what this chunk wrote.
            for dt in chunk:
                store.delete_prefix(f"{partition_prefix(table.name, dt)}{version}")
        catalog.delete_scratch_table(scratch)
    for dt in chunk:
        if dt in written:
            keep = f"{partition_prefix(table.name, dt)}{version}/"
            report.removed += delete_older_versions(store, table.name, dt, keep=keep)
        else:
            # No staged rows: nothing was written and the day is left as it was.
            store.delete_prefix(f"{partition_prefix(table.name, dt)}{version}")
    report.locations.update(written)
    report.previous_locations.update(previous)
    report.chunks.append(
        ChunkRun(chunk[0], chunk[-1], version, rows, dict(inserted.stats), dict(counted.stats))
    )
