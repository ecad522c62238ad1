"""Two runs for the same partition at once: the table's lake lock lets only one of them write.

Two real processes share one Dagster instance ($DAGSTER_HOME with no pool limit: SQLite, and
for the locked case also the production PostgreSQL storage) and one lake, and each
materializes products/parquet for the same day. Inside its write, each run waits for the
other to enter its write too (for a while once both are launched). Under the lock the other
never can, and the writes take turns; with the lock made a no-op in both processes, the same
two runs meet inside the write, which shows the test sees an overlap when there is one,
however slowly the processes start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.staging import stage_landing_files
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.instance_storage import STORAGES, dagster_home_on
from analytics_pipeline_tests.lake_helpers import drop

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DAY = "2024-03-01"
# How long a write waits for the other run to reach its write too. Under the lock the other
# run cannot, and this is the time it was given to try; without the lock it arrives (the
# wait ends as soon as it does), and both are inside the write at once however slowly the
# two processes started.
MEET_SECONDS_UNDER_LOCK = 15.0
MEET_SECONDS_WITHOUT = 150.0

_RUN = textwrap.dedent(
    """
    import contextlib, json, os, sys, time
    import dagster as dg
    import analytics_pipeline.resources.day_builder as day_builder
    from analytics_pipeline.defs.keys import parquet_key
    from analytics_pipeline.cli.process import headless_definitions
    from analytics_pipeline.resources.local.store import LocalLakeStore
    from analytics_pipeline.settings import Settings

    log, day, meet_seconds, me = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    if sys.argv[5] == "no-lock":
        LocalLakeStore.table_lock = lambda self, table, owner="": contextlib.nullcontext()
    other = "b" if me == "a" else "a"
    real_write = day_builder.write_partition

    def marked(name):
        return os.path.exists(f"{log}.{name}")

    def slow_write(*args, **kwargs):
        started = time.time()
        open(f"{log}.entered-{me}", "w").close()
        # Wait for the other run to be launched, then give it meet_seconds to enter too.
        while not marked(f"launched-{other}") and time.time() - started < 120:
            time.sleep(0.05)
        waited_from = time.time()
        while not marked(f"entered-{other}") and time.time() - waited_from < meet_seconds:
            time.sleep(0.05)
        time.sleep(0.5)
        written = real_write(*args, **kwargs)
        with open(log, "a") as out:
            out.write(json.dumps([started, time.time()]) + "\\n")
        return written

    day_builder.write_partition = slow_write
    defs = headless_definitions(Settings.from_env())
    with dg.DagsterInstance.get() as instance:
        open(f"{log}.launched-{me}", "w").close()
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[parquet_key("products")], partition_key=day
        )
    sys.exit(0 if result.success else 1)
    """
)


def _two_runs_at_once(
    tmp_path: Path, lake_dir: Path, dagster_home: Path, meet_seconds: float, lock: str = "lock"
) -> list[list[float]]:
    log = tmp_path / "writes.jsonl"
    # Create the instance's SQLite storages once, as `dagster dev` does before any run: two
    # processes creating them at the same moment race in Dagster's own migrations.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)
        instance.fetch_materializations(dg.AssetKey("none"), limit=1)
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "ANALYTICS_LAKE_DIR": str(lake_dir),
        "DAGSTER_HOME": str(dagster_home),
    }
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUN, str(log), DAY, str(meet_seconds), me, lock],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for me in ("a", "b")
    ]
    try:
        outputs = [run.communicate(timeout=400)[0].decode() for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    return sorted(json.loads(line) for line in log.read_text().splitlines())


@pytest.fixture
def staged_lake(lake_dir: Path) -> Path:
    for n in range(3):
        record = {"id": n, "date": DAY, "product": "A"}
        drop(lake_dir, "products", f"{n}.json", json.dumps(record))
    stage_landing_files(
        LocalLakeStore(lake_dir=str(lake_dir)),
        dataset("products"),
        [f"{n}.json" for n in range(3)],
        start=date(2020, 1, 1),
        now=datetime(2024, 6, 1),
        max_file_bytes=1 << 20,
    )
    return lake_dir


@pytest.fixture
def home_without_pools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """A Dagster home whose dagster.yaml sets no pool limit: pools are unlimited."""
    storage = getattr(request, "param", "sqlite")
    home = tmp_path / "dagster_home"
    return dagster_home_on(storage, home, request, monkeypatch, pools=False)


@pytest.mark.parametrize("home_without_pools", STORAGES, indirect=True)
def test_the_lake_lock_makes_two_writes_of_one_table_take_turns_without_pools(
    tmp_path: Path, staged_lake: Path, home_without_pools: Path
) -> None:
    first, second = _two_runs_at_once(
        tmp_path, staged_lake, home_without_pools, MEET_SECONDS_UNDER_LOCK
    )
    assert second[0] >= first[1], f"writes overlapped: {first} and {second}"
    # The second run found the same rows already written: one version, each record once.
    [version] = (staged_lake / "parquet" / "products" / f"dt={DAY}").iterdir()
    newest = pq.read_table(next(version.glob("part-*.parquet")))
    assert sorted(newest.column("id").to_pylist()) == [0, 1, 2]


def test_without_the_lock_the_same_two_writes_overlap(
    tmp_path: Path, staged_lake: Path, home_without_pools: Path
) -> None:
    first, second = _two_runs_at_once(
        tmp_path, staged_lake, home_without_pools, MEET_SECONDS_WITHOUT, lock="no-lock"
    )
    assert second[0] < first[1], "the control runs did not overlap; the test proves nothing"
