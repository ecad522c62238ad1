"""The movie-rental database into the lake: behaviour written against a SQLAlchemy URL, so
each database server the tests can start runs the same scenarios."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import parquet_key, staged_key, table_key
from analytics_pipeline.defs.source_tables import extract_job_name
from analytics_pipeline.lake import source_extract
from analytics_pipeline.lake.source_extract import extract_and_serve, load_cursor
from analytics_pipeline.resources.catalog import SchemaChangeError
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.source_database import SourceDatabase, SourceTableError
from analytics_pipeline.settings import Settings

END = date(2026, 11, 30)
TABLES = [t.name for t in MOVIE_RENTAL.tables]


@pytest.fixture
def source_db_url(source_db_url: str) -> str:
    """The sample movie-rental database, on each kind of database the conftest's
    `source_db_url` gives (SQLite, and real PostgreSQL and MariaDB servers)."""
    create_movie_rental(source_db_url, end_date=END, days=5, scale=0.3)
    return source_db_url


@pytest.fixture
def source(source_db_url: str) -> SourceDatabase:
    return SourceDatabase(source="movie_rental", url=source_db_url, batch_rows=50)


def extract_all(store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase) -> None:
    for name in TABLES:
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, name)


def source_rows(url: str, table: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=connection)
        rows = connection.execute(sa.select(reflected)).fetchall()
    engine.dispose()
    return sorted(tuple(row) for row in rows)  # DECIMAL as Decimal: the lake's are exact too


def lake_rows(catalog: DuckDBCatalog, table: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(catalog.path), read_only=True) as con:
        return sorted(con.sql(f'SELECT * EXCLUDE (dt) FROM "{table}"').fetchall())


def execute(url: str, sql: str, **params: Any) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(sql), params)
    engine.dispose()


def assert_lake_equals_source(url: str, catalog: DuckDBCatalog) -> None:
    for table in TABLES:
        assert lake_rows(catalog, table) == source_rows(url, table), table


def test_initial_load_equals_the_source(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    extract_all(store, catalog, source)
    assert_lake_equals_source(source_db_url, catalog)
    days = catalog.partitions("rental")
    assert sorted(days) == [str(END - timedelta(days=n)) for n in range(4, -1, -1)]
    assert list(catalog.partitions("film")) == [source_extract.SNAPSHOT_DT]
    assert lake_rows(catalog, "rental")  # not vacuously equal


def test_changes_converge_after_the_next_run_with_every_row_once(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    extract_all(store, catalog, source)
    cursor = load_cursor(store, "movie_rental", "rental")
    assert cursor is not None
    late = cursor - timedelta(minutes=10)  # committed late: older than rows already read
    execute(
        source_db_url,
        "INSERT INTO rental VALUES (9001, :day, 1, 1, NULL, 1, :now),"
        " (9002, :day, 2, 2, NULL, 1, :late), (9003, :day, 3, 3, NULL, 2, NULL)",
        day=datetime(2026, 11, 28, 12),
        now=cursor + timedelta(hours=1),
        late=late,
    )
    # a return recorded days later, and a rental moved to another day
    execute(
        source_db_url,
        "UPDATE rental SET return_date = :ret, last_update = :now WHERE rental_id = 1",
        ret=datetime(2026, 11, 30, 9),
        now=cursor + timedelta(hours=2),
    )
    execute(
        source_db_url,
        "UPDATE rental SET rental_date = :day, last_update = :now WHERE rental_id = 2",
        day=datetime(2026, 11, 29, 8),
        now=cursor + timedelta(hours=2),
    )
    execute(source_db_url, "DELETE FROM rental WHERE rental_id = 3")
    execute(source_db_url, "DELETE FROM payment WHERE payment_id = 5")
    execute(source_db_url, "UPDATE category SET name = 'Thriller' WHERE category_id = 16")
    execute(source_db_url, "ALTER TABLE customer ADD COLUMN loyalty_tier VARCHAR(10)")
    execute(source_db_url, "UPDATE customer SET loyalty_tier = 'gold' WHERE customer_id = 1")

    extract_all(store, catalog, source)
    assert_lake_equals_source(source_db_url, catalog)
    ids = [row[0] for row in lake_rows(catalog, "rental")]
    assert len(ids) == len(set(ids))
    assert {9001, 9002, 9003} <= set(ids) and 3 not in ids

    extract_all(store, catalog, source)  # re-reading the overlap changes nothing
    assert_lake_equals_source(source_db_url, catalog)


def test_an_updated_rental_leaves_its_old_day(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    extract_all(store, catalog, source)
    execute(
        source_db_url,
        "UPDATE rental SET rental_date = :day, last_update = :now WHERE rental_id = 1",
        day=datetime(2026, 11, 30, 8),
        now=datetime(2026, 12, 1),
    )
    extract_all(store, catalog, source)
    with duckdb.connect(str(catalog.path), read_only=True) as con:
        days = con.sql("SELECT dt FROM rental WHERE rental_id = 1").fetchall()
    assert days == [("2026-11-30",)]


def test_a_crash_between_publish_and_cursor_is_reread_without_doubles(
    source_db_url: str,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    source: SourceDatabase,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extract_all(store, catalog, source)
    before = load_cursor(store, "movie_rental", "rental")
    assert before is not None
    execute(
        source_db_url,
        "INSERT INTO rental VALUES (9100, :day, 1, 1, NULL, 1, :now)",
        day=datetime(2026, 11, 27, 12),
        now=before + timedelta(days=3),
    )

    def crash(*args: Any) -> None:
        raise KeyboardInterrupt("killed after publishing")

    monkeypatch.setattr(source_extract, "save_cursor", crash)
    with pytest.raises(KeyboardInterrupt):
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert load_cursor(store, "movie_rental", "rental") == before
    monkeypatch.undo()

    extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert lake_rows(catalog, "rental") == source_rows(source_db_url, "rental")
    assert load_cursor(store, "movie_rental", "rental") == before + timedelta(days=3)


def test_a_retyped_column_stops_the_table_naming_it_and_changes_nothing(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    if not source_db_url.startswith("sqlite"):
        pytest.skip("written with SQLite DDL: servers refuse dropping a referenced table")
    extract_all(store, catalog, source)
    before = catalog.partitions("category")
    files = store.list_files("parquet/category/") + store.list_files("staged/movie_rental/")
    assert any(f.startswith("staged/movie_rental/category/") for f in files), files
    execute(source_db_url, "DROP TABLE category")
    execute(
        source_db_url,
        "CREATE TABLE category"
        " (category_id INTEGER PRIMARY KEY, name INTEGER, last_update DATETIME)",
    )
    with pytest.raises(SchemaChangeError, match=r"category.*retyped name: string -> int"):
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "category")
    assert catalog.partitions("category") == before
    assert store.list_files("parquet/category/") + store.list_files("staged/movie_rental/") == files


def test_a_missing_table_names_source_and_table_and_changes_nothing(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    extract_all(store, catalog, source)
    before = catalog.partitions("payment")
    execute(source_db_url, "DROP TABLE payment")
    with pytest.raises(SourceTableError, match="source movie_rental table payment: no such table"):
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "payment")
    assert catalog.partitions("payment") == before


def test_an_unreachable_database_names_source_and_table(
    tmp_path: Path, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    gone = SourceDatabase(source="movie_rental", url=f"sqlite:///{tmp_path}/no/such/dir/db.sqlite")
    with pytest.raises(SourceTableError, match="source movie_rental table rental: cannot connect"):
        extract_and_serve(store, catalog, gone, MOVIE_RENTAL, "rental")
    assert catalog.tables() == []


def test_the_extract_job_materializes_staged_parquet_and_table_of_every_source_table(
    settings: Settings, catalog: DuckDBCatalog, instance: dg.DagsterInstance
) -> None:
    url = settings.movie_rental_url
    Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_movie_rental(url, end_date=END, days=2, scale=0.2)
    defs = build_definitions(settings)
    job = defs.resolve_job_def(extract_job_name("movie_rental"))
    result = job.execute_in_process(instance=instance)
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {k(t) for t in TABLES for k in (staged_key, parquet_key, table_key)}
    assert_lake_equals_source(url, catalog)


def test_the_hourly_extract_skips_with_its_reason_until_the_database_exists(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    # A lake before make sample-data: each hour would otherwise add a failed run and an alert.
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def(f"{extract_job_name('movie_rental')}_hourly")
    key = next(iter(schedule.required_resource_keys))

    def evaluate() -> Any:
        # A context given resources holds them (and the instance) until it is closed.
        with dg.build_schedule_context(
            instance=instance, resources={key: defs.resources[key]}
        ) as context:
            return schedule.evaluate_tick(context)

    skipped = evaluate()
    assert not skipped.run_requests
    assert "no movie_rental database" in (skipped.skip_message or "")
    assert not Path(sa.make_url(settings.movie_rental_url).database or "").exists()

    Path(sa.make_url(settings.movie_rental_url).database or "").parent.mkdir(parents=True)
    create_movie_rental(settings.movie_rental_url, end_date=END, days=1, scale=0.05)
    assert len(evaluate().run_requests or []) == 1


def test_a_snapshot_streamed_in_small_pieces_is_whole_and_the_same_version(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    small = SourceDatabase(source="movie_rental", url=source_db_url, batch_rows=3)
    first = extract_and_serve(store, catalog, small, MOVIE_RENTAL, "film", chunk_rows=4)
    assert lake_rows(catalog, "film") == source_rows(source_db_url, "film")
    assert first.rows_read > 8 and first.days_changed == [source_extract.SNAPSHOT_DT]
    large = SourceDatabase(source="movie_rental", url=source_db_url, batch_rows=1000)
    again = extract_and_serve(store, catalog, large, MOVIE_RENTAL, "film", chunk_rows=4)
    assert again.digest == first.digest and again.days_changed == []
