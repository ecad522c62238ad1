"""PostgreSQL read straight into Arrow by ADBC's driver: binary COPY decoded in C++.

Through SQLAlchemy, every value becomes a Python object and then an Arrow value again: ~20x
the time of the driver's bulk read for a million rentals (benchmarks/README.md). A query
without bind parameters is streamed by COPY in batches, so callers render their few
parameters as literals. The driver is loaded on first read, not with the definitions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

# Bytes per batch the driver aims at (its default): a batch is the unit the
# extract holds in memory before setting it aside.
BATCH_BYTES = 16 << 20


class PostgresError(RuntimeError):
    """The driver's error: connection refused, bad credentials, a query the server rejects."""


def libpq_uri(url: sa.URL) -> str:
    """The SQLAlchemy URL (postgresql+psycopg://...) as the URI libpq reads."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def read_batches(url: sa.URL, sql: str) -> Iterator[pa.RecordBatch]:
    """The query's rows in the driver's Arrow types, batch by batch."""
    # The driver's own API, not its DB-API module, which imports pandas (seconds here).
    import adbc_driver_manager as adbc
    import adbc_driver_postgresql

    try:
        with (
            adbc_driver_postgresql.connect(libpq_uri(url)) as database,
            adbc.AdbcConnection(database) as connection,
            adbc.AdbcStatement(connection) as statement,
        ):
            statement.set_sql_query(sql)
            statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
            stream, _ = statement.execute_query()
            yield from pa.RecordBatchReader.from_stream(stream)
    except adbc.Error as error:
        raise PostgresError(str(error)) from error


def to_lake_type(column: pa.Array, kind: pa.DataType) -> pa.Array:
    """The driver's column cast to the lake's type: NUMERIC arrives as its text, and
    timestamps in microseconds are cut to the lake's milliseconds, as the Python path does."""
    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    truncate = pa.types.is_timestamp(kind) and pa.types.is_timestamp(column.type)
    return pc.cast(column, kind, safe=not truncate)
