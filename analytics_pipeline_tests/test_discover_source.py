"""Discovery: the source spec printed from a database's own schema, and its clear errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics_pipeline.cli.discover_source import DiscoveryError, discover, main
from analytics_pipeline.cli.samples.movie_rental import create_movie_rental
from analytics_pipeline.datasets.movie_rental import MOVIE_RENTAL
from analytics_pipeline.datasets.source_spec import SourceSpec, SourceTable, TableKind


def printed_spec(capsys: pytest.CaptureFixture[str], *argv: str) -> SourceSpec:
    """What the command prints, run as the Python it is."""
    assert main(list(argv)) == 0
    namespace: dict[str, object] = {}
    exec(capsys.readouterr().out, namespace)
    specs = [v for v in namespace.values() if isinstance(v, SourceSpec)]
    assert len(specs) == 1
    return specs[0]


def by_name(spec: SourceSpec) -> dict[str, SourceTable]:
    return {table.name: table for table in spec.tables}


def test_the_sample_database_prints_the_committed_movie_rental_spec(
    source_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    create_movie_rental(source_db_url, end_date=date(2026, 11, 30), days=1, scale=0.1)
    spec = printed_spec(capsys, source_db_url, "--name", "movie_rental")
    assert spec.name == MOVIE_RENTAL.name
    # Keys, kinds, event dates and cursors, table by table.
    assert by_name(spec) == by_name(MOVIE_RENTAL)


def test_the_name_defaults_to_the_database_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'movie_rental.sqlite'}"
    create_movie_rental(url, end_date=date(2026, 11, 30), days=1, scale=0.1)
    assert printed_spec(capsys, url).name == "movie_rental"


def test_heuristics_event_tables_cursors_and_tables_without_a_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for ddl in (
            # An event named after its table, with a cursor under another common name.
            "CREATE TABLE orders (order_id INTEGER PRIMARY KEY,"
            " order_date DATETIME NOT NULL, updated_at DATETIME)",
            # A date that describes a thing, not an event: a snapshot.
            "CREATE TABLE shop_user (user_id INTEGER PRIMARY KEY,"
            " create_date DATETIME NOT NULL, last_update DATETIME)",
            # An event with no cursor cannot be read by change: whole, and noted.
            "CREATE TABLE clicks (click_id INTEGER PRIMARY KEY, clicks_at DATETIME NOT NULL)",
            # A nullable event date cannot place every row in a day: a snapshot.
            "CREATE TABLE refund (refund_id INTEGER PRIMARY KEY, refund_date DATETIME,"
            " last_update DATETIME)",
            "CREATE TABLE audit_log (message TEXT)",
        ):
            connection.execute(sa.text(ddl))
    engine.dispose()

    found = discover(url)
    assert found.spec.name == "shop"
    assert by_name(found.spec) == {
        "orders": SourceTable(
            "orders", ("order_id",), TableKind.INCREMENTAL, "order_date", "updated_at"
        ),
        "shop_user": SourceTable("shop_user", ("user_id",)),
        "clicks": SourceTable("clicks", ("click_id",)),
        "refund": SourceTable("refund", ("refund_id",)),
    }
    assert found.notes == {
        "audit_log": "no primary key, so a changed row cannot replace its version: left out",
        "clicks": "event column clicks_at but no change cursor: read whole",
    }


def test_an_unreachable_database_names_the_url_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql+psycopg://analyst:s3cret@127.0.0.1:1/movie_rental"
    with pytest.raises(DiscoveryError, match=r"cannot read postgresql\+psycopg://analyst:\*\*\*@"):
        discover(url)
    assert main([url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "127.0.0.1:1/movie_rental" in captured.err
    assert "s3cret" not in captured.err


def test_a_missing_sqlite_file_is_an_error_not_a_new_empty_database(tmp_path: Path) -> None:
    missing = tmp_path / "typo.sqlite"
    with pytest.raises(DiscoveryError, match=f"no database file {missing}"):
        discover(f"sqlite:///{missing}")
    assert not missing.exists()


def test_a_database_without_tables_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    sa.create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(DiscoveryError, match="has no tables"):
        discover(f"sqlite:///{empty}")
