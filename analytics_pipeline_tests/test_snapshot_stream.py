"""A snapshot streamed to its file: the same rows give the same file whatever the batches,
equal keys are counted across chunk boundaries, and the rows are never held whole."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.lake.snapshot_stream import write_snapshot
from analytics_pipeline.lake.versioned_days import (
    DUPLICATED_KEYS_KEY,
    duplicated_keys,
    duplicated_keys_in_footer,
)
from analytics_pipeline.resources.local.store import LocalLakeStore

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("price", pa.float64())])
KEY = ("id",)


def rows(ids: list[int]) -> pa.Table:
    return pa.table(
        {
            "id": ids,
            "name": [f"film number {i} " * 4 if i % 7 else None for i in ids],
            "price": [i / 100 for i in ids],
        },
        schema=SCHEMA,
    )


def read(store: LocalLakeStore, path: str) -> pa.Table:
    return pq.read_table(pa.BufferReader(store.read_bytes(path)))


def batches(table: pa.Table, size: int) -> Iterator[pa.RecordBatch]:
    yield from table.to_batches(max_chunksize=size)


def test_the_same_rows_in_other_batches_are_the_same_version(store: LocalLakeStore) -> None:
    table = rows(list(range(1000)))
    first = write_snapshot(store, "film", "1970-01-01", batches(table, 7), SCHEMA, KEY, 64)
    again = write_snapshot(store, "film", "1970-01-01", batches(table, 333), SCHEMA, KEY, 64)
    assert not first.unchanged and again.unchanged
    assert again.path == first.path and again.digest == first.digest
    assert read(store, first.path).equals(table)
    changed = rows([*range(999), 5000])
    other = write_snapshot(store, "film", "1970-01-01", batches(changed, 7), SCHEMA, KEY, 64)
    assert not other.unchanged and other.path != first.path
    assert read(store, other.path).equals(changed)


def test_equal_keys_are_counted_once_across_chunk_boundaries(store: LocalLakeStore) -> None:
    # With chunks of 4 rows: key 3 spans rows 3-4 (a boundary), 7 spans 7-12 (three chunks),
    # 20 is alone, 21 fills row 14-15 at the end of a chunk.
    ids = [0, 1, 2, 3, 3, 4, 5, 7, 7, 7, 7, 7, 7, 20, 21, 21, 22]
    table = rows(ids)
    written = write_snapshot(store, "film", "1970-01-01", batches(table, 3), SCHEMA, KEY, 4)
    footer = store.parquet_footer(written.path)
    assert DUPLICATED_KEYS_KEY in (footer.metadata or {})
    assert duplicated_keys_in_footer(footer) == duplicated_keys(table, KEY) == 3


def test_an_empty_snapshot_is_an_empty_file(store: LocalLakeStore) -> None:
    written = write_snapshot(store, "film", "1970-01-01", iter([]), SCHEMA, KEY, 4)
    assert written.rows == 0
    assert read(store, written.path).equals(SCHEMA.empty_table())


def test_the_rows_are_never_held_whole(store: LocalLakeStore) -> None:
    table = rows(list(range(100_000)))
    whole = table.nbytes
    held: list[int] = []

    def produced() -> Iterator[pa.RecordBatch]:
        for start in range(0, table.num_rows, 1000):
            # A batch made fresh, as a driver would, while what came before is written.
            batch = table.take(list(range(start, start + 1000))).to_batches()[0]
            held.append(pa.total_allocated_bytes())
            yield batch

    baseline = pa.total_allocated_bytes()
    written = write_snapshot(store, "film", "1970-01-01", produced(), SCHEMA, KEY, 4096)
    assert written.rows == table.num_rows
    assert max(held) - baseline < whole / 4, (max(held) - baseline, whole)
    assert read(store, written.path).equals(table)
