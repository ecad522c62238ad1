"""Load figures of issue 7: a landing burst, one huge NDJSON file, the sensor under a backlog.

Each figure beside a baseline measured in the same run, as a ratio; every measurement in a
child process, so its peak RSS (VmHWM) is its own. Never a pass/fail test.

    python -m benchmarks.load --quick          # 5,000 files, a 256 MiB file
    python -m benchmarks.load                  # 50,000 files, a 2 GiB file
    python -m benchmarks.load --only big --big-bytes 4294967296

(1) burst: N one-object products files through `make process`'s code path (process_landing on
    build_definitions), taken ANALYTICS_INGEST_BATCH_FILES (--batch-files) per ingest run;
    baseline: one batch's worth of files, same code path.
(2) big: one iot_sensor_data NDJSON file staged streamed (stage_landing_files, then the batch
    reconciliation the ingest op runs); baseline: pyarrow read_json of the same file, whole
    (the floor: what reading it costs at all; its memory grows with the file).
(3) sensor: one products landing-sensor tick with N files waiting vs 100 waiting.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from benchmarks.run import (
    Row,
    copy_iot_ndjson,
    fresh_lake,
    generate_products,
    gib,
    median,
    peak_rss_bytes,
    run_figures,
)

GiB = 1 << 30
MiB = 1 << 20
NOW = datetime(2024, 6, 1, 12)
START = date(2020, 1, 1)


def child(kind: str, **kwargs: Any) -> dict[str, Any]:
    """One measurement in a fresh interpreter; it prints one JSON line."""
    cmd = [sys.executable, "-m", "benchmarks.load", "--child", kind, "--child-args"]
    out = subprocess.run([*cmd, json.dumps(kwargs)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- data ------------------------------------------------------------------------------------


def generate_big_iot(path: Path, size: int) -> int:
    """One NDJSON file of string-valued readings over 7 days, about `size` bytes; its rows."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    line = 150  # bytes per reading, about, as DuckDB writes them
    rows = max(1000, size // line)
    con = duckdb.connect()
    copy_iot_ndjson(
        con,
        path,
        rows,
        deviceid="1000 + i % 500",
        seconds=f"(i * 604800) // {rows}",
        first_day="2024-05-01",
    )
    con.close()
    return rows


# --- child measurements ----------------------------------------------------------------------


def run_pipeline(lake: str, batch_files: int) -> dict[str, Any]:
    from benchmarks.run import run_pipeline as pipeline

    return pipeline(lake, batch_files)


def run_stage_big(lake: str, key: str, stream_threshold: int) -> dict[str, Any]:
    """What the ingest op does with one file: stage it (streamed above the threshold), then
    reconcile the batch; and the whole-dataset reconciliation check, timed apart."""
    from analytics_pipeline.datasets import dataset
    from analytics_pipeline.lake.reconciliation import reconcile_dataset, reconcile_files
    from analytics_pipeline.lake.staging import stage_landing_files
    from analytics_pipeline.resources.local.store import LocalLakeStore

    spec = dataset("iot_sensor_data")
    store = LocalLakeStore(lake_dir=lake)
    started = time.perf_counter()
    report = stage_landing_files(
        store,
        spec,
        [key],
        start=START,
        now=NOW,
        max_file_bytes=GiB,
        stream_threshold_bytes=stream_threshold,
    )
    staged = time.perf_counter() - started
    batch = reconcile_files(
        store,
        spec,
        {(f.key, f.version): f.records for f in report.files if f.version is not None},
        report.staged_paths,
    )
    seconds = time.perf_counter() - started
    peak_ingest = peak_rss_bytes()
    started = time.perf_counter()
    whole = reconcile_dataset(
        store,
        spec,
        start=START,
        now=NOW,
        max_file_bytes=GiB,
        stream_threshold_bytes=stream_threshold,
    )
    return {
        "seconds": seconds,
        "stage_seconds": staged,
        "peak_rss": peak_ingest,
        "records": report.records,
        "staged": report.staged,
        "rejected": report.rejected,
        "staged_files": len(report.staged_paths),
        "reconciled": batch.passed,
        "check_seconds": time.perf_counter() - started,
        "check_passed": whole.passed,
        "peak_rss_with_check": peak_rss_bytes(),
    }


def run_floor(path: str) -> dict[str, Any]:
    """pyarrow read_json of the whole file (every field a string), or, if asked, a plain read."""
    import pyarrow as pa
    import pyarrow.json as pj

    from analytics_pipeline.datasets import dataset

    strings = pa.schema([(f.name, pa.string()) for f in dataset("iot_sensor_data").fields])
    started = time.perf_counter()
    table = pj.read_json(path, parse_options=pj.ParseOptions(explicit_schema=strings))
    return {
        "seconds": time.perf_counter() - started,
        "rows": table.num_rows,
        "peak_rss": peak_rss_bytes(),
    }


def run_read_bytes(path: str) -> dict[str, Any]:
    started = time.perf_counter()
    with open(path, "rb") as handle:
        while handle.read(8 * MiB):
            pass
    return {"seconds": time.perf_counter() - started, "peak_rss": peak_rss_bytes()}


def run_sensor_tick(lake: str, batch_files: int, repeat: int) -> dict[str, Any]:
    import dagster as dg

    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.defs.sensors import run_config_keys
    from analytics_pipeline.settings import Settings

    settings = Settings(
        env="local",
        lake_dir=Path(lake),
        partitions_start=START,
        ingest_batch_files=batch_files,
        max_landing_file_bytes=GiB,
        landing_settle_seconds=0,
    )
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("products_landing_sensor")
    times, runs, files = [], 0, 0
    with dg.instance_for_test() as instance:
        for _ in range(repeat):
            context = dg.build_sensor_context(
                instance=instance, definitions=defs, resources=dict(defs.resources or {})
            )
            started = time.perf_counter()
            result = sensor.evaluate_tick(context)
            times.append(time.perf_counter() - started)
            requests = result.run_requests or []
            runs = len(requests)
            files = sum(len(run_config_keys("products", r.run_config)) for r in requests)
    return {"seconds": median(times), "runs": runs, "files": files, "peak_rss": peak_rss_bytes()}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "pipeline": run_pipeline,
    "stage_big": run_stage_big,
    "floor": run_floor,
    "read_bytes": run_read_bytes,
    "sensor_tick": run_sensor_tick,
}


# --- figures ---------------------------------------------------------------------------------


def figure_burst(work: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    source = work / "source"
    started = time.perf_counter()
    generate_products(source, args.burst_files)
    print(f"generated {args.burst_files:,} products files in {time.perf_counter() - started:.0f} s")
    lake = fresh_lake(source, "products")
    burst = child("pipeline", lake=str(lake), batch_files=args.batch_files)
    shutil.rmtree(lake)
    # Baseline: one batch's worth of the same files, same code path.
    one = work / "one-batch"
    (one / "products").mkdir(parents=True)
    for path in sorted((source / "products").iterdir())[: args.batch_files]:
        (one / "products" / path.name).hardlink_to(path)
    lake = fresh_lake(one, "products")
    base = child("pipeline", lake=str(lake), batch_files=args.batch_files)
    shutil.rmtree(lake)
    base_files = min(args.batch_files, args.burst_files)
    rate = args.burst_files / burst["seconds"]
    base_rate = base_files / base["seconds"]
    expected_runs = math.ceil(args.burst_files / args.batch_files)
    print(
        f"  burst: {burst['seconds']:.1f} s, {burst['ingest_runs']} ingest runs "
        f"(expected {expected_runs}), {burst['automation_runs']} automation runs, "
        f"{burst['failed']} failed, peak {gib(burst['peak_rss'])}"
    )
    print("    " + ", ".join(f"{k} {v:.1f} s" for k, v in burst["breakdown"].items()))
    rows.append(
        Row(
            f"Landing burst: {args.burst_files:,} products files, {args.batch_files:,} per "
            "ingest run: landing -> catalog",
            f"{burst['ingest_runs']} ingest runs of <= {args.batch_files:,} files "
            f"(+{burst['automation_runs']} automation), {rate:,.0f} files/s, "
            f"{burst['failed']} failed",
            f"one batch ({base_files:,} files): {base_rate:,.0f} files/s, "
            f"peak {gib(base['peak_rss'])}",
            f"{rate / base_rate:.2f}x the rate, {burst['peak_rss'] / base['peak_rss']:.2f}x the "
            "peak",
            "bounded batches; memory flat",
            f"peak {gib(burst['peak_rss'])}",
        )
    )


def figure_big(work: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    lake = work / "big-lake"
    path = lake / "landing" / "iot_sensor_data" / "big.ndjson"
    started = time.perf_counter()
    generated_rows = generate_big_iot(path, args.big_bytes)
    size = path.stat().st_size
    print(
        f"generated one IoT file of {size / GiB:.2f} GiB ({generated_rows:,} rows) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    # The floor first (it reads the landing file in place; staging archives it).
    if size <= args.floor_max_bytes:
        floor = child("floor", path=str(path))
        floor_what = "pyarrow read_json of the whole file"
    else:
        floor = child("read_bytes", path=str(path))
        floor_what = "reading its bytes (too big for read_json here)"
    staged = child(
        "stage_big", lake=str(lake), key="big.ndjson", stream_threshold=args.stream_threshold
    )
    print(
        f"  streamed: {staged['seconds']:.1f} s (staging {staged['stage_seconds']:.1f} s), "
        f"{staged['records']:,} records, {staged['staged']:,} staged, "
        f"{staged['rejected']} rejected, {staged['staged_files']} staged files, reconciled "
        f"{staged['reconciled']}, peak {gib(staged['peak_rss'])}; whole-dataset check "
        f"{staged['check_seconds']:.1f} s (passed {staged['check_passed']}), peak with it "
        f"{gib(staged['peak_rss_with_check'])}"
    )
    print(f"  floor ({floor_what}): {floor['seconds']:.1f} s, peak {gib(floor['peak_rss'])}")
    shutil.rmtree(lake)
    rows.append(
        Row(
            f"One IoT NDJSON file of {size / GiB:.2f} GiB ({staged['records']:,} rows), staged "
            "streamed + batch reconciliation",
            f"{staged['seconds']:.1f} s, peak RSS {gib(staged['peak_rss'])} "
            f"({staged['peak_rss'] / size:.2f}x the file)",
            f"floor: {floor_what}: {floor['seconds']:.1f} s, peak {gib(floor['peak_rss'])}",
            f"{staged['seconds'] / floor['seconds']:.1f}x the floor's time, "
            f"{staged['peak_rss'] / floor['peak_rss']:.2f}x its memory",
            "memory bounded, independent of file size",
            f"whole-dataset reconciliation check {staged['check_seconds']:.1f} s, "
            f"peak {gib(staged['peak_rss_with_check'])}",
        )
    )


def figure_sensor(work: Path, args: argparse.Namespace, rows: list[Row]) -> None:
    def tick(waiting: int) -> dict[str, Any]:
        lake = Path(tempfile.mkdtemp(prefix="load-sensor-", dir=work))
        landing = lake / "landing" / "products"
        landing.mkdir(parents=True)
        for i in range(waiting):
            (landing / f"{i}.json").write_bytes(b"{}")
        try:
            return child(
                "sensor_tick", lake=str(lake), batch_files=args.batch_files, repeat=args.repeat
            )
        finally:
            shutil.rmtree(lake)

    big = tick(args.burst_files)
    small = tick(100)
    print(
        f"  sensor tick: {args.burst_files:,} waiting {big['seconds'] * 1000:.0f} ms "
        f"({big['runs']} runs, {big['files']:,} files), 100 waiting "
        f"{small['seconds'] * 1000:.0f} ms"
    )
    rows.append(
        Row(
            f"Landing sensor tick with {args.burst_files:,} files waiting",
            f"{big['seconds'] * 1000:.0f} ms, {big['runs']} run requests of <= "
            f"{args.batch_files:,} files ({big['files']:,} files)",
            f"100 waiting: {small['seconds'] * 1000:.0f} ms, {small['runs']} run request",
            f"{big['seconds'] / small['seconds']:.1f}x the time for "
            f"{args.burst_files / 100:.0f}x the files",
            "keeps up: well under the 30 s tick",
            f"peak {gib(big['peak_rss'])}",
        )
    )


# --- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 files, a 256 MiB file")
    parser.add_argument("--burst-files", type=int, default=None, help="default 50,000")
    parser.add_argument("--big-bytes", type=int, default=None, help="default 2 GiB")
    parser.add_argument(
        "--batch-files", type=int, default=2000, help="ANALYTICS_INGEST_BATCH_FILES"
    )
    parser.add_argument("--stream-threshold", type=int, default=64 * MiB)
    parser.add_argument(
        "--floor-max-bytes",
        type=int,
        default=4 * GiB,
        help="above this the floor is a plain read of the bytes, not read_json",
    )
    parser.add_argument("--repeat", type=int, default=3, help="sensor ticks (median)")
    parser.add_argument("--only", nargs="*", choices=["burst", "big", "sensor"], default=None)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](**json.loads(args.child_args))))
        return 0
    if args.burst_files is None:
        args.burst_files = 5_000 if args.quick else 50_000
    if args.big_bytes is None:
        args.big_bytes = 256 * MiB if args.quick else 2 * GiB

    figures = {"burst": figure_burst, "big": figure_big, "sensor": figure_sensor}
    return run_figures("benchmarks.load", argv, args, figures)


if __name__ == "__main__":
    sys.exit(main())
