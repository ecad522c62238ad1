"""Print a source spec for a database: the crawler's job, for a person to review and commit.

    python -m analytics_pipeline.cli.discover_source sqlite:///.lake/sources/movie_rental.sqlite

Reads the tables through SQLAlchemy's inspector (information_schema on servers) and prints
Python in the form of analytics_pipeline/datasets/movie_rental.py: each table's primary key,
its change cursor, and whether it is a whole-table snapshot or read by day of an event.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind
from analytics_pipeline.lake.database_types import generic_type_name

# A change cursor is a date/timestamp column by one of these names, first match wins.
CURSOR_NAMES = ("last_update", "updated_at", "last_updated", "last_modified", "modified_at")
# An event column is a NOT NULL date/timestamp named after its table (rental.rental_date,
# orders.order_date): the table records events, so it is read by day. Other date columns
# (customer.create_date) describe a thing, not an event: that table stays a snapshot.
EVENT_SUFFIXES = ("date", "at", "time", "ts", "timestamp")
TIME_TYPES = ("Date", "DateTime")


class DiscoveryError(RuntimeError):
    """The database cannot be read: the message names the URL, never its password."""


@dataclass(frozen=True)
class Discovered:
    spec: SourceSpec
    notes: dict[str, str]  # table -> why it was left out or what to review


def discover(url: str, name: str | None = None) -> Discovered:
    """The spec of every table with a primary key; the others are noted, not guessed."""
    safe_url = sa.make_url(url).render_as_string(hide_password=True)
    database = sa.make_url(url).database or ""
    if sa.make_url(url).get_backend_name() == "sqlite" and not Path(database).is_file():
        # SQLite would create an empty database at a path that does not exist.
        raise DiscoveryError(f"cannot read {safe_url}: no database file {database}")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            found = [(t, *_table(inspector, t)) for t in sorted(inspector.get_table_names())]
    except sa.exc.DBAPIError as error:
        raise DiscoveryError(f"cannot read {safe_url}: {error.orig}") from None
    finally:
        engine.dispose()
    if not found:
        raise DiscoveryError(f"{safe_url} has no tables")
    tables = tuple(spec for _, spec, _ in found if spec is not None)
    notes = {table: note for table, _, note in found if note}
    return Discovered(
        SourceSpec(name=name or Path(database).stem or "source", tables=tables), notes
    )


def _table(inspector: sa.Inspector, table: str) -> tuple[SourceTable | None, str]:
    key = tuple(inspector.get_pk_constraint(table).get("constrained_columns") or ())
    columns = inspector.get_columns(table)
    times = {c["name"]: c for c in columns if generic_type_name(c["type"]) in TIME_TYPES}
    cursor = next((n for n in CURSOR_NAMES if n in times), None)
    if not key:
        return None, "no primary key, so a changed row cannot replace its version: left out"
    bases = {table, table.removesuffix("s")}
    event = next(
        (
            n
            for n in times
            if n != cursor
            and not times[n]["nullable"]
            and any(n == f"{b}_{suffix}" for b in bases for suffix in EVENT_SUFFIXES)
        ),
        None,
    )
    if event and cursor:
        spec = SourceTable(table, key, TableKind.INCREMENTAL, event_date=event, cursor=cursor)
        return spec, ""
    if event:
        return SourceTable(table, key), f"event column {event} but no change cursor: read whole"
    return SourceTable(table, key, cursor=cursor or "last_update"), ""


def render(found: Discovered, url: str) -> str:
    """Python source of the spec, in the committed specs' form."""
    safe_url = sa.make_url(url).render_as_string(hide_password=True)
    spec = found.spec
    lines = [
        f'"""The {spec.name} database, as discovered from {safe_url}.',
        "",
        'Review, then commit (tables without a primary key are noted at the end)."""',
        "",
        "from __future__ import annotations",
        "",
        "from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind",
        "",
        f"{spec.name.upper()} = SourceSpec(",
        f"    name={_py(spec.name)},",
        "    tables=(",
    ]
    for table in spec.tables:
        key = ", ".join(_py(c) for c in table.primary_key)
        args = [_py(table.name), f"({key},)" if len(table.primary_key) == 1 else f"({key})"]
        if table.kind is TableKind.INCREMENTAL:
            args += ["TableKind.INCREMENTAL", f"event_date={_py(table.event_date)}"]
        if table.cursor != "last_update":
            args.append(f"cursor={_py(table.cursor)}")
        lines.append(f"        SourceTable({', '.join(args)}),")
    lines += ["    ),", ")"]
    lines += [f"# {table}: {note}" for table, note in found.notes.items()]
    return "\n".join(lines) + "\n"


def _py(text: str | None) -> str:
    """A string literal as ruff formats it (double quotes)."""
    return json.dumps(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="SQLAlchemy URL: sqlite:///..., postgresql+psycopg://...")
    parser.add_argument("--name", help="the source's name (default: the database's name)")
    args = parser.parse_args(argv)
    try:
        print(render(discover(args.url, args.name), args.url), end="")
    except DiscoveryError as error:
        print(f"discover_source: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
