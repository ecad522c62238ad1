"""Rows read from a relational source, typed into Arrow and merged into their days by key.

Pure logic: the caller reads the database and the lake; this decides column types, which
rows cannot be typed (quarantined with a reason), and what each day holds after a merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.datasets.spec import ARROW_TYPES

DT = "dt"

# Python type a database column yields -> the Athena type it is stored as.
ATHENA_TYPE_FOR_PYTHON: dict[type, str] = {
    bool: "boolean",
    int: "bigint",
    float: "double",
    Decimal: "double",
    str: "string",
    datetime: "timestamp",
    date: "date",
}


class SchemaDriftError(ValueError):
    """A source column changed type: the table stops until someone decides what it means."""


def athena_type(table: str, column: str, python_type: type) -> str:
    """The Athena type for a source column, or a clear error naming the table and column."""
    for candidate in type.mro(python_type):
        if candidate in ATHENA_TYPE_FOR_PYTHON:
            return ATHENA_TYPE_FOR_PYTHON[candidate]
    raise TypeError(f"{table}.{column}: no Athena type for database type {python_type.__name__}")


def check_drift(table: str, lake: Mapping[str, str], source: Mapping[str, str]) -> list[str]:
    """Columns the source added; a column whose type changed raises, naming it."""
    for column, kind in source.items():
        if column in lake and lake[column] != kind:
            raise SchemaDriftError(
                f"{table}.{column}: type changed from {lake[column]} to {kind} in the source;"
                " the table was not written"
            )
    return [column for column in source if column not in lake]


@dataclass
class TypedRows:
    """A batch as Arrow, plus the rows that could not be typed, each with its reason."""

    table: pa.Table
    rejected: list[dict[str, Any]] = field(default_factory=list)


def to_arrow(
    columns: Mapping[str, str], rows: Iterable[Sequence[Any]], event_date_column: str | None
) -> TypedRows:
    """Type each row's values into the columns' Arrow types; a row that fails goes to rejected.

    With an event-date column, each row also gets dt = that column's day (a NULL event
    date is a rejection: the row has no day to live in)."""
    names = list(columns)
    arrow_types = [ARROW_TYPES[columns[name]] for name in names]
    good: list[Sequence[Any]] = []
    rejected: list[dict[str, Any]] = []
    for row in rows:
        reason = _reject_reason(names, arrow_types, row, event_date_column)
        if reason:
            rejected.append(
                {"reason": reason, "row": dict(zip(names, map(_jsonable, row), strict=True))}
            )
        else:
            good.append(row)
    data = {
        name: pa.array([_plain(row[i]) for row in good], type=arrow_types[i])
        for i, name in enumerate(names)
    }
    table = pa.table(data, schema=pa.schema(zip(names, arrow_types, strict=True)))
    if event_date_column:
        days = pc.strftime(table[event_date_column], format="%Y-%m-%d")
        table = table.append_column(DT, days)
    return TypedRows(table, rejected)


def merge_days(
    existing: Mapping[str, pa.Table], changed: pa.Table, removed_keys: pa.Table, key: Sequence[str]
) -> dict[str, pa.Table]:
    """Each touched day (no dt column: the path holds it) after replacing rows by key
    with their newest version and dropping
    deleted keys. `existing` holds the current version of every day a changed or removed
    key lives in (a row whose event date moved leaves its old day)."""
    dropped = pa.concat_tables([changed.select(list(key)), removed_keys.select(list(key))])
    drop_ids = set(_key_ids(dropped, key))
    merged: dict[str, pa.Table] = {}
    for day, table in existing.items():
        ids = _key_ids(table, key)
        keep = pa.array([row_id not in drop_ids for row_id in ids], type=pa.bool_())
        merged[day] = table.filter(keep)
    latest = _newest_per_key(changed, key)
    for day in set(latest[DT].to_pylist()):
        rows = latest.filter(pc.equal(latest[DT], day)).drop_columns([DT])
        base = merged.get(day)
        merged[day] = rows if base is None else _concat(base, rows)
    return merged


def _newest_per_key(changed: pa.Table, key: Sequence[str]) -> pa.Table:
    """The last occurrence of each key in read order (a re-read overlap repeats rows)."""
    ids = _key_ids(changed, key)
    last = {row_id: index for index, row_id in enumerate(ids)}
    return changed.take(pa.array(sorted(last.values()), type=pa.int64()))


def _key_ids(table: pa.Table, key: Sequence[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(table[name].to_pylist() for name in key), strict=True))


def _concat(base: pa.Table, rows: pa.Table) -> pa.Table:
    """Rows appended to a day; columns the source added appear as nulls in older rows."""
    return pa.concat_tables([base, rows], promote_options="default")


def _reject_reason(
    names: list[str], arrow_types: list[pa.DataType], row: Sequence[Any], event: str | None
) -> str | None:
    for name, arrow_type, value in zip(names, arrow_types, row, strict=True):
        try:
            pa.array([_plain(value)], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as error:
            return f"column {name}: value {value!r} is not {arrow_type}: {error}"
        if name == event and value is None:
            return f"column {name}: the event date is NULL, so the row has no day"
    return None


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value if value is None or isinstance(value, (int, float, str, bool)) else repr(value)
