"""A table in the catalog: each day pointed at its newest Parquet, and checked as served."""

from datetime import timedelta

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.defs.keys import (
    catalog_kind,
    parquet_key,
    rebuild_on_upstream_update,
    table_key,
)
from analytics_pipeline.defs.parquet import column_schema
from analytics_pipeline.defs.ranges import (
    DayResult,
    build_days,
    lake_pool,
    range_policy,
    writing_tables,
)
from analytics_pipeline.lake.versioned_days import validate_dt
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.day_builder import BuiltDay, DayBuilder
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore


def table_asset(
    spec: DatasetSpec,
    table: TableSpec,
    partitions_def: dg.PartitionsDefinition,
    env: str,
    freshness_hours: int,
) -> dg.AssetsDefinition:
    key = table_key(table.name)
    checks = [
        dg.AssetCheckSpec(
            "rows_match_parquet",
            asset=key,
            description="Rows the catalog serves for the day = the file's",
        )
    ]
    if table.key:
        checks.append(
            dg.AssetCheckSpec(
                "no_duplicate_keys",
                asset=key,
                description=f"No two rows of a day share ({', '.join(table.key)})",
            )
        )

    @dg.asset(
        key=key,
        deps=[parquet_key(table.name)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={catalog_kind(env)},
        automation_condition=rebuild_on_upstream_update(),
        backfill_policy=range_policy(),
        pool=lake_pool(table.name),
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=freshness_hours)
        ),
        description=f"The {table.name} table in the catalog, each day pointed at its newest "
        "Parquet version; older versions are deleted after the switch.",
        metadata={
            "dagster/column_schema": column_schema(spec, table),
            "dagster/table_name": table.name,
        },
        check_specs=checks,
    )
    def table_days(
        context: dg.AssetExecutionContext,
        store: LakeStore,
        catalog: Catalog,
        engine: QueryEngine,
        day_builder: DayBuilder,
    ) -> dg.MaterializeResult:
        days = sorted(validate_dt(dt) for dt in context.partition_keys)
        with writing_tables(context, store, table.name):
            built = day_builder.publish_days(context.instance, store, catalog, spec, table, days)
        served = served_days(engine, table, built)
        return build_days(context, served.__getitem__)

    return table_days


def served_days(
    engine: QueryEngine, table: TableSpec, built: dict[str, BuiltDay]
) -> dict[str, DayResult]:
    """The run's days as the catalog serves them, checked against the rows their Parquet
    holds: one query for the counts, whatever the range (on Athena, each query is billed at
    least 10 MB). Duplicate keys are counted by the file's footer where it records them: the
    catalog serves that file, with as many rows as it holds. Other days (built by Athena,
    or written before footers recorded them) are grouped by one more query."""
    days = ", ".join(f"'{validate_dt(dt)}'" for dt in built)
    served = _per_day(
        engine,
        f'SELECT dt, count(*) AS "rows" FROM {table.name} WHERE dt IN ({days}) GROUP BY dt',
    )
    duplicated = {dt: d.duplicated_keys or 0 for dt, d in built.items()}
    unrecorded = [dt for dt, d in built.items() if d.duplicated_keys is None]
    if table.key and unrecorded:
        key_columns = ", ".join(table.key)
        days = ", ".join(f"'{validate_dt(dt)}'" for dt in unrecorded)
        duplicated |= _per_day(
            engine,
            f'SELECT dt, count(*) AS "keys" FROM (SELECT dt, {key_columns} FROM {table.name} '
            f"WHERE dt IN ({days}) GROUP BY dt, {key_columns} HAVING count(*) > 1) GROUP BY dt",
        )
    results = {}
    for dt, day in built.items():
        rows = served.get(dt, 0)
        checks = [
            dg.AssetCheckResult(
                check_name="rows_match_parquet",
                passed=rows == day.rows,
                metadata={"catalog_rows": rows, "parquet_rows": day.rows},
            )
        ]
        if table.key:
            checks.append(
                dg.AssetCheckResult(
                    check_name="no_duplicate_keys",
                    passed=duplicated.get(dt, 0) == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"duplicated_keys": duplicated.get(dt, 0)},
                )
            )
        results[dt] = DayResult(
            metadata={
                "dagster/row_count": day.rows,
                "dagster/partition_row_count": day.rows,
                "catalog_rows": rows,
                **day.metadata,
            },
            checks=checks,
        )
    return results


def _per_day(engine: QueryEngine, sql: str) -> dict[str, int]:
    """A (dt, number) query's rows by day; a day with no row has none to count."""
    table = engine.run_query(sql).table
    if table.num_columns < 2:
        return {}
    return {
        str(dt): int(n)
        for dt, n in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True)
        if dt is not None and n is not None
    }
