"""Athena builds the Parquet days of the datasets it is given (the scale path); the rest are
built in this process as everywhere else."""

from collections.abc import Mapping

import dagster as dg
import pyarrow as pa

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.defs.keys import parquet_key
from analytics_pipeline.defs.ranges import DayResult
from analytics_pipeline.lake.athena_compaction import AthenaCompaction, compact_days_in_athena
from analytics_pipeline.lake.athena_compaction_sql import day_chunks, staged_distinct_sql
from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.day_builder import BuiltDay, DayBuilder, ParquetBuild, no_parquet
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore


class AthenaDayBuilder(DayBuilder):
    """Builds a range of days by Athena INSERTs from the staged table, for `datasets`
    ("*": all). Athena registers the days itself: their files have no .parquet name."""

    datasets: list[str]
    partitions_start: str  # the staged table's first day, YYYY-MM-DD

    def builds_in_athena(self, dataset: str) -> bool:
        return "*" in self.datasets or dataset in self.datasets

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
        if not self.builds_in_athena(spec.name):
            return super().build_parquet(store, catalog, engine, spec, table, days, held)
        glue = _glue(catalog)
        built, expected = self._build_range(store, glue, engine, spec, table, days[0], days[-1])
        columns = glue.table_columns(table.name)
        return ParquetBuild(
            lambda dt: _athena_parquet_day(built, expected, columns, glue, spec, table, dt),
            run_metadata=built.metadata(),
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
        """The parquet step registered its days already; the rows it recorded are what the
        catalog must serve."""
        if not self.builds_in_athena(spec.name):
            return super().publish_days(instance, store, catalog, spec, table, days)
        built = {}
        for dt in days:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=parquet_key(table.name), asset_partitions=[dt]),
                limit=1,
            ).records
            event = records[0].asset_materialization if records else None
            if event is None:
                raise no_parquet(table, dt)
            rows = int(event.metadata["dagster/partition_row_count"].value)  # type: ignore[arg-type]
            built[dt] = BuiltDay(
                rows, {"location": catalog.partition_location(table.name, dt) or ""}
            )
        return built

    def _build_range(
        self,
        store: LakeStore,
        glue: GlueCatalog,
        engine: QueryEngine,
        spec: DatasetSpec,
        table: TableSpec,
        first: str,
        last: str,
    ) -> tuple[AthenaCompaction, dict[str, int]]:
        """The run's days built by Athena, and the distinct staged records each must hold."""
        built = compact_days_in_athena(
            engine, store, glue, spec, table, first, last, partitions_start=self.partitions_start
        )
        expected: dict[str, int] = {}
        for chunk in day_chunks(first, last):
            counted = engine.run_query(
                staged_distinct_sql(
                    spec, table, database=glue.database, first=chunk[0], last=chunk[-1]
                )
            )
            for row in counted.table.to_pylist():
                expected[str(row["dt"])] = int(row["rows"])
        return built, expected


def _glue(catalog: Catalog) -> GlueCatalog:
    # Athena reads and writes the tables Glue declares; no other catalog can stand in.
    if not isinstance(catalog, GlueCatalog):
        raise dg.Failure("ANALYTICS_ATHENA_COMPACTION needs the aws deployment's Glue catalog")
    return catalog


def _athena_parquet_day(
    built: AthenaCompaction,
    expected: dict[str, int],
    glue_columns: list[tuple[str, str]] | None,
    catalog: Catalog,
    spec: DatasetSpec,
    table: TableSpec,
    dt: str,
) -> DayResult:
    spec_columns = list(table_def(spec, table).columns)
    rows = built.rows_by_day.get(dt, 0)
    location = built.locations.get(dt) or catalog.partition_location(table.name, dt) or ""
    return DayResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/partition_row_count": rows,
            "location": location,
            "built_by": "athena",
            "unchanged": dt not in built.locations,
        },
        checks=[
            dg.AssetCheckResult(
                check_name="rows_reconcile_with_staged",
                passed=rows == expected.get(dt, 0),
                metadata={"parquet_rows": rows, "staged_distinct_records": expected.get(dt, 0)},
            ),
            dg.AssetCheckResult(
                check_name="schema_matches_spec",
                # Athena writes the files with the Glue table's columns.
                passed=glue_columns == spec_columns,
                metadata={
                    "glue_columns": dg.MetadataValue.json([list(c) for c in glue_columns or []]),
                    "spec": dg.MetadataValue.json([list(c) for c in spec_columns]),
                },
            ),
        ],
    )
