"""What one landing-sensor tick costs on S3 with 100,000 existing keys and 100 new ones.

Runs against moto (in process, no network, no AWS account) and counts the S3 calls and the
keys S3 returned for the ways to find the new objects:
- the cursor listing (`list_new_landing_objects`, StartAfter);
- the landing sensor's time-ordered mode (`plan_time_ordered_tick`, what the AWS sensor runs
  per tick with ANALYTICS_LANDING_KEYS_TIME_ORDERED): the tick that finds the 100, the next
  tick (they are still inside the reorder window, so listed again, not requested), and the
  tick after their runs succeeded and archived them (one range check per run);
- the SQS queue (`receive_landing_arrivals`): the AWS sensor with a queue;
- a full listing of the prefix (`S3LakeStore.list_landing`, like dagster-aws's `get_objects`).

    .venv/bin/python benchmarks/sensor_tick.py [--existing 100000] [--new 100]

Putting 100,000 objects into moto takes about two minutes.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from typing import Any

BUCKET = "bench-landing"
DATASET = "web_requests"


def key(i: int) -> str:
    # Firehose-style, time-ordered: yyyy/mm/dd/HH/<stream>-<n>
    hour, n = divmod(i, 5_000)
    return f"landing/{DATASET}/2024/05/{1 + hour // 24:02d}/{hour % 24:02d}/stream-{n:06d}.gz"


def counted(client: Any, service: str) -> tuple[Counter[str], list[int]]:
    calls: Counter[str] = Counter()
    keys: list[int] = []

    def before(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    def after(parsed: dict[str, Any], **_: Any) -> None:
        keys.append(len(parsed.get("Contents", [])))

    client.meta.events.register(f"before-call.{service}", before)
    client.meta.events.register(f"after-call.{service}.ListObjectsV2", after)
    return calls, keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=100)
    args = parser.parse_args()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import boto3
    from moto import mock_aws

    from analytics_pipeline.resources.arrivals import SUCCEEDED
    from analytics_pipeline.resources.aws.s3_listing import (
        TimeOrderedCursor,
        list_new_landing_objects,
        plan_time_ordered_tick,
    )
    from analytics_pipeline.resources.aws.s3_store import S3LakeStore
    from analytics_pipeline.resources.aws.sqs_notifications import receive_landing_arrivals

    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        started = time.perf_counter()
        for i in range(args.existing):
            s3.put_object(Bucket=BUCKET, Key=key(i), Body=b"x")
        print(f"put {args.existing:,} existing keys in {time.perf_counter() - started:.0f} s")

        # The cursor a previous tick left: the last existing key.
        cursor = key(args.existing - 1).removeprefix(f"landing/{DATASET}/")

        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="bench-landing")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
            },
        )
        for i in range(args.existing, args.existing + args.new):
            s3.put_object(Bucket=BUCKET, Key=key(i), Body=b"x")

        print(f"one tick with {args.existing:,} existing keys and {args.new} new ones:")
        calls, keys = counted(s3, "s3")
        started = time.perf_counter()
        objects, new_cursor = list_new_landing_objects(s3, BUCKET, DATASET, cursor)
        seconds = time.perf_counter() - started
        print(
            f"  cursor listing (StartAfter): {calls['ListObjectsV2']} ListObjectsV2 calls, "
            f"{sum(keys)} keys returned, {len(objects)} new objects, {seconds:.3f} s"
        )
        assert (
            len(objects) == args.new
            and new_cursor == key(args.existing + args.new - 1)[len(f"landing/{DATASET}/") :]
        )

        sqs_calls, _ = counted(sqs, "sqs")
        started = time.perf_counter()
        arrivals = receive_landing_arrivals(sqs, queue_url, max_messages=args.new + 10)
        seconds = time.perf_counter() - started
        found = sum(len(objs) for objs in arrivals.objects.values())
        print(
            f"  SQS queue: {sqs_calls['ReceiveMessage']} ReceiveMessage calls, 0 S3 calls, "
            f"{found} new objects, {seconds:.3f} s"
        )

        store = S3LakeStore(landing_bucket=BUCKET, lake_bucket=BUCKET)
        store_calls, store_keys = counted(store.s3_client(), "s3")
        started = time.perf_counter()
        listed = sum(1 for _ in store.list_landing(DATASET))
        seconds = time.perf_counter() - started
        print(
            f"  full listing (list_landing): {store_calls['ListObjectsV2']} ListObjectsV2 calls, "
            f"{sum(store_keys):,} keys returned, {listed:,} objects to compare, {seconds:.3f} s"
        )

        # The time-ordered sensor: its cursor passed the existing keys on earlier ticks.
        run_states: dict[str, str] = {}
        state = TimeOrderedCursor(after=cursor)
        for label in ("finds the new", "next tick", "after the runs"):
            if label == "after the runs":
                for entry in state.pending:  # the runs succeeded and archived their objects
                    run_states[str(entry.run_key)] = SUCCEEDED
                    s3.delete_objects(
                        Bucket=BUCKET,
                        Delete={"Objects": [{"Key": f"landing/{DATASET}/{k}"} for k in entry.keys]},
                    )
            calls, keys = counted(s3, "s3")
            started = time.perf_counter()
            now = time.time()
            plan = plan_time_ordered_tick(
                s3,
                BUCKET,
                DATASET,
                state,
                now=now,
                settle_seconds=0.0,
                reorder_seconds=300.0,
                batch_files=2000,
                run_states=lambda run_keys: {k: run_states[k] for k in run_keys if k in run_states},
            )
            for n, batch in enumerate(plan.batches):
                plan.add_requested(f"run-{label}-{n}", batch, now)
            seconds = time.perf_counter() - started
            state = plan.cursor
            requested = sum(len(b) for b in plan.batches)
            print(
                f"  time-ordered sensor tick, {label}: {calls['ListObjectsV2']} ListObjectsV2 "
                f"calls, {sum(keys)} keys returned, {requested} objects requested, {seconds:.3f} s"
            )
            if label == "finds the new":
                assert requested == args.new, requested


if __name__ == "__main__":
    main()
