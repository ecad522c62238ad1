"""Turn one decoded JSON object into a typed record of a dataset, or say exactly why not."""

from __future__ import annotations

import math
import re
import reprlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from analytics_pipeline.datasets.spec import (
    EPOCH_MILLIS,
    INTEGER_RANGES,
    ISO_8601,
    DatasetSpec,
    Field,
)

# ASCII digits only: "\u0661\u0662" is 12 to Python's int() but not to Athena's CAST.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MISSING = object()
_LEAF: dict[str, Any] = {}
# Distinct unknown field names kept per file and per batch; the rest are counted together.
MAX_UNKNOWN_FIELD_NAMES = 100
OTHER_UNKNOWN_FIELDS = "(other unknown fields)"


class RecordError(ValueError):
    """A record that cannot enter the lake; the message is the quarantine reason."""


# The end of an unrouted record's quarantine reason, by which its quarantine line is told.
NOT_ROUTED = "is not routed to any table"


class UnroutedRecord(RecordError):
    """A well-formed record of a type no table takes: quarantined, but counted apart from
    malformed ones (a new event type is news about the producer, not an error in its data)."""


def validate_record(
    spec: DatasetSpec, obj: Any, *, start: date, now: datetime
) -> tuple[dict[str, Any], str]:
    """Return the record's typed values and its event date partition ('YYYY-MM-DD')."""
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {_json_kind(obj)}")
    routing = spec.routing
    if routing is not None:
        # First: an unrouted type is unrouted whatever its other fields hold (a PageView
        # has no email), and its fields are not what any table declares.
        route = spec.field(routing.field)
        value = _field_value(route, obj)
        if value not in routing.values:
            raise UnroutedRecord(f"{route.dotted_path} {_cited(value)} {NOT_ROUTED}")
    values = {f.name: _field_value(f, obj) for f in spec.fields}
    event_time = values[spec.event_time_field]
    event_date = event_time.date() if isinstance(event_time, datetime) else event_time
    _check_event_date(spec.event_time, event_date, start=start, now=now)
    return values, event_date.isoformat()


def unknown_fields(spec: DatasetSpec, obj: dict[str, Any]) -> list[str]:
    """Dotted paths of the object's fields the spec does not know, holding a non-null value.

    Schema drift, not an error: a producer added `colour`, or `attributes.plan` under a known
    object. An unknown object is named once (`meta`), not descended into; a known field's
    value is never looked inside. A key whose value is null is not carried (as in Arrow).
    """
    out: list[str] = []
    _collect_unknown(obj, _known_tree(spec), "", out)
    return out


def _collect_unknown(
    obj: dict[str, Any], tree: dict[str, Any], prefix: str, out: list[str]
) -> None:
    for key, value in obj.items():
        sub = tree.get(key)
        if sub is None:
            if value is not None:
                out.append(prefix + key)
        elif sub is not _LEAF and isinstance(value, dict):
            _collect_unknown(value, sub, f"{prefix}{key}.", out)


_KNOWN_TREES: dict[int, tuple[DatasetSpec, dict[str, Any]]] = {}


def _known_tree(spec: DatasetSpec) -> dict[str, Any]:
    """The spec's field paths as nested dicts, leaves _LEAF; built once per spec object."""
    cached = _KNOWN_TREES.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    tree: dict[str, Any] = {}
    for f in spec.fields:
        node = tree
        for part in f.path[:-1]:
            child = node.setdefault(part, {})
            if child is _LEAF:
                break
            node = child
        else:
            node[f.path[-1]] = _LEAF
    _KNOWN_TREES[id(spec)] = (spec, tree)
    return tree


def count_unknown(counts: dict[str, int], name: str, n: int = 1) -> None:
    """Add n records carrying `name`, keeping at most MAX_UNKNOWN_FIELD_NAMES distinct names."""
    if name not in counts and len(counts) >= MAX_UNKNOWN_FIELD_NAMES:
        name = OTHER_UNKNOWN_FIELDS
    counts[name] = counts.get(name, 0) + n


def _field_value(f: Field, obj: dict[str, Any]) -> Any:
    raw = _value_at_path(f, obj)
    if raw is _MISSING or raw is None or (isinstance(raw, str) and raw in f.null_literals):
        if f.required:
            return _fail_missing(f, raw)
        return None
    value = _typed_value(f, raw)
    if f.allowed is not None and value not in f.allowed:
        raise RecordError(
            f"value {_cited(raw)} in field {f.dotted_path} is not one of {', '.join(f.allowed)}"
        )
    if f.pattern is not None and not f.pattern.fullmatch(value):
        kind = "email" if f.name == "email" else f"value for {f.pattern.pattern}"
        raise RecordError(f"invalid {kind} {_cited(raw)} in field {f.dotted_path}")
    return value


def _fail_missing(f: Field, raw: Any) -> Any:
    what = "missing" if raw is _MISSING else "null"
    raise RecordError(f"{what} required field '{f.dotted_path}'")


def _value_at_path(f: Field, obj: dict[str, Any]) -> Any:
    current: Any = obj
    for depth, part in enumerate(f.path):
        if not isinstance(current, dict):
            parent = ".".join(f.path[:depth])
            raise RecordError(
                f"field '{parent}' is {_json_kind(current)}, expected an object "
                f"holding '{f.dotted_path}'"
            )
        if part not in current:
            return _MISSING
        current = current[part]
    return current


def _typed_value(f: Field, raw: Any) -> Any:
    kind = f.athena_type
    if kind in INTEGER_RANGES:
        return _integer(f, raw)
    if kind == "double":
        return _double(f, raw)
    if kind == "string":
        if not isinstance(raw, str):
            raise _wrong_type(f, raw)
        _check_encodable(f, raw)
        return raw
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _wrong_type(f, raw)
    if kind == "date":
        return _date(f, raw)
    if kind == "timestamp":
        return _timestamp(f, raw)
    raise AssertionError(f"unhandled type {kind}")  # pragma: no cover - guarded by Field


def _integer(f: Field, raw: Any) -> int:
    # bool is an int in Python; JSON true is not a number.
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise _wrong_type(f, raw)
    if isinstance(raw, str):
        if not _INTEGER_TEXT.fullmatch(raw.strip()):
            raise _wrong_type(f, raw)
        raw = int(raw.strip())
    low, high = INTEGER_RANGES[f.athena_type]
    if not low <= raw <= high:
        raise RecordError(
            f"value {_cited(raw)} in field {f.dotted_path} is out of range for {f.athena_type}"
        )
    return raw


def _double(f: Field, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _wrong_type(f, raw)
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        raise _wrong_type(f, raw) from None
    if not math.isfinite(value):
        raise RecordError(f"value {_cited(raw)} in field {f.dotted_path} is not a finite number")
    return value


def _date(f: Field, raw: Any) -> date:
    if not isinstance(raw, str):
        raise _wrong_type(f, raw)
    try:
        if not _DATE_TEXT.fullmatch(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise RecordError(f"invalid date {_cited(raw)} in field {f.dotted_path}") from None


def _timestamp(f: Field, raw: Any) -> datetime:
    fmt = f.timestamp_format or ISO_8601
    try:
        if fmt == EPOCH_MILLIS:
            if (
                isinstance(raw, bool)
                or not isinstance(raw, int | str)
                or (isinstance(raw, str) and not _INTEGER_TEXT.fullmatch(raw.strip()))
            ):
                raise _wrong_type(f, raw, expected="epoch milliseconds")
            return datetime(1970, 1, 1) + timedelta(milliseconds=int(raw))
        if not isinstance(raw, str):
            raise _wrong_type(f, raw)
        parsed = datetime.fromisoformat(raw) if fmt == ISO_8601 else datetime.strptime(raw, fmt)
        if parsed.tzinfo is not None:
            # Inside the try: 0001-01-01T00:00+01:00 is valid ISO but has no UTC equivalent.
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError) as err:
        if isinstance(err, RecordError):
            raise
        raise RecordError(f"invalid timestamp {_cited(raw)} in field {f.dotted_path}") from None
    return parsed


def _check_event_date(f: Field, event_date: date, *, start: date, now: datetime) -> None:
    if event_date < start:
        raise RecordError(
            f"date {event_date.isoformat()} in field {f.dotted_path} is before the "
            f"partition start {start.isoformat()}"
        )
    latest = (now + timedelta(days=1)).date()
    if event_date > latest:
        raise RecordError(
            f"date {event_date.isoformat()} in field {f.dotted_path} is more than a day "
            f"in the future (latest accepted {latest.isoformat()})"
        )


def _check_encodable(f: Field, raw: str) -> None:
    # A JSON escape can spell a lone surrogate; no UTF-8 writer (Parquet, NDJSON) accepts one.
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as err:
        raise RecordError(
            f"invalid text in field {f.dotted_path}: unpaired surrogate "
            f"U+{ord(raw[err.start]):04X} at character {err.start}"
        ) from None


def _wrong_type(f: Field, raw: Any, expected: str | None = None) -> RecordError:
    return RecordError(
        f"wrong type in field {f.dotted_path}: expected {expected or f.athena_type}, "
        f"got {_json_kind(raw)} {_cited(raw)}"
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


# Bounded depth and width: str() of a JSON array nested near the recursion limit raises.
_CONTAINER_PREVIEW = reprlib.Repr()
_CONTAINER_PREVIEW.maxlevel = 3
_CONTAINER_PREVIEW.maxstring = 40


def _cited(value: Any, limit: int = 80) -> str:
    """A value as a reason cites it (null, true and false as JSON spells them), cut short."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()  # as JSON spells them
    if isinstance(value, list | dict):
        text = _CONTAINER_PREVIEW.repr(value)
    else:
        text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
