"""The sample movie rental database: the same rows from the same seed, on any SQLAlchemy URL."""

from __future__ import annotations

import sqlalchemy as sa

from analytics_pipeline.cli.samples.movie_rental import create_movie_rental_database
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL


def _counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: connection.execute(
                    sa.text(f"SELECT COUNT(*) FROM {table.name}")
                ).scalar_one()
                for table in MOVIE_RENTAL.tables
            }
    finally:
        engine.dispose()


def test_sample_database_has_every_spec_table_with_the_reported_rows(source_db_url: str) -> None:
    reported = create_movie_rental_database(source_db_url, days=3, seed=1, rentals_per_day=10)
    assert _counts(source_db_url) == reported
    assert reported["rental"] == 30 and reported["payment"] == 30


def test_sample_database_is_recreated_not_appended(source_db_url: str) -> None:
    first = create_movie_rental_database(source_db_url, days=2, seed=5)
    second = create_movie_rental_database(source_db_url, days=2, seed=5)
    assert first == second == _counts(source_db_url)


def test_every_rental_date_lies_in_the_requested_days(source_db_url: str) -> None:
    create_movie_rental_database(source_db_url, days=4, seed=2)
    engine = sa.create_engine(source_db_url)
    try:
        with engine.connect() as connection:
            days = connection.execute(sa.text("SELECT rental_date FROM rental")).scalars().all()
    finally:
        engine.dispose()
    assert len({str(day)[:10] for day in days}) == 4
