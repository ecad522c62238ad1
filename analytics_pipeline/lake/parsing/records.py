"""Split a landing file's bytes into typed records and quarantine entries, losing none."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from analytics_pipeline.datasets.spec import DatasetSpec
from analytics_pipeline.lake.parsing.validation import (
    RecordError,
    UnroutedRecord,
    count_unknown,
    unknown_fields,
    validate_record,
)
from analytics_pipeline.lake.sql_text import UTF8_BOM

RAW_PREVIEW_BYTES = 1024
# JSON's own whitespace: str.strip() would also eat "\x1c" or "\xa0" and drop a line unseen.
_JSON_WHITESPACE = " \t\r\n"


@dataclass(frozen=True)
class Rejection:
    """One quarantine line: a malformed or invalid record (or file), or, when `unrouted`, a
    valid record that no table takes. Only the four fields of as_json are written."""

    source_key: str
    line: int | None
    reason: str
    raw: str
    unrouted: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "source_key": self.source_key,
            "line": self.line,
            "reason": self.reason,
            "raw": self.raw,
        }


@dataclass
class ParsedFile:
    source_key: str
    records: list[dict[str, Any]] = field(default_factory=list)  # with "dt" and "_source_line"
    rejections: list[Rejection] = field(default_factory=list)
    blank_lines: int = 0
    # Staged records carrying fields the spec does not know, by field (schema drift).
    unknown_fields: dict[str, int] = field(default_factory=dict)

    @property
    def input_records(self) -> int:
        return len(self.records) + len(self.rejections)


def parse_landing_file(
    spec: DatasetSpec, source_key: str, data: bytes, *, start: date, now: datetime
) -> ParsedFile:
    """Every record becomes exactly one record or one rejection; blank NDJSON lines neither."""
    parsed = ParsedFile(source_key)
    text = _decoded_text(parsed, data)
    if text is None:
        return parsed
    if not text.strip(_JSON_WHITESPACE):
        parsed.rejections.append(Rejection(source_key, None, "empty file", raw_preview(data)))
        return parsed
    if spec.layout == "json":
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as err:
            reason = f"malformed JSON: {_json_error(err)}"
            parsed.rejections.append(Rejection(source_key, None, reason, raw_preview(data)))
            return parsed
        _add_validated(parsed, spec, 1, obj, text, start=start, now=now)
        return parsed
    parse_ndjson_text(parsed, spec, text, 1, start=start, now=now)
    return parsed


def parse_ndjson_text(
    parsed: ParsedFile, spec: DatasetSpec, text: str, first_line: int, *, start: date, now: datetime
) -> None:
    """NDJSON lines into parsed, numbered from first_line (a streamed block starts mid-file)."""
    for number, line in enumerate(text.split("\n"), start=first_line):
        parse_ndjson_line(parsed, spec, number, line, start=start, now=now)
    if text.endswith("\n"):
        parsed.blank_lines -= 1  # the final newline ends the last line; it is not a blank line


def parse_ndjson_line(
    parsed: ParsedFile, spec: DatasetSpec, number: int, line: str, *, start: date, now: datetime
) -> None:
    """One NDJSON line (split on LF only) into parsed: a record, a rejection or a blank line."""
    line = line.removesuffix("\r")
    if not line.strip(_JSON_WHITESPACE):
        parsed.blank_lines += 1
        return
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as err:
        reason = f"malformed JSON at line {number}: {_json_error(err)}"
        parsed.rejections.append(Rejection(parsed.source_key, number, reason, line))
        return
    _add_validated(parsed, spec, number, obj, line, start=start, now=now)


def _add_validated(
    parsed: ParsedFile,
    spec: DatasetSpec,
    number: int,
    obj: Any,
    raw: str,
    *,
    start: date,
    now: datetime,
) -> None:
    try:
        values, dt = validate_record(spec, obj, start=start, now=now)
    except RecordError as err:
        unrouted = isinstance(err, UnroutedRecord)
        parsed.rejections.append(Rejection(parsed.source_key, number, str(err), raw, unrouted))
        return
    values["dt"] = dt
    values["_source_line"] = number
    parsed.records.append(values)
    for name in unknown_fields(spec, obj):
        count_unknown(parsed.unknown_fields, name)


def _decoded_text(parsed: ParsedFile, data: bytes) -> str | None:
    try:
        # utf-8-sig: a byte-order mark is an encoding artefact, not part of the first record.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # utf-8-sig counts from after a byte-order mark; the offset is the file's.
        offset = err.start + (len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0)
        reason = f"not valid UTF-8: byte 0x{data[offset]:02x} at offset {offset}"
        parsed.rejections.append(Rejection(parsed.source_key, None, reason, raw_preview(data)))
        return None


def raw_preview(data: bytes) -> str:
    """A whole-file reject's `raw`: its first 1 KiB, undecodable bytes replaced."""
    return data[:RAW_PREVIEW_BYTES].decode("utf-8", errors="replace")


def _json_error(err: Exception) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err)
