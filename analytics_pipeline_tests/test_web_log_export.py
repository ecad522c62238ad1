"""The CloudWatch Logs export against moto's Logs: exactly once across windows, late events,
failed and re-run windows, pagination, and messages that are not web_requests records."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest

from analytics_pipeline.defs.web_log_export import (
    CURSOR_PATH,
    QUARANTINE_PREFIX,
    export_due_windows,
    web_log_export,
)
from analytics_pipeline.lake.log_export import WINDOW_MS, LogEvent
from analytics_pipeline.resources.aws.cloudwatch_logs import CloudWatchLogEvents
from analytics_pipeline.resources.local.store import LocalLakeStore

GROUP = "/app/web-requests"
# A window boundary a little in the past, so moto accepts every event's time.
T0 = (int(time.time() * 1000) - 3 * 3600 * 1000) // WINDOW_MS * WINDOW_MS


def record(request_id: str, at_ms: int) -> str:
    return json.dumps(
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "session_id": "s-1",
            "request_id": request_id,
            "client_id": "c-1",
            "reseller_id": "r-1",
            "user_id": "u-1",
            "product_id": "p-1",
            "path": f"/p/{at_ms}",
        }
    )


class FailingOnce(CloudWatchLogEvents):
    """The log group, failing the first read of one window (a run that dies mid-way)."""

    fail_start_ms: int = 0

    def events(self, start_ms: int, end_ms: int) -> Iterator[LogEvent]:
        if end_ms == self.fail_start_ms + WINDOW_MS and not Path(".failed").exists():
            Path(".failed").touch()
            raise RuntimeError("throttled")
        return super().events(start_ms, end_ms)


@pytest.fixture
def logs(aws: None) -> object:
    client = boto3.client("logs")
    client.create_log_group(logGroupName=GROUP)
    for stream in ("a", "b"):
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    return client


def put(client: object, stream: str, *events: tuple[int, str]) -> None:
    batch = [{"timestamp": at, "message": message} for at, message in sorted(events)]
    client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=batch)  # type: ignore[attr-defined]


def landed(store: LocalLakeStore) -> list[str]:
    """Every request id in landing/web_requests/, with repeats."""
    ids = []
    for path in sorted(store.list_files("landing/web_requests/")):
        for line in store.read_bytes(path).decode().splitlines():
            ids.append(json.loads(line)["request_id"])
    return ids


def quarantined(store: LocalLakeStore) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for path in store.list_files(f"{QUARANTINE_PREFIX}/")
        for line in store.read_bytes(path).decode().splitlines()
    ]


@pytest.fixture
def store(tmp_path: Path) -> LocalLakeStore:
    lake = LocalLakeStore(lake_dir=str(tmp_path / "lake"))
    lake.ensure_layout()
    lake.write_bytes(CURSOR_PATH, json.dumps({"window_start_ms": T0, "seen": {}}).encode())
    return lake


def test_pages_across_streams_once_each(logs: object, store: LocalLakeStore) -> None:
    put(logs, "a", *[(T0 + i * 1000, record(f"a{i}", i)) for i in range(5)])
    put(logs, "b", *[(T0 + i * 1000 + 500, record(f"b{i}", i)) for i in range(4)])
    source = CloudWatchLogEvents(log_group=GROUP, page_size=2)
    totals = export_due_windows(store, source, T0 + WINDOW_MS)
    assert totals == {"windows": 1, "records": 9, "quarantined": 0}
    expected = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(4)]
    assert sorted(landed(store)) == sorted(expected)
    stem = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(T0 / 1000))
    assert store.list_files("landing/web_requests/") == [
        f"landing/web_requests/cloudwatch-{stem}.ndjson"
    ]


def test_late_event_lands_in_the_next_window_not_twice(logs: object, store: LocalLakeStore) -> None:
    source = CloudWatchLogEvents(log_group=GROUP)
    put(logs, "a", (T0 + 60_000, record("on-time", 0)), (T0 + WINDOW_MS - 1000, record("edge", 0)))
    export_due_windows(store, source, T0 + WINDOW_MS)
    # Ingested after the first window was exported, stamped inside it.
    put(logs, "b", (T0 + 120_000, record("late", 0)))
    put(logs, "a", (T0 + WINDOW_MS + 1000, record("next", 0)))
    export_due_windows(store, source, T0 + 2 * WINDOW_MS)
    assert sorted(landed(store)) == ["edge", "late", "next", "on-time"]
    # Nothing new: a third window re-reads the overlap and adds nothing.
    export_due_windows(store, source, T0 + 3 * WINDOW_MS)
    assert sorted(landed(store)) == ["edge", "late", "next", "on-time"]


def test_failed_window_leaves_no_gap(
    logs: object, store: LocalLakeStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    put(logs, "a", *[(T0 + w * WINDOW_MS + 5000, record(f"w{w}", w)) for w in range(3)])
    source = FailingOnce(log_group=GROUP, fail_start_ms=T0 + WINDOW_MS)
    with pytest.raises(RuntimeError, match="throttled"):
        export_due_windows(store, source, T0 + 3 * WINDOW_MS)
    assert landed(store) == ["w0"]
    # Runs late: starts from the committed cursor, not from now - 10 min.
    totals = export_due_windows(store, source, T0 + 3 * WINDOW_MS + 7 * 60_000)
    assert totals["windows"] == 2
    assert sorted(landed(store)) == ["w0", "w1", "w2"]


def test_rerun_after_a_crash_before_the_cursor_overwrites(
    logs: object, store: LocalLakeStore
) -> None:
    put(logs, "a", (T0 + 1000, record("x", 0)), (T0 + 2000, "not json at all"))
    source = CloudWatchLogEvents(log_group=GROUP)
    before = store.read_bytes(CURSOR_PATH)
    export_due_windows(store, source, T0 + WINDOW_MS)
    files = sorted(store.list_files("landing/web_requests/"))
    # The crash: files written, cursor never committed.
    store.write_bytes(CURSOR_PATH, before)
    export_due_windows(store, source, T0 + WINDOW_MS)
    assert sorted(store.list_files("landing/web_requests/")) == files
    assert landed(store) == ["x"]
    assert len(quarantined(store)) == 1


def test_non_records_are_quarantined_with_their_reason(logs: object, store: LocalLakeStore) -> None:
    fields = json.loads(record("y", 0))
    del fields["session_id"]
    put(
        logs,
        "a",
        (T0 + 1000, "GET /health 200"),
        (T0 + 2000, "[1, 2]"),
        (T0 + 3000, json.dumps(fields)),
        (T0 + 4000, record("ok", 0)),
        (T0 + 5000, "line one\nline two"),
    )
    totals = export_due_windows(store, CloudWatchLogEvents(log_group=GROUP), T0 + WINDOW_MS)
    assert totals == {"windows": 1, "records": 1, "quarantined": 4}
    rejected = quarantined(store)
    reasons = [str(q["reason"]) for q in rejected]
    assert reasons[0].startswith("log message is not JSON")
    assert reasons[1] == "log message is JSON list, not an object"
    assert reasons[2] == "log message lacks web_requests field(s) session_id"
    assert rejected[3]["raw"] == "line one\nline two"
    assert all(str(q["source_key"]).startswith(f"{GROUP}/a/") for q in rejected)
    assert landed(store) == ["ok"]


def test_asset_materialises_by_hand(logs: object, store: LocalLakeStore) -> None:
    now = int(time.time() * 1000)
    store.delete_files([CURSOR_PATH])
    start = now // WINDOW_MS * WINDOW_MS - WINDOW_MS
    put(logs, "a", (start + 1000, record("by-hand", 0)))
    result = dg.materialize(
        [web_log_export],
        resources={"store": store, "web_logs": CloudWatchLogEvents(log_group=GROUP)},
    )
    assert result.success
    assert landed(store) == ["by-hand"]
    assert json.loads(store.read_bytes(CURSOR_PATH))["window_start_ms"] == start + WINDOW_MS


def test_the_aws_deployment_schedules_the_export_only_with_a_log_group() -> None:
    from analytics_pipeline.definitions import build_definitions
    from analytics_pipeline.settings import Settings

    environ = {
        "ANALYTICS_PIPELINE_ENV": "aws",
        "ANALYTICS_LANDING_BUCKET": "landing",
        "ANALYTICS_LAKE_BUCKET": "lake",
        "ANALYTICS_ATHENA_OUTPUT": "s3://results/",
        "ANALYTICS_GLUE_DATABASE": "lake_db",
        "ANALYTICS_ATHENA_WORKGROUP": "analytics",
    }

    def export_schedules(defs: dg.Definitions) -> list[dg.ScheduleDefinition]:
        return [s for s in defs.schedules or [] if s.name.startswith("web_log_export")]

    without = build_definitions(Settings.from_env(environ))
    assert export_schedules(without) == []
    defs = build_definitions(Settings.from_env({**environ, "ANALYTICS_WEB_LOG_GROUP": GROUP}))
    (schedule,) = export_schedules(defs)
    assert schedule.name == "web_log_export_schedule"
    assert schedule.cron_schedule == "*/10 * * * *"
    assert (defs.resources or {})["web_logs"] == CloudWatchLogEvents(log_group=GROUP)
