"""The local table catalog: a DuckDB file of views over the lake's Parquet.

A DuckDB file open for writing cannot be opened by any other process, so the catalog is
never written in place: each change builds a new file and renames it over the old one,
under a lock file that serialises our own writers. A user's read-only DuckDB session
keeps reading its snapshot and never blocks a run.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import PrivateAttr

from analytics_pipeline.datasets.spec import duckdb_type, is_column_type
from analytics_pipeline.lake.sql_text import sql_string_literal
from analytics_pipeline.lake.versioned_days import validate_dt, validate_identifier
from analytics_pipeline.resources.catalog import Catalog, TableDef, check_compatible

CATALOG_FILE = "catalog.duckdb"


@dataclass
class _CatalogState:
    tables: dict[str, TableDef]
    partitions: dict[str, dict[str, str]]  # table -> dt -> location
    # location -> its Parquet schema (a day's version is written once, so it never changes)
    file_schemas: dict[str, str | None] = field(default_factory=dict)

    def copy(self) -> _CatalogState:
        """A copy to change; its table definitions are immutable, so they are shared."""
        return _CatalogState(
            dict(self.tables),
            {name: dict(days) for name, days in self.partitions.items()},
            dict(self.file_schemas),
        )


def file_identity(path: Path) -> tuple[int, ...] | None:
    """The catalog file's identity, or None if there is none yet. The file is only ever
    replaced by a rename, never written in place, so the same inode and times are the same
    content: what this catalog and the query engine's snapshot (engine.py) reuse by."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


class DuckDBCatalog(Catalog):
    """One view per table, by the table's name, over the registered version of each day."""

    lake_dir: str
    # The state last read or written, by the file identity it came from: a publish (ensure
    # the table, register its days) and every read after it read the file once, not each time.
    _known: tuple[tuple[int, ...], _CatalogState] | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path:
        return Path(self.lake_dir).resolve() / CATALOG_FILE

    def ensure_table(self, table: TableDef) -> str:
        """Create the table, or add new columns; 'created', 'updated' or 'unchanged'."""
        for column, kind in table.columns:
            validate_identifier(column)
            if not is_column_type(kind):
                raise ValueError(f"table {table.name}: unknown type {kind!r} for {column}")
        with self._change() as state:
            current = state.tables.get(validate_identifier(table.name))
            if current is None:
                state.tables[table.name] = table
                return "created"
            if current.columns == table.columns:
                return "unchanged"
            check_compatible(current, table)
            state.tables[table.name] = table
            return "updated"

    def register_partition(self, table: str, dt: str, location: str) -> str | None:
        """Point the table's day at a new location; returns the location it replaced."""
        return self.register_partitions(table, {dt: location})[dt]

    def register_partitions(self, table: str, locations: dict[str, str]) -> dict[str, str | None]:
        """Point many days at once, in one rewrite of the catalog file; returns each day's
        replaced location."""
        with self._change() as state:
            if table not in state.tables:
                raise KeyError(f"table {table!r} is not in the catalog; create it first")
            days = state.partitions.setdefault(table, {})
            previous = {dt: days.get(validate_dt(dt)) for dt in locations}
            days.update(locations)
            return previous

    def partition_location(self, table: str, dt: str) -> str | None:
        return self._read().partitions.get(table, {}).get(dt)

    def partitions(self, table: str) -> dict[str, str]:
        return dict(self._read().partitions.get(table, {}))

    def tables(self) -> list[str]:
        return sorted(self._read().tables)

    # storage

    def _read(self) -> _CatalogState:
        """The catalog's state, read only if the file is not the one this resource last
        read or wrote. Shared: a change works on a copy."""
        identity = file_identity(self.path)
        if identity is None:
            return _CatalogState({}, {})
        if self._known is not None and self._known[0] == identity:
            return self._known[1]
        state = self._read_file()
        if file_identity(self.path) == identity:  # not replaced while it was read
            self._known = (identity, state)
        return state

    def _read_file(self) -> _CatalogState:
        # ATTACH into a private in-memory database: connect(path) hands back a user's open
        # instance of this path, which still reads the replaced file (registrations lost).
        import duckdb  # lazily: loading the definitions must not pay for it

        con = duckdb.connect()
        try:
            con.execute(
                f"ATTACH {sql_string_literal(str(self.path))} AS current_catalog (READ_ONLY)"
            )
            tables = {
                name: TableDef(name, tuple(tuple(c) for c in json.loads(cols)), description)
                for name, cols, description in con.execute(
                    "SELECT name, columns, description FROM current_catalog._tables"
                ).fetchall()
            }
            partitions: dict[str, dict[str, str]] = {}
            file_schemas: dict[str, str | None] = {}
            # A catalog written before file schemas were recorded reads them as unknown.
            recorded = con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE database_name = 'current_catalog'"
                " AND table_name = '_partitions' AND column_name = 'file_schema'"
            ).fetchone()
            schema_column = "file_schema" if recorded and recorded[0] else "NULL"
            for name, dt, location, schema in con.execute(
                f"SELECT table_name, dt, location, {schema_column} FROM current_catalog._partitions"
            ).fetchall():
                partitions.setdefault(name, {})[dt] = location
                file_schemas[location] = schema
        finally:
            con.close()
        return _CatalogState(tables, partitions, file_schemas)

    @contextmanager
    def _change(self) -> Iterator[_CatalogState]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            before = self._read()
            state = before.copy()
            yield state
            # An unchanged catalog is not rewritten: every publish re-ensures its table.
            if state != before:
                self._write(state)

    def _write(self, state: _CatalogState) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        import duckdb

        con = duckdb.connect(str(tmp))
        try:
            con.execute("CREATE TABLE _tables (name VARCHAR, columns VARCHAR, description VARCHAR)")
            con.execute(
                "CREATE TABLE _partitions (table_name VARCHAR, dt VARCHAR, location VARCHAR,"
                " registered_at TIMESTAMP, file_schema VARCHAR)"
            )
            now = datetime.now(UTC).replace(tzinfo=None)
            for table in state.tables.values():
                con.execute(
                    "INSERT INTO _tables VALUES (?, ?, ?)",
                    [table.name, json.dumps(table.columns), table.description],
                )
                days = state.partitions.get(table.name, {})
                locations = [days[dt] for dt in sorted(days)]
                schemas = {loc: _file_schema(state.file_schemas, loc) for loc in locations}
                if days:
                    # One statement, not executemany (a round trip per row): the file is
                    # rewritten on every registration, with years of days after a backfill.
                    con.execute(
                        "INSERT INTO _partitions SELECT ?, unnest(?::VARCHAR[]),"
                        " unnest(?::VARCHAR[]), ?, unnest(?::VARCHAR[])",
                        [table.name, sorted(days), locations, now, [schemas[x] for x in locations]],
                    )
                con.execute(view_sql(table, sorted(locations), schemas))
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, self.path)
        identity = file_identity(self.path)  # under the writers' lock: this file
        self._known = (identity, state) if identity is not None else None


def _file_schema(known: dict[str, str | None], location: str) -> str | None:
    """A day file's column names and types, read from its footer once and then remembered;
    None when it cannot be read (the view then reads it with the others of unknown schema)."""
    if known.get(location) is None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(location)
            known[location] = json.dumps([[f.name, str(f.type)] for f in schema])
        except (OSError, pa.ArrowException):
            known[location] = None
    return known[location]


def view_sql(
    table: TableDef,
    locations: list[str],
    file_schemas: Mapping[str, str | None] | None = None,
    temporary: bool = False,
) -> str:
    """The table's view: the days' files read together, one read_parquet per file schema.

    Files of one schema are read without `union_by_name`, which would read every file's
    footer each time a query binds the view: a one-day query over a year of days paid for
    365 footers. A column added later makes a second group; the groups are unioned by name
    with a typed empty row set that supplies every declared column."""
    name = validate_identifier(table.name)
    create = "CREATE TEMPORARY VIEW" if temporary else "CREATE VIEW"
    empty = (
        "SELECT "
        + ", ".join(f'CAST(NULL AS {duckdb_type(kind)}) AS "{col}"' for col, kind in table.columns)
        + ", CAST(NULL AS VARCHAR) AS dt WHERE false"
    )
    if not locations:
        return f'{create} "{name}" AS {empty}'
    typed = ", ".join(
        f'CAST("{col}" AS {duckdb_type(kind)}) AS "{col}"' for col, kind in table.columns
    )
    groups: dict[str | None, list[str]] = {}
    for location in locations:
        groups.setdefault((file_schemas or {}).get(location), []).append(location)
    reads = [
        f"SELECT * FROM read_parquet([{', '.join(sql_string_literal(x) for x in files)}], "
        "hive_partitioning = true, hive_types = {'dt': VARCHAR}, "
        f"union_by_name = {'true' if schema is None else 'false'})"
        for schema, files in groups.items()
    ]
    # The typed empty row set, unioned by name, supplies every declared column: a column
    # added after a day was written reads as null there instead of breaking the view.
    union = " UNION ALL BY NAME ".join([empty, *reads])
    return f'{create} "{name}" AS SELECT {typed}, dt FROM ({union})'
