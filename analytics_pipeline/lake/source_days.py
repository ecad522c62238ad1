"""A database source's staged days, and how they become its served Parquet and table.

The extract merges each table's changes into staged/<source>/<table>/dt=.../<version>/: the
current rows of each day (a snapshot is one day). A day's Parquet is its newest staged
version, copied under a fresh version prefix only when its content digest differs from the
newest Parquet's, so building a day again from staged (a backfill from the UI, or after a
crash) changes nothing that is already served. The table step repoints the catalog at the
newest Parquet versions, as for every table of the lake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analytics_pipeline.lake.table_definition import TableDef
from analytics_pipeline.lake.versioned_days import (
    DAY_WORKERS,
    PublishedPartition,
    WrittenPartition,
    map_days,
    new_version_path,
    publish_partitions,
    stored_digest,
    version_holding,
    versions,
)

if TYPE_CHECKING:
    from analytics_pipeline.resources.catalog import Catalog
    from analytics_pipeline.resources.store import LakeStore


def staged_layer(source: str) -> str:
    return f"staged/{source}"


def _table_def_path(source: str, table: str) -> str:
    return f"sources/{source}/tables/{table}.json"


def save_table_def(store: LakeStore, source: str, table: TableDef) -> None:
    """The columns the extract typed the table with, so a rebuild needs no database."""
    data = {"name": table.name, "columns": table.columns, "description": table.description}
    store.write_bytes(_table_def_path(source, table.name), json.dumps(data).encode())


def load_table_def(store: LakeStore, source: str, table: str) -> TableDef:
    path = _table_def_path(source, table)
    if not store.exists(path):
        raise FileNotFoundError(
            f"{source}.{table} has never been extracted ({path} is missing): run the "
            f"extract_{source} job first"
        )
    data = json.loads(store.read_bytes(path))
    columns = tuple((str(name), str(kind)) for name, kind in data["columns"])
    return TableDef(data["name"], columns, data["description"])


def staged_days(store: LakeStore, source: str, table: str) -> dict[str, str]:
    """Each staged day's newest version (dt -> lake path), from one listing of the table."""
    prefix = f"{staged_layer(source)}/{table}/"
    newest: dict[str, str] = {}
    for path in sorted(store.list_files(prefix)):  # version names sort by time
        day = path[len(prefix) :]
        if day.startswith("dt=") and path.endswith(".parquet"):
            newest[day[3:13]] = path
    return newest


def promote_day(
    store: LakeStore, source: str, table: str, dt: str, staged: WrittenPartition | None = None
) -> WrittenPartition:
    """The day's Parquet: its newest staged version (`staged`, when the caller just wrote
    it), unless the newest Parquet holds the same."""
    if staged is None:
        found = versions(store, table, dt, staged_layer(source))
        if not found:
            raise FileNotFoundError(f"{source}.{table} has no staged rows for {dt}")
        digest = stored_digest(store, found[-1]) or ""
        staged = WrittenPartition(
            found[-1], store.parquet_footer(found[-1]).num_rows, 0, digest, unchanged=True
        )
    same = version_holding(store, table, dt, staged.digest)
    if same is not None:
        return WrittenPartition(same, staged.rows, store.size(same), staged.digest, True)
    path = new_version_path(table, dt)
    store.copy_file(staged.path, path)
    return WrittenPartition(path, staged.rows, store.size(path), staged.digest, False)


def publish_days(
    store: LakeStore, catalog: Catalog, source: str, table: str, days: list[str]
) -> dict[str, tuple[str, PublishedPartition]]:
    """Point the table's days at their newest Parquet versions, in one catalog change; each
    day's lake path and what the catalog did."""
    newest = {}
    for dt in days:
        existing = versions(store, table, dt)
        if not existing:
            raise FileNotFoundError(f"{source}.{table} has no Parquet for {dt}: build it first")
        newest[dt] = existing[-1]
    published = publish_partitions(store, catalog, load_table_def(store, source, table), newest)
    return {dt: (newest[dt], published[dt]) for dt in days}


@dataclass(frozen=True)
class ServedDay:
    parquet: WrittenPartition
    published: PublishedPartition

    @property
    def changed(self) -> bool:
        """A new Parquet version, or the catalog repointed (a day staged and built before a
        crash, published only now)."""
        return not self.parquet.unchanged or self.published.table_status != "unchanged"


def serve_days(
    store: LakeStore,
    catalog: Catalog,
    source: str,
    table: str,
    days: list[str],
    staged: dict[str, WrittenPartition] | None = None,
) -> dict[str, ServedDay]:
    """Each day's Parquet from its newest staged version (`staged`: what the extract just
    wrote, so it is not looked up again), then the table pointed at them in one change."""
    if not days:
        return {}
    staged = staged or {}
    parquet = map_days(  # a link, or on S3 a CopyObject, per day
        lambda dt: promote_day(store, source, table, dt, staged.get(dt)), days, DAY_WORKERS
    )
    definition = load_table_def(store, source, table)
    published = publish_partitions(
        store, catalog, definition, {dt: parquet[dt].path for dt in days}
    )
    return {dt: ServedDay(parquet[dt], published[dt]) for dt in days}
