"""The database source's extract -> table path, against the driver's fastest bulk read.

Starts PostgreSQL 15 on 127.0.0.1 in a temporary directory, creates the movie_rental schema
and loads `--rows` rentals spread over a year (COPY), then measures in the same run, each in a
fresh child process (wall inside the child, peak RSS of the child from wait4):

- the FLOOR: the same rows read into one Arrow table by the fastest bulk read installed:
  psycopg `COPY (SELECT ...) TO STDOUT` parsed by pyarrow's CSV reader, and ADBC's
  PostgreSQL driver (binary COPY in C++) when it is installed; the faster one is the floor;
- the JOB: `extract_movie_rental` (every table of the source, as the hourly schedule runs
  it) into a fresh lake, timed as a whole fresh process: start-up, imports and Dagster in;
- the EXTRACT: `extract_and_serve` of `rental` alone into a fresh lake: the initial load, then
  an hourly run after 1% of the rentals were returned, 0.1% added and 0.1% deleted.

Peak RSS is shown at each size of `--rows` (e.g. `--rows 250000 1000000`): it must not grow
with the table. Never a pass/fail test: the ratio is the figure (target <= 2x).

    python -m benchmarks.source_extract                      # 1,000,000 rentals
    python -m benchmarks.source_extract --rows 250000 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from benchmarks.run import gib
from benchmarks.spread import timed_child

FIRST_DAY = datetime(2025, 1, 1)
DAYS = 365
LOAD_ROWS = 200_000  # rows per COPY FROM STDIN chunk
RENTAL_COLUMNS = (
    "rental_id",
    "rental_date",
    "inventory_id",
    "customer_id",
    "return_date",
    "staff_id",
    "last_update",
)
TARGET = 2.0


# --- the source database ---------------------------------------------------------------------


def rentals(first_id: int, rows: int, seed: int) -> pa.Table:
    """Rentals over the year: most returned 1-7 days later (last_update then), some not yet."""
    rng = np.random.default_rng(seed)
    end = np.datetime64(FIRST_DAY + timedelta(days=DAYS), "s")
    rented = np.datetime64(FIRST_DAY, "s") + rng.integers(0, DAYS * 86_400, rows)
    returned = rented + rng.integers(86_400, 8 * 86_400, rows)
    open_rental = returned >= end
    return pa.table(
        {
            "rental_id": np.arange(first_id, first_id + rows, dtype=np.int32),
            "rental_date": rented,
            "inventory_id": rng.integers(1, 4_500, rows, dtype=np.int32),
            "customer_id": rng.integers(1, 600, rows, dtype=np.int32),
            "return_date": pa.array(returned, mask=open_rental),
            "staff_id": rng.integers(1, 3, rows, dtype=np.int16),
            "last_update": np.where(open_rental, rented, returned),
        }
    )


def libpq_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def load_source(url: str, rows: int) -> None:
    """The movie_rental tables (empty), then `rows` rentals by COPY FROM STDIN."""
    import psycopg

    from analytics_pipeline.cli.samples.movie_rental import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    engine.dispose()
    with psycopg.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        for start in range(0, rows, LOAD_ROWS):
            chunk = rentals(start + 1, min(LOAD_ROWS, rows - start), seed=start)
            copy_in(cursor, "rental", chunk)
        cursor.execute("ANALYZE rental")


def copy_in(cursor: Any, table: str, data: pa.Table) -> None:
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
    columns = ", ".join(data.column_names)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


# An hour of business, two ways: what a rental shop's hour touches (its open rentals
# returned, today's rentals, a few corrections), and the worst case for day files (returns
# and deletes spread over every day of the year).
HOURS = {
    "recent": ("return_date IS NULL", 100_000),  # (rentals returned, one deleted per ... rows)
    "spread": ("rental_id % 100 = 0", 1_000),
}


def change_source(url: str, rows: int, hour: str) -> dict[str, int]:
    """Returns (`HOURS`), 0.1% new rentals in the hour, and deletes; the counts of each."""
    import psycopg

    returned_where, delete_every = HOURS[hour]
    with psycopg.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT max(last_update), max(rental_id) FROM rental")
        newest, last_id = cursor.fetchone() or (None, 0)
        now = (newest or FIRST_DAY) + timedelta(hours=1)
        cursor.execute(
            "UPDATE rental SET return_date = rental_date + interval '2 days',"
            f" last_update = %s WHERE {returned_where.replace('%', '%%')}",
            (now,),
        )
        returned = cursor.rowcount
        new = max(rows // 1000, 1)
        added = rentals(last_id + 1, new, seed=last_id)
        in_the_hour = [now - timedelta(seconds=i % 3600) for i in range(new)]
        for name, values in (
            ("rental_date", pa.array(in_the_hour, pa.timestamp("s"))),
            ("return_date", pa.nulls(new, pa.timestamp("s"))),
            ("last_update", pa.array([now] * new, pa.timestamp("s"))),
        ):
            added = added.set_column(added.schema.get_field_index(name), name, values)
        copy_in(cursor, "rental", added)
        cursor.execute("DELETE FROM rental WHERE rental_id %% %s = 7", (min(delete_every, rows),))
        return {"updated": returned, "inserted": new, "deleted": cursor.rowcount}


# --- what each child process measures ----------------------------------------------------------


def floor_copy_csv(url: str) -> dict[str, Any]:
    """psycopg's COPY (SELECT ...) TO STDOUT, parsed by pyarrow's CSV reader as it arrives."""
    import psycopg

    from analytics_pipeline.datasets.spec import arrow_type
    from analytics_pipeline.resources.source_database import SourceDatabase

    types = dict(SourceDatabase(source="bench", url=url).columns("rental"))
    schema = pa.schema([(c, arrow_type(types[c])) for c in RENTAL_COLUMNS])
    started = time.perf_counter()
    with psycopg.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        query = f"COPY (SELECT {', '.join(RENTAL_COLUMNS)} FROM rental) TO STDOUT (FORMAT csv)"
        with cursor.copy(query) as copy:
            reader = pacsv.open_csv(
                _CopyStream(copy),
                pacsv.ReadOptions(column_names=schema.names, block_size=1 << 22),
                convert_options=pacsv.ConvertOptions(column_types=schema, strings_can_be_null=True),
            )
            table = reader.read_all()
    return {"seconds": time.perf_counter() - started, "rows": table.num_rows}


class _CopyStream(io.RawIOBase):
    """COPY's chunks (a row each) as a file pyarrow can read in blocks."""

    def __init__(self, copy: Any) -> None:
        self._chunks: Iterator[memoryview] = iter(copy)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        parts, length = [], 0
        for chunk in self._chunks:
            parts.append(chunk)
            length += len(chunk)
            if 0 <= size <= length:
                break
        return b"".join(parts)


def floor_adbc(url: str) -> dict[str, Any]:
    """ADBC's PostgreSQL driver: binary COPY decoded to Arrow in C++."""
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        return {"missing": "adbc-driver-postgresql"}
    started = time.perf_counter()
    with adbc.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(RENTAL_COLUMNS)} FROM rental")
        table = cursor.fetch_arrow_table()
    return {"seconds": time.perf_counter() - started, "rows": table.num_rows}


def import_what_the_extract_imports_lazily(url: str) -> None:
    """Imports are start-up, timed in the job's figure and left out of both children's clocks
    (the floor imports its driver before it starts its own). Three are made on first use: the
    database's SQLAlchemy dialect and driver, and pandas, which pyarrow imports on its first
    `pa.array` (any call, to see whether the argument is a pandas object)."""
    import pyarrow as pa
    import sqlalchemy as sa

    pa.array([0])
    sa.create_engine(url).dialect.import_dbapi()


def extract(url: str, lake: str) -> dict[str, Any]:
    """extract_and_serve of rental, as the extract job runs it, into the lake at `lake`."""
    import duckdb

    from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
    from analytics_pipeline.lake.source_extract import extract_and_serve
    from analytics_pipeline.resources.local.catalog import DuckDBCatalog
    from analytics_pipeline.resources.local.store import LocalLakeStore
    from analytics_pipeline.resources.source_database import SourceDatabase

    catalog = DuckDBCatalog(lake_dir=lake)
    store = LocalLakeStore(lake_dir=lake)
    database = SourceDatabase(source=MOVIE_RENTAL.name, url=url)
    import_what_the_extract_imports_lazily(url)
    started = time.perf_counter()
    done = extract_and_serve(store, catalog, database, MOVIE_RENTAL, "rental")
    seconds = time.perf_counter() - started
    with duckdb.connect(str(catalog.path), read_only=True) as con:
        (row,) = con.sql("SELECT count(*), count(DISTINCT rental_id) FROM rental").fetchall()
    return {
        "seconds": seconds,
        "rows_read": done.rows_read,
        "days_written": len(done.days_written),
        "rows_deleted": done.rows_deleted,
        "lake_rows": row[0],
        "lake_distinct": row[1],
    }


def job(url: str, lake: str) -> dict[str, Any]:
    """The extract_movie_rental job, as the hourly schedule starts it, into a fresh lake: the
    parent times this whole interpreter (imports, definitions and Dagster included)."""
    import os

    import dagster as dg
    import duckdb

    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.defs.source_tables import extract_job_name
    from analytics_pipeline.resources.local.catalog import DuckDBCatalog
    from analytics_pipeline.resources.local.store import LocalLakeStore
    from analytics_pipeline.settings import Settings

    environ = os.environ | {"ANALYTICS_LAKE_DIR": lake, "ANALYTICS_MOVIE_RENTAL_DB_URL": url}
    settings = Settings.from_env(environ)
    LocalLakeStore(lake_dir=lake).ensure_layout()
    job_def = build_definitions(settings).resolve_job_def(extract_job_name("movie_rental"))
    with dg.DagsterInstance.ephemeral() as instance:
        assert job_def.execute_in_process(instance=instance).success
    with duckdb.connect(str(DuckDBCatalog(lake_dir=lake).path), read_only=True) as con:
        (row,) = con.sql("SELECT count(*), count(DISTINCT rental_id) FROM rental").fetchall()
    return {"lake_rows": row[0], "lake_distinct": row[1]}


CHILDREN: dict[str, Callable[..., dict[str, Any]]] = {
    "floor_copy_csv": floor_copy_csv,
    "floor_adbc": floor_adbc,
    "extract": extract,
    "job": job,
}


def measure(kind: str, **kwargs: Any) -> dict[str, Any]:
    """One measurement in a fresh interpreter: its JSON line, plus the child's peak RSS."""
    args = ["--child", kind, "--child-args", json.dumps(kwargs)]
    run = timed_child([sys.executable, "-m", "benchmarks.source_extract", *args])
    found = json.loads(run["stdout"].strip().splitlines()[-1])
    return found | {"peak_rss": run["peak_rss"], "process_seconds": run["seconds"]}


# --- the figures -------------------------------------------------------------------------------


def source_rows(url: str) -> int:
    """The rentals in the source now: what the lake must hold after the hourly run."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM rental")).scalar_one()
    engine.dispose()
    return int(count)


def figure(server: Any, rows: int, work: Path) -> list[str]:
    url = server.fresh_database()
    started = time.perf_counter()
    load_source(url, rows)
    print(f"{rows:,} rentals loaded by COPY in {time.perf_counter() - started:.1f} s", flush=True)
    floors = {kind: measure(kind, url=url) for kind in ("floor_copy_csv", "floor_adbc")}
    timed = {k: f for k, f in floors.items() if "seconds" in f}
    assert all(f["rows"] == rows for f in timed.values()), timed
    floor_kind = min(timed, key=lambda k: timed[k]["seconds"])
    floor = timed[floor_kind]
    lake = str(work / f"lake-{rows}")
    job_lake = str(work / f"job-lake-{rows}")
    whole = measure("job", url=url, lake=job_lake)
    assert whole["lake_rows"] == whole["lake_distinct"] == rows, whole
    # The run the hourly schedule makes most: nothing changed since the last one.
    quiet = measure("job", url=url, lake=job_lake)
    assert quiet["lake_rows"] == quiet["lake_distinct"] == rows, quiet
    first = measure("extract", url=url, lake=lake)
    assert first["lake_rows"] == first["lake_distinct"] == rows, first
    hourly = {}
    for hour in HOURS:
        changes = change_source(url, rows, hour)
        hourly[hour] = changes | measure("extract", url=url, lake=lake)
        expected = source_rows(url)
        assert hourly[hour]["lake_rows"] == hourly[hour]["lake_distinct"] == expected, hourly
    floor_text = ", ".join(
        f"{k.removeprefix('floor_')} {f['seconds']:.2f} s" if "seconds" in f else f"{k}: missing"
        for k, f in floors.items()
    )
    job_seconds = whole["process_seconds"]
    return [
        f"| {rows:,} rentals over {DAYS} days: the extract_movie_rental job, in a fresh process "
        f"(start-up included) | {job_seconds:.2f} s ({rows / job_seconds:,.0f} rows/s) | "
        f"{floor['seconds']:.2f} s | **{job_seconds / floor['seconds']:.2f}x** | <= {TARGET}x | "
        f"{gib(whole['peak_rss'])} |",
        f"| the same job again, nothing changed in the source (the overlap re-read, every key "
        f"checked for deletes) | {quiet['process_seconds']:.2f} s | | | report | "
        f"{gib(quiet['peak_rss'])} |",
        f"| {rows:,} rentals over {DAYS} days: initial extract_and_serve alone | "
        f"{first['seconds']:.2f} s ({rows / first['seconds']:,.0f} rows/s, "
        f"{first['days_written']} days) | "
        f"{floor['seconds']:.2f} s ({floor_text}) | **{first['seconds'] / floor['seconds']:.2f}x** "
        f"| <= {TARGET}x | {gib(first['peak_rss'])} (floor {gib(floor['peak_rss'])}) |",
        *(hourly_row(hour, run, floor["seconds"]) for hour, run in hourly.items()),
    ]


def hourly_row(hour: str, run: dict[str, Any], floor: float) -> str:
    return (
        f"| the hourly run ({hour}) after {run['updated']:,} returns, {run['inserted']:,} new, "
        f"{run['deleted']:,} deleted | {run['seconds']:.2f} s ({run['rows_read']:,} rows read, "
        f"{run['days_written']} days rewritten, {run['rows_deleted']:,} deleted) | "
        f"| {run['seconds'] / floor:.2f}x the full read | report | {gib(run['peak_rss'])} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--child-args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from analytics_pipeline.memory_pool import use_system_memory_pool

    use_system_memory_pool()  # as the entry points run
    if args.child:
        print(json.dumps(CHILDREN[args.child](**json.loads(args.child_args))))
        return 0
    from local_servers.db_servers import running_postgres

    print(f"command: python -m benchmarks.source_extract {' '.join(argv or sys.argv[1:])}")
    table = [
        "| workload (PostgreSQL 15, rental) | extract (in the child) | floor: bulk read into "
        "Arrow | extract / floor | target | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    with running_postgres() as server, tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
        for rows in args.rows:
            table += figure(server, rows, Path(tmp))
    print("\n".join(["", *table]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
