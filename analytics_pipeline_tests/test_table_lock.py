"""The local table lock: an flock on locks/<table>.lock, held across processes, freed by the
kernel when its holder dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest

from analytics_pipeline.datasets import dataset
from analytics_pipeline.definitions import (
    RESOURCES_BY_DEPLOYMENT,
    build_definitions,
    local_resources,
)
from analytics_pipeline.defs.keys import analytics_key, parquet_key, table_key
from analytics_pipeline.lake.staging import stage_landing_files
from analytics_pipeline.resources.lake_lock import TableLockTimeout, table_locks
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import drop

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Takes the lock, says so, and releases it when told (a line on stdin), logging just before.
_HOLDER = textwrap.dedent(
    """
    import sys
    from analytics_pipeline.resources.local.store import LocalLakeStore

    lake, log = sys.argv[1], sys.argv[2]
    with LocalLakeStore(lake_dir=lake).table_lock("products", owner="run holder-run"):
        print("held", flush=True)
        sys.stdin.readline()
        with open(log, "a") as out:
            out.write("holder releasing\\n")
    """
)


@pytest.fixture
def holder(lake_dir: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the products lock until its stdin gets a line."""
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lake_dir), str(tmp_path / "order.log")],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "held\n"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_the_lock_file_is_a_top_level_lake_directory_not_the_tables_location(
    store: LocalLakeStore, lake_dir: Path
) -> None:
    with store.table_lock("products", owner="run r1"):
        assert (lake_dir / "locks" / "products.lock").is_file()
    assert not (lake_dir / "parquet" / "products").exists()


def test_a_second_process_waits_then_fails_naming_the_table_and_the_holder(
    lake_dir: Path, holder: subprocess.Popen[str]
) -> None:
    store = LocalLakeStore(lake_dir=str(lake_dir), lock_wait_seconds=0.3)
    with pytest.raises(TableLockTimeout) as caught, store.table_lock("products"):
        pass
    message = str(caught.value)
    assert "table products" in message
    assert "run holder-run" in message
    assert f"pid {holder.pid}" in message


def test_a_second_process_gets_the_lock_only_after_the_first_releases_it(
    lake_dir: Path, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    log = tmp_path / "order.log"
    store = LocalLakeStore(lake_dir=str(lake_dir), lock_wait_seconds=120)

    def take() -> None:
        with store.table_lock("products", owner="run waiter"), open(log, "a") as out:
            out.write("waiter acquired\n")

    waiter = threading.Thread(target=take)
    waiter.start()
    assert holder.stdin is not None
    holder.stdin.write("release\n")
    holder.stdin.flush()
    waiter.join(timeout=120)
    assert log.read_text().splitlines() == ["holder releasing", "waiter acquired"]


def test_a_killed_holder_leaves_the_table_free(
    lake_dir: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    store = LocalLakeStore(lake_dir=str(lake_dir), lock_wait_seconds=0)
    with store.table_lock("products", owner="run next"):
        pass


def test_other_tables_are_not_held(lake_dir: Path, holder: subprocess.Popen[str]) -> None:
    store = LocalLakeStore(lake_dir=str(lake_dir), lock_wait_seconds=0)
    with store.table_lock("iot_sensor_data"):
        pass


def test_two_tables_are_taken_in_sorted_order(store: LocalLakeStore) -> None:
    taken: list[str] = []
    real = store.table_lock

    class Recording(LocalLakeStore):
        def table_lock(self, table: str, owner: str = ""):  # type: ignore[override]
            taken.append(table)
            return real(table, owner)

    recording = Recording(lake_dir=store.lake_dir)
    with table_locks(recording, ["sign_up_events", "products", "sign_up_events"]):
        pass
    assert taken == ["products", "sign_up_events"]


def test_a_table_name_that_is_not_an_identifier_is_refused(store: LocalLakeStore) -> None:
    with pytest.raises(ValueError, match="invalid table name"), store.table_lock("../x"):
        pass


DAY = "2024-03-01"


@pytest.fixture
def products_staged(lake_dir: Path) -> None:
    for n in range(3):
        drop(lake_dir, "products", f"{n}.json", json.dumps({"id": n, "date": DAY, "product": "A"}))
    stage_landing_files(
        LocalLakeStore(lake_dir=str(lake_dir)),
        dataset("products"),
        [f"{n}.json" for n in range(3)],
        start=date(2020, 1, 1),
        now=datetime(2024, 6, 1),
        max_file_bytes=1 << 20,
    )


@pytest.fixture
def impatient_defs(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    """The project's definitions, whose writers wait 0.2 s at most for a table's lock."""

    def impatient(settings: Settings) -> dict[str, dg.ConfigurableResource]:
        store = LocalLakeStore(lake_dir=str(settings.lake_dir), lock_wait_seconds=0.2)
        return {**local_resources(settings), "store": store}

    monkeypatch.setitem(RESOURCES_BY_DEPLOYMENT, "local", impatient)
    return build_definitions(settings)


def _materialize(
    defs: dg.Definitions, instance: dg.DagsterInstance, key: dg.AssetKey
) -> str | None:
    """The step's error message, or None if it succeeded."""
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[key], partition_key=DAY, raise_on_error=False
    )
    if result.success:
        return None
    [failure] = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    return str(error.cause.message if error and error.cause else error)


@pytest.mark.parametrize(
    ("key", "table"),
    [
        (parquet_key("products"), "products"),
        (table_key("products"), "products"),
        (analytics_key("daily_product_counts"), "daily_product_counts"),
    ],
)
def test_every_step_that_writes_a_table_takes_its_lock(
    impatient_defs: dg.Definitions,
    instance: dg.DagsterInstance,
    store: LocalLakeStore,
    products_staged: None,
    key: dg.AssetKey,
    table: str,
) -> None:
    for upstream in (parquet_key("products"), table_key("products")):
        if upstream != key:
            assert _materialize(impatient_defs, instance, upstream) is None
        else:
            break
    with store.table_lock(table, owner="run holder-run"):
        message = _materialize(impatient_defs, instance, key)
    assert message is not None
    assert f"table {table} is being written by run holder-run" in message
    assert _materialize(impatient_defs, instance, key) is None
