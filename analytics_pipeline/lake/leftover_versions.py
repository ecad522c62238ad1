"""Parquet versions no table serves, left behind by killed runs, are deleted.

A day is rewritten by writing a new version folder whole, repointing the catalog, then
deleting older versions. A run killed before repointing leaves a version newer than the
registered one (perhaps only a temp file); one killed before deleting leaves older ones.
Sweeping is safe only when nothing is left to build and no run is in progress: then each
registered version is the newest complete one, and any other was left by a run that is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics_pipeline.lake.versioned_days import validate_dt

if TYPE_CHECKING:
    from analytics_pipeline.resources.catalog import Catalog
    from analytics_pipeline.resources.store import LakeStore


def sweep_leftover_versions(store: LakeStore, catalog: Catalog) -> list[str]:
    """Delete every version folder of the catalog's tables but each day's registered one;
    the folders deleted. Call only with nothing stale and no run in progress."""
    removed = []
    for table in catalog.tables():
        prefix = f"parquet/{table}/"
        registered = catalog.partitions(table)
        for folder in store.list_folders(prefix, depth=2):
            day, version = folder.split("/")
            if not day.startswith("dt="):
                continue
            location = registered.get(validate_dt(day.removeprefix("dt=")))
            if location is None or f"/{folder}/" not in f"{location}/":
                store.delete_prefix(f"{prefix}{folder}")
                removed.append(f"{prefix}{folder}/")
    return removed
