"""Database column types as Athena types, from the generic type name a driver reports."""

from __future__ import annotations

# SQLAlchemy's generic type names (a column type's `as_generic()` class) -> Athena type.
# Numerics become double: the catalogs here register no decimal type yet.
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


def athena_type(source: str, table: str, column: str, generic_type: str) -> str:
    try:
        return _ATHENA_TYPES[generic_type]
    except KeyError:
        raise UnsupportedColumnType(
            f"source {source} table {table}: column {column} has type {generic_type}, "
            f"which maps to no Athena type (known: {', '.join(sorted(_ATHENA_TYPES))})"
        ) from None
