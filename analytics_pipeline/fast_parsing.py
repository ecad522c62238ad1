"""NDJSON landing bytes -> an Arrow table of typed records, parsed and validated in Arrow.

Row by row in Python, 4 million readings take minutes; in Arrow, seconds. Arrow's JSON
reader and casts are more lenient than the row-level validator in places (it normalises
2024-02-30 to 2024-03-01, reads `{...} {...}` as two rows, crashes on a top-level `null`), so
it only ever sees lines that pass cheap vectorised guards, and only keeps values that
round-trip exactly. Every other line goes through the row-level path
(`parsing.parse_ndjson_line`), so records and quarantine reasons are identical to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from analytics_pipeline.datasets.spec import ARROW_TYPES, INTEGER_RANGES, DatasetSpec, Field
from analytics_pipeline.parsing import (
    ParsedFile,
    Rejection,
    parse_landing_file,
    parse_ndjson_line,
    parse_ndjson_text,
)
from analytics_pipeline.validation import count_unknown

# Below this, a file's Arrow set-up costs more than parsing its lines in Python.
FAST_PATH_MIN_BYTES = 16 * 1024
# When Arrow refuses a block, its lines are retried in chunks this size; a failing chunk's
# lines take the row-level path (so one bad line costs at most this many Python parses).
RETRY_CHUNK_LINES = 4096
# json.loads gives up ("nested too deeply") long before Arrow does.
# Lines over SHORT_LINE_BYTES with more than MAX_OPENING_BRACKETS '{' and '[' go row-level;
# a shorter line cannot nest 256 deep, well inside Python's recursion limit even in an op.
MAX_OPENING_BRACKETS = 32
SHORT_LINE_BYTES = 512
_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = " \t\r\n"
# A '}' followed by something that cannot continue the object: maybe a second value on the line.
_SECOND_VALUE = r"\}[ \t]*[^ \t,}\]]"
# Canonical integers only; "+1", " 1", "١" and 19+ digits are left to the row-level path.
_INTEGER_TEXT = r"^-?[0-9]{1,18}$"
_DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIME_DIRECTIVES = {"%Y": "[0-9]{4}", "%m": "[0-9]{2}", "%d": "[0-9]{2}", "%H": "[0-9]{2}"}
_ISO_SHAPES = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")
_TIME_DIRECTIVES |= {"%M": "[0-9]{2}", "%S": "[0-9]{2}"}


@dataclass
class ParsedTable:
    """A landing file as a table: the spec's fields typed, plus dt and _source_line."""

    source_key: str
    table: pa.Table
    rejections: list[Rejection] = field(default_factory=list)
    blank_lines: int = 0
    # Staged records carrying fields the spec does not know, by field (schema drift).
    unknown_fields: dict[str, int] = field(default_factory=dict)

    @property
    def input_records(self) -> int:
        return self.table.num_rows + len(self.rejections)


def parsed_table_schema(spec: DatasetSpec) -> pa.Schema:
    return pa.schema(
        [(f.name, ARROW_TYPES[f.athena_type]) for f in spec.fields]
        + [("dt", pa.string()), ("_source_line", pa.int32())]
    )


def supports_fast_path(spec: DatasetSpec) -> bool:
    """NDJSON of flat objects whose fields Arrow can check exactly (IoT readings, say)."""
    return spec.layout == "ndjson" and all(_time_pattern(f) is not None for f in spec.fields)


def parse_landing_table(
    spec: DatasetSpec, source_key: str, data: bytes, *, start: date, now: datetime
) -> ParsedTable:
    """What parse_landing_file gives, as one Arrow table; fast for big NDJSON files."""
    if not supports_fast_path(spec) or len(data) < FAST_PATH_MIN_BYTES:
        return _from_rows(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    body = data.removeprefix(_UTF8_BOM)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        # A whole-file reject, worded by the row-level path.
        return _from_rows(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    parsed = parse_ndjson_block(spec, source_key, body, 1, start=start, now=now)
    if parsed.input_records == 0:
        # Nothing but blank lines: an empty file, worded by the row-level path.
        return _from_rows(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    return parsed


def parse_ndjson_block(
    spec: DatasetSpec,
    source_key: str,
    body: bytes,
    first_line: int,
    *,
    start: date,
    now: datetime,
) -> ParsedTable:
    """Whole NDJSON lines of valid UTF-8 (no BOM), numbered from first_line: a file's body
    or one block of a streamed file. Blank lines are counted, never rejected; a final LF ends
    the last line. Small blocks, and datasets Arrow cannot check, go row by row."""
    if not supports_fast_path(spec) or len(body) < FAST_PATH_MIN_BYTES:
        row_level = ParsedFile(source_key)
        parse_ndjson_text(row_level, spec, body.decode("utf-8"), first_line, start=start, now=now)
        return _from_rows(spec, row_level)
    lines = _split_lines(body)
    trimmed = pc.utf8_trim(lines, _JSON_WHITESPACE)
    blank = pc.equal(pc.binary_length(trimmed), 0)
    blank_lines = pc.sum(blank).as_py() - (1 if body.endswith(b"\n") else 0)
    if pc.all(blank).as_py():
        return ParsedTable(source_key, parsed_table_schema(spec).empty_table(), [], blank_lines)

    candidate = pc.and_(pc.invert(blank), _safe_for_arrow(trimmed))
    indices = pc.indices_nonzero(candidate)
    schema = pa.schema([(f.name, pa.string()) for f in spec.fields])
    read = None
    if len(indices) == len(lines) - pc.sum(blank).as_py():
        # The usual file, every line a candidate: Arrow reads the bytes as they are (it
        # skips blank lines as json.loads's caller does), with no copy of the lines.
        read = _read_json_buffer(pa.py_buffer(body), schema, len(indices))
    slow_indices: list[pa.Array] = []
    if read is not None:
        fast = read[0].append_column("_index", indices)
        extras = {name: indices.take(rows) for name, rows in read[1].items()}
    else:
        fast, slow_indices, extras = _read_candidates(schema, trimmed.take(indices), indices)
    valid, fast = _validate(spec, fast, first_line, start=start, now=now)
    fast_rows = fast.filter(valid)
    slow = pc.indices_nonzero(pc.and_(pc.invert(blank), pc.invert(candidate)))
    slow_all = pa.chunked_array(
        [slow, *slow_indices, fast.column("_index").filter(pc.invert(valid)).combine_chunks()],
        pa.uint64(),
    )

    row_level = ParsedFile(source_key)
    for index in sorted(slow_all.to_pylist()):
        line = lines[index].as_py().removesuffix("\n")
        parse_ndjson_line(row_level, spec, index + first_line, line, start=start, now=now)
    unknown = _unknown_counts(extras, fast_rows.column("_index"), len(lines))
    for name, n in row_level.unknown_fields.items():
        count_unknown(unknown, name, n)
    table = _from_rows(spec, row_level).table
    table = pa.concat_tables([fast_rows.drop_columns(["_index"]), table])
    table = table.sort_by("_source_line") if row_level.records else table
    return ParsedTable(source_key, table, row_level.rejections, blank_lines, unknown)


def _unknown_counts(
    extras: dict[str, list[pa.Array]] | dict[str, pa.Array], kept: pa.ChunkedArray, lines: int
) -> dict[str, int]:
    """Per unknown field, how many kept (valid) rows carry it; extras are line indices."""
    if not extras:
        return {}
    mask = np.zeros(lines, dtype=bool)
    mask[kept.to_numpy()] = True
    counts: dict[str, int] = {}
    for name in sorted(extras):
        parts = extras[name]
        for part in parts if isinstance(parts, list) else [parts]:
            n = int(mask[part.to_numpy()].sum())
            if n:
                count_unknown(counts, name, n)
    return counts


def _split_lines(body: bytes) -> pa.Array:
    """The pieces str.split("\\n") gives, each still ending in its LF; zero-copy."""
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    offsets = np.concatenate(([0], newlines + 1, [len(body)])).astype(np.int64)
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(body)
    )


def _safe_for_arrow(trimmed: pa.Array) -> pa.Array:
    """Lines Arrow reads exactly as json.loads does, if it reads them at all."""
    checks = [
        pc.starts_with(trimmed, "{"),  # a top-level null crashes Arrow's reader
        pc.ends_with(trimmed, "}"),
        # Arrow ends a row at a bare CR (RE2 finds a literal faster than match_substring).
        pc.invert(pc.match_substring_regex(trimmed, r"\r")),
        pc.invert(pc.match_substring_regex(trimmed, _SECOND_VALUE)),
        _shallow(trimmed),
    ]
    out = checks[0]
    for check in checks[1:]:
        out = pc.and_(out, check)
    return out


def _shallow(trimmed: pa.Array) -> pa.Array:
    """Lines that cannot nest deeper than MAX_OPENING_BRACKETS (short ones cannot)."""
    long = pc.indices_nonzero(pc.greater(pc.binary_length(trimmed), SHORT_LINE_BYTES))
    if len(long) == 0:
        return pc.is_valid(trimmed)
    text = trimmed.take(long)
    opening = pc.add(pc.count_substring(text, "{"), pc.count_substring(text, "["))
    deep = long.filter(pc.greater(opening, MAX_OPENING_BRACKETS))
    mask = np.ones(len(trimmed), dtype=bool)
    mask[deep.to_numpy()] = False
    return pa.array(mask)


def _read_candidates(
    schema: pa.Schema, trimmed: pa.Array, indices: pa.Array
) -> tuple[pa.Table, list[pa.Array], dict[str, list[pa.Array]]]:
    """Arrow's reading of the candidate lines (strings, plus _index); indices it refused;
    per unknown field, the indices of the lines carrying it."""
    whole = _read_json(trimmed, schema)
    if whole is not None:
        extras = {name: [indices.take(rows)] for name, rows in whole[1].items()}
        return whole[0].append_column("_index", indices), [], extras
    tables, refused = [], []
    extras = {}
    for offset in range(0, len(trimmed), RETRY_CHUNK_LINES):
        chunk = _read_json(trimmed.slice(offset, RETRY_CHUNK_LINES), schema)
        chunk_indices = indices.slice(offset, RETRY_CHUNK_LINES)
        if chunk is None:
            refused.append(chunk_indices)
        else:
            tables.append(chunk[0].append_column("_index", chunk_indices))
            for name, rows in chunk[1].items():
                extras.setdefault(name, []).append(chunk_indices.take(rows))
    empty = schema.empty_table().append_column("_index", pa.array([], pa.uint64()))
    return pa.concat_tables([empty, *tables]), refused, extras


def _read_json(lines: pa.Array, schema: pa.Schema) -> tuple[pa.Table, dict[str, pa.Array]] | None:
    if len(lines) == 0:
        return schema.empty_table(), {}
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines),
        pa.scalar("\n", pa.large_string()),
    )
    return _read_json_buffer(joined[0].as_buffer(), schema, len(lines))


def _read_json_buffer(
    buffer: pa.Buffer, schema: pa.Schema, lines: int
) -> tuple[pa.Table, dict[str, pa.Array]] | None:
    """The spec's fields as strings, and per unknown field the rows holding a non-null value.

    Unknown fields are inferred, not ignored, so that drift is seen at Arrow's speed; one
    whose type changes between rows makes Arrow refuse, and those lines go row by row.
    """
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        table = pj.read_json(pa.BufferReader(buffer), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a number where a string was declared, a duplicate key, malformed JSON...
    # One row per candidate line, or some line held something other than one object.
    if table.num_rows != lines:
        return None
    known = set(schema.names)
    extras = {
        name: pc.indices_nonzero(pc.is_valid(table.column(i)))
        for i, name in enumerate(table.column_names)
        if name not in known
    }
    return table.select(schema.names), extras


def _validate(
    spec: DatasetSpec, raw: pa.Table, first_line: int, *, start: date, now: datetime
) -> tuple[pa.Array, pa.Table]:
    """Which rows every field accepts exactly as the row-level validator would; typed rows."""
    ok = pc.is_valid(raw.column("_index").combine_chunks())
    columns: dict[str, pa.Array] = {}
    for f in spec.fields:
        text = raw.column(f.name).combine_chunks()
        value, accepted = _typed(f, text)
        present = pc.is_valid(text)
        if f.null_literals:
            present = pc.and_(present, pc.invert(pc.is_in(text, pa.array(f.null_literals))))
        if f.required:
            field_ok = pc.and_kleene(present, accepted)
        else:
            field_ok = pc.or_kleene(pc.is_null(text), accepted)
        ok = pc.and_(ok, pc.fill_null(field_ok, False))
        columns[f.name] = value
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
            "dt": pc.cast(event_date, pa.string()),
            "_source_line": pc.cast(pc.add(raw.column("_index"), first_line), pa.int32()),
            "_index": raw.column("_index"),
        }
    )
    return ok, typed


def _typed(f: Field, text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The field's typed values (null where not accepted) and which values are accepted."""
    target = ARROW_TYPES[f.athena_type]
    if f.athena_type == "string":
        accepted = pc.is_valid(text)
        if f.allowed is not None:
            accepted = pc.is_in(text, pa.array(f.allowed))
        return text, accepted
    if f.athena_type in INTEGER_RANGES:
        try:
            # Usually every value is an integer: cast at once, keep exact round trips only
            # ("+1", "007" and "-0" go row by row).
            numbers = pc.cast(text, pa.int64())
            accepted = pc.equal(pc.cast(numbers, pa.string()), text)
        except pa.ArrowInvalid:
            accepted = pc.match_substring_regex(text, _INTEGER_TEXT)
            numbers = pc.cast(pc.if_else(accepted, text, None), pa.int64())
        low, high = INTEGER_RANGES[f.athena_type]
        accepted = pc.and_(
            accepted, pc.and_(pc.greater_equal(numbers, low), pc.less_equal(numbers, high))
        )
        return pc.cast(pc.if_else(accepted, numbers, None), target), accepted
    fmt = "%Y-%m-%d" if f.athena_type == "date" else f.timestamp_format or ""
    shape = _time_pattern(f)
    assert shape is not None
    accepted = pc.match_substring_regex(text, shape)
    candidates = pc.if_else(accepted, text, None)
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


def _time_pattern(f: Field) -> str | None:
    """The regex a canonical value of the field matches; None if Arrow cannot check it."""
    if len(f.path) != 1 or f.pattern is not None:
        return None
    if f.athena_type == "string" or f.athena_type in INTEGER_RANGES:
        return ""
    if f.athena_type == "date":
        return _DATE_TEXT
    if f.athena_type != "timestamp" or not f.timestamp_format or "%" not in f.timestamp_format:
        return None  # epoch millis, ISO 8601: the row-level path decides
    pieces = re.split(r"(%.)", f.timestamp_format)
    out = []
    for piece in pieces:
        if piece.startswith("%"):
            if piece not in _TIME_DIRECTIVES:
                return None  # %b, %f, %z...: the row-level path decides
            out.append(_TIME_DIRECTIVES[piece])
        else:
            out.append(re.escape(piece))
    return "^" + "".join(out) + "$"


def _from_rows(spec: DatasetSpec, parsed: ParsedFile) -> ParsedTable:
    table = pa.Table.from_pylist(parsed.records, schema=parsed_table_schema(spec))
    return ParsedTable(
        parsed.source_key, table, parsed.rejections, parsed.blank_lines, parsed.unknown_fields
    )
