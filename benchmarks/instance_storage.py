"""Dagster's per-day-partition overhead on its PostgreSQL storage against SQLite, same run.

The same no-op shape as the Dagster floor (benchmarks/dagster_floor.py): ASSETS chained daily
assets, one ranged run over --days days, one metadata entry per day-asset; executed on a
SQLite instance (`make dev`'s $DAGSTER_HOME) and on the production dagster.yaml over a
PostgreSQL 15 started here (fsync on, as a deployed server runs). Each instance runs a 1-day
warm-up first (schema creation and first connections are not per-partition costs); the
storages alternate over --repeat and the medians are printed with their ratio.

    python -m benchmarks.instance_storage --days 100 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli.dagster_home import ensure_dagster_home
from analytics_pipeline.cli.instance_config import write_instance_config
from benchmarks.dagster_floor import RANGE_END, RANGE_START, noop_asset
from local_servers.db_servers import DatabaseServer, running_postgres

ASSETS = 3
FIRST_DAY = date(2024, 1, 1)


def ranged_run(instance: dg.DagsterInstance, days: int) -> float:
    """Seconds for one ranged run of the chain over the first `days` days."""
    partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat())
    chain = [noop_asset(f"floor/a{i}", partitions, 1) for i in range(ASSETS)]
    job = dg.Definitions(assets=chain).resolve_implicit_global_asset_job_def()
    last = (FIRST_DAY + timedelta(days=days - 1)).isoformat()
    tags = {RANGE_START: FIRST_DAY.isoformat(), RANGE_END: last}
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    started = time.perf_counter()
    result = job.execute_in_process(run_config=quiet, instance=instance, tags=tags)
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"the no-op ranged run over {days} days failed")
    return seconds


@contextmanager
def sqlite_instance() -> Iterator[dg.DagsterInstance]:
    with tempfile.TemporaryDirectory() as home:
        ensure_dagster_home(Path(home))
        with dg.DagsterInstance.from_config(home) as instance:
            yield instance


@contextmanager
def postgres_instance(server: DatabaseServer) -> Iterator[dg.DagsterInstance]:
    env = server.dagster_env()
    os.environ.update(env)  # the rendered yaml names them as env: references
    with tempfile.TemporaryDirectory() as home:
        write_instance_config(Path(home) / "dagster.yaml", env)
        with dg.DagsterInstance.from_config(home) as instance:
            yield instance


def measure(days: int, repeat: int) -> dict[str, float]:
    """Median ms per day-partition of each storage."""
    times: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    with running_postgres(fsync=True) as server:
        for _ in range(repeat):
            for storage in times:
                with (
                    sqlite_instance() if storage == "sqlite" else postgres_instance(server)
                ) as instance:
                    ranged_run(instance, 1)
                    times[storage].append(ranged_run(instance, days) * 1000 / days)
    return {storage: statistics.median(values) for storage, values in times.items()}


def main() -> None:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)  # backfill_policy, known
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ms = measure(args.days, args.repeat)
    print(f"Dagster instance storage: one ranged run of {ASSETS} chained no-op daily assets")
    print("| storage | days | ms per day-partition (median) | per day-asset | vs SQLite |")
    print("|---|---|---|---|---|")
    for storage, value in ms.items():
        ratio = value / ms["sqlite"]
        print(
            f"| {storage} | {args.days} | {value:.1f} ms | {value / ASSETS:.1f} ms | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    main()
