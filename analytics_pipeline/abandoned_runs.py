"""Runs whose process died (SIGKILL, OOM, a closed laptop) are marked failed.

Dagster records a run as STARTED until its process reports the end, so a run killed mid-way
stays "in progress" for ever, and the automation (which never rebuilds a day while a run
for it is in progress) would never rebuild its days. The local run launcher has no health
check for this, so `make process` looks for such runs first: a run whose recorded process
id no longer exists on this machine is reported failed, with the reason.

Only for a SQLite instance (a DAGSTER_HOME on this machine): with a shared database, a run
could be alive on another host under a process id that means nothing here.
"""

import os

import dagster as dg
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose process is gone; their run ids."""
    if not isinstance(instance.run_storage, SqliteRunStorage):
        return []
    failed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED)):
        pids = _process_ids(instance, run.run_id)
        if pids and not any(_alive(pid) for pid in pids):
            instance.report_run_failed(
                run,
                f"the process of this run (pid {', '.join(map(str, sorted(pids)))}) no longer "
                "exists: it was killed before the run could finish; marked failed so its "
                "partitions are rebuilt",
            )
            failed.append(run.run_id)
    return failed


def _process_ids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The process ids the run's engine events recorded ("... in process (pid: N)")."""
    pids = set()
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        value = data.metadata.get("pid") if data and data.metadata else None
        raw = getattr(value, "value", value)
        if isinstance(raw, int | str) and str(raw).isdigit():
            pids.add(int(raw))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def build_abandoned_runs_sensor() -> dg.SensorDefinition:
    """The same clean-up under `dagster dev`, whose run launcher does not notice dead runs."""

    @dg.sensor(
        name="abandoned_runs_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks failed any run whose process died without reporting (killed, "
        "out of memory), so the automation rebuilds its days instead of waiting for ever.",
    )
    def abandoned_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        failed = fail_abandoned_runs(context.instance)
        for run_id in failed:
            context.log.warning(f"run {run_id}: its process is gone; marked failed")
        return dg.SkipReason(
            f"marked {len(failed)} abandoned runs failed: {failed}" if failed else "none found"
        )

    return abandoned_runs_sensor
