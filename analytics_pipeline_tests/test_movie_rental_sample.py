"""The sample movie rental database: the same rows from the same seed, on any SQLAlchemy URL."""

from __future__ import annotations

from pathlib import Path

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


def test_the_source_url_comes_from_its_env_var_or_defaults_to_the_lakes_sqlite(
    tmp_path: Path,
) -> None:
    from analytics_pipeline.settings import Settings

    default = Settings.from_env({"ANALYTICS_LAKE_DIR": str(tmp_path)})
    expected = f"sqlite:///{tmp_path.resolve()}/sources/movie_rental.sqlite"
    assert default.source_db_urls == {"movie_rental": expected}
    chosen = Settings.from_env({"ANALYTICS_MOVIE_RENTAL_DB_URL": "postgresql://h/db"})
    assert chosen.source_db_urls == {"movie_rental": "postgresql://h/db"}


def test_sample_data_writes_the_movie_rental_database_under_the_lake(tmp_path: Path) -> None:
    from analytics_pipeline.cli.sample_data import main

    assert main(["--lake-dir", str(tmp_path), "--days", "2", "--scale", "0.05"]) == 0
    counts = _counts(f"sqlite:///{tmp_path}/sources/movie_rental.sqlite")
    assert counts["rental"] > 0 and counts["film"] > 0
