"""Dagster homes on each instance storage the project runs on, for tests that run the same
assertions on both: SQLite (a local $DAGSTER_HOME, as `make dev` writes it) and PostgreSQL
(the production dagster.yaml, on a fresh database of the session's server)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analytics_pipeline.cli.dagster_home import TELEMETRY, ensure_dagster_home
from analytics_pipeline.cli.instance_config import instance_config
from local_servers.db_servers import DatabaseServer

STORAGES = ("sqlite", "postgres")


def dagster_home_on(
    storage: str,
    home: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    *,
    pools: bool = True,
) -> Path:
    """Write home/dagster.yaml for `storage` and point DAGSTER_HOME (and, for PostgreSQL, the
    DAGSTER_PG_* variables its yaml reads) at it, for this process and its children."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    if storage == "sqlite":
        if pools:
            ensure_dagster_home(home)
        else:
            (home / "dagster.yaml").write_text(TELEMETRY)
        return home
    if storage != "postgres":
        raise ValueError(f"unknown instance storage {storage!r}: expected one of {STORAGES}")
    server: DatabaseServer = request.getfixturevalue("postgres_server")
    env = server.dagster_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = instance_config(env)
    if not pools:
        del config["concurrency"]["pools"]
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return home
