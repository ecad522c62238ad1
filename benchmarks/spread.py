"""Workloads spread over days as in life, timed as a user runs them, against two floors.

`python -m benchmarks.spread` runs `python -m analytics_pipeline.cli.process` (what `make
process` runs) in a fresh process on a fresh lake and a fresh $DAGSTER_HOME: start-up,
definitions, sensors, automation and every run included. Beside it, measured in the same
run:

- the data floor: pyarrow doing the same data work (IoT: read_json + cast + snappy Parquet of
  the same bytes; products: reading the same small files and writing each day's Parquet);
- the Dagster floor: a no-op graph of the same shape in a fresh process (the same four daily
  assets staged -> parquet -> table -> analytics, the same days, as many ingest runs each
  reporting the same staged days, as many ranged runs, the same metadata entries per
  day-partition), on a SQLite instance, start-up included.

The target is wall <= 1.25 x (data floor + Dagster floor). Never a pass/fail test.

    python -m benchmarks.spread          # quick: 20k product files / 366 days, 400k IoT rows / 28
    python -m benchmarks.spread --full   # the issue's sizes: 100k files, 4M rows, 5 years of days
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

FIRST_DAY = date(2021, 1, 1)
ASSETS_PER_DAY = 4  # staged, parquet, table, analytics
TARGET = 1.25


# --- measuring a command ------------------------------------------------------------------


def timed_command(cmd: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Wall seconds and peak RSS of one command, run from a small wrapper process so the
    peak is that command's own (RUSAGE_CHILDREN of a process with one child)."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "cmd = json.loads(sys.argv[1])\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(cmd, capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(json.dumps({'wall': wall, 'peak': peak, 'rc': p.returncode,"
        " 'out': p.stdout[-4000:], 'err': p.stderr[-2000:]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, json.dumps(cmd)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{cmd} failed ({result['rc']}): {result['err']}")
    return result


def process_command(lake: Path, home: Path) -> dict[str, Any]:
    """`make process`'s command on this lake; its runs and day-partitions, from its output."""
    env = {
        **os.environ,
        "ANALYTICS_LAKE_DIR": str(lake),
        "DAGSTER_HOME": str(home),
        "ANALYTICS_PARTITIONS_START": FIRST_DAY.isoformat(),
    }
    env.pop("ANALYTICS_PIPELINE_ENV", None)
    result = timed_command([sys.executable, "-m", "analytics_pipeline.cli.process"], env)
    runs = re.search(r"ingest runs: (\d+), automation runs: (\d+)", result["out"])
    if runs is None:
        raise RuntimeError(f"unexpected output of make process: {result['out']}")
    result["ingest_runs"], result["automation_runs"] = int(runs[1]), int(runs[2])
    result["partitions"] = sum(
        int(n) for n in re.findall(r"^\s+\S+: (\d+) partitions$", result["out"], re.M)
    )
    return result


def python_child(function: str, **kwargs: Any) -> dict[str, Any]:
    """One of this module's floor functions in a fresh interpreter, start-up included."""
    code = (
        "import json, sys\n"
        f"from benchmarks.spread import {function}\n"
        f"print(json.dumps({function}(**json.loads(sys.argv[1]))))\n"
    )
    return timed_command([sys.executable, "-c", code, json.dumps(kwargs)], dict(os.environ))


# --- data ---------------------------------------------------------------------------------


def day_of(i: int, days: int) -> date:
    return FIRST_DAY + timedelta(days=i % days)


def generate_products(landing: Path, files: int, days: int) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        record = {"id": i, "date": day_of(i, days).isoformat(), "product": "ABC"[i % 3]}
        (landing / f"{i}.json").write_text(json.dumps(record))


def generate_iot(landing: Path, rows: int, days: int, files: int = 8) -> None:
    """`files` NDJSON files of string-valued readings spread evenly over `days` days."""
    import duckdb

    from benchmarks.run import copy_iot_ndjson

    landing.mkdir(parents=True, exist_ok=True)
    per_file = rows // files
    con = duckdb.connect()
    for f in range(files):
        copy_iot_ndjson(
            con,
            landing / f"gw-{f:02d}.ndjson",
            per_file,
            deviceid=f"{1000 + f * 125} + i % 125",
            seconds=f"i * {days * 86_400} // {per_file}",
            first_day=FIRST_DAY.isoformat(),
        )
    con.close()


def fresh_lake(source: Path, dataset: str, work: Path) -> tuple[Path, Path]:
    """A new lake whose landing holds hard links to the generated files, and a new home."""
    lake = Path(tempfile.mkdtemp(prefix=f"lake-{dataset}-", dir=work))
    landing = lake / "landing" / dataset
    landing.mkdir(parents=True)
    for path in source.iterdir():
        os.link(path, landing / path.name)
    return lake, Path(tempfile.mkdtemp(prefix="home-", dir=work))


# --- floors (run in a fresh interpreter by python_child) ----------------------------------


def data_floor_products(source: str, out: str) -> dict[str, Any]:
    """Read every small file, parse it, write each day's rows as one snappy Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    by_day: dict[str, list[dict[str, Any]]] = {}
    with os.scandir(source) as entries:
        for entry in entries:
            with open(entry.path, "rb") as f:
                record = json.loads(f.read())
            by_day.setdefault(record["date"], []).append(record)
    for dt, records in by_day.items():
        pq.write_table(pa.Table.from_pylist(records), f"{out}/{dt}.parquet", compression="snappy")
    return {"days": len(by_day)}


def data_floor_iot(source: str, out: str) -> dict[str, Any]:
    """pyarrow read_json of the same bytes, cast to the table's types, snappy Parquet."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from analytics_pipeline.datasets import dataset

    spec = dataset("iot_sensor_data")
    strings = pa.schema([(f.name, pa.string()) for f in spec.fields])
    typed = spec.table_arrow_schema(spec.tables[0])
    for path in sorted(Path(source).iterdir()):
        options = pj.ParseOptions(explicit_schema=strings)
        table = pj.read_json(path, parse_options=options).cast(typed)
        pq.write_table(table, f"{out}/{path.stem}.parquet", compression="snappy")
    return {}


def dagster_floor(days: int, ingest_runs: int, ranged_runs: int, home: str) -> dict[str, Any]:
    """The same Dagster work with no data work: staged days reported by each ingest run,
    then parquet -> table -> analytics over the days in `ranged_runs` ranged runs, each
    day-partition with two metadata entries and each run with a folded result."""
    import dagster as dg

    from analytics_pipeline.cli.dagster_home import ensure_dagster_home

    partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY.isoformat())
    keys = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(days)]
    policy = dg.BackfillPolicy.single_run()

    def noop_layer(name: str, dep: str) -> dg.AssetsDefinition:
        @dg.asset(name=name, deps=[dep], partitions_def=partitions, backfill_policy=policy)
        def layer(context):  # type: ignore[no-untyped-def]  # dg is imported in this function
            for dt in context.partition_keys:
                context.add_asset_metadata({"rows": 1, "files": 1}, partition_key=dt)
            return dg.MaterializeResult(metadata={"run_days": len(context.partition_keys)})

        return layer

    staged = dg.AssetSpec("staged", partitions_def=partitions)

    @dg.op(out={})
    def stage():  # type: ignore[no-untyped-def]
        for dt in keys:
            yield dg.AssetMaterialization(
                "staged", partition=dt, metadata={"rows_added": 1, "batch_id": "b", "files": 1}
            )

    @dg.job
    def ingest() -> None:
        stage()

    layers = [noop_layer("parquet", "staged"), noop_layer("table", "parquet")]
    layers.append(noop_layer("analytics", "table"))
    defs = dg.Definitions(assets=[staged, *layers], jobs=[ingest])
    build = defs.get_implicit_global_asset_job_def()
    ensure_dagster_home(Path(home))
    chunk = -(-days // max(ranged_runs, 1))
    with dg.DagsterInstance.local_temp(home) as instance:
        for _ in range(ingest_runs):
            defs.get_job_def("ingest").execute_in_process(instance=instance)
        for start in range(0, days, chunk):
            span = keys[start : start + chunk]
            build.execute_in_process(
                instance=instance,
                asset_selection=[dg.AssetKey(n) for n in ("parquet", "table", "analytics")],
                tags={
                    "dagster/asset_partition_range_start": span[0],
                    "dagster/asset_partition_range_end": span[-1],
                },
            )
    return {}


# --- figures ------------------------------------------------------------------------------


def workload(
    name: str, dataset: str, source: Path, work: Path, data_floor: str, units: tuple[int, str]
) -> dict[str, Any]:
    lake, home = fresh_lake(source, dataset, work)
    wall = process_command(lake, home)
    out = Path(tempfile.mkdtemp(prefix="floor-", dir=work))
    data = python_child(data_floor, source=str(source), out=str(out))
    days = len({p.name for p in (lake / "parquet" / dataset).glob("dt=*")})
    floor_home = Path(tempfile.mkdtemp(prefix="floor-home-", dir=work))
    dagster = python_child(
        "dagster_floor",
        days=days,
        ingest_runs=wall["ingest_runs"],
        ranged_runs=max(1, wall["automation_runs"]),
        home=str(floor_home),
    )
    floors = data["wall"] + dagster["wall"]
    count, unit = units
    return {
        "workload": name,
        "wall_s": wall["wall"],
        "data_floor_s": data["wall"],
        "dagster_floor_s": dagster["wall"],
        "ratio": wall["wall"] / floors,
        "days": days,
        "ms_per_day_partition": 1000 * wall["wall"] / max(1, days * ASSETS_PER_DAY),
        "rate": f"{count / wall['wall']:,.0f} {unit}/s",
        "runs": f"{wall['ingest_runs']} ingest + {wall['automation_runs']} automation",
        "peak_gib": wall["peak"] / 2**30,
    }


def start_up(work: Path, repeat: int) -> dict[str, Any]:
    """`make process`'s command on an empty lake, median of `repeat`."""
    walls = []
    for _ in range(repeat):
        lake = Path(tempfile.mkdtemp(prefix="empty-", dir=work))
        home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
        walls.append(process_command(lake, home)["wall"])
    return {
        "workload": "start-up: make process on an empty lake",
        "wall_s": statistics.median(walls),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "\n| workload | wall (command) | data floor | Dagster floor | wall / floors "
        f"(target <= {TARGET}) | days | ms per day-partition | rate | runs | peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "ratio" not in r:
            print(f"| {r['workload']} | {r['wall_s']:.2f} s (target <= 2 s) | | | | | | | | |")
            continue
        print(
            f"| {r['workload']} | {r['wall_s']:.1f} s | {r['data_floor_s']:.1f} s "
            f"| {r['dagster_floor_s']:.1f} s | {r['ratio']:.2f}x | {r['days']} "
            f"| {r['ms_per_day_partition']:.0f} | {r['rate']} | {r['runs']} "
            f"| {r['peak_gib']:.2f} GiB |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products-files", type=int, default=20_000)
    parser.add_argument("--products-days", type=int, default=366)
    parser.add_argument("--iot-rows", type=int, default=400_000)
    parser.add_argument("--iot-days", type=int, default=28)
    parser.add_argument("--backfill-days", type=int, default=0, help="products over N days")
    parser.add_argument("--start-repeat", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="the issue's sizes")
    args = parser.parse_args(argv)
    if args.full:
        args.products_files, args.iot_rows, args.backfill_days = 100_000, 4_000_000, 1826
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-spread-") as tmp:
        work = Path(tmp)
        rows.append(start_up(work, args.start_repeat))
        print_table(rows[-1:])
        shapes = [
            ("products", args.products_files, args.products_days, "files"),
            ("iot_sensor_data", args.iot_rows, args.iot_days, "rows"),
        ]
        if args.backfill_days:
            files = max(args.products_files // 5, args.backfill_days)
            shapes.append(("products", files, args.backfill_days, "files"))
        for dataset, count, days, unit in shapes:
            source = work / f"source-{dataset}-{days}"
            if dataset == "products":
                generate_products(source, count, days)
            else:
                generate_iot(source, count, days)
            floor = "data_floor_products" if dataset == "products" else "data_floor_iot"
            name = f"{dataset}: {count:,} {unit} over {days} days"
            rows.append(workload(name, dataset, source, work, floor, (count, unit)))
            print_table(rows[-1:])
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
