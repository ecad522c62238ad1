"""The movie-rental analytics: their numbers against the same question asked of the source
database itself, and the days the automation rebuilds when the source changes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.analytics import ANALYTICS
from analytics_pipeline.defs.keys import analytics_key, table_key
from analytics_pipeline.defs.source_tables import extract_job_name
from analytics_pipeline.defs.staleness import stale_runs
from analytics_pipeline.lake.source_extract import extract_and_serve
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.engine import DuckDBEngine
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.source_database import SourceDatabase
from analytics_pipeline.settings import Settings

# Days before today, as a source holds them (the analytics over it have no hourly refresh).
END = date.today() - timedelta(days=10)
REVENUE, ACTIVE = "daily_rental_revenue_by_category", "daily_active_customers"
SPECS = {spec.name: spec for spec in ANALYTICS}

# What each analytics table says, asked of the source: `{day}` is the dialect's day of a
# timestamp column. Written apart from the Athena SQL on purpose (plain joins, GROUP BY 1).
SOURCE_REVENUE = """
SELECT {day_of_payment}, c.name, count(*), sum(p.amount)
FROM payment p
LEFT JOIN rental r ON r.rental_id = p.rental_id
LEFT JOIN inventory i ON i.inventory_id = r.inventory_id
LEFT JOIN film_category fc ON fc.film_id = i.film_id
LEFT JOIN category c ON c.category_id = fc.category_id
GROUP BY 1, 2
"""
SOURCE_ACTIVE = """
SELECT dt, count(DISTINCT customer_id), sum(is_rental), sum(1 - is_rental)
FROM (
    SELECT {day_of_rental} AS dt, customer_id, 1 AS is_rental FROM rental
    UNION ALL
    SELECT {day_of_payment} AS dt, customer_id, 0 AS is_rental FROM payment
) AS activity
GROUP BY dt
"""


def source_answer(url: str, sql: str) -> set[tuple[Any, ...]]:
    def day(column: str) -> str:
        if url.startswith("sqlite"):  # SQLite keeps timestamps as ISO text
            return f"substr({column}, 1, 10)"
        return f"CAST({column} AS DATE)"

    query = sql.format(day_of_payment=day("payment_date"), day_of_rental=day("rental_date"))
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text(query)).fetchall()
    engine.dispose()
    return {tuple(_comparable(v) for v in row) for row in rows}


def lake_answer(engine: DuckDBEngine, name: str, days: list[str]) -> set[tuple[Any, ...]]:
    return {
        (dt, *(_comparable(v) for v in row.values()))
        for dt in days
        for row in engine.run_query(SPECS[name].sql(dt)).table.to_pylist()
    }


def _comparable(value: Any) -> Any:
    # Money is compared exactly: the servers sum DECIMAL as Decimal, and so must the lake.
    # SQLite alone keeps amounts as REAL, so its sums are floats to the cent.
    if isinstance(value, float):
        return Decimal(repr(round(value, 2)))
    if isinstance(value, date | datetime):
        return str(value)[:10]
    return value


def execute(url: str, sql: str, **params: Any) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(sql), params)
    engine.dispose()


def extract_all(store: LocalLakeStore, catalog: DuckDBCatalog, url: str) -> None:
    source = SourceDatabase(source="movie_rental", url=url)
    for table in MOVIE_RENTAL.tables:
        extract_and_serve(store, catalog, source, MOVIE_RENTAL, table.name)


def assert_analytics_equal_the_source(url: str, catalog: DuckDBCatalog, engine: DuckDBEngine):
    days = sorted(set(catalog.partitions("rental")) | set(catalog.partitions("payment")))
    revenue = lake_answer(engine, REVENUE, sorted(catalog.partitions("payment")))
    assert revenue == source_answer(url, SOURCE_REVENUE)
    assert {type(row[-1]) for row in revenue} == {Decimal}  # exact, not double
    assert lake_answer(engine, ACTIVE, days) == source_answer(url, SOURCE_ACTIVE)
    assert len(revenue) > len(days)  # several categories a day: not vacuously equal


def test_analytics_equal_the_same_question_asked_of_the_source(
    source_db_url: str, store: LocalLakeStore, catalog: DuckDBCatalog, engine: DuckDBEngine
) -> None:
    create_movie_rental(source_db_url, end_date=END, days=4, scale=0.3)
    extract_all(store, catalog, source_db_url)
    assert_analytics_equal_the_source(source_db_url, catalog, engine)

    # A film moved to another category, a payment without a rental, a deleted payment.
    execute(source_db_url, "UPDATE film_category SET category_id = 16 WHERE film_id = 1")
    execute(
        source_db_url,
        "INSERT INTO payment VALUES (9001, 1, 1, NULL, 7.5, :day, :now)",
        day=datetime.combine(END, datetime.min.time()),
        now=datetime.now(),
    )
    execute(source_db_url, "DELETE FROM payment WHERE payment_id = 2")
    extract_all(store, catalog, source_db_url)
    assert_analytics_equal_the_source(source_db_url, catalog, engine)


# --- automation: which days rebuild ---------------------------------------------------------


def latest_by_day(instance: dg.DagsterInstance, name: str) -> Mapping[str, int]:
    return instance.get_latest_storage_id_by_partition(
        analytics_key(name), dg.DagsterEventType.ASSET_MATERIALIZATION
    )


@pytest.fixture
def movie_rental_lake(settings: Settings) -> tuple[dg.Definitions, str]:
    url = settings.movie_rental_url
    Path(sa.make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_movie_rental(url, end_date=END, days=3, scale=0.2)
    return build_definitions(settings), url


def process(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """`make process`, and the days of each movie-rental analytics table it rebuilt."""
    before = {name: latest_by_day(instance, name) for name in (REVENUE, ACTIVE)}
    summary = process_landing(defs, instance)
    assert not summary.failed_runs
    return {
        name: sorted(
            day
            for day, storage_id in latest_by_day(instance, name).items()
            if storage_id > before[name].get(day, -1)
        )
        for name in before
    }


def test_the_automation_rebuilds_the_changed_days_and_every_day_on_a_dimension_change(
    movie_rental_lake: tuple[dg.Definitions, str],
    instance: dg.DagsterInstance,
    catalog: DuckDBCatalog,
    engine: DuckDBEngine,
) -> None:
    defs, url = movie_rental_lake
    window = [str(END - timedelta(days=n)) for n in (2, 1, 0)]
    assert process(defs, instance) == {REVENUE: window, ACTIVE: window}
    assert_analytics_equal_the_source(url, catalog, engine)
    # Nothing changed in the source: the hourly extract rebuilds no day.
    assert process(defs, instance) == {REVENUE: [], ACTIVE: []}

    # A payment changed: its day only. One dated before the partitions start is in the
    # table, but no analytics day exists to rebuild for it (and no run fails asking).
    execute(
        url,
        "INSERT INTO payment VALUES (9001, 1, 1, NULL, 2.5, :day, :now)",
        day=datetime(2019, 6, 1, 12),
        now=datetime.now(),
    )
    middle = str(END - timedelta(days=1))
    execute(
        url,
        "UPDATE payment SET amount = amount + 1, last_update = :now WHERE payment_id = ("
        " SELECT min(payment_id) FROM payment WHERE substr(payment_date, 1, 10) = :day)",
        now=datetime.now(),
        day=middle,
    )
    assert process(defs, instance) == {REVENUE: [middle], ACTIVE: [middle]}

    # A film's category renamed: every revenue day reads it; customers per day do not.
    execute(
        url,
        "UPDATE category SET name = 'Thriller', last_update = :now WHERE category_id ="
        " (SELECT category_id FROM film_category WHERE film_id = 1)",
        now=datetime.now(),
    )
    assert process(defs, instance) == {REVENUE: window, ACTIVE: []}
    assert_analytics_equal_the_source(url, catalog, engine)
    graph = defs.resolve_asset_graph()
    assert graph.get(table_key("rental")).partitions_def is not None
    assert graph.get(table_key("category")).partitions_def is None


def test_a_dimension_change_the_automation_did_not_see_is_found_by_order(
    movie_rental_lake: tuple[dg.Definitions, str], instance: dg.DagsterInstance
) -> None:
    # The automation counts a day rebuilt in the same tick as the change as handled; the
    # stale-day check (`make process`, stale_days_sensor) compares by order instead.
    defs, url = movie_rental_lake
    process(defs, instance)
    graph = defs.resolve_asset_graph()
    extract = defs.resolve_job_def(extract_job_name("movie_rental"))
    assert extract.execute_in_process(instance=instance).success
    assert stale_runs(graph, instance) == []  # re-read, unchanged: nothing is stale

    execute(url, "UPDATE film_category SET category_id = 1 + category_id % 16 WHERE film_id = 1")
    assert extract.execute_in_process(instance=instance).success
    first, last = str(END - timedelta(days=2)), str(END)
    assert stale_runs(graph, instance) == [((first, last), [analytics_key(REVENUE)])]
