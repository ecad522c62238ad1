"""Text shared by every module that reads landing bytes or writes SQL, defined once."""

# Landing files written by some Windows tools start with a byte order mark; json rejects it.
UTF8_BOM = b"\xef\xbb\xbf"


def sql_string_literal(value: str) -> str:
    """Quote a value as a SQL string literal (Athena, DuckDB and Glue all double a single quote)."""
    return "'" + value.replace("'", "''") + "'"
