"""File -> table in `make dev`: start the dev server as a user does, drop files one at a time,
and time each until its record is in its catalog table; the dev server's idle CPU beside it.

`make -s dev` runs on a temporary DAGSTER_HOME and lake. Each drop is one `products` file
(one record, today's date) dropped after the previous one's runs have ended and a random
pause (so the drops fall at any phase of the daemon's loops); its latency is from the write
to the first catalog query that returns the record. Where the seconds went comes from the
instance: each run created since the drop, with its creation, start and end. Idle CPU is
the CPU seconds of each of the server's processes (from /proc) over `--idle-seconds` with
nothing arriving, before the drops and after them, as % of one core.

    python -m benchmarks.dev_latency                 # 10 drops, 60 s idle windows
    python -m benchmarks.dev_latency --drops 3 --idle-seconds 10
    python -m benchmarks.dev_latency --drops 0     # idle CPU only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from local_servers.dev_server import free_port, stop_process_group, wait_until_up

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DROP_TIMEOUT = 300.0
POLL_SECONDS = 0.2


def process_tree(root: int) -> list[int]:
    """The pid and every descendant of it, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children[ppid].append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def role(pid: int) -> str:
    """Which part of `dagster dev` a process is, by the start of its command line."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "gone"
    words = " ".join(a.decode(errors="replace") for a in argv[:5])
    for needles, name in (
        (("dagster._daemon", "dagster-daemon"), "daemon"),
        (("dagster_webserver", "dagster-webserver"), "webserver"),
        (("code-server", "api grpc"), "code server"),
        (("multiprocessing",), "run worker"),
        (("dagster dev",), "dagster dev"),
    ):
        if any(needle in words for needle in needles):
            return name
    return "other (make, uv)"


def cpu_seconds(pid: int) -> float:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def idle_cpu(root: int, seconds: float) -> dict[str, float]:
    """% of one core each role of the server's process tree used over `seconds`."""
    pids = process_tree(root)
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    usage: dict[str, float] = defaultdict(float)
    for pid in pids:
        usage[role(pid)] += max(0.0, cpu_seconds(pid) - before[pid]) / seconds * 100
    usage["total"] = sum(usage.values())
    return dict(usage)


def record_in_table(lake: Path, record_id: int) -> bool:
    """Whether a user's read-only DuckDB session sees the record in the products table."""
    try:
        con = duckdb.connect(str(lake / "catalog.duckdb"), read_only=True)
    except duckdb.Error:
        return False
    try:
        rows = con.execute("SELECT count(*) FROM products WHERE id = ?", [record_id]).fetchall()
        return rows == [(1,)]
    except duckdb.Error:  # the view does not exist yet
        return False
    finally:
        con.close()


def runs_since(instance: dg.DagsterInstance, since: float) -> list[dg.RunRecord]:
    records = instance.get_run_records(
        dg.RunsFilter(created_after=datetime.fromtimestamp(since, UTC)), ascending=True
    )
    return list(records)


def run_summary(record: dg.RunRecord, dropped: float) -> str:
    run = record.dagster_run
    what = run.job_name
    if run.asset_selection:
        what = ",".join(sorted(k.path[-1] for k in run.asset_selection))
    created = record.create_timestamp.timestamp() - dropped
    start = f"{record.start_time - dropped:.1f}" if record.start_time else "-"
    end = f"{record.end_time - dropped:.1f}" if record.end_time else "-"
    return f"{what} (created {created:.1f}, started {start}, ended {end})"


def wait_for_quiet(instance: dg.DagsterInstance, timeout: float = DROP_TIMEOUT) -> None:
    """Until no run is queued or going, so drops do not compete with each other's runs."""
    deadline = time.monotonic() + timeout
    busy = dg.RunsFilter(
        statuses=[
            dg.DagsterRunStatus.QUEUED,
            dg.DagsterRunStatus.NOT_STARTED,
            dg.DagsterRunStatus.STARTING,
            dg.DagsterRunStatus.STARTED,
        ]
    )
    while instance.get_runs_count(busy) and time.monotonic() < deadline:
        time.sleep(1)


def wait_for_analytics(
    instance: dg.DagsterInstance, dropped: float, timeout: float = 120.0
) -> None:
    """Until a run since the drop has rebuilt daily_product_counts, so the next drop does not
    start beside it (the automation requests it once the table has changed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in runs_since(instance, dropped):
            selection = record.dagster_run.asset_selection or set()
            if record.end_time and any(k.path[-1] == "daily_product_counts" for k in selection):
                return
        time.sleep(1)


def drop_and_time(lake: Path, instance: dg.DagsterInstance, record_id: int) -> float:
    """Seconds from writing one products file to its record being in the products table."""
    day = datetime.now(UTC).date().isoformat()
    landing = lake / "landing" / "products"
    landing.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"id": record_id, "date": day, "product": "ABC"[record_id % 3]})
    dropped = time.time()
    (landing / f"{record_id}.json").write_text(body)
    deadline = time.monotonic() + DROP_TIMEOUT
    while not record_in_table(lake, record_id):
        if time.monotonic() > deadline:
            raise TimeoutError(f"record {record_id} not in the products table in {DROP_TIMEOUT}s")
        time.sleep(POLL_SECONDS)
    seconds = time.time() - dropped
    runs = "; ".join(run_summary(r, dropped) for r in runs_since(instance, dropped - 1))
    print(f"  drop {record_id}: {seconds:5.1f} s   runs: {runs}", flush=True)
    wait_for_analytics(instance, dropped - 1)
    return seconds


def print_idle(label: str, usage: dict[str, float], seconds: float) -> None:
    parts = ", ".join(f"{k} {v:.1f}%" for k, v in sorted(usage.items()) if k != "total")
    total = usage["total"]
    print(f"idle CPU {label} ({seconds:.0f} s, % of one core): total {total:.1f}% ({parts})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--warm-up-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    pause = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-dev-") as tmp:
        home = Path(tmp) / "dagster_home"
        lake = Path(tmp) / "lake"
        port = free_port()
        env = {
            **os.environ,
            "ANALYTICS_LAKE_DIR": str(lake),
            "DAGSTER_HOME": str(home),
            "DAGSTER_PORT": str(port),
        }
        log = Path(tmp) / "make-dev.log"
        with open(log, "wb") as out:
            # Its own session, stopped by its group: `dagster dev` ignores SIGTERM otherwise.
            server = subprocess.Popen(
                ["make", "-s", "dev"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            started = time.monotonic()
            wait_until_up(f"http://127.0.0.1:{port}", server, log)
            print(f"make dev answered in {time.monotonic() - started:.1f} s", flush=True)
            time.sleep(args.warm_up_seconds)  # the daemon's first ticks and code load
            before = idle_cpu(server.pid, args.idle_seconds)
            print_idle("before the drops", before, args.idle_seconds)
            instance = dg.DagsterInstance.from_config(str(home))
            latencies = []
            for record_id in range(1, args.drops + 1):
                wait_for_quiet(instance)
                time.sleep(pause.uniform(0, 5))
                latencies.append(drop_and_time(lake, instance, record_id))
            if not latencies:
                return
            wait_for_quiet(instance)
            time.sleep(args.warm_up_seconds)
            after = idle_cpu(server.pid, args.idle_seconds)
            print_idle("after the drops", after, args.idle_seconds)
            print(
                f"file -> table over {len(latencies)} drops: median "
                f"{statistics.median(latencies):.1f} s (min {min(latencies):.1f}, max "
                f"{max(latencies):.1f}); target <= 15 s"
            )
        finally:
            stop_process_group(server)


if __name__ == "__main__":
    main()
