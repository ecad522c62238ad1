"""The production instance config: rendered from env, loaded by Dagster on a real PostgreSQL."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster import DagsterInstance

from analytics_pipeline.cli.instance_config import instance_config, write_instance_config
from local_servers.db_servers import PG_PASSWORD, DatabaseServer


@pytest.fixture
def postgres_env(postgres_server: DatabaseServer) -> dict[str, str]:
    """The env naming a fresh database on the session's PostgreSQL (password auth)."""
    return postgres_server.dagster_env()


@dg.asset
def probe() -> int:
    return 1


def test_rendered_config_runs_on_postgres(
    postgres_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = write_instance_config(tmp_path / "dagster.yaml", postgres_env)
    assert PG_PASSWORD not in config_path.read_text()
    for name, value in postgres_env.items():
        monkeypatch.setenv(name, value)
    config = yaml.safe_load(config_path.read_text())
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_retries_enabled
        assert instance.run_retries_max_retries == config["run_retries"]["max_retries"]
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_max_resume_run_attempts == 0
        result = dg.materialize([probe], instance=instance)
        assert result.success
        assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None


def test_ecs_launcher_and_s3_compute_logs_are_rendered(postgres_env: dict[str, str]) -> None:
    env = {
        **postgres_env,
        "DAGSTER_RUN_LAUNCHER": "ecs",
        "DAGSTER_COMPUTE_LOGS_BUCKET": "logs-bucket",
        "DAGSTER_COMPUTE_LOGS_PREFIX": "compute",
    }
    config = instance_config(env)
    assert config["run_launcher"] == {"module": "dagster_aws.ecs", "class": "EcsRunLauncher"}
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"
    assert config["compute_logs"]["config"] == {"bucket": "logs-bucket", "prefix": "compute"}
    # The classes the yaml names exist with these names in the installed packages.
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    assert EcsRunLauncher.__name__ in yaml.safe_dump(config)
    assert S3ComputeLogManager.__name__ in yaml.safe_dump(config)


def test_missing_postgres_env_and_unknown_launcher_are_refused(
    postgres_env: dict[str, str],
) -> None:
    partial = {k: v for k, v in postgres_env.items() if k != "DAGSTER_PG_PASSWORD"}
    with pytest.raises(ValueError, match="DAGSTER_PG_PASSWORD"):
        instance_config(partial)
    with pytest.raises(ValueError, match="DAGSTER_RUN_LAUNCHER='k8s'"):
        instance_config({**postgres_env, "DAGSTER_RUN_LAUNCHER": "k8s"})


def test_cli_writes_into_dagster_home(tmp_path: Path, postgres_env: dict[str, str]) -> None:
    env = {**os.environ, **postgres_env, "DAGSTER_HOME": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", "analytics_pipeline.cli.instance_config"], env=env, check=True
    )
    written = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert written["storage"]["postgres"]["postgres_db"]["password"] == {
        "env": "DAGSTER_PG_PASSWORD"
    }
    assert "run_launcher" not in written


@pytest.mark.usefixtures("aws")
def test_ecs_launcher_config_loads_under_moto(
    postgres_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ECS launcher section is accepted by Dagster's own schema and the launcher is built."""
    write_instance_config(
        tmp_path / "dagster.yaml", {**postgres_env, "DAGSTER_RUN_LAUNCHER": "ecs"}
    )
    for name, value in postgres_env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_launcher).__name__ == "EcsRunLauncher"
