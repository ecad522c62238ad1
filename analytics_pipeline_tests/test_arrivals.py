"""Arrival detection on AWS under moto: S3 notifications through SQS, and cursor listings."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

from analytics_pipeline.resources.aws.s3_listing import list_new_landing_objects
from analytics_pipeline.resources.aws.sqs_notifications import (
    MalformedNotification,
    delete_arrivals,
    extend_arrivals,
    parse_s3_event_notification,
    queue_visibility_timeout,
    receive_landing_arrivals,
)

BUCKET = "analytics-landing"


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def sqs(aws: None) -> Any:
    return boto3.client("sqs")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    return sqs.create_queue(QueueName="landing", Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]


@pytest.fixture
def notifying_bucket(s3: Any, sqs: Any, queue_url: str) -> Any:
    """The landing bucket sending ObjectCreated notifications to the queue, as Terraform sets
    it up; S3 sends an s3:TestEvent when the configuration is saved."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "landing/"}]}},
                }
            ]
        },
    )
    return s3


def s3_event(key: str, *, event: str = "ObjectCreated:Put", sequencer: str = "0A") -> str:
    """A notification body in S3's own format (keys URL-encoded, '+' for a space)."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "eventTime": "2024-05-01T10:00:00.000Z",
                    "eventName": event,
                    "s3": {
                        "bucket": {"name": BUCKET},
                        "object": {"key": key, "size": 2, "eTag": "e", "sequencer": sequencer},
                    },
                }
            ]
        }
    )


def queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


# parsing


def test_a_notification_key_is_url_decoded_with_plus_for_space():
    [ref] = parse_s3_event_notification(s3_event("landing/products/a+b%2Bc%C3%BC%2F.json"))

    assert ref.key == "landing/products/a b+cü/.json"
    assert (ref.bucket, ref.size, ref.event_name) == (BUCKET, 2, "ObjectCreated:Put")


def test_the_s3_test_event_names_no_object():
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET})

    assert parse_s3_event_notification(body) == []


def test_a_notification_wrapped_by_sns_is_unwrapped():
    body = json.dumps({"Type": "Notification", "Message": s3_event("landing/products/1.json")})

    [ref] = parse_s3_event_notification(body)

    assert ref.key == "landing/products/1.json"


def test_events_other_than_object_created_name_no_object():
    assert (
        parse_s3_event_notification(s3_event("landing/p/1.json", event="ObjectRemoved:Delete"))
        == []
    )


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", json.dumps({"hello": "world"}), json.dumps({"Records": [{"s3": {}}]})],
)
def test_a_malformed_message_raises_a_clear_error(body: str):
    with pytest.raises(MalformedNotification):
        parse_s3_event_notification(body)


# the queue


def test_objects_put_into_the_bucket_arrive_by_dataset_with_relative_decoded_keys(
    notifying_bucket: Any, sqs: Any, queue_url: str
):
    for key in ("landing/products/2024/05/01/a b.json", "landing/products/ü.json"):
        notifying_bucket.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    notifying_bucket.put_object(Bucket=BUCKET, Key="landing/iot_sensor_data/x.ndjson", Body=b"{}")

    batch = receive_landing_arrivals(sqs, queue_url)

    assert {name: sorted(o.key for o in objs) for name, objs in batch.objects.items()} == {
        "iot_sensor_data": ["x.ndjson"],
        "products": ["2024/05/01/a b.json", "ü.json"],
    }
    assert batch.objects["products"][0].size == 2
    assert len(batch.receipt_handles) == 4  # the three objects and S3's test event
    assert batch.poison == []


def test_more_messages_than_one_receive_are_read_in_rounds_of_ten_up_to_the_limit(
    sqs: Any, queue_url: str
):
    for i in range(25):
        sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event(f"landing/products/{i}.json"))
    calls: Counter[str] = Counter()
    sqs.meta.events.register("before-call.sqs", lambda model, **_: calls.update([model.name]))

    batch = receive_landing_arrivals(sqs, queue_url, max_messages=23)

    assert len(batch.objects["products"]) == len(batch.receipt_handles) == 23
    assert calls["ReceiveMessage"] == 3


def test_the_newest_event_for_a_key_wins_and_the_key_is_listed_once(sqs: Any, queue_url: str):
    sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("landing/p/1.json", sequencer="0B"))
    sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("landing/p/1.json", sequencer="0A"))

    batch = receive_landing_arrivals(sqs, queue_url)

    assert [o.key for o in batch.objects["p"]] == ["1.json"]
    assert len(batch.receipt_handles) == 2


def test_poison_messages_are_reported_and_kept_for_the_dead_letter_queue(sqs: Any, queue_url: str):
    sqs.send_message(QueueUrl=queue_url, MessageBody="{oops")
    sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("landing/products/1.json"))

    batch = receive_landing_arrivals(sqs, queue_url)

    [poison] = batch.poison
    assert "not JSON" in str(poison) and "{oops" in str(poison)
    assert len(batch.receipt_handles) == 1
    assert poison.receipt_handle not in batch.receipt_handles


def test_keys_outside_landing_datasets_and_dot_files_are_ignored_but_handled(
    sqs: Any, queue_url: str
):
    for key in ("landing/products/.1.json.part", "landing/products/", "other/x.json", "landing/x"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event(key))

    batch = receive_landing_arrivals(sqs, queue_url)

    assert batch.objects == {}
    assert len(batch.ignored) == len(batch.receipt_handles) == 4


def test_only_the_handles_given_are_deleted_and_the_rest_come_back(sqs: Any, queue_url: str):
    for i in range(12):
        sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event(f"landing/products/{i}.json"))
    batch = receive_landing_arrivals(sqs, queue_url)
    handled = batch.receipt_handles[:11]
    calls: Counter[str] = Counter()
    sqs.meta.events.register("before-call.sqs", lambda model, **_: calls.update([model.name]))

    failures = delete_arrivals(sqs, queue_url, handled + handled[:1])

    assert failures == []
    assert calls["DeleteMessageBatch"] == 2  # 11 distinct handles, 10 per call
    assert queue_depth(sqs, queue_url) == 1


def test_a_message_not_deleted_is_received_again_after_its_visibility_timeout(
    sqs: Any, queue_url: str
):
    sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("landing/products/1.json"))
    first = receive_landing_arrivals(sqs, queue_url)
    assert receive_landing_arrivals(sqs, queue_url).objects == {}  # in flight: invisible

    # The tick that received it died before requesting a run; the timeout runs out.
    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=first.receipt_handles[0], VisibilityTimeout=0
    )

    again = receive_landing_arrivals(sqs, queue_url)
    assert [o.key for o in again.objects["products"]] == ["1.json"]


def test_a_pending_message_received_again_reports_only_its_new_handle(sqs: Any, queue_url: str):
    sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("landing/products/1.json"))
    first = receive_landing_arrivals(sqs, queue_url)
    [(message_id, old_handle)] = first.handles.items()
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=old_handle, VisibilityTimeout=0)

    again = receive_landing_arrivals(sqs, queue_url, pending={message_id})

    assert again.objects == {} and again.handles == {}
    assert list(again.returned) == [message_id]
    assert again.returned[message_id] != old_handle


def test_extended_messages_stay_in_flight_past_their_timeout(sqs: Any, queue_url: str):
    sqs.send_message(QueueUrl=queue_url, MessageBody=s3_event("landing/products/1.json"))
    first = receive_landing_arrivals(sqs, queue_url)
    [handle] = first.receipt_handles
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)

    assert extend_arrivals(sqs, queue_url, [handle], queue_visibility_timeout(sqs, queue_url)) == []

    assert receive_landing_arrivals(sqs, queue_url).objects == {}
    assert queue_depth(sqs, queue_url) == 1


def test_the_queues_visibility_timeout_is_read_from_sqs(sqs: Any, queue_url: str):
    assert queue_visibility_timeout(sqs, queue_url) == 300


def test_a_refused_delete_is_reported(sqs: Any, queue_url: str):
    failures = delete_arrivals(sqs, queue_url, ["not-a-receipt-handle"])

    assert [f.receipt_handle for f in failures] == ["not-a-receipt-handle"]
    assert failures[0].code


# listing after a cursor


def put_keys(s3: Any, keys: list[str]) -> None:
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=f"landing/web_requests/{key}", Body=b"x")


def hour_keys(start: int, count: int) -> list[str]:
    """Firehose-style time-ordered keys."""
    return [f"2024/05/01/{(start + i) // 1000:02d}/stream-{start + i:06d}.gz" for i in range(count)]


def test_a_listing_from_no_cursor_reads_all_keys_and_returns_the_last_as_cursor(s3: Any):
    put_keys(s3, hour_keys(0, 3))

    objects, cursor = list_new_landing_objects(s3, BUCKET, "web_requests", None)

    assert [o.key for o in objects] == hour_keys(0, 3)
    assert cursor == hour_keys(0, 3)[-1]


def test_a_listing_after_the_cursor_returns_only_newer_keys(s3: Any):
    put_keys(s3, hour_keys(0, 5))
    _, cursor = list_new_landing_objects(s3, BUCKET, "web_requests", None)
    put_keys(s3, hour_keys(5, 2))

    objects, new_cursor = list_new_landing_objects(s3, BUCKET, "web_requests", cursor)

    assert [o.key for o in objects] == hour_keys(5, 2)
    assert new_cursor == hour_keys(5, 2)[-1]
    assert list_new_landing_objects(s3, BUCKET, "web_requests", new_cursor) == ([], new_cursor)


def test_a_listing_reads_at_most_max_keys_and_resumes_from_there(s3: Any):
    put_keys(s3, hour_keys(0, 7))

    first, cursor = list_new_landing_objects(s3, BUCKET, "web_requests", None, max_keys=4)
    rest, _ = list_new_landing_objects(s3, BUCKET, "web_requests", cursor, max_keys=4)

    assert [o.key for o in first + rest] == hour_keys(0, 7)
    assert len(first) == 4


def tick_cost(s3: Any, cursor: str | None) -> tuple[int, int, int]:
    """(ListObjectsV2 calls, keys S3 returned, new objects) of one cursor tick."""
    calls: list[int] = []

    def count(parsed: dict[str, Any], **_: Any) -> None:
        calls.append(len(parsed.get("Contents", [])))

    s3.meta.events.register("after-call.s3.ListObjectsV2", count)
    objects, _ = list_new_landing_objects(s3, BUCKET, "web_requests", cursor)
    s3.meta.events.unregister("after-call.s3.ListObjectsV2", count)
    return len(calls), sum(calls), len(objects)


def test_a_tick_costs_the_same_however_many_keys_precede_the_cursor(s3: Any):
    # 1,210 existing keys here (moto puts ~1 ms each); benchmarks/sensor_tick.py runs 100,000.
    put_keys(s3, hour_keys(0, 10))
    _, small_cursor = list_new_landing_objects(s3, BUCKET, "web_requests", None)
    put_keys(s3, hour_keys(10, 100))
    small = tick_cost(s3, small_cursor)

    put_keys(s3, hour_keys(110, 1_000))
    _, big_cursor = list_new_landing_objects(s3, BUCKET, "web_requests", None, max_keys=10_000)
    put_keys(s3, hour_keys(1_110, 100))
    big = tick_cost(s3, big_cursor)

    assert small == big == (1, 100, 100)
