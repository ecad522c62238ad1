"""A source table into the lake's staged layer: snapshots replaced whole, incremental tables
merged by key into the current rows of each day (staged/<source>/<table>/dt=.../<version>/).

The catalog's table is checked (ensure_table) before anything is written, so a retyped
column stops the table with the lake untouched. A row whose values do not fit their columns
(or with no event date) goes to quarantine, one file per row version, and the rest load; its
older version leaves the lake, as for any changed row. An incremental table's cursor is saved
only after its quarantine and staged days are written and reported (`on_staged`): a crash in
between re-reads the overlap, and the merge by primary key (and the quarantine file's name)
makes that re-read change nothing. Serving the staged days is source_days' work.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind
from analytics_pipeline.datasets.spec import arrow_type
from analytics_pipeline.lake.day_spill import DaySpill
from analytics_pipeline.lake.key_index import DT, index_path, load_key_index, save_key_index
from analytics_pipeline.lake.parquet_encoding import repetitive_columns
from analytics_pipeline.lake.snapshot_stream import CHUNK_ROWS, write_snapshot
from analytics_pipeline.lake.source_days import (
    save_table_def,
    serve_days,
    staged_days,
    staged_layer,
)
from analytics_pipeline.lake.source_rows import TypedRows, UntypableRow
from analytics_pipeline.lake.table_definition import TableDef
from analytics_pipeline.lake.versioned_days import (
    DAY_WORKERS,
    WrittenPartition,
    delete_older_versions,
    map_days,
    write_partition,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from analytics_pipeline.resources.catalog import Catalog
    from analytics_pipeline.resources.store import LakeStore

# A snapshot table is one partition, repointed whole, so readers switch atomically.
SNAPSHOT_DT = "1970-01-01"


class SourceReader(Protocol):
    def columns(self, table: str) -> tuple[tuple[str, str], ...]: ...
    def read_changes(
        self, table: SourceTable, columns: tuple[tuple[str, str], ...], since: datetime | None
    ) -> Iterator[TypedRows]: ...
    def read_keys(self, table: SourceTable) -> pa.Table: ...


@dataclass
class Extracted:
    table: str
    rows_read: int
    days_written: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    cursor: datetime | None = None
    # The days whose rows differ from their previous version: what downstream days rebuild.
    days_changed: list[str] = field(default_factory=list)
    digest: str | None = None  # a snapshot's content, the same for the same rows
    # Rows set apart as untypable this run, and of them those not quarantined before.
    rows_untypable: int = 0
    rows_quarantined: int = 0
    # Each written day's staged version (the newest, changed or not).
    staged: dict[str, WrittenPartition] = field(default_factory=dict)


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
    store: LakeStore,
    catalog: Catalog,
    reader: SourceReader,
    spec: SourceSpec,
    name: str,
    chunk_rows: int = CHUNK_ROWS,
    on_staged: Callable[[list[str]], None] = lambda days: None,
) -> Extracted:
    """The table's changes into staged. A snapshot is streamed to its file chunk_rows rows at
    a time, never held whole. `on_staged` hears the changed days once they are durable, before
    the cursor moves past them (a crash after it rebuilds them from what it was told)."""
    table = spec.table(name)
    table_def = TableDef(name, reader.columns(name), f"{spec.name}.{name}")
    catalog.ensure_table(table_def)
    save_table_def(store, spec.name, table_def)
    schema = pa.schema([(c, arrow_type(kind)) for c, kind in table_def.columns])
    layer = staged_layer(spec.name)
    if table.kind is TableKind.SNAPSHOT:
        untypable: list[UntypableRow] = []

        def typed_batches() -> Iterator[pa.RecordBatch]:
            for typed in reader.read_changes(table, table_def.columns, None):
                untypable.extend(typed.untypable)
                yield typed.rows

        written = write_snapshot(
            store, name, SNAPSHOT_DT, typed_batches(), schema, table.primary_key, chunk_rows, layer
        )
        quarantined = quarantine_rows(store, untypable)
        changed = [] if written.unchanged else [SNAPSHOT_DT]
        on_staged(changed)
        delete_older_versions(store, name, SNAPSHOT_DT, written.path, layer)
        return Extracted(
            name,
            written.rows + len(untypable),
            [SNAPSHOT_DT],
            days_changed=changed,
            staged={SNAPSHOT_DT: written},
            digest=written.digest,
            rows_untypable=len(untypable),
            rows_quarantined=quarantined,
        )
    return _merge_incremental(store, reader, spec, table, table_def, schema, on_staged)


def quarantine_rows(store: LakeStore, rows: list[UntypableRow]) -> int:
    """Writes each row's quarantine file unless it is there already; returns how many were new."""
    new = 0
    for row in rows:
        path = row.quarantine_path()
        if not store.exists(path):
            store.write_bytes(path, (json.dumps(row.quarantine_line()) + "\n").encode())
            new += 1
    return new


def _merge_incremental(
    store: LakeStore,
    reader: SourceReader,
    spec: SourceSpec,
    table: SourceTable,
    table_def: TableDef,
    schema: pa.Schema,
    on_staged: Callable[[list[str]], None],
) -> Extracted:
    layer = staged_layer(spec.name)
    staged = staged_days(store, spec.name, table.name)
    # With nothing staged (a new lake, or one from before the staged layer) the table is read
    # whole: an old cursor would skip the rows staged never got.
    cursor = load_cursor(store, spec.name, table.name) if staged else None
    since = cursor - timedelta(seconds=spec.overlap_seconds) if cursor else None
    key_schema = pa.schema([schema.field(c) for c in table.primary_key])
    index_file = index_path(spec.name, table.name)
    index = load_key_index(
        store,
        index_file,
        key_schema,
        staged,
        lambda dt: _read_day(store, staged[dt], schema, table.primary_key),
    )
    untypable: list[UntypableRow] = []
    with (
        tempfile.TemporaryDirectory(prefix="source-changes-") as spill_dir,
        closing(DaySpill(Path(spill_dir), schema, kept=table.primary_key)) as spill,
    ):
        newest = cursor
        for typed in reader.read_changes(table, table_def.columns, since):
            batch, undated = _split_undated(typed.rows, table, spec.name)
            untypable += typed.untypable + undated
            if batch.num_rows:
                spill.add(batch, _event_days(batch, table))
                newest = _latest(newest, pc.max(batch.column(table.cursor)).as_py())
        spill.flush()
        changed = spill.kept().rename_columns(index.schema.names)
        deleted = _deleted(index, reader, table) if index.num_rows else index.schema.empty_table()
        # A row that turned untypable leaves its day too: it is in quarantine only.
        unplaced = pa.Table.from_pylist([row.key for row in untypable], schema=key_schema)
        # One chunk: every rewritten day looks its keys up in it.
        replaced = pa.concat_tables(
            [changed.select(table.primary_key), deleted.select(table.primary_key), unplaced]
        ).combine_chunks()
        moved = _by_key(index, replaced, table.primary_key, "left semi")
        affected = spill.days() | set(moved.column(DT).to_pylist())

        def rewrite(dt: str) -> WrittenPartition:
            kept = _read_day(store, staged[dt], schema) if dt in staged else None
            if kept is not None:
                kept = _by_key(kept, replaced, table.primary_key, "left anti")
            added = spill.rows(date.fromisoformat(dt))
            rows = pa.concat_tables([t for t in (kept, added) if t is not None])
            return _write_by_key(store, table, dt, rows.select(schema.names), layer)

        # Parquet encoding and I/O release the GIL.
        written = map_days(rewrite, sorted(d.isoformat() for d in affected), DAY_WORKERS)
    quarantined = quarantine_rows(store, untypable)
    days_changed = sorted(dt for dt, w in written.items() if not w.unchanged)
    on_staged(days_changed)
    map_days(  # a listing per day (on S3, a request)
        lambda dt: delete_older_versions(store, table.name, dt, written[dt].path, layer),
        list(written),
        DAY_WORKERS,
    )
    staged |= {dt: w.path for dt, w in written.items()}
    unchanged = _by_key(index, replaced, table.primary_key, "left anti")
    save_key_index(store, index_file, pa.concat_tables([unchanged, changed]), staged)
    if newest is not None:
        save_cursor(store, spec.name, table.name, newest)
    return Extracted(
        table.name,
        changed.num_rows + len(untypable),
        sorted(written),
        deleted.num_rows,
        newest,
        days_changed,
        rows_untypable=len(untypable),
        rows_quarantined=quarantined,
        staged=written,
    )


def _write_by_key(
    store: LakeStore, table: SourceTable, dt: str, rows: pa.Table, layer: str
) -> WrittenPartition:
    """Rows in primary-key order, so the same rows are the same version whatever order the
    database returned them in, and re-reading the overlap changes no day."""
    ordered = rows.sort_by([(column, "ascending") for column in table.primary_key])
    dictionary = repetitive_columns(ordered)
    return write_partition(
        store, table.name, dt, ordered, table.primary_key, layer, use_dictionary=dictionary
    )


def _deleted(index: pa.Table, reader: SourceReader, table: SourceTable) -> pa.Table:
    """The index's rows whose key the source no longer has (a key-only read of the source)."""
    source_keys = reader.read_keys(table).cast(
        index.schema.remove(index.schema.get_field_index(DT))
    )
    return index.join(source_keys, list(table.primary_key), join_type="left anti")


def _split_undated(
    changed: pa.RecordBatch, table: SourceTable, source: str
) -> tuple[pa.RecordBatch, list[UntypableRow]]:
    """The rows with an event date, and those without (no day to partition them by)."""
    assert table.event_date is not None
    if not changed.column(table.event_date).null_count:  # the usual batch: no copy made
        return changed, []
    dated = pc.is_valid(changed.column(table.event_date))
    undated = [
        UntypableRow(
            source,
            table.name,
            key={c: row[c] for c in table.primary_key},
            values=row,
            problems=(f"column {table.event_date}: no value, so no day to partition the row by",),
            columns=(table.event_date,),
        )
        for row in changed.filter(pc.invert(dated)).to_pylist()
    ]
    return changed.filter(dated), undated


# Below this many rows a one-column key is looked up in a set: a hash join costs ~2 ms to
# set up, five times what a day of a few thousand rows takes to look up.
_LOOKUP_ROWS = 65_536


def _by_key(rows: pa.Table, keys: pa.Table, key: tuple[str, ...], join: str) -> pa.Table:
    """The rows whose key is in `keys` ("left semi") or is not ("left anti"); a null key
    matches nothing, as in a join."""
    if not rows.num_rows or not keys.num_rows:  # a hash join would still hash every key
        return rows if join == "left anti" else rows.schema.empty_table()
    if len(key) == 1 and rows.num_rows < _LOOKUP_ROWS:
        (name,) = key
        values = keys.column(name).combine_chunks().cast(rows.schema.field(name).type)
        found = pc.is_in(rows.column(name), value_set=values, skip_nulls=True)
        return rows.filter(found if join == "left semi" else pc.invert(found))
    return rows.join(keys, list(key), join_type=join).select(rows.schema.names)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(c for c in (a, b) if c is not None) if a or b else None


def _event_days(changed: pa.RecordBatch, table: SourceTable) -> pa.Array:
    assert table.event_date is not None
    return pc.cast(changed.column(table.event_date), pa.date32())


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


def extract_and_serve(
    store: LakeStore,
    catalog: Catalog,
    reader: SourceReader,
    spec: SourceSpec,
    name: str,
    chunk_rows: int = CHUNK_ROWS,
) -> Extracted:
    """What the extract job's step does, without Dagster: the table's changes into staged,
    then every day the read touched served (its Parquet and the table)."""
    done = extract_table(store, catalog, reader, spec, name, chunk_rows)
    serve_days(store, catalog, spec.name, name, done.days_written, done.staged)
    return done
