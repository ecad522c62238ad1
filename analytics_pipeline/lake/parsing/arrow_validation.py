"""Typing and validating Arrow's text columns exactly as the row-level validator would."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analytics_pipeline.datasets.spec import ARROW_TYPES, INTEGER_RANGES, DatasetSpec, Field

# Canonical integers only; "+1", " 1", "١" and 19+ digits are left to the row-level path.
_INTEGER_TEXT = r"^-?[0-9]{1,18}$"
# The strptime directives a canonical value writes as a fixed number of digits.
_TIME_DIGITS = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
_ISO_SHAPES = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")


def parsed_table_schema(spec: DatasetSpec) -> pa.Schema:
    return pa.schema(
        [(f.name, ARROW_TYPES[f.athena_type]) for f in spec.fields]
        + [("dt", pa.string()), ("_source_line", pa.int32())]
    )


def validate_in_arrow(
    spec: DatasetSpec, raw: pa.Table, first_line: int, *, start: date, now: datetime
) -> tuple[pa.Array, pa.Table]:
    """Which rows every field accepts exactly as the row-level validator would; typed rows."""
    ok = pc.is_valid(raw.column("_index").combine_chunks())
    columns: dict[str, pa.Array] = {}
    for f in spec.fields:
        text = raw.column(f.name).combine_chunks()
        value, accepted = _typed_and_accepted(f, text)
        present = pc.is_valid(text)
        if f.null_literals:
            present = pc.and_(present, pc.invert(pc.is_in(text, pa.array(f.null_literals))))
        if f.required:
            field_ok = pc.and_kleene(present, accepted)
        else:
            field_ok = pc.or_kleene(pc.is_null(text), accepted)
        ok = pc.and_(ok, pc.fill_null(field_ok, False))
        columns[f.name] = value
    if spec.routing is not None:
        # A value no table takes is refused here; the row-level path words the reason and
        # counts it as unrouted.
        route = raw.column(spec.routing.field).combine_chunks()
        routed = pc.is_in(route, pa.array(sorted(spec.routing.values)))
        ok = pc.and_(ok, pc.fill_null(routed, False))
    event = columns[spec.event_time_field]
    event_date = pc.cast(event, pa.date32())
    latest = (now + timedelta(days=1)).date()
    in_range = pc.and_(
        pc.greater_equal(event_date, pa.scalar(start, pa.date32())),
        pc.less_equal(event_date, pa.scalar(latest, pa.date32())),
    )
    ok = pc.and_(ok, pc.fill_null(in_range, False))
    typed = pa.table(
        {
            **columns,
            "dt": _date_text(event_date),
            "_source_line": pc.cast(pc.add(raw.column("_index"), first_line), pa.int32()),
            "_index": raw.column("_index"),
        }
    )
    return ok, typed


def _typed_and_accepted(f: Field, text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The field's typed values (null where not accepted) and which values are accepted."""
    target = ARROW_TYPES[f.athena_type]
    if f.athena_type == "string":
        accepted = pc.is_valid(text)
        if f.allowed is not None:
            accepted = pc.is_in(text, pa.array(f.allowed))
        return text, accepted
    if f.athena_type in INTEGER_RANGES:
        try:
            # Usually every value is an integer: cast at once, keep canonical texts only
            # ("+1", "007" and "-0" go row by row).
            numbers = pc.cast(text, pa.int64())
            accepted = _canonical_integers(text, numbers)
        except pa.ArrowInvalid:
            accepted = pc.match_substring_regex(text, _INTEGER_TEXT)
            numbers = pc.cast(pc.if_else(accepted, text, None), pa.int64())
        low, high = INTEGER_RANGES[f.athena_type]
        accepted = pc.and_(
            accepted, pc.and_(pc.greater_equal(numbers, low), pc.less_equal(numbers, high))
        )
        return pc.cast(pc.if_else(accepted, numbers, None), target), accepted
    fmt = "%Y-%m-%d" if f.athena_type == "date" else f.timestamp_format or ""
    shape = canonical_value_pattern(f)
    assert shape is not None
    accepted = _fixed_shape(text, _time_template(f))
    if accepted is None:
        accepted = pc.match_substring_regex(text, shape)
    candidates = text if pc.all(accepted).as_py() else pc.if_else(accepted, text, None)
    if fmt in _ISO_SHAPES:
        try:
            # Arrow's ISO 8601 cast is strict (no 02-30, no 24:00): exact when all pass.
            return pc.cast(pc.cast(candidates, pa.timestamp("s")), target), accepted
        except pa.ArrowInvalid:
            pass
    parsed = pc.strptime(candidates, format=fmt, unit="s", error_is_null=True)
    # strptime normalises (2024-02-30 becomes 2024-03-01): keep only exact round trips.
    accepted = pc.and_(accepted, pc.equal(pc.strftime(parsed, format=fmt), text))
    return pc.cast(pc.if_else(accepted, parsed, None), target), accepted


def _canonical_integers(text: pa.Array, numbers: pa.Array) -> pa.Array:
    """Which texts are their number's canonical form. Each parsed as an integer; when every
    byte is a digit or '-', each is -?[0-9]+, canonical unless its first digit is a 0 with
    more after it ("007", "-0"): two bytes a value looked at, no string made per value.
    Otherwise the numbers are cast back and compared."""
    buffers = _string_buffers(text)
    if buffers is None:
        return pc.equal(pc.cast(numbers, pa.string()), text)
    offsets, data = buffers
    chars = data[offsets[0] : offsets[-1]]
    if not len(chars) or not ((chars - ord("0") < 10) | (chars == ord("-"))).all():
        return pc.equal(pc.cast(numbers, pa.string()), text)
    last = offsets[-1] - 1  # nulls are empty: keep their look-ups inside the bytes
    negative = data[np.minimum(offsets[:-1], last)] == ord("-")
    leading_zero = data[np.minimum(offsets[:-1] + negative, last)] == ord("0")
    return pa.array(~leading_zero | (np.diff(offsets) == 1))


def _fixed_shape(text: pa.Array, template: str | None) -> pa.Array | None:
    """Which values have the template's shape (NUL a digit, any other character itself),
    when there are no nulls and every value has the template's width; None otherwise.
    Bytes in a grid, not a regex per value."""
    buffers = _string_buffers(text)
    if template is None or buffers is None or text.null_count:
        return None
    shape = np.frombuffer(template.encode(), dtype=np.uint8)
    offsets, data = buffers
    if not (np.diff(offsets) == len(shape)).all():
        return None
    grid = data[offsets[0] : offsets[-1]].reshape(-1, len(shape))
    digit = shape == 0
    ok = ((grid[:, digit] - ord("0")) < 10).all(axis=1)
    ok &= (grid[:, ~digit] == shape[~digit]).all(axis=1)
    return pa.array(ok)


def _string_buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """A non-empty string array's value offsets and its bytes, without a copy."""
    if text.type != pa.string() or not len(text):
        return None
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset :][: len(text) + 1]
    return offsets, np.frombuffer(text.buffers()[2], dtype=np.uint8)


def _date_text(dates: pa.Array) -> pa.Array:
    """Dates as YYYY-MM-DD text: each distinct date formatted once (a block holds a few)."""
    encoded = pc.dictionary_encode(dates)
    return pc.take(pc.cast(encoded.dictionary, pa.string()), encoded.indices)


def _time_template(f: Field) -> str | None:
    """What a canonical value of a date or strptime timestamp field looks like, NUL for
    each digit; None if its format has a directive of no fixed width (%b, %f, %z...), or
    it has no strptime format (epoch millis, ISO 8601): the row-level path decides those."""
    if f.athena_type == "date":
        fmt = "%Y-%m-%d"
    elif f.athena_type == "timestamp" and "%" in (f.timestamp_format or ""):
        fmt = f.timestamp_format or ""
    else:
        return None
    pieces = re.split(r"(%.)", fmt)
    if any(p not in _TIME_DIGITS if p.startswith("%") else "\0" in p for p in pieces):
        return None
    return "".join("\0" * _TIME_DIGITS[p] if p.startswith("%") else p for p in pieces)


def canonical_value_pattern(f: Field) -> str | None:
    """The regex a canonical value of the field matches; None if Arrow cannot check it."""
    if len(f.path) != 1 or f.pattern is not None:
        return None
    if f.athena_type == "string" or f.athena_type in INTEGER_RANGES:
        return ""
    template = _time_template(f)
    if template is None:
        return None
    return "^" + "".join("[0-9]" if c == "\0" else re.escape(c) for c in template) + "$"
