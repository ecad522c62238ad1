"""The production instance, proven locally: PostgreSQL storage, `dagster-daemon run` and
`dagster-webserver` as separate processes on the rendered dagster.yaml (the default run
launcher in place of ECS).

Sample data dropped into landing reaches every table through the sensors and the automation
alone (the movie-rental database, whose extract is an hourly schedule, is extracted by a run
launched from the webserver). Then a backfill launched as the UI launches it (GraphQL
`launchPartitionBackfill`) rebuilds some days, and nothing is doubled. Last, a run whose
worker is killed is marked failed without the test's help (by the code server that launched it,
or the project's abandoned-runs sensor) and retried by the daemon.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from analytics_pipeline.cli.instance_config import write_instance_config
from analytics_pipeline.cli.sample_data import SampleSummary, generate
from analytics_pipeline.defs.analytics import ANALYTICS
from analytics_pipeline.defs.keys import analytics_key, parquet_key, table_key
from analytics_pipeline.resources.local.catalog import CATALOG_FILE
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.run_owner import OWNER_PID_TAG
from analytics_pipeline.settings import MOVIE_RENTAL_FILE
from analytics_pipeline_tests.lake_helpers import landing_files
from local_servers.db_servers import DatabaseServer
from local_servers.dev_server import DevServer, dagster_services

END_DAY = date(2024, 6, 30)
# Generous for a loaded 2-core CI machine: each run is a fresh Python process (~5 s here).
DEADLINE_SECONDS = 420.0
POLL_SECONDS = 4.0  # each poll reads every table of the catalog
BACKFILL_DAYS = ["2024-06-29", "2024-06-30"]
BACKFILL_ASSETS = [parquet_key("products"), table_key("products")]
BACKFILL_ASSETS += [analytics_key("daily_product_counts")]

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { invalidOutputName }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status runs(limit: 100) { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""
LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
LOCATION = "analytics_pipeline.definitions"
RUNS = """
{ runsOrError(limit: 500) { ... on Runs { results { runId jobName status tags { key value } } } } }
"""
FINISHED = {"COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    lake_dir = tmp_path_factory.mktemp("pg") / "lake"
    summary = generate(lake_dir, end_date=END_DAY, days=len(BACKFILL_DAYS), seed=5, scale=0.05)
    assert (lake_dir / MOVIE_RENTAL_FILE).exists()
    return lake_dir, summary


@pytest.fixture(scope="module")
def pg_env(postgres_server: DatabaseServer) -> dict[str, str]:
    return postgres_server.dagster_env()


@pytest.fixture(scope="module")
def server(
    lake: tuple[Path, SampleSummary],
    pg_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DevServer]:
    home = tmp_path_factory.mktemp("pg") / "dagster_home"
    write_instance_config(home / "dagster.yaml", pg_env)
    with dagster_services(lake[0], home, pg_env) as running:
        yield running


def _failed_as_killed(instance: dg.DagsterInstance, run_id: str) -> bool:
    run = instance.get_run_by_id(run_id)
    if run is None or run.status != dg.DagsterRunStatus.FAILURE:
        return False
    said = " ".join(e.message for e in instance.all_logs(run_id) if e.message)
    return "terminated by signal 9" in said or "no longer exists" in said


def _wait_for(server: DevServer, what: str, condition: Callable[[], bool]) -> None:
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_SECONDS:
        if condition():
            return
        time.sleep(POLL_SECONDS)
    log = server.log_path.read_text()[-4000:]
    pytest.fail(f"{what} did not happen within {DEADLINE_SECONDS}s; daemon log tail:\n{log}")


def _served(lake_dir: Path, summary: SampleSummary) -> dict[str, Any]:
    """Every table's rows per day: landing datasets, database tables and analytics."""
    names = [*summary.table_days, *summary.database_rows, *(a.name for a in ANALYTICS)]
    try:
        con = duckdb.connect(str(lake_dir / CATALOG_FILE), read_only=True)
    except duckdb.Error:  # no catalog yet, or a writer has it open right now
        return dict.fromkeys(names)
    try:
        return {name: _days(con, name) for name in names}
    finally:
        con.close()


def _days(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int] | None:
    try:
        return dict(con.execute(f"SELECT dt, count(*) FROM {table} GROUP BY dt").fetchall())
    except duckdb.Error:  # the table does not exist yet
        return None


def _complete(lake_dir: Path, summary: SampleSummary) -> bool:
    served = _served(lake_dir, summary)
    if any(served[t] != days for t, days in summary.table_days.items()):
        return False
    if any(sum((served[t] or {}).values()) != n for t, n in summary.database_rows.items()):
        return False
    # Each analytics table has every sample day (its sources have records on each).
    return all(served[a.name] and set(served[a.name]) >= set(BACKFILL_DAYS) for a in ANALYTICS)


def _launch_extract(server: DevServer) -> str:
    """Launch the movie-rental extract job from the webserver, as the UI's Launchpad does."""
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": "__repository__",
        "jobName": "extract_movie_rental",
    }
    launched = server.graphql(LAUNCH_RUN, {"params": {"selector": selector}})["data"]
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    return launched["launchRun"]["run"]["runId"]


def _runs(server: DevServer) -> list[dict[str, str]]:
    return server.graphql(RUNS)["data"]["runsOrError"]["results"]


def test_sensors_and_automation_bring_every_dataset_to_its_tables(
    server: DevServer, lake: tuple[Path, SampleSummary]
) -> None:
    lake_dir, summary = lake
    _launch_extract(server)
    _wait_for(server, "every table served", lambda: _complete(lake_dir, summary))
    for name in summary.datasets:
        assert landing_files(lake_dir, name) == [], name
        quarantined = list((lake_dir / "quarantine" / name).rglob("*.jsonl"))
        assert quarantined, f"{name}: its bad records were not quarantined"
    runs = _runs(server)
    assert runs, "the webserver reports no runs"
    ingests = {f"ingest_{name}" for name in summary.datasets}
    assert {r["jobName"] for r in runs} >= {*ingests, "extract_movie_rental", "__ASSET_JOB"}
    _wait_for(server, "no run in progress", lambda: not _unfinished(server))
    # Every run, the automation's hourly refresh included (it waits for a dataset's table).
    failed = [
        (r["jobName"], {t["key"]: t["value"] for t in r["tags"] if "partition" in t["key"]})
        for r in _runs(server)
        if r["status"] != "SUCCESS"
    ]
    assert failed == []


def _unfinished(server: DevServer) -> list[dict[str, str]]:
    return [r for r in _runs(server) if r["status"] in ("QUEUED", "STARTING", "STARTED")]


def test_a_backfill_launched_as_the_ui_does_completes_and_doubles_nothing(
    server: DevServer, lake: tuple[Path, SampleSummary]
) -> None:
    lake_dir, summary = lake
    _wait_for(server, "every table served", lambda: _complete(lake_dir, summary))
    before = _served(lake_dir, summary)
    params = {
        "partitionNames": BACKFILL_DAYS,
        "assetSelection": [{"path": key.path} for key in BACKFILL_ASSETS],
        "fromFailure": False,
        "tags": [],
    }
    launched = server.graphql(LAUNCH_BACKFILL, {"params": params})["data"]
    result = launched["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    backfill_id = result["backfillId"]
    status: dict[str, Any] = {}

    def finished() -> bool:
        status.update(
            server.graphql(BACKFILL_STATUS, {"id": backfill_id})["data"]["partitionBackfillOrError"]
        )
        return status.get("status") in FINISHED

    _wait_for(server, f"backfill {backfill_id} finished", finished)
    assert status["status"] == "COMPLETED_SUCCESS", status
    runs = status["runs"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
    ranges = {
        (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"])
        for tags in ({t["key"]: t["value"] for t in r["tags"]} for r in runs)
    }
    assert ranges == {(BACKFILL_DAYS[0], BACKFILL_DAYS[-1])}  # one ranged run per asset step
    assert _served(lake_dir, summary) == before


@contextmanager
def _instance(server: DevServer, pg_env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    """The services' own instance, opened from this process."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in pg_env.items():
            env.setenv(name, value)
        with dg.DagsterInstance.from_config(str(server.dagster_home)) as instance:
            yield instance


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run's worker logged ("Executing steps in process (pid: N)")."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = entry.dagster_event.engine_event_data if entry.dagster_event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            return int(getattr(pid, "value", pid))
    return None


def test_a_killed_run_is_failed_by_the_project_and_retried_by_the_daemon(
    server: DevServer, lake: tuple[Path, SampleSummary], pg_env: dict[str, str]
) -> None:
    lake_dir, summary = lake
    _wait_for(server, "every table served", lambda: _complete(lake_dir, summary))
    before = _served(lake_dir, summary)
    store = LocalLakeStore(lake_dir=str(lake_dir))
    with _instance(server, pg_env) as instance:
        # The extract's first table is held, so its run waits inside its step until killed.
        with store.table_lock("category", owner="run test-holder"):
            run_id = _launch_extract(server)
            found: dict[str, int] = {}

            def in_its_step() -> bool:
                run = instance.get_run_by_id(run_id)
                steps = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
                pid = _worker_pid(instance, run_id)
                if pid is not None:
                    found["pid"] = pid
                return bool(run and run.status == dg.DagsterRunStatus.STARTED and steps and pid)

            # Killed inside its step (waiting on the lock), not while it is still starting.
            _wait_for(server, f"run {run_id} in its first step", in_its_step)
            run = instance.get_run_by_id(run_id)
            # Its step named the process that runs it, on this machine: that worker.
            assert run is not None and run.tags[OWNER_PID_TAG] == str(found["pid"])
            os.kill(found["pid"], signal.SIGKILL)
            assert run.status == dg.DagsterRunStatus.STARTED
        # Not the test but the deployment fails it: the code server that launched it sees its
        # worker end by SIGKILL, or else (that server gone too) the abandoned-runs sensor
        # finds its named process dead. Then the daemon's run retries launch it again.
        _wait_for(
            server, f"run {run_id} marked failed", lambda: _failed_as_killed(instance, run_id)
        )
        retry = dg.RunsFilter(tags={"dagster/parent_run_id": run_id})
        _wait_for(
            server,
            f"a retry of run {run_id} succeeded",
            lambda: any(r.status == dg.DagsterRunStatus.SUCCESS for r in instance.get_runs(retry)),
        )
        [retried] = instance.get_runs(retry)
        assert retried.tags["dagster/retry_number"] == "1"
        # The killed worker never got past its step, though the lock is long free: it is dead.
        killed = instance.get_run_by_id(run_id)
        assert killed is not None and killed.status == dg.DagsterRunStatus.FAILURE
        steps_done = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        assert steps_done == []
    assert _served(lake_dir, summary) == before  # extracted again, nothing doubled
