"""A dataset's ingest: its landing, staged and quarantine assets, the job that stages landing
files, and the checks that every landing record is placed exactly once."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.defs.ingest_build import AssetEvent, build_staged_days
from analytics_pipeline.defs.keys import (
    ingest_job_name,
    landing_key,
    quarantine_key,
    stage_op_name,
    staged_key,
)
from analytics_pipeline.lake.reconciliation import (
    Reconciliation,
    reconcile_dataset,
    reconcile_files,
)
from analytics_pipeline.lake.staging import StageReport, stage_landing_files
from analytics_pipeline.resources.catalog import Catalog
from analytics_pipeline.resources.day_builder import DayBuilder
from analytics_pipeline.resources.engine import QueryEngine
from analytics_pipeline.resources.store import LakeStore
from analytics_pipeline.settings import DEFAULT_INGEST_BUILD_DAYS, Settings


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


def ingest_asset_specs(
    spec: DatasetSpec, partitions_def: dg.PartitionsDefinition
) -> list[dg.AssetSpec]:
    """Specs, not assets: producers write landing, the ingest job's op reports staged and
    quarantine as it writes them."""
    return [
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


def ingest_checks(spec: DatasetSpec, settings: Settings) -> list[dg.AssetChecksDefinition]:
    return [_landing_reconciles_check(spec, settings), _no_unknown_fields_check(spec)]


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


def ingest_job(spec: DatasetSpec, settings: Settings) -> dg.JobDefinition:
    @dg.op(name=stage_op_name(spec.name), out={}, tags={"dataset": spec.name})
    def stage_op(
        context: dg.OpExecutionContext,
        config: IngestConfig,
        store: LakeStore,
        catalog: Catalog,
        engine: QueryEngine,
        day_builder: DayBuilder,
    ) -> Iterator[dg.AssetMaterialization]:
        now = datetime.now(UTC).replace(tzinfo=None)

        def build_in_this_run(report: StageReport) -> list[AssetEvent]:
            days = sorted(report.staged_rows_by_dt)
            limit = settings.ingest_build_days
            if not days or len(days) > (DEFAULT_INGEST_BUILD_DAYS if limit is None else limit):
                return []
            try:
                return build_staged_days(
                    context, spec, days, store, catalog, engine, day_builder, report.held
                )
            except Exception as error:  # the staged days stand; the automation builds them
                context.log.warning(f"{spec.name}: building {days} in the ingest run: {error}")
                return []

        def record_staged_days(report: StageReport) -> None:
            # Before any landing file is archived: a run killed while archiving has already
            # said which days it staged, so they are built; a file left in landing is staged
            # again, once (staging is idempotent). The days this run built are recorded after
            # their staged days, so the automation sees them handled.
            built = build_in_this_run(report)
            report.held.clear()  # what is built is on disk; the rest of the run needs no copy
            for event in [*_staged_materializations(spec, report), *built]:
                context.log_event(event)  # type: ignore[arg-type]

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
            context.log.warning(
                f"{len(gone)} landing files were taken by another run, or replaced since this "
                "run read them (a replaced file stays in landing for the next run)"
            )
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
        description=f"Stage landing/{spec.name}/ files into staged/ and quarantine/, build the "
        "Parquet and table of the staged days when they are few, then archive.",
        tags={"dataset": spec.name},
    )
    def ingest_job() -> None:
        stage_op()

    return ingest_job
