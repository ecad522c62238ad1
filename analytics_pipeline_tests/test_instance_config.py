"""The production instance config: rendered from env, loaded by Dagster on a real PostgreSQL."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster import DagsterInstance

from analytics_pipeline.cli.instance_config import instance_config, write_instance_config

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "not-on-disk-7f3a"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_env() -> Iterator[dict[str, str]]:
    """A PostgreSQL 15 of this session's own on 127.0.0.1 (password auth), and the env naming it."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 binaries not found under {PG_BIN}")
    # initdb refuses root: under root the server runs as nobody, in a directory nobody owns.
    as_user = (
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        if os.getuid() == 0
        else []
    )
    with tempfile.TemporaryDirectory(prefix="pg-instance-") as directory:
        root = Path(directory)
        if os.getuid() == 0:
            shutil.chown(root, "nobody", "nogroup")
        yield from _run_postgres(root, as_user)


def _run_postgres(root: Path, as_user: list[str]) -> Iterator[dict[str, str]]:
    data, password_file = root / "data", root / "pw"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o644)
    subprocess.run(
        [*as_user, PG_BIN / "initdb", "-D", data, "-U", "dagster", "-A", "md5",
         "--pwfile", password_file, "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [*as_user, PG_BIN / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port),
         "-k", root, "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):
            ready = subprocess.run(
                [PG_BIN / "pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
                capture_output=True,
            )
            if ready.returncode == 0:
                break
            if server.poll() is not None:
                pytest.fail(f"postgres exited with {server.returncode}")
        else:
            pytest.fail("postgres did not accept connections")
        yield {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(port),
            "DAGSTER_PG_DB": "postgres",
            "DAGSTER_PG_USER": "dagster",
            "DAGSTER_PG_PASSWORD": PASSWORD,
        }
    finally:
        server.terminate()
        server.wait(timeout=60)


@dg.asset
def probe() -> int:
    return 1


def test_rendered_config_runs_on_postgres(
    postgres_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = write_instance_config(tmp_path / "dagster.yaml", postgres_env)
    assert PASSWORD not in config_path.read_text()
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
