"""Exactly-once export of a log group in fixed windows: which windows are due, what each
writes, and the cursor that carries over (pure: no clients, no Dagster).

A window [start, end) reads events from start - overlap on, so events CloudWatch ingests
late still land; the event ids already exported in that overlap are remembered in the
cursor and skipped. Window boundaries are aligned, so a re-run of a window writes the same
file name and overwrites instead of doubling.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

WINDOW_MS = 10 * 60 * 1000
OVERLAP_MS = 15 * 60 * 1000
# A run far behind catches up this many windows (6 hours) and leaves the rest to the next.
MAX_WINDOWS_PER_RUN = 36


@dataclass(frozen=True)
class LogEvent:
    event_id: str
    timestamp_ms: int
    message: str
    stream: str = ""


@dataclass(frozen=True)
class ExportCursor:
    """The next window's start, and the ids (with event times) exported inside its overlap."""

    window_start_ms: int
    seen: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(
            {"window_start_ms": self.window_start_ms, "seen": self.seen}, sort_keys=True
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ExportCursor:
        value = json.loads(data)
        seen = {str(key): int(ms) for key, ms in value["seen"].items()}
        return cls(int(value["window_start_ms"]), seen)


@dataclass(frozen=True)
class WindowExport:
    """What one window writes: landing NDJSON, quarantine lines, and the cursor after it;
    event_ids are the events written (records and quarantine), in file order."""

    landing: bytes
    quarantine: list[dict[str, object]]
    cursor: ExportCursor
    event_ids: tuple[str, ...] = ()


def first_cursor(now_ms: int, window_ms: int = WINDOW_MS) -> ExportCursor:
    """With no committed cursor, start at the last complete window."""
    return ExportCursor(now_ms // window_ms * window_ms - window_ms)


def due_windows(
    cursor: ExportCursor,
    now_ms: int,
    window_ms: int = WINDOW_MS,
    max_windows: int = MAX_WINDOWS_PER_RUN,
) -> list[tuple[int, int]]:
    """The complete windows from the cursor up to now, oldest first: a late or failed run
    leaves no gap because the next one starts where the last commit left off."""
    windows: list[tuple[int, int]] = []
    start = cursor.window_start_ms
    while start + window_ms <= now_ms and len(windows) < max_windows:
        windows.append((start, start + window_ms))
        start += window_ms
    return windows


def window_name(start_ms: int) -> str:
    """The window's file stem, the same on every re-run of it."""
    return "cloudwatch-" + datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


def rejection(event: LogEvent, required: Sequence[str]) -> str | None:
    """Why a message cannot be a web_requests record, or None if it can."""
    try:
        record = json.loads(event.message)
    except ValueError as error:
        return f"log message is not JSON: {error}"
    if not isinstance(record, dict):
        return f"log message is JSON {type(record).__name__}, not an object"
    missing = [name for name in required if name not in record]
    if missing:
        return f"log message lacks web_requests field(s) {', '.join(missing)}"
    return None


def export_window(
    events: Iterable[LogEvent],
    cursor: ExportCursor,
    window: tuple[int, int],
    required: Sequence[str],
    source: str,
    overlap_ms: int = OVERLAP_MS,
) -> WindowExport:
    """The window's records from events read over [start - overlap, end): those not already
    exported, once each by event id, in event-time order; non-records as quarantine lines."""
    start, end = window
    fresh: dict[str, LogEvent] = {}
    for event in events:
        if event.event_id not in cursor.seen and start - overlap_ms <= event.timestamp_ms < end:
            fresh.setdefault(event.event_id, event)
    ordered = sorted(fresh.values(), key=lambda e: (e.timestamp_ms, e.event_id))
    lines: list[str] = []
    quarantine: list[dict[str, object]] = []
    for event in ordered:
        reason = rejection(event, required)
        if reason is None:
            lines.append(json.dumps(json.loads(event.message), separators=(",", ":")))
        else:
            quarantine.append(
                {
                    "source_key": f"{source}/{event.stream}/{event.event_id}",
                    "line": None,
                    "reason": reason,
                    "raw": event.message[:1024],
                }
            )
    horizon = end - overlap_ms
    seen = {i: t for i, t in cursor.seen.items() if t >= horizon}
    seen.update({e.event_id: e.timestamp_ms for e in ordered if e.timestamp_ms >= horizon})
    landing = "".join(line + "\n" for line in lines).encode()
    event_ids = tuple(e.event_id for e in ordered)
    return WindowExport(landing, quarantine, ExportCursor(end, seen), event_ids)
