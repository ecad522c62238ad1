"""Arrivals from S3 event notifications read from SQS: a tick costs what arrived, not the bucket.

A message is deleted only once the run that handles it exists: the tick that receives it
keeps its receipt handle in the cursor by MessageId, under the tick's run keys. Until the
runs exist, each tick extends the messages' visibility to the queue's timeout; one back
anyway gets its new handle recorded and is not requested again. After RETRY_AFTER_SECONDS
with no run, the messages are let come back and handled again (staging is idempotent).

One queue serves every dataset's sensor: a message naming another dataset is sent to the
queue again as a new message and deleted, so that dataset's sensor receives it (a message
received by the wrong sensors a few times this way never nears the dead-letter queue).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
from botocore.config import Config
from pydantic import PrivateAttr

from analytics_pipeline.resources.arrivals import (
    RETRY_AFTER_SECONDS,
    ArrivalTick,
    LandingArrivals,
    RunLookup,
    TickLimits,
    landing_batches,
)
from analytics_pipeline.resources.aws.sqs_notifications import (
    delete_arrivals,
    extend_arrivals,
    forward_arrivals,
    queue_visibility_timeout,
    receive_landing_arrivals,
)

# The queue's visibility timeout by queue URL, and when it was read: resources are built
# afresh for every tick, and the timeout is read at most every RETRY_AFTER_SECONDS.
_visibility: dict[str, tuple[float, int]] = {}
_visibility_lock = threading.Lock()


class SqsArrivals(LandingArrivals):
    """S3 ObjectCreated notifications for landing/, from the queue Terraform wires to the
    landing bucket."""

    queue_url: str
    datasets: list[str]  # each has a sensor; a notification for any other is dropped
    region_name: str | None = None
    max_messages: int = 100  # received per tick
    # Messages held in flight for runs not yet there; past it a tick receives none, so a
    # daemon that stops creating runs leaves the rest in the queue (not received, not
    # counted towards the dead-letter queue) and a tick's visibility calls stay bounded.
    max_pending: int = 500

    _client: Any = PrivateAttr(default=None)

    def sqs_client(self) -> Any:
        if self._client is None:
            self._client = boto3.session.Session().client(
                "sqs",
                region_name=self.region_name,
                config=Config(retries={"mode": "adaptive", "max_attempts": 10}),
            )
        return self._client

    def poll(
        self,
        dataset: str,
        cursor: str | None,
        runs: RunLookup,
        *,
        now: float,
        limits: TickLimits,
    ) -> ArrivalTick:
        client = self.sqs_client()
        warnings: list[str] = []
        pending = self._delete_handled(client, queue_cursor_from_json(cursor), runs, now, warnings)
        waiting = {message_id for entry in pending for message_id in entry["messages"]}

        arrivals = receive_landing_arrivals(
            client,
            self.queue_url,
            max_messages=max(0, min(self.max_messages, self.max_pending - len(waiting))),
            pending=waiting,
        )
        if arrivals.returned:
            warnings.append(
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
            seconds = self._visibility_seconds(client, now)
            for failure in extend_arrivals(client, self.queue_url, in_flight, seconds):
                warnings.append(f"could not keep an SQS message in flight: {failure}")
        warnings += [
            f"ignored a message that is not an S3 notification: {m}" for m in arrivals.poison
        ]

        known = set(self.datasets)
        for name in sorted(set().union(*arrivals.datasets.values()) - known):
            warnings.append(f"notification for unknown dataset {name!r}: ignored")
        others = [i for i, named in arrivals.datasets.items() if named & known - {dataset}]
        self._forward(client, others, arrivals.bodies, arrivals.handles, warnings)
        # A message naming this dataset and another (S3 sends one record a message, so a
        # hand-made one) is forwarded whole, and its objects here are requested here too:
        # its copy only runs idempotent staging again.
        ours = {i: h for i, h in arrivals.handles.items() if i not in set(others)}
        batches = landing_batches(
            arrivals.objects.get(dataset, []), limits.batch_files, limits.batch_bytes
        )
        if not batches and ours:
            # Nothing to run (test events, ignored keys): done with these messages.
            delete_arrivals(client, self.queue_url, list(ours.values()))

        def next_cursor(run_keys: list[str]) -> str:
            if run_keys:
                # A tick's messages are deleted only once every run it requested exists:
                # the daemon may stop part way through submitting a tick's requests.
                pending.append({"at": now, "runs": run_keys, "messages": ours})
            return json.dumps(pending)

        return ArrivalTick(
            batches, next_cursor, f"no new S3 notifications for landing/{dataset}/", warnings
        )

    def _delete_handled(
        self,
        client: Any,
        entries: list[dict[str, Any]],
        runs: RunLookup,
        now: float,
        warnings: list[str],
    ) -> list[dict[str, Any]]:
        """Deletes the messages whose runs all exist; the entries still waiting for runs."""
        pending = []
        for entry in entries:
            if all(runs.exists(key) for key in entry["runs"]):
                by_handle = {handle: id_ for id_, handle in entry["messages"].items()}
                failures = delete_arrivals(client, self.queue_url, list(by_handle))
                warnings += [f"could not delete an SQS message: {f}" for f in failures]
                # Refused ones are tried again next tick (with a newer handle if they came back).
                entry["messages"] = {
                    by_handle[f.receipt_handle]: f.receipt_handle for f in failures
                }
            if not entry["messages"]:
                continue
            if now - entry["at"] <= RETRY_AFTER_SECONDS:
                pending.append(entry)
            else:
                warnings.append(
                    f"no run after {RETRY_AFTER_SECONDS} s for {len(entry['messages'])} SQS "
                    "messages: they come back after the visibility timeout, to be handled again"
                )
        return pending

    def _forward(
        self,
        client: Any,
        message_ids: list[str],
        bodies: dict[str, str],
        handles: dict[str, str],
        warnings: list[str],
    ) -> None:
        """Hands other datasets' messages on: deleted once their copy is in the queue."""
        if not message_ids:
            return
        # Sent after this tick's receives: the tick never receives its own copies.
        sent = forward_arrivals(client, self.queue_url, [bodies[i] for i in message_ids])
        if len(sent) < len(message_ids):
            warnings.append(
                f"could not forward {len(message_ids) - len(sent)} SQS messages for other "
                "datasets: they come back after the visibility timeout"
            )
        for failure in delete_arrivals(
            client, self.queue_url, [handles[message_ids[i]] for i in sent]
        ):
            # Both the copy and the original will be handled: staging is idempotent.
            warnings.append(f"could not delete a forwarded SQS message: {failure}")

    def _visibility_seconds(self, client: Any, now: float) -> int:
        with _visibility_lock:
            read_at, seconds = _visibility.get(self.queue_url, (-RETRY_AFTER_SECONDS, 0))
            if now - read_at >= RETRY_AFTER_SECONDS:
                seconds = queue_visibility_timeout(client, self.queue_url)
                _visibility[self.queue_url] = (now, seconds)
            return seconds


def queue_cursor_from_json(text: str | None) -> list[dict[str, Any]]:
    """The queue cursor: per tick that requested runs, {"at", "runs", "messages":
    {MessageId: receipt handle}}. Entries written before MessageIds were kept hold a
    "handles" list; each handle stands in for its message's id. A listing cursor (a dict),
    left by the same sensor before the queue was switched on, starts the queue afresh."""
    entries = json.loads(text) if text else []
    if not isinstance(entries, list):
        return []
    for entry in entries:
        if "messages" not in entry:
            entry["messages"] = {handle: handle for handle in entry.pop("handles", [])}
    return entries
