"""A fresh local lake and the settings the tests run it with, defined once."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings


def fresh_lake(lake_dir: Path) -> Settings:
    """Lay out an empty lake at lake_dir; settings that ingest what lands there at once
    (no settle time), in batches big enough that a test's files make one run."""
    LocalLakeStore(lake_dir=str(lake_dir)).ensure_layout()
    return Settings(
        env="local",
        lake_dir=lake_dir,
        partitions_start=date(2020, 1, 1),
        ingest_batch_files=2000,
        max_landing_file_bytes=1024 * 1024,
        landing_settle_seconds=0,
    )
