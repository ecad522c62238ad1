"""Which process runs a run, said in the run's tags, and whether that process still lives.

A pid means something only in the pid namespace of the boot it was taken in: a run names
both, so the dead-run check judges a run only where its pid means what it meant, whatever
the instance's storage (SQLite on a laptop, PostgreSQL shared by a daemon and a webserver).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

OWNER_PID_TAG = "analytics_pipeline/owner_pid"
# Its start time in clock ticks after boot: a reused pid is not mistaken for it.
OWNER_START_TAG = "analytics_pipeline/owner_start_ticks"
# The boot and pid namespace the pid belongs to.
PID_SPACE_TAG = "analytics_pipeline/pid_space"
# /proc's boot time has whole seconds: a process that logged a run's pid started at most
# this long "after" the log line, as /proc tells it.
START_SLACK_SECONDS = 2.0


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """Tags naming this process (or `pid`, on this machine) as the one that runs a run."""
    pid = os.getpid() if pid is None else pid
    tags = {OWNER_PID_TAG: str(pid)}
    ticks = start_ticks(pid)
    if ticks is not None:
        tags[OWNER_START_TAG] = str(ticks)
    space = pid_space()
    if space is not None:
        tags[PID_SPACE_TAG] = space
    return tags


def name_run_owner(instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag the run with this process, unless its launcher named its owner already (`make
    process` does): a run the daemon or the webserver launched names its worker this way."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not names_own_owner(instance, run):
        instance.add_run_tags(run_id, owner_tags())


def names_own_owner(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether the run's owner tags name its own process. A re-execution (the daemon's
    retry of a killed run, the UI's re-execute) starts with a copy of its parent's tags,
    which name the parent's process, dead or busy elsewhere, until its worker names itself."""
    if OWNER_PID_TAG not in run.tags:
        return False
    if run.parent_run_id is None:
        return True
    parent = instance.get_run_by_id(run.parent_run_id)
    return parent is not None and any(
        run.tags.get(tag) != parent.tags.get(tag) for tag in (OWNER_PID_TAG, OWNER_START_TAG)
    )


def pid_space() -> str | None:
    """This boot's id and this process's pid namespace: where two processes share both, one's
    pid names the same process for the other. None where /proc does not say (not Linux)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"


def alive(pid: int, same_start: str | None = None, started_by: float | None = None) -> bool:
    """Whether process `pid` runs and is the one meant: the same start ticks, or started by
    `started_by` (epoch seconds). A zombie is dead: a run worker killed under a code server
    stays one until the server reaps it. Without /proc (not Linux) the pid is all we know."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    stat = _stat(pid)
    if stat is None:
        return True
    state, ticks = stat
    if state in ("Z", "X"):
        return False
    if same_start is not None:
        return str(ticks) == same_start
    if started_by is not None:
        boot = _boot_time()
        if boot is not None:
            return boot + ticks / os.sysconf("SC_CLK_TCK") <= started_by + START_SLACK_SECONDS
    return True


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (/proc/<pid>/stat field 22)."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def _stat(pid: int) -> tuple[str, int] | None:
    """The process's state letter and start ticks, from /proc/<pid>/stat (fields 3 and 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None
