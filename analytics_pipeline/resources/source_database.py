"""A relational source database reached by SQLAlchemy URL: column types, changed rows, keys.

The deployment decides the URL (local: an env var or the lake's SQLite file); the assets
only ask for rows. Every failure names the source and table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import dagster as dg
import sqlalchemy as sa

BATCH_ROWS = 10_000


class SourceDatabaseError(RuntimeError):
    """The source could not be read: unreachable, refused, or a table is missing."""


class SourceDatabase(dg.ConfigurableResource):
    """One source database; `source` names it in errors."""

    source: str
    url: str
    batch_rows: int = BATCH_ROWS

    def column_types(self, table: str) -> dict[str, type]:
        """Each column's Python type as the database reports it, in table order."""
        with self._failures_named(table):
            engine = sa.create_engine(self.url)
            try:
                columns = sa.inspect(engine).get_columns(table)
            finally:
                engine.dispose()
        if not columns:
            raise SourceDatabaseError(f"source {self.source}: table {table} does not exist")
        return {column["name"]: column["type"].python_type for column in columns}

    def rows(
        self,
        table: str,
        columns: Sequence[str],
        cursor_column: str | None = None,
        since: datetime | None = None,
    ) -> Iterator[Sequence[Any]]:
        """Rows streamed in batches: all of them, or those changed at or after `since`
        together with every row whose cursor is NULL (never dropped)."""
        with self._failures_named(table):
            engine = sa.create_engine(self.url)
            try:
                # Reflected column types convert values (SQLite keeps timestamps as text).
                reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
                query = sa.select(*(reflected.c[name] for name in columns))
                if cursor_column and since is not None:
                    cursor = reflected.c[cursor_column]
                    query = query.where(sa.or_(cursor >= since, cursor.is_(None)))
                with engine.connect() as connection:
                    result = connection.execution_options(
                        stream_results=True, yield_per=self.batch_rows
                    ).execute(query)
                    for partition in result.partitions():
                        yield from (tuple(row) for row in partition)
            finally:
                engine.dispose()

    @contextmanager
    def _failures_named(self, table: str) -> Iterator[None]:
        """A driver's error becomes one that says which source and table it was."""
        try:
            yield
        except sa.exc.SQLAlchemyError as error:
            reason = str(error).splitlines()[0]
            raise SourceDatabaseError(
                f"source {self.source}: reading table {table} failed: {reason}"
            ) from error
