"""Staged files: their schema and paths, the rows waiting to be written, and writing them."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.datasets.spec import ARROW_TYPES, DatasetSpec
from analytics_pipeline.lake.parquet_encoding import parquet_bytes
from analytics_pipeline.lake.parsing.arrow_parsing import ParsedTable
from analytics_pipeline.lake.parsing.records import ParsedFile
from analytics_pipeline.lake.staging.report import StageReport

if TYPE_CHECKING:
    from analytics_pipeline.resources.store import LakeStore

SOURCE_COLUMNS = ("_source_key", "_source_version", "_source_line")
# Bound memory on big batches: staged files are written every this many records.
FLUSH_RECORDS = 250_000
# A parsed table whose days come in at most this many stretches is split by slicing.
MAX_SLICED_DAYS = 1000
# The rows of a batch's staged files kept in memory after they are written (~35 bytes a row
# for IoT readings), so the run that staged them builds their days without reading them back.
HELD_STAGED_ROWS = 8_000_000
# A source key or version repeats for every row of its landing file: one value, many indices.
SOURCE_TEXT = pa.dictionary(pa.int32(), pa.string())


def staged_schema(spec: DatasetSpec) -> pa.Schema:
    """The staged rows as Arrow holds them; stored as Parquet, the source key and version
    are plain strings (dictionary-encoded pages)."""
    return pa.schema(
        [(f.name, ARROW_TYPES[f.athena_type]) for f in spec.fields]
        + [
            ("_source_key", SOURCE_TEXT),
            ("_source_version", SOURCE_TEXT),
            ("_source_line", pa.int32()),
        ]
    )


def read_staged_file(store: LakeStore, path: str, columns: list[str] | None = None) -> pa.Table:
    """A staged file's rows, its source key and version as dictionaries: one value repeats
    for every row of a landing file, so strings would be the costliest part of the read."""
    return pq.read_table(
        pa.BufferReader(store.read_bytes(path)),
        columns=columns,
        read_dictionary=["_source_key", "_source_version"],
    )


def file_id(key: str, version: str) -> str:
    """A landing file's identity: its key and its content, never its arrival time."""
    return hashlib.sha256(f"{key}\0{version}".encode()).hexdigest()[:20]


def quarantine_path(dataset: str, key: str, version: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", key)[-80:]
    return f"quarantine/{dataset}/{readable}.{file_id(key, version)}.jsonl"


@dataclass
class UnwrittenRows:
    """Staged rows not yet written, by event date: dicts from the row path, tables from Arrow."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tables: dict[str, list[pa.Table]] = field(default_factory=lambda: defaultdict(list))
    size: int = 0

    def add(self, parsed: ParsedFile | ParsedTable, key: str, version: str) -> None:
        if isinstance(parsed, ParsedFile):
            for record in parsed.records:
                record["_source_key"] = key
                record["_source_version"] = version
                self.rows[record.pop("dt")].append(record)
            self.size += len(parsed.records)
            return
        table = parsed.table
        indices = pa.array(np.zeros(table.num_rows, dtype=np.int32))
        for name, value in (("_source_key", key), ("_source_version", version)):
            source = pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))
            table = table.append_column(name, source)
        self.add_table(table)

    def add_table(self, table: pa.Table) -> None:
        """Typed rows with dt and their source columns."""
        dts = table.column("dt").combine_chunks()
        stretches = _equal_value_stretches(dts, MAX_SLICED_DAYS)
        if stretches is None or len(stretches) != len({dt for dt, _, _ in stretches}):
            # Days interleaved (one-object files of many days): one stable sort by day puts
            # each day in one stretch, in arrival order. A filter a day cost 0.5 s for
            # 100,000 files over 366 days, the sort and slices 0.15 s.
            order = pc.sort_indices(dts)
            table, dts = table.take(order), dts.take(order)
            stretches = _equal_value_stretches(dts, len(dts) + 1)
        # Each day in one stretch (readings usually come in time order): zero-copy slices.
        for dt, first, length in stretches or []:
            self.tables[dt].append(table.slice(first, length).drop_columns(["dt"]))
        self.size += table.num_rows

    def by_dt(self, schema: pa.Schema) -> list[tuple[str, pa.Table]]:
        out = []
        for dt in sorted(set(self.rows) | set(self.tables)):
            parts = _cast_together(self.tables.get(dt, []), schema)
            if self.rows.get(dt):
                parts.insert(0, pa.Table.from_pylist(self.rows[dt], schema=schema))
            out.append((dt, pa.concat_tables(parts)))
        return out

    def clear(self) -> None:
        self.rows.clear()
        self.tables.clear()
        self.size = 0


def _cast_together(tables: list[pa.Table], schema: pa.Schema) -> list[pa.Table]:
    """The tables in the schema: cast at once when they share a schema (a day's slices of
    many batches: a cast each cost 0.6 s over 366 days of 100,000 files, one a day 0.2 s)."""
    if tables and all(t.schema.equals(tables[0].schema) for t in tables[1:]):
        tables = [pa.concat_tables(tables)]
    return [t.select(schema.names).cast(schema) for t in tables]


def _equal_value_stretches(values: pa.Array, limit: int) -> list[tuple[Any, int, int]] | None:
    """(value, first row, rows) of each stretch of equal adjacent values; None if more
    than `limit` stretches."""
    if len(values) == 0:
        return []
    changes = pc.indices_nonzero(pc.not_equal(values.slice(1), values.slice(0, len(values) - 1)))
    if len(changes) >= limit:
        return None
    starts = [0, *(changes.to_numpy() + 1).tolist()]
    ends = [*starts[1:], len(values)]
    return [(values[a].as_py(), a, b - a) for a, b in zip(starts, ends, strict=True)]


def write_staged_parts(
    store: LakeStore,
    spec: DatasetSpec,
    report: StageReport,
    pending: UnwrittenRows,
    identities: list[str],
    part: int,
    prefix: str | None = None,
) -> None:
    """Write the pending rows, a file per day; keep them in report.held while it has room."""
    schema = staged_schema(spec)
    batch = prefix or batch_id(identities)
    for dt, table in pending.by_dt(schema):
        path = f"staged/{spec.name}/dt={dt}/{batch}-{part:04d}.parquet"
        # Dictionary-encoded: the source columns only (one value per landing file). Hashing
        # the value columns costs more than it saves: a staged file is read once or twice,
        # then compacted.
        store.write_bytes(path, parquet_bytes(table, use_dictionary=list(SOURCE_COLUMNS[:2])))
        report.staged_paths.append(path)
        if report.held_rows + table.num_rows <= HELD_STAGED_ROWS:
            report.held[path] = table
            report.held_rows += table.num_rows
    pending.clear()


def batch_id(identities: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(identities)).encode()).hexdigest()[:20]


def jsonl_bytes(rows: Any) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
