"""Days older than what they are built from, and the runs that rebuild them.

The automation reacts to events: a day is rebuilt when the automation sees its parent
updated, and a parent update seen in the same tick as the day's own update counts as
handled. Under load a tick can span a rebuild and a late file for the same day, and the
late file is then never served. Here the rule is by order instead: a day whose latest
materialization is older than the latest of a parent day is stale. `make process` checks
for it whenever the automation asks for nothing more; `stale_days_sensor` does the same
under `dagster dev`, leaving alone the days a run is already rebuilding. Each check starts
where the last one stopped (`stale_check`), so a tick reads what changed, not the history.
"""

from collections.abc import Mapping
from datetime import date, timedelta

import dagster as dg

from analytics_pipeline.defs.ranges import DAYS_PER_RUN
from analytics_pipeline.defs.stale_check import AssetGraphLike, StaleCheck, check_stale

# A run: (first day, last day), or None for unpartitioned assets, and the assets it builds.
Run = tuple[tuple[str, str] | None, list[dg.AssetKey]]
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Runs that will still write what they selected: queued, launching or running.
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# The sensor's rebuild of one stale state is tried this many times: a killed run is retried,
# a day whose build keeps failing is left to a person (the failed runs say why).
STALE_KEY_TAG = "analytics_pipeline/stale_key"
STALE_ATTEMPTS = 3
ENDED_UNBUILT = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def stale_runs(
    graph: AssetGraphLike,
    instance: dg.DagsterInstance,
    skip: Mapping[dg.AssetKey, set[str]] | None = None,
    check: StaleCheck | None = None,
) -> list[Run]:
    """Runs rebuilding the stale days `check` found (by default, a check of every day),
    except the days `skip` names (a run is building them, or failed on them just now)."""
    check = check or check_stale(graph, instance)
    skip = skip or {}
    by_days: dict[frozenset[str | None], list[dg.AssetKey]] = {}
    for key, days in check.stale.items():
        wanted = set(days) - skip.get(key, set())
        if wanted:
            by_days.setdefault(frozenset(wanted), []).append(key)
    return as_runs(by_days)


def days_in_progress(instance: dg.DagsterInstance) -> dict[dg.AssetKey, set[str]]:
    """The days each asset is being built for by a queued or running run: a run's parent
    step can finish before its own, and the day looks stale until then."""
    building: dict[dg.AssetKey, set[str]] = {}
    for run in instance.get_runs(dg.RunsFilter(statuses=IN_PROGRESS)):
        days = run_days(run.tags)
        for key in run.asset_selection or []:
            building.setdefault(key, set()).update(days)
    return building


def run_days(tags: Mapping[str, str]) -> set[str]:
    """The days a run's tags name: one partition, or a range of days."""
    if "dagster/partition" in tags:
        return {tags["dagster/partition"]}
    if RANGE_START_TAG not in tags or RANGE_END_TAG not in tags:
        return set()
    return range_days((tags[RANGE_START_TAG], tags[RANGE_END_TAG]))


def range_days(day_range: tuple[str, str] | None) -> set[str]:
    """Every day from the first to the last; none for an unpartitioned run."""
    if day_range is None:
        return set()
    first, last = map(date.fromisoformat, day_range)
    return {(first + timedelta(n)).isoformat() for n in range((last - first).days + 1)}


def as_runs(by_days: dict[frozenset[str | None], list[dg.AssetKey]]) -> list[Run]:
    """Assets wanted for the same days share a run, and each run takes a contiguous range of
    at most DAYS_PER_RUN days (the assets' backfill policy), as the daemon groups them."""
    runs: list[Run] = []
    for days, asset_keys in by_days.items():
        if None in days:
            runs.append((None, asset_keys))
        days_only = sorted(d for d in days if d is not None)
        runs += [(day_range, asset_keys) for day_range in day_ranges(days_only, DAYS_PER_RUN)]
    return sorted(runs, key=lambda run: run[0] or ("", ""))


def day_ranges(days: list[str], max_days: int) -> list[tuple[str, str]]:
    """Sorted days as (first, last) runs of consecutive dates, each at most max_days long."""
    runs: list[list[date]] = []
    for day in map(date.fromisoformat, days):
        if runs and day == runs[-1][-1] + timedelta(1) and len(runs[-1]) < max_days:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [(run[0].isoformat(), run[-1].isoformat()) for run in runs]


def run_target(day_range: tuple[str, str] | None) -> tuple[str | None, dict[str, str]]:
    """The partition key, or the range tags, of a run over these days."""
    if day_range is None:
        return None, {}
    if day_range[0] == day_range[1]:
        return day_range[0], {}
    return None, {RANGE_START_TAG: day_range[0], RANGE_END_TAG: day_range[1]}


def build_stale_days_sensor() -> dg.SensorDefinition:
    @dg.sensor(
        name="stale_days_sensor",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Safety net for the automation: rebuilds any day whose latest build is "
        "older than the latest update of a day it is built from (a late file that arrived "
        "in the same automation tick as a rebuild of its day).",
    )
    def stale_days_sensor(context: dg.SensorEvaluationContext):
        graph = context.repository_def.asset_graph  # type: ignore[union-attr]
        # From where the last tick stopped: only parent days updated since are compared.
        check = check_stale(graph, context.instance, StaleCheck.from_json(context.cursor))
        context.update_cursor(check.to_json())
        requests = []
        building = days_in_progress(context.instance)
        for day_range, asset_keys in stale_runs(graph, context.instance, building, check):
            partition_key, tags = run_target(day_range)
            # The same stale state is requested once: the key names the newest parent event.
            days = range_days(day_range)
            newest = max(
                (sid for key in asset_keys for day, sid in check.stale[key].items() if day in days),
                default=0,
            )
            names = ",".join(k.to_user_string() for k in asset_keys)
            stale_key = f"stale:{day_range}:{names}:{newest}"
            # A rebuild that failed (or was killed, then marked failed) would be skipped for
            # ever under its run key: each failure earns a new attempt, up to a few.
            failed = context.instance.get_run_ids(
                dg.RunsFilter(tags={STALE_KEY_TAG: stale_key}, statuses=ENDED_UNBUILT)
            )
            if len(failed) >= STALE_ATTEMPTS:
                context.log.warning(f"{stale_key}: {len(failed)} rebuilds failed; not retried")
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{stale_key}:attempt{len(failed) + 1}",
                    asset_selection=asset_keys,
                    partition_key=partition_key,
                    tags={**tags, "triggered_by": "stale_days_sensor", STALE_KEY_TAG: stale_key},
                )
            )
        return requests or dg.SkipReason("no day is older than what it is built from")

    return stale_days_sensor
