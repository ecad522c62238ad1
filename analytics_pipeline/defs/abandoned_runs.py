"""Runs whose process died (SIGKILL, OOM, a closed laptop) are marked failed, and no
concurrency slot outlives its run.

Dagster records a run as STARTED until its process reports the end, so a run killed mid-way
stays "in progress" for ever, and the automation (which never rebuilds a day while a run
for it is in progress) would never rebuild its days. The local run launcher has no health
check for this, so `make process` looks for such runs first: a run whose process no longer
exists on this machine is reported failed, with the reason.

A killed run also keeps the pool slots it claimed (one per table, limit 1): the next run
that writes the table would wait for ever. Marking a run failed frees its slots at once, and
slots held by any other finished run are freed too.

Only for a SQLite instance (a DAGSTER_HOME on this machine): with a shared database, a run
could be alive on another host under a process id that means nothing here.
"""

import os
from pathlib import Path

import dagster as dg

# The one private dagster import of the project, kept to this module: run monitoring (which
# fails runs whose worker died) has no health check for the default local run launcher, only
# for the Kubernetes/Docker/ECS launchers (dagster-io/dagster#5432, #6632), so this module
# judges liveness itself, and only where a pid means something: a SQLite run storage on this
# machine. dagster exports no public way to ask which run storage an instance uses.
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

UNFINISHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
# A run created but not yet started is only ours to judge if it names its owner: otherwise it
# may be the daemon's, about to be launched.
NOT_STARTED = dg.DagsterRunStatus.NOT_STARTED
# Runs `make process` executes name the process that runs them (its pid and its start time,
# in clock ticks after boot): a run killed before it logged its pid is still told dead, and a
# reused pid is not mistaken for it.
OWNER_PID_TAG = "analytics_pipeline/owner_pid"
OWNER_START_TAG = "analytics_pipeline/owner_start_ticks"
# /proc's boot time has whole seconds: a process that logged a run's pid started at most
# this long "after" the log line, as /proc tells it.
START_SLACK_SECONDS = 2.0


def owner_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes in-process."""
    pid = os.getpid()
    ticks = _start_ticks(pid)
    return {OWNER_PID_TAG: str(pid)} | ({OWNER_START_TAG: str(ticks)} if ticks else {})


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run whose process is gone, freeing its slots; their ids."""
    failed = []
    if isinstance(instance.run_storage, SqliteRunStorage):
        for run in instance.get_runs(dg.RunsFilter(statuses=[*UNFINISHED, NOT_STARTED])):
            if run.status == NOT_STARTED and OWNER_PID_TAG not in run.tags:
                continue
            reason = _why_dead(instance, run)
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


def _why_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why the run's process is known to be gone, or None if it may be alive."""
    owner = run.tags.get(OWNER_PID_TAG)
    if owner and owner.isdigit():
        if not _alive(int(owner), same_start=run.tags.get(OWNER_START_TAG)):
            return f"the process that ran it (pid {owner}) no longer exists"
        return None
    logged = _logged_pids(instance, run.run_id)
    if logged and not any(_alive(pid, started_by=at) for pid, at in logged.items()):
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


def _alive(pid: int, same_start: str | None = None, started_by: float | None = None) -> bool:
    """Whether process `pid` exists and is the one meant: the same start ticks, or started by
    `started_by` (epoch seconds). Where /proc is missing (not Linux) the pid is all we know."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    ticks = _start_ticks(pid)
    if ticks is None:
        return True
    if same_start is not None:
        return str(ticks) == same_start
    if started_by is not None:
        boot = _boot_time()
        if boot is not None:
            return boot + ticks / os.sysconf("SC_CLK_TCK") <= started_by + START_SLACK_SECONDS
    return True


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (/proc/<pid>/stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


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
