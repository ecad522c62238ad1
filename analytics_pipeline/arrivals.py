"""How the AWS deployment notices new landing objects, at a cost per tick that does not grow
with the bucket: S3 event notifications read from SQS, or, without a queue, a listing that
starts after a cursor (for time-ordered keys). Plain functions over boto3 clients.

The queue pattern (no notification is lost):
1. `receive_landing_arrivals` receives messages; they stay invisible, not deleted.
2. The sensor returns run requests for the objects and keeps the batch's receipt handles.
3. Only once the requested run exists does a later tick call `delete_arrivals`.
If the tick fails or its run is never created, the messages become visible again after the
queue's visibility timeout and are handled again (staging is idempotent). So the visibility
timeout must outlast a tick plus the time until the next one (minutes, not seconds).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from analytics_pipeline.resources.store import LandingObject, UnsafePathError, safe_relative

SQS_MAX_MESSAGES = 10  # per ReceiveMessage and per DeleteMessageBatch
S3_MAX_KEYS = 1000  # per ListObjectsV2 page


class MalformedNotification(ValueError):
    """An SQS message body that is not an S3 event notification."""


@dataclass(frozen=True)
class S3ObjectRef:
    """One ObjectCreated record of an S3 event notification, its key decoded."""

    bucket: str
    key: str
    size: int
    etag: str
    event_name: str
    event_time: float
    sequencer: str = ""


@dataclass(frozen=True)
class PoisonMessage:
    """A message that is no S3 notification. It is not deleted: the queue's redrive policy
    moves it to the dead-letter queue after maxReceiveCount receives, for a person to read."""

    message_id: str
    receipt_handle: str
    reason: str
    body: str

    def __str__(self) -> str:
        return f"SQS message {self.message_id}: {self.reason}: {self.body[:200]!r}"


@dataclass
class ArrivalBatch:
    # Landing objects by dataset, keys relative to landing/<dataset>/, one per key (the
    # newest event wins), oldest first.
    objects: dict[str, list[LandingObject]] = field(default_factory=dict)
    # Handles of every message understood (including test events and records that name no
    # landing object); delete them once the runs for `objects` are requested.
    receipt_handles: list[str] = field(default_factory=list)
    poison: list[PoisonMessage] = field(default_factory=list)
    # Records understood but not for a landing object: other events, other buckets, keys
    # outside landing/<dataset>/ or dot-names (in-progress uploads), as "bucket/key: why".
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DeleteFailure:
    receipt_handle: str
    code: str
    message: str


def parse_s3_event_notification(body: str) -> list[S3ObjectRef]:
    """The ObjectCreated objects of an S3 notification, as SQS delivers it directly or
    wrapped by SNS; [] for s3:TestEvent and for other event types. MalformedNotification
    for anything else."""
    try:
        message = json.loads(body)
    except (TypeError, ValueError) as error:
        raise MalformedNotification(f"not JSON: {error}") from None
    if not isinstance(message, dict):
        raise MalformedNotification("not a JSON object")
    if message.get("Type") == "Notification" and isinstance(message.get("Message"), str):
        return parse_s3_event_notification(message["Message"])  # through SNS
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedNotification("no Records list: not an S3 event notification")
    return [ref for ref in (_object_created(record) for record in records) if ref is not None]


def _object_created(record: Any) -> S3ObjectRef | None:
    try:
        event_name = record["eventName"]
        if not isinstance(event_name, str):
            raise TypeError("eventName is not a string")
        if not event_name.startswith("ObjectCreated:"):
            return None
        s3 = record["s3"]
        obj = s3["object"]
        return S3ObjectRef(
            bucket=str(s3["bucket"]["name"]),
            # Keys arrive URL-encoded, with '+' for a space.
            key=unquote_plus(str(obj["key"])),
            size=int(obj.get("size", 0)),
            etag=str(obj.get("eTag", "")),
            event_name=event_name,
            event_time=datetime.fromisoformat(record["eventTime"]).timestamp(),
            sequencer=str(obj.get("sequencer", "")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedNotification(f"an S3 record without {error}") from None


def landing_object(ref: S3ObjectRef) -> LandingObject | None:
    """The landing object a notification names, or None when it names no object we stage."""
    area, _, rest = ref.key.partition("/")
    dataset, _, key = rest.partition("/")
    if area != "landing" or not dataset or not key or key.endswith("/"):
        return None
    if any(part.startswith(".") for part in key.split("/")):
        return None  # a producer's in-progress upload, as for a listing
    try:
        safe_relative(f"landing/{dataset}/{key}")
    except UnsafePathError:
        return None
    return LandingObject(dataset, key, ref.size, ref.event_time)


def receive_landing_arrivals(
    sqs_client: Any,
    queue_url: str,
    *,
    max_messages: int = 100,
    wait_seconds: int = 0,
    bucket: str | None = None,
) -> ArrivalBatch:
    """Receive up to max_messages notifications, 10 per ReceiveMessage, until the queue has
    none; nothing is deleted here (see the module docstring).

    wait_seconds long-polls the first receive only; `bucket` ignores other buckets' events.
    """
    batch = ArrivalBatch()
    latest: dict[tuple[str, str], tuple[tuple[int, str, float], LandingObject]] = {}
    seen: set[str] = set()
    received = 0
    while received < max_messages:
        response = sqs_client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(SQS_MAX_MESSAGES, max_messages - received),
            WaitTimeSeconds=wait_seconds if received == 0 else 0,
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        received += len(messages)
        for message in messages:
            handle = message["ReceiptHandle"]
            if message["MessageId"] in seen:  # a standard queue may deliver twice
                batch.receipt_handles.append(handle)
                continue
            seen.add(message["MessageId"])
            try:
                refs = parse_s3_event_notification(message.get("Body", ""))
            except MalformedNotification as error:
                batch.poison.append(
                    PoisonMessage(message["MessageId"], handle, str(error), message.get("Body", ""))
                )
                continue
            batch.receipt_handles.append(handle)
            for ref in refs:
                obj = landing_object(ref)
                if bucket is not None and ref.bucket != bucket:
                    batch.ignored.append(f"{ref.bucket}/{ref.key}: another bucket")
                elif obj is None:
                    batch.ignored.append(f"{ref.bucket}/{ref.key}: not a landing object")
                else:
                    order = _event_order(ref)
                    known = latest.get((obj.dataset, obj.key))
                    if known is None or order > known[0]:
                        latest[(obj.dataset, obj.key)] = (order, obj)
    by_dataset: dict[str, list[LandingObject]] = defaultdict(list)
    for _, obj in latest.values():
        by_dataset[obj.dataset].append(obj)
    batch.objects = {
        name: sorted(objs, key=lambda o: (o.modified, o.key))
        for name, objs in sorted(by_dataset.items())
    }
    return batch


def _event_order(ref: S3ObjectRef) -> tuple[int, str, float]:
    # S3's documented rule: of two events for one key, the one with the greater sequencer
    # (hex, compared as strings after left-padding to equal length) happened last.
    return (len(ref.sequencer.lstrip("0")), ref.sequencer.lstrip("0"), ref.event_time)


def delete_arrivals(
    sqs_client: Any, queue_url: str, receipt_handles: list[str]
) -> list[DeleteFailure]:
    """Delete handled messages, 10 per DeleteMessageBatch; returns the ones SQS refused (they
    come back after the visibility timeout and are handled again, harmlessly)."""
    handles = list(dict.fromkeys(receipt_handles))  # a repeated Id fails the whole batch
    failures: list[DeleteFailure] = []
    for start in range(0, len(handles), SQS_MAX_MESSAGES):
        chunk = handles[start : start + SQS_MAX_MESSAGES]
        response = sqs_client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(chunk)],
        )
        failures += [
            DeleteFailure(chunk[int(entry["Id"])], entry.get("Code", ""), entry.get("Message", ""))
            for entry in response.get("Failed", [])
        ]
    return failures


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
    sorts before the cursor is never seen: use the queue for producers that do that.
    The cursor is a key relative to landing/<dataset>/ (None: from the start).
    """
    prefix = f"{safe_relative(f'landing/{dataset}')}/"
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        params["StartAfter"] = prefix + start_after
    objects: list[LandingObject] = []
    cursor = start_after
    seen = 0
    while seen < max_keys:
        response = s3_client.list_objects_v2(MaxKeys=min(S3_MAX_KEYS, max_keys - seen), **params)
        for item in response.get("Contents", []):
            seen += 1
            relative = item["Key"][len(prefix) :]
            cursor = relative  # skipped keys are passed too: they will never be staged
            obj = landing_object(
                S3ObjectRef(bucket, item["Key"], int(item["Size"]), item.get("ETag", ""), "", 0.0)
            )
            if obj is not None:
                objects.append(
                    LandingObject(dataset, obj.key, obj.size, item["LastModified"].timestamp())
                )
        if not response.get("IsTruncated"):
            break
        params.pop("StartAfter", None)
        params["ContinuationToken"] = response["NextContinuationToken"]
    return objects, cursor
