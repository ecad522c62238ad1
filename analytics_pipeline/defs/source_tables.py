"""What Dagster sees of a database source: per table, source -> parquet -> table, and the
job (hourly, and in `make process`) that extracts every table of the source.

A snapshot table is one unpartitioned asset whose data version is its content digest, so
downstream automation can tell a changed dimension from a re-read one. An incremental
table's catalog asset is daily-partitioned: the extract reports a materialization for each
day whose rows changed, so downstream days rebuild exactly the days that changed."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg

from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind
from analytics_pipeline.defs.keys import parquet_key, table_key
from analytics_pipeline.defs.ranges import lake_pool
from analytics_pipeline.lake.source_extract import extract_table
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.lake_lock import table_locks
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline.resources.store import LakeStore
from analytics_pipeline.settings import Settings


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
    extracts = [_extract_asset(spec, table, daily, freshness) for table in spec.tables]
    day_tables = [
        _catalog_table(spec, t, freshness, daily)
        for t in spec.tables
        if t.kind is TableKind.INCREMENTAL
    ]
    job = dg.define_asset_job(
        extract_job_name(spec.name),
        selection=dg.AssetSelection.assets(*extracts),
        description=f"Reads every table of {spec.name}: changes by cursor, deletes by keys.",
    )
    return dg.Definitions(
        assets=[
            *(
                dg.AssetSpec(
                    source_key(spec.name, t.name),
                    group_name=spec.name,
                    kinds={"sql"},
                    description=f"Table {t.name} of the {spec.name} database.",
                )
                for t in spec.tables
            ),
            *extracts,
            *day_tables,
        ],
        jobs=[job],
        schedules=[_hourly_extract(spec)],
    )


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


def _catalog_table(
    spec: SourceSpec,
    table: SourceTable,
    freshness: dg.FreshnessPolicy,
    daily: dg.PartitionsDefinition | None = None,
) -> dg.AssetSpec:
    by_day = (
        f", by day of {table.event_date}: the extract reports each day whose rows changed"
        if daily
        else ""
    )
    return dg.AssetSpec(
        table_key(table.name),
        deps=[parquet_key(table.name)],
        partitions_def=daily,
        group_name=spec.name,
        kinds={"table"},
        freshness_policy=freshness,
        description=f"The catalog table {table.name}, as named in {spec.name}{by_day}.",
    )


def _extract_asset(
    spec: SourceSpec,
    table: SourceTable,
    daily: dg.PartitionsDefinition,
    freshness: dg.FreshnessPolicy,
) -> dg.AssetsDefinition:
    database_key = source_resource_key(spec.name)
    by_day = table.kind is TableKind.INCREMENTAL

    @dg.multi_asset(
        name=f"extract_{spec.name}_{table.name}",
        specs=[
            dg.AssetSpec(
                parquet_key(table.name),
                deps=[source_key(spec.name, table.name)],
                group_name=spec.name,
                kinds={"parquet"},
                description=f"{table.name} as Parquet: "
                + (
                    "one snapshot version, replaced whole"
                    if table.event_date is None
                    else f"days of {table.event_date}, merged by {', '.join(table.primary_key)}"
                ),
            ),
            *([] if by_day else [_catalog_table(spec, table, freshness)]),
        ],
        pool=lake_pool(table.name),
        required_resource_keys={database_key, "store", "catalog"},
    )
    def extract(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        store: LakeStore = context.resources.store
        catalog: Catalog = context.resources.catalog
        database: SourceDatabase = getattr(context.resources, database_key)
        owner = f"run {context.run.run_id} extract {table.name}"
        with table_locks(store, [table.name], owner):
            done = extract_table(store, catalog, database, spec, table.name)
        metadata: dict[str, dg.RawMetadataValue] = {
            "rows_read": done.rows_read,
            "rows_deleted": done.rows_deleted,
            "rows_untypable": done.rows_untypable,
            "rows_quarantined": done.rows_quarantined,
            "days_written": len(done.days_written),
            "days_changed": len(done.days_changed),
            "cursor": str(done.cursor),
        }
        yield dg.MaterializeResult(asset_key=parquet_key(table.name), metadata=metadata)
        if by_day:
            # A day outside the partitions (before their start) is in the table, but no
            # downstream day exists to rebuild for it.
            for dt in filter(daily.has_partition_key, done.days_changed):
                context.log_event(dg.AssetMaterialization(table_key(table.name), partition=dt))
        else:
            yield dg.MaterializeResult(
                asset_key=table_key(table.name),
                metadata=metadata,
                data_version=dg.DataVersion(done.digest or ""),
            )

    return extract
