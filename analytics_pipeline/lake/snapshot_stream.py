"""A snapshot table written from the database's batches in bounded memory.

The rows arrive in primary-key order and are cut into chunks of a fixed number of rows, so
the file and its content digest depend on the rows alone, not on how the driver batched
them. Each chunk goes to a local file as one row group; only a changed snapshot is uploaded
as a new version, so an unchanged re-read keeps its version (and its data version)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.lake.parquet_encoding import WRITE_OPTIONS
from analytics_pipeline.lake.versioned_days import (
    DIGEST_KEY,
    DUPLICATED_KEYS_KEY,
    WrittenPartition,
    content_digest,
    duplicated_keys,
    new_version_path,
    version_holding,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from analytics_pipeline.resources.store import LakeStore

CHUNK_ROWS = 65_536  # rows per row group, and per piece of the digest


def write_snapshot(
    store: LakeStore,
    table: str,
    dt: str,
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    key: tuple[str, ...],
    chunk_rows: int = CHUNK_ROWS,
    layer: str = "parquet",
) -> WrittenPartition:
    """The day's new version from key-ordered batches, or the newest one if it holds the same."""
    digest = hashlib.sha256()
    rows = duplicates = 0
    carry = schema.empty_table().select(list(key))  # the last two keys of the chunk before
    with tempfile.NamedTemporaryFile(prefix="snapshot-", suffix=".parquet") as local:
        with pq.ParquetWriter(local.name, schema, use_dictionary=True, **WRITE_OPTIONS) as out:
            for chunk in _fixed_chunks(batches, schema, chunk_rows):
                digest.update(content_digest(chunk).encode())
                out.write_table(chunk)
                rows += chunk.num_rows
                # In key order a run of equal keys is contiguous: counted once, across chunks.
                window = pa.concat_tables([carry, chunk.select(list(key))])
                duplicates += duplicated_keys(window, key) - duplicated_keys(carry, key)
                carry = window.slice(max(window.num_rows - 2, 0)).combine_chunks()
            counted = {"duplicated_keys": duplicates, "rows": rows}
            out.add_key_value_metadata(
                {
                    DIGEST_KEY.decode(): digest.hexdigest(),
                    DUPLICATED_KEYS_KEY.decode(): json.dumps(counted),
                }
            )
        same = version_holding(store, table, dt, digest.hexdigest(), layer)
        path = same or new_version_path(table, dt, layer)
        size = store.size(same) if same else _upload(store, path, local.name)
    return WrittenPartition(path, rows, size, digest.hexdigest(), unchanged=same is not None)


def _upload(store: LakeStore, path: str, local: str) -> int:
    with open(local, "rb") as source:
        store.write_stream(path, source)
        return source.tell()


def _fixed_chunks(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, chunk_rows: int
) -> Iterator[pa.Table]:
    """The rows again, in tables of exactly chunk_rows rows (the last one may be shorter)."""
    pending = schema.empty_table()
    for batch in batches:
        pending = pa.concat_tables([pending, pa.Table.from_batches([batch], schema)])
        while pending.num_rows >= chunk_rows:
            yield _fresh(pending.slice(0, chunk_rows))
            pending = pending.slice(chunk_rows)
    if pending.num_rows:
        yield _fresh(pending)


def _fresh(rows: pa.Table) -> pa.Table:
    """The rows in buffers of their own: a slice keeps its offset into the batch's buffers,
    which would make the digest depend on where the batch began."""
    return rows.take(pa.array(range(rows.num_rows), pa.int64())).combine_chunks()
