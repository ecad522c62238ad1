"""Database rows typed into Arrow, value by value where a column does not fit: the rows that
fit are kept, each row that does not is set apart with its reason, for quarantine."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

from analytics_pipeline.datasets.spec import arrow_type
from analytics_pipeline.lake.staging.staged_files import file_id

VALUE_PREVIEW_CHARS = 200

Columns = tuple[tuple[str, str], ...]  # (name, Athena type), in the table's order


@dataclass(frozen=True)
class UntypableRow:
    """A source row with at least one value its column's type cannot hold."""

    source: str
    table: str
    key: dict[str, Any]  # the primary key's columns and values
    values: dict[str, Any]  # the whole row, as the driver returned it
    problems: tuple[str, ...]  # one per value that does not fit, naming its column
    columns: tuple[str, ...]  # the column of each problem, in the same order

    @property
    def row_key(self) -> str:
        return ",".join(f"{name}={value}" for name, value in self.key.items())

    def quarantine_line(self) -> dict[str, Any]:
        """The lake's quarantine line; source_key is source/table/primary key."""
        return {
            "source_key": f"{self.source}/{self.table}/{self.row_key}",
            "line": None,
            "reason": f"source {self.source} table {self.table} row {self.row_key}: "
            + "; ".join(self.problems),
            "raw": json.dumps(self.values, default=str, sort_keys=True),
        }

    def quarantine_path(self) -> str:
        """One file per row version: the same row read again (an overlap, a snapshot's next
        read) names the same file, so it is quarantined once; a changed row is a new file."""
        line = self.quarantine_line()
        identity = file_id(line["source_key"], line["raw"])
        readable = re.sub(r"[^A-Za-z0-9._-]", "_", self.row_key)[-80:]
        return f"quarantine/{self.source}/{self.table}/{readable}.{identity}.jsonl"


@dataclass
class TypedRows:
    """One batch read from a source table: the rows that fit, and the rows that do not."""

    rows: pa.RecordBatch
    untypable: list[UntypableRow] = field(default_factory=list)


def type_rows(
    source: str,
    table: str,
    columns: Columns,
    primary_key: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> TypedRows:
    """Rows (tuples in `columns` order) as one Arrow batch; a row with a value that does not
    fit its column (text in an integer, a zero date, an out-of-range number) is set apart."""
    schema = pa.schema([(name, arrow_type(kind)) for name, kind in columns])
    values: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    arrays: list[pa.Array | None] = []
    problems: dict[int, list[tuple[str, str]]] = {}
    for index, (name, kind) in enumerate(columns):
        if kind == "double":  # a NUMERIC without precision arrives as Decimal
            values[index] = [_as_double(v) for v in values[index]]
        elif pa.types.is_decimal(schema.field(index).type):
            values[index] = [_as_decimal(v) for v in values[index]]
        arrays.append(_as_array(values[index], schema.field(index).type))
        if arrays[-1] is not None:
            continue
        for row, value in enumerate(values[index]):
            problem = _value_problem(value, schema.field(index).type)
            if problem:
                shown = repr(value)[:VALUE_PREVIEW_CHARS]
                problems.setdefault(row, []).append(
                    (name, f"column {name}: value {shown} is not {kind} ({problem})")
                )
    if not problems:
        return TypedRows(pa.RecordBatch.from_arrays(arrays, schema=schema))
    names = [name for name, _ in columns]
    untypable = [
        UntypableRow(
            source,
            table,
            key={name: rows[row][names.index(name)] for name in primary_key},
            values=dict(zip(names, rows[row], strict=True)),
            problems=tuple(text for _, text in found),
            columns=tuple(column for column, _ in found),
        )
        for row, found in sorted(problems.items())
    ]
    keep = [row for row in range(len(rows)) if row not in problems]
    kept = [
        pa.array([column[row] for row in keep], field.type)
        for column, field in zip(values, schema, strict=True)
    ]
    return TypedRows(pa.RecordBatch.from_arrays(kept, schema=schema), untypable)


def _as_double(value: Any) -> Any:
    """A Decimal as float; one beyond double's range stays a Decimal, which no column takes
    (float() would make it infinity without a word)."""
    if not isinstance(value, Decimal):
        return value
    number = float(value)
    return value if math.isinf(number) and value.is_finite() else number


def _as_decimal(value: Any) -> Any:
    """A DECIMAL column's value as Decimal: SQLite may hand back a REAL or text. A float is
    read by its shortest repr (2.99, not 2.98999...); text that is no number stays text,
    which no decimal column takes."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return value
    return value


def _as_array(column: Sequence[Any], kind: pa.DataType) -> pa.Array | None:
    """The column as Arrow, or None if a value does not fit."""
    # Arrow truncates 1.5 into an integer column silently; a fraction must not fit.
    if pa.types.is_integer(kind) and float in set(map(type, column)):
        return None
    try:
        return pa.array(column, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return None


def _value_problem(value: Any, kind: pa.DataType) -> str | None:
    """Why one value does not fit `kind`, or None if it does."""
    if pa.types.is_integer(kind) and isinstance(value, float) and not value.is_integer():
        return "has a fraction"
    if isinstance(value, Decimal) and pa.types.is_floating(kind):
        return "beyond the range of a double"
    if isinstance(value, Decimal) and pa.types.is_decimal(kind) and value.is_finite():
        sign, digits, exponent = value.normalize().as_tuple()
        assert isinstance(exponent, int)  # finite
        if -exponent > kind.scale:
            return f"more than {kind.scale} digits after the point"
        if len(digits) + exponent > kind.precision - kind.scale:
            return f"more than {kind.precision - kind.scale} digits before the point"
    if pa.types.is_temporal(kind) and isinstance(value, str):
        # MySQL's zero dates ('0000-00-00') reach Python as the driver's text.
        return "text that is no valid date or time"
    try:
        pa.array([value], kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as error:
        return str(error).splitlines()[0]
    return None
