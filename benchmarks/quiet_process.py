"""A quiet `make process` (nothing landed) over years of history, and its full stale check.

`make process` starts each invocation with a stale-day check of every day (the stale-days
sensor keeps its place in its cursor; a command has none it could trust against a recreated
instance). This times, on copies of the histories `benchmarks.automation_tick` seeds (one
dataset's chain materialized on every day), `process_landing` on an empty lake and, apart,
the check of every day and the check after it (from where it stopped), with Python calls.

    python -m benchmarks.quiet_process --years 1 5 --history-dir /tmp/tick-history
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli.process import headless_definitions, process_landing
from analytics_pipeline.defs.stale_check import check_stale
from analytics_pipeline.settings import Settings
from benchmarks.automation_tick import calls, chain_keys, seeded_history, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, nargs="+", default=[1, 5])
    parser.add_argument("--dataset", default="products")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--history-dir", type=Path, required=True)
    args = parser.parse_args()
    print(
        "| history | quiet `make process` (median) | full stale check | calls | next check "
        "| calls |"
    )
    print("|---|---|---|---|---|---|")
    for years in args.years:
        days = round(365 * years)
        with tempfile.TemporaryDirectory(prefix="quiet-process-") as tmp:
            lake = Path(tmp) / "lake"
            os.environ.update(ANALYTICS_LAKE_DIR=str(lake), ANALYTICS_PARTITIONS_START="2016-01-01")
            defs = headless_definitions(Settings.from_env())
            history = seeded_history(
                args.history_dir, chain_keys(defs, args.dataset), args.dataset, days
            )
            graph = defs.resolve_asset_graph()
            walls, full, full_calls, nxt, next_calls = [], [], 0, [], 0
            for _ in range(args.repeat):
                home = Path(tmp) / "home"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(history, home)
                with dg.DagsterInstance.from_config(str(home)) as instance:
                    summary, ms = timed(process_landing, defs, instance)
                    assert not summary.failed_runs, summary.lines()
                    walls.append(ms)
                    check, ms = timed(check_stale, graph, instance, None)
                    full.append(ms)
                    full_calls = calls(check_stale, graph, instance, None)
                    nxt.append(timed(check_stale, graph, instance, check)[1])
                    next_calls = calls(check_stale, graph, instance, check)
            print(
                f"| {years:g} years ({days:,} days) | {statistics.median(walls):,.0f} ms "
                f"| {statistics.median(full):,.0f} ms | {full_calls:,} "
                f"| {statistics.median(nxt):,.0f} ms | {next_calls:,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
