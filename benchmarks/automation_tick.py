"""The automation tick's cost against years of history: is it flat?

The daemon evaluates every asset's automation condition on each tick, for as long as the lake
lives; a tick whose cost grew with the number of historical day-partitions would slowly eat
the daemon's CPU. This seeds a Dagster instance with N years of materialized days of one
dataset's chain (staged, parquet, table, analytics), as runless events (the evaluation reads
the same storage either way), then times steady ticks: evaluations with nothing new, after a
first evaluation has set the baseline, as the daemon's ticks are. Seeding costs ~20 ms an
event, so 10 years (14,600 events) takes minutes.

    python -m benchmarks.automation_tick --years 1 5 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

FIRST_DAY = date(2016, 1, 1)


def chain_keys(dataset: str, analytics: str) -> list[object]:
    import dagster as dg

    from analytics_pipeline.defs.keys import parquet_key, staged_key, table_key

    return [
        staged_key(dataset),
        parquet_key(dataset),
        table_key(dataset),
        dg.AssetKey(["analytics", analytics]),
    ]


def steady_tick_ms(
    years: list[int], ticks: int, scale: float = 1.0
) -> list[tuple[int, int, float]]:
    """(years, events seeded, median ms per steady tick) for each history size, grown in turn
    on one instance."""
    import dagster as dg

    from analytics_pipeline.cli.dagster_home import ensure_dagster_home
    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.settings import Settings

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        settings = Settings.from_env(
            {"ANALYTICS_LAKE_DIR": f"{tmp}/lake", "ANALYTICS_PARTITIONS_START": str(FIRST_DAY)}
        )
        defs = build_definitions(settings)
        ensure_dagster_home(Path(tmp) / "home")
        keys = chain_keys("products", "daily_product_counts")
        seeded_days = 0
        with dg.DagsterInstance.local_temp(str(Path(tmp) / "home")) as instance:
            for n in sorted(years):
                days = round(n * 365 * scale)
                for d in range(seeded_days, days):
                    dt = (FIRST_DAY + timedelta(days=d)).isoformat()
                    for key in keys:
                        instance.report_runless_asset_event(
                            dg.AssetMaterialization(key, partition=dt)  # type: ignore[arg-type]
                        )
                seeded_days = days
                cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
                times = []
                for _ in range(ticks):
                    started = time.perf_counter()
                    cursor = dg.evaluate_automation_conditions(
                        defs=defs, instance=instance, cursor=cursor
                    ).cursor
                    times.append(1000 * (time.perf_counter() - started))
                results.append((n, days * len(keys), statistics.median(times)))
                print(f"  {n} years: {results[-1][2]:.0f} ms per steady tick", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="days per year / 365 (tests)")
    args = parser.parse_args(argv)
    results = steady_tick_ms(args.years, args.ticks, args.scale)
    base = results[0][2]
    print("\n| history | events seeded | ms per steady tick | vs the smallest |")
    print("|---|---|---|---|")
    for n, events, ms in results:
        print(f"| {n} years | {events:,} | {ms:.0f} | {ms / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
