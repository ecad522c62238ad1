"""Landing sensors: every arrival in landing/<dataset>/ becomes an ingest run, with no click.

One sensor per dataset in every deployment; what arrived comes from the `arrivals`
resource (a listing of the lake directory or the bucket, or S3 notifications from SQS), and
so does the sensor's cursor.
"""

import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.defs.ingest import IngestConfig
from analytics_pipeline.defs.keys import stage_op_name
from analytics_pipeline.gc_pauses import cycle_collection_paused
from analytics_pipeline.resources.arrivals import (
    FAILED,
    IN_PROGRESS,
    SUCCEEDED,
    LandingArrivals,
    TickLimits,
)
from analytics_pipeline.resources.store import LandingObject
from analytics_pipeline.settings import Settings

# `make process` evaluates the sensors carrying this tag, as the daemon would.
ROLE_TAG = "analytics_pipeline/role"
LANDING_ROLE = "landing"
# The daemon evaluates sensors in a loop that starts every 5 s (Dagster's own pace), so an
# interval of 5 looks on most loops and skips one that comes round a little early (ticks 5-11 s
# apart, measured). Below 5, every loop looks: ~1 s less of a drop's wait, for ~2-3% more of
# a core while idle (four sensors' ticks; benchmarks/dev_latency.py), so it stays at 5.
LANDING_SENSOR_SECONDS = 5


def ingest_run_config(dataset: str, keys: list[str]) -> dict[str, Any]:
    """An ingest run's config: its keys as one JSON string (see IngestConfig)."""
    return {"ops": {stage_op_name(dataset): {"config": {"keys_json": json.dumps(keys)}}}}


def run_config_keys(dataset: str, run_config: Mapping[str, Any]) -> list[str]:
    """The landing keys an ingest run's config names, as its op reads them."""
    return IngestConfig(**run_config["ops"][stage_op_name(dataset)]["config"]).landing_keys()


def ingest_run_request(spec: DatasetSpec, batch: list[LandingObject], now: float) -> dg.RunRequest:
    # The run key carries content identity (size, mtime) and the request time, so a
    # re-delivered file or a retry is never skipped as an already-completed run.
    signatures = "\n".join(sorted(o.signature for o in batch)) + f"\n{now}"
    return dg.RunRequest(
        run_key=f"{spec.name}-{hashlib.sha256(signatures.encode()).hexdigest()[:24]}",
        run_config=ingest_run_config(spec.name, [o.key for o in batch]),
        tags={"dataset": spec.name, "landing_files": str(len(batch))},
    )


def tick_limits(settings: Settings) -> TickLimits:
    return TickLimits(
        settle_seconds=settings.landing_settle_seconds,
        reorder_seconds=settings.landing_reorder_seconds,
        batch_files=settings.ingest_batch_files,
        batch_bytes=settings.ingest_batch_bytes,
    )


def build_landing_sensor(
    spec: DatasetSpec, job: dg.JobDefinition, settings: Settings
) -> dg.SensorDefinition:
    limits = tick_limits(settings)

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=LANDING_SENSOR_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts {job.name} for files arriving in landing/{spec.name}/.",
        tags={ROLE_TAG: LANDING_ROLE},
    )
    def landing_sensor(context: dg.SensorEvaluationContext, arrivals: LandingArrivals):
        now = time.time()
        with cycle_collection_paused():  # an object a listed file, acyclic (gc_pauses)
            tick = arrivals.poll(
                spec.name, context.cursor, InstanceRuns(context.instance), now=now, limits=limits
            )
            for warning in tick.warnings:
                context.log.warning(warning)
            requests = [ingest_run_request(spec, batch, now) for batch in tick.batches]
            context.update_cursor(tick.cursor([str(r.run_key) for r in requests]))
            idle_reason = tick.idle_reason
            del tick  # its listing, freed while nothing would walk it
        return requests or dg.SkipReason(idle_reason)

    return landing_sensor


def is_landing_sensor(sensor: dg.SensorDefinition) -> bool:
    return sensor.tags.get(ROLE_TAG) == LANDING_ROLE


class InstanceRuns:
    """The runs the landing sensors requested, as the Dagster instance knows them."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance

    def states(self, run_keys: list[str]) -> dict[str, str]:
        return run_states(self.instance, run_keys)

    def exists(self, run_key: str) -> bool:
        runs = dg.RunsFilter(tags={"dagster/run_key": run_key})
        return bool(self.instance.get_run_ids(runs, limit=1))


def run_states(instance: dg.DagsterInstance, run_keys: list[str]) -> dict[str, str]:
    """What each run key's run did: SUCCEEDED, FAILED (or canceled) or IN_PROGRESS; a key
    with no run yet is absent."""
    if not run_keys:
        return {}
    states: dict[str, str] = {}
    for run in instance.get_runs(dg.RunsFilter(tags={"dagster/run_key": run_keys})):
        key = run.tags.get("dagster/run_key")
        if key is None:
            continue
        if run.status == dg.DagsterRunStatus.SUCCESS:
            state = SUCCEEDED
        elif run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            state = FAILED
        else:
            state = IN_PROGRESS
        # A key with several runs: any one succeeding or still going decides.
        if states.get(key) in (None, FAILED):
            states[key] = state
    return states
