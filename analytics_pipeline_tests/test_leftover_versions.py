"""Versions no day serves, left by killed runs, are swept once nothing is left to build."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import dagster as dg

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline_tests.lake_helpers import drop, query

DAY = "2024-03-02"


def _served_version(catalog: DuckDBCatalog) -> Path:
    return Path(catalog.partitions("products")[DAY]).parent


def _plant_leftovers(day_dir: Path, served: Path) -> set[str]:
    """What killed runs leave: a version killed before deletion (older), one killed before
    repointing (newer, whole), one killed mid-write (a temp file only), one of a day never
    registered."""
    shutil.copytree(served, day_dir / "20000101T000000000000Z-0ldf0ld0")
    shutil.copytree(served, day_dir / "29990101T000000000000Z-newe7000")
    half = day_dir / "29990102T000000000000Z-ha1fha1f"
    half.mkdir()
    (half / ".part-00000.snappy.parquet.x1y2").write_bytes(b"PAR1 half")
    unregistered = day_dir.parent / "dt=2024-03-09" / "29990101T000000000000Z-0e0e0e0e"
    shutil.copytree(served, unregistered)
    return {
        "dt=2024-03-02/20000101T000000000000Z-0ldf0ld0",
        "dt=2024-03-02/29990101T000000000000Z-newe7000",
        "dt=2024-03-02/29990102T000000000000Z-ha1fha1f",
        "dt=2024-03-09/29990101T000000000000Z-0e0e0e0e",
    }


def _built_day(lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance) -> Path:
    drop(lake_dir, "products", "1.json", json.dumps({"id": 1, "date": DAY, "product": "A"}))
    assert process_landing(defs, instance).failed_runs == []
    return _served_version(DuckDBCatalog(lake_dir=str(lake_dir)))


def test_versions_beside_the_registered_one_are_swept(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    served = _built_day(lake_dir, defs, instance)
    planted = _plant_leftovers(served.parent, served)

    summary = process_landing(defs, instance)
    assert summary.failed_runs == []
    table_dir = lake_dir / "parquet" / "products"
    assert {p.removeprefix("parquet/products/").rstrip("/") for p in summary.swept_versions} == (
        planted
    )
    assert [p for p in table_dir.glob("dt=*/*")] == [served]
    assert query(lake_dir, f"SELECT id FROM products WHERE dt = '{DAY}'") == [(1,)]


def test_nothing_is_swept_while_a_run_may_still_write(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    served = _built_day(lake_dir, defs, instance)
    planted = _plant_leftovers(served.parent, served)
    # A run of the daemon's, alive elsewhere: its version may be one not yet registered.
    instance.add_run(
        dg.DagsterRun(
            job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED
        )
    )
    assert process_landing(defs, instance).swept_versions == []
    table_dir = lake_dir / "parquet" / "products"
    on_disk = {str(p.relative_to(table_dir)) for p in table_dir.glob("dt=*/*")}
    assert on_disk == planted | {str(served.relative_to(table_dir))}
