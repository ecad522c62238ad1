"""Runs whose process died (SIGKILL, OOM, a closed laptop) are marked failed, and no
concurrency slot outlives its run.

Dagster records a run as STARTED until its process reports the end, so a run killed mid-way
stays "in progress" for ever, and the automation (which never rebuilds a day while a run
for it is in progress) would never rebuild its days. The local run launcher has no health
check for this (run monitoring checks workers only for the Kubernetes/Docker/ECS launchers:
dagster-io/dagster#5432, #6632), so `make process` and a sensor look for such runs: a run
whose process no longer exists is reported failed, with the reason.

A killed run also keeps the pool slots it claimed (one per table, limit 1): the next run
that writes the table would wait for ever. Marking a run failed frees its slots at once, and
slots held by any other finished run are freed too.

A run is judged only where its pid means what it meant: it names its pid's boot and pid
namespace (run_owner), on any storage. A run that names another (an ECS task, another
container sharing the PostgreSQL instance) is left to its launcher's run monitoring. A run
that names none (killed before it could) is judged by the pids its engine events logged,
and only on a SQLite instance, which lives on this machine.
"""

import dagster as dg

# The one private dagster import of the project, kept to this module: dagster exports no
# public way to ask which run storage an instance uses.
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

from analytics_pipeline.run_owner import (
    OWNER_PID_TAG,
    OWNER_START_TAG,
    PID_SPACE_TAG,
    alive,
    names_own_owner,
    pid_space,
)

UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
# A run created but not yet started is only ours to judge if it names its owner: otherwise it
# may be the daemon's, about to be launched.
NOT_STARTED = dg.DagsterRunStatus.NOT_STARTED


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose process is gone, freeing its slots; their ids."""
    failed = []
    here = pid_space()
    on_this_machine = isinstance(instance.run_storage, SqliteRunStorage)
    for run in instance.get_runs(dg.RunsFilter(statuses=[*UNFINISHED, NOT_STARTED])):
        owned = names_own_owner(instance, run)
        if run.status == NOT_STARTED and not owned:
            continue
        if not _pid_means_here(run, here, on_this_machine):
            continue  # a process of another machine or container: not ours to judge
        reason = _why_dead(instance, run, owned)
        if reason:
            instance.report_run_failed(
                run,
                f"{reason}: it was killed before the run could finish; marked failed so "
                "its partitions are rebuilt and its pool slots freed",
            )
            failed.append(run.run_id)
    free_slots_of_finished_runs(instance)
    return failed


def free_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[str]:
    """Free the concurrency slots still claimed by runs that have ended (or are gone): what
    the daemon's run monitoring does after free_slots_after_run_end_seconds, done now."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    freed = []
    for run_id in sorted(storage.get_concurrency_run_ids()):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def _pid_means_here(run: dg.DagsterRun, here: str | None, on_this_machine: bool) -> bool:
    """Whether the run's pids name processes here: it says where they live, or (saying
    nothing) its instance is a SQLite file on this machine."""
    space = run.tags.get(PID_SPACE_TAG)
    return space == here if space is not None else on_this_machine


def _why_dead(instance: dg.DagsterInstance, run: dg.DagsterRun, owned: bool) -> str | None:
    """Why the run's process is known to be gone, or None if it may be alive. `owned`: its
    owner tags are its own (not copied from the run it re-executes)."""
    owner = run.tags.get(OWNER_PID_TAG) if owned else None
    if owner and owner.isdigit():
        if not alive(int(owner), same_start=run.tags.get(OWNER_START_TAG)):
            return f"the process that ran it (pid {owner}) no longer exists"
        return None
    logged = _logged_pids(instance, run.run_id)
    if logged and not any(alive(pid, started_by=at) for pid, at in logged.items()):
        pids = ", ".join(map(str, sorted(logged)))
        return f"the process of this run (pid {pids}) no longer exists"
    return None


def _logged_pids(instance: dg.DagsterInstance, run_id: str) -> dict[int, float]:
    """The process ids the run's engine events recorded ("... in process (pid: N)"), with
    when each was first logged: that process had started by then."""
    pids: dict[int, float] = {}
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event else None
        value = data.metadata.get("pid") if data and data.metadata else None
        raw = getattr(value, "value", value)
        if isinstance(raw, int | str) and str(raw).isdigit():
            pids.setdefault(int(raw), entry.timestamp)
    return pids


def build_abandoned_runs_sensor() -> dg.SensorDefinition:
    """The same clean-up under `dagster dev`, whose run launcher does not notice dead runs."""

    @dg.sensor(
        name="abandoned_runs_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks failed any run whose process died without reporting (killed, "
        "out of memory), and frees its pool slots, so the automation rebuilds its days "
        "instead of waiting for ever.",
    )
    def abandoned_runs_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        failed = fail_abandoned_runs(context.instance)
        for run_id in failed:
            context.log.warning(f"run {run_id}: its process is gone; marked failed")
        return dg.SkipReason(
            f"marked {len(failed)} abandoned runs failed: {failed}" if failed else "none found"
        )

    return abandoned_runs_sensor
