"""Workloads with a realistic spread of days, timed as a user runs them, against two floors.

Each workload lands its files in a fresh lake and times `make process`'s command
(`python -m analytics_pipeline.cli.process`) in a fresh subprocess, start-up included, with
its peak memory (the child tree's max RSS from wait4). Beside it, measured in the same run:
the DATA floor (pyarrow reading, casting and writing the same bytes to snappy Parquet, or
reading the same small files and writing their days) and the DAGSTER floor (the recorded
runs replayed as a no-op graph in a fresh subprocess: benchmarks/dagster_floor.py). The
ratio wall / (data + Dagster) is the figure; its target is 1.25.

    python -m benchmarks.spread                 # quick: a few minutes
    python -m benchmarks.spread --full          # the issue's sizes
    python -m benchmarks.spread --only iot --iot-rows 1000000 --iot-days 28
    python -m benchmarks.spread --full --repeat 3   # each 3 times: medians, the ratios' range
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.dagster_floor import record_shape, shape_summary
from benchmarks.run import IOT_FILES, copy_iot_ndjson, gib

PARTITIONS_START = "2020-01-01"
IOT_FIRST_DAY = date(2024, 5, 1)
PRODUCTS_FIRST_DAY = date(2024, 1, 1)

TARGET = 1.25
FULL = {
    "iot_rows": 4_000_000,
    "iot_days": 28,
    "products_files": 100_000,
    "products_days": 366,
    "backfill_days": 1826,
}


def backfill_first_day(days: int) -> date:
    """The backfill's days end yesterday: days after tomorrow are no partition (their records
    are quarantined), so five years from PRODUCTS_FIRST_DAY would be three."""
    return date.today() - timedelta(days=days)


def timed_child(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Wall time and peak RSS (the child tree's, from wait4) of one command, as it runs."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err.read().decode()[-8000:]}")
        return {
            "seconds": seconds,
            "cpu": usage.ru_utime + usage.ru_stime,
            "stdout": out.read().decode(),
            "peak_rss": usage.ru_maxrss * 1024,
        }


def lake_env(lake: Path) -> dict[str, str]:
    from analytics_pipeline.cli.dagster_home import ensure_dagster_home

    home = lake / "dagster_home"
    ensure_dagster_home(home)  # here: a process of its own would import dagster again
    return {
        **os.environ,
        "ANALYTICS_LAKE_DIR": str(lake),
        "DAGSTER_HOME": str(home),
        "ANALYTICS_PARTITIONS_START": PARTITIONS_START,
        "ANALYTICS_LANDING_SETTLE_SECONDS": "0",
    }


def process(lake: Path, env: dict[str, str]) -> dict[str, Any]:
    result = timed_child([sys.executable, "-m", "analytics_pipeline.cli.process"], env)
    print(f"  make process {result['seconds']:.1f} s ({result['cpu']:.1f} CPU s)", flush=True)
    if "failed runs: 0" not in result["stdout"]:
        raise RuntimeError(f"make process reported failures:\n{result['stdout'][-3000:]}")
    return result


def dagster_floor(work: Path, shape: dict[str, Any]) -> float:
    path = work / f"shape-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(shape))
    result = timed_child([sys.executable, "-m", "benchmarks.dagster_floor", str(path)])
    seconds = result["seconds"]
    runs = json.loads(result["stdout"].strip().splitlines()[-1])["seconds"]
    print(
        f"  Dagster floor {seconds:.1f} s ({result['cpu']:.1f} CPU s, "
        f"{runs:.1f} s after start-up): "
        f"{shape_summary(shape)}",
        flush=True,
    )
    return float(seconds)


# --- workloads -------------------------------------------------------------------------------


def generate_iot(landing: Path, rows: int, days: int) -> None:
    import duckdb

    landing.mkdir(parents=True, exist_ok=True)
    per_file, devices = rows // IOT_FILES, 125
    step = max(1, days * 86_400 * devices // max(per_file, 1))
    con = duckdb.connect()
    for f in range(IOT_FILES):
        copy_iot_ndjson(
            con,
            landing / f"gw-{f:02d}.ndjson",
            per_file,
            deviceid=f"{1000 + f * devices} + i % {devices}",
            seconds=f"(i // {devices}) * {step}",
            first_day=IOT_FIRST_DAY.isoformat(),
        )
    con.close()


def generate_products(landing: Path, files: int, days: int, first: date) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        day = first + timedelta(days=i % days)
        (landing / f"{i}.json").write_text(
            json.dumps({"id": i, "date": day.isoformat(), "product": "ABC"[i % 3]})
        )


def data_floor(kind: str, source: Path, work: Path) -> tuple[float, float | None]:
    """The data floor's seconds and, for one-object files, the archive's moves alone."""
    out = Path(tempfile.mkdtemp(prefix="floor-", dir=work))
    args = json.dumps({"source": str(source), "out": str(out)})
    if kind == "iot":
        cmd = [sys.executable, "-m", "benchmarks.run", "--child", "floor", "--child-args", args]
    else:
        cmd = [sys.executable, "-m", "benchmarks.products_floor", args]
    result = timed_child(cmd)
    measured = json.loads(result["stdout"].strip().splitlines()[-1])
    seconds = float(measured["seconds"])
    # The child's own clock, after its imports: the Dagster floor's process already counts
    # one interpreter's start-up, and the pipeline pays only one.
    print(
        f"  data floor {seconds:.1f} s ({result['seconds']:.1f} s as a whole subprocess)",
        flush=True,
    )
    archive = measured.get("archive_seconds")
    if archive is not None:
        print(
            f"  beside the floors: the archive's moves of the same files alone {archive:.1f} s "
            f"({measured['archive_cpu']:.1f} CPU s)",
            flush=True,
        )
    return seconds, archive


def measure(
    name: str,
    work: Path,
    kind: str,
    landing_files: int,
    days: int,
    generate: Any,
    repeat: int = 1,
) -> list[dict[str, Any]]:
    """The workload `repeat` times, each run beside its own floors (the host's speed drifts
    over minutes), as one row per workload: the medians, and the ratio's range."""
    print(f"{name}:", flush=True)
    template = Path(tempfile.mkdtemp(prefix=f"files-{kind}-", dir=work))
    generate(template)
    repeats: list[list[dict[str, Any]]] = []
    for _ in range(repeat):
        lake = Path(tempfile.mkdtemp(prefix=f"spread-{kind}-", dir=work))
        repeats.append(measure_once(name, work, lake, kind, template, landing_files, days))
        shutil.rmtree(lake)
    shutil.rmtree(template)
    return [combine(list(rows)) for rows in zip(*repeats, strict=True)]


def measure_once(
    name: str,
    work: Path,
    lake: Path,
    kind: str,
    template: Path,
    landing_files: int,
    days: int,
) -> list[dict[str, Any]]:
    dataset = "iot_sensor_data" if kind == "iot" else "products"
    landing = lake / "landing" / dataset
    landing.mkdir(parents=True)
    source = Path(tempfile.mkdtemp(prefix="source-", dir=work))
    for path in template.iterdir():
        os.link(path, landing / path.name)
        os.link(path, source / path.name)
    env = lake_env(lake)
    run = process(lake, env)
    shape = record_shape(Path(env["DAGSTER_HOME"]), PARTITIONS_START)
    data, archive = data_floor(kind, source, work)
    shutil.rmtree(source)
    rows = [
        row(
            name,
            run,
            data,
            dagster_floor(work, shape),
            days,
            landing_files,
            shape_summary(shape),
            archive,
        )
    ]
    if kind == "products-backfill":
        before = len(shape["runs"])
        first = backfill_first_day(days)
        last = first + timedelta(days=days - 1)
        cmd = [sys.executable, "-m", "benchmarks.backfill", dataset, str(first), str(last)]
        backfill = timed_child(cmd, env)
        shape = record_shape(Path(env["DAGSTER_HOME"]), PARTITIONS_START)
        shape["runs"] = shape["runs"][before:]
        rows.append(
            row(
                f"UI-style backfill of the {days:,} product days (parquet, table, analytics)",
                backfill,
                0.0,
                dagster_floor(work, shape),
                days,
                0,
                shape_summary(shape),
            )
        )
    return rows


def combine(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for a workload's repeats: medians, the highest peak, the ratios' range."""
    combined = dict(repeats[0])
    for key in ("wall", "cpu", "data", "dagster", "ratio", "ms_per_day", "files_per_s", "archive"):
        values = [r[key] for r in repeats]
        combined[key] = None if None in values else statistics.median(values)
    combined["peak"] = max(r["peak"] for r in repeats)
    combined["ratios"] = sorted(r["ratio"] for r in repeats)
    return combined


def row(
    name: str,
    run: dict[str, Any],
    data: float,
    floor: float,
    days: int,
    files: int,
    shape: dict[str, int],
    archive: float | None = None,
) -> dict[str, Any]:
    wall = run["seconds"]
    return {
        "archive": archive,
        "workload": name,
        "wall": wall,
        "cpu": run["cpu"],
        "data": data,
        "dagster": floor,
        "ratio": wall / (data + floor),
        "ms_per_day": wall * 1000 / days,
        "files_per_s": files / wall if files else None,
        "peak": run["peak_rss"],
        "shape": shape,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print(
        "| workload | wall (make process, start-up incl.) | its CPU s | data floor | "
        "Dagster floor | "
        "wall / (data + Dagster) | target | ms per day | files/s | peak RSS | runs | "
        "beside: archive moves alone |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rate = f"{r['files_per_s']:,.1f}" if r["files_per_s"] else ""
        shape = ", ".join(f"{v:,} {k}" for k, v in r["shape"].items())
        archive = r["archive"]
        beside = (
            f"{archive:.1f} s ({archive / (r['data'] + r['dagster']):.0%} of the floors)"
            if archive is not None
            else ""
        )
        print(
            f"| {r['workload']} | {r['wall']:.1f} s | {r['cpu']:.1f} | {r['data']:.1f} s "
            f"| {r['dagster']:.1f} s "
            f"| **{r['ratio']:.2f}x**{spread_of(r['ratios'])} | <= {TARGET} "
            f"| {r['ms_per_day']:.0f} | {rate} "
            f"| {gib(r['peak'])} | {shape} | {beside} |"
        )


def spread_of(ratios: list[float]) -> str:
    """The range of a workload's ratios over its repeats, if it ran more than once."""
    if len(ratios) < 2:
        return ""
    return f" ({ratios[0]:.2f}-{ratios[-1]:.2f} over {len(ratios)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    parser.add_argument("--iot-rows", type=int, default=200_000)
    parser.add_argument("--iot-days", type=int, default=28)
    parser.add_argument("--products-files", type=int, default=5_000)
    parser.add_argument("--products-days", type=int, default=366)
    parser.add_argument("--backfill-days", type=int, default=200)
    parser.add_argument("--only", nargs="*", default=["iot", "products", "backfill"])
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each workload, each beside its own floors; the table gives medians",
    )
    args = parser.parse_args()
    if args.full:
        for k, v in FULL.items():
            setattr(args, k, v)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-spread-") as tmp:
        work = Path(tmp)
        for days in sorted({7, args.iot_days}) if "iot" in args.only else []:
            rows += measure(
                f"IoT {args.iot_rows:,} rows in {IOT_FILES} NDJSON files over {days} days",
                work,
                "iot",
                IOT_FILES,
                days,
                lambda landing, d=days: generate_iot(landing, args.iot_rows, d),
                args.repeat,
            )
        for days in sorted({7, args.products_days}) if "products" in args.only else []:
            rows += measure(
                f"products {args.products_files:,} one-object files over {days} days",
                work,
                "products",
                args.products_files,
                days,
                lambda landing, d=days: generate_products(
                    landing, args.products_files, d, PRODUCTS_FIRST_DAY
                ),
                args.repeat,
            )
        if "backfill" in args.only:
            days = args.backfill_days
            rows += measure(
                f"products one file per day over {days:,} days (the backfill's setup)",
                work,
                "products-backfill",
                days,
                days,
                lambda landing: generate_products(landing, days, days, backfill_first_day(days)),
                args.repeat,
            )
        print_table(rows)


if __name__ == "__main__":
    main()
