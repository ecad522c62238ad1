"""A dataset declared once: landing layout, fields in Athena types, event time, output tables."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

# Athena column type -> Arrow type written to Parquet. Timestamps are INT64 milliseconds:
# pyarrow defaults to nanoseconds, which Athena/Glue do not handle, and INT96 is deprecated.
ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "int": pa.int32(),
    "smallint": pa.int16(),
    "double": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
}

# Athena column type -> DuckDB type, for the local catalog.
DUCKDB_TYPES: dict[str, str] = {
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}

# decimal(p,s): exact numbers (money), as Athena declares them; precision at most 38.
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")
MAX_DECIMAL_PRECISION = 38


def decimal_parts(kind: str) -> tuple[int, int] | None:
    """(precision, scale) of a valid decimal(p,s) type; None for any other type."""
    match = _DECIMAL.fullmatch(kind)
    if match is None:
        return None
    precision, scale = int(match[1]), int(match[2])
    valid = 0 < precision <= MAX_DECIMAL_PRECISION and scale <= precision
    return (precision, scale) if valid else None


def is_column_type(kind: str) -> bool:
    return kind in ARROW_TYPES or decimal_parts(kind) is not None


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow (and so Parquet) type of an Athena column type."""
    parts = decimal_parts(kind)
    return pa.decimal128(*parts) if parts else ARROW_TYPES[kind]


def duckdb_type(kind: str) -> str:
    """The DuckDB type of an Athena column type, for the local catalog."""
    parts = decimal_parts(kind)
    return f"DECIMAL({parts[0]},{parts[1]})" if parts else DUCKDB_TYPES[kind]


INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "bigint": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "smallint": (-(2**15), 2**15 - 1),
}

# Timestamp formats a field may declare.
EPOCH_MILLIS = "epoch_millis"
ISO_8601 = "iso8601"


@dataclass(frozen=True)
class Field:
    """One output column: where it is in the JSON object and what it must hold."""

    name: str
    athena_type: str
    path: tuple[str, ...] = ()
    required: bool = True
    allowed: tuple[str, ...] | None = None
    pattern: re.Pattern[str] | None = None
    timestamp_format: str | None = None
    # Strings that stand for null (Pinpoint writes the literal "null" in attributes).
    null_literals: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.athena_type not in ARROW_TYPES:
            raise ValueError(f"field {self.name}: unknown Athena type {self.athena_type!r}")
        if not self.path:
            object.__setattr__(self, "path", (self.name,))

    @property
    def dotted_path(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class TableSpec:
    """An output table: a selection of the dataset's fields, optionally a subset of its rows."""

    name: str
    columns: tuple[str, ...]
    # (field, values): the table takes the rows whose field holds one of the values.
    where_in: tuple[str, tuple[str, ...]] | None = None
    key: tuple[str, ...] = ()  # columns that identify a row, for the duplicate check
    description: str = ""


@dataclass(frozen=True)
class Routing:
    """The field a dataset's tables split its records by, and every value some table takes."""

    field: str
    values: frozenset[str]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    layout: str  # "json": one object per file; "ndjson": one object per line
    fields: tuple[Field, ...]
    event_time_field: str
    tables: tuple[TableSpec, ...] = field(default_factory=tuple)
    # A table not rebuilt for this long is failing its freshness policy (the UI shows it and
    # the alert sensor reports it); ANALYTICS_FRESHNESS_HOURS overrides it per dataset.
    freshness_hours: int = 26

    def __post_init__(self) -> None:
        if self.layout not in ("json", "ndjson"):
            raise ValueError(f"dataset {self.name}: layout must be json or ndjson")
        names = [f.name for f in self.fields]
        if self.event_time_field not in names:
            raise ValueError(f"dataset {self.name}: event time field not among its fields")
        for table in self.tables:
            unknown = set(table.columns) - set(names)
            if unknown:
                raise ValueError(f"table {table.name}: unknown columns {sorted(unknown)}")
        routed_by = {t.where_in[0] for t in self.tables if t.where_in is not None}
        if len(routed_by) > 1:
            # One field, so that an unrouted record has one value to name.
            raise ValueError(f"dataset {self.name}: tables split rows by {sorted(routed_by)}")
        if not routed_by <= set(names):
            raise ValueError(f"dataset {self.name}: tables split rows by an unknown field")

    @property
    def routing(self) -> Routing | None:
        """How records are routed to tables, when every table takes only some of them: a
        record whose value no table takes is quarantined as unrouted. None: all are kept."""
        if not self.tables or any(t.where_in is None for t in self.tables):
            return None
        wheres = [t.where_in for t in self.tables if t.where_in is not None]
        return Routing(wheres[0][0], frozenset(v for _, values in wheres for v in values))

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def event_time(self) -> Field:
        return self.field(self.event_time_field)

    def table_fields(self, table: TableSpec) -> list[Field]:
        return [self.field(c) for c in table.columns]

    def table_arrow_schema(self, table: TableSpec) -> pa.Schema:
        return pa.schema([(f.name, ARROW_TYPES[f.athena_type]) for f in self.table_fields(table)])
