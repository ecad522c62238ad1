"""One incremental extract of a source table into its daily Parquet partitions.

Changed rows (cursor >= last cursor - overlap, or a NULL cursor) and the source's keys are
read, merged into the days they touch by primary key, written as new day versions and
published; only then is the cursor saved. A crash before that re-reads the same rows,
and the by-key merge keeps each row once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from analytics_pipeline.datasets.source_spec import SourceTable
from analytics_pipeline.lake.source_rows import (
    athena_type,
    check_drift,
    merge_days,
    to_arrow,
)
from analytics_pipeline.lake.table_definition import TableDef
from analytics_pipeline.lake.versioned_days import publish_partitions, versions, write_partition

if TYPE_CHECKING:
    from analytics_pipeline.resources.catalog import Catalog
    from analytics_pipeline.resources.store import LakeStore

DEFAULT_OVERLAP = timedelta(hours=1)


class SourceReader(Protocol):
    def column_types(self, table: str) -> dict[str, type]: ...

    def rows(
        self,
        table: str,
        columns: Sequence[str],
        cursor_column: str | None = None,
        since: datetime | None = None,
    ) -> Iterator[Sequence[Any]]: ...


@dataclass(frozen=True)
class ExtractResult:
    changed_rows: int
    deleted_rows: int
    quarantined_rows: int
    days_written: list[str]
    cursor: str | None


def state_path(source: str, table: str) -> str:
    return f"state/sources/{source}/{table}.json"


def extract_incremental(
    store: LakeStore,
    catalog: Catalog,
    reader: SourceReader,
    source: str,
    spec: SourceTable,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> ExtractResult:
    """Bring the lake's copy of `spec` level with the source (see the module docstring)."""
    if spec.event_date_column is None:
        raise ValueError(f"source {source}: table {spec.name} is not incremental (no event date)")
    state = _load_state(store, source, spec.name)
    source_columns = {
        name: athena_type(spec.name, name, kind)
        for name, kind in reader.column_types(spec.name).items()
    }
    check_drift(spec.name, state.get("columns", {}), source_columns)
    since = datetime.fromisoformat(state["cursor"]) - overlap if state.get("cursor") else None
    rows = reader.rows(spec.name, list(source_columns), spec.cursor_column, since)
    typed = to_arrow(source_columns, rows, spec.event_date_column)
    source_keys = {tuple(row) for row in reader.rows(spec.name, list(spec.primary_key))}

    lake_days = _lake_days(store, catalog, spec.name)
    lake_keys = {
        key: day
        for day, table in lake_days.items()
        for key in zip(*(table[n].to_pylist() for n in spec.primary_key), strict=True)
    }
    removed = [key for key in lake_keys if key not in source_keys]
    changed_keys = zip(*(typed.table[n].to_pylist() for n in spec.primary_key), strict=True)
    touched = {lake_keys[key] for key in changed_keys if key in lake_keys}
    touched |= {lake_keys[key] for key in removed}
    removed_table = pa.table(
        {
            name: pa.array([key[i] for key in removed], typed.table.schema.field(name).type)
            for i, name in enumerate(spec.primary_key)
        }
    )
    merged = merge_days(
        {day: lake_days[day] for day in touched}, typed.table, removed_table, spec.primary_key
    )
    _quarantine(store, source, spec.name, typed.rejected)
    columns = {**state.get("columns", {}), **source_columns}
    definition = TableDef(spec.name, tuple(columns.items()))
    paths = {
        day: write_partition(store, spec.name, day, data, spec.primary_key).path
        for day, data in sorted(merged.items())
    }
    if paths:
        publish_partitions(store, catalog, definition, paths)
    cursors = [c for c in typed.table[spec.cursor_column].to_pylist() if c is not None]
    cursor = max(cursors).isoformat() if cursors else state.get("cursor")
    _save_state(store, source, spec.name, {"cursor": cursor, "columns": columns})
    return ExtractResult(
        typed.table.num_rows, len(removed), len(typed.rejected), sorted(paths), cursor
    )


def _lake_days(store: LakeStore, catalog: Catalog, table: str) -> dict[str, pa.Table]:
    """The published version of every day of the table (what readers see now)."""
    if table not in catalog.tables():
        return {}
    days = {}
    for day, location in catalog.partitions(table).items():
        path = next(p for p in versions(store, table, day) if store.location(p) == location)
        days[day] = pq.read_table(io.BytesIO(store.read_bytes(path)))
    return days


def _quarantine(store: LakeStore, source: str, table: str, rejected: list[dict[str, Any]]) -> None:
    if rejected:
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        lines = "".join(json.dumps({"table": table, **entry}) + "\n" for entry in rejected)
        store.write_bytes(f"quarantine/{source}/{table}/{stamp}.ndjson", lines.encode())


def _load_state(store: LakeStore, source: str, table: str) -> dict[str, Any]:
    path = state_path(source, table)
    return json.loads(store.read_bytes(path)) if store.exists(path) else {}


def _save_state(store: LakeStore, source: str, table: str, state: dict[str, Any]) -> None:
    store.write_bytes(state_path(source, table), json.dumps(state).encode())
