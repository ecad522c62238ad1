"""A run whose process died is marked failed; a run whose process lives is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData

from analytics_pipeline.abandoned_runs import build_abandoned_runs_sensor, fail_abandoned_runs
from analytics_pipeline.dagster_home import ensure_dagster_home

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# A run that SIGKILLs its own process in the middle of its only step.
_DYING_RUN = textwrap.dedent(
    """
    import os, signal
    import dagster as dg

    @dg.asset
    def dies() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with dg.DagsterInstance.get() as instance:
        dg.materialize([dies], instance=instance)
    """
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    ensure_dagster_home(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def _killed_run(home: Path) -> str:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", _DYING_RUN], env=env, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED  # what Dagster leaves behind
        return run.run_id


def test_a_run_whose_process_died_is_marked_failed_with_the_reason(home: Path) -> None:
    run_id = _killed_run(home)
    with dg.DagsterInstance.get() as instance:
        sensor = build_abandoned_runs_sensor()
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert run_id in (result.skip_message or "")
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        messages = [e.message for e in instance.all_logs(run_id) if e.message]
        assert any("no longer exists" in m for m in messages)
        assert fail_abandoned_runs(instance) == []  # once


def test_a_run_whose_process_lives_is_left_alone(home: Path) -> None:
    run_id = _killed_run(home)
    with dg.DagsterInstance.get() as instance:
        # The same run, as if its process were this one: alive.
        instance.report_engine_event(
            "Executing steps in process",
            instance.get_run_by_id(run_id),
            EngineEventData(metadata={"pid": dg.MetadataValue.int(os.getpid())}),
        )
        assert fail_abandoned_runs(instance) == []
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.STARTED
