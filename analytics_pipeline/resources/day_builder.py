"""Who builds a table's Parquet days from staged/, and how the table learns what was built.

The parquet and table assets have one body for every deployment; this resource is the
difference. `DayBuilder` builds in this process with pyarrow (the default everywhere);
`AthenaDayBuilder` (resources/aws) has Athena build the datasets it is told to.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pyarrow as pa

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.defs.keys import parquet_key
from analytics_pipeline.defs.ranges import BUILD_WORKERS, DayResult
from analytics_pipeline.lake.compaction import compact_day, staged_day_paths
from analytics_pipeline.lake.versioned_days import (
    duplicated_keys_in_footer,
    publish_partitions,
    versions,
    write_partition,
)
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore

# How many times a day is rebuilt at once when staged files keep arriving while it is built.
REBUILDS_WHILE_STAGING = 3


@dataclass(frozen=True)
class ParquetBuild:
    """A run's days, ready to report: `day(dt)` gives one day's figures and checks."""

    day: Callable[[str], DayResult]
    workers: int = 1  # days reported at once; >1 only where a day's work happens in `day`
    run_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuiltDay:
    """A day's Parquet as the table step finds it, pointed at by the catalog."""

    rows: int  # what the day's Parquet holds
    metadata: dict
    duplicated_keys: int | None = None  # as its footer records them; None: not recorded


class DayBuilder(dg.ConfigurableResource):
    """Builds each day in this process: compacts the day's staged files into one Parquet
    version, then the table step points the catalog at the newest versions."""

    def build_parquet(
        self,
        store: LakeStore,
        catalog: Catalog,
        engine: QueryEngine,
        spec: DatasetSpec,
        table: TableSpec,
        days: list[str],
        held: Mapping[str, pa.Table] | None = None,
    ) -> ParquetBuild:
        """held: staged files this process wrote and still holds, by path (not read back)."""
        # Each day is read, compacted and written on its own: BUILD_WORKERS days at a time.
        return ParquetBuild(
            lambda dt: parquet_day(store, spec, table, dt, held), workers=BUILD_WORKERS
        )

    def publish_days(
        self,
        instance: dg.DagsterInstance,
        store: LakeStore,
        catalog: Catalog,
        spec: DatasetSpec,
        table: TableSpec,
        days: list[str],
    ) -> dict[str, BuiltDay]:
        """Point the run's days at their newest Parquet versions, in one catalog change."""
        newest: dict[str, str] = {}
        for dt in days:
            existing = versions(store, table.name, dt)
            if not existing:
                raise no_parquet(table, dt)
            newest[dt] = existing[-1]
        footers = {dt: store.parquet_footer(path) for dt, path in newest.items()}
        published = publish_partitions(store, catalog, table_def(spec, table), newest)
        return {
            dt: BuiltDay(
                footers[dt].num_rows,
                {
                    "location": published[dt].location,
                    "previous_location": published[dt].previous_location or "",
                    "table_status": published[dt].table_status,
                    "versions_removed": len(published[dt].removed_versions),
                },
                duplicated_keys_in_footer(footers[dt]),
            )
            for dt in days
        }


def parquet_day(
    store: LakeStore,
    spec: DatasetSpec,
    table: TableSpec,
    dt: str,
    held: Mapping[str, pa.Table] | None = None,
) -> DayResult:
    # A staged file written while the day is built would count as built (its update is
    # older than this materialization): build again until the day's staged files hold still.
    for _ in range(REBUILDS_WHILE_STAGING):
        day = compact_day(store, spec, table, dt, held)
        written = write_partition(store, table.name, dt, day.table, table.key)
        if tuple(staged_day_paths(store, spec, dt)) == day.staged_paths:
            break
    # What the stored file says of itself (its footer), not what was meant to be written.
    stored = store.parquet_footer(written.path)
    stored_schema = stored.schema.to_arrow_schema().remove_metadata()
    expected_schema = spec.table_arrow_schema(table)
    return DayResult(
        metadata={
            "dagster/row_count": written.rows,
            "dagster/partition_row_count": written.rows,
            "path": written.path,
            "bytes": written.bytes,
            "unchanged": written.unchanged,
            "staged_files": day.staged_files,
            "staged_rows": day.staged_rows,
            "duplicates_dropped": day.duplicates_dropped,
            "content_sha256": written.digest,
        },
        checks=[
            dg.AssetCheckResult(
                check_name="rows_reconcile_with_staged",
                passed=stored.num_rows == day.expected_rows,
                metadata={
                    "parquet_rows": stored.num_rows,
                    "staged_distinct_records": day.expected_rows,
                },
            ),
            dg.AssetCheckResult(
                check_name="schema_matches_spec",
                passed=stored_schema.equals(expected_schema),
                metadata={"written": str(stored_schema), "spec": str(expected_schema)},
            ),
        ],
    )


def no_parquet(table: TableSpec, dt: str) -> dg.Failure:
    return dg.Failure(
        f"{table.name} has no Parquet for {dt}: materialize "
        f"{parquet_key(table.name).to_user_string()} for {dt} first"
    )
