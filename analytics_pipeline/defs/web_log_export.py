"""The CloudWatch Logs export that feeds landing/web_requests/: an asset and its schedule."""

import json
import time

import dagster as dg

from analytics_pipeline.datasets.web_requests import WEB_REQUESTS
from analytics_pipeline.lake.log_export import (
    OVERLAP_MS,
    ExportCursor,
    due_windows,
    export_window,
    first_cursor,
    window_name,
)
from analytics_pipeline.resources.log_events import LogEventSource
from analytics_pipeline.resources.store import LakeStore

CURSOR_PATH = "state/web_log_export/cursor.json"
QUARANTINE_PREFIX = f"quarantine/{WEB_REQUESTS.name}/log_export"
REQUIRED_FIELDS = tuple(f.name for f in WEB_REQUESTS.fields if f.required)


def read_cursor(store: LakeStore, now_ms: int) -> ExportCursor:
    if store.exists(CURSOR_PATH):
        return ExportCursor.from_json(store.read_bytes(CURSOR_PATH))
    return first_cursor(now_ms)


def export_due_windows(store: LakeStore, logs: LogEventSource, now_ms: int) -> dict[str, int]:
    """Each due window's files first, then its cursor: a crash in between re-exports the
    window under the same names (overwriting) rather than skipping it."""
    cursor = read_cursor(store, now_ms)
    totals = {"windows": 0, "records": 0, "quarantined": 0}
    for window in due_windows(cursor, now_ms):
        start, end = window
        events = logs.events(start - OVERLAP_MS, end)
        exported = export_window(events, cursor, window, REQUIRED_FIELDS, logs.name())
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
