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


def test_the_api_latency_benchmark_runs_at_a_tiny_size(tmp_path: Path):
    args = ["--days", "2", "--requests-per-day", "400", "--repeat", "2"]
    result = run_benchmark(
        tmp_path, "-m", "benchmarks.run", "--only", "api", "--api-args", " ".join(args)
    )

    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 12  # 4 levels x 3 ranges
    assert all(line.endswith("x |") for line in rows), rows
