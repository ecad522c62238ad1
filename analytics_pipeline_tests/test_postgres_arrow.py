"""PostgreSQL read as Arrow by ADBC: the lake's types, and the driver's errors named by
source and table (a user who may connect and see the table but not read it)."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.lake.source_extract import extract_and_serve
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.postgres_arrow import to_lake_type
from analytics_pipeline.resources.source_database import SourceDatabase, SourceTableError
from local_servers.db_servers import DatabaseServer


def test_a_user_who_cannot_read_the_table_gets_its_name_and_nothing_changes(
    postgres_server: DatabaseServer, store: LocalLakeStore, catalog: DuckDBCatalog
) -> None:
    url = postgres_server.fresh_database()
    create_movie_rental(url, end_date=date(2026, 11, 30), days=2, scale=0.2)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE ROLE reader LOGIN PASSWORD 'reader-pw'"))
        connection.execute(sa.text("GRANT SELECT ON film TO reader"))
    engine.dispose()
    reader_url = (
        sa.make_url(url)
        .set(username="reader", password="reader-pw")
        .render_as_string(hide_password=False)
    )
    source = SourceDatabase(source="movie_rental", url=reader_url)
    extract_and_serve(store, catalog, source, MOVIE_RENTAL, "film")  # granted: read by ADBC
    assert catalog.partitions("film")
    with pytest.raises(SourceTableError, match=r"source movie_rental table rental: .*permission"):
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, "rental")
    assert catalog.partitions("rental") == {}
    assert store.list_files("parquet/rental/") == []


def test_driver_columns_become_the_lake_types() -> None:
    numeric = pa.ExtensionArray.from_storage(
        pa.opaque(pa.string(), "numeric", "PostgreSQL"), pa.array(["4.99", None])
    )
    assert to_lake_type(numeric, pa.float64()).to_pylist() == [4.99, None]
    micro = pa.array([datetime(2026, 11, 30, 12, 0, 0, 123456)], pa.timestamp("us"))
    assert to_lake_type(micro, pa.timestamp("ms")).to_pylist() == [
        datetime(2026, 11, 30, 12, 0, 0, 123000)
    ]
    with pytest.raises(pa.ArrowInvalid):  # never wrapped silently into a smaller integer
        to_lake_type(pa.array([2**40]), pa.int32())
