"""What Dagster sees of a database source: per table, source -> staged -> parquet -> table,
and the job (hourly, and in `make process`) that extracts every table of the source.

As for the JSON datasets, the job stages and the assets serve: the extract merges a table's
changes into its staged days and reports each day whose rows changed; the parquet and table
assets build a day from staged alone (so a backfill from the UI needs no database). The
extract builds the days it changed in the same step, after reporting them staged, so the
automation sees them handled; a crash in between leaves them to it. A snapshot table is one
unpartitioned chain whose data version is its content digest, so downstream automation can
tell a changed dimension from a re-read one. An incremental table's chain is daily-
partitioned, so downstream days rebuild exactly the days that changed.
"""

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import dagster as dg

from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind
from analytics_pipeline.defs.keys import (
    parquet_key,
    rebuild_on_upstream_update,
    staged_key,
    table_key,
)
from analytics_pipeline.defs.ranges import lake_pool, range_policy, writing_tables
from analytics_pipeline.lake.source_days import promote_day, publish_days, serve_days
from analytics_pipeline.lake.source_extract import SNAPSHOT_DT, Extracted, extract_table
from analytics_pipeline.lake.versioned_days import (
    PublishedPartition,
    WrittenPartition,
    stored_digest,
    validate_dt,
)
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.lake_lock import table_locks
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline.resources.store import LakeStore
from analytics_pipeline.settings import Settings

_OUTSIDE = "outside the partitions"


def _data_version_tags(digest: str) -> dict[str, str]:
    """A logged materialization's data version, as MaterializeResult(data_version=) sets it."""
    return {"dagster/data_version": digest, "dagster/data_version_is_user_provided": "true"}


def source_key(source: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(["source", f"{source}_{table}"])


def extract_job_name(source: str) -> str:
    return f"extract_{source}"


def source_resource_key(source: str) -> str:
    return f"{source}_db"


def build_source_definitions(
    spec: SourceSpec, settings: Settings, daily: dg.PartitionsDefinition
) -> dg.Definitions:
    """The source's assets, job and hourly schedule; its tables fail freshness after the
    source's window (ANALYTICS_FRESHNESS_HOURS or the spec's) without an extract."""
    hours = settings.freshness_window_hours(spec.name, spec.freshness_hours)
    freshness = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=hours))
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = []
    for table in spec.tables:
        days = daily if table.kind is TableKind.INCREMENTAL else None
        assets += [
            dg.AssetSpec(
                source_key(spec.name, table.name),
                group_name=spec.name,
                kinds={"sql"},
                description=f"Table {table.name} of the {spec.name} database.",
            ),
            dg.AssetSpec(
                staged_key(table.name),
                deps=[source_key(spec.name, table.name)],
                partitions_def=days,
                group_name=spec.name,
                kinds={"parquet"},
                description=f"The current rows of {table.name} in staged/{spec.name}/"
                f"{table.name}/: "
                + (
                    "one snapshot version, replaced whole"
                    if days is None
                    else f"days of {table.event_date}, merged by "
                    f"{', '.join(table.primary_key)}; written by the {extract_job_name(spec.name)}"
                    " job"
                ),
            ),
            _parquet_asset(spec, table, days),
            _table_asset(spec, table, days, freshness),
        ]
    job = _extract_job(spec, daily)
    return dg.Definitions(assets=assets, jobs=[job], schedules=[_hourly_extract(spec)])


def _hourly_extract(spec: SourceSpec) -> dg.ScheduleDefinition:
    """The extract every hour at :15, skipped (with its reason in the UI) while the source
    has no database: a lake before `make sample-data`, or AWS with neither URL nor secret.
    Without the skip each hour would add a failed run and an alert."""
    database_key = source_resource_key(spec.name)

    @dg.schedule(
        name=f"{extract_job_name(spec.name)}_hourly",
        job_name=extract_job_name(spec.name),
        cron_schedule="15 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        required_resource_keys={database_key},
    )
    def hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        database: SourceDatabase = getattr(context.resources, database_key)
        if not database.exists():
            return dg.SkipReason(
                f"no {spec.name} database: its SQLite file does not exist yet (make "
                "sample-data creates the demo's), or on AWS neither "
                "ANALYTICS_MOVIE_RENTAL_DB_URL nor ANALYTICS_MOVIE_RENTAL_DB_SECRET is set"
            )
        return dg.RunRequest()

    return hourly


def _extract_job(spec: SourceSpec, daily: dg.PartitionsDefinition) -> dg.JobDefinition:
    """The tables one after another in the run's own process: the default executor would
    start a process per table, each importing Dagster and the project (~2 CPU-s apiece, seven
    times an hour), to read tables that mostly take well under a second."""
    ops = [_extract_op(spec, table, daily) for table in spec.tables]

    @dg.job(
        name=extract_job_name(spec.name),
        description=f"Reads every table of {spec.name} into staged (changes by cursor, deletes "
        "by keys), then builds the Parquet and table of the days that changed.",
        tags={"source": spec.name},
        executor_def=dg.in_process_executor,
    )
    def extract() -> None:
        for op in ops:
            op()

    return extract


def _extract_op(
    spec: SourceSpec, table: SourceTable, daily: dg.PartitionsDefinition
) -> dg.OpDefinition:
    database_key = source_resource_key(spec.name)
    by_day = table.kind is TableKind.INCREMENTAL

    def partitions(days: list[str], keep_all: bool = False) -> list[str | None]:
        """Each day's partition: a snapshot's is None; a day before the partitions' start is
        in the table, but no downstream day exists to rebuild for it (dropped, or _OUTSIDE)."""
        if not by_day:
            return [None] * len(days)
        inside: list[str | None] = [dt if daily.has_partition_key(dt) else _OUTSIDE for dt in days]
        return inside if keep_all else [dt for dt in inside if dt is not _OUTSIDE]

    @dg.op(
        name=f"extract_{spec.name}_{table.name}",
        pool=lake_pool(table.name),
        required_resource_keys={database_key, "store", "catalog"},
        tags={"source": spec.name},
    )
    def extract(context: dg.OpExecutionContext) -> None:
        store: LakeStore = context.resources.store
        catalog: Catalog = context.resources.catalog
        database: SourceDatabase = getattr(context.resources, database_key)

        def report_staged(days: list[str]) -> None:
            for dt in partitions(days):
                context.log_event(dg.AssetMaterialization(staged_key(table.name), partition=dt))

        owner = f"run {context.run.run_id} extract {table.name}"
        with table_locks(store, [table.name], owner):
            done = extract_table(
                store, catalog, database, spec, table.name, on_staged=report_staged
            )
            # Every day the read touched, not only the changed ones: a day staged before a
            # crash, and not yet served, is served now.
            built = serve_days(
                store, catalog, spec.name, table.name, done.days_written, done.staged
            )
        metadata = _extract_metadata(done)
        context.log.info(f"{spec.name}.{table.name}: {metadata}")
        # Reported where what is served changed: a new Parquet version, or the catalog
        # repointed (a day staged and built before a crash, published only now).
        served = [dt for dt, day in built.items() if day.changed]
        for dt, partition in zip(served, partitions(served, keep_all=True), strict=True):
            if partition is _OUTSIDE:
                continue
            day = built[dt]
            tags = None if by_day else _data_version_tags(day.parquet.digest)
            for key, day_metadata in (
                (parquet_key(table.name), {**metadata, **_parquet_metadata(day.parquet)}),
                (table_key(table.name), _table_metadata(day.parquet.rows, day.published)),
            ):
                context.log_event(
                    dg.AssetMaterialization(
                        key, partition=partition, metadata=day_metadata, tags=tags
                    )
                )

    return extract


def _parquet_metadata(written: WrittenPartition) -> dict[str, Any]:
    return {
        "dagster/row_count": written.rows,
        "path": written.path,
        "unchanged": written.unchanged,
        "content_sha256": written.digest,
    }


def _table_metadata(rows: int, published: PublishedPartition) -> dict[str, Any]:
    return {
        "dagster/row_count": rows,
        "location": published.location,
        "previous_location": published.previous_location or "",
        "table_status": published.table_status,
    }


def _extract_metadata(done: Extracted) -> dict[str, Any]:
    return {
        "rows_read": done.rows_read,
        "rows_deleted": done.rows_deleted,
        "rows_untypable": done.rows_untypable,
        "rows_quarantined": done.rows_quarantined,
        "days_written": len(done.days_written),
        "days_changed": len(done.days_changed),
        "cursor": str(done.cursor),
    }


def _served_layer(
    spec: SourceSpec, table: SourceTable, daily: dg.PartitionsDefinition | None
) -> dict[str, Any]:
    """What the parquet and table assets share: built by day (or whole), rebuilt when the
    layer below changed, one writer per table."""
    return {
        "partitions_def": daily,
        "group_name": spec.name,
        "automation_condition": rebuild_on_upstream_update(),
        "backfill_policy": range_policy() if daily else None,
        "pool": lake_pool(table.name),
    }


def _parquet_asset(
    spec: SourceSpec, table: SourceTable, daily: dg.PartitionsDefinition | None
) -> dg.AssetsDefinition:
    @dg.asset(
        key=parquet_key(table.name),
        deps=[staged_key(table.name)],
        kinds={"parquet"},
        **_served_layer(spec, table, daily),
        description=f"{table.name} as Parquet (parquet/{table.name}/dt=.../<version>/): each "
        "day's newest staged version, under a new version only when its content changed.",
    )
    def parquet_days(context: dg.AssetExecutionContext, store: LakeStore) -> Iterator[Any]:
        days = _asset_days(context, daily)
        with writing_tables(context, store, table.name):
            built = {dt: promote_day(store, spec.name, table.name, dt) for dt in days}
        yield from _day_results(
            context,
            daily,
            {dt: _parquet_metadata(w) for dt, w in built.items()},
            {dt: w.digest for dt, w in built.items()},
        )

    return parquet_days


def _table_asset(
    spec: SourceSpec,
    table: SourceTable,
    daily: dg.PartitionsDefinition | None,
    freshness: dg.FreshnessPolicy,
) -> dg.AssetsDefinition:
    by_day = f", by day of {table.event_date}" if daily else ""

    @dg.asset(
        key=table_key(table.name),
        deps=[parquet_key(table.name)],
        kinds={"table"},
        **_served_layer(spec, table, daily),
        freshness_policy=freshness,
        description=f"The catalog table {table.name}, as named in {spec.name}{by_day}: each "
        "day pointed at its newest Parquet version.",
    )
    def table_days(
        context: dg.AssetExecutionContext, store: LakeStore, catalog: Catalog
    ) -> Iterator[Any]:
        days = _asset_days(context, daily)
        with writing_tables(context, store, table.name):
            published = publish_days(store, catalog, spec.name, table.name, days)
        footers = {dt: store.parquet_footer(path) for dt, (path, _) in published.items()}
        yield from _day_results(
            context,
            daily,
            {dt: _table_metadata(footers[dt].num_rows, p) for dt, (_, p) in published.items()},
            {dt: stored_digest(store, path) or "" for dt, (path, _) in published.items()},
        )

    return table_days


def _asset_days(
    context: dg.AssetExecutionContext, daily: dg.PartitionsDefinition | None
) -> list[str]:
    return sorted(validate_dt(dt) for dt in context.partition_keys) if daily else [SNAPSHOT_DT]


def _day_results(
    context: dg.AssetExecutionContext,
    daily: dg.PartitionsDefinition | None,
    metadata: Mapping[str, dict[str, Any]],
    digests: Mapping[str, str],
) -> Iterator[dg.MaterializeResult]:
    """One result for the run; each day's figures go to its own partition. A snapshot's data
    version is its content, so the analytics tell a changed dimension from a re-read one."""
    if daily is None:
        yield dg.MaterializeResult(
            metadata=metadata[SNAPSHOT_DT], data_version=dg.DataVersion(digests[SNAPSHOT_DT])
        )
        return
    for dt, day in metadata.items():
        context.add_asset_metadata(day, partition_key=dt)
    yield dg.MaterializeResult()
