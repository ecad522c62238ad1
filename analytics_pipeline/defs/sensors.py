"""Landing sensors: every arrival in landing/<dataset>/ becomes an ingest run, with no click.

The cursor remembers which landing files (by key, size and mtime) already have a run
requested, so a tick requests each arrival once. A file still in landing long after its
run was requested (the run failed or was lost) is requested again; staging is idempotent.

On AWS, a dataset named in ANALYTICS_LANDING_KEYS_TIME_ORDERED has the same sensor in its
time-ordered mode: it lists from a StartAfter cursor instead of the whole prefix
(`arrivals.plan_time_ordered_tick`), so a tick costs the same however many objects the
landing bucket holds.
"""

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.defs.ingest import IngestConfig
from analytics_pipeline.defs.keys import stage_op_name
from analytics_pipeline.resources.arrivals import (
    FAILED,
    IN_PROGRESS,
    RETRY_AFTER_SECONDS,
    SUCCEEDED,
    TimeOrderedCursor,
    landing_batches,
    listing_cursor_from_json,
    listing_cursor_json,
    plan_time_ordered_tick,
)
from analytics_pipeline.resources.store import LakeStore, LandingObject
from analytics_pipeline.settings import Settings

__all__ = ["RETRY_AFTER_SECONDS", "build_landing_sensor", "build_queue_sensor"]


@dataclass(frozen=True)
class LandingPlan:
    batches: list[list[LandingObject]]
    cursor: dict[str, float]  # signature -> when its run was requested
    waiting: int  # files too young to read yet


def plan_landing_runs(
    objects: Iterable[LandingObject],
    cursor: dict[str, float],
    *,
    now: float,
    settle_seconds: float,
    batch_files: int,
    batch_bytes: int = 1 << 62,
    retry_after: float = RETRY_AFTER_SECONDS,
) -> LandingPlan:
    """Which files need a run now, in batches of at most batch_files, and the next cursor."""
    next_cursor: dict[str, float] = {}
    due: list[LandingObject] = []
    waiting = 0
    for obj in objects:
        requested_at = cursor.get(obj.signature)
        if requested_at is not None and now - requested_at < retry_after:
            next_cursor[obj.signature] = requested_at
        elif now - obj.modified < settle_seconds:
            waiting += 1
        else:
            due.append(obj)
    due.sort(key=lambda o: (o.modified, o.key))
    batches = landing_batches(due, batch_files, batch_bytes)
    for obj in due:
        next_cursor[obj.signature] = now
    return LandingPlan(batches, next_cursor, waiting)


def ingest_run_config(dataset: str, keys: list[str]) -> dict[str, Any]:
    """An ingest run's config: its keys as one JSON string (see IngestConfig)."""
    return {"ops": {stage_op_name(dataset): {"config": {"keys_json": json.dumps(keys)}}}}


def run_config_keys(dataset: str, run_config: Mapping[str, Any]) -> list[str]:
    """The landing keys an ingest run's config names, as its op reads them."""
    return IngestConfig(**run_config["ops"][stage_op_name(dataset)]["config"]).landing_keys()


def ingest_run_request(
    spec: DatasetSpec, batch: list[LandingObject], now: float, job_name: str | None = None
) -> dg.RunRequest:
    # The run key carries content identity (size, mtime) and the request time, so a
    # re-delivered file or a retry is never skipped as an already-completed run.
    signatures = "\n".join(sorted(o.signature for o in batch)) + f"\n{now}"
    return dg.RunRequest(
        run_key=f"{spec.name}-{hashlib.sha256(signatures.encode()).hexdigest()[:24]}",
        run_config=ingest_run_config(spec.name, [o.key for o in batch]),
        tags={"dataset": spec.name, "landing_files": str(len(batch))},
        job_name=job_name,
    )


def build_landing_sensor(
    spec: DatasetSpec, job: dg.JobDefinition, settings: Settings
) -> dg.SensorDefinition:
    if settings.keys_time_ordered(spec.name):
        return build_time_ordered_landing_sensor(spec, job, settings)

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts {job.name} for files arriving in landing/{spec.name}/.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, store: LakeStore):
        now = time.time()
        plan = plan_landing_runs(
            store.list_landing(spec.name),
            listing_cursor_from_json(context.cursor),
            now=now,
            settle_seconds=settings.landing_settle_seconds,
            batch_files=settings.ingest_batch_files,
            batch_bytes=settings.ingest_batch_bytes,
        )
        context.update_cursor(listing_cursor_json(plan.cursor))
        if not plan.batches:
            return dg.SkipReason(
                f"nothing new in landing/{spec.name}/"
                + (f" ({plan.waiting} files settling)" if plan.waiting else "")
            )
        return [ingest_run_request(spec, batch, now) for batch in plan.batches]

    return landing_sensor


def build_time_ordered_landing_sensor(
    spec: DatasetSpec, job: dg.JobDefinition, settings: Settings
) -> dg.SensorDefinition:
    """The landing sensor over time-ordered keys on S3: lists from a StartAfter cursor kept
    ANALYTICS_LANDING_REORDER_SECONDS behind the newest key, tracks its runs, and requests
    again what a finished or lost run left in landing (see plan_time_ordered_tick)."""

    @dg.sensor(
        name=f"{spec.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts {job.name} for objects arriving in landing/{spec.name}/, "
        "listed from a cursor (keys are time-ordered).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, store: LakeStore):
        if not hasattr(store, "s3_client"):
            raise TypeError("the time-ordered landing sensor needs the S3 store")
        now = time.time()
        plan = plan_time_ordered_tick(
            store.s3_client(),
            store.landing_bucket,  # type: ignore[attr-defined]
            spec.name,
            TimeOrderedCursor.from_json(context.cursor),
            now=now,
            settle_seconds=settings.landing_settle_seconds,
            reorder_seconds=settings.landing_reorder_seconds,
            batch_files=settings.ingest_batch_files,
            batch_bytes=settings.ingest_batch_bytes,
            run_states=lambda keys: run_states(context.instance, keys),
        )
        requests = [ingest_run_request(spec, batch, now) for batch in plan.batches]
        for request, batch in zip(requests, plan.batches, strict=True):
            plan.add_requested(str(request.run_key), batch, now)
        context.update_cursor(plan.cursor.to_json())
        if plan.retried or plan.late:
            context.log.warning(
                f"landing/{spec.name}/: requested again {plan.retried} objects that a finished "
                f"or lost run left in landing, and {plan.late} that arrived behind the cursor"
            )
        if not requests:
            return dg.SkipReason(
                f"nothing new in landing/{spec.name}/ after {plan.cursor.after or 'the start'}"
                + (f" ({plan.waiting} files settling)" if plan.waiting else "")
            )
        return requests

    return landing_sensor


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


QUEUE_MAX_MESSAGES = 100  # received per tick
# Messages held in flight for runs not yet there; past it a tick receives none, so a daemon
# that stops creating runs leaves the rest in the queue (not received, not counted towards
# the dead-letter queue) and each tick's visibility calls stay bounded (10 a call).
QUEUE_MAX_PENDING = 500


def build_queue_sensor(
    specs: list[DatasetSpec], jobs: dict[str, dg.JobDefinition], settings: Settings
) -> dg.SensorDefinition:
    """AWS with a queue: S3 event notifications from SQS become ingest runs.

    A message is deleted only once the run that handles it exists: the tick that receives it
    keeps its receipt handle in the cursor by MessageId, under the tick's run keys. Until
    the runs exist, each tick extends the messages' visibility to the queue's timeout; one
    back anyway gets its new handle recorded and is not requested again. After
    RETRY_AFTER_SECONDS with no run, the sensor lets the messages come back and handles them
    again (staging is idempotent).
    """
    from analytics_pipeline.resources.aws.sqs_arrivals import (
        delete_arrivals,
        extend_arrivals,
        queue_visibility_timeout,
        receive_landing_arrivals,
    )

    assert settings.aws is not None and settings.aws.landing_queue_url
    queue_url = settings.aws.landing_queue_url
    by_name = {spec.name: spec for spec in specs}
    visibility: dict[str, float] = {}  # the queue's timeout, read at most every RETRY_AFTER

    def visibility_seconds(client: Any, now: float) -> int:
        if now - visibility.get("read_at", -RETRY_AFTER_SECONDS) >= RETRY_AFTER_SECONDS:
            visibility.update(read_at=now, seconds=queue_visibility_timeout(client, queue_url))
        return int(visibility["seconds"])

    @dg.sensor(
        name="landing_queue_sensor",
        jobs=list(jobs.values()),
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Starts ingest runs for S3 ObjectCreated notifications read from SQS.",
    )
    def landing_queue_sensor(context: dg.SensorEvaluationContext, store: LakeStore):
        client = store.sqs_client()  # type: ignore[attr-defined]
        now = time.time()
        pending = []
        for entry in queue_cursor_from_json(context.cursor):
            if all(_run_exists(context.instance, key) for key in entry["runs"]):
                by_handle = {handle: id_ for id_, handle in entry["messages"].items()}
                failures = delete_arrivals(client, queue_url, list(by_handle))
                for failure in failures:
                    context.log.warning(f"could not delete an SQS message: {failure}")
                # Refused ones are tried again next tick (with a newer handle if they came back).
                entry["messages"] = {
                    by_handle[f.receipt_handle]: f.receipt_handle for f in failures
                }
            if not entry["messages"]:
                continue
            if now - entry["at"] <= RETRY_AFTER_SECONDS:
                pending.append(entry)
            else:
                context.log.warning(
                    f"no run after {RETRY_AFTER_SECONDS} s for {len(entry['messages'])} SQS "
                    "messages: they come back after the visibility timeout, to be handled again"
                )
        waiting = {message_id for entry in pending for message_id in entry["messages"]}

        arrivals = receive_landing_arrivals(
            client,
            queue_url,
            max_messages=max(0, min(QUEUE_MAX_MESSAGES, QUEUE_MAX_PENDING - len(waiting))),
            pending=waiting,
        )
        if arrivals.returned:
            context.log.warning(
                f"{len(arrivals.returned)} SQS messages came back before their runs existed: "
                "the queue's visibility timeout is shorter than the time between two ticks"
            )
        for entry in pending:
            for message_id in entry["messages"].keys() & arrivals.returned.keys():
                entry["messages"][message_id] = arrivals.returned[message_id]
        # The rest are kept in flight: each receive counts towards maxReceiveCount.
        in_flight = [
            handle
            for entry in pending
            for message_id, handle in entry["messages"].items()
            if message_id not in arrivals.returned
        ]
        if in_flight:
            seconds = visibility_seconds(client, now)
            for failure in extend_arrivals(client, queue_url, in_flight, seconds):
                context.log.warning(f"could not keep an SQS message in flight: {failure}")

        for message in arrivals.poison:
            context.log.warning(f"ignored a message that is not an S3 notification: {message}")
        requests = []
        for dataset, objects in sorted(arrivals.objects.items()):
            spec = by_name.get(dataset)
            if spec is None:
                context.log.warning(f"notification for unknown dataset {dataset!r}: ignored")
                continue
            for batch in landing_batches(
                objects, settings.ingest_batch_files, settings.ingest_batch_bytes
            ):
                requests.append(ingest_run_request(spec, batch, now, jobs[dataset].name))
        if requests:
            # A tick's messages are deleted only once every run it requested exists: the
            # daemon may stop part way through submitting a tick's requests.
            pending.append(
                {"at": now, "runs": [r.run_key for r in requests], "messages": arrivals.handles}
            )
        elif arrivals.handles:
            # Nothing to run (test events, unknown datasets): done with these messages.
            delete_arrivals(client, queue_url, arrivals.receipt_handles)
        context.update_cursor(json.dumps(pending))
        return requests or dg.SkipReason("no new S3 notifications")

    return landing_queue_sensor


def queue_cursor_from_json(text: str | None) -> list[dict[str, Any]]:
    """The queue sensor's cursor: per tick that requested runs, {"at", "runs", "messages":
    {MessageId: receipt handle}}. Entries written before MessageIds were kept hold a
    "handles" list; each handle stands in for its message's id."""
    entries: list[dict[str, Any]] = json.loads(text) if text else []
    for entry in entries:
        if "messages" not in entry:
            entry["messages"] = {handle: handle for handle in entry.pop("handles", [])}
    return entries


def _run_exists(instance: dg.DagsterInstance, run_key: str) -> bool:
    return bool(instance.get_run_ids(dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1))
