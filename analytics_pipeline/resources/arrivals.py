"""Arrival detection, the deployment boundary of the landing sensors: every sensor asks its
`arrivals` resource what arrived, whichever deployment it runs in.

Implementations: `DirectoryArrivals` (resources/local/arrivals.py: lists the landing directory),
`S3ListingArrivals` (resources/aws/s3_listing.py: a StartAfter cursor
where keys are time-ordered) and `SqsArrivals` (resources/aws/sqs_arrivals.py: S3 event
notifications from SQS).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg

from analytics_pipeline.resources.store import LandingObject

RETRY_AFTER_SECONDS = 15 * 60  # a file this long in landing after its run was requested is retried

# What a run key's run did, as the sensor reads it from the Dagster instance.
SUCCEEDED, FAILED, IN_PROGRESS = "succeeded", "failed", "in_progress"


class RunLookup(Protocol):
    """What an arrivals source may ask of the Dagster instance about the runs it requested."""

    def states(self, run_keys: list[str]) -> dict[str, str]:
        """SUCCEEDED, FAILED or IN_PROGRESS by run key; a key with no run yet is absent."""
        ...

    def exists(self, run_key: str) -> bool: ...


@dataclass(frozen=True)
class TickLimits:
    """How a tick batches and waits, from the settings the sensors are built with."""

    settle_seconds: float  # a file younger than this may still be being written
    reorder_seconds: float  # time-ordered keys: how late an earlier-sorting key may appear
    batch_files: int
    batch_bytes: int


@dataclass
class ArrivalTick:
    """What one sensor tick found: one run per batch, then `cursor(run_keys)` (the keys of
    those runs' requests, in batch order) is the cursor to store."""

    batches: list[list[LandingObject]]
    cursor: Callable[[list[str]], str]
    idle_reason: str  # the skip reason when there are no batches
    warnings: list[str] = field(default_factory=list)


class LandingArrivals(dg.ConfigurableResource):
    """Where a landing sensor learns what arrived in landing/<dataset>/."""

    def poll(
        self,
        dataset: str,
        cursor: str | None,
        runs: RunLookup,
        *,
        now: float,
        limits: TickLimits,
    ) -> ArrivalTick:
        raise NotImplementedError


def listing_tick(
    objects: Iterable[LandingObject],
    dataset: str,
    cursor: str | None,
    *,
    now: float,
    limits: TickLimits,
) -> ArrivalTick:
    """A tick over a full listing: the files no run was requested for lately."""
    plan = plan_landing_runs(
        objects,
        listing_cursor_from_json(cursor),
        now=now,
        settle_seconds=limits.settle_seconds,
        batch_files=limits.batch_files,
        batch_bytes=limits.batch_bytes,
    )
    next_cursor = listing_cursor_json(plan.cursor)
    return ArrivalTick(
        plan.batches,
        lambda run_keys: next_cursor,
        f"nothing new in landing/{dataset}/"
        + (f" ({plan.waiting} files settling)" if plan.waiting else ""),
    )


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
    """Which files need a run now, in batches of at most batch_files, and the next cursor.

    A file still in landing retry_after after its run was requested (the run failed or was
    lost) is requested again; staging is idempotent."""
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


def landing_batches(
    objects: list[LandingObject], max_files: int, max_bytes: int
) -> list[list[LandingObject]]:
    """Consecutive runs of objects, each at most max_files and max_bytes (a bigger object
    goes alone): a run's count bounds its config and events, its bytes its duration."""
    batches: list[list[LandingObject]] = []
    batch: list[LandingObject] = []
    size = 0
    for obj in objects:
        if batch and (len(batch) >= max_files or size + obj.size > max_bytes):
            batches.append(batch)
            batch, size = [], 0
        batch.append(obj)
        size += obj.size
    if batch:
        batches.append(batch)
    return batches


def listing_cursor_json(requested: dict[str, float]) -> str:
    """The listing cursor, {signature: when its run was requested}, grouped by time:
    {"requested": {"<time>": [signature, ...]}}. A tick requests its files at one time, and
    a float per signature made JSON for 100,000 waiting files 5 times slower to write and
    read (the daemon stores the cursor with every tick)."""
    by_time = _by_time(requested)
    return json.dumps({"requested": {repr(at): names for at, names in by_time.items()}})


def listing_cursor_from_json(text: str | None) -> dict[str, float]:
    """listing_cursor_json's cursor back; also the ungrouped form written before it, and the
    time-ordered cursor (switching modes must not forget a requested file)."""
    data = json.loads(text) if text else {}
    if "pending" in data:  # the time-ordered cursor: its requested runs' objects
        return {s: p["at"] for p in data["pending"] for s in p["signatures"]}
    return {s: at for at, names in requested_by_time(data).items() for s in names}


def requested_by_time(data: Any) -> dict[float, list[str]]:
    """A listing cursor's signatures by request time, in either form; none from the queue's
    cursor (a list), left by the same sensor before the queue was switched off: the files
    still in landing are requested again, which staging absorbs."""
    if not isinstance(data, dict):
        return {}
    if "requested" in data:  # a signature always holds ':', so never this key
        return {float(at): names for at, names in data["requested"].items()}
    return _by_time({signature: float(at) for signature, at in data.items()})


def _by_time(requested: dict[str, float]) -> dict[float, list[str]]:
    by_time: dict[float, list[str]] = defaultdict(list)
    for signature, at in requested.items():
        by_time[at].append(signature)
    return by_time
