"""The CloudWatch Logs export that feeds landing/web_requests/: an asset and its schedule."""

import json
import time
from collections.abc import Iterable

import dagster as dg

from analytics_pipeline.datasets.web_requests import WEB_REQUESTS
from analytics_pipeline.lake.log_export import (
    OVERLAP_MS,
    ExportCursor,
    LogEvent,
    due_windows,
    export_window,
    first_cursor,
    window_name,
)
from analytics_pipeline.resources.log_events import LogEventSource
from analytics_pipeline.resources.store import LakeStore

CURSOR_PATH = "state/web_log_export/cursor.json"
# The events a window is about to write, kept until its cursor is committed (see replay_ids).
PENDING_PATH = "state/web_log_export/pending.json"
QUARANTINE_PREFIX = f"quarantine/{WEB_REQUESTS.name}/log_export"
REQUIRED_FIELDS = tuple(f.name for f in WEB_REQUESTS.fields if f.required)


def read_cursor(store: LakeStore, now_ms: int) -> ExportCursor:
    if store.exists(CURSOR_PATH):
        return ExportCursor.from_json(store.read_bytes(CURSOR_PATH))
    return first_cursor(now_ms)


def replay_ids(store: LakeStore, start_ms: int) -> set[str] | None:
    """The events an earlier attempt at this window wrote before it crashed, or None.

    Its landing file may have been ingested and archived already; writing it again with
    events that arrived since would be a new version of the key, staged whole again (every
    record doubled). Replayed, it is the same bytes, which landing ignores; the newer events
    are within the next window's overlap and land there."""
    if not store.exists(PENDING_PATH):
        return None
    pending = json.loads(store.read_bytes(PENDING_PATH))
    return set(pending["event_ids"]) if pending["window_start_ms"] == start_ms else None


def export_due_windows(store: LakeStore, logs: LogEventSource, now_ms: int) -> dict[str, int]:
    """Each due window's files first, then its cursor: a crash in between re-exports the
    window under the same names, with the same events, rather than skipping it."""
    cursor = read_cursor(store, now_ms)
    totals = {"windows": 0, "records": 0, "quarantined": 0}
    for window in due_windows(cursor, now_ms):
        start, end = window
        events: Iterable[LogEvent] = logs.events(start - OVERLAP_MS, end)
        replay = replay_ids(store, start)
        if replay is not None:
            events = (e for e in events if e.event_id in replay)
        exported = export_window(events, cursor, window, REQUIRED_FIELDS, logs.name())
        if replay is None and exported.event_ids:
            pending = {"window_start_ms": start, "event_ids": list(exported.event_ids)}
            store.write_bytes(PENDING_PATH, json.dumps(pending).encode())
        name = window_name(start)
        if exported.landing:
            store.write_landing(WEB_REQUESTS.name, f"{name}.ndjson", exported.landing)
        if exported.quarantine:
            lines = "".join(json.dumps(q) + "\n" for q in exported.quarantine)
            store.write_bytes(f"{QUARANTINE_PREFIX}/{name}.jsonl", lines.encode())
        store.write_bytes(CURSOR_PATH, exported.cursor.to_json())
        cursor = exported.cursor
        totals["windows"] += 1
        totals["records"] += exported.landing.count(b"\n")
        totals["quarantined"] += len(exported.quarantine)
    return totals


@dg.asset(
    name="web_log_export",
    group_name=WEB_REQUESTS.name,
    description="Exports the web app's CloudWatch Logs group into landing/web_requests/ as "
    "NDJSON, one file per 10-minute window, exactly once by event id.",
    kinds={"cloudwatch", "s3"},
)
def web_log_export(
    context: dg.AssetExecutionContext, store: LakeStore, web_logs: LogEventSource
) -> dg.MaterializeResult:
    totals = export_due_windows(store, web_logs, int(time.time() * 1000))
    context.log.info(f"exported {totals}")
    return dg.MaterializeResult(metadata={k: dg.MetadataValue.int(v) for k, v in totals.items()})


web_log_export_job = dg.define_asset_job("web_log_export_job", selection=[web_log_export])

web_log_export_schedule = dg.ScheduleDefinition(
    name="web_log_export_schedule",
    job=web_log_export_job,
    cron_schedule="*/10 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


def web_log_export_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[web_log_export], jobs=[web_log_export_job], schedules=[web_log_export_schedule]
    )
