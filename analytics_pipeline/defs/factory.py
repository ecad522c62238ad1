"""One spec in, one dataset's assets out: landing -> staged -> parquet -> table, per table."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.defs.keys import (
    catalog_kind,
    ingest_job_name,
    landing_key,
    parquet_key,
    quarantine_key,
    rebuild_on_upstream_update,
    stage_op_name,
    staged_key,
    table_key,
)
from analytics_pipeline.defs.ranges import (
    BUILD_WORKERS,
    DayResult,
    build_days,
    lake_pool,
    range_policy,
    writing_tables,
)
from analytics_pipeline.lake.athena_compaction import AthenaCompaction, compact_days_in_athena
from analytics_pipeline.lake.athena_compaction_sql import day_chunks, staged_distinct_sql
from analytics_pipeline.lake.compaction import compact_day, staged_day_paths
from analytics_pipeline.lake.reconciliation import (
    Reconciliation,
    reconcile_dataset,
    reconcile_files,
)
from analytics_pipeline.lake.staging import StageReport, stage_landing_files
from analytics_pipeline.lake.versioned_days import (
    duplicated_keys_in_footer,
    publish_partitions,
    validate_dt,
    versions,
    write_partition,
)
from analytics_pipeline.resources.aws.glue_catalog import GlueCatalog
from analytics_pipeline.resources.catalog import Catalog, TableDef
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore
from analytics_pipeline.settings import Settings


@dataclass(frozen=True)
class DatasetDefinitions:
    assets: list[dg.AssetsDefinition | dg.AssetSpec]
    ingest_job: dg.JobDefinition
    checks: list[dg.AssetChecksDefinition]


class IngestConfig(dg.Config):
    """The landing keys one ingest run stages: in `keys_json` (one JSON array, what the
    sensors send) and/or `keys` (a YAML list, handy in the launchpad). Dagster validates a
    list item by item, about 70 us a key: seconds for a batch of 20,000 one-object files."""

    keys: list[str] = []
    keys_json: str = ""

    def landing_keys(self) -> list[str]:
        keys = list(self.keys)
        if self.keys_json:
            decoded = json.loads(self.keys_json)
            if not isinstance(decoded, list) or not all(isinstance(k, str) for k in decoded):
                raise dg.Failure("keys_json must be a JSON array of landing keys (strings)")
            keys += decoded
        return keys


def build_dataset_definitions(
    spec: DatasetSpec, partitions_def: dg.PartitionsDefinition, settings: Settings
) -> DatasetDefinitions:
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [
        dg.AssetSpec(
            landing_key(spec.name),
            description=f"Raw {spec.layout.upper()} files that producers drop in "
            f"landing/{spec.name}/. {spec.description}",
            group_name=spec.name,
            kinds={"json"},
        ),
        dg.AssetSpec(
            staged_key(spec.name),
            deps=[landing_key(spec.name)],
            description="Validated, typed records by event date (staged/<dataset>/dt=.../), "
            f"written by the {ingest_job_name(spec.name)} job that the landing sensor starts.",
            partitions_def=partitions_def,
            group_name=spec.name,
            kinds={"parquet"},
        ),
        dg.AssetSpec(
            quarantine_key(spec.name),
            deps=[landing_key(spec.name)],
            description=(
                "Every quarantined record (rejected or unrouted) or file, one JSON line each, "
                "with its reason."
            ),
            group_name=spec.name,
            kinds={"json"},
        ),
    ]
    for table in spec.tables:
        assets.append(_parquet_asset(spec, table, partitions_def, settings))
        assets.append(_table_asset(spec, table, partitions_def, settings))
    return DatasetDefinitions(
        assets,
        _ingest_job(spec, settings),
        [_landing_reconciles_check(spec, settings), _no_unknown_fields_check(spec)],
    )


LANDING_RECONCILES = "landing_reconciles"
NO_UNKNOWN_FIELDS = "no_unknown_fields"
# How many recent ingest batches an on-demand execution of no_unknown_fields looks at.
DRIFT_LOOKBACK_MATERIALIZATIONS = 500


def _reconciliation_metadata(result: Reconciliation, scope: str) -> dict:
    return {
        "scope": scope,
        "files": result.files,
        "landing_records": result.landing_records,
        "staged_records": result.staged_records,
        "quarantined_records": result.quarantined_records,
        "mismatches": dg.MetadataValue.json(result.mismatches),
    }


def _landing_reconciles_check(spec: DatasetSpec, settings: Settings) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=staged_key(spec.name),
        name=LANDING_RECONCILES,
        description="Every record of every archived landing file is in staged/ or quarantine/, "
        "exactly once. Each ingest run reports it for its batch; executing the check "
        "re-counts the whole dataset.",
    )
    def landing_reconciles(store: LakeStore) -> dg.AssetCheckResult:
        result = reconcile_dataset(
            store,
            spec,
            start=settings.partitions_start,
            now=datetime.now(UTC).replace(tzinfo=None),
            max_file_bytes=settings.max_landing_file_bytes,
        )
        return dg.AssetCheckResult(
            passed=result.passed, metadata=_reconciliation_metadata(result, "whole dataset")
        )

    return landing_reconciles


def _drift_evaluation(spec: DatasetSpec, unknown: dict[str, int], scope: str) -> dict:
    return {
        "passed": not unknown,
        "severity": dg.AssetCheckSeverity.WARN,
        "metadata": {
            "scope": scope,
            "unknown_fields": dg.MetadataValue.json(dict(sorted(unknown.items()))),
            "spec_fields": dg.MetadataValue.json([f.name for f in spec.fields]),
        },
    }


def _no_unknown_fields_check(spec: DatasetSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=staged_key(spec.name),
        name=NO_UNKNOWN_FIELDS,
        description="Schema drift: records carrying fields the dataset spec does not know. "
        "They are staged without those fields (the table is unaffected); a WARN says the spec "
        "may need the new field. Each ingest run reports its batch; executing the check sums "
        "the recent batches' reports.",
    )
    def no_unknown_fields(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        records = context.instance.fetch_materializations(
            staged_key(spec.name), limit=DRIFT_LOOKBACK_MATERIALIZATIONS
        ).records
        batches: dict[str, dict[str, int]] = {}
        for record in records:
            event = record.asset_materialization
            metadata = event.metadata if event else {}
            if "batch_id" in metadata and "unknown_fields" in metadata:
                batch = str(metadata["batch_id"].value)
                batches[batch] = dict(metadata["unknown_fields"].value)  # type: ignore[arg-type]
        unknown: dict[str, int] = {}
        for fields in batches.values():
            for name, n in fields.items():
                unknown[name] = unknown.get(name, 0) + int(n)
        scope = f"{len(batches)} recent batches with unknown fields"
        return dg.AssetCheckResult(**_drift_evaluation(spec, unknown, scope))

    return no_unknown_fields


def _staged_materializations(
    spec: DatasetSpec, report: StageReport
) -> list[dg.AssetMaterialization]:
    """One per staged day of the batch, with what the batch added to it."""
    drift_metadata = (
        {"unknown_fields": dg.MetadataValue.json(report.unknown_fields)}
        if report.unknown_fields
        else {}
    )
    files = sum(1 for f in report.files if not f.gone)
    return [
        dg.AssetMaterialization(
            asset_key=staged_key(spec.name),
            partition=dt,
            metadata={
                "rows_added": rows,
                "batch_id": report.batch_id,
                "landing_files_in_batch": files,
                **drift_metadata,
            },
        )
        for dt, rows in sorted(report.staged_rows_by_dt.items())
    ]


def _ingest_job(spec: DatasetSpec, settings: Settings) -> dg.JobDefinition:
    @dg.op(name=stage_op_name(spec.name), out={}, tags={"dataset": spec.name})
    def stage_op(
        context: dg.OpExecutionContext, config: IngestConfig, store: LakeStore
    ) -> Iterator[dg.AssetMaterialization]:
        now = datetime.now(UTC).replace(tzinfo=None)

        def record_staged_days(report: StageReport) -> None:
            # Before any landing file is archived: a run killed while archiving has already
            # said which days it staged, so they are built; a file left in landing is staged
            # again, once (staging is idempotent).
            for materialization in _staged_materializations(spec, report):
                context.log_event(materialization)

        report = stage_landing_files(
            store,
            spec,
            config.landing_keys(),
            start=settings.partitions_start,
            now=now,
            max_file_bytes=settings.max_landing_file_bytes,
            before_archive=record_staged_days,
        )
        for outcome in report.files:
            placed = outcome.staged + outcome.rejected + outcome.unrouted
            if not outcome.gone and outcome.records != placed:
                raise dg.Failure(f"landing/{spec.name}/{outcome.key}: record counts do not add up")
        batch = reconcile_files(
            store,
            spec,
            {(f.key, f.version): f.records for f in report.files if f.version is not None},
            report.staged_paths,
            report.quarantine_paths,
        )
        evaluation = dg.AssetCheckEvaluation(
            asset_key=staged_key(spec.name),
            check_name=LANDING_RECONCILES,
            passed=batch.passed,
            metadata=_reconciliation_metadata(batch, f"batch {report.batch_id}"),
        )
        # log_event records check evaluations too; its annotation predates them.
        context.log_event(evaluation)  # type: ignore[arg-type]
        drift = dg.AssetCheckEvaluation(
            asset_key=staged_key(spec.name),
            check_name=NO_UNKNOWN_FIELDS,
            **_drift_evaluation(spec, report.unknown_fields, f"batch {report.batch_id}"),
        )
        context.log_event(drift)  # type: ignore[arg-type]
        if report.unknown_fields:
            context.log.warning(
                f"{spec.name}: records carry fields the spec does not know (staged without "
                f"them): {dict(sorted(report.unknown_fields.items()))}"
            )
        gone = [f.key for f in report.files if f.gone]
        if gone:
            context.log.warning(f"{len(gone)} landing files were already taken by another run")
        if report.rejected or report.unrouted:
            # rejected_records: malformed or invalid records (and whole files);
            # unrouted_records: valid records of a type no table takes. Both are quarantined.
            yield dg.AssetMaterialization(
                asset_key=quarantine_key(spec.name),
                metadata={
                    "rejected_records": report.rejected,
                    "unrouted_records": report.unrouted,
                    "files_with_rejects": len(report.quarantine_paths),
                    "reasons": dg.MetadataValue.json(dict(report.reasons)),
                    "quarantine_files": dg.MetadataValue.json(report.quarantine_paths[:50]),
                },
            )
        context.log.info(
            f"{spec.name}: {len(report.files) - len(gone)} files, {report.records} records: "
            f"{report.staged} staged into {len(report.staged_rows_by_dt)} days, "
            f"{report.rejected} rejected and {report.unrouted} unrouted into quarantine"
        )

    @dg.job(
        name=ingest_job_name(spec.name),
        description=f"Stage landing/{spec.name}/ files into staged/ and quarantine/, then archive.",
        tags={"dataset": spec.name},
    )
    def ingest_job() -> None:
        stage_op()

    return ingest_job


def _column_schema(spec: DatasetSpec, table: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(f.name, f.athena_type) for f in spec.table_fields(table)]
        + [dg.TableColumn("dt", "string", description="partition: event date, YYYY-MM-DD")]
    )


def table_def(spec: DatasetSpec, table: TableSpec) -> TableDef:
    return TableDef(
        table.name,
        tuple((f.name, f.athena_type) for f in spec.table_fields(table)),
        table.description,
    )


def _parquet_asset(
    spec: DatasetSpec, table: TableSpec, partitions_def: dg.PartitionsDefinition, settings: Settings
) -> dg.AssetsDefinition:
    key = parquet_key(table.name)
    in_athena = settings.builds_in_athena(spec.name)

    def in_process(context: dg.AssetExecutionContext, store: LakeStore):
        with writing_tables(context, store, table.name):
            return build_days(
                context, lambda dt: _parquet_day(store, spec, table, dt), workers=BUILD_WORKERS
            )

    def by_athena(
        context: dg.AssetExecutionContext, store: LakeStore, catalog: Catalog, engine: QueryEngine
    ):
        with writing_tables(context, store, table.name):
            built, expected = _build_range_in_athena(
                context, store, catalog, engine, spec, table, settings.partitions_start.isoformat()
            )
        columns = catalog.table_columns(table.name) if isinstance(catalog, GlueCatalog) else None
        return build_days(
            context,
            lambda dt: _athena_parquet_day(built, expected, columns, catalog, spec, table, dt),
            run_metadata=built.metadata(),
        )

    decorate = dg.asset(
        key=key,
        deps=[staged_key(spec.name)],
        partitions_def=partitions_def,
        group_name=spec.name,
        kinds={"parquet", "athena"} if in_athena else {"parquet"},
        automation_condition=rebuild_on_upstream_update(),
        backfill_policy=range_policy(),
        pool=lake_pool(table.name),
        description=f"Each day of {table.name} as snappy Parquet under a fresh version "
        f"prefix (parquet/{table.name}/dt=.../<version>/), rebuilt from every staged file of "
        "the day" + (" by Athena INSERTs (ANALYTICS_ATHENA_COMPACTION)." if in_athena else "."),
        metadata={"dagster/column_schema": _column_schema(spec, table)},
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
    return decorate(by_athena if in_athena else in_process)


# How many times a day is rebuilt at once when staged files keep arriving while it is built.
REBUILDS_WHILE_STAGING = 3


def _parquet_day(store: LakeStore, spec: DatasetSpec, table: TableSpec, dt: str) -> DayResult:
    dt = validate_dt(dt)
    # A staged file written while the day is built would count as built (its update is
    # older than this materialization): build again until the day's staged files hold still.
    for _ in range(REBUILDS_WHILE_STAGING):
        day = compact_day(store, spec, table, dt)
        written = write_partition(store, table.name, dt, day.table, table.key)
        if tuple(staged_day_paths(store, spec, dt)) == day.staged_paths:
            break
    # What the stored file says of itself (its footer), not what was meant to be written.
    stored = store.parquet_footer(written.path)
    stored_schema = stored.schema.to_arrow_schema().remove_metadata()
    expected_schema = spec.table_arrow_schema(table)
    schema_ok = stored_schema.equals(expected_schema)
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
                passed=schema_ok,
                metadata={
                    "written": str(stored_schema),
                    "spec": str(expected_schema),
                },
            ),
        ],
    )


def _build_range_in_athena(
    context: dg.AssetExecutionContext,
    store: LakeStore,
    catalog: Catalog,
    engine: QueryEngine,
    spec: DatasetSpec,
    table: TableSpec,
    partitions_start: str,
) -> tuple[AthenaCompaction, dict[str, int]]:
    """The run's days built by Athena, and the distinct staged records each must hold."""
    if not isinstance(catalog, GlueCatalog):
        raise dg.Failure("ANALYTICS_ATHENA_COMPACTION needs the aws deployment's Glue catalog")
    days = context.partition_key_range
    first, last = validate_dt(days.start), validate_dt(days.end)
    built = compact_days_in_athena(
        engine, store, catalog, spec, table, first, last, partitions_start=partitions_start
    )
    expected: dict[str, int] = {}
    for chunk in day_chunks(first, last):
        counted = engine.run_query(
            staged_distinct_sql(
                spec, table, database=catalog.database, first=chunk[0], last=chunk[-1]
            )
        )
        for row in counted.table.to_pylist():
            expected[str(row["dt"])] = int(row["rows"])
    return built, expected


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


def _table_asset(
    spec: DatasetSpec, table: TableSpec, partitions_def: dg.PartitionsDefinition, settings: Settings
) -> dg.AssetsDefinition:
    key = table_key(table.name)
    in_athena = settings.builds_in_athena(spec.name)
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
        kinds={catalog_kind(settings.env)},
        automation_condition=rebuild_on_upstream_update(),
        backfill_policy=range_policy(),
        pool=lake_pool(table.name),
        description=f"The {table.name} table in the catalog, each day pointed at its newest "
        "Parquet version; older versions are deleted after the switch.",
        metadata={
            "dagster/column_schema": _column_schema(spec, table),
            "dagster/table_name": table.name,
        },
        check_specs=checks,
    )
    def table_asset(
        context: dg.AssetExecutionContext,
        store: LakeStore,
        catalog: Catalog,
        engine: QueryEngine,
    ):
        days = sorted(validate_dt(dt) for dt in context.partition_keys)
        if in_athena:
            built = {dt: _athena_built_day(context.instance, catalog, table, dt) for dt in days}
        else:
            with writing_tables(context, store, table.name):
                built = _publish_days(store, catalog, spec, table, days)
        served = _served_days(engine, table, built)
        return build_days(context, served.__getitem__)

    return table_asset


@dataclass(frozen=True)
class _BuiltDay:
    rows: int  # what the day's Parquet holds
    metadata: dict
    duplicated_keys: int | None = None  # as its footer records them; None: not recorded


def _publish_days(
    store: LakeStore, catalog: Catalog, spec: DatasetSpec, table: TableSpec, days: list[str]
) -> dict[str, _BuiltDay]:
    """Point the run's days at their newest Parquet versions, in one catalog change."""
    newest: dict[str, str] = {}
    for dt in days:
        existing = versions(store, table.name, dt)
        if not existing:
            raise _no_parquet(table, dt)
        newest[dt] = existing[-1]
    footers = {dt: store.parquet_footer(path) for dt, path in newest.items()}
    published = publish_partitions(store, catalog, table_def(spec, table), newest)
    return {
        dt: _BuiltDay(
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


def _no_parquet(table: TableSpec, dt: str) -> dg.Failure:
    return dg.Failure(
        f"{table.name} has no Parquet for {dt}: materialize "
        f"{parquet_key(table.name).to_user_string()} for {dt} first"
    )


def _served_days(
    engine: QueryEngine, table: TableSpec, built: dict[str, _BuiltDay]
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


def _athena_built_day(
    instance: dg.DagsterInstance, catalog: Catalog, table: TableSpec, dt: str
) -> _BuiltDay:
    """Athena's days are registered by the parquet step itself (their files have no .parquet
    name to find); here the rows that step recorded are what the catalog must serve."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=parquet_key(table.name), asset_partitions=[dt]), limit=1
    ).records
    event = records[0].asset_materialization if records else None
    if event is None:
        raise _no_parquet(table, dt)
    built_rows = int(event.metadata["dagster/partition_row_count"].value)  # type: ignore[arg-type]
    return _BuiltDay(built_rows, {"location": catalog.partition_location(table.name, dt) or ""})


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
