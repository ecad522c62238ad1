"""The landing sensor's time-ordered mode on S3 (moto): a StartAfter cursor that reads only
what is new, and still loses nothing: out-of-order keys, failed and lost runs, objects
replaced while their run read them, listings longer than a tick."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.sensors import run_config_keys, run_states
from analytics_pipeline.resources.arrivals import (
    FAILED,
    IN_PROGRESS,
    RETRY_AFTER_SECONDS,
    SUCCEEDED,
    listing_cursor_from_json,
)
from analytics_pipeline.resources.aws.s3_listing import (
    S3ListingArrivals,
    TimeOrderedCursor,
    TimeOrderedPlan,
    plan_time_ordered_tick,
)
from analytics_pipeline.settings import AwsSettings, Settings
from analytics_pipeline_tests.test_aws_deployment import aws_settings, moto_endpoint  # noqa: F401

BUCKET = "landing"
DATASET = "web_requests"
REORDER = 300.0


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.create_bucket(Bucket="lake")
    return client


def put(s3: Any, *keys: str, body: bytes = b"x") -> None:
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=f"landing/{DATASET}/{key}", Body=body)


def archive(s3: Any, *keys: str) -> None:
    for key in keys:
        s3.delete_object(Bucket=BUCKET, Key=f"landing/{DATASET}/{key}")


class Ticker:
    """Runs ticks as the sensor does: requests each batch under a fresh run key and keeps
    the cursor; `states` plays the Dagster instance's runs."""

    def __init__(self, s3: Any, *, settle: float = 0.0, batch_files: int = 100, **kw: Any):
        self.s3, self.settle, self.batch_files, self.kw = s3, settle, batch_files, kw
        self.cursor = TimeOrderedCursor()
        self.states: dict[str, str] = {}
        self.runs: list[tuple[str, list[str]]] = []
        self.offset = 0.0  # seconds added to the clock

    def tick(self) -> TimeOrderedPlan:
        now = time.time() + self.offset
        plan = plan_time_ordered_tick(
            self.s3,
            BUCKET,
            DATASET,
            self.cursor,
            now=now,
            settle_seconds=self.settle,
            reorder_seconds=REORDER,
            batch_files=self.batch_files,
            run_states=lambda keys: {k: self.states[k] for k in keys if k in self.states},
            **self.kw,
        )
        for batch in plan.batches:
            run_key = f"run-{len(self.runs)}"
            self.runs.append((run_key, [o.key for o in batch]))
            plan.add_requested(run_key, batch, now)
        # Through JSON, as the sensor stores it.
        self.cursor = TimeOrderedCursor.from_json(plan.cursor.to_json())
        return plan

    def requested(self, plan: TimeOrderedPlan) -> list[str]:
        return [o.key for batch in plan.batches for o in batch]

    def finish(self, state: str, archived: bool = True) -> None:
        """Every run so far ends in `state`; a succeeded run archived its objects."""
        for run_key, keys in self.runs:
            if run_key not in self.states:
                self.states[run_key] = state
                if state == SUCCEEDED and archived:
                    archive(self.s3, *keys)


def test_new_keys_are_requested_once_then_the_cursor_passes_them_after_the_window(s3):
    put(s3, "2024/05/01/00/a.gz", "2024/05/01/00/b.gz")
    ticker = Ticker(s3)

    first = ticker.tick()
    assert ticker.requested(first) == ["2024/05/01/00/a.gz", "2024/05/01/00/b.gz"]
    assert ticker.cursor.after is None  # both are younger than the reorder window

    again = ticker.tick()
    assert again.batches == [] and (again.calls, again.entries) == (1, 2)

    ticker.offset = REORDER + 1
    passed = ticker.tick()
    assert passed.batches == []
    assert ticker.cursor.after == "2024/05/01/00/b.gz"
    quiet = ticker.tick()
    assert (quiet.calls, quiet.entries) == (1, 0)


def test_a_key_arriving_out_of_order_within_the_window_is_requested(s3):
    ticker = Ticker(s3)
    put(s3, "2024/05/01/00/b.gz")
    assert ticker.requested(ticker.tick()) == ["2024/05/01/00/b.gz"]

    put(s3, "2024/05/01/00/a.gz")  # sorts before b, arrives after it
    late = ticker.tick()

    assert ticker.requested(late) == ["2024/05/01/00/a.gz"]


def test_young_objects_wait_for_the_settle_time_and_hold_the_cursor(s3):
    put(s3, "2024/05/01/00/a.gz")
    ticker = Ticker(s3, settle=60)

    waiting = ticker.tick()
    assert waiting.batches == [] and waiting.waiting == 1

    ticker.offset = REORDER + 1
    settled = ticker.tick()
    assert ticker.requested(settled) == ["2024/05/01/00/a.gz"]
    assert ticker.cursor.after == "2024/05/01/00/a.gz"


def test_a_failed_run_is_requested_again_after_retry_after_though_the_cursor_passed_it(s3):
    put(s3, "2024/05/01/00/a.gz", "2024/05/01/00/b.gz")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1
    ticker.tick()
    assert ticker.cursor.after == "2024/05/01/00/b.gz"
    ticker.finish(FAILED)

    assert ticker.tick().batches == []  # a failure is retried after retry_after, not at once

    ticker.offset += RETRY_AFTER_SECONDS
    retry = ticker.tick()
    assert ticker.requested(retry) == ["2024/05/01/00/a.gz", "2024/05/01/00/b.gz"]
    assert retry.retried == 2
    assert [p.run_key for p in ticker.cursor.pending] == ["run-1"]


def test_a_run_never_created_is_requested_again_after_retry_after(s3):
    put(s3, "2024/05/01/00/a.gz")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1
    ticker.tick()  # the daemon lost this request: no run ever has its key

    ticker.offset += RETRY_AFTER_SECONDS
    assert ticker.requested(ticker.tick()) == ["2024/05/01/00/a.gz"]


def test_a_run_still_in_progress_is_waited_for(s3):
    put(s3, "2024/05/01/00/a.gz")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1
    ticker.tick()
    ticker.finish(IN_PROGRESS)

    ticker.offset += RETRY_AFTER_SECONDS
    assert ticker.tick().batches == []
    assert [p.run_key for p in ticker.cursor.pending] == ["run-0"]


def test_a_succeeded_run_is_checked_once_and_forgotten(s3):
    put(s3, "2024/05/01/00/a.gz", "2024/05/01/00/b.gz")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1
    ticker.tick()
    ticker.finish(SUCCEEDED)

    done = ticker.tick()

    assert done.batches == [] and ticker.cursor.pending == []
    assert done.calls == 2  # the run's key range, then new keys from the cursor


def test_an_object_replaced_while_its_run_read_it_is_requested_again(s3):
    put(s3, "2024/05/01/00/a.gz", "2024/05/01/00/b.gz")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1
    ticker.tick()
    # The run archived a, but b was replaced after it was read: b stays in landing.
    archive(s3, "2024/05/01/00/a.gz")
    put(s3, "2024/05/01/00/b.gz", body=b"new content")
    ticker.finish(SUCCEEDED, archived=False)

    retry = ticker.tick()

    assert ticker.requested(retry) == ["2024/05/01/00/b.gz"] and retry.retried == 1


def test_a_key_arriving_behind_the_cursor_inside_a_runs_range_is_found(s3):
    put(s3, "2024/05/01/00/a.gz", "2024/05/01/00/c.gz")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1
    ticker.tick()
    assert ticker.cursor.after == "2024/05/01/00/c.gz"
    put(s3, "2024/05/01/00/b.gz")  # far out of order: behind the cursor already
    ticker.finish(SUCCEEDED)

    found = ticker.tick()

    assert ticker.requested(found) == ["2024/05/01/00/b.gz"] and found.late == 1


def test_a_listing_longer_than_a_tick_goes_on_where_it_stopped(s3):
    keys = [f"2024/05/01/00/{i:02d}.gz" for i in range(7)]
    put(s3, *keys)
    ticker = Ticker(s3, max_keys=3)

    ticks = [ticker.requested(ticker.tick()) for _ in range(3)]
    assert ticks == [keys[:3], keys[3:6], keys[6:]]
    assert ticker.cursor.resume is None and ticker.cursor.after is None
    assert ticker.tick().batches == []  # a new pass from the cursor: all requested

    # Once they are old, the cursor moves over them a tick's worth at a time (the pass in
    # progress ends first: the cursor moves only over a pass that started from it).
    ticker.offset = REORDER + 1
    afters = []
    for _ in range(5):
        ticker.tick()
        afters.append(ticker.cursor.after)
    assert afters == [None, None, keys[2], keys[5], keys[6]]


def test_pages_of_a_thousand_keys_are_followed(s3):
    keys = [f"2024/05/01/{i // 1000:02d}/{i:05d}.gz" for i in range(1_050)]
    put(s3, *keys)
    ticker = Ticker(s3, batch_files=2000)

    plan = ticker.tick()

    assert ticker.requested(plan) == keys
    assert (plan.calls, plan.entries) == (2, 1_050)


def test_a_tick_reads_only_keys_after_the_cursor_however_many_precede_it(s3):
    old = [f"2024/05/01/00/{i:05d}.gz" for i in range(1_200)]
    put(s3, *old)
    ticker = Ticker(s3, batch_files=2000)
    ticker.offset = REORDER + 1
    ticker.tick()
    assert ticker.cursor.after == old[-1]  # these stay in the bucket (e.g. not archived)

    put(s3, *[f"2024/05/01/01/{i:05d}.gz" for i in range(100)])
    plan = ticker.tick()

    assert (plan.calls, plan.entries, len(ticker.requested(plan))) == (1, 100, 100)


def test_dot_names_and_directory_markers_are_passed_over_not_requested(s3):
    put(s3, "2024/05/01/00/.a.gz.part", "2024/05/01/00/")
    ticker = Ticker(s3)
    ticker.offset = REORDER + 1

    assert ticker.tick().batches == []
    assert ticker.cursor.after == "2024/05/01/00/.a.gz.part"


def test_the_listing_modes_cursor_is_taken_over_without_requesting_twice(s3):
    put(s3, "2024/05/01/00/a.gz")
    [listed] = s3.list_objects_v2(Bucket=BUCKET, Prefix="landing/")["Contents"]
    signature = f"2024/05/01/00/a.gz:1:{listed['LastModified'].timestamp():.6f}"
    ticker = Ticker(s3)
    ticker.cursor = TimeOrderedCursor.from_json(json.dumps({signature: time.time()}))

    assert ticker.tick().batches == []
    assert ticker.cursor.requested_at().keys() == {signature}


# the sensor, as the daemon evaluates it


def time_ordered_settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(
        env="aws",
        lake_dir=tmp_path,
        partitions_start=date(2020, 1, 1),
        ingest_batch_files=10,
        max_landing_file_bytes=1 << 20,
        landing_settle_seconds=0,
        aws=AwsSettings(BUCKET, "lake", "s3://results/", "lake_db", "primary", None),
        landing_keys_time_ordered=(DATASET,),
        **kw,
    )


@dg.op
def _fails() -> None:
    raise RuntimeError("staging failed")


@dg.job
def _failing() -> None:
    _fails()


def test_the_sensor_requests_new_objects_and_knows_its_failed_runs(s3, tmp_path):
    put(s3, "2024/05/01/00/a.gz", "2024/05/01/00/b.gz")
    defs = build_definitions(time_ordered_settings(tmp_path))
    sensor = defs.resolve_sensor_def(f"{DATASET}_landing_sensor")
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=dict(defs.resources)
            )
            return sensor.evaluate_tick(context)

        first = tick(None)
        [request] = first.run_requests
        assert run_config_keys(DATASET, request.run_config) == [
            "2024/05/01/00/a.gz",
            "2024/05/01/00/b.gz",
        ]
        assert tick(first.cursor).run_requests == []

        _failing.execute_in_process(
            instance=instance, tags={"dagster/run_key": request.run_key}, raise_on_error=False
        )
        assert run_states(instance, [str(request.run_key), "other"]) == {
            str(request.run_key): FAILED
        }
        # Long ago: the retry is due.
        cursor = json.loads(first.cursor)
        cursor["pending"][0]["at"] -= RETRY_AFTER_SECONDS
        retry = tick(json.dumps(cursor))
        assert [run_config_keys(DATASET, r.run_config) for r in retry.run_requests] == [
            ["2024/05/01/00/a.gz", "2024/05/01/00/b.gz"]
        ]


def test_only_the_named_datasets_list_from_a_cursor(s3, tmp_path):
    settings = time_ordered_settings(tmp_path)
    assert settings.keys_time_ordered(DATASET) and not settings.keys_time_ordered("products")
    every = dataclasses.replace(settings, landing_keys_time_ordered=("*",))
    assert every.keys_time_ordered("products")
    queued = dataclasses.replace(
        every, aws=dataclasses.replace(every.aws, landing_queue_url="https://q")
    )
    assert not queued.keys_time_ordered(DATASET)  # the queue sensor replaces listing
    with pytest.raises(ValueError, match="unknown datasets \\['web_request'\\]"):
        build_definitions(dataclasses.replace(settings, landing_keys_time_ordered=("web_request",)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("0", ()),
        ("1", ("*",)),
        ("all", ("*",)),
        (" web_requests, app_events", ("app_events", "web_requests")),
    ],
)
def test_the_switch_is_read_from_the_environment(value, expected):
    environ = {
        "ANALYTICS_PIPELINE_ENV": "aws",
        "ANALYTICS_LANDING_BUCKET": "l",
        "ANALYTICS_LAKE_BUCKET": "k",
        "ANALYTICS_ATHENA_OUTPUT": "s3://r/",
        "ANALYTICS_GLUE_DATABASE": "d",
        "ANALYTICS_ATHENA_WORKGROUP": "w",
        "ANALYTICS_LANDING_KEYS_TIME_ORDERED": value,
        "ANALYTICS_LANDING_REORDER_SECONDS": "60",
    }
    settings = Settings.from_env(environ)
    assert settings.landing_keys_time_ordered == expected
    assert settings.landing_reorder_seconds == 60


def test_the_listing_mode_takes_over_the_time_ordered_cursor(lake_dir, defs, instance, store):
    from analytics_pipeline.resources.aws.s3_listing import PendingRun
    from analytics_pipeline_tests.lake_helpers import drop

    drop(lake_dir, "products", "1.json", "{}")
    [obj] = store.list_landing("products")
    cursor = TimeOrderedCursor("x", None, [PendingRun("run", time.time(), [obj.signature])])
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor.to_json(), definitions=defs, resources=dict(defs.resources)
    )

    result = defs.resolve_sensor_def("products_landing_sensor").evaluate_tick(context)

    assert result.run_requests == []  # already requested by the time-ordered mode
    assert list(listing_cursor_from_json(result.cursor)) == [obj.signature]


def test_the_aws_pipeline_runs_end_to_end_with_time_ordered_keys(aws_settings):  # noqa: F811
    """`make process`'s loop over a moto server, products' sensor in the time-ordered mode."""
    from analytics_pipeline.cli.process import process_landing
    from analytics_pipeline_tests.test_aws_deployment import LAKE, LANDING

    s3 = boto3.client("s3")
    for n, day in enumerate(["2024-03-02", "2024-03-03"]):
        s3.put_object(
            Bucket=LANDING,
            Key=f"landing/products/2024/03/0{2 + n}/10/{n}.json",
            Body=json.dumps({"id": n, "date": day, "product": "A"}).encode(),
        )
    settings = dataclasses.replace(aws_settings, landing_keys_time_ordered=("products",))
    defs = build_definitions(settings)
    arrivals = (defs.resources or {})["arrivals"]
    assert isinstance(arrivals, S3ListingArrivals)
    assert arrivals.time_ordered_datasets == ["products"]
    with dg.instance_for_test() as instance:
        summary = process_landing(defs, instance)

    assert summary.materialized["table/products"] == 2
    assert s3.list_objects_v2(Bucket=LANDING, Prefix="landing/").get("KeyCount") == 0
    archived = s3.list_objects_v2(Bucket=LAKE, Prefix="archive/products/")["Contents"]
    assert len(archived) == 2
