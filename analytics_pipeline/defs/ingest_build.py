"""The ingest run builds the few days it staged: their Parquet and table, in the same run.

Left to the automation, a dropped file waits for its tick and for a second run worker to
start (~15-25 s of `make dev`'s file -> table). Here the run that staged the days builds them
with the same code as the parquet and table assets, under the same table lock (one writer
per table; a table another run is writing is left to the automation), and reports each day as
those assets' materializations and check evaluations: the lineage staged -> parquet -> table
reads as before, each event naming this run. They are recorded after the staged days', so
the automation sees the days as handled and does not rebuild them; the analytics downstream
follow on its next tick.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pyarrow as pa

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.defs.keys import parquet_key, table_key
from analytics_pipeline.defs.ranges import DayResult, map_days, run_check_results
from analytics_pipeline.defs.tables import served_days
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.day_builder import DayBuilder
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore

AssetEvent = dg.AssetMaterialization | dg.AssetCheckEvaluation


def build_staged_days(
    context: dg.OpExecutionContext,
    spec: DatasetSpec,
    days: list[str],
    store: LakeStore,
    catalog: Catalog,
    engine: QueryEngine,
    day_builder: DayBuilder,
    held: Mapping[str, pa.Table],
) -> list[AssetEvent]:
    """Build every table of the dataset for `days`; the events to record once all are built.
    held: the staged files this run wrote, still in memory (they are not read back)."""
    events: list[AssetEvent] = []
    for table in spec.tables:
        owner = f"run {context.run.run_id} ingest of {spec.name}"
        # Not waiting: a table another run is writing is left to the automation, which
        # builds the day after that run (a backfill may hold the lock for minutes).
        with store.table_lock(table.name, owner, wait_seconds=0):
            build = day_builder.build_parquet(store, catalog, engine, spec, table, days, held)
            parquet = map_days(build.day, days, build.workers)
            published = day_builder.publish_days(
                context.instance, store, catalog, spec, table, days
            )
        events += _day_events(parquet_key(table.name), parquet, days, build.run_metadata)
        events += _day_events(table_key(table.name), served_days(engine, table, published), days)
    return events


def _day_events(
    key: dg.AssetKey,
    results: Mapping[str, DayResult],
    days: list[str],
    run_metadata: Mapping[str, Any] | None = None,
) -> list[AssetEvent]:
    """Each day's materialization with its own figures, then the run's check evaluations
    (folded over the days, as a ranged run of the asset reports them)."""
    events: list[AssetEvent] = [
        dg.AssetMaterialization(
            asset_key=key, partition=dt, metadata={**(run_metadata or {}), **results[dt].metadata}
        )
        for dt in days
    ]
    for check in run_check_results(results, days):
        events.append(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=str(check.check_name),
                passed=check.passed,
                metadata=dict(check.metadata),
                severity=check.severity,
            )
        )
    return events
