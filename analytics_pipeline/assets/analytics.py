"""Daily analytics tables: Athena-dialect SQL files, run by the query engine, stored as tables."""


from dataclasses import dataclass
from importlib import resources

import dagster as dg
import pyarrow as pa

from analytics_pipeline.assets.keys import analytics_key, rebuild_on_upstream_update, table_key
from analytics_pipeline.partitions import publish_partition, validate_dt, write_partition
from analytics_pipeline.resources.catalog import DuckDBCatalog, TableDef
from analytics_pipeline.resources.engine import DuckDBEngine
from analytics_pipeline.resources.store import LocalLakeStore

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

    def sql(self, dt: str) -> str:
        template = resources.files("analytics_pipeline.sql").joinpath(f"{self.name}.sql")
        # The only value substituted is a partition key validated as a calendar date.
        return template.read_text().format(dt=validate_dt(dt))


ANALYTICS: tuple[AnalyticsSpec, ...] = (
    AnalyticsSpec("daily_product_counts", ("products",), "Products sold per product per day."),
    AnalyticsSpec("iot_daily_device_stats", ("iot_sensor_data",),
                  "Daily min/avg/max of each measure per IoT device."),
    AnalyticsSpec("daily_user_events", ("sign_up_events", "sign_in_events"),
                  "Daily sign-ups and sign-ins with unique users."),
    AnalyticsSpec("web_request_stats", ("web_requests",),
                  "Unique sessions, requests per session and products per request, "
                  "by client, reseller and user."),
)


def athena_typed(table: pa.Table) -> tuple[pa.Table, tuple[tuple[str, str], ...]]:
    """Cast engine output to the types Athena tables use, and name those types."""
    fields, columns = [], []
    for f in table.schema:
        kind = f.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            target, athena = pa.string(), "string"
        elif pa.types.is_timestamp(kind):
            target, athena = pa.timestamp("ms"), "timestamp"
        elif pa.types.is_decimal(kind) or pa.types.is_floating(kind):
            target, athena = pa.float64(), "double"
        elif pa.types.is_integer(kind) and kind.bit_width > 32 or kind in (pa.uint32(),):
            target, athena = pa.int64(), "bigint"
        else:
            match = next((a for t, a in _ATHENA_TYPES if t == kind), None)
            if match is None:
                raise TypeError(f"column {f.name}: no Athena type for {kind}")
            target, athena = kind, match
        fields.append(pa.field(f.name, target))
        columns.append((f.name, athena))
    return table.cast(pa.schema(fields)), tuple(columns)


def build_analytics_asset(
    spec: AnalyticsSpec, partitions_def: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=analytics_key(spec.name),
        deps=[table_key(t) for t in spec.tables],
        partitions_def=partitions_def,
        group_name="analytics",
        kinds={"sql", "duckdb"},
        automation_condition=rebuild_on_upstream_update(),
        description=f"{spec.description} SQL: analytics_pipeline/sql/{spec.name}.sql",
        metadata={"dagster/table_name": spec.name},
    )
    def analytics_asset(
        context: dg.AssetExecutionContext,
        store: LocalLakeStore,
        catalog: DuckDBCatalog,
        engine: DuckDBEngine,
    ) -> dg.MaterializeResult:
        dt = validate_dt(context.partition_key)
        sql = spec.sql(dt)
        result = engine.run_query(sql)
        data, columns = athena_typed(result.table)
        written = write_partition(store, spec.name, dt, data)
        published = publish_partition(
            store, catalog, TableDef(spec.name, columns, spec.description), dt, written.path
        )
        return dg.MaterializeResult(
            metadata={
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
                "location": published.location,
            }
        )

    return analytics_asset


def _preview(data: pa.Table) -> dg.MetadataValue:
    head = data.slice(0, PREVIEW_ROWS)
    schema = dg.TableSchema(columns=[dg.TableColumn(f.name, str(f.type)) for f in head.schema])
    records = [
        dg.TableRecord({k: _plain(v) for k, v in row.items()}) for row in head.to_pylist()
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def _plain(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
