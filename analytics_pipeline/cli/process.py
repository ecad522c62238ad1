"""`make process`: take everything in landing/ to the tables, in-process, as the daemon would.

It evaluates the same landing sensors and the same automation conditions as `dagster dev`,
against the same Dagster instance ($DAGSTER_HOME), and executes each run they request.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import dagster as dg

from analytics_pipeline.cli.dagster_home import command_instance
from analytics_pipeline.cli.quick_exit import exit_now
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.abandoned_runs import fail_abandoned_runs
from analytics_pipeline.defs.sensors import is_landing_sensor
from analytics_pipeline.defs.source_tables import extract_job_name, source_resource_key
from analytics_pipeline.defs.stale_check import StaleCheck, check_stale
from analytics_pipeline.defs.staleness import (
    IN_PROGRESS,
    Run,
    as_runs,
    range_days,
    run_target,
    stale_runs,
)
from analytics_pipeline.lake.leftover_versions import sweep_leftover_versions
from analytics_pipeline.memory_pool import use_system_memory_pool
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline.run_owner import owner_tags
from analytics_pipeline.settings import Settings

MAX_ROUNDS = 50
ALL_DAYS = 1_000_000
# Dagster's console logger prints every event at DEBUG; a headless run shows INFO and up.
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class ProcessSummary:
    ingest_runs: int = 0
    automation_runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    abandoned_runs: list[str] = field(default_factory=list)  # found dead, marked failed
    materialized: Counter[str] = field(default_factory=Counter)
    swept_versions: list[str] = field(default_factory=list)  # leftover Parquet versions removed

    def lines(self) -> list[str]:
        out = [
            f"ingest runs: {self.ingest_runs}, automation runs: {self.automation_runs}, "
            f"failed runs: {len(self.failed_runs)}"
        ]
        out += [f"  ABANDONED (process gone, marked failed) {run}" for run in self.abandoned_runs]
        out += [f"  {key}: {n} partitions" for key, n in sorted(self.materialized.items())]
        out += [f"  FAILED {run}" for run in self.failed_runs]
        if self.swept_versions:
            out.append(f"  swept {len(self.swept_versions)} leftover Parquet versions")
        return out


def process_landing(defs: dg.Definitions, instance: dg.DagsterInstance) -> ProcessSummary:
    """Run sensors, automation and the stale-day check until none asks for anything more."""
    summary = ProcessSummary(abandoned_runs=fail_abandoned_runs(instance))
    # A first evaluation sets the baseline, so only what changes from here on is rebuilt;
    # what was left behind before it (a day whose rebuild failed or was killed, an ingest
    # nobody automated) is what the stale-day check finds.
    cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
    # After the baseline, so the automation sees what the extract changed: a day of a fact
    # table, or a dimension's new content (which no stale-day check can see).
    _extract_sources(defs, instance, summary)
    # The sensors' cursors carry over between rounds, as the daemon's do between ticks: a file
    # whose run failed stays in landing, and must not be requested again every round.
    sensor_cursors: dict[str, str | None] = {}
    # Days whose run failed here are reported, not rebuilt again round after round.
    failed: dict[dg.AssetKey, set[str]] = {}
    graph = defs.resolve_asset_graph()
    # The first stale-day check reads every day; later ones what changed since the last.
    stale_check: StaleCheck | None = None
    for _ in range(MAX_ROUNDS):
        requested = _run_landing_sensors(defs, instance, summary, sensor_cursors)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        requests = _requested_runs(defs, result)
        if not requested and not requests:
            # The automation can miss a parent update (a rebuild in the same tick, or more
            # updated days than it reads one by one), so quiet is checked by order, too.
            stale_check = check_stale(graph, instance, stale_check)
            requests = stale_runs(graph, instance, failed, stale_check)
            if not requests:
                if not failed:  # with a failure, a day may be waiting for its version
                    summary.swept_versions = _sweep(defs, instance)
                return summary
        for day_range, asset_keys in requests:
            if not _execute_asset_request(defs, instance, day_range, asset_keys, summary):
                for key in asset_keys:
                    failed.setdefault(key, set()).update(range_days(day_range))
    raise RuntimeError(f"still finding work after {MAX_ROUNDS} rounds")


def _extract_sources(
    defs: dg.Definitions, instance: dg.DagsterInstance, summary: ProcessSummary
) -> None:
    """Every table of each database source, deletes included, before the landing work."""
    database = (defs.resources or {}).get(source_resource_key(MOVIE_RENTAL.name))
    if not isinstance(database, SourceDatabase) or not database.exists():
        return
    job = defs.resolve_job_def(extract_job_name(MOVIE_RENTAL.name))
    _record(job.execute_in_process(instance=instance, raise_on_error=False), summary)


def _sweep(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[str]:
    """Leftover versions, once nothing is stale; not while another run (the daemon's) may
    be writing a version it has yet to register."""
    if instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS), limit=1):
        return []
    resources = defs.resources or {}
    return sweep_leftover_versions(resources["store"], resources["catalog"])


def _run_landing_sensors(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    summary: ProcessSummary,
    cursors: dict[str, str | None],
) -> int:
    requested = 0
    names = [s.name for s in defs.sensors or [] if is_landing_sensor(s)]
    for name in names:
        sensor = defs.resolve_sensor_def(name)
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursors.get(name),
            definitions=defs,
            resources=dict(defs.resources or {}),
        )
        evaluation = sensor.evaluate_tick(context)
        cursors[name] = evaluation.cursor
        for request in evaluation.run_requests or []:
            job = defs.resolve_job_def(request.job_name or sensor.job.name)
            result = job.execute_in_process(
                run_config={**request.run_config, **QUIET_LOGGING},
                instance=instance,
                # The run key tag is how a landing sensor knows the run exists.
                tags={
                    **request.tags,
                    "dagster/run_key": request.run_key or "",
                    **owner_tags(),
                },
                raise_on_error=False,
            )
            summary.ingest_runs += 1
            _record(result, summary)
            requested += 1
    return requested


def _requested_runs(
    defs: dg.Definitions, result: dg.EvaluateAutomationConditionsResult
) -> list[Run]:
    """The runs the daemon would launch for what the automation requested."""
    by_days: dict[frozenset[str | None], list[dg.AssetKey]] = {}
    for spec in defs.resolve_all_asset_specs():
        requested = frozenset(result.get_requested_partitions(spec.key))
        if requested:
            by_days.setdefault(requested, []).append(spec.key)
    return as_runs(by_days)


def _execute_asset_request(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    day_range: tuple[str, str] | None,
    asset_keys: list[dg.AssetKey],
    summary: ProcessSummary,
) -> bool:
    job = defs.resolve_implicit_global_asset_job_def()
    partition_key, range_tags = run_target(day_range)
    result = job.execute_in_process(
        instance=instance,
        asset_selection=asset_keys,
        partition_key=partition_key,
        run_config=QUIET_LOGGING,
        tags={
            "dagster/from_automation_condition": "true",
            "triggered_by": "make process",
            **range_tags,
            **owner_tags(),
        },
        raise_on_error=False,
    )
    summary.automation_runs += 1
    _record(result, summary)
    return result.success


def _record(result: dg.ExecuteInProcessResult, summary: ProcessSummary) -> None:
    if not result.success:
        summary.failed_runs.append(f"{result.run_id} ({result.dagster_run.job_name})")
    for event in result.get_asset_materialization_events():
        if event.asset_key is not None:
            summary.materialized[event.asset_key.to_user_string()] += 1


def headless_definitions(settings: Settings) -> dg.Definitions:
    """Definitions for a run that takes everything in landing/ now.

    The settle time is for files arriving while the daemon watches; here every file is
    complete, and it would make a `make process` right after a copy do nothing. The ingest
    run builds every day it staged (unless ANALYTICS_INGEST_BUILD_DAYS is set): under
    the daemon, a big batch's days go to ranged runs so that a small drop is not kept
    waiting; here nobody waits, and the run still holds the rows it staged, so building
    them there saves reading them back and a second run planning every day.
    """
    build_days = ALL_DAYS if settings.ingest_build_days is None else settings.ingest_build_days
    return build_definitions(
        replace(settings, landing_settle_seconds=0, ingest_build_days=build_days)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    use_system_memory_pool()
    instance = command_instance()
    defs = headless_definitions(Settings.from_env())

    started = time.monotonic()
    with instance:
        summary = process_landing(defs, instance)
    for line in summary.lines():
        print(line)
    print(f"done in {time.monotonic() - started:.1f}s")
    return 1 if summary.failed_runs else 0


if __name__ == "__main__":
    exit_now(main())
