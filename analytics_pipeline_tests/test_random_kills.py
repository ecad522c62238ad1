"""`make process` SIGKILLed at random moments (once or twice), then run to the end: every valid
landing record is served exactly once, no pool slot outlives its run, no version is left
beside the registered one.

Short here; a long run: KILL_TEST_ITERATIONS=30 (KILL_TEST_SEED picks the kill times). Each
kill's phase (which run it interrupted, and whether that run held a pool slot) is printed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from analytics_pipeline.cli.dagster_home import ensure_dagster_home
from analytics_pipeline.cli.sample_data import generate
from analytics_pipeline.datasets import dataset
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.settings import MOVIE_RENTAL_FILE
from analytics_pipeline_tests.lake_helpers import landing_files, query

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ITERATIONS = int(os.environ.get("KILL_TEST_ITERATIONS", "2"))
SEED = int(os.environ.get("KILL_TEST_SEED", "14"))
DATASETS = os.environ.get("KILL_TEST_DATASETS", "products").split(",")
DAYS = int(os.environ.get("KILL_TEST_DAYS", "20"))
SCALE = float(os.environ.get("KILL_TEST_SCALE", "0.2"))
# A whole `make process` of the default sample takes about 20 s here, the first 8 s or so
# starting Python and Dagster; kills land anywhere from there to its end.
_FIRST, _LAST = os.environ.get("KILL_TEST_WINDOW", "6,22").split(",")
KILL_WITHIN_SECONDS = (float(_FIRST), float(_LAST))
FINISH_TIMEOUT = 900


@dataclass(frozen=True)
class Lake:
    dir: Path
    home: Path
    expected: dict[str, dict[str, int]]  # table -> day -> valid records

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "ANALYTICS_LAKE_DIR": str(self.dir),
            "DAGSTER_HOME": str(self.home),
        }


def fresh_lake(base: Path, seed: int) -> Lake:
    """Sample data over DAYS days, only the datasets under test left in landing."""
    summary = generate(base / "lake", end_date=date(2024, 6, 30), days=DAYS, seed=seed, scale=SCALE)
    for other in summary.datasets.keys() - set(DATASETS):
        shutil.rmtree(base / "lake" / "landing" / other)
    # The database source is not under test here: its extract would take the kill window.
    (base / "lake" / MOVIE_RENTAL_FILE).unlink()
    tables = {t.name for name in DATASETS for t in dataset(name).tables}
    expected = {t: days for t, days in summary.table_days.items() if t in tables}
    ensure_dagster_home(base / "home")
    return Lake(base / "lake", base / "home", expected)


def start_process(lake: Lake) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "analytics_pipeline.cli.process"],
        cwd=lake.dir.parent,
        env=lake.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, killed as `kill -9 -PGID` would
    )


def kill_after(lake: Lake, seconds: float) -> str:
    """SIGKILL `make process`'s process group `seconds` after its start; what it was doing."""
    process = start_process(lake)
    try:
        process.communicate(timeout=seconds)
        return "finished before the kill"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
    with dg.DagsterInstance.from_config(str(lake.home)) as instance:
        unfinished = [r for r in instance.get_runs() if not r.is_finished]
        holding = instance.event_log_storage.get_concurrency_run_ids()
        if not unfinished:
            return "between runs"
        [run] = unfinished  # make process runs one at a time
        phase = "ingest" if run.job_name.startswith("ingest_") else "automation"
        return phase + (" holding a pool slot" if run.run_id in holding else "")


def finish(lake: Lake) -> None:
    process = start_process(lake)
    try:
        _, stderr = process.communicate(timeout=FINISH_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]


def assert_served_exactly_once(lake: Lake) -> None:
    for name in DATASETS:
        assert landing_files(lake.dir, name) == []
        for table in dataset(name).tables:
            served = dict(query(lake.dir, f"SELECT dt, count(*) FROM {table.name} GROUP BY dt"))
            assert served == lake.expected[table.name], table.name
            key = ", ".join(table.key)
            duplicated = query(
                lake.dir,
                f"SELECT {key}, count(*) FROM {table.name} GROUP BY {key} HAVING count(*) > 1",
            )
            assert duplicated == [], table.name


def assert_no_slot_outlives_its_run(lake: Lake) -> None:
    with dg.DagsterInstance.from_config(str(lake.home)) as instance:
        holders = instance.event_log_storage.get_concurrency_run_ids()
        finished = [run_id for run_id in holders if instance.get_run_by_id(run_id) is None]
        finished += [r.run_id for r in instance.get_runs() if r.is_finished and r.run_id in holders]
        assert finished == []


def assert_only_registered_versions(lake: Lake) -> None:
    catalog = DuckDBCatalog(lake_dir=str(lake.dir))
    for table in catalog.tables():
        registered = {
            f"dt={dt}/{Path(location).parent.name}"
            for dt, location in catalog.partitions(table).items()
        }
        base = lake.dir / "parquet" / table
        on_disk = {str(p.relative_to(base)) for p in base.glob("dt=*/*")}
        assert on_disk == registered, table
        temp_files = [p for p in base.rglob(".*") if p.is_file()]
        assert temp_files == [], table


# pytest-timeout's default is for one iteration's worth; a long run needs its own.
@pytest.mark.timeout(120 + 300 * ITERATIONS)
def test_make_process_after_random_kills_serves_every_record_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    for iteration in range(ITERATIONS):
        lake = fresh_lake(tmp_path / f"lake-{iteration}", seed=rng.randrange(1_000))
        kills = [rng.uniform(*KILL_WITHIN_SECONDS) for _ in range(rng.choice([1, 2]))]
        phases = [kill_after(lake, seconds) for seconds in kills]
        print(
            f"iteration {iteration}: "
            + "; ".join(f"killed at {s:.1f}s: {p}" for s, p in zip(kills, phases, strict=True))
        )
        finish(lake)
        assert_served_exactly_once(lake)
        assert_no_slot_outlives_its_run(lake)
        assert_only_registered_versions(lake)
        shutil.rmtree(lake.dir.parent)


# `make process` with the ingest run killed after its files are staged, its days recorded
# and its files archived, before the run ends (its reconciliation is next): a window of a
# second or so in the random test.
_KILLED_AFTER_ARCHIVING = """
import os, signal
import analytics_pipeline.defs.ingest as ingest
from analytics_pipeline.cli.process import main

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

ingest.reconcile_files = die
main([])
"""


def test_an_ingest_killed_after_archiving_before_its_run_ends_is_served(
    tmp_path: Path,
) -> None:
    lake = fresh_lake(tmp_path, seed=3)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_ARCHIVING],
        cwd=tmp_path,
        env=lake.env,
        capture_output=True,
        timeout=FINISH_TIMEOUT,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-3000:]
    assert all(landing_files(lake.dir, name) == [] for name in DATASETS)  # all archived
    finish(lake)
    assert_served_exactly_once(lake)
    assert_no_slot_outlives_its_run(lake)
    assert_only_registered_versions(lake)
