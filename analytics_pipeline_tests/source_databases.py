"""The relational databases the source tests run against, as SQLAlchemy URLs.

Each param of `source_db_url` yields the URL of an empty database; SQLite needs no server.
Server-backed params (PostgreSQL, MariaDB) are added beside `_sqlite_url`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_servers.db_servers import DatabaseServer, running_mariadb, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DatabaseServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[DatabaseServer]:
    with running_mariadb() as server:
        yield server


def _sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'source.sqlite'}"


SOURCE_DATABASES = {"sqlite": _sqlite_url}
SERVER_FIXTURES = {
    "postgresql": "postgres_server",
    "mariadb": "mariadb_server",
}  # one server per session, a database per test


@pytest.fixture(params=sorted([*SOURCE_DATABASES, *SERVER_FIXTURES]))
def source_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of each kind the source must work on."""
    if request.param in SERVER_FIXTURES:
        yield request.getfixturevalue(SERVER_FIXTURES[request.param]).fresh_database()
    else:
        yield from SOURCE_DATABASES[request.param](tmp_path)
