"""The landing sensors over SQS (the SqsArrivals resource): a message is deleted only once the
run that handles it exists, with its newest receipt handle; while it waits it stays in flight,
so it never reaches the dead-letter queue; a message whose run never appears is handled again;
a message for another dataset is handed on to that dataset's sensor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.sensors import run_config_keys
from analytics_pipeline.resources.arrivals import RETRY_AFTER_SECONDS
from analytics_pipeline.resources.aws.sqs_arrivals import SqsArrivals
from analytics_pipeline.settings import AwsSettings, Settings

VISIBILITY_SECONDS = 30
MAX_RECEIVE_COUNT = 2


@dg.op
def _noop() -> None:
    pass


@dg.job
def _stand_in() -> None:
    _noop()


def _notification(key: str) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2024-03-02T10:00:00.000Z",
                    "s3": {
                        "bucket": {"name": "landing"},
                        "object": {"key": key, "size": 10, "eTag": "e"},
                    },
                }
            ]
        }
    )


@dataclass
class SqsCalls:
    """What the sensor asked of SQS, recorded on its real boto3 client (moto deletes with an
    old receipt handle too; SQS guarantees it only with the newest)."""

    newest: dict[str, str] = field(default_factory=dict)  # MessageId -> newest receipt handle
    received: list[str] = field(default_factory=list)  # MessageIds, once per receive
    deleted: list[str] = field(default_factory=list)  # receipt handles
    extended: list[tuple[str, int]] = field(default_factory=list)  # (handle, seconds)

    def watch(self, client: Any) -> None:
        def received(parsed: dict, **_: Any) -> None:
            for message in parsed.get("Messages", []):
                self.newest[message["MessageId"]] = message["ReceiptHandle"]
                self.received.append(message["MessageId"])

        def deleted(params: dict, **_: Any) -> None:
            self.deleted += [e["ReceiptHandle"] for e in params["Entries"]]

        def extended(params: dict, **_: Any) -> None:
            self.extended += [
                (e["ReceiptHandle"], e["VisibilityTimeout"]) for e in params["Entries"]
            ]

        client.meta.events.register("after-call.sqs.ReceiveMessage", received)
        client.meta.events.register("before-parameter-build.sqs.DeleteMessageBatch", deleted)
        client.meta.events.register(
            "before-parameter-build.sqs.ChangeMessageVisibilityBatch", extended
        )


@dataclass
class Queue:
    sqs: Any  # the test's own client, not recorded
    url: str
    dlq_url: str
    calls: SqsCalls

    def send(self, key: str) -> str:
        return self.sqs.send_message(QueueUrl=self.url, MessageBody=_notification(key))["MessageId"]

    def depth(self, url: str | None = None, *, visible_only: bool = False) -> int:
        names = ["ApproximateNumberOfMessages"]
        if not visible_only:
            names.append("ApproximateNumberOfMessagesNotVisible")
        attributes = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)
        return sum(int(v) for v in attributes["Attributes"].values())

    def time_out_in(self, message_id: str, seconds: int) -> None:
        """As if the message's visibility timeout had run down to `seconds`."""
        self.sqs.change_message_visibility(
            QueueUrl=self.url,
            ReceiptHandle=self.calls.newest[message_id],
            VisibilityTimeout=seconds,
        )


@pytest.fixture
def queue(aws: None, monkeypatch: pytest.MonkeyPatch) -> Queue:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for bucket in ("landing", "lake"):
        s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName="arrivals-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="arrivals",
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_SECONDS),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    calls = SqsCalls()
    sensor_sqs = boto3.client("sqs")
    calls.watch(sensor_sqs)
    monkeypatch.setattr(SqsArrivals, "sqs_client", lambda self: sensor_sqs)
    return Queue(sqs, url, dlq_url, calls)


@pytest.fixture
def tick(queue: Queue, tmp_path: Path) -> Iterator[Callable[[str | None], Any]]:
    """One evaluation of a landing sensor (products' unless named) from a cursor, on a real
    instance; `tick.resources` are the resources it is given."""
    settings = Settings(
        env="aws",
        lake_dir=tmp_path,
        partitions_start=date(2020, 1, 1),
        ingest_batch_files=1,
        max_landing_file_bytes=1 << 20,
        landing_settle_seconds=0,
        aws=AwsSettings("landing", "lake", "s3://results/", "lake_db", "primary", queue.url),
    )
    defs = build_definitions(settings)
    resources = dict(defs.resources or {})
    with dg.instance_for_test() as instance:

        def evaluate(cursor: str | None, dataset: str = "products") -> Any:
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=resources
            )
            return defs.resolve_sensor_def(f"{dataset}_landing_sensor").evaluate_tick(context)

        evaluate.instance = instance  # type: ignore[attr-defined]
        evaluate.resources = resources  # type: ignore[attr-defined]
        yield evaluate


def create_run(tick: Any, run_key: str | None) -> None:
    """Create the run the daemon would for a request."""
    _stand_in.execute_in_process(instance=tick.instance, tags={"dagster/run_key": run_key})


def test_messages_are_deleted_only_after_every_run_of_their_tick_exists(
    queue: Queue, tick: Any
) -> None:
    queue.send("landing/products/1.json")
    queue.send("landing/products/2.json")

    first = tick(None)  # one file a run
    run_keys = [r.run_key for r in first.run_requests or []]
    assert len(run_keys) == 2
    assert queue.depth() == 2

    create_run(tick, run_keys[0])
    second = tick(first.cursor)
    assert queue.depth() == 2, "one run of the tick is still missing"

    create_run(tick, run_keys[1])
    third = tick(second.cursor)
    assert queue.depth() == 0
    assert json.loads(third.cursor or "[]") == []


def test_a_message_back_before_its_run_exists_is_not_run_again_and_is_deleted_with_its_new_handle(
    queue: Queue, tick: Any
) -> None:
    message = queue.send("landing/products/1.json")
    first = tick(None)
    [request] = first.run_requests
    old_handle = queue.calls.newest[message]

    # The next tick comes after the visibility timeout has run out: the message is back.
    queue.time_out_in(message, 0)
    second = tick(first.cursor)
    assert queue.calls.received == [message, message]
    assert second.run_requests == [], "its run is requested already"
    new_handle = queue.calls.newest[message]
    assert new_handle != old_handle

    create_run(tick, request.run_key)
    tick(second.cursor)
    assert queue.calls.deleted == [new_handle]
    assert queue.depth() == 0
    assert queue.depth(queue.dlq_url) == 0


def test_a_message_waiting_for_its_run_is_kept_in_flight_with_its_newest_handle(
    queue: Queue, tick: Any
) -> None:
    message = queue.send("landing/products/1.json")
    first = tick(None)
    [request] = first.run_requests

    queue.time_out_in(message, 1)  # the daemon is slow to create the run
    timed_out_at = time.monotonic() + 1
    second = tick(first.cursor)
    assert queue.calls.extended == [(queue.calls.newest[message], VISIBILITY_SECONDS)]

    time.sleep(max(0.0, timed_out_at - time.monotonic()) + 0.2)  # past the old timeout
    assert queue.depth(visible_only=True) == 0, "still in flight: it was extended"
    assert queue.calls.received == [message]

    create_run(tick, request.run_key)
    tick(second.cursor)
    assert queue.calls.deleted == [queue.calls.newest[message]]
    assert queue.depth() == 0 and queue.depth(queue.dlq_url) == 0


def test_a_message_whose_run_never_appears_is_handled_again(queue: Queue, tick: Any) -> None:
    message = queue.send("landing/products/1.json")
    first = tick(None)
    [lost] = first.run_requests

    cursor = json.loads(first.cursor)
    cursor[0]["at"] -= RETRY_AFTER_SECONDS + 1  # long ago, and still no run
    second = tick(json.dumps(cursor))
    assert queue.calls.extended == [], "given up: left to come back"
    assert json.loads(second.cursor) == []

    queue.time_out_in(message, 0)
    third = tick(second.cursor)
    [again] = third.run_requests
    assert again.run_key != lost.run_key
    assert again.run_config == lost.run_config

    create_run(tick, again.run_key)
    tick(third.cursor)
    assert queue.calls.deleted == [queue.calls.newest[message]]
    assert queue.depth() == 0 and queue.depth(queue.dlq_url) == 0


def test_over_several_visibility_timeouts_a_waiting_message_never_comes_back(
    queue: Queue, tick: Any
) -> None:
    queue.sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"VisibilityTimeout": "2"})
    message = queue.send("landing/products/1.json")
    cursor = tick(None).cursor
    [run_key] = json.loads(cursor)[0]["runs"]

    received_at = time.monotonic()
    while time.monotonic() - received_at < 3 * 2:  # ticks 0.5 s apart, for three timeouts
        time.sleep(0.5)
        result = tick(cursor)
        assert result.run_requests == []
        cursor = result.cursor

    assert queue.calls.received == [message], "never received again"
    create_run(tick, run_key)
    tick(cursor)
    assert queue.calls.deleted == [queue.calls.newest[message]]
    assert queue.depth() == 0 and queue.depth(queue.dlq_url) == 0


def test_past_the_pending_limit_a_tick_receives_nothing_until_runs_appear(
    queue: Queue, tick: Any
) -> None:
    tick.resources["arrivals"] = SqsArrivals(
        queue_url=queue.url, datasets=["products"], max_pending=3
    )
    for i in range(5):
        queue.send(f"landing/products/{i}.json")

    first = tick(None)
    assert len(queue.calls.received) == 3
    second = tick(first.cursor)
    assert second.run_requests == [] and len(queue.calls.received) == 3

    for request in first.run_requests:
        create_run(tick, request.run_key)
    third = tick(second.cursor)
    assert len(queue.calls.deleted) == 3
    assert len(queue.calls.received) == 5
    assert sum(int(r.tags["landing_files"]) for r in third.run_requests) == 2


def test_a_cursor_from_before_message_ids_still_deletes_its_messages(
    queue: Queue, tick: Any
) -> None:
    queue.send("landing/products/1.json")
    first = tick(None)
    [entry] = json.loads(first.cursor)
    old_form = [
        {"at": entry["at"], "runs": entry["runs"], "handles": [*entry["messages"].values()]}
    ]

    create_run(tick, entry["runs"][0])
    assert json.loads(tick(json.dumps(old_form)).cursor) == []
    assert queue.depth() == 0


def test_a_message_for_another_dataset_is_handed_on_to_its_sensor_and_never_dead_letters(
    queue: Queue, tick: Any
) -> None:
    queue.send("landing/web_requests/a.json")
    for _ in range(MAX_RECEIVE_COUNT + 1):  # received by products' sensor again and again
        passed = tick(None)
        assert passed.run_requests == []
        assert json.loads(passed.cursor) == [], "not products': nothing to wait for"
    assert len(queue.calls.received) == MAX_RECEIVE_COUNT + 1
    assert queue.depth() == 1 and queue.depth(queue.dlq_url) == 0

    first = tick(None, "web_requests")
    [request] = first.run_requests
    assert run_config_keys("web_requests", request.run_config) == ["a.json"]
    create_run(tick, request.run_key)
    tick(first.cursor, "web_requests")
    assert queue.depth() == 0 and queue.depth(queue.dlq_url) == 0


def test_a_tick_runs_its_own_dataset_and_hands_on_the_rest(queue: Queue, tick: Any) -> None:
    queue.send("landing/products/1.json")
    queue.send("landing/web_requests/a.json")

    first = tick(None)
    [request] = first.run_requests
    assert run_config_keys("products", request.run_config) == ["1.json"]
    assert queue.depth() == 2, "products' message waits for its run; a copy of the other"

    create_run(tick, request.run_key)
    tick(first.cursor)
    assert queue.depth() == 1
    [other] = tick(None, "web_requests").run_requests
    assert run_config_keys("web_requests", other.run_config) == ["a.json"]


def test_a_listing_cursor_left_before_the_queue_was_switched_on_starts_afresh(
    queue: Queue, tick: Any
) -> None:
    queue.send("landing/products/1.json")
    listing = json.dumps({"requested": {"1700000000.0": ["old.json:10:1.000000"]}})

    first = tick(listing)

    [request] = first.run_requests
    assert [entry["runs"] for entry in json.loads(first.cursor)] == [[request.run_key]]


def test_a_notification_for_an_unknown_dataset_is_deleted_not_handed_on(
    queue: Queue, tick: Any
) -> None:
    queue.send("landing/no_such_dataset/a.json")

    result = tick(None)

    assert result.run_requests == []
    assert json.loads(result.cursor) == []
    assert queue.depth() == 0 and queue.depth(queue.dlq_url) == 0
