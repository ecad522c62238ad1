"""How the AWS deployment notices new landing objects from S3 event notifications read from SQS,
at a cost per tick that does not grow with the bucket. Plain functions over boto3 clients.

The queue pattern (no notification is lost, none is handled twice):
1. `receive_landing_arrivals` receives messages; they stay in flight, not deleted.
2. The sensor returns run requests for the objects and keeps each message's receipt handle
   by MessageId.
3. Until the requested run exists, each tick keeps the messages in flight
   (`extend_arrivals`); a message that comes back anyway is matched by its MessageId, its
   new receipt handle replaces the old (SQS deletes reliably only with the newest) and it
   is not requested again.
4. Once the run exists, a tick deletes the messages (`delete_arrivals`).
If the run never appears, the sensor stops extending after a while: the messages come back
after the queue's visibility timeout and are handled again (staging is idempotent).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from analytics_pipeline.resources.store import LandingObject, UnsafePathError, safe_relative

SQS_MAX_MESSAGES = 10  # per ReceiveMessage and per DeleteMessageBatch


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
    # The newest receipt handle of every message understood (including test events and
    # records that name no landing object), by MessageId; delete them once the runs for
    # `objects` exist.
    handles: dict[str, str] = field(default_factory=dict)
    # Messages received again while still pending (see receive_landing_arrivals): their new
    # receipt handles by MessageId. They are not parsed again: their runs are requested.
    returned: dict[str, str] = field(default_factory=dict)
    poison: list[PoisonMessage] = field(default_factory=list)
    # Records understood but not for a landing object: other events, other buckets, keys
    # outside landing/<dataset>/ or dot-names (in-progress uploads), as "bucket/key: why".
    ignored: list[str] = field(default_factory=list)
    # The datasets each understood message names, and its body: one queue serves every
    # dataset's sensor, which hands on (forward_arrivals) what names another dataset.
    datasets: dict[str, set[str]] = field(default_factory=dict)
    bodies: dict[str, str] = field(default_factory=dict)

    @property
    def receipt_handles(self) -> list[str]:
        return list(self.handles.values())


@dataclass(frozen=True)
class BatchFailure:
    """An entry of a DeleteMessageBatch or ChangeMessageVisibilityBatch that SQS refused."""

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
    pending: Container[str] = frozenset(),
) -> ArrivalBatch:
    """Receive up to max_messages notifications, 10 per ReceiveMessage, until the queue has
    none; nothing is deleted here (see the module docstring).

    wait_seconds long-polls the first receive only; `bucket` ignores other buckets' events;
    a message whose MessageId is in `pending` (received before, its run not yet there) only
    has its new receipt handle reported, in `returned`.
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
            message_id, handle = message["MessageId"], message["ReceiptHandle"]
            if message_id in pending:
                batch.returned[message_id] = handle
                continue
            if message_id in seen:  # a standard queue may deliver twice: keep the newest handle
                if message_id in batch.handles:
                    batch.handles[message_id] = handle
                continue
            seen.add(message_id)
            try:
                refs = parse_s3_event_notification(message.get("Body", ""))
            except MalformedNotification as error:
                batch.poison.append(
                    PoisonMessage(message_id, handle, str(error), message.get("Body", ""))
                )
                continue
            batch.handles[message_id] = handle
            batch.bodies[message_id] = message.get("Body", "")
            named = batch.datasets.setdefault(message_id, set())
            for ref in refs:
                obj = landing_object(ref)
                if bucket is not None and ref.bucket != bucket:
                    batch.ignored.append(f"{ref.bucket}/{ref.key}: another bucket")
                elif obj is None:
                    batch.ignored.append(f"{ref.bucket}/{ref.key}: not a landing object")
                else:
                    named.add(obj.dataset)
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
) -> list[BatchFailure]:
    """Delete handled messages, 10 per DeleteMessageBatch; returns the ones SQS refused.

    Give each message's newest receipt handle: SQS may accept an older one and keep the
    message, which then comes back and, received often enough, ends in the dead-letter queue.
    """
    return _in_batches(sqs_client.delete_message_batch, queue_url, receipt_handles, {})


def extend_arrivals(
    sqs_client: Any, queue_url: str, receipt_handles: list[str], seconds: int
) -> list[BatchFailure]:
    """Keep messages in flight `seconds` more (from now), 10 per ChangeMessageVisibilityBatch:
    a message waiting for its run must not come back (each receive counts towards the
    dead-letter queue's maxReceiveCount). Returns the ones SQS refused (for instance, their
    visibility timeout had run out: they come back and are matched by MessageId)."""
    return _in_batches(
        sqs_client.change_message_visibility_batch,
        queue_url,
        receipt_handles,
        {"VisibilityTimeout": seconds},
    )


def forward_arrivals(sqs_client: Any, queue_url: str, bodies: list[str]) -> list[int]:
    """Send each body to the queue again as a new message, 10 per SendMessageBatch; returns
    the indexes SQS took. A new message starts its receive count afresh: handing a message
    on never pushes it towards the dead-letter queue, as making it visible again would."""
    sent: list[int] = []
    for start in range(0, len(bodies), SQS_MAX_MESSAGES):
        chunk = bodies[start : start + SQS_MAX_MESSAGES]
        response = sqs_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)],
        )
        sent += [start + int(entry["Id"]) for entry in response.get("Successful", [])]
    return sent


def _in_batches(
    call: Callable[..., Any], queue_url: str, receipt_handles: list[str], extra: dict[str, Any]
) -> list[BatchFailure]:
    handles = list(dict.fromkeys(receipt_handles))  # a repeated Id fails the whole batch
    failures: list[BatchFailure] = []
    for start in range(0, len(handles), SQS_MAX_MESSAGES):
        chunk = handles[start : start + SQS_MAX_MESSAGES]
        response = call(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": handle, **extra} for i, handle in enumerate(chunk)
            ],
        )
        failures += [
            BatchFailure(chunk[int(entry["Id"])], entry.get("Code", ""), entry.get("Message", ""))
            for entry in response.get("Failed", [])
        ]
    return failures


def queue_visibility_timeout(sqs_client: Any, queue_url: str) -> int:
    """The queue's own VisibilityTimeout, in seconds: what a received message is given."""
    attributes = sqs_client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    return int(attributes["VisibilityTimeout"])
