"""Automation tick cost vs history: ms per evaluation of the project's automation conditions
over the real definitions, with 1, 5, 10 years of materialized day partitions in the instance.

The instance is seeded cheaply (report_runless_asset_event per day and asset of one dataset's
chain), not by running the pipeline. Each tick passes the previous tick's cursor, as the
daemon does; the first tick (no cursor) is reported apart.

    python -m benchmarks.automation_tick --years 1 5 10 --dataset products
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli.dagster_home import ensure_dagster_home
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import staged_key
from analytics_pipeline.settings import Settings

LAST_DAY = date(2026, 11, 30)


def seed(instance: dg.DagsterInstance, keys: list[dg.AssetKey], days: int) -> None:
    """A materialization of every key on each of the last `days` days, upstream first."""
    for n in range(days):
        day = (LAST_DAY - timedelta(days=days - 1 - n)).isoformat()
        for key in keys:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))


def tick_ms(defs: dg.Definitions, years: float, dataset: str, ticks: int) -> tuple[float, float]:
    """(first tick ms, median ms of the following ticks) over `years` of history."""
    graph = defs.resolve_asset_graph()
    chain = dg.AssetSelection.assets(staged_key(dataset)).downstream()
    keys = [k for k in graph.toposorted_asset_keys if k in chain.resolve(graph)]
    keys = [k for k in keys if graph.get(k).is_partitioned]
    with tempfile.TemporaryDirectory() as home:
        ensure_dagster_home(Path(home))
        with dg.DagsterInstance.from_config(home) as instance:
            started = time.perf_counter()
            seed(instance, keys, round(years * 365))
            print(
                f"  seeded {round(years * 365):,} days x {len(keys)} assets "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            started = time.perf_counter()
            cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
            first = (time.perf_counter() - started) * 1000
            times = []
            for _ in range(ticks):
                started = time.perf_counter()
                result = dg.evaluate_automation_conditions(
                    defs=defs, instance=instance, cursor=cursor
                )
                times.append((time.perf_counter() - started) * 1000)
                cursor = result.cursor
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, nargs="+", default=[1, 5, 10])
    parser.add_argument("--dataset", default="products")
    parser.add_argument("--ticks", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as lake:
        settings = Settings.from_env({"ANALYTICS_LAKE_DIR": lake})
        defs = build_definitions(replace(settings, partitions_start=date(2016, 1, 1)))
        print("| history | first tick (no cursor) | tick with cursor (median) |")
        print("|---|---|---|")
        for years in args.years:
            print(f"{years:g} years:", flush=True)
            first, median = tick_ms(defs, years, args.dataset, args.ticks)
            print(
                f"| {years:g} years of {args.dataset} days | {first:,.0f} ms | {median:,.0f} ms |"
            )


if __name__ == "__main__":
    main()
