"""The log export end to end: events put into moto's CloudWatch Logs are exported into
landing/web_requests/, and the landing ingest (the sensors' runs and the automation, as
`make process` drives them) takes them into the web_requests table exactly once, through a
crashed window's re-run and an overlap window with a late event."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import dagster as dg
import pytest

from analytics_pipeline.cli.process import process_landing
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.web_log_export import (
    CURSOR_PATH,
    QUARANTINE_PREFIX,
    export_due_windows,
    web_log_export,
)
from analytics_pipeline.lake.log_export import WINDOW_MS, window_name
from analytics_pipeline.resources.aws.cloudwatch_logs import CloudWatchLogEvents
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import query
from analytics_pipeline_tests.local_lake import fresh_lake

GROUP = "/app/web-requests"
# Three hours back, on a window boundary: moto takes events up to two weeks old.
T0 = (int(time.time() * 1000) - 3 * 3600 * 1000) // WINDOW_MS * WINDOW_MS


def message(request_id: str, at_ms: int) -> str:
    at = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat()
    return json.dumps(
        {
            "timestamp": at,
            "session_id": f"s-{request_id}",
            "request_id": request_id,
            "client_id": "c-1",
            "reseller_id": "r-1",
            "user_id": "u-1",
            "product_id": "p-1",
            "path": f"/products/{request_id}",
        }
    )


class CrashBeforeCursor(LocalLakeStore):
    """The lake, dying once right after a window's files are written, before its cursor."""

    def write_bytes(self, path: str, data: bytes) -> None:
        if path == CURSOR_PATH and not getattr(self, "crashed", False):
            object.__setattr__(self, "crashed", True)
            raise RuntimeError("killed before the cursor commit")
        super().write_bytes(path, data)


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def pipeline(lake_dir: Path, aws: None) -> Iterator[tuple[dg.Definitions, dg.DagsterInstance]]:
    settings = fresh_lake(lake_dir)
    LocalLakeStore(lake_dir=str(lake_dir)).write_bytes(
        CURSOR_PATH, json.dumps({"window_start_ms": T0, "seen": {}}).encode()
    )
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="app")
    with dg.DagsterInstance.ephemeral() as instance:
        yield build_definitions(settings), instance


def put(*events: tuple[int, str]) -> None:
    batch = [{"timestamp": at, "message": text} for at, text in sorted(events)]
    boto3.client("logs").put_log_events(logGroupName=GROUP, logStreamName="app", logEvents=batch)


def ingest(pipeline: tuple[dg.Definitions, dg.DagsterInstance]) -> None:
    summary = process_landing(*pipeline)
    assert summary.failed_runs == []


def table_request_ids(lake_dir: Path) -> list[str]:
    """Every request id of the web_requests table, repeats included."""
    return [r for (r,) in query(lake_dir, "SELECT request_id FROM web_requests ORDER BY 1")]


def test_exported_events_reach_the_table_once_through_a_rerun_and_an_overlap(
    lake_dir: Path, pipeline: tuple[dg.Definitions, dg.DagsterInstance]
) -> None:
    source = CloudWatchLogEvents(log_group=GROUP)
    put((T0 + 1000, message("a1", T0 + 1000)), (T0 + 2000, message("a2", T0 + 2000)))
    put((T0 + 3000, "upstream timed out (no JSON here)"))

    # The first window's files are written, then the export dies before its cursor.
    crashing = CrashBeforeCursor(lake_dir=str(lake_dir))
    with pytest.raises(RuntimeError, match="before the cursor commit"):
        export_due_windows(crashing, source, T0 + WINDOW_MS)
    ingest(pipeline)  # the sensor takes the window's file in before the re-run
    assert table_request_ids(lake_dir) == ["a1", "a2"]
    archived = lake_dir / "archive" / "web_requests" / f"{window_name(T0)}.ndjson"
    assert archived.exists()

    # Ingested late into the first window, then one in the second; the re-run replays the
    # first window as it was and the second window's overlap takes the late event.
    put((T0 + 5000, message("late", T0 + 5000)))
    put((T0 + WINDOW_MS + 1000, message("b1", T0 + WINDOW_MS + 1000)))
    store = LocalLakeStore(lake_dir=str(lake_dir))
    totals = export_due_windows(store, source, T0 + 2 * WINDOW_MS)
    assert totals == {"windows": 2, "records": 4, "quarantined": 1}
    ingest(pipeline)
    assert table_request_ids(lake_dir) == ["a1", "a2", "b1", "late"]

    # A window with nothing new, and the asset materialised by hand up to now.
    assert export_due_windows(store, source, T0 + 3 * WINDOW_MS)["records"] == 0
    put((T0 + 4 * WINDOW_MS, message("c1", T0 + 4 * WINDOW_MS)))
    result = dg.materialize([web_log_export], resources={"store": store, "web_logs": source})
    assert result.success
    ingest(pipeline)
    ingest(pipeline)  # nothing left to do: nothing doubles
    assert table_request_ids(lake_dir) == ["a1", "a2", "b1", "c1", "late"]

    # The message that is not a log line is in quarantine once, with its reason.
    [rejected] = [
        json.loads(line)
        for path in sorted((lake_dir / QUARANTINE_PREFIX).glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert rejected["reason"].startswith("log message is not JSON")
    assert rejected["raw"] == "upstream timed out (no JSON here)"
    assert rejected["source_key"].startswith(f"{GROUP}/app/")
    assert rejected["line"] is None
