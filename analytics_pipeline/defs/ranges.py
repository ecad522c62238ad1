"""One run, many days: the daily assets build a contiguous range of partitions per run.

A backfill of a year, or late data touching many old days, becomes a few runs instead of
hundreds (each run costs a process, an instance round trip and event writes). Each day's
materialization still carries that day's own figures (`add_asset_metadata` per partition),
so the partitions view reads as it would for one-day runs. A check result covers the run:
it passes only if it passed on every day, and names the days it failed on.
"""

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from analytics_pipeline.lake.versioned_days import map_days
from analytics_pipeline.resources.lake_lock import table_locks
from analytics_pipeline.resources.store import LakeStore

# Athena writes at most 100 partitions per query; the scale path maps one run to queries.
DAYS_PER_RUN = 100


def range_policy() -> dg.BackfillPolicy:
    """Backfills and automation group contiguous days into runs of at most DAYS_PER_RUN."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)


def lake_pool(table: str) -> str:
    """The concurrency pool of a table's writes: scheduling only. With the instance's default
    pool limit of 1 (see dagster_home.py) a second run of the table queues in Dagster instead
    of waiting on the lock; the safety is the table's lake lock (`writing_tables`), which the
    write takes whatever the instance says."""
    return f"lake_write_{table}"


def writing_tables(
    context: dg.AssetExecutionContext, store: LakeStore, *tables: str
) -> AbstractContextManager[None]:
    """The step's hold on the lake locks of the tables it writes, named for its run."""
    owner = f"run {context.run.run_id} {context.asset_key.to_user_string()}"
    return table_locks(store, list(tables), owner)


# Per-day figures whose sum over the run means something, and the name of that sum.
SUMMED = {
    "dagster/partition_row_count": "run_rows",
    "athena_bytes_scanned": "run_athena_bytes_scanned",
    "athena_cost_usd": "run_athena_cost_usd",
}


@dataclass
class DayResult:
    metadata: dict[str, Any]
    checks: list[dg.AssetCheckResult] = field(default_factory=list)


# Days of a range built at once (two cores' worth; each holds its day in memory): where the
# build waits on Arrow, DuckDB or the network, not on Python.
BUILD_WORKERS = 2


def build_days(
    context: dg.AssetExecutionContext,
    build: Callable[[str], DayResult],
    run_metadata: Mapping[str, Any] | None = None,
    workers: int = 1,
) -> dg.MaterializeResult:
    """Build each day of the run, `workers` days at a time (a build that reads and writes
    Parquet spends its time in Arrow, which releases the GIL); each day's metadata goes to its
    own partition. `run_metadata` (work done once for the whole range) goes to every day."""
    days = sorted(context.partition_keys)
    results = map_days(build, days, workers)
    for dt in days:
        context.add_asset_metadata(results[dt].metadata, partition_key=dt)
    if len(days) == 1:
        return dg.MaterializeResult(
            metadata=dict(run_metadata or {}), check_results=run_check_results(results, days)
        )
    metadata: dict[str, Any] = {
        **(run_metadata or {}),
        "run_days": len(days),
        "run_range": f"{days[0]}..{days[-1]}",
    }
    for day_key, total_key in SUMMED.items():
        values = [results[dt].metadata.get(day_key) for dt in days]
        if all(isinstance(v, int | float) for v in values):
            metadata[total_key] = sum(v for v in values if isinstance(v, int | float))
    return dg.MaterializeResult(metadata=metadata, check_results=run_check_results(results, days))


def run_check_results(
    results: Mapping[str, DayResult], days: list[str]
) -> list[dg.AssetCheckResult]:
    """The run's check results: a single day's own, or each check folded over the days."""
    if len(days) == 1:
        return results[days[0]].checks
    return _fold_checks(results, days)


def _fold_checks(results: Mapping[str, DayResult], days: list[str]) -> list[dg.AssetCheckResult]:
    names = [c.check_name for c in results[days[0]].checks]
    folded = []
    for name in names:
        per_day = {dt: next(c for c in results[dt].checks if c.check_name == name) for dt in days}
        failed = [dt for dt, c in per_day.items() if not c.passed]
        first = per_day[days[0]]
        folded.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key=first.asset_key,
                passed=not failed,
                severity=first.severity,
                metadata={
                    "days_checked": len(days),
                    "failed_days": dg.MetadataValue.json(failed),
                    "by_day": dg.MetadataValue.json(
                        {dt: _scalar_entries(dict(c.metadata)) for dt, c in per_day.items()}
                    ),
                },
            )
        )
    return folded


def _scalar_entries(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The plain values of a day's metadata (numbers, strings, flags), for a JSON table."""
    out = {}
    for key, value in metadata.items():
        raw = getattr(value, "value", value)
        if key.startswith("dagster/") or not isinstance(raw, str | int | float | bool):
            continue
        out[key] = raw
    return out
