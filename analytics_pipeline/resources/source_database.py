"""The connection to a source database (any SQLAlchemy URL), read in Arrow batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import sqlalchemy as sa

from analytics_pipeline.datasets.source_spec import SourceTable
from analytics_pipeline.datasets.spec import ARROW_TYPES
from analytics_pipeline.lake.database_types import athena_type
from analytics_pipeline.resources import postgres_arrow


class SourceTableError(RuntimeError):
    """A source table that cannot be read: the database is unreachable, or the table missing."""


class SourceDatabase(dg.ConfigurableResource):
    """Reads a source's tables; streams rows so a table never has to fit in memory."""

    source: str
    url: str
    batch_rows: int = 50_000

    def exists(self) -> bool:
        """False only for a SQLite file not created yet (the demo's, before sample data):
        SQLite would create an empty database on connect."""
        url = sa.make_url(self.url)
        if url.get_backend_name() != "sqlite" or not url.database:
            return True
        return Path(url.database).exists()

    def columns(self, table: str) -> tuple[tuple[str, str], ...]:
        """The table's columns as (name, Athena type), in the database's order."""
        with self._connect(table) as connection:
            try:
                found = sa.inspect(connection).get_columns(table)
            except sa.exc.NoSuchTableError:
                raise SourceTableError(self._where(table, "no such table")) from None
        if not found:
            raise SourceTableError(self._where(table, "no such table"))
        return tuple(
            (c["name"], athena_type(self.source, table, c["name"], _generic(c["type"])))
            for c in found
        )

    def read_changes(
        self, table: SourceTable, columns: tuple[tuple[str, str], ...], since: datetime | None
    ) -> Iterator[pa.RecordBatch]:
        """Rows whose cursor is at or after `since` or NULL (every row when since is None)."""

        def changes(source: sa.Table) -> sa.Select[Any]:
            query = sa.select(*(source.c[name] for name, _ in columns))
            if since is None:
                return query
            cursor = source.c[table.cursor]
            return query.where(sa.or_(cursor >= since, cursor.is_(None)))

        yield from self._batches(table.name, changes, columns)

    def read_keys(self, table: SourceTable) -> pa.Table:
        """Only the primary key of every row: the cheap read that finds deletes."""
        columns = tuple((name, "bigint") for name in table.primary_key)

        def keys(source: sa.Table) -> sa.Select[Any]:
            return sa.select(*(source.c[name] for name in table.primary_key))

        batches = list(self._batches(table.name, keys, columns))
        return pa.Table.from_batches(batches, schema=_schema(columns))

    def _batches(
        self,
        table: str,
        query: Callable[[sa.Table], sa.Select[Any]],
        columns: tuple[tuple[str, str], ...],
    ) -> Iterator[pa.RecordBatch]:
        schema = _schema(columns)
        with self._connect(table) as connection:
            try:
                # Reflected, so the driver's values come back typed (SQLite keeps text).
                select = query(sa.Table(table, sa.MetaData(), autoload_with=connection))
            except sa.exc.NoSuchTableError:
                raise SourceTableError(self._where(table, "no such table")) from None
            if connection.dialect.name != "postgresql":
                yield from self._python_batches(table, schema, connection, select)
                return
            literal = {"literal_binds": True}  # a bound query would not be streamed by COPY
            sql = str(select.compile(dialect=connection.dialect, compile_kwargs=literal))
        yield from self._postgres_batches(table, schema, sql)

    def _python_batches(
        self, table: str, schema: pa.Schema, connection: sa.Connection, select: sa.Select[Any]
    ) -> Iterator[pa.RecordBatch]:
        """Rows through SQLAlchemy's driver, streamed, converted column by column."""
        try:
            result = connection.execution_options(
                stream_results=True, yield_per=self.batch_rows
            ).execute(select)
        except sa.exc.DBAPIError as error:
            raise SourceTableError(self._where(table, str(error.orig))) from error
        for rows in result.partitions():
            yield self._record_batch(table, schema, list(zip(*rows, strict=True)))

    def _postgres_batches(
        self, table: str, schema: pa.Schema, sql: str
    ) -> Iterator[pa.RecordBatch]:
        """PostgreSQL's rows as Arrow from the driver, never as Python objects."""
        try:
            for batch in postgres_arrow.read_batches(sa.make_url(self.url), sql):
                arrays = [
                    self._column(table, f, a) for f, a in zip(schema, batch.columns, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        except postgres_arrow.PostgresError as error:
            raise SourceTableError(self._where(table, str(error))) from error

    def _column(self, table: str, field: pa.Field, column: pa.Array) -> pa.Array:
        try:
            return postgres_arrow.to_lake_type(column, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise SourceTableError(
                self._where(table, f"column {field.name}: a value is not {field.type}: {error}")
            ) from error

    def _record_batch(
        self, table: str, schema: pa.Schema, values: list[tuple[Any, ...]]
    ) -> pa.RecordBatch:
        """One batch, column by column, so a value that does not fit names its column."""
        arrays = []
        for index, field in enumerate(schema):
            column = values[index] if values else ()
            if field.type == pa.float64():  # NUMERIC columns arrive as Decimal
                column = tuple(None if v is None else float(v) for v in column)
            try:
                arrays.append(pa.array(column, field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as error:
                raise SourceTableError(
                    self._where(table, f"column {field.name}: a value is not {field.type}: {error}")
                ) from error
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _connect(self, table: str) -> sa.Connection:
        try:
            return sa.create_engine(self.url).connect()
        except sa.exc.DBAPIError as error:
            raise SourceTableError(self._where(table, f"cannot connect: {error.orig}")) from error

    def _where(self, table: str, problem: str) -> str:
        return f"source {self.source} table {table}: {problem}"


def _schema(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in columns])


def _generic(kind: sa.types.TypeEngine[object]) -> str:
    try:
        return type(kind.as_generic()).__name__
    except NotImplementedError:
        return type(kind).__name__
