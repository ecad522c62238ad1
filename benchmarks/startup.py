"""Process start: `make process` on an empty lake, the python command alone, and where the
import time goes (`python -X importtime`, top modules by cumulative time).

    python -m benchmarks.startup --repeat 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROCESS = [sys.executable, "-m", "analytics_pipeline.cli.process"]


def wall(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def import_breakdown(env: dict[str, str], top: int) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest imports of `make process`'s command."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *PROCESS[1:]],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows = []
    for line in out.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        env = {
            **os.environ,
            "ANALYTICS_LAKE_DIR": f"{tmp}/lake",
            "DAGSTER_HOME": f"{tmp}/dagster_home",
        }
        make = ["make", "-s", "process"]
        makes = [wall(make, env) for _ in range(args.repeat)]
        pythons = [wall(PROCESS, env) for _ in range(args.repeat)]
        print(
            f"make process, empty lake: median {statistics.median(makes):.2f} s "
            f"(repeats {', '.join(f'{s:.2f}' for s in makes)}); target <= 2 s"
        )
        print(
            f"python -m analytics_pipeline.cli.process alone: median "
            f"{statistics.median(pythons):.2f} s (repeats {', '.join(f'{s:.2f}' for s in pythons)})"
        )
        print(f"import time, top {args.top} by cumulative (python -X importtime):")
        for micros, name in import_breakdown(env, args.top):
            print(f"  {micros / 1e6:6.2f} s  {name}")


if __name__ == "__main__":
    main()
