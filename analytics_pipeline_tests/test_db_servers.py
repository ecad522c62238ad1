"""The PostgreSQL fixture gives each test its own empty database on a real server."""

from __future__ import annotations

import sqlalchemy as sa

from local_servers.db_servers import DatabaseServer


def test_each_fresh_database_is_empty_and_separate(postgres_server: DatabaseServer) -> None:
    first, second = postgres_server.fresh_database(), postgres_server.fresh_database()
    assert first != second and first.startswith("postgresql+psycopg://")
    engine = sa.create_engine(first)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE t (id integer primary key)"))
            connection.execute(sa.text("INSERT INTO t VALUES (1), (2)"))
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM t")).scalar() == 2
    finally:
        engine.dispose()
    assert sa.inspect(sa.create_engine(second)).get_table_names() == []


def test_mariadb_gives_fresh_databases(mariadb_server: DatabaseServer) -> None:
    url = mariadb_server.fresh_database()
    assert url.startswith("mysql+pymysql://")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE t (id integer primary key)"))
            connection.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert sa.inspect(engine).get_table_names() == ["t"]
    finally:
        engine.dispose()
