"""Daily analytics tables: Athena-dialect SQL files, run by the query engine, stored as tables."""

from dataclasses import dataclass
from importlib import resources

import dagster as dg
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from analytics_pipeline.datasets.spec import MAX_DECIMAL_PRECISION
from analytics_pipeline.defs.keys import (
    analytics_key,
    engine_kind,
    table_key,
)
from analytics_pipeline.defs.ranges import (
    BUILD_WORKERS,
    DayResult,
    build_days,
    lake_pool,
    map_days,
    range_policy,
    writing_tables,
)
from analytics_pipeline.defs.refresh import analytics_automation
from analytics_pipeline.lake.versioned_days import publish_partitions, validate_dt, write_partition
from analytics_pipeline.resources.catalog import Catalog, TableDef
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore

PREVIEW_ROWS = 10

_ATHENA_TYPES: list[tuple[pa.DataType, str]] = [
    (pa.int64(), "bigint"),
    (pa.int32(), "int"),
    (pa.int16(), "smallint"),
    (pa.float64(), "double"),
    (pa.bool_(), "boolean"),
    (pa.date32(), "date"),
    (pa.timestamp("ms"), "timestamp"),
    (pa.string(), "string"),
]


@dataclass(frozen=True)
class AnalyticsSpec:
    name: str
    tables: tuple[str, ...]
    description: str
    # Tables among `tables` kept as whole snapshots (a source's dimensions): when one's
    # content changes, every day with rows is rebuilt, so each day reads today's dimensions.
    snapshots: tuple[str, ...] = ()
    # Over a database source every change is reported by day (and by data version), so no
    # hourly refresh is needed, and none fails where the source is not configured.
    hourly_refresh: bool = True
    # Tables the SQL reads on its day alone (`WHERE dt = '{dt}'`, never joined across days):
    # the engine may read just that day's files of them (a year of days costs each query
    # ~10 ms to list, five years ~50 ms). A table joined on other days must not be named.
    day_tables: tuple[str, ...] = ()

    def sql(self, dt: str) -> str:
        template = resources.files("analytics_pipeline.sql").joinpath(f"{self.name}.sql")
        # The only value substituted is a partition key validated as a calendar date.
        return template.read_text().format(dt=validate_dt(dt))


ANALYTICS: tuple[AnalyticsSpec, ...] = (
    AnalyticsSpec(
        "daily_product_counts",
        ("products",),
        "Products sold per product per day.",
        day_tables=("products",),
    ),
    AnalyticsSpec(
        "iot_daily_device_stats",
        ("iot_sensor_data",),
        "Daily min/avg/max of each measure per IoT device.",
        day_tables=("iot_sensor_data",),
    ),
    AnalyticsSpec(
        "daily_user_events",
        ("sign_up_events", "sign_in_events"),
        "Daily sign-ups and sign-ins with unique users.",
        day_tables=("sign_up_events", "sign_in_events"),
    ),
    AnalyticsSpec(
        "web_request_stats",
        ("web_requests",),
        "Unique sessions, requests per session and products per request, "
        "by client, reseller and user.",
        day_tables=("web_requests",),
    ),
    AnalyticsSpec(
        "web_session_days",
        ("web_requests",),
        "Each session's requests and products per day, with its client, reseller and user: "
        "what the analytics API counts over any period.",
        day_tables=("web_requests",),
    ),
    AnalyticsSpec(
        "daily_rental_revenue_by_category",
        ("payment", "rental", "inventory", "film_category", "category"),
        "Payments and revenue per film category by day of payment (movie_rental).",
        snapshots=("inventory", "film_category", "category"),
        hourly_refresh=False,
        day_tables=("payment",),  # its rentals are joined on any day
    ),
    AnalyticsSpec(
        "daily_active_customers",
        ("rental", "payment"),
        "Customers who rented or paid, their rentals and payments, by day (movie_rental).",
        hourly_refresh=False,
        day_tables=("rental", "payment"),
    ),
)


def athena_typed(table: pa.Table) -> tuple[pa.Table, tuple[tuple[str, str], ...]]:
    """Cast engine output to the types Athena tables use, and name those types."""
    arrays, fields, columns = [], [], []
    for f, column in zip(table.schema, table.columns, strict=True):
        target, athena = _athena_type(f)
        # Athena keeps milliseconds: truncating finer timestamps is the intent, not data loss.
        safe = not pa.types.is_timestamp(f.type)
        arrays.append(column.cast(target, safe=safe))
        fields.append(pa.field(f.name, target))
        columns.append((f.name, athena))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields)), tuple(columns)


def canonical_order(table: pa.Table) -> pa.Table:
    """The rows sorted by every column, so the same answer is the same bytes.

    SQL without ORDER BY (a parallel GROUP BY) returns rows in any order; the day's digest
    must not call a recomputed, identical day changed and write it again."""
    if table.num_rows < 2:
        return table
    keys = [(name, "ascending", "at_end") for name in table.column_names]
    return table.take(pa.compute.sort_indices(table, sort_keys=keys))


def _athena_type(f: pa.Field) -> tuple[pa.DataType, str]:
    kind = f.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string(), "string"
    if pa.types.is_timestamp(kind):
        return pa.timestamp("ms"), "timestamp"
    if pa.types.is_date(kind):
        return pa.date32(), "date"
    # DuckDB returns sum() and count_if() of integers as HUGEINT (decimal(38,0)); Athena
    # returns bigint for both, so an integral decimal is a bigint here too.
    if pa.types.is_decimal(kind) and kind.scale == 0:
        return pa.int64(), "bigint"
    if pa.types.is_decimal(kind) and kind.precision <= MAX_DECIMAL_PRECISION:
        # Sums of money stay exact: DuckDB and Athena both give sum(decimal(p,s)) as
        # decimal(38,s).
        return pa.decimal128(kind.precision, kind.scale), f"decimal({kind.precision},{kind.scale})"
    if pa.types.is_decimal(kind) or pa.types.is_floating(kind):
        return pa.float64(), "double"
    if pa.types.is_integer(kind):
        # The narrowest Athena integer that holds every value of the type (Athena has no
        # unsigned types; DuckDB's TINYINT has no column type in the local catalog).
        bits = kind.bit_width * (2 if pa.types.is_unsigned_integer(kind) else 1)
        for width, target, athena in ((16, pa.int16(), "smallint"), (32, pa.int32(), "int")):
            if bits <= width:
                return target, athena
        return pa.int64(), "bigint"
    match = next((a for t, a in _ATHENA_TYPES if t == kind), None)
    if match is None:
        raise TypeError(f"column {f.name}: no Athena type for {kind}")
    return kind, match


def build_analytics_asset(
    spec: AnalyticsSpec, partitions_def: dg.PartitionsDefinition, env: str = "local"
) -> dg.AssetsDefinition:
    @dg.asset(
        key=analytics_key(spec.name),
        deps=[table_key(t) for t in spec.tables],
        partitions_def=partitions_def,
        group_name="analytics",
        kinds={"sql", engine_kind(env)},
        automation_condition=analytics_automation(
            tuple(table_key(t) for t in spec.snapshots), spec.hourly_refresh
        ),
        backfill_policy=range_policy(),
        pool=lake_pool(spec.name),
        description=f"{spec.description} SQL: analytics_pipeline/sql/{spec.name}.sql",
        metadata={"dagster/table_name": spec.name},
    )
    def analytics_asset(
        context: dg.AssetExecutionContext,
        store: LakeStore,
        catalog: Catalog,
        engine: QueryEngine,
    ) -> dg.MaterializeResult:
        days = sorted(validate_dt(dt) for dt in context.partition_keys)

        def build(dt: str) -> _WrittenDay:
            return _analytics_day(store, engine, spec, dt)

        with writing_tables(context, store, spec.name):
            # Locally each day is its own DuckDB query, off the GIL: two at a time. On Athena
            # one at a time, in this thread, so a terminated run stops the query it waits on.
            built = map_days(build, days, BUILD_WORKERS if env == "local" else 1)
            # One catalog change for the run's days (each change rewrites the catalog file).
            # A day typed differently (a column added) is ensured in day order, as it came.
            for table in list(dict.fromkeys(b.table for b in built.values()))[:-1]:
                catalog.ensure_table(table)
            published = publish_partitions(
                store, catalog, built[days[-1]].table, {dt: b.path for dt, b in built.items()}
            )
        for dt, day in built.items():
            day.result.metadata["location"] = published[dt].location
        return build_days(context, lambda dt: built[dt].result)

    return analytics_asset


@dataclass(frozen=True)
class _WrittenDay:
    result: DayResult
    table: TableDef
    path: str


def _analytics_day(
    store: LakeStore, engine: QueryEngine, spec: AnalyticsSpec, dt: str
) -> _WrittenDay:
    sql = spec.sql(dt)
    result = engine.run_day_query(sql, dt, spec.day_tables)
    data, columns = athena_typed(result.table)
    data = canonical_order(data)
    written = write_partition(store, spec.name, dt, data)
    metadata = {
        "dagster/row_count": data.num_rows,
        "dagster/partition_row_count": data.num_rows,
        "query": dg.MetadataValue.md(f"```sql\n{sql}\n```"),
        "executed_sql": dg.MetadataValue.md(f"```sql\n{result.executed_sql}\n```"),
        "preview": _preview(data),
        "engine": result.engine,
        "engine_seconds": round(result.seconds, 4),
        **result.stats,
        "path": written.path,
        "bytes": written.bytes,
        "unchanged": written.unchanged,
    }
    return _WrittenDay(
        DayResult(metadata), TableDef(spec.name, columns, spec.description), written.path
    )


def _preview(data: pa.Table) -> dg.MetadataValue:
    head = data.slice(0, PREVIEW_ROWS)
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in head.schema])
    records = [
        dg.TableRecord({k: _record_value(v) for k, v in row.items()}) for row in head.to_pylist()
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def _record_value(value: object) -> str | int | float | bool | None:
    """A value as a table record can hold it: a scalar as it is, anything else as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
