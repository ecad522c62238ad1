"""Build one day of an output table from every staged file of that day, exactly once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.datasets.spec import DatasetSpec, TableSpec
from analytics_pipeline.lake.staging.staged_files import read_staged_file, staged_schema
from analytics_pipeline.lake.versioned_days import validate_dt

if TYPE_CHECKING:
    from analytics_pipeline.resources.store import LakeStore


@dataclass(frozen=True)
class CompactedDay:
    table: pa.Table
    staged_files: int
    staged_rows: int  # as stored, duplicates from re-staged batches included
    distinct_records: int  # source records of the dataset for the day
    expected_rows: int  # distinct source records that belong in this table
    duplicates_dropped: int
    staged_paths: tuple[str, ...] = ()  # the staged files read, in order


def staged_prefix(spec: DatasetSpec, dt: str) -> str:
    return f"staged/{spec.name}/dt={validate_dt(dt)}/"


def staged_day_paths(store: LakeStore, spec: DatasetSpec, dt: str) -> list[str]:
    return [p for p in store.list_files(staged_prefix(spec, dt)) if p.endswith(".parquet")]


def _read_staged(
    store: LakeStore, spec: DatasetSpec, paths: list[str], held: Mapping[str, pa.Table]
) -> pa.Table:
    """These staged files' rows, in the staged schema (the source key and version as
    dictionaries, see read_staged_file); a file this process wrote and still holds is not
    read back."""
    schema = staged_schema(spec)
    tables = [
        held[p] if p in held else _in_schema(read_staged_file(store, p), schema, spec, p)
        for p in paths
    ]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _in_schema(staged: pa.Table, schema: pa.Schema, spec: DatasetSpec, path: str) -> pa.Table:
    """A staged file in today's staged schema. A file staged before an optional field was
    added to the spec holds it as null (that field was not read then); a required one
    missing means the file cannot be built from, and says so."""
    for position, name in enumerate(schema.names):
        if name in staged.column_names:
            continue
        if name.startswith("_") or spec.field(name).required:
            raise ValueError(
                f"staged file {path} has no column {name!r}, which {spec.name} requires: "
                "it was staged under an older spec; re-stage its landing files"
            )
        staged = staged.add_column(
            position, name, pa.nulls(staged.num_rows, schema.field(name).type)
        )
    return staged.select(schema.names).cast(schema)


def compact_day(
    store: LakeStore,
    spec: DatasetSpec,
    table: TableSpec,
    dt: str,
    held: Mapping[str, pa.Table] | None = None,
) -> CompactedDay:
    """Deduplicate by source record, keep the table's rows and columns, order by source.

    One row per source record (key, content version, line): a batch staged twice after a
    crash counts once. Done on one int64 per row (source rank << 32 | line) with numpy, which
    takes a fraction of a SQL window's time; the first staged copy of a record is kept."""
    paths = staged_day_paths(store, spec, dt)
    staged = _read_staged(store, spec, paths, held or {})
    codes = source_codes(staged)
    order = np.argsort(codes, kind="stable")  # by source record, staged order among copies
    distinct = int(np.count_nonzero(_group_starts(codes[order])))
    if table.where_in is not None:
        column, wanted = table.where_in
        values = staged.column(column)
        matches = pc.is_in(values, pa.array(wanted).cast(values.type))
        order = order[pc.fill_null(matches, False).to_numpy(zero_copy_only=False)[order]]
    keep = order[_group_starts(codes[order])]
    data = staged.select(list(table.columns)).take(keep).cast(spec.table_arrow_schema(table))
    return CompactedDay(
        table=data,
        staged_files=len(paths),
        staged_rows=staged.num_rows,
        distinct_records=distinct,
        expected_rows=len(keep),
        duplicates_dropped=staged.num_rows - distinct,
        staged_paths=tuple(paths),
    )


def source_codes(staged: pa.Table) -> np.ndarray:
    """One int64 per row, ordered as (key, version, line) and equal exactly for one record."""
    version_rank = _dense_ranks(staged.column("_source_version"))
    versions = int(version_rank.max()) + 1 if len(version_rank) else 1
    pair = _dense_ranks(staged.column("_source_key")) * versions + version_rank
    if len(pair) and pair.max() >= 1 << 31:  # keep pair << 32 inside an int64
        pair = np.unique(pair, return_inverse=True)[1].astype(np.int64)
    line_column = staged.column("_source_line")
    if line_column.null_count:
        raise ValueError("a staged row has no _source_line")
    lines = line_column.to_numpy().astype(np.int64)
    if len(lines) and lines.min() < 0:
        raise ValueError("a staged row has a negative _source_line")
    return (pair << 32) | lines


def _dense_ranks(column: pa.ChunkedArray) -> np.ndarray:
    """Each value's dense rank (from 0) among the column's distinct values, in byte order."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    rank = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="dense")
    return (rank.to_numpy().astype(np.int64) - 1)[encoded.indices.to_numpy(zero_copy_only=False)]


def _group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """True where a run of equal codes starts."""
    first = np.ones(len(sorted_codes), dtype=bool)
    first[1:] = sorted_codes[1:] != sorted_codes[:-1]
    return first
