"""A table's Parquet days: one asset per output table, built by the `day_builder` resource."""

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.defs.keys import parquet_key, rebuild_on_upstream_update, staged_key
from analytics_pipeline.defs.ranges import build_days, lake_pool, range_policy, writing_tables
from analytics_pipeline.lake.versioned_days import validate_dt
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.day_builder import DayBuilder
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore


def column_schema(spec: DatasetSpec, table: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, f.athena_type) for f in spec.table_fields(table)]
        + [dg.TableColumn("dt", "string", description="partition: event date, YYYY-MM-DD")]
    )


def parquet_asset(
    spec: DatasetSpec, table: TableSpec, partitions_def: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    key = parquet_key(table.name)

    @dg.asset(
        key=key,
        deps=[staged_key(spec.name)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"parquet"},
        automation_condition=rebuild_on_upstream_update(),
        backfill_policy=range_policy(),
        pool=lake_pool(table.name),
        description=f"Each day of {table.name} as snappy Parquet under a fresh version "
        f"prefix (parquet/{table.name}/dt=.../<version>/), rebuilt from every staged file of "
        "the day (in-process, or by Athena INSERTs where ANALYTICS_ATHENA_COMPACTION says).",
        metadata={"dagster/column_schema": column_schema(spec, table)},
        check_specs=[
            dg.AssetCheckSpec(
                "rows_reconcile_with_staged",
                asset=key,
                description="Parquet rows = distinct staged records of the day",
            ),
            dg.AssetCheckSpec(
                "schema_matches_spec",
                asset=key,
                description="The written file's columns and types = the spec",
            ),
        ],
    )
    def parquet_days(
        context: dg.AssetExecutionContext,
        store: LakeStore,
        catalog: Catalog,
        engine: QueryEngine,
        day_builder: DayBuilder,
    ) -> dg.MaterializeResult:
        days = sorted(validate_dt(dt) for dt in context.partition_keys)
        with writing_tables(context, store, table.name):
            built = day_builder.build_parquet(store, catalog, engine, spec, table, days)
            return build_days(
                context, built.day, run_metadata=built.run_metadata, workers=built.workers
            )

    return parquet_days
