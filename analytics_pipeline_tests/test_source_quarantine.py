"""A source row that cannot be typed goes to quarantine with its reason and the rest of its
table loads: once per row version, however often it is read again."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.datasets.spec import arrow_type
from analytics_pipeline.lake.database_types import athena_type
from analytics_pipeline.lake.source_extract import extract_and_serve
from analytics_pipeline.lake.source_rows import type_rows
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.source_database import SourceDatabase, SourceTableError
from analytics_pipeline_tests.test_database_source import (
    END,
    execute,
    lake_rows,
    source_rows,
)
from local_servers.db_servers import DatabaseServer


def quarantined(store: LocalLakeStore, table: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in store.list_files(f"quarantine/movie_rental/{table}/")
        for line in store.read_bytes(path).decode().splitlines()
    ]


def without(rows: list[tuple[Any, ...]], *keys: object) -> list[tuple[Any, ...]]:
    return [row for row in rows if row[0] not in keys]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    create_movie_rental(url, end_date=END, days=3, scale=0.2)
    return url


@pytest.fixture
def source(sqlite_url: str) -> SourceDatabase:
    return SourceDatabase(source="movie_rental", url=sqlite_url, batch_rows=20)


def test_a_text_in_an_integer_column_is_quarantined_and_the_rest_loads(
    sqlite_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    execute(  # SQLite keeps text in an INTEGER column; the lake cannot type it
        sqlite_url,
        "INSERT INTO rental VALUES (9200, :day, 'not a number', 1, NULL, 1, :now)",
        day=datetime(2026, 11, 29, 12),
        now=datetime(2026, 12, 2),
    )
    # an update that makes a loaded row untypable: its old version leaves the lake
    execute(sqlite_url, "UPDATE rental SET staff_id = 'x', last_update = :now WHERE rental_id = 1",
            now=datetime(2026, 12, 2))  # fmt: skip

    done = extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert (done.rows_untypable, done.rows_quarantined) == (2, 2)
    assert lake_rows(catalog, "rental") == without(source_rows(sqlite_url, "rental"), 1, 9200)
    lines = {line["source_key"]: line for line in quarantined(store, "rental")}
    assert sorted(lines) == [
        "movie_rental/rental/rental_id=1",
        "movie_rental/rental/rental_id=9200",
    ]
    bad = lines["movie_rental/rental/rental_id=9200"]
    assert bad["line"] is None
    assert bad["reason"].startswith(
        "source movie_rental table rental row rental_id=9200: "
        "column inventory_id: value 'not a number' is not int"
    )
    assert json.loads(bad["raw"])["inventory_id"] == "not a number"
    assert (
        "column staff_id: value 'x' is not smallint"
        in lines["movie_rental/rental/rental_id=1"]["reason"]
    )

    again = extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")  # the overlap again
    assert (again.rows_untypable, again.rows_quarantined) == (2, 0)
    assert len(quarantined(store, "rental")) == 2

    # fixed in the source: the row loads, its quarantine line stays as the record of the old one
    execute(sqlite_url, "UPDATE rental SET inventory_id = 7, last_update = :now "
            "WHERE rental_id = 9200", now=datetime(2026, 12, 3))  # fmt: skip
    extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert lake_rows(catalog, "rental") == without(source_rows(sqlite_url, "rental"), 1)
    assert len(quarantined(store, "rental")) == 2


def test_an_out_of_range_number_in_a_snapshot_is_quarantined_once(
    sqlite_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    execute(sqlite_url, "UPDATE inventory SET film_id = 3000000000 WHERE inventory_id = 2")
    execute(sqlite_url, "UPDATE inventory SET film_id = 1.5 WHERE inventory_id = 3")
    kept = without(source_rows(sqlite_url, "inventory"), 2, 3, 4)
    # SQLite keeps any text in a DATETIME column, which SQLAlchemy cannot parse
    execute(sqlite_url, "UPDATE inventory SET last_update = 'garbage' WHERE inventory_id = 4")
    for _ in range(2):  # a snapshot is read whole every run: the same rows, quarantined once
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "inventory")
    assert lake_rows(catalog, "inventory") == kept
    reasons = sorted(line["reason"] for line in quarantined(store, "inventory"))
    assert len(reasons) == 3
    assert "column film_id: value 3000000000 is not int" in reasons[0]
    assert "too large" in reasons[0]
    assert "column film_id: value 1.5 is not int (has a fraction)" in reasons[1]
    assert "column last_update: value 'garbage' is not timestamp" in reasons[2]


def test_a_rental_without_its_event_date_is_quarantined(
    sqlite_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    execute(sqlite_url, "DROP TABLE rental")  # as a source that allows it: rental_date NULL
    execute(
        sqlite_url,
        "CREATE TABLE rental (rental_id INTEGER PRIMARY KEY, rental_date DATETIME,"
        " inventory_id INTEGER, customer_id INTEGER, return_date DATETIME, staff_id SMALLINT,"
        " last_update DATETIME)",
    )
    execute(
        sqlite_url,
        "INSERT INTO rental VALUES (1, :day, 1, 1, NULL, 1, :day), (2, NULL, 1, 1, NULL, 1, :day)",
        day=datetime(2026, 11, 29, 12),
    )
    done = extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert done.rows_quarantined == 1
    [line] = quarantined(store, "rental")
    assert line["source_key"] == "movie_rental/rental/rental_id=2"
    assert line["reason"].endswith("rental_date: no value, so no day to partition the row by")
    assert lake_rows(catalog, "rental") == without(source_rows(sqlite_url, "rental"), 2)


def test_an_untypable_primary_key_stops_the_table_naming_it(
    sqlite_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, source: SourceDatabase
) -> None:
    """Without its key a row cannot be merged, nor told from a deleted one: no quarantine."""
    execute(sqlite_url, "DROP TABLE rental")  # INT, not INTEGER: no rowid, so any text fits
    execute(
        sqlite_url,
        "CREATE TABLE rental (rental_id INT PRIMARY KEY, rental_date DATETIME NOT NULL,"
        " inventory_id INTEGER, customer_id INTEGER, return_date DATETIME, staff_id SMALLINT,"
        " last_update DATETIME)",
    )
    execute(
        sqlite_url,
        "INSERT INTO rental VALUES (1, :day, 1, 1, NULL, 1, :day),"
        " ('r2', :day, 1, 1, NULL, 1, :day)",
        day=datetime(2026, 11, 29, 12),
    )
    with pytest.raises(SourceTableError, match="a primary key column rental_id: value 'r2'"):
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert store.list_files("parquet/rental/") == [] and store.list_files("quarantine/") == []


def test_typing_keeps_every_row_once_in_one_place() -> None:
    columns = (("id", "int"), ("n", "smallint"), ("when", "timestamp"), ("amount", "double"))
    rows = [
        (1, 5, datetime(2026, 1, 1), Decimal("2.99")),
        (2, 70000, None, None),
        (3, None, "0000-00-00", Decimal("-Infinity")),
        (4, 2.0, None, Decimal("1e400")),  # a NUMERIC beyond double: not silently infinite
        (5, None, None, Decimal("NaN")),
    ]
    typed = type_rows("s", "t", columns, ("id",), rows)
    assert typed.rows.column("id").to_pylist() == [1, 5]
    assert typed.rows.column("amount").to_pylist()[0] == 2.99
    assert [(row.key, row.columns) for row in typed.untypable] == [
        ({"id": 2}, ("n",)),
        ({"id": 3}, ("when",)),
        ({"id": 4}, ("amount",)),
    ]
    assert [p.split(":")[0] for row in typed.untypable for p in row.problems] == [
        "column n",
        "column when",
        "column amount",
    ]
    assert typed.untypable[2].problems[0].endswith("(beyond the range of a double)")


@pytest.mark.parametrize(
    ("precision", "scale", "expected"),
    [
        (5, 2, "decimal(5,2)"),
        (10, None, "decimal(10,0)"),
        (38, 38, "decimal(38,38)"),
        (None, None, "double"),  # PostgreSQL's bare numeric: no exact Athena type
        (40, 2, "double"),  # wider than Athena's 38 digits
        (5, -2, "double"),  # PostgreSQL's negative scale
    ],
)
def test_a_numeric_column_is_exact_where_athena_can_hold_it(
    precision: int | None, scale: int | None, expected: str
) -> None:
    assert athena_type("s", "t", "c", "Numeric", precision, scale) == expected
    assert arrow_type(expected) == (
        pa.float64() if expected == "double" else pa.decimal128(precision or 0, scale or 0)
    )


def test_a_decimal_column_keeps_exact_values_and_quarantines_what_does_not_fit() -> None:
    columns = (("id", "int"), ("amount", "decimal(5,2)"))
    rows = [
        (1, Decimal("2.99")),
        (2, 2.5),  # SQLite may hand back a REAL: read by its shortest repr, exactly
        (3, "4.99"),  # or text
        (4, None),
        (5, Decimal("12345.67")),  # beyond precision 5
        (6, Decimal("1.999")),  # beyond scale 2: not rounded without a word
        (7, "abc"),
    ]
    typed = type_rows("s", "t", columns, ("id",), rows)
    assert typed.rows.schema.field("amount").type == pa.decimal128(5, 2)
    assert typed.rows.column("amount").to_pylist() == [
        Decimal("2.99"),
        Decimal("2.50"),
        Decimal("4.99"),
        None,
    ]
    assert [(row.key["id"], row.columns) for row in typed.untypable] == [
        (5, ("amount",)),
        (6, ("amount",)),
        (7, ("amount",)),
    ]
    assert typed.untypable[0].problems[0].endswith("(more than 3 digits before the point)")
    assert typed.untypable[1].problems[0].endswith("(more than 2 digits after the point)")


def test_mariadb_zero_dates_are_quarantined_and_the_rest_loads(
    mariadb_server: DatabaseServer, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    url = mariadb_server.fresh_database()
    create_movie_rental(url, end_date=END, days=2, scale=0.2)
    engine = sa.create_engine(url)
    with engine.begin() as connection:  # MySQL's old default: zero dates allowed
        connection.execute(sa.text("SET SESSION sql_mode = ''"))
        connection.execute(
            sa.text("UPDATE rental SET return_date = '0000-00-00 00:00:00' WHERE rental_id = 4")
        )
    engine.dispose()
    source = SourceDatabase(source="movie_rental", url=url)
    for _ in range(2):
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    [line] = quarantined(store, "rental")
    assert line["source_key"] == "movie_rental/rental/rental_id=4"
    assert "column return_date: value '0000-00-00 00:00:00" in line["reason"]
    assert "is not timestamp (text that is no valid date or time)" in line["reason"]
    assert lake_rows(catalog, "rental") == without(source_rows(url, "rental"), 4)


def test_postgresql_numeric_beyond_a_double_is_quarantined(
    postgres_server: DatabaseServer, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    url = postgres_server.fresh_database()
    create_movie_rental(url, end_date=END, days=2, scale=0.2)
    execute(url, "ALTER TABLE payment ALTER COLUMN amount TYPE NUMERIC")  # still a double here
    execute(url, "UPDATE payment SET amount = 1e400 WHERE payment_id = 3")
    extract_and_serve(store, catalog, SourceDatabase(source="movie_rental", url=url), MOVIE_RENTAL,
                  "payment")  # fmt: skip
    [line] = quarantined(store, "payment")
    assert line["source_key"] == "movie_rental/payment/payment_id=3"
    assert "column amount: value Decimal('1000000" in line["reason"]
    assert line["reason"].endswith("is not double (beyond the range of a double)")
    assert len(lake_rows(catalog, "payment")) == len(source_rows(url, "payment")) - 1
