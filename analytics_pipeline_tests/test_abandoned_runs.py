"""A run whose process died is marked failed; a run whose process lives is left alone.

The tests that depend on the instance storage run on SQLite and on PostgreSQL (the production
dagster.yaml). A run is judged where its pid means what it meant: it names its pid's boot and
pid namespace; one that names another (an ECS task, another container) is left to its
launcher's run monitoring, and on a shared database so is one that names none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData

from analytics_pipeline.cli.dagster_home import (
    DEQUEUE_INTERVAL_SECONDS,
    FREE_SLOTS_AFTER_RUN_END_SECONDS,
    ensure_dagster_home,
)
from analytics_pipeline.defs.abandoned_runs import build_abandoned_runs_sensor, fail_abandoned_runs
from analytics_pipeline.run_owner import (
    OWNER_PID_TAG,
    OWNER_START_TAG,
    PID_SPACE_TAG,
    alive,
    name_run_owner,
    owner_tags,
    pid_space,
    start_ticks,
)
from analytics_pipeline_tests.instance_storage import STORAGES, dagster_home_on

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# A run that SIGKILLs its own process in the middle of its only step, which holds the slot
# of a pool of limit 1 (as a table's writes do); argv[1] is the run's tags as JSON.
_DYING_RUN = textwrap.dedent(
    """
    import json, os, signal, sys
    import dagster as dg
    from analytics_pipeline.resources.local.store import LocalLakeStore

    tags, lake = json.loads(sys.argv[1]), sys.argv[2]

    # With a lake, the step holds the lake store, whose set-up names the run's process, as
    # every step of the project's runs does.
    @dg.asset(pool="lake_write_dies", required_resource_keys={"store"} if lake else set())
    def dies() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    resources = {"store": LocalLakeStore(lake_dir=lake)} if lake else {}
    with dg.DagsterInstance.get() as instance:
        dg.materialize([dies], instance=instance, tags=tags, resources=resources)
    """
)
POOL = "lake_write_dies"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """$DAGSTER_HOME on SQLite, or on the storage a test parametrizes it with."""
    storage = getattr(request, "param", "sqlite")
    return dagster_home_on(storage, tmp_path / "dagster_home", request, monkeypatch)


def _killed_run(home: Path, tags: dict[str, str] | None = None, lake: Path | None = None) -> str:
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(PROJECT_ROOT)}
    args = [json.dumps(tags or {}), str(lake or "")]
    done = subprocess.run([sys.executable, "-c", _DYING_RUN, *args], env=env, capture_output=True)
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


def _gone_pid() -> str:
    """The pid of a process that has ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return done.stdout.strip()


def _slot_holders(instance: dg.DagsterInstance) -> set[str]:
    return instance.event_log_storage.get_concurrency_run_ids()


@pytest.mark.parametrize("home", ["postgres"], indirect=True)
def test_on_a_shared_database_a_run_that_names_no_pid_space_is_not_judged(home: Path) -> None:
    run_id = _killed_run(home)  # killed before any step named its process
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert fail_abandoned_runs(instance) == []  # the pid may be another host's
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.STARTED
        assert _slot_holders(instance) == {run_id}
        # Left to run monitoring, which fails it once the launcher says its worker is gone.
        assert instance.run_monitoring_enabled and instance.run_retries_enabled


@pytest.mark.parametrize("home", STORAGES, indirect=True)
def test_a_run_killed_in_a_lake_step_is_marked_failed_on_either_storage(
    home: Path, tmp_path: Path
) -> None:
    # Launched with no owner tags (as the daemon launches a run): its step named its process.
    run_id = _killed_run(home, lake=tmp_path / "lake")
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.tags[PID_SPACE_TAG] == pid_space()
        assert fail_abandoned_runs(instance) == [run_id]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
        assert _slot_holders(instance) == set()


@pytest.mark.parametrize("home", STORAGES, indirect=True)
def test_a_run_of_another_machine_is_left_to_its_launcher(home: Path) -> None:
    # Its pid (here, one that is gone) names a process of another boot or container.
    gone = _gone_pid()
    tags = {OWNER_PID_TAG: gone, PID_SPACE_TAG: "another-boot/pid:[4026531836]"}
    run_id = _killed_run(home, tags)
    with dg.DagsterInstance.get() as instance:
        assert fail_abandoned_runs(instance) == []
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.STARTED


def test_a_killed_run_marked_failed_frees_its_pool_slot_at_once(home: Path) -> None:
    run_id = _killed_run(home)
    with dg.DagsterInstance.get() as instance:
        assert _slot_holders(instance) == {run_id}  # the next writer would wait for ever
        assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
        assert fail_abandoned_runs(instance) == [run_id]
        assert _slot_holders(instance) == set()
        assert not instance.event_log_storage.get_concurrency_info(POOL).claimed_slots


@pytest.mark.parametrize("home", STORAGES, indirect=True)
def test_a_slot_left_by_a_run_already_failed_is_freed(home: Path) -> None:
    run_id = _killed_run(home)
    with dg.DagsterInstance.get() as instance:
        # Failed by someone who did not free its slots (an older clean-up, the UI).
        instance.report_run_failed(instance.get_run_by_id(run_id))  # type: ignore[arg-type]
        assert _slot_holders(instance) == {run_id}
        assert fail_abandoned_runs(instance) == []  # not ours to fail again...
        assert _slot_holders(instance) == set()  # ...but its slot is free


def test_a_run_whose_owner_pid_was_reused_is_marked_failed(home: Path) -> None:
    # The pid is alive (this very process), but it started at another time than the one the
    # run recorded: a new process under a recycled pid, not the run's.
    tags = {OWNER_PID_TAG: str(os.getpid()), OWNER_START_TAG: "1"}
    run_id = _killed_run(home, tags)
    with dg.DagsterInstance.get() as instance:
        assert fail_abandoned_runs(instance) == [run_id]
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.FAILURE


def test_a_run_owned_by_a_live_process_is_left_alone(home: Path) -> None:
    run_id = _killed_run(home, owner_tags())  # as if this process were running it
    with dg.DagsterInstance.get() as instance:
        assert fail_abandoned_runs(instance) == []
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.STARTED


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="start times come from /proc")
def test_a_pid_logged_before_its_process_started_is_not_that_process() -> None:
    assert alive(os.getpid(), started_by=time.time())
    assert not alive(os.getpid(), started_by=0.0)  # logged long before this process began


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process states come from /proc")
def test_a_killed_worker_not_yet_reaped_is_dead() -> None:
    # A code server reaps the run workers it spawned only later: a zombie is not a live run.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 60
        while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.05)
        assert not alive(child.pid)
        assert not alive(child.pid, same_start=str(start_ticks(child.pid)))
    finally:
        child.wait()
    assert alive(os.getpid())


def test_dagster_home_has_the_daemon_free_slots_of_ended_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # an older one
    ensure_dagster_home(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled  # the daemon that frees them runs
        settings = instance.run_monitoring_settings
        assert settings["free_slots_after_run_end_seconds"] == FREE_SLOTS_AFTER_RUN_END_SECONDS
        # Queued runs are picked up every DEQUEUE_INTERVAL_SECONDS, not Dagster's default 5 s.
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, dg.QueuedRunCoordinator)
        assert coordinator.dequeue_interval_seconds == DEQUEUE_INTERVAL_SECONDS


def test_a_run_created_but_never_started_by_a_dead_owner_is_marked_failed(home: Path) -> None:
    # Killed between creating its run and starting it: no step, no pid logged.
    with dg.DagsterInstance.get() as instance:
        for owner in ({OWNER_PID_TAG: _gone_pid()}, {}):
            instance.add_run(
                dg.DagsterRun(job_name="__ASSET_JOB", run_id=str(uuid.uuid4()), tags=owner)
            )
        owned, unowned = sorted(instance.get_runs(), key=lambda r: OWNER_PID_TAG not in r.tags)
        assert fail_abandoned_runs(instance) == [owned.run_id]
        left = instance.get_run_by_id(unowned.run_id)
        assert left is not None and left.status == dg.DagsterRunStatus.NOT_STARTED  # daemon's


@pytest.mark.parametrize("home", STORAGES, indirect=True)
def test_a_retry_carrying_its_killed_parents_owner_is_not_failed_for_it(home: Path) -> None:
    # The daemon's retry (and the UI's re-execute) copies the parent's tags, owner included:
    # the dead pid is the parent's, not the retry's, which the daemon is about to launch.
    parent_id = _killed_run(home, {OWNER_PID_TAG: _gone_pid(), PID_SPACE_TAG: pid_space() or ""})
    with dg.DagsterInstance.get() as instance:
        parent = instance.get_run_by_id(parent_id)
        assert parent is not None
        retry = dg.DagsterRun(
            job_name=parent.job_name,
            run_id=str(uuid.uuid4()),
            tags={**parent.tags, "dagster/parent_run_id": parent_id},
            parent_run_id=parent_id,
            root_run_id=parent_id,
        )
        instance.add_run(retry)
        assert fail_abandoned_runs(instance) == [parent_id]
        left = instance.get_run_by_id(retry.run_id)
        assert left is not None and left.status == dg.DagsterRunStatus.NOT_STARTED

        # Its worker names itself over the copied owner; from then on it is judged by it.
        name_run_owner(instance, retry.run_id)
        named = instance.get_run_by_id(retry.run_id)
        assert named is not None and named.tags[OWNER_PID_TAG] == str(os.getpid())
        assert fail_abandoned_runs(instance) == []
