"""The production dagster.yaml (PostgreSQL storage, queued runs, ECS or default launcher), from env.

Every connection value is written as a dagster `env:` reference, so the password that ECS
injects from Secrets Manager never reaches the disk. Run retries cover runs that die from the
outside (an ECS task killed for memory stays STARTED until run monitoring fails it); a step
that raised is not retried (`retry_on_asset_or_op_failure: false`): the same code would fail
again and the failure alert is what is wanted.
"""

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from analytics_pipeline.cli.dagster_home import (
    FREE_SLOTS_AFTER_RUN_END_SECONDS,
    POOLS,
    TELEMETRY,
)

PG_ENV = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "db_name": "DAGSTER_PG_DB",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
}
LAUNCHERS = ("ecs", "default")
MAX_CONCURRENT_RUNS = 8
# Backfills queue behind each other so sensor-driven runs still get a slot.
BACKFILL_RUN_LIMIT = 2
START_TIMEOUT_SECONDS = 600
CANCEL_TIMEOUT_SECONDS = 300
MAX_RUN_RETRIES = 2


def instance_config(env: dict[str, str]) -> dict[str, Any]:
    """The dagster.yaml contents for the deployment `env` describes."""
    missing = [name for name in PG_ENV.values() if not env.get(name)]
    if missing:
        raise ValueError(f"instance config needs {', '.join(missing)} set")
    launcher = env.get("DAGSTER_RUN_LAUNCHER", "default")
    if launcher not in LAUNCHERS:
        raise ValueError(f"DAGSTER_RUN_LAUNCHER={launcher!r}: expected one of {LAUNCHERS}")
    config: dict[str, Any] = {**yaml.safe_load(TELEMETRY), **yaml.safe_load(POOLS)}
    postgres_db: dict[str, Any] = {key: {"env": name} for key, name in PG_ENV.items()}
    # dagster-postgres speaks psycopg2; SQLAlchemy's bare postgresql:// now means psycopg 3.
    postgres_db["scheme"] = "postgresql+psycopg2"
    config["storage"] = {"postgres": {"postgres_db": postgres_db}}
    # Run limits live beside the pools: dagster refuses them in the coordinator's own config.
    config["concurrency"]["runs"] = {
        "max_concurrent_runs": MAX_CONCURRENT_RUNS,
        "tag_concurrency_limits": [{"key": "dagster/backfill", "limit": BACKFILL_RUN_LIMIT}],
    }
    config["run_coordinator"] = {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
    }
    if launcher == "ecs":
        # No config: each run is one Fargate task built from the current task's definition.
        config["run_launcher"] = {"module": "dagster_aws.ecs", "class": "EcsRunLauncher"}
    config["run_monitoring"] = {
        "enabled": True,
        "start_timeout_seconds": START_TIMEOUT_SECONDS,
        "cancel_timeout_seconds": CANCEL_TIMEOUT_SECONDS,
        # Neither launcher can resume a run inside a dead task: fail it, then retry it.
        "max_resume_run_attempts": 0,
        "free_slots_after_run_end_seconds": FREE_SLOTS_AFTER_RUN_END_SECONDS,
    }
    config["run_retries"] = {
        "enabled": True,
        "max_retries": MAX_RUN_RETRIES,
        "retry_on_asset_or_op_failure": False,
    }
    bucket = env.get("DAGSTER_COMPUTE_LOGS_BUCKET")
    if bucket:
        config["compute_logs"] = {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": {
                "bucket": bucket,
                "prefix": env.get("DAGSTER_COMPUTE_LOGS_PREFIX", "dagster-compute-logs"),
            },
        }
    return config


def write_instance_config(path: Path, env: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(instance_config(env), sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="default: $DAGSTER_HOME/dagster.yaml")
    args = parser.parse_args()
    out = args.out
    if out is None:
        home = os.environ.get("DAGSTER_HOME")
        if not home:
            parser.error("give --out or set DAGSTER_HOME")
        out = Path(home) / "dagster.yaml"
    try:
        write_instance_config(out, dict(os.environ))
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
