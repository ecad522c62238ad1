"""Arrivals on S3 by listing: the whole landing prefix, or, for datasets whose keys are
time-ordered, a StartAfter listing from a cursor, so a tick costs what is new, not the bucket."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import PrivateAttr

from analytics_pipeline.resources.arrivals import (
    IN_PROGRESS,
    RETRY_AFTER_SECONDS,
    SUCCEEDED,
    ArrivalTick,
    LandingArrivals,
    RunLookup,
    TickLimits,
    landing_batches,
    listing_tick,
    requested_by_time,
)
from analytics_pipeline.resources.aws.s3_store import S3LakeStore
from analytics_pipeline.resources.aws.sqs_notifications import S3ObjectRef, landing_object
from analytics_pipeline.resources.store import LandingObject, safe_relative

S3_MAX_KEYS = 1000  # per ListObjectsV2 page


@dataclass(frozen=True)
class ListedKey:
    """One key of a landing listing; `obj` is None for a key never staged (a directory
    marker, a dot-name upload in progress, an unsafe path)."""

    key: str  # relative to landing/<dataset>/
    modified: float
    obj: LandingObject | None


@dataclass(frozen=True)
class LandingPage:
    keys: list[ListedKey]  # in key order
    complete: bool  # the listing reached the end of the prefix (or stop_after)
    calls: int  # ListObjectsV2 calls made
    entries: int  # keys S3 returned


def list_landing_after(
    s3_client: Any,
    bucket: str,
    dataset: str,
    start_after: str | None,
    *,
    max_keys: int = S3_MAX_KEYS,
    stop_after: str | None = None,
) -> LandingPage:
    """Up to max_keys keys of landing/<dataset>/ that sort after start_after, in S3's key
    order, following continuation tokens; stops early past stop_after (both relative)."""
    prefix = f"{safe_relative(f'landing/{dataset}')}/"
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        params["StartAfter"] = prefix + start_after
    keys: list[ListedKey] = []
    calls = entries = 0
    while len(keys) < max_keys:
        response = s3_client.list_objects_v2(
            MaxKeys=min(S3_MAX_KEYS, max_keys - len(keys)), **params
        )
        calls += 1
        contents = response.get("Contents", [])
        entries += len(contents)
        for item in contents:
            relative = item["Key"][len(prefix) :]
            if stop_after is not None and relative > stop_after:
                return LandingPage(keys, True, calls, entries)
            modified = item["LastModified"].timestamp()
            obj = landing_object(
                S3ObjectRef(bucket, item["Key"], int(item["Size"]), item.get("ETag", ""), "", 0.0)
            )
            keys.append(
                ListedKey(
                    relative,
                    modified,
                    None if obj is None else LandingObject(dataset, obj.key, obj.size, modified),
                )
            )
        if not response.get("IsTruncated"):
            return LandingPage(keys, True, calls, entries)
        params.pop("StartAfter", None)
        params["ContinuationToken"] = response["NextContinuationToken"]
    return LandingPage(keys, False, calls, entries)


def list_new_landing_objects(
    s3_client: Any,
    bucket: str,
    dataset: str,
    start_after: str | None,
    max_keys: int = S3_MAX_KEYS,
) -> tuple[list[LandingObject], str | None]:
    """Landing objects whose keys sort after the cursor, at most max_keys, and the new cursor.

    For time-ordered keys only (Firehose's yyyy/mm/dd/HH/ prefixes, or producers that name
    files by time): S3 lists in key order, so a tick reads only what is new and costs the
    same however many older keys the bucket holds. An object written later under a key that
    sorts before the cursor is never seen: use the queue for producers that do that, or the
    landing sensor's time-ordered mode (`plan_time_ordered_tick`), which keeps its cursor a
    reorder window behind and retries what failed.
    The cursor is a key relative to landing/<dataset>/ (None: from the start).
    """
    page = list_landing_after(s3_client, bucket, dataset, start_after, max_keys=max_keys)
    objects = [k.obj for k in page.keys if k.obj is not None]
    # Skipped keys move the cursor too: they will never be staged.
    return objects, page.keys[-1].key if page.keys else start_after


# The time-ordered mode: a StartAfter cursor that never loses a file.

STUCK_RUN_SECONDS = 4 * RETRY_AFTER_SECONDS  # a run "in progress" this long is presumed lost
TICK_MAX_KEYS = 5 * S3_MAX_KEYS  # keys one tick lists after the cursor (5 ListObjectsV2 calls)
VERIFY_MAX_KEYS = 1 << 30  # a finished run's range is listed to its end


@dataclass
class PendingRun:
    """A run requested for some landing objects, kept until its objects have left landing."""

    run_key: str | None  # None: requested by the listing mode, run unknown
    at: float
    signatures: list[str]  # LandingObject.signature of each object, in key order

    @property
    def keys(self) -> list[str]:
        return [signature.rsplit(":", 2)[0] for signature in self.signatures]


@dataclass
class TimeOrderedCursor:
    """`after`: every key up to here is handled (requested, or never staged) and older than
    the reorder window; listings start after it. `resume`: where a listing pass cut short
    by TICK_MAX_KEYS goes on. `pending`: requested runs whose objects may still be in
    landing (the ones the listing has passed too: they are checked by run, not by listing)."""

    after: str | None = None
    resume: str | None = None
    pending: list[PendingRun] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "after": self.after,
                "resume": self.resume,
                "pending": [
                    {"run": p.run_key, "at": p.at, "signatures": p.signatures} for p in self.pending
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> TimeOrderedCursor:
        """Also reads the listing mode's cursor ({signature: requested at}), so switching
        modes neither forgets a requested file nor requests it twice."""
        data = json.loads(text) if text else {}
        if "pending" not in data:
            return cls(
                pending=[
                    PendingRun(None, at, sorted(signatures, key=lambda s: s.rsplit(":", 2)[0]))
                    for at, signatures in sorted(requested_by_time(data).items())
                ]
            )
        return cls(
            after=data.get("after"),
            resume=data.get("resume"),
            pending=[PendingRun(p["run"], p["at"], p["signatures"]) for p in data["pending"]],
        )

    def requested_at(self) -> dict[str, float]:
        """The listing mode's cursor: when each pending object's run was requested."""
        return {s: p.at for p in self.pending for s in p.signatures}


@dataclass
class TimeOrderedPlan:
    batches: list[list[LandingObject]]  # request one run each, then add_requested()
    cursor: TimeOrderedCursor
    waiting: int = 0  # settling, left for a later tick
    retried: int = 0  # objects of finished or lost runs still in landing, requested again
    late: int = 0  # objects found behind the cursor (out of order by more than the window)
    calls: int = 0  # ListObjectsV2 calls this tick
    entries: int = 0  # keys S3 returned this tick

    def add_requested(self, run_key: str, batch: list[LandingObject], now: float) -> None:
        self.cursor.pending.append(PendingRun(run_key, now, [o.signature for o in batch]))


def plan_time_ordered_tick(
    s3_client: Any,
    bucket: str,
    dataset: str,
    cursor: TimeOrderedCursor,
    *,
    now: float,
    settle_seconds: float,
    reorder_seconds: float,
    batch_files: int,
    run_states: Callable[[list[str]], dict[str, str]],  # run key -> SUCCEEDED, FAILED, ...
    batch_bytes: int = 1 << 62,
    retry_after: float = RETRY_AFTER_SECONDS,
    max_keys: int = TICK_MAX_KEYS,
) -> TimeOrderedPlan:
    """One tick of a landing sensor over time-ordered keys, at a cost that does not grow
    with the bucket: a listing from the cursor (plus one short range listing per finished
    run), never the whole prefix.

    Nothing is lost, as long as a key appears at most `reorder_seconds` after a key that
    sorts after it (the cursor passes only keys older than that):
    - a young object (settle_seconds) is left for a later tick, and holds the cursor;
    - the keys between the cursor and the newest are listed again every tick; requested
      ones are known by their signature (key, size, mtime) and not requested twice;
    - a run that succeeded has its key range listed once: whatever of it is still in landing
      (replaced while the run read it, or a late key of that range) is requested again; a
      run that failed, or never started, is treated so after retry_after (as the listing
      mode does), one still in progress after STUCK_RUN_SECONDS too;
    - a listing cut at max_keys goes on from there next tick (`resume`), so a burst larger
      than one tick is read across ticks instead of the same first keys again.
    An object written under a key far behind the cursor outside any requested range, or a
    key re-written after its run archived it, is not seen: use the SQS queue for that.
    """
    plan = TimeOrderedPlan([], TimeOrderedCursor(cursor.after, cursor.resume, []))
    due: dict[str, LandingObject] = {}  # by key

    # 1. Requested runs: keep the ones still running, check the finished ones' ranges.
    states = run_states([p.run_key for p in cursor.pending if p.run_key]) if cursor.pending else {}
    finished: list[PendingRun] = []
    for entry in cursor.pending:
        state = states.get(entry.run_key) if entry.run_key else None
        age = now - entry.at
        if (
            state == SUCCEEDED
            or (state != IN_PROGRESS and age >= retry_after)
            or age >= STUCK_RUN_SECONDS
        ):
            finished.append(entry)
        else:
            plan.cursor.pending.append(entry)
    held = {key for entry in plan.cursor.pending for key in entry.keys}
    ours = {key for entry in finished for key in entry.keys}
    for entry in finished:
        keys = entry.keys
        if not keys:
            continue
        page = list_landing_after(
            s3_client,
            bucket,
            dataset,
            _just_before(min(keys)),
            max_keys=VERIFY_MAX_KEYS,
            stop_after=max(keys),
        )
        plan.calls += page.calls
        plan.entries += page.entries
        recheck = False
        for listed in page.keys:
            obj = listed.obj
            if obj is None or listed.key < min(keys) or listed.key in held or obj.key in due:
                continue
            if listed.key in ours:
                plan.retried += 1
            elif cursor.after is not None and listed.key <= cursor.after:
                plan.late += 1  # behind the cursor, in no run: it arrived too late
            else:
                continue  # ahead of the cursor: the listing below handles it
            if now - obj.modified < settle_seconds:
                recheck = True  # settling: look at this range again next tick
                plan.waiting += 1
            else:
                due[obj.key] = obj
        if recheck:
            plan.cursor.pending.append(entry)
            held.update(keys)

    # 2. New keys: list from the cursor (or where the last cut-short pass stopped).
    start = cursor.resume or cursor.after
    page = list_landing_after(s3_client, bucket, dataset, start, max_keys=max_keys)
    plan.calls += page.calls
    plan.entries += page.entries
    requested = {s for entry in plan.cursor.pending for s in entry.signatures}
    advancing = cursor.resume is None  # the cursor moves only over a pass from itself
    after = cursor.after
    for listed in page.keys:
        obj = listed.obj
        handled = True
        if obj is not None and obj.signature not in requested and obj.key not in due:
            if now - obj.modified < settle_seconds:
                handled = False
                plan.waiting += 1
            else:
                due[obj.key] = obj
        if advancing and handled and now - listed.modified >= reorder_seconds:
            after = listed.key
        else:
            advancing = False
    plan.cursor.after = after
    if page.complete or (advancing and page.keys):
        plan.cursor.resume = None
    else:
        plan.cursor.resume = page.keys[-1].key if page.keys else start

    ordered = [due[key] for key in sorted(due)]
    plan.batches = landing_batches(ordered, batch_files, batch_bytes)
    return plan


def _just_before(key: str) -> str | None:
    """A StartAfter that lists `key` itself (and a few keys before it, filtered out)."""
    return key[:-1] or None


class S3ListingArrivals(LandingArrivals):
    """The landing bucket listed by each dataset's sensor: from a StartAfter cursor for the
    datasets named in time_ordered_datasets, the whole prefix for the rest."""

    landing_bucket: str
    lake_bucket: str
    region_name: str | None = None
    time_ordered_datasets: list[str] = []

    _store: S3LakeStore | None = PrivateAttr(default=None)

    @property
    def store(self) -> S3LakeStore:
        # Built here, not nested as a resource: a nested resource makes every sensor context
        # that is given the code location's resources a context manager.
        if self._store is None:
            self._store = S3LakeStore(
                landing_bucket=self.landing_bucket,
                lake_bucket=self.lake_bucket,
                region_name=self.region_name,
            )
        return self._store

    def poll(
        self,
        dataset: str,
        cursor: str | None,
        runs: RunLookup,
        *,
        now: float,
        limits: TickLimits,
    ) -> ArrivalTick:
        if dataset not in self.time_ordered_datasets:
            return listing_tick(
                self.store.list_landing(dataset), dataset, cursor, now=now, limits=limits
            )
        plan = plan_time_ordered_tick(
            self.store.s3_client(),
            self.store.landing_bucket,
            dataset,
            TimeOrderedCursor.from_json(cursor),
            now=now,
            settle_seconds=limits.settle_seconds,
            reorder_seconds=limits.reorder_seconds,
            batch_files=limits.batch_files,
            batch_bytes=limits.batch_bytes,
            run_states=runs.states,
        )

        def next_cursor(run_keys: list[str]) -> str:
            for run_key, batch in zip(run_keys, plan.batches, strict=True):
                plan.add_requested(run_key, batch, now)
            return plan.cursor.to_json()

        warnings = []
        if plan.retried or plan.late:
            warnings.append(
                f"landing/{dataset}/: requested again {plan.retried} objects that a finished "
                f"or lost run left in landing, and {plan.late} that arrived behind the cursor"
            )
        return ArrivalTick(
            plan.batches,
            next_cursor,
            f"nothing new in landing/{dataset}/ after {plan.cursor.after or 'the start'}"
            + (f" ({plan.waiting} files settling)" if plan.waiting else ""),
            warnings,
        )
