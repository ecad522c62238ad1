"""Exactly once: crashes at any point, and redeliveries, neither lose nor duplicate records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from analytics_pipeline.datasets import dataset
from analytics_pipeline.datasets.table_def import table_def
from analytics_pipeline.lake.compaction import compact_day
from analytics_pipeline.lake.staging import StageReport, stage_landing_files
from analytics_pipeline.lake.versioned_days import publish_partition, versions, write_partition
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import drop, iot_reading, landing_files, ndjson, query

NOW = datetime(2024, 6, 1, 12)
START = date(2020, 1, 1)
IOT = dataset("iot_sensor_data")
IOT_TABLE = IOT.tables[0]
PRODUCTS = dataset("products")
PRODUCTS_TABLE = PRODUCTS.tables[0]
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Run in a child process so that SIGKILL ends it mid-work, as an OOM kill or a lost node would.
_PRELUDE = """
import os, signal, sys
from datetime import date, datetime
from analytics_pipeline.datasets import dataset
from analytics_pipeline.resources.local.store import LocalLakeStore

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

store = LocalLakeStore(lake_dir=sys.argv[1])
"""


def run_killed(lake_dir: Path, body: str) -> subprocess.CompletedProcess[bytes]:
    script = _PRELUDE + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", script, str(lake_dir)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        check=False,
    )


def reading(deviceid: int, when: str, temperature: int = 20) -> dict[str, Any]:
    return iot_reading(deviceid=str(deviceid), datetime=when, temperature=str(temperature))


def stage(store: LocalLakeStore, keys: list[str]) -> StageReport:
    return stage_landing_files(store, IOT, keys, start=START, now=NOW, max_file_bytes=1 << 20)


def day_rows(store: LocalLakeStore, dt: str) -> list[tuple[Any, ...]]:
    table = compact_day(store, IOT, IOT_TABLE, dt).table
    return sorted((r["deviceid"], str(r["datetime"])) for r in table.to_pylist())


def products(*rows: tuple[int, str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": i, "date": date.fromisoformat("2024-05-01"), "product": p} for i, p in rows],
        schema=PRODUCTS.table_arrow_schema(PRODUCTS_TABLE),
    )


def publish(store: LocalLakeStore, catalog: DuckDBCatalog, data: pa.Table, dt: str = "2024-05-01"):
    written = write_partition(store, "products", dt, data)
    return written, publish_partition(
        store, catalog, table_def(PRODUCTS, PRODUCTS_TABLE), dt, written.path
    )


# staging


def test_a_kill_between_staging_and_archiving_duplicates_nothing(
    lake_dir: Path, store: LocalLakeStore
):
    first = [
        reading(1, "2024-05-01 10:00:00"),
        reading(2, "2024-05-01 11:00:00"),
        reading(1, "2024-05-02 10:00:00"),
    ]
    drop(lake_dir, "iot_sensor_data", "first.ndjson", ndjson(first))

    killed = run_killed(
        lake_dir,
        """
        LocalLakeStore.archive_landing_many = die
        from analytics_pipeline.lake.staging import stage_landing_files
        stage_landing_files(store, dataset("iot_sensor_data"), ["first.ndjson"],
                            start=date(2020, 1, 1), now=datetime(2024, 6, 1, 12),
                            max_file_bytes=1 << 20)
        """,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert store.list_files("staged/iot_sensor_data/dt=2024-05-01/")
    assert store.list_files("staged/iot_sensor_data/dt=2024-05-02/")
    assert landing_files(lake_dir, "iot_sensor_data") == ["first.ndjson"]

    # The next run picks the file up again, in a batch with a newly arrived one.
    drop(lake_dir, "iot_sensor_data", "second.ndjson", ndjson([reading(3, "2024-05-01 12:00:00")]))
    stage(store, ["first.ndjson", "second.ndjson"])

    assert landing_files(lake_dir, "iot_sensor_data") == []
    day = compact_day(store, IOT, IOT_TABLE, "2024-05-01")
    assert day.duplicates_dropped == 2  # first.ndjson's two rows of the day, staged twice
    assert day_rows(store, "2024-05-01") == [
        (1, "2024-05-01 10:00:00"),
        (2, "2024-05-01 11:00:00"),
        (3, "2024-05-01 12:00:00"),
    ]
    assert day_rows(store, "2024-05-02") == [(1, "2024-05-02 10:00:00")]


def test_the_same_key_redelivered_with_the_same_content_adds_nothing(
    lake_dir: Path, store: LocalLakeStore
):
    content = ndjson([reading(1, "2024-05-01 10:00:00"), reading(2, "2024-05-01 11:00:00")])
    drop(lake_dir, "iot_sensor_data", "a.ndjson", content)
    stage(store, ["a.ndjson"])
    before = day_rows(store, "2024-05-01")

    drop(lake_dir, "iot_sensor_data", "a.ndjson", content)
    drop(
        lake_dir, "iot_sensor_data", "other-day.ndjson", ndjson([reading(9, "2024-05-03 01:00:00")])
    )
    stage(store, ["a.ndjson", "other-day.ndjson"])

    day = compact_day(store, IOT, IOT_TABLE, "2024-05-01")
    assert day.staged_files == 2
    assert day.duplicates_dropped == 2
    assert day_rows(store, "2024-05-01") == before
    assert len(before) == 2


def test_the_same_key_with_different_content_is_a_new_file(lake_dir: Path, store: LocalLakeStore):
    drop(lake_dir, "iot_sensor_data", "a.ndjson", ndjson([reading(1, "2024-05-01 10:00:00")]))
    stage(store, ["a.ndjson"])

    drop(lake_dir, "iot_sensor_data", "a.ndjson", ndjson([reading(2, "2024-05-01 10:00:00")]))
    stage(store, ["a.ndjson"])

    assert day_rows(store, "2024-05-01") == [(1, "2024-05-01 10:00:00"), (2, "2024-05-01 10:00:00")]


def test_every_input_line_ends_in_staged_or_quarantine_exactly_once(
    lake_dir: Path, store: LocalLakeStore
):
    lines = [
        json.dumps(reading(1, "2024-05-01 10:00:00")),
        "",
        json.dumps(reading(1, "2024-05-01 10:00:00")),  # a repeated record is still a record
        "nope",
        json.dumps({**reading(2, "2024-05-01 10:00:00"), "deviceid": "99999999999"}),
        json.dumps(reading(3, "2024-05-02 10:00:00")),
        "\t",
    ]
    drop(lake_dir, "iot_sensor_data", "mixed.ndjson", "\n".join(lines))
    stage(store, ["mixed.ndjson"])
    stage(store, ["mixed.ndjson"])  # gone by now: must add nothing

    staged = sum(
        compact_day(store, IOT, IOT_TABLE, dt).distinct_records
        for dt in ("2024-05-01", "2024-05-02")
    )
    quarantined = sum(
        len(store.read_bytes(p).decode().splitlines())
        for p in store.list_files("quarantine/iot_sensor_data/")
    )
    assert (staged, quarantined) == (3, 2)
    assert staged + quarantined == len([line for line in lines if line.strip()])


# partitions


def test_a_failed_parquet_write_leaves_the_registered_day_and_no_half_file(
    lake_dir: Path,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    monkeypatch: pytest.MonkeyPatch,
):
    old, _ = publish(store, catalog, products((1, "A")))

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("analytics_pipeline.resources.local.store.os.fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_partition(store, "products", "2024-05-01", products((1, "A"), (2, "B")))
    monkeypatch.undo()

    assert versions(store, "products", "2024-05-01") == [old.path]
    left = [p.name for p in (lake_dir / "parquet" / "products").rglob("*") if p.is_file()]
    assert left == ["part-00000.snappy.parquet"]
    assert catalog.partition_location("products", "2024-05-01") == store.location(old.path)
    assert query(lake_dir, "SELECT id, product, dt FROM products") == [(1, "A", "2024-05-01")]


def test_a_kill_mid_parquet_write_leaves_the_registered_day_and_hides_the_half_file(
    lake_dir: Path, store: LocalLakeStore, catalog: DuckDBCatalog
):
    old, _ = publish(store, catalog, products((1, "A")))
    catalog_before = catalog.path.read_bytes()

    killed = run_killed(
        lake_dir,
        """
        import pyarrow as pa
        from analytics_pipeline.lake.versioned_days import write_partition

        real_fdopen = os.fdopen

        class HalfWritten:
            def __init__(self, handle):
                self.handle = handle
            def __enter__(self):
                return self
            def __exit__(self, *exc):
                return False
            def write(self, data):
                self.handle.write(data[: len(data) // 2])
                self.handle.flush()
                die()

        os.fdopen = lambda fd, mode: HalfWritten(real_fdopen(fd, mode))
        spec = dataset("products")
        data = pa.Table.from_pylist(
            [{"id": 2, "date": date(2024, 5, 1), "product": "B"}],
            schema=spec.table_arrow_schema(spec.tables[0]),
        )
        write_partition(store, "products", "2024-05-01", data)
        """,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    on_disk = [p for p in (lake_dir / "parquet" / "products").rglob("*") if p.is_file()]
    half = [p for p in on_disk if p.name.startswith(".")]
    assert len(half) == 1 and half[0].stat().st_size > 0  # the crash really was mid-write
    assert store.list_files("parquet/products/") == [old.path]
    assert versions(store, "products", "2024-05-01") == [old.path]
    assert catalog.path.read_bytes() == catalog_before
    assert query(lake_dir, "SELECT id, product FROM products") == [(1, "A")]

    # The next run writes and publishes as if nothing had happened.
    new, published = publish(store, catalog, products((2, "B")))
    assert not new.unchanged
    assert published.removed_versions == [old.path]
    assert query(lake_dir, "SELECT id, product FROM products") == [(2, "B")]


def test_a_crash_between_write_and_publish_keeps_serving_the_old_version(
    lake_dir: Path, store: LocalLakeStore, catalog: DuckDBCatalog
):
    old, _ = publish(store, catalog, products((1, "A")))
    orphan = write_partition(store, "products", "2024-05-01", products((1, "A"), (2, "B")))
    # ...the run dies here: the new version is written, the catalog not repointed.

    assert catalog.partition_location("products", "2024-05-01") == store.location(old.path)
    assert query(lake_dir, "SELECT id FROM products") == [(1,)]

    retry, published = publish(store, catalog, products((1, "A"), (2, "B")))

    assert retry.unchanged
    assert retry.path == orphan.path
    assert published.previous_location == store.location(old.path)
    assert published.removed_versions == [old.path]
    assert versions(store, "products", "2024-05-01") == [orphan.path]
    assert query(lake_dir, "SELECT id FROM products ORDER BY id") == [(1,), (2,)]
