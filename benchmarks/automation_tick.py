"""Automation tick cost vs history: ms per tick of the project's automation conditions and of
its stale-day check, with 1, 5, 10 years of materialized day partitions in the instance.

The history (a materialization per day of one dataset's day-partitioned chain, reported with
report_runless_asset_event, ~25 ms an event here) is seeded once per size into
`--history-dir` and copied for each measurement, so a second run (before/after a change)
skips the seeding. Each tick passes the previous tick's cursor, as the daemon does. Figures:
- first tick: no cursor (what `make process` starts with);
- quiet tick: nothing changed since the last;
- changed tick: one staged day updated since the last tick (alternately the newest day and
  a late old day), the run it requests (parquet, table, analytics of that day) checked;
- status cache: the first changed tick after seeding, where Dagster builds its per-asset
  partition status cache once (a deployment keeps it current event by event);
- stale check: `stale_days_sensor`'s work per tick, from every day (what each tick did
  before its cursor) and from the previous check (now);
- calls: Python function calls of one changed tick (cProfile): work, not time, so it reads
  the same on a loaded host.

    python -m benchmarks.automation_tick --years 1 5 10 --history-dir /tmp/tick-history
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg

from analytics_pipeline.cli.dagster_home import ensure_dagster_home
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import staged_key
from analytics_pipeline.defs.stale_check import check_stale
from analytics_pipeline.settings import Settings

LAST_DAY = date(2026, 11, 30)
SEEDED = "seeded"  # written into a history home once its seeding finished
T = TypeVar("T")


def seed(instance: dg.DagsterInstance, keys: list[dg.AssetKey], days: int) -> None:
    """A materialization of every key on each of the last `days` days, upstream first."""
    for n in range(days):
        day = (LAST_DAY - timedelta(days=days - 1 - n)).isoformat()
        for key in keys:
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))


def chain_keys(defs: dg.Definitions, dataset: str) -> list[dg.AssetKey]:
    """The day-partitioned assets from the dataset's staged asset down, upstream first."""
    graph = defs.resolve_asset_graph()
    chain = dg.AssetSelection.assets(staged_key(dataset)).downstream().resolve(graph)
    return [k for k in graph.toposorted_asset_keys if k in chain and graph.get(k).is_partitioned]


def seeded_history(history_dir: Path, keys: list[dg.AssetKey], dataset: str, days: int) -> Path:
    """A Dagster home holding `days` days of the chain, seeded on first use."""
    home = history_dir / f"{dataset}-{days}d"
    if (home / SEEDED).exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    ensure_dagster_home(home)
    started = time.perf_counter()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        seed(instance, keys, days)
    (home / SEEDED).touch()
    print(f"  seeded {days:,} days x {len(keys)} assets in {time.perf_counter() - started:.0f} s")
    return home


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    started = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - started) * 1000


def calls(fn: Callable[..., Any], *args: Any) -> int:
    """Python function calls made by fn(*args): its work, whatever the host's load."""
    profile = cProfile.Profile()
    profile.runcall(fn, *args)
    return pstats.Stats(profile).total_calls  # type: ignore[attr-defined]


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any = None) -> Any:
    return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)


@dataclass
class TickFigures:
    first: float
    quiet: float
    changed: float
    status_cache: float
    stale_every_day: float
    stale_from_last: float
    tick_calls: int
    stale_calls: tuple[int, int]  # every day, from the last


def measure(
    defs: dg.Definitions, home: Path, keys: list[dg.AssetKey], days: int, ticks: int
) -> TickFigures:
    graph = defs.resolve_asset_graph()
    staged = keys[0]
    # Alternately new data for the newest day and late data for an old one.
    changed_days = [
        (LAST_DAY - timedelta(days=0 if n % 2 == 0 else days // 2 + n)).isoformat()
        for n in range(ticks + 1)
    ]

    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(home, scratch, dirs_exist_ok=True)
        with dg.DagsterInstance.from_config(scratch) as instance:
            result, first = timed(tick, defs, instance)
            quiet = []
            for _ in range(ticks):
                result, ms = timed(tick, defs, instance, result.cursor)
                quiet.append(ms)
            changed, status_cache = [], 0.0
            for n, day in enumerate(changed_days):
                instance.report_runless_asset_event(dg.AssetMaterialization(staged, partition=day))
                result, ms = timed(tick, defs, instance, result.cursor)
                # The changed day's rebuild, and nothing older (the hourly refresh may add today).
                assert result.get_requested_partitions(keys[1]) == {day}, (day, result)
                if n == 0:
                    status_cache = ms
                else:
                    changed.append(ms)
            instance.report_runless_asset_event(
                dg.AssetMaterialization(staged, partition=changed_days[1])
            )
            tick_calls = calls(tick, defs, instance, result.cursor)
            check, every_day = timed(check_stale, graph, instance)
            from_last = []
            for day in changed_days:
                instance.report_runless_asset_event(dg.AssetMaterialization(staged, partition=day))
                last = check
                check, ms = timed(check_stale, graph, instance, last)
                from_last.append(ms)
            stale_calls = (
                calls(check_stale, graph, instance),
                calls(check_stale, graph, instance, last),
            )
    return TickFigures(
        first=first,
        quiet=statistics.median(quiet),
        changed=statistics.median(changed),
        status_cache=status_cache,
        stale_every_day=every_day,
        stale_from_last=statistics.median(from_last),
        tick_calls=tick_calls,
        stale_calls=stale_calls,
    )


def interleaved_quiet_ticks(defs: dg.Definitions, homes: list[Path], rounds: int) -> list[float]:
    """Median ms of a quiet tick on each history, the histories' ticks taking turns: the
    host's load then falls on every history alike (separate runs differed up to 3x)."""
    with ExitStack() as stack:
        instances: list[dg.DagsterInstance] = []
        cursors: list[Any] = []
        times: list[list[float]] = []
        for home in homes:
            scratch = stack.enter_context(tempfile.TemporaryDirectory())
            shutil.copytree(home, scratch, dirs_exist_ok=True)
            instance = stack.enter_context(dg.DagsterInstance.from_config(scratch))
            instances.append(instance)
            cursors.append(tick(defs, instance).cursor)
            times.append([])
        for _ in range(rounds):
            for n, instance in enumerate(instances):
                result, ms = timed(tick, defs, instance, cursors[n])
                cursors[n] = result.cursor
                times[n].append(ms)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, nargs="+", default=[1, 5, 10])
    parser.add_argument("--dataset", default="products")
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument("--history-dir", type=Path, help="seeded histories, kept between runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as lake, tempfile.TemporaryDirectory() as scratch:
        history_dir = args.history_dir or Path(scratch)
        settings = Settings.from_env({"ANALYTICS_LAKE_DIR": lake})
        defs = build_definitions(replace(settings, partitions_start=date(2016, 1, 1)))
        keys = chain_keys(defs, args.dataset)
        print(
            "| history | first tick (no cursor) | quiet tick | changed tick | status cache "
            "(once) | calls per changed tick | stale check, every day (before) | stale check, "
            "from the last (after) | stale check calls, before / after |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        homes = []
        for years in args.years:
            days = round(years * 365)
            home = seeded_history(history_dir, keys, args.dataset, days)
            homes.append(home)
            f = measure(defs, home, keys, days, args.ticks)
            print(
                f"| {years:g} years of {args.dataset} days ({days:,} x {len(keys)} assets) "
                f"| {f.first:,.0f} ms | {f.quiet:,.0f} ms | {f.changed:,.0f} ms "
                f"| {f.status_cache:,.0f} ms | {f.tick_calls:,} | {f.stale_every_day:,.0f} ms "
                f"| {f.stale_from_last:,.0f} ms | {f.stale_calls[0]:,} / {f.stale_calls[1]:,} |",
                flush=True,
            )

        quiet = interleaved_quiet_ticks(defs, homes, args.ticks + 2)
        print(
            "quiet tick, the histories taking turns (median of "
            f"{args.ticks + 2}): "
            + ", ".join(
                f"{y:g} years {ms:,.0f} ms" for y, ms in zip(args.years, quiet, strict=True)
            )
        )


if __name__ == "__main__":
    main()
