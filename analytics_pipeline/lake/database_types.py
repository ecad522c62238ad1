"""Database column types as Athena types, from the generic type name a driver reports."""

from __future__ import annotations

from typing import Any

from analytics_pipeline.datasets.spec import MAX_DECIMAL_PRECISION

# SQLAlchemy's generic type names (a column type's `as_generic()` class) -> Athena type.
# A NUMERIC/DECIMAL with its precision (at most 38) is decimal(p,s), exact, as money must be;
# one without (PostgreSQL's bare `numeric`) or wider than Athena's 38 digits is double.
_ATHENA_TYPES = {
    "SmallInteger": "smallint",
    "Integer": "int",
    "BigInteger": "bigint",
    "Boolean": "boolean",
    "Float": "double",
    "Double": "double",
    "Numeric": "double",
    "String": "string",
    "Text": "string",
    "Unicode": "string",
    "UnicodeText": "string",
    "Enum": "string",
    "Uuid": "string",
    "Date": "date",
    "DateTime": "timestamp",
}


class UnsupportedColumnType(ValueError):
    """A source column whose type has no Athena counterpart here."""


def athena_type(
    source: str,
    table: str,
    column: str,
    generic_type: str,
    precision: int | None = None,
    scale: int | None = None,
) -> str:
    # A negative scale (PostgreSQL allows one) stays double too.
    digits = precision if precision and precision <= MAX_DECIMAL_PRECISION else None
    if generic_type == "Numeric" and digits is not None and 0 <= (scale or 0) <= digits:
        return f"decimal({digits},{scale or 0})"
    try:
        return _ATHENA_TYPES[generic_type]
    except KeyError:
        raise UnsupportedColumnType(
            f"source {source} table {table}: column {column} has type {generic_type}, "
            f"which maps to no Athena type (known: {', '.join(sorted(_ATHENA_TYPES))})"
        ) from None


def column_athena_type(source: str, table: str, column: str, kind: Any) -> str:
    """The Athena type of a SQLAlchemy column type: its generic type, and a NUMERIC's
    precision and scale."""
    return athena_type(
        source,
        table,
        column,
        generic_type_name(kind),
        getattr(kind, "precision", None),
        getattr(kind, "scale", None),
    )


def generic_type_name(kind: Any) -> str:
    """The class name of a SQLAlchemy type's generic form (NUMERIC of any dialect: Numeric)."""
    try:
        return type(kind.as_generic()).__name__
    except NotImplementedError:
        return type(kind).__name__
