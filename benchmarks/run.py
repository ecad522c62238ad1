"""`make bench`: the ingest figures of issue 5, each beside its baseline measured in this run.

Generates its data, runs the real pipeline (`make process`'s code path: process_landing on
build_definitions(settings)) on a fresh lake per repeat, in a child process so its peak RSS
(VmHWM) is its own, and prints medians of --repeat runs. Never a pass/fail test: a shared
machine's timings vary; the ratios are the figures.

    python -m benchmarks.run                       # quick: 400k IoT rows, 20k product files
    python -m benchmarks.run --iot-rows 4000000 --products-files 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from analytics_pipeline.memory_pool import use_system_memory_pool
from analytics_pipeline.settings import DEFAULT_INGEST_BATCH_FILES

IOT_FILES = 8
IOT_DAYS = 7
FIRST_DAY = date(2024, 5, 1)
PRODUCT_DAYS = 7
NEW_ARRIVALS = 100


# --- measuring -------------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """This process's high-water resident set (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(kind: str, **kwargs: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; it prints one JSON line."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--child",
        kind,
        "--child-args",
        json.dumps(kwargs),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return statistics.median(values)


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


@dataclass
class Row:
    figure: str
    measured: str
    baseline: str
    ratio: str
    target: str
    peak: str = ""


# --- data ------------------------------------------------------------------------------------


def copy_iot_ndjson(
    con: Any, path: Path, rows: int, *, deviceid: str, seconds: str, first_day: str
) -> None:
    """`rows` string-valued IoT readings as NDJSON, generated in DuckDB from row number i:
    the device id and the seconds after first_day are SQL expressions of i."""
    con.execute(
        f"""
        COPY (
          SELECT CAST({deviceid} AS VARCHAR) AS deviceid,
            strftime(TIMESTAMP '{first_day}' + to_seconds({seconds}),
                     '%Y-%m-%d %H:%M:%S') AS datetime,
            CAST(i * 7 % 40 - 5 AS VARCHAR) AS temperature,
            CAST(20 + i * 13 % 80 AS VARCHAR) AS humidity,
            CAST(i * 31 % 360 AS VARCHAR) AS winddirection,
            CAST(i * 3 % 30 AS VARCHAR) AS windintensity,
            CAST(CASE WHEN i % 9 = 0 THEN i % 14 ELSE 0 END AS VARCHAR) AS rainheight
          FROM range({rows}) t(i)
        ) TO '{path}' (FORMAT json)
        """
    )


def generate_iot(source: Path, rows: int) -> dict[str, int]:
    """IOT_FILES NDJSON files of string-valued readings; returns the raw JSON bytes per day."""
    import duckdb

    target = source / "iot_sensor_data"
    target.mkdir(parents=True, exist_ok=True)
    per_file = rows // IOT_FILES
    devices = 125
    step = max(1, IOT_DAYS * 86_400 * devices // max(per_file, 1))
    con = duckdb.connect()
    for f in range(IOT_FILES):
        path = target / f"gw-{f:02d}.ndjson"
        copy_iot_ndjson(
            con,
            path,
            per_file,
            deviceid=f"{1000 + f * devices} + i % {devices}",
            seconds=f"(i // {devices}) * {step}",
            first_day=FIRST_DAY.isoformat(),
        )
    by_day = con.execute(
        f"""
        SELECT substr(json_extract_string(line, '$.datetime'), 1, 10) AS dt,
               sum(strlen(line) + 1) AS bytes
        FROM read_csv('{target}/*.ndjson', columns = {{'line': 'VARCHAR'}}, delim = '\x01',
                      quote = '', escape = '', header = false)
        GROUP BY dt
        """
    ).fetchall()
    con.close()
    return {dt: int(n) for dt, n in by_day}


def generate_products(source: Path, files: int) -> None:
    target = source / "products"
    target.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        day = date.fromordinal(FIRST_DAY.toordinal() + i % PRODUCT_DAYS)
        record = {"id": i, "date": day.isoformat(), "product": "ABC"[i % 3]}
        (target / f"{i}.json").write_text(json.dumps(record))


def fresh_lake(source: Path, dataset: str) -> Path:
    """A new lake whose landing/<dataset>/ holds hard links to the generated files."""
    lake = Path(tempfile.mkdtemp(prefix=f"bench-{dataset}-", dir=source.parent))
    landing = lake / "landing" / dataset
    landing.mkdir(parents=True)
    for path in (source / dataset).iterdir():
        os.link(path, landing / path.name)
    return lake


# --- child measurements ----------------------------------------------------------------------


def run_pipeline(lake: str, batch_files: int) -> dict[str, Any]:
    import dagster as dg

    from analytics_pipeline.cli.dagster_home import ensure_dagster_home
    from analytics_pipeline.cli.process import process_landing
    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.settings import Settings

    settings = Settings(
        env="local",
        lake_dir=Path(lake),
        partitions_start=date(2020, 1, 1),
        ingest_batch_files=batch_files,
        max_landing_file_bytes=1 << 30,
        landing_settle_seconds=0,
    )
    defs = build_definitions(settings)
    run_seconds: dict[str, float] = {"ingest runs": 0.0, "automation runs": 0.0}
    execute = dg.JobDefinition.execute_in_process

    def timed(job: dg.JobDefinition, *a: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(job, *a, **kw)
        finally:
            kind = "automation runs" if kw.get("asset_selection") else "ingest runs"
            run_seconds[kind] += time.perf_counter() - started

    dg.JobDefinition.execute_in_process = timed  # type: ignore[method-assign,assignment]
    with tempfile.TemporaryDirectory() as home:
        ensure_dagster_home(Path(home))
        with dg.DagsterInstance.local_temp(home) as instance:
            started = time.perf_counter()
            summary = process_landing(defs, instance)
            seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "breakdown": {
            **run_seconds,
            "sensors + automation evaluation": seconds - sum(run_seconds.values()),
        },
        "peak_rss": peak_rss_bytes(),
        "failed": len(summary.failed_runs),
        "ingest_runs": summary.ingest_runs,
        "automation_runs": summary.automation_runs,
    }


def run_floor(source: str, out: str) -> dict[str, Any]:
    """pyarrow read_json of the same bytes + cast to the table types + snappy Parquet write."""
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from analytics_pipeline.datasets import dataset

    spec = dataset("iot_sensor_data")
    strings = pa.schema([(f.name, pa.string()) for f in spec.fields])
    typed = spec.table_arrow_schema(spec.tables[0])
    started = time.perf_counter()
    for path in sorted(Path(source).iterdir()):
        table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=strings)).cast(
            typed
        )
        pq.write_table(table, Path(out) / f"{path.stem}.parquet", compression="snappy")
    return {"seconds": time.perf_counter() - started, "peak_rss": peak_rss_bytes()}


def run_naive(source: str, out: str, files: int) -> dict[str, Any]:
    """What these systems started from: one Parquet file per event, pandas per record."""
    import pandas as pd

    paths = sorted(Path(source).iterdir())[:files]
    started = time.perf_counter()
    for i, path in enumerate(paths):
        record = json.loads(path.read_bytes())
        pd.DataFrame([record]).to_parquet(Path(out) / f"{i}.parquet")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "files": len(paths), "query_seconds": query_seconds(out, None)}


def query_seconds(naive_dir: str | None, catalog: str | None) -> float:
    """One aggregate over every row: the naive files, or the products table in the catalog."""
    import duckdb

    con = duckdb.connect(catalog, read_only=True) if catalog else duckdb.connect()
    source = "products" if catalog else f"read_parquet('{naive_dir}/*.parquet')"
    try:
        started = time.perf_counter()
        con.execute(f"SELECT product, count(*) FROM {source} GROUP BY product").fetchall()
        return time.perf_counter() - started
    finally:
        con.close()


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "pipeline": run_pipeline,
    "floor": run_floor,
    "naive": run_naive,
}


# --- figures ---------------------------------------------------------------------------------


def figure_iot(work: Path, args: argparse.Namespace, rows: list[Row]) -> Path | None:
    source = work / "source"
    started = time.perf_counter()
    raw_by_day = generate_iot(source, args.iot_rows)
    total_raw = sum(raw_by_day.values())
    print(
        f"generated {args.iot_rows:,} IoT rows in {IOT_FILES} files ({total_raw / 1e6:.0f} MB) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    pipeline, floor, lake = [], [], None
    for r in range(args.repeat):
        out = Path(tempfile.mkdtemp(prefix="bench-floor-", dir=work))
        floor.append(child("floor", source=str(source / "iot_sensor_data"), out=str(out)))
        shutil.rmtree(out)
        if lake is not None:
            shutil.rmtree(lake)
        lake = fresh_lake(source, "iot_sensor_data")
        result = child("pipeline", lake=str(lake), batch_files=args.batch_files)
        pipeline.append(result)
        print(
            f"  repeat {r + 1}: pipeline {result['seconds']:.1f} s "
            f"(peak {gib(result['peak_rss'])}, {result['ingest_runs']} ingest + "
            f"{result['automation_runs']} automation runs, {result['failed']} failed), "
            f"floor {floor[-1]['seconds']:.1f} s"
        )
        print("    " + ", ".join(f"{k} {v:.1f} s" for k, v in result["breakdown"].items()))
    p = median([x["seconds"] for x in pipeline])
    f = median([x["seconds"] for x in floor])
    peak = max(x["peak_rss"] for x in pipeline)
    rows.append(
        Row(
            f"IoT NDJSON, {args.iot_rows:,} rows in {IOT_FILES} files: landing -> catalog",
            f"{p:.1f} s ({args.iot_rows / p / 1e6:.2f} M rows/s)",
            f"floor {f:.1f} s (read_json + cast + Parquet)",
            f"{p / f:.1f}x the floor",
            "<= 3x",
            f"{gib(peak)} (floor {gib(max(x['peak_rss'] for x in floor))}); target < 2 GiB",
        )
    )
    if lake is not None:
        figure_pruning(lake, raw_by_day, rows)
    return lake


def figure_pruning(lake: Path, raw_by_day: dict[str, int], rows: list[Row]) -> None:
    import duckdb

    day = sorted(raw_by_day)[len(raw_by_day) // 2]
    files = sorted((lake / "parquet" / "iot_sensor_data" / f"dt={day}").rglob("*.parquet"))
    parquet_bytes = sum(p.stat().st_size for p in files)
    sql = Path(__file__).parents[1] / "analytics_pipeline" / "sql" / "iot_daily_device_stats.sql"
    con = duckdb.connect(str(lake / "catalog.duckdb"), read_only=True)
    try:
        one_day = files_read(
            con, f"SELECT avg(temperature) FROM iot_sensor_data WHERE dt = '{day}'"
        )
        analytics = files_read(con, sql.read_text().format(dt=day))
        all_days = files_read(con, "SELECT avg(temperature) FROM iot_sensor_data")
    finally:
        con.close()
    rows.append(
        Row(
            f"Query pruning: one day ({day}) of IoT",
            f"{parquet_bytes / 1e6:.2f} MB Parquet (the whole day's file, an upper bound)",
            f"{raw_by_day[day] / 1e6:.1f} MB raw JSON of that day",
            f"1/{raw_by_day[day] / max(parquet_bytes, 1):.0f}",
            "<= 1/100",
            f"files read: one-day query {one_day}, analytics SQL {analytics}, "
            f"unfiltered {all_days}",
        )
    )


def files_read(con: Any, sql: str) -> str:
    """Parquet files DuckDB's profiler says the query scanned (EXPLAIN ANALYZE)."""
    plan = "\n".join(str(r[1]) for r in con.execute(f"EXPLAIN ANALYZE {sql}").fetchall())
    found = re.findall(r"Total Files Read:\s*(\d+)", plan)
    return "+".join(found) if found else "n/a"


def figure_products(work: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    source = work / "source"
    started = time.perf_counter()
    generate_products(source, args.products_files)
    print(
        f"generated {args.products_files:,} product files in {time.perf_counter() - started:.0f} s"
    )
    pipeline, naive = [], []
    for r in range(args.repeat):
        lake = fresh_lake(source, "products")
        pipeline.append(child("pipeline", lake=str(lake), batch_files=args.batch_files))
        pipeline[-1]["query_seconds"] = query_seconds(None, str(lake / "catalog.duckdb"))
        shutil.rmtree(lake)
        out = Path(tempfile.mkdtemp(prefix="bench-naive-", dir=work))
        naive.append(
            child("naive", source=str(source / "products"), out=str(out), files=args.naive_files)
        )
        shutil.rmtree(out)
        print(
            f"  repeat {r + 1}: pipeline {pipeline[-1]['seconds']:.1f} s, naive "
            f"{naive[-1]['seconds']:.1f} s for {naive[-1]['files']:,} files"
        )
        print("    " + ", ".join(f"{k} {v:.1f} s" for k, v in pipeline[-1]["breakdown"].items()))
    rate = args.products_files / median([x["seconds"] for x in pipeline])
    naive_rate = naive[0]["files"] / median([x["seconds"] for x in naive])
    peak = max(x["peak_rss"] for x in pipeline)
    rows.append(
        Row(
            f"products, {args.products_files:,} one-object files: landing -> catalog",
            f"{rate:,.0f} files/s",
            "target 10,000 files/s",
            f"{rate / 10_000:.2f}x the target",
            ">= 10,000 files/s",
            gib(peak),
        )
    )
    rows.append(
        Row(
            "products vs the naive approach (a pandas Parquet file per event)",
            f"{rate:,.0f} files/s",
            f"naive {naive_rate:,.0f} files/s (on {naive[0]['files']:,} files)",
            f"{rate / naive_rate:.1f}x the naive rate",
            "report",
        )
    )
    ours_q = median([x["query_seconds"] for x in pipeline]) / args.products_files
    naive_q = median([x["query_seconds"] for x in naive]) / naive[0]["files"]
    rows.append(
        Row(
            "products: then querying them (GROUP BY over every row, per row)",
            f"table: {ours_q * 1e6:.2f} us/row ({PRODUCT_DAYS} daily files)",
            f"naive: {naive_q * 1e6:.1f} us/row (a file per event)",
            f"{naive_q / ours_q:.0f}x faster",
            "report",
        )
    )


@contextmanager
def counting_scandir() -> Iterator[list[int]]:
    """Count the directory entries the local store's listing reads."""
    import analytics_pipeline.resources.local.store as store_module

    counts = [0]
    real = os.scandir

    class Counted:
        def __init__(self, path: Any) -> None:
            self.inner = real(path)

        def __enter__(self) -> Iterator[os.DirEntry[str]]:
            def entries() -> Iterator[os.DirEntry[str]]:
                for entry in self.inner:
                    counts[0] += 1
                    yield entry

            return entries()

        def __exit__(self, *exc: object) -> None:
            self.inner.close()

    store_module.os.scandir = Counted  # type: ignore[assignment]
    try:
        yield counts
    finally:
        store_module.os.scandir = real


def figure_sensor_tick(work: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    """A tick over landing/ with N processed (archived) objects and 100 new ones."""
    import dagster as dg

    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.defs.sensors import run_config_keys
    from analytics_pipeline.settings import Settings

    def tick(processed: int) -> tuple[float, int, int]:
        lake = Path(tempfile.mkdtemp(prefix="bench-sensor-", dir=work))
        archive = lake / "archive" / "products"
        landing = lake / "landing" / "products"
        for directory in (archive, landing):
            directory.mkdir(parents=True)
        for i in range(processed):
            (archive / f"{i}.json").write_bytes(b"{}")
        for i in range(NEW_ARRIVALS):
            (landing / f"new-{i}.json").write_bytes(b"{}")
        settings = Settings(
            env="local",
            lake_dir=lake,
            partitions_start=date(2020, 1, 1),
            ingest_batch_files=args.batch_files,
            max_landing_file_bytes=1 << 30,
            landing_settle_seconds=0,
        )
        defs = build_definitions(settings)
        sensor = defs.resolve_sensor_def("products_landing_sensor")
        times, entries, requested = [], 0, 0
        with dg.instance_for_test() as instance:
            for _ in range(args.repeat):
                context = dg.build_sensor_context(
                    instance=instance, definitions=defs, resources=dict(defs.resources or {})
                )
                with counting_scandir() as counts:
                    started = time.perf_counter()
                    result = sensor.evaluate_tick(context)
                    times.append(time.perf_counter() - started)
                entries = counts[0]
                requested = sum(
                    len(run_config_keys("products", r.run_config))
                    for r in result.run_requests or []
                )
        shutil.rmtree(lake)
        return median(times), entries, requested

    big = tick(args.processed)
    small = tick(0)
    rows.append(
        Row(
            f"Sensor tick, {args.processed:,} processed + {NEW_ARRIVALS} new objects",
            f"{big[0] * 1000:.0f} ms, {big[1]} entries read, {big[2]} files requested",
            f"0 processed: {small[0] * 1000:.0f} ms, {small[1]} entries read",
            f"{big[0] / small[0]:.2f}x time, {big[1] / max(small[1], 1):.2f}x entries",
            "independent of processed",
        )
    )


def figure_aws(work: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    try:
        from analytics_pipeline.resources.aws.s3_store import S3LakeStore
    except ImportError:
        print("AWS concurrent GETs: skipped: no S3 store yet")
        return
    import socket

    import boto3

    from analytics_pipeline.resources.store import LakeStore

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    saved = {k: os.environ.get(k) for k in (*env.keys(), "AWS_ENDPOINT_URL")}
    try:
        os.environ.update(env)
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3")
        for _ in range(100):
            try:
                s3.list_buckets()
                break
            except Exception:
                time.sleep(0.1)  # the server is starting (a benchmark, not a test)
        s3.create_bucket(Bucket="bench-landing")
        s3.create_bucket(Bucket="bench-lake")
        keys = [f"{i}.json" for i in range(args.aws_objects)]
        body = json.dumps({"id": 1, "date": "2024-05-01", "product": "A"}).encode()
        for key in keys:
            s3.put_object(Bucket="bench-landing", Key=f"landing/products/{key}", Body=body)
        store = S3LakeStore(landing_bucket="bench-landing", lake_bucket="bench-lake")

        def read_all(reader: Callable[..., Any], some: list[str]) -> float:
            started = time.perf_counter()
            n = sum(1 for _, got in reader(store, "products", some, 1 << 20) if got)
            assert n == len(some)
            return time.perf_counter() - started

        concurrent = [read_all(S3LakeStore.read_landing_many, keys) for _ in range(args.repeat)]
        one_by_one = [read_all(LakeStore.read_landing_many, keys) for _ in range(args.repeat)]

        # moto answers from this machine's 2 cores; S3 answers a small GET after tens of ms.
        # A sleep before each send (in the calling thread) stands in for that round trip.
        def round_trip(**_: Any) -> None:
            time.sleep(args.s3_latency_ms / 1000)

        store.s3_client().meta.events.register("before-send.s3.GetObject", round_trip)
        some = keys[: args.latency_objects]
        slow_concurrent = median([read_all(S3LakeStore.read_landing_many, some)])
        slow_one_by_one = median([read_all(LakeStore.read_landing_many, some)])

        # Archiving is a HEAD, a HEAD of the archive path, a server-side COPY and a DELETE
        # per object: every one of them a round trip. Half the objects each way.
        store.s3_client().meta.events.register("before-send.s3", round_trip)

        def archive_all(archiver: Callable[..., Any], some: list[str]) -> float:
            started = time.perf_counter()
            done = [path for _, path in archiver(store, "products", [(k, None) for k in some])]
            assert all(done) and len(done) == len(some)
            return time.perf_counter() - started

        half = len(some) // 2
        archive_concurrent = archive_all(S3LakeStore.archive_landing_many, some[:half])
        archive_one_by_one = archive_all(LakeStore.archive_landing_many, some[half:])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        os.killpg(server.pid, 15)
        server.wait()
    fast, slow = median(concurrent), median(one_by_one)
    rows.append(
        Row(
            f"AWS (moto server): GET {args.aws_objects:,} small landing objects",
            f"concurrent {fast:.1f} s ({args.aws_objects / fast:,.0f}/s)",
            f"one at a time {slow:.1f} s",
            f"{slow / fast:.1f}x faster",
            ">= 8x",
            "moto on the same 2 cores is CPU-bound: no round trips to overlap",
        )
    )
    rows.append(
        Row(
            f"AWS (moto server + {args.s3_latency_ms} ms emulated round trip): GET "
            f"{len(some):,} objects",
            f"concurrent {slow_concurrent:.1f} s",
            f"one at a time {slow_one_by_one:.1f} s",
            f"{slow_one_by_one / slow_concurrent:.1f}x faster",
            ">= 8x",
            "one run each",
        )
    )
    rows.append(
        Row(
            f"AWS (moto server + {args.s3_latency_ms} ms emulated round trip): archive "
            f"{half:,} objects (HEAD, HEAD, COPY, DELETE each)",
            f"concurrent {archive_concurrent:.1f} s",
            f"one at a time {archive_one_by_one:.1f} s",
            f"{archive_one_by_one / archive_concurrent:.1f}x faster",
            "report",
            "one run each",
        )
    )


# --- main ------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return (
        f"{os.cpu_count()} cores ({cpu}), {gib(mem)} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def print_table(rows: list[Row]) -> None:
    print("\n| figure | measured | baseline (same run) | ratio | target | peak memory / notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.figure} | {r.measured} | {r.baseline} | {r.ratio} | {r.target} | {r.peak} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iot-rows", type=int, default=400_000, help="4000000 for the figure")
    parser.add_argument("--products-files", type=int, default=20_000, help="100000 for the figure")
    parser.add_argument("--naive-files", type=int, default=2_000)
    parser.add_argument("--aws-objects", type=int, default=5_000)
    parser.add_argument("--s3-latency-ms", type=float, default=30.0)
    parser.add_argument("--latency-objects", type=int, default=500)
    parser.add_argument("--processed", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--batch-files",
        type=int,
        default=int(os.environ.get("ANALYTICS_INGEST_BATCH_FILES", DEFAULT_INGEST_BATCH_FILES)),
        help="landing files per ingest run (ANALYTICS_INGEST_BATCH_FILES)",
    )
    parser.add_argument(
        "--only", nargs="*", choices=["iot", "products", "sensor", "aws", "api"], default=None
    )
    parser.add_argument(
        "--api-args",
        default="",
        help="for the api figure (benchmarks/api_latency.py), e.g. '--days 365 --repeat 20'",
    )
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # The floor measured is the one the entry points run with.
    use_system_memory_pool()
    if args.child:
        print(json.dumps(CHILDREN[args.child](**json.loads(args.child_args))))
        return 0

    if args.only is None or "api" in args.only:
        from benchmarks import api_latency  # here: FastAPI's import is for this figure only

        api_latency.main(shlex.split(args.api_args))  # prints its own table
        if args.only == ["api"]:
            return 0
    figures = {
        "iot": figure_iot,
        "products": figure_products,
        "sensor": figure_sensor_tick,
        "aws": figure_aws,
    }
    return run_figures("benchmarks.run", argv, args, figures)


def run_figures(
    module: str,
    argv: list[str] | None,
    args: argparse.Namespace,
    figures: Mapping[str, Callable[[Path, argparse.Namespace, list[Row]], Any]],
) -> int:
    """Print the machine and command, run the chosen figures in a scratch dir, print the table."""
    only = set(args.only or figures)
    print(f"machine: {machine()}")
    print(f"command: python -m {module} {' '.join(argv or sys.argv[1:])}".rstrip())
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name, figure in figures.items():
            if name in only:
                figure(Path(tmp), args, rows)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
