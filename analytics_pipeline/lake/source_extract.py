"""A source table into the lake: snapshots replaced whole, incremental tables merged by key.

The catalog's table is checked (ensure_table) before anything is written, so a retyped
column stops the table with the lake untouched. An incremental table's cursor is saved only
after its days are published: a crash in between re-reads the overlap, and the merge by
primary key makes that re-read change nothing.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind
from analytics_pipeline.datasets.spec import ARROW_TYPES
from analytics_pipeline.lake.day_spill import DaySpill
from analytics_pipeline.lake.key_index import DT, index_path, load_key_index, save_key_index
from analytics_pipeline.lake.table_definition import TableDef
from analytics_pipeline.lake.versioned_days import publish_partitions, write_partition

if TYPE_CHECKING:
    from collections.abc import Iterator

    from analytics_pipeline.resources.catalog import Catalog
    from analytics_pipeline.resources.store import LakeStore

# A snapshot table is one partition, repointed whole, so readers switch atomically.
SNAPSHOT_DT = "1970-01-01"

WRITERS = 4  # days rewritten at once (waiting on fsync or S3); each costs ~12 MB of malloc arena


class SourceReader(Protocol):
    def columns(self, table: str) -> tuple[tuple[str, str], ...]: ...
    def read_changes(
        self, table: SourceTable, columns: tuple[tuple[str, str], ...], since: datetime | None
    ) -> Iterator[pa.RecordBatch]: ...
    def read_keys(self, table: SourceTable) -> pa.Table: ...


@dataclass
class Extracted:
    table: str
    rows_read: int
    days_written: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    cursor: datetime | None = None


def cursor_path(source: str, table: str) -> str:
    return f"sources/{source}/cursors/{table}.json"


def load_cursor(store: LakeStore, source: str, table: str) -> datetime | None:
    path = cursor_path(source, table)
    if not store.exists(path):
        return None
    return datetime.fromisoformat(json.loads(store.read_bytes(path))["last_update"])


def save_cursor(store: LakeStore, source: str, table: str, cursor: datetime) -> None:
    store.write_bytes(
        cursor_path(source, table), json.dumps({"last_update": cursor.isoformat()}).encode()
    )


def extract_table(
    store: LakeStore, catalog: Catalog, reader: SourceReader, spec: SourceSpec, name: str
) -> Extracted:
    table = spec.table(name)
    table_def = TableDef(name, reader.columns(name), f"{spec.name}.{name}")
    catalog.ensure_table(table_def)
    schema = pa.schema([(c, ARROW_TYPES[kind]) for c, kind in table_def.columns])
    if table.kind is TableKind.SNAPSHOT:
        rows = pa.Table.from_batches(
            list(reader.read_changes(table, table_def.columns, None)), schema
        )
        written = write_partition(store, name, SNAPSHOT_DT, rows, key=table.primary_key)
        publish_partitions(store, catalog, table_def, {SNAPSHOT_DT: written.path})
        return Extracted(name, rows.num_rows, [SNAPSHOT_DT])
    return _merge_incremental(store, catalog, reader, spec, table, table_def, schema)


def _merge_incremental(
    store: LakeStore,
    catalog: Catalog,
    reader: SourceReader,
    spec: SourceSpec,
    table: SourceTable,
    table_def: TableDef,
    schema: pa.Schema,
) -> Extracted:
    cursor = load_cursor(store, spec.name, table.name)
    since = cursor - timedelta(seconds=spec.overlap_seconds) if cursor else None
    key_schema = pa.schema([schema.field(c) for c in table.primary_key])
    locations = catalog.partitions(table.name)
    published = {dt: _lake_path(table.name, loc) for dt, loc in locations.items()}
    index_file = index_path(spec.name, table.name)
    index = load_key_index(
        store,
        index_file,
        key_schema,
        locations,
        lambda dt: _read_day(store, published[dt], schema, table.primary_key),
    )
    with (
        tempfile.TemporaryDirectory(prefix="source-changes-") as spill_dir,
        closing(DaySpill(Path(spill_dir), schema, kept=table.primary_key)) as spill,
    ):
        newest = cursor
        for batch in reader.read_changes(table, table_def.columns, since):
            spill.add(batch, _event_days(batch, table))
            newest = _latest(newest, pc.max(batch.column(table.cursor)).as_py())
        spill.flush()
        changed = spill.kept().rename_columns(index.schema.names)
        deleted = _deleted(index, reader, table) if index.num_rows else index.schema.empty_table()
        replaced = pa.concat_tables([changed, deleted]).select(table.primary_key)
        moved = _by_key(index, replaced, table.primary_key, "left semi")
        affected = spill.days() | set(moved.column(DT).to_pylist())

        def rewrite(day: date) -> tuple[str, str]:
            dt = day.isoformat()
            kept = _read_day(store, published[dt], schema) if dt in published else None
            if kept is not None:
                kept = _by_key(kept, replaced, table.primary_key, "left anti")
            rows = pa.concat_tables([t for t in (kept, spill.rows(day)) if t is not None])
            rows = rows.select(schema.names).sort_by([(c, "ascending") for c in table.primary_key])
            return dt, write_partition(store, table.name, dt, rows, key=table.primary_key).path

        with ThreadPoolExecutor(WRITERS) as pool:  # Parquet encoding and I/O release the GIL
            paths = dict(pool.map(rewrite, sorted(affected)))
    if paths:
        published_now = publish_partitions(store, catalog, table_def, paths)
        locations |= {dt: p.location for dt, p in published_now.items()}
    unchanged = _by_key(index, replaced, table.primary_key, "left anti")
    new_index = pa.concat_tables([unchanged, changed])
    save_key_index(store, index_file, new_index, locations)
    if newest is not None:
        save_cursor(store, spec.name, table.name, newest)
    return Extracted(table.name, changed.num_rows, sorted(paths), deleted.num_rows, newest)


def _deleted(index: pa.Table, reader: SourceReader, table: SourceTable) -> pa.Table:
    """The index's rows whose key the source no longer has (a key-only read of the source)."""
    source_keys = reader.read_keys(table).cast(
        index.schema.remove(index.schema.get_field_index(DT))
    )
    return index.join(source_keys, list(table.primary_key), join_type="left anti")


def _by_key(rows: pa.Table, keys: pa.Table, key: tuple[str, ...], join: str) -> pa.Table:
    """The rows whose key is in `keys` ("left semi") or is not ("left anti")."""
    if not rows.num_rows or not keys.num_rows:  # a hash join would still hash every key
        return rows if join == "left anti" else rows.schema.empty_table()
    return rows.join(keys, list(key), join_type=join).select(rows.schema.names)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(c for c in (a, b) if c is not None) if a or b else None


def _event_days(changed: pa.RecordBatch, table: SourceTable) -> pa.Array:
    assert table.event_date is not None
    column = changed.column(table.event_date)
    if column.null_count:
        raise ValueError(
            f"table {table.name}: {column.null_count} changed rows have no {table.event_date}, "
            "so no day to partition them by"
        )
    return pc.cast(column, pa.date32())


def _lake_path(table: str, location: str) -> str:
    return location[location.rindex(f"parquet/{table}/dt=") :]


def _read_day(
    store: LakeStore, path: str, schema: pa.Schema, only: tuple[str, ...] = ()
) -> pa.Table:
    """A published day in the table's current schema: columns added since read as null."""
    day = pq.read_table(pa.BufferReader(store.read_bytes(path)), columns=list(only) or None)
    fields = [schema.field(c) for c in only] if only else list(schema)
    return pa.table(
        {
            f.name: day.column(f.name).cast(f.type)
            if f.name in day.column_names
            else pa.nulls(day.num_rows, f.type)
            for f in fields
        },
        schema=pa.schema(fields),
    )
