"""Fixtures: a fresh lake directory, its definitions and a throwaway Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from moto import mock_aws

from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.engine import DuckDBEngine
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.local_lake import fresh_lake
from analytics_pipeline_tests.source_databases import mariadb_server, postgres_server, source_db_url

__all__ = [
    "mariadb_server",
    "postgres_server",
    "source_db_url",
]  # the relational-source fixtures: servers, and one URL param per database kind

# No per-example deadline or too-slow check: CI machines are shared and a property test is
# about results, never time (a loaded host once took 512 ms for a 27 ms example).
hypothesis_settings.register_profile(
    "shared_machines", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("shared_machines")


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    fresh_lake(path)
    return path


@pytest.fixture
def settings(lake_dir: Path) -> Settings:
    return fresh_lake(lake_dir)


@pytest.fixture
def store(lake_dir: Path) -> LocalLakeStore:
    return LocalLakeStore(lake_dir=str(lake_dir))


@pytest.fixture
def catalog(lake_dir: Path) -> DuckDBCatalog:
    return DuckDBCatalog(lake_dir=str(lake_dir))


@pytest.fixture
def engine(lake_dir: Path) -> DuckDBEngine:
    return DuckDBEngine(lake_dir=str(lake_dir))


@pytest.fixture(autouse=True)
def _no_leftover_defs_state_storage() -> Iterator[None]:
    """Each test starts without another test's instance as Dagster's current defs-state
    storage: an instance entered and left out of order leaves a disposed one current, and
    the next definitions load (get_repository_def) then fails on its dead weakref."""
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield


@pytest.fixture
def defs(settings: Settings) -> dg.Definitions:
    return build_definitions(settings)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS, with fake credentials and no real endpoint or profile."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield


# terraform/ applied to moto: every deployment the selected tests audit is applied at once,
# by the xdist controller while the workers test (terraform_fixtures.py).


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        from analytics_pipeline_tests.terraform_fixtures import ControllerDeployments

        config.pluginmanager.register(ControllerDeployments(), "terraform-deployments")


@pytest.fixture(scope="session")
def terraform_deployments(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    from analytics_pipeline_tests import terraform_fixtures

    with terraform_fixtures.terraform_deployments(
        request.config,
        [item.nodeid for item in request.session.items],
        tmp_path_factory.mktemp("terraform-deployments"),
    ) as deployments:
        yield deployments


# xdist hands whole files to the workers in collection order (`--dist loadfile
# --no-loadscope-reorder`, see the Makefile): the files that take a minute or more go first, so
# that none starts while the other workers are finishing. Measured on a loaded 2-core machine;
# the Terraform modules after the first few, by when the controller has applied theirs.
SLOW_FILES_FIRST = (
    "test_postgres_instance.py",
    "test_benchmarks.py",
    "test_ui_browser.py",
    "test_dev_server.py",
    "test_database_source.py",
    "test_concurrency.py",
    "test_dagster_deployment.py",
    "test_terraform.py",
    "test_abandoned_runs.py",
    "test_source_analytics.py",
    "test_staleness.py",
    "test_faults.py",
    "test_random_kills.py",
    "test_api_deployment.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: in-file order kept
