"""The local catalog: tables, schema changes, partition registration and concurrent readers."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics_pipeline.resources.catalog import SchemaChangeError, TableDef
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline_tests.lake_helpers import query

EVENTS = TableDef("events", (("id", "bigint"), ("name", "string")), "test events")


def parquet_day(lake_dir: Path, table: str, dt: str, rows: list[dict], name: str = "v1") -> str:
    """A Parquet file where a partition version lives; returns its location."""
    path = lake_dir / "parquet" / table / f"dt={dt}" / name / "part-00000.snappy.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)


# tables


def test_ensure_table_creates_then_reports_unchanged(catalog: DuckDBCatalog):
    assert catalog.ensure_table(EVENTS) == "created"
    assert catalog.ensure_table(EVENTS) == "unchanged"
    assert catalog.tables() == ["events"]


def test_an_unchanged_table_does_not_rewrite_the_catalog_file(catalog: DuckDBCatalog):
    catalog.ensure_table(EVENTS)
    before = catalog.path.stat()

    catalog.ensure_table(EVENTS)

    after = catalog.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_ensure_table_adds_a_column_in_place(lake_dir: Path, catalog: DuckDBCatalog):
    catalog.ensure_table(EVENTS)
    catalog.register_partition(
        "events",
        "2024-05-01",
        parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "a"}]),
    )
    wider = TableDef("events", (*EVENTS.columns, ("score", "double")))

    assert catalog.ensure_table(wider) == "updated"

    # Days written before the column existed read it as null.
    assert query(lake_dir, "SELECT id, name, score, dt FROM events") == [
        (1, "a", None, "2024-05-01")
    ]


@pytest.mark.parametrize(
    ("columns", "named"),
    [
        ((("id", "string"), ("name", "string")), "retyped id: bigint -> string"),
        ((("id", "bigint"),), "dropped name"),
    ],
)
def test_an_incompatible_schema_change_names_the_column_and_changes_nothing(
    catalog: DuckDBCatalog, columns: tuple[tuple[str, str], ...], named: str
):
    catalog.ensure_table(EVENTS)

    with pytest.raises(SchemaChangeError, match=named):
        catalog.ensure_table(TableDef("events", columns))

    assert catalog.ensure_table(EVENTS) == "unchanged"


def test_ensure_table_rejects_unknown_types_and_unsafe_names(catalog: DuckDBCatalog):
    with pytest.raises(ValueError, match="unknown type 'varchar2'"):
        catalog.ensure_table(TableDef("events", (("id", "varchar2"),)))
    with pytest.raises(ValueError, match="invalid table or column name"):
        catalog.ensure_table(TableDef("events", (('id"; DROP', "bigint"),)))
    with pytest.raises(ValueError, match="invalid table or column name"):
        catalog.ensure_table(TableDef("../events", (("id", "bigint"),)))
    assert catalog.tables() == []


# partitions and views


def test_register_partition_repoints_and_returns_the_previous_location(
    lake_dir: Path, catalog: DuckDBCatalog
):
    catalog.ensure_table(EVENTS)
    v1 = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "old"}], "v1")
    v2 = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "new"}], "v2")

    assert catalog.register_partition("events", "2024-05-01", v1) is None
    assert catalog.register_partition("events", "2024-05-01", v2) == v1

    assert catalog.partition_location("events", "2024-05-01") == v2
    assert query(lake_dir, "SELECT id, name FROM events") == [(1, "new")]


def test_register_partitions_repoints_a_range_in_one_rewrite(
    lake_dir: Path, catalog: DuckDBCatalog, monkeypatch: pytest.MonkeyPatch
):
    catalog.ensure_table(EVENTS)
    old = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "old"}], "v1")
    catalog.register_partition("events", "2024-05-01", old)
    new = {
        dt: parquet_day(lake_dir, "events", dt, [{"id": i, "name": "new"}], "v2")
        for i, dt in enumerate(["2024-05-01", "2024-05-02", "2024-05-03"])
    }
    writes = []
    real_write = DuckDBCatalog._write
    monkeypatch.setattr(
        DuckDBCatalog, "_write", lambda self, state: writes.append(1) or real_write(self, state)
    )

    previous = catalog.register_partitions("events", new)

    assert previous == {"2024-05-01": old, "2024-05-02": None, "2024-05-03": None}
    assert len(writes) == 1
    assert catalog.partitions("events") == new
    assert query(lake_dir, "SELECT id, dt FROM events ORDER BY id") == [
        (0, "2024-05-01"),
        (1, "2024-05-02"),
        (2, "2024-05-03"),
    ]
    with pytest.raises(ValueError, match="invalid partition key"):
        catalog.register_partitions("events", {"2024-05-04": old, "2024-13-01": old})
    assert catalog.partitions("events") == new  # all or nothing


def test_register_partition_of_an_unknown_table_is_a_clear_error(catalog: DuckDBCatalog):
    with pytest.raises(KeyError, match="table 'nope' is not in the catalog"):
        catalog.register_partition("nope", "2024-05-01", "/x/dt=2024-05-01/a.parquet")


def test_register_partition_rejects_an_invalid_day(lake_dir: Path, catalog: DuckDBCatalog):
    catalog.ensure_table(EVENTS)
    with pytest.raises(ValueError, match="invalid partition key"):
        catalog.register_partition("events", "2024-02-30", "/x/dt=2024-02-30/a.parquet")
    assert catalog.partitions("events") == {}


def test_the_view_named_after_the_table_returns_rows_with_their_dt(
    lake_dir: Path, catalog: DuckDBCatalog
):
    catalog.ensure_table(EVENTS)
    for dt, rows in {
        "2024-05-01": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "2024-05-02": [{"id": 3, "name": "c"}],
    }.items():
        catalog.register_partition("events", dt, parquet_day(lake_dir, "events", dt, rows))

    assert query(lake_dir, "SELECT id, name, dt FROM events ORDER BY id") == [
        (1, "a", "2024-05-01"),
        (2, "b", "2024-05-01"),
        (3, "c", "2024-05-02"),
    ]


def test_an_empty_tables_view_has_typed_columns_and_no_rows(lake_dir: Path, catalog: DuckDBCatalog):
    catalog.ensure_table(
        TableDef("empty", (("id", "bigint"), ("at", "timestamp"), ("ok", "boolean")))
    )

    assert query(lake_dir, "SELECT count(*) FROM empty") == [(0,)]
    described = query(lake_dir, "DESCRIBE empty")
    assert [(row[0], row[1]) for row in described] == [
        ("id", "BIGINT"),
        ("at", "TIMESTAMP"),
        ("ok", "BOOLEAN"),
        ("dt", "VARCHAR"),
    ]


# readers and writers at the same time


def test_a_read_only_session_held_open_in_process_loses_no_registration(
    lake_dir: Path, catalog: DuckDBCatalog
):
    catalog.ensure_table(EVENTS)
    first = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "a"}])
    second = parquet_day(lake_dir, "events", "2024-05-02", [{"id": 2, "name": "b"}])
    user = duckdb.connect(str(catalog.path), read_only=True)
    try:
        assert user.execute("SELECT count(*) FROM events").fetchall() == [(0,)]

        catalog.register_partition("events", "2024-05-01", first)
        catalog.register_partition("events", "2024-05-02", second)

        assert catalog.partitions("events") == {"2024-05-01": first, "2024-05-02": second}
        # The user's session keeps reading its snapshot until it reconnects.
        assert user.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    finally:
        user.close()
    assert query(lake_dir, "SELECT id FROM events ORDER BY id") == [(1,), (2,)]


_HELD_SESSION = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM events").fetchall()[0][0], flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*) FROM events").fetchall()[0][0], flush=True)
"""


def test_a_read_only_session_held_open_by_another_process_does_not_block_registration(
    lake_dir: Path, catalog: DuckDBCatalog
):
    catalog.ensure_table(EVENTS)
    user = subprocess.Popen(
        [sys.executable, "-c", _HELD_SESSION, str(catalog.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert user.stdout is not None and user.stdin is not None
        assert user.stdout.readline().strip() == "0"  # the session is open

        location = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "a"}])
        assert catalog.register_partition("events", "2024-05-01", location) is None

        assert query(lake_dir, "SELECT id, dt FROM events") == [(1, "2024-05-01")]
        user.stdin.write("\n")
        user.stdin.flush()
        assert user.stdout.readline().strip() == "0"  # still its own consistent snapshot
    finally:
        if user.poll() is None:
            user.kill()
        user.wait()


def _register_days(lake_dir: str, month: int, days: int) -> None:
    catalog = DuckDBCatalog(lake_dir=lake_dir)
    for day in range(1, days + 1):
        dt = f"2024-{month:02d}-{day:02d}"
        location = parquet_day(
            Path(lake_dir), "events", dt, [{"id": month * 100 + day, "name": dt}]
        )
        catalog.register_partition("events", dt, location)


def test_concurrent_registrations_from_two_processes_lose_none(
    lake_dir: Path, catalog: DuckDBCatalog
):
    catalog.ensure_table(EVENTS)
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_register_days, args=(str(lake_dir), month, 20)) for month in (1, 2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert [worker.exitcode for worker in workers] == [0, 0]
    assert len(catalog.partitions("events")) == 40
    assert query(lake_dir, "SELECT count(*), count(DISTINCT dt) FROM events") == [(40, 40)]


def test_days_of_two_file_schemas_read_together_and_one_schema_binds_without_every_footer(
    lake_dir: Path, catalog: DuckDBCatalog
):
    """A year of days of one schema is one read_parquet without union_by_name (binding it
    reads one footer, not 365); a day written after a column was added is a second group,
    and both read with the declared columns."""
    catalog.ensure_table(EVENTS)
    days = [f"2024-05-{d:02d}" for d in range(1, 6)]
    catalog.register_partitions(
        "events",
        {
            dt: parquet_day(lake_dir, "events", dt, [{"id": i, "name": dt}])
            for i, dt in enumerate(days)
        },
    )
    wider = TableDef("events", (*EVENTS.columns, ("score", "double")))
    catalog.ensure_table(wider)
    path = lake_dir / "parquet" / "events" / "dt=2024-05-06" / "v1" / "part-00000.snappy.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": [9], "name": ["late"], "score": [1.5]}), path)
    catalog.register_partition("events", "2024-05-06", str(path))

    view = (
        duckdb.connect(str(catalog.path), read_only=True)
        .execute("SELECT sql FROM duckdb_views() WHERE view_name = 'events'")
        .fetchone()[0]
    )
    assert view.count("read_parquet(") == 2
    assert "union_by_name = false" in view and "union_by_name = true" not in view
    assert query(lake_dir, "SELECT id, score, dt FROM events ORDER BY dt") == [
        *[(i, None, dt) for i, dt in enumerate(days)],
        (9, 1.5, "2024-05-06"),
    ]


def test_a_catalog_without_recorded_file_schemas_reads_them_on_its_next_change(
    lake_dir: Path, catalog: DuckDBCatalog
):
    catalog.ensure_table(EVENTS)
    catalog.register_partition(
        "events", "2024-05-01", parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1}])
    )
    con = duckdb.connect(str(catalog.path))
    con.execute("ALTER TABLE _partitions DROP COLUMN file_schema")  # as written before
    con.close()

    catalog.register_partition(
        "events", "2024-05-02", parquet_day(lake_dir, "events", "2024-05-02", [{"id": 2}])
    )

    con = duckdb.connect(str(catalog.path), read_only=True)
    schemas = con.execute("SELECT DISTINCT file_schema FROM _partitions").fetchall()
    con.close()
    assert schemas == [('[["id", "int64"], ["name", "string"]]',)]
    assert query(lake_dir, "SELECT id FROM events ORDER BY id") == [(1,), (2,)]


def test_the_engine_reuses_its_snapshot_until_the_catalog_is_replaced(
    lake_dir: Path, catalog: DuckDBCatalog
):
    """Queries share one attached snapshot of the catalog (attaching cost more than a day's
    query), and the next query after a registration sees the new day, from any thread."""
    from concurrent.futures import ThreadPoolExecutor

    from analytics_pipeline.resources.local.engine import DuckDBEngine

    engine = DuckDBEngine(lake_dir=str(lake_dir))
    assert engine.run_query("SELECT 1 AS one").table.num_rows == 1  # no catalog yet
    catalog.ensure_table(EVENTS)
    catalog.register_partition(
        "events", "2024-05-01", parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1}])
    )
    count = "SELECT count(*) AS n FROM events"
    with ThreadPoolExecutor(4) as pool:
        counts = list(pool.map(lambda _: engine.run_query(count).table["n"][0].as_py(), range(8)))
    assert counts == [1] * 8

    catalog.register_partition(
        "events", "2024-05-02", parquet_day(lake_dir, "events", "2024-05-02", [{"id": 2}])
    )
    assert engine.run_query(count).table["n"][0].as_py() == 2


def test_a_day_query_reads_that_days_files_alone_and_leaves_other_tables_whole(
    lake_dir: Path, catalog: DuckDBCatalog
):
    """A day's analytics query sees the tables it names through that day's files only (the
    other days' files are not even opened: one is made unreadable here), the same rows as
    through the whole view; a table it does not name keeps every day; the next plain query
    on the same snapshot sees the whole table again."""
    from analytics_pipeline.resources.local.engine import DuckDBEngine

    engine = DuckDBEngine(lake_dir=str(lake_dir))
    catalog.ensure_table(EVENTS)
    catalog.ensure_table(TableDef("other", EVENTS.columns))
    days = {f"2024-05-0{d}": [{"id": d, "name": f"n{d}"}] for d in (1, 2, 3)}
    for table in ("events", "other"):
        catalog.register_partitions(
            table, {dt: parquet_day(lake_dir, table, dt, rows) for dt, rows in days.items()}
        )
    sql = (
        "SELECT e.id, count(o.id) AS others FROM events AS e CROSS JOIN other AS o "
        "WHERE e.dt = '2024-05-02' GROUP BY e.id"
    )
    whole = engine.run_query(sql).table.to_pylist()
    (lake_dir / catalog.partition_location("events", "2024-05-03")).write_bytes(b"not parquet")

    day = engine.run_day_query(sql, "2024-05-02", ["events", "missing_table"])

    assert whole == day.table.to_pylist() == [{"id": 2, "others": 3}]
    with pytest.raises(duckdb.Error, match="part-00000"):
        engine.run_query("SELECT count(*) FROM events")
    assert engine.run_day_query(
        "SELECT count(*) AS n FROM events WHERE dt = '2024-05-09'", "2024-05-09", ["events"]
    ).table.to_pylist() == [{"n": 0}]


def test_a_change_by_another_writer_is_seen_by_a_catalog_that_read_before(
    lake_dir: Path, catalog: DuckDBCatalog
):
    """A catalog keeps what it last read or wrote, by the file it came from: another
    writer's change (a new file, renamed over it) is read, never the kept copy."""
    catalog.ensure_table(EVENTS)
    assert catalog.partitions("events") == {}
    other = DuckDBCatalog(lake_dir=str(lake_dir))
    location = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "a"}])

    other.register_partition("events", "2024-05-01", location)

    assert catalog.partitions("events") == {"2024-05-01": location}
    assert catalog.register_partition("events", "2024-05-01", location) == location


def test_a_publish_reads_the_catalog_file_once(
    lake_dir: Path, catalog: DuckDBCatalog, monkeypatch: pytest.MonkeyPatch
):
    """Ensuring a table and registering its days, as every publish does, read the file
    once: what a change wrote is kept, and the next change starts from it."""
    catalog.ensure_table(EVENTS)
    fresh = DuckDBCatalog(lake_dir=str(lake_dir))
    reads = []
    read_file = DuckDBCatalog._read_file
    monkeypatch.setattr(
        DuckDBCatalog, "_read_file", lambda self: reads.append(1) or read_file(self)
    )
    location = parquet_day(lake_dir, "events", "2024-05-01", [{"id": 1, "name": "a"}])

    assert fresh.ensure_table(EVENTS) == "unchanged"
    fresh.register_partitions("events", {"2024-05-01": location})
    changed = fresh.partitions("events")

    assert len(reads) == 1
    assert changed == {"2024-05-01": location}
    assert query(lake_dir, "SELECT id FROM events") == [(1,)]
