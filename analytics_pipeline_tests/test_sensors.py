"""The landing sensors: each arrival is requested once, in batches, and retried if it lingers.

Shaped like Dagster's project_fully_featured sensor tests: one scenario per test, asserting
both the run requests and the new cursor. `plan_landing_runs` is tested as a pure function;
the real sensor is evaluated with `build_sensor_context` against files in a tmp lake.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.keys import stage_op_name
from analytics_pipeline.defs.sensors import ingest_run_config, is_landing_sensor, run_config_keys
from analytics_pipeline.resources.arrivals import (
    RETRY_AFTER_SECONDS,
    landing_batches,
    listing_cursor_from_json,
    plan_landing_runs,
)
from analytics_pipeline.resources.store import LandingObject
from analytics_pipeline.settings import Settings
from analytics_pipeline_tests.lake_helpers import drop

NOW = 1_700_000_000.0
SENSOR = "products_landing_sensor"


def landed(key: str, *, size: int = 10, age: float = 60.0) -> LandingObject:
    return LandingObject("products", key, size, NOW - age)


def plan(objects, cursor=None, *, settle_seconds=0.0, batch_files=100, now=NOW):
    return plan_landing_runs(
        objects, cursor or {}, now=now, settle_seconds=settle_seconds, batch_files=batch_files
    )


# plan_landing_runs: the pure decision


def test_nothing_new() -> None:
    result = plan([])
    assert result.batches == []
    assert result.cursor == {}
    assert result.waiting == 0


def test_new_files_requested_once() -> None:
    files = [landed("a.json"), landed("b.json")]
    first = plan(files)
    assert [[o.key for o in batch] for batch in first.batches] == [["a.json", "b.json"]]
    assert first.cursor == {o.signature: NOW for o in files}

    second = plan(files, first.cursor, now=NOW + 10)
    assert second.batches == []
    assert second.cursor == first.cursor


def test_new_files_are_batched_by_batch_files_oldest_first() -> None:
    files = [landed(f"{i}.json", age=100 - i) for i in range(5)]
    result = plan(reversed(files), batch_files=2)
    assert [[o.key for o in batch] for batch in result.batches] == [
        ["0.json", "1.json"],
        ["2.json", "3.json"],
        ["4.json"],
    ]
    assert set(result.cursor) == {o.signature for o in files}


def test_young_files_wait_for_the_settle_time() -> None:
    young, settled = landed("young.json", age=2), landed("settled.json", age=30)
    result = plan([young, settled], settle_seconds=5)
    assert [[o.key for o in batch] for batch in result.batches] == [["settled.json"]]
    assert result.waiting == 1
    # Not in the cursor, so the next tick after it settles requests it.
    assert young.signature not in result.cursor
    later = plan([young, settled], result.cursor, settle_seconds=5, now=NOW + 10)
    assert [[o.key for o in batch] for batch in later.batches] == [["young.json"]]


def test_cursor_drops_files_that_left_landing() -> None:
    archived, still_there = landed("archived.json"), landed("still.json")
    cursor = {archived.signature: NOW - 5, still_there.signature: NOW - 5}
    result = plan([still_there], cursor)
    assert result.batches == []
    assert result.cursor == {still_there.signature: NOW - 5}


def test_file_still_in_landing_after_retry_after_is_requested_again() -> None:
    stuck = landed("stuck.json", age=RETRY_AFTER_SECONDS + 100)
    cursor = {stuck.signature: NOW - RETRY_AFTER_SECONDS - 1}
    result = plan([stuck], cursor)
    assert [[o.key for o in batch] for batch in result.batches] == [["stuck.json"]]
    assert result.cursor == {stuck.signature: NOW}


def test_file_within_retry_after_is_not_requested_again() -> None:
    pending = landed("pending.json")
    cursor = {pending.signature: NOW - RETRY_AFTER_SECONDS + 1}
    assert plan([pending], cursor).batches == []


def test_redelivered_file_with_new_size_or_mtime_is_requested_again() -> None:
    original = landed("a.json", size=10, age=600)
    cursor = plan([original]).cursor
    for redelivered in (
        dataclasses.replace(original, size=11),
        dataclasses.replace(original, modified=original.modified + 300),
    ):
        result = plan([redelivered], cursor, now=NOW + 1)
        assert [[o.key for o in batch] for batch in result.batches] == [["a.json"]]
        assert result.cursor == {redelivered.signature: NOW + 1}


# the real sensor, evaluated as the daemon would


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None = None):
    sensor = defs.resolve_sensor_def(SENSOR)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=dict(defs.resources)
    )
    return sensor.evaluate_tick(context)


def landing_keys(request: dg.RunRequest) -> list[str]:
    return run_config_keys("products", request.run_config)


def set_mtime(path: Path, seconds_ago: float) -> None:
    stamp = path.stat().st_mtime - seconds_ago
    os.utime(path, (stamp, stamp))


@pytest.fixture
def batching_defs(settings: Settings) -> dg.Definitions:
    return build_definitions(dataclasses.replace(settings, ingest_batch_files=2))


def test_sensor_with_empty_landing_skips(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    result = tick(defs, instance)
    assert result.run_requests == []
    assert "nothing new in landing/products/" in result.skip_message
    assert listing_cursor_from_json(result.cursor) == {}


def test_sensor_requests_new_files_with_their_keys_as_run_config(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", "{}")
    drop(lake_dir, "products", "nested/2.json", "{}")
    result = tick(defs, instance)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert set(request.run_config["ops"]) == {stage_op_name("products")}
    assert sorted(landing_keys(request)) == ["1.json", "nested/2.json"]
    assert request.tags["dataset"] == "products"
    assert request.job_name in (None, "ingest_products")


def test_sensor_cursor_records_requested_files_so_next_tick_requests_nothing(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", "{}")
    drop(lake_dir, "products", "2.json", "{}")
    first = tick(defs, instance)
    cursor = listing_cursor_from_json(first.cursor)
    assert sorted(signature.split(":")[0] for signature in cursor) == ["1.json", "2.json"]

    second = tick(defs, instance, first.cursor)
    assert second.run_requests == []
    assert listing_cursor_from_json(second.cursor) == cursor


def test_sensor_batches_by_ingest_batch_files_with_unique_run_keys(
    lake_dir: Path, batching_defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    for i in range(5):
        drop(lake_dir, "products", f"{i}.json", "{}")
    result = tick(batching_defs, instance)
    assert [len(landing_keys(r)) for r in result.run_requests] == [2, 2, 1]
    keys = [key for r in result.run_requests for key in landing_keys(r)]
    assert sorted(keys) == [f"{i}.json" for i in range(5)]
    run_keys = [r.run_key for r in result.run_requests]
    assert len(set(run_keys)) == 3
    assert all(k.startswith("products-") for k in run_keys)


def test_sensor_batches_by_ingest_batch_bytes_too(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(dataclasses.replace(settings, ingest_batch_bytes=250))
    for i in range(5):
        drop(lake_dir, "products", f"{i}.json", "{}" + " " * 98)  # 100 bytes each
    result = tick(defs, instance)
    assert [len(landing_keys(r)) for r in result.run_requests] == [2, 2, 1]


def test_sensor_forgets_files_that_were_archived(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    path = drop(lake_dir, "products", "1.json", "{}")
    first = tick(defs, instance)
    path.unlink()
    second = tick(defs, instance, first.cursor)
    assert second.run_requests == []
    assert listing_cursor_from_json(second.cursor) == {}


def test_sensor_requests_again_a_file_lingering_past_retry_after(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", "{}")
    first = tick(defs, instance)
    # The run was requested long ago and the file is still in landing: it failed or was lost.
    stale = {signature: 0.0 for signature in listing_cursor_from_json(first.cursor)}
    second = tick(defs, instance, json.dumps(stale))
    assert [landing_keys(r) for r in second.run_requests] == [["1.json"]]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert all(
        requested_at > 0 for requested_at in listing_cursor_from_json(second.cursor).values()
    )


def test_sensor_requests_a_redelivered_file_under_a_new_run_key(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    path = drop(lake_dir, "products", "1.json", "{}")
    set_mtime(path, 120)
    first = tick(defs, instance)
    drop(lake_dir, "products", "1.json", '{"id": 1}')
    second = tick(defs, instance, first.cursor)
    assert [landing_keys(r) for r in second.run_requests] == [["1.json"]]
    # A completed run's key is skipped forever: the content identity must change the key.
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert set(listing_cursor_from_json(second.cursor)).isdisjoint(
        listing_cursor_from_json(first.cursor)
    )


def test_sensor_leaves_young_files_settling(
    lake_dir: Path, settings: Settings, instance: dg.DagsterInstance
) -> None:
    defs = build_definitions(dataclasses.replace(settings, landing_settle_seconds=3600))
    drop(lake_dir, "products", "young.json", "{}")
    set_mtime(drop(lake_dir, "products", "old.json", "{}"), 7200)
    result = tick(defs, instance)
    assert [landing_keys(r) for r in result.run_requests] == [["old.json"]]
    assert [s.split(":")[0] for s in listing_cursor_from_json(result.cursor)] == ["old.json"]


def test_sensor_ignores_dot_files_still_being_uploaded(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", ".1.json.part", "{")
    result = tick(defs, instance)
    assert result.run_requests == []


def test_ingest_config_takes_keys_as_one_json_string_or_a_list():
    from analytics_pipeline.defs.ingest import IngestConfig

    odd = ["a.json", "dir/b c.json", "line\nbreak.json", "é.json"]
    config = ingest_run_config("products", odd)["ops"][stage_op_name("products")]["config"]
    assert IngestConfig(**config).landing_keys() == odd
    assert run_config_keys("products", ingest_run_config("products", odd)) == odd
    assert IngestConfig(keys=["x.json"]).landing_keys() == ["x.json"]  # a launchpad list
    with pytest.raises(dg.Failure, match="keys_json must be a JSON array"):
        IngestConfig(keys_json='{"a": 1}').landing_keys()


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=50), max_size=40),
    max_files=st.integers(min_value=1, max_value=6),
    max_bytes=st.integers(min_value=1, max_value=80),
)
def test_landing_batches_cap_files_and_bytes_and_keep_every_object_once_in_order(
    sizes: list[int], max_files: int, max_bytes: int
):
    objects = [LandingObject("products", f"{i}.json", size, 0.0) for i, size in enumerate(sizes)]
    batches = landing_batches(objects, max_files, max_bytes)
    assert [o for batch in batches for o in batch] == objects
    for i, batch in enumerate(batches):
        assert 1 <= len(batch) <= max_files
        assert len(batch) == 1 or sum(o.size for o in batch) <= max_bytes
        if i + 1 < len(batches):  # a batch closes only when the next object would not fit
            after = batch + [batches[i + 1][0]]
            assert len(after) > max_files or sum(o.size for o in after) > max_bytes


@given(
    st.dictionaries(
        st.text(min_size=1).map(lambda key: f"{key}:12:1714557600.5"),
        st.sampled_from([0.0, 1714557600.123456, 1714557660.999999, 1e-7]),
        max_size=30,
    )
)
def test_the_listing_cursor_groups_by_time_and_reads_back_exactly(
    requested: dict[str, float],
) -> None:
    from analytics_pipeline.resources.arrivals import listing_cursor_json
    from analytics_pipeline.resources.aws.s3_listing import TimeOrderedCursor

    text = listing_cursor_json(requested)
    assert listing_cursor_from_json(text) == requested
    assert len(json.loads(text)["requested"]) == len(set(requested.values()))
    # The ungrouped form written before, and the time-ordered mode, read the same.
    assert listing_cursor_from_json(json.dumps(requested)) == requested
    assert TimeOrderedCursor.from_json(text).requested_at() == requested


def test_a_queue_cursor_left_before_the_queue_was_switched_off_is_listed_afresh(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", "{}")
    queue_cursor = json.dumps([{"at": NOW, "runs": ["products-x"], "messages": {"m": "h"}}])

    result = tick(defs, instance, queue_cursor)

    assert [landing_keys(r) for r in result.run_requests] == [["1.json"]]
    assert [s.split(":")[0] for s in listing_cursor_from_json(result.cursor)] == ["1.json"]


def test_make_process_finds_exactly_the_landing_sensors_by_their_tag(
    defs: dg.Definitions,
) -> None:
    found = {s.name for s in defs.sensors or [] if is_landing_sensor(s)}
    assert found == {f"{spec.name}_landing_sensor" for spec in DATASETS}
