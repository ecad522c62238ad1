"""Daily partitions of a table: validated keys, versioned writes, and old-version clean-up.

A partition is rewritten by writing a new version under a fresh prefix
(parquet/<table>/dt=YYYY-MM-DD/<version>/), repointing the catalog at it, and only then
deleting older versions, so a reader never sees half a day and a failure keeps the old one.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.lake.parquet_encoding import parquet_bytes
from analytics_pipeline.lake.table_definition import TableDef

if TYPE_CHECKING:
    from analytics_pipeline.resources.catalog import Catalog
    from analytics_pipeline.resources.store import LakeStore

DIGEST_KEY = b"analytics_pipeline.content_sha256"
# In a day's footer: how many key values occur in more than one of its rows, and of how
# many rows (JSON: {"duplicated_keys": d, "rows": n}).
DUPLICATED_KEYS_KEY = b"analytics_pipeline.duplicated_keys"
# Days handled at once: most of a day's time is a wait (fsync, an S3 request), and each
# writing thread costs ~12 MB of malloc arena.
DAY_WORKERS = 4
_DT = re.compile(r"\d{4}-\d{2}-\d{2}")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,127}")


T = TypeVar("T")


def map_days(build: Callable[[str], T], days: list[str], workers: int = 1) -> dict[str, T]:
    """build(day) for each day, `workers` at a time. One worker builds in this thread: a
    terminated run is interrupted here, so what a build waits on (an Athena query) is stopped;
    a worker thread would not be interrupted."""
    if workers == 1:
        return {dt: build(dt) for dt in days}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="build-day") as pool:
        return dict(zip(days, pool.map(build, days), strict=True))


class ProjectionLayoutError(ValueError):
    """A versioned location for a table whose partitions Athena projects from a fixed template."""


def validate_dt(value: str) -> str:
    """A partition key that is a real calendar date, safe to put in a path or a SQL literal."""
    try:
        if not _DT.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"invalid partition key {value!r}: expected YYYY-MM-DD") from None
    return value


def validate_identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"invalid table or column name {name!r}")
    return name


def partition_prefix(table: str, dt: str, layer: str = "parquet") -> str:
    """A day's prefix in a layer: parquet/, or a database source's staged/<source>/."""
    return f"{layer}/{validate_identifier(table)}/dt={validate_dt(dt)}/"


@dataclass(frozen=True)
class WrittenPartition:
    path: str  # lake path of the version's Parquet file
    rows: int
    bytes: int
    digest: str
    unchanged: bool  # an identical version already existed; nothing was written


def content_digest(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()  # the buffer itself, not a copy


def versions(store: LakeStore, table: str, dt: str, layer: str = "parquet") -> list[str]:
    """Lake paths of the partition's version files, oldest first (version names sort by time)."""
    prefix = partition_prefix(table, dt, layer)
    return [p for p in store.list_files(prefix) if p.endswith(".parquet")]


def write_partition(
    store: LakeStore,
    table: str,
    dt: str,
    data: pa.Table,
    key: tuple[str, ...] = (),
    layer: str = "parquet",
    use_dictionary: bool | list[str] = True,
) -> WrittenPartition:
    """Write a new version of the day, unless the newest version already holds exactly this.

    With a key, the footer also says how many key values the day holds more than once
    (duplicated_keys_in_footer), so the catalog's check need not group every row again."""
    digest = content_digest(data)
    same = version_holding(store, table, dt, digest, layer)
    if same is not None:
        return WrittenPartition(same, data.num_rows, store.size(same), digest, unchanged=True)
    path = new_version_path(table, dt, layer)
    metadata = {DIGEST_KEY.decode(): digest}
    if key:
        counted = {"duplicated_keys": duplicated_keys(data, key), "rows": data.num_rows}
        metadata[DUPLICATED_KEYS_KEY.decode()] = json.dumps(counted)
    payload = parquet_bytes(data, metadata=metadata, use_dictionary=use_dictionary)
    store.write_bytes(path, payload)
    return WrittenPartition(path, data.num_rows, len(payload), digest, unchanged=False)


def version_holding(
    store: LakeStore, table: str, dt: str, digest: str, layer: str = "parquet"
) -> str | None:
    """The day's newest version, if it holds exactly the content of `digest`."""
    existing = versions(store, table, dt, layer)
    return existing[-1] if existing and stored_digest(store, existing[-1]) == digest else None


def new_version_path(table: str, dt: str, layer: str = "parquet") -> str:
    """A fresh version's file path; version names sort by the time they were made."""
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    return f"{partition_prefix(table, dt, layer)}{version}/part-00000.snappy.parquet"


def delete_older_versions(
    store: LakeStore, table: str, dt: str, keep: str, layer: str = "parquet"
) -> list[str]:
    """Remove versions older than the registered one; newer ones may belong to a running write.

    A version is a folder dt=D/<version>/, whatever files it holds: the Athena scale path
    (athena_compaction.py) writes extensionless files into version folders of the same
    naming, so either path removes the other's older versions."""
    keep_version = keep.rsplit("/", 2)[-2]
    prefix = partition_prefix(table, dt, layer)
    removed = []
    deleted: set[str] = set()
    for path in store.list_files(prefix):
        version, slash, _ = path[len(prefix) :].partition("/")
        if slash and version < keep_version:
            if version not in deleted:
                store.delete_prefix(f"{prefix}{version}")
                deleted.add(version)
            removed.append(path)
    return removed


def duplicated_keys(data: pa.Table, key: tuple[str, ...]) -> int:
    """Key values held by more than one row; nulls group together, as in SQL's GROUP BY.
    Numbers and times without nulls (IoT's device and time) are sorted in numpy, which is
    cheaper than Arrow's hash grouping."""
    columns = [data.column(name) for name in key]
    if all(_sortable(column) for column in columns):
        values = [column.to_numpy() for column in columns]
        order = np.lexsort(values[::-1])
        same = np.ones(max(len(order) - 1, 0), dtype=bool)
        for column_values in values:
            ordered = column_values[order]
            same &= ordered[1:] == ordered[:-1]
        # A duplicated key is a run of equal neighbours: count where each run starts.
        return int(np.count_nonzero(same[1:] & ~same[:-1]) + (1 if len(same) and same[0] else 0))
    groups = data.group_by(list(key)).aggregate([([], "count_all")])
    return int(pc.sum(pc.greater(groups.column("count_all"), 1)).as_py() or 0)


def _sortable(column: pa.ChunkedArray) -> bool:
    kind = column.type
    return column.null_count == 0 and (pa.types.is_integer(kind) or pa.types.is_temporal(kind))


def duplicated_keys_in_footer(footer: pq.FileMetaData) -> int | None:
    """What write_partition recorded; None for a file written without it, or whose rows are
    no longer the ones counted (a file rewritten by a tool that kept its footer metadata)."""
    value = (footer.metadata or {}).get(DUPLICATED_KEYS_KEY)
    counted = json.loads(value) if value is not None else {}
    if counted.get("rows") != footer.num_rows:
        return None
    return int(counted["duplicated_keys"])


def stored_digest(store: LakeStore, path: str) -> str | None:
    metadata = store.parquet_footer(path).metadata or {}
    value = metadata.get(DIGEST_KEY)
    return value.decode() if value else None


@dataclass(frozen=True)
class PublishedPartition:
    location: str
    previous_location: str | None
    table_status: str  # created | updated | unchanged
    removed_versions: list[str]


def publish_partition(
    store: LakeStore, catalog: Catalog, table: TableDef, dt: str, path: str
) -> PublishedPartition:
    """Repoint the table's day at `path`, then delete the versions it replaced."""
    return publish_partitions(store, catalog, table, {dt: path})[dt]


def publish_partitions(
    store: LakeStore, catalog: Catalog, table: TableDef, paths: dict[str, str]
) -> dict[str, PublishedPartition]:
    """Repoint the table's days at their paths in one catalog change, then delete the
    versions they replaced."""
    status = catalog.ensure_table(table)
    locations = {validate_dt(dt): store.location(path) for dt, path in paths.items()}
    previous = catalog.register_partitions(table.name, locations)
    removed = map_days(  # a listing (and deletes) per day
        lambda dt: delete_older_versions(store, table.name, dt, keep=paths[dt]),
        list(paths),
        DAY_WORKERS,
    )
    return {
        dt: PublishedPartition(locations[dt], previous[dt], status, removed[dt]) for dt in paths
    }
