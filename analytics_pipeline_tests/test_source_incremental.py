"""Incremental extract of a source table into the lake, on every database `source_db_url` gives:
each change converges after the next run with every row exactly once, bad input changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.samples.movie_rental import (
    create_movie_rental_database,
    payment,
    rental,
)
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.datasets.source_spec import INCREMENTAL, SourceTable
from analytics_pipeline.lake.source_extract import extract_incremental, state_path
from analytics_pipeline.lake.source_rows import SchemaDriftError
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.engine import DuckDBEngine
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.source_database import SourceDatabase, SourceDatabaseError

RENTAL = MOVIE_RENTAL.table("rental")
COLUMNS = "rental_id, rental_date, inventory_id, customer_id, return_date, staff_id"


def _source_rows(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = f"SELECT {COLUMNS} FROM rental ORDER BY rental_id"
            return [_plain(row) for row in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


def _lake_rows(engine: DuckDBEngine) -> list[tuple[Any, ...]]:
    table = engine.run_query(f"SELECT {COLUMNS} FROM rental ORDER BY rental_id").table
    return [_plain(row.values()) for row in table.to_pylist()]


def _plain(row: Any) -> tuple[Any, ...]:
    return tuple(str(value)[:19] if isinstance(value, (datetime, str)) else value for value in row)


def _execute(url: str, *statements: Any) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(statement)
    finally:
        engine.dispose()


@pytest.fixture
def source(source_db_url: str) -> SourceDatabase:
    create_movie_rental_database(source_db_url, days=3, seed=3, rentals_per_day=20)
    return SourceDatabase(source="movie_rental", url=source_db_url)


def _extract(store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase) -> Any:
    return extract_incremental(store, catalog, source, "movie_rental", RENTAL)


def test_initial_load_equals_the_source(
    source: SourceDatabase, store: LocalLakeStore, catalog: DuckDBCatalog, engine: DuckDBEngine
) -> None:
    result = _extract(store, catalog, source)
    assert result.changed_rows == 60 and result.days_written
    assert _lake_rows(engine) == _source_rows(source.url)


def test_payments_load_by_payment_day(
    source: SourceDatabase, store: LocalLakeStore, catalog: DuckDBCatalog, engine: DuckDBEngine
) -> None:
    payment = MOVIE_RENTAL.table("payment")
    result = extract_incremental(store, catalog, source, "movie_rental", payment)
    query = "SELECT dt, COUNT(*) AS n, COUNT(DISTINCT payment_id) AS ids FROM payment GROUP BY dt"
    days = engine.run_query(query).table.to_pylist()
    assert sum(day["n"] for day in days) == sum(day["ids"] for day in days) == 60
    assert sorted(day["dt"] for day in days) == result.days_written


def test_every_kind_of_change_converges_with_each_row_once(
    source: SourceDatabase, store: LocalLakeStore, catalog: DuckDBCatalog, engine: DuckDBEngine
) -> None:
    _extract(store, catalog, source)
    cursor = datetime.fromisoformat(_extract(store, catalog, source).cursor)
    first = _source_rows(source.url)[0]
    base = {"inventory_id": 1, "customer_id": 1, "staff_id": 1}
    _execute(
        source.url,
        # a new rental
        rental.insert().values(rental_id=1001, rental_date=cursor, last_update=cursor, **base),
        # returned days later
        rental.update()
        .where(rental.c.rental_id == 2)
        .values(return_date=cursor + timedelta(days=3), last_update=cursor + timedelta(minutes=5)),
        # committed late with a last_update just before the cursor (inside the overlap)
        rental.insert().values(
            rental_id=1002,
            rental_date=cursor - timedelta(days=1),
            last_update=cursor - timedelta(minutes=20),
            **base,
        ),
        # a NULL cursor
        rental.insert().values(rental_id=1003, rental_date=cursor, last_update=None, **base),
        # its event moved to another day
        rental.update()
        .where(rental.c.rental_id == 3)
        .values(rental_date=cursor + timedelta(days=2), last_update=cursor + timedelta(minutes=6)),
        # a delete (its payments first: servers enforce the foreign key, SQLite does not)
        payment.delete().where(payment.c.rental_id == first[0]),
        rental.delete().where(rental.c.rental_id == first[0]),
    )
    result = _extract(store, catalog, source)
    assert result.deleted_rows == 1
    lake = _lake_rows(engine)
    assert lake == _source_rows(source.url)
    assert len({row[0] for row in lake}) == len(lake)
    assert _extract(store, catalog, source).deleted_rows == 0
    assert _lake_rows(engine) == lake  # a run with nothing new changes nothing


def test_an_added_column_appears_in_the_table(
    source: SourceDatabase, store: LocalLakeStore, catalog: DuckDBCatalog, engine: DuckDBEngine
) -> None:
    _extract(store, catalog, source)
    _execute(
        source.url,
        sa.text("ALTER TABLE rental ADD COLUMN channel VARCHAR(10)"),
        sa.text(
            "UPDATE rental SET channel = 'web', last_update = '2030-01-01 00:00:00'"
            " WHERE rental_id = 5"
        ),
    )
    _extract(store, catalog, source)
    table = engine.run_query(
        "SELECT rental_id, channel FROM rental WHERE channel IS NOT NULL"
    ).table
    assert table.to_pylist() == [{"rental_id": 5, "channel": "web"}]
    assert _lake_rows(engine) == _source_rows(source.url)


def test_a_changed_type_stops_the_table_naming_the_column_with_nothing_written(
    source: SourceDatabase, store: LocalLakeStore, catalog: DuckDBCatalog, engine: DuckDBEngine
) -> None:
    _extract(store, catalog, source)
    before = (
        sorted(store.list_files("parquet/rental/")),
        store.read_bytes(state_path("movie_rental", "rental")),
    )
    _execute(
        source.url,
        sa.text("ALTER TABLE rental RENAME COLUMN staff_id TO staff_old"),
        sa.text("ALTER TABLE rental ADD COLUMN staff_id VARCHAR(10)"),
    )
    with pytest.raises(SchemaDriftError, match=r"rental\.staff_id: type changed from bigint"):
        _extract(store, catalog, source)
    after = (
        sorted(store.list_files("parquet/rental/")),
        store.read_bytes(state_path("movie_rental", "rental")),
    )
    assert after == before


def test_a_crash_between_lake_write_and_cursor_advance_rereads_without_doubling(
    source: SourceDatabase,
    store: LocalLakeStore,
    catalog: DuckDBCatalog,
    engine: DuckDBEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _extract(store, catalog, source)
    saved_state = store.read_bytes(state_path("movie_rental", "rental"))
    _execute(source.url, rental.update().values(staff_id=2, last_update=datetime(2030, 1, 1)))
    _extract(store, catalog, source)
    # the cursor write was lost: the next run starts from the old cursor again
    store.write_bytes(state_path("movie_rental", "rental"), saved_state)
    _extract(store, catalog, source)
    lake = _lake_rows(engine)
    assert lake == _source_rows(source.url) and {row[5] for row in lake} == {2}


def _fails_naming_source_and_table(
    database: SourceDatabase, table: str, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    spec = SourceTable(table, ("rental_id",), kind=INCREMENTAL, event_date_column="rental_date")
    with pytest.raises(SourceDatabaseError, match=rf"source movie_rental: .*table {table}"):
        extract_incremental(store, catalog, database, "movie_rental", spec)
    assert store.list_files("parquet/") == []
    assert not store.exists(state_path("movie_rental", table))


def test_an_unreachable_database_fails_naming_source_and_table_with_the_lake_unchanged(
    store: LocalLakeStore, catalog: DuckDBCatalog, tmp_path: Any
) -> None:
    url = f"sqlite:///{tmp_path}/missing-dir/none.sqlite"
    unreachable = SourceDatabase(source="movie_rental", url=url)
    _fails_naming_source_and_table(unreachable, "rental", store, catalog)


def test_a_missing_table_fails_naming_source_and_table_with_the_lake_unchanged(
    source: SourceDatabase, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    _fails_naming_source_and_table(source, "no_such_table", store, catalog)
