"""`make bench` keeps working: every figure runs end to end at a tiny size (no timing asserted).

The benchmarks are measurements, never pass/fail on speed; this only checks that each one
still runs the real pipeline and prints its row, so a change to what they call is caught
here and not by the next person who runs them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run a benchmark command from the project root, its scratch files under tmp_path."""
    return subprocess.run(
        [sys.executable, *command],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_every_benchmark_figure_runs_at_a_tiny_size(tmp_path: Path):
    args = ["--iot-rows", "8000", "--products-files", "300", "--naive-files", "30"]
    args += ["--aws-objects", "40", "--latency-objects", "20", "--processed", "300"]
    args += ["--api-args", "--days 3 --requests-per-day 400 --repeat 2"]
    result = run_benchmark(tmp_path, "-m", "benchmarks.run", *args, "--repeat", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    figures = [line.split(" | ")[0] for line in table[1:]]  # after the header row
    for expected in ("| IoT NDJSON", "| Query pruning", "| products, 300", "| Sensor tick"):
        assert any(f.startswith(expected) for f in figures), (expected, figures)
    assert any("AWS" in f for f in figures), figures
    assert "0 failed" in result.stdout
    assert "| user (reseller=client-00/reseller-00) | 1 year (3 d) |" in result.stdout


def test_the_aws_sensor_tick_benchmark_runs_at_a_tiny_size(tmp_path: Path):
    result = run_benchmark(
        tmp_path, "benchmarks/sensor_tick.py", "--existing", "300", "--new", "10"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SQS queue:" in result.stdout


def test_the_spread_workloads_run_at_a_tiny_size_with_both_floors(tmp_path: Path):
    # The backfill's setup is a products workload (one-object files spread over days): the
    # separate products workload would add three more process starts and nothing to check.
    args = ["--only", "iot", "backfill", "--iot-rows", "4000", "--iot-days", "7"]
    args += ["--backfill-days", "9"]
    result = run_benchmark(tmp_path, "-m", "benchmarks.spread", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    names = [line.split(" | ")[0] for line in rows]
    for expected in ("| IoT 4,000 rows", "| products one file per day", "| UI-style backfill"):
        assert any(n.startswith(expected) for n in names), (expected, names)
    # The Dagster floor replays the runs the pipeline made: ingest and ranged runs both.
    assert all("ranged runs" in line and "0 materializations" not in line for line in rows)
    assert any(", 1 ingest runs" in line or "1 ingest runs," in line for line in rows), rows
    # One-object files: the archive's moves of the same files, timed alone beside the floors.
    setup = next(line for line in rows if line.startswith("| products one file per day"))
    assert setup.rstrip(" |").endswith("of the floors)"), setup


def test_repeats_of_a_spread_workload_give_medians_and_the_ratios_range():
    from benchmarks.spread import combine, row, spread_of

    shape = {"ingest runs": 1}
    runs = [
        {"seconds": wall, "cpu": wall, "peak_rss": peak}
        for wall, peak in ((10.0, 1 << 30), (13.0, 2 << 30), (11.0, 1 << 29))
    ]
    repeats = [
        row("w", run, 2.0, floor, 7, 100, shape, 1.0)
        for run, floor in zip(runs, (6.0, 8.0, 9.0), strict=True)
    ]
    combined = combine(repeats)
    assert combined["wall"] == 11.0 and combined["dagster"] == 8.0
    assert combined["peak"] == 2 << 30 and combined["archive"] == 1.0
    # The median of each repeat's own ratio, not the ratio of the medians (11 / 10).
    assert combined["ratios"] == [1.0, 1.25, 1.3]
    assert combined["ratio"] == 1.25
    assert spread_of(combined["ratios"]) == " (1.00-1.30 over 3)"
    assert spread_of([1.2]) == ""


def test_the_startup_and_automation_tick_benchmarks_run_at_a_tiny_size(tmp_path: Path):
    startup = run_benchmark(tmp_path, "-m", "benchmarks.startup", "--repeat", "1", "--top", "3")
    assert startup.returncode == 0, startup.stderr[-3000:]
    assert "make process, empty lake: median" in startup.stdout
    assert len([line for line in startup.stdout.splitlines() if line.startswith("  ")]) == 3
    tick = run_benchmark(
        tmp_path, "-m", "benchmarks.automation_tick", "--years", "0.02", "--ticks", "1"
    )
    assert tick.returncode == 0, tick.stderr[-3000:]
    assert "| 0.02 years of products days (7 x 4 assets) |" in tick.stdout


def test_the_dev_latency_benchmark_runs_make_dev_and_times_a_drop(tmp_path: Path):
    args = ["--drops", "1", "--idle-seconds", "2", "--warm-up-seconds", "0"]
    result = run_benchmark(tmp_path, "-m", "benchmarks.dev_latency", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "file -> table over 1 drops: median" in result.stdout
    assert "runs: ingest_products (created" in result.stdout
    idle = [line for line in result.stdout.splitlines() if line.startswith("idle CPU")]
    assert len(idle) == 2 and all("daemon" in line for line in idle), idle


def test_the_api_latency_benchmark_runs_at_a_tiny_size(tmp_path: Path):
    args = ["--days", "2", "--requests-per-day", "400", "--repeat", "2"]
    result = run_benchmark(
        tmp_path, "-m", "benchmarks.run", "--only", "api", "--api-args", " ".join(args)
    )

    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 12  # 4 levels x 3 ranges
    assert all(line.endswith("x |") for line in rows), rows


def test_the_instance_storage_benchmark_runs_at_a_tiny_size(tmp_path: Path):
    result = run_benchmark(
        tmp_path, "-m", "benchmarks.instance_storage", "--days", "2", "--repeat", "1"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows] == ["| sqlite", "| postgres"], rows
    assert rows[0].endswith("| 1.00x |")


def test_the_source_extract_benchmark_runs_at_a_tiny_size(tmp_path: Path):
    result = run_benchmark(tmp_path, "-m", "benchmarks.source_extract", "--rows", "2000")
    assert result.returncode == 0, result.stderr[-3000:]  # it checks the lake's rows itself
    assert "| 2,000 rentals over 365 days: the extract_movie_rental job, in a" in result.stdout
    assert "| 2,000 rentals over 365 days: initial extract_and_serve alone |" in result.stdout
    assert "| the same job again, nothing changed in the source " in result.stdout
    assert "| the hourly run (recent) after " in result.stdout
    assert "| the hourly run (spread) after " in result.stdout
