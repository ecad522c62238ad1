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

# pyarrow imports pandas (a third of a second) at the first compute call given a Python
# scalar: import it with this module, not in the middle of the first parse, where both parse
# threads would wait on the import lock.
import pandas  # noqa: F401
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from analytics_pipeline.datasets.spec import ARROW_TYPES, INTEGER_RANGES, DatasetSpec, Field
from analytics_pipeline.lake.parsing import (
    ParsedFile,
    Rejection,
    parse_landing_file,
    parse_ndjson_line,
    parse_ndjson_text,
)
from analytics_pipeline.lake.sql_text import UTF8_BOM
from analytics_pipeline.lake.validation import count_unknown

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
# Line ends are looked for this many bytes at a time (see _newlines).
NEWLINE_SCAN_BYTES = 1 << 20
_JSON_WHITESPACE = " \t\r\n"
# A '}' followed by something that cannot continue the object: maybe a second value on the line.
_SECOND_VALUE = r"\}[ \t]*[^ \t,}\]]"
# The same in a whole block, where the '}' that ends a line is followed by its LF.
_SECOND_VALUE_IN_BODY = r"\}[ \t]*[^ \t,}\]\n]"
# Canonical integers only; "+1", " 1", "١" and 19+ digits are left to the row-level path.
_INTEGER_TEXT = r"^-?[0-9]{1,18}$"
# The strptime directives a canonical value writes as a fixed number of digits.
_TIME_DIGITS = {"%Y": 4, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
_ISO_SHAPES = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")


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
    return spec.layout == "ndjson" and _arrow_checkable(spec)


def supports_document_batches(spec: DatasetSpec) -> bool:
    """One-object files of flat objects whose fields Arrow can check (products, say)."""
    return spec.layout == "json" and _arrow_checkable(spec)


def _arrow_checkable(spec: DatasetSpec) -> bool:
    return all(_time_pattern(f) is not None for f in spec.fields)


@dataclass
class ParsedDocuments:
    """One-object files parsed together: Arrow's rows for the files it took, one each, in
    their order; the row-level parse of each of the others."""

    rows: pa.Table  # parsed_table_schema (every _source_line 1), plus _document: its position
    others: dict[int, ParsedFile]  # by position
    unknown_fields: dict[int, dict[str, int]]  # by position, for files in rows


def parse_documents(
    spec: DatasetSpec, documents: list[tuple[str, bytes]], *, start: date, now: datetime
) -> ParsedDocuments:
    """What parse_landing_file gives for each (key, bytes), the usual files read in Arrow.

    Per-file json.loads and validation cost more than reading the file. Documents on one line
    are joined into NDJSON, one line each, and read as a block; a file Arrow does not take
    (pretty-printed, a BOM, not UTF-8, blank, invalid...) is parsed alone, so its records and
    quarantine reasons are parse_landing_file's own.
    """
    one_line = [i for i, (_, data) in enumerate(documents) if b"\n" not in data]
    body = b"\n".join(documents[i][1] for i in one_line)
    if not _is_utf8(body):
        one_line = [i for i in one_line if _is_utf8(documents[i][1])]
        body = b"\n".join(documents[i][1] for i in one_line)
    rows = parsed_table_schema(spec).empty_table()
    positions = np.array([], dtype=np.int64)
    unknown: dict[int, dict[str, int]] = {}
    if supports_document_batches(spec) and len(body) >= FAST_PATH_MIN_BYTES:
        read = _arrow_lines(spec, body, 1, start=start, now=now)
        line_document = np.array(one_line, dtype=np.int64)
        positions = line_document[read.rows.column("_index").to_numpy()]
        rows = read.rows.drop_columns(["_index"])
        rows = rows.set_column(
            rows.schema.get_field_index("_source_line"),
            "_source_line",
            pa.repeat(pa.scalar(1, pa.int32()), len(rows)),
        )
        taken = read.taken()
        for name in sorted(read.extras):
            for part in read.extras[name]:
                for line in part.to_numpy()[taken[part.to_numpy()]].tolist():
                    count_unknown(unknown.setdefault(one_line[line], {}), name)
    rows = rows.append_column("_document", pa.array(positions, pa.int64()))
    in_rows = set(positions.tolist())
    others = {
        i: parse_landing_file(spec, key, data, start=start, now=now)
        for i, (key, data) in enumerate(documents)
        if i not in in_rows
    }
    return ParsedDocuments(rows, others, unknown)


def _is_utf8(data: bytes) -> bool:
    if data.isascii():  # no copy made; decoding 70 MB makes one
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_landing_table(
    spec: DatasetSpec, source_key: str, data: bytes, *, start: date, now: datetime
) -> ParsedTable:
    """What parse_landing_file gives, as one Arrow table; fast for big NDJSON files."""
    if not supports_fast_path(spec) or len(data) < FAST_PATH_MIN_BYTES:
        return _from_rows(spec, parse_landing_file(spec, source_key, data, start=start, now=now))
    body = data.removeprefix(UTF8_BOM)
    if not _is_utf8(body):
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
    or one block of a streamed one. Blank lines are counted, never rejected; a final LF ends
    the last line. Small blocks, and datasets Arrow cannot check, go row by row."""
    if not supports_fast_path(spec) or len(body) < FAST_PATH_MIN_BYTES:
        row_level = ParsedFile(source_key)
        parse_ndjson_text(row_level, spec, body.decode("utf-8"), first_line, start=start, now=now)
        return _from_rows(spec, row_level)
    read = _arrow_lines(spec, body, first_line, start=start, now=now)
    row_level = ParsedFile(source_key)
    for index in read.others().tolist():
        if read.blank[index]:
            continue
        line = read.lines[index].as_py().removesuffix("\n")
        parse_ndjson_line(row_level, spec, index + first_line, line, start=start, now=now)
    unknown = _unknown_counts(read.extras, read.rows.column("_index"), len(read.lines))
    for name, n in row_level.unknown_fields.items():
        count_unknown(unknown, name, n)
    table = _from_rows(spec, row_level).table
    table = pa.concat_tables([read.rows.drop_columns(["_index"]), table])
    table = table.sort_by("_source_line") if row_level.records else table
    blank_lines = int(read.blank.sum()) - (1 if body.endswith(b"\n") else 0)
    return ParsedTable(source_key, table, row_level.rejections, blank_lines, unknown)


@dataclass
class _ArrowLines:
    """What Arrow made of a block's lines: the rows it read and every field accepted."""

    lines: pa.Array  # the block split on LF, each piece with its LF
    blank: np.ndarray  # per line: JSON whitespace only
    rows: pa.Table  # typed, with dt, _source_line and _index (the line's position)
    extras: dict[str, list[pa.Array]]  # per unknown field, the lines carrying it

    def taken(self) -> np.ndarray:
        """Per line: whether it is in rows."""
        taken = np.zeros(len(self.lines), dtype=bool)
        taken[self.rows.column("_index").to_numpy()] = True
        return taken

    def others(self) -> np.ndarray:
        """Positions of the lines not in rows (blank, misfit or invalid), in order."""
        return np.flatnonzero(~self.taken())


def _arrow_lines(
    spec: DatasetSpec, body: bytes, first_line: int, *, start: date, now: datetime
) -> _ArrowLines:
    """The block's lines Arrow reads exactly as the row-level path would, and accepts."""
    newlines = _newlines(body)
    lines = _split_lines(body, newlines)
    plain = _plain_object_lines(body, newlines)
    # The usual file, one plain object a line: Arrow reads the bytes as they are, with no
    # copy of the lines and no per-line guard (the whole-body checks stand for them).
    read = None if plain is None else _read_json_buffer(pa.py_buffer(body), spec, plain)
    if plain is not None and read is not None:
        blank = np.zeros(len(lines), dtype=bool)
        blank[plain:] = True  # the empty piece after a final LF
        indices = pa.array(np.arange(plain, dtype=np.uint64))
        fast = read[0].append_column("_index", indices)
        extras = {name: [indices.take(rows)] for name, rows in read[1].items()}
    else:
        blank, fast, extras = _guarded_lines(spec, body, lines, read_whole=plain is None)
        if fast is None:
            rows = parsed_table_schema(spec).empty_table()
            rows = rows.append_column("_index", pa.array([], pa.uint64()))
            return _ArrowLines(lines, blank, rows, {})
    valid, fast = _validate(spec, fast, first_line, start=start, now=now)
    return _ArrowLines(lines, blank, fast if pc.all(valid).as_py() else fast.filter(valid), extras)


def _newlines(body: bytes) -> np.ndarray:
    """Positions of the LFs, found a MiB at a time: a mask of the whole block would be
    one byte per byte of fresh memory (page faults cost more than the search)."""
    raw = np.frombuffer(body, dtype=np.uint8)
    found = [
        np.flatnonzero(raw[at : at + NEWLINE_SCAN_BYTES] == ord("\n")) + at
        for at in range(0, len(raw), NEWLINE_SCAN_BYTES)
    ]
    return np.concatenate(found) if found else np.array([], dtype=np.int64)


def _plain_object_lines(body: bytes, newlines: np.ndarray) -> int | None:
    """How many lines the block has, if each is one plain object Arrow reads as json.loads
    does: no blank line, no CR, no whitespace around it, nothing after its closing brace,
    and not deeply nested. None if any line might not be."""
    if not body or b"\r" in body:
        return None
    count = len(newlines) if body.endswith(b"\n") else len(newlines) + 1
    ends = np.append(newlines, len(body))[:count]
    starts = np.concatenate(([0], ends[:-1] + 1))
    raw = np.frombuffer(body, dtype=np.uint8)
    if not ((raw[starts] == ord("{")).all() and (raw[ends - 1] == ord("}")).all()):
        return None  # an empty line too: its start is a LF
    whole = pa.LargeStringArray.from_buffers(
        1, pa.py_buffer(np.array([0, len(body)], dtype=np.int64)), pa.py_buffer(body)
    )
    # Lines start with '{' and end with '}', so a '}' followed on its line by something that
    # cannot continue an object is the only way a second value can sit on a line.
    if pc.match_substring_regex(whole, _SECOND_VALUE_IN_BODY)[0].as_py():
        return None
    if (ends - starts).max() > SHORT_LINE_BYTES:
        opening = body.count(b"{") + body.count(b"[")
        if opening - count >= MAX_OPENING_BRACKETS:  # one line might nest too deep
            return None
    return count


def _guarded_lines(
    spec: DatasetSpec, body: bytes, lines: pa.Array, *, read_whole: bool
) -> tuple[np.ndarray, pa.Table | None, dict[str, list[pa.Array]]]:
    """Per line whether it is blank; Arrow's reading of the lines that pass the guards (None
    if every line is blank), with _index; per unknown field, the lines carrying it.
    read_whole=False: Arrow already refused the whole body, so go straight to the lines."""
    trimmed = pc.utf8_trim(lines, _JSON_WHITESPACE)
    blank = pc.equal(pc.binary_length(trimmed), 0)
    blank_mask = blank.to_numpy(zero_copy_only=False)
    if blank_mask.all():
        return blank_mask, None, {}
    candidate = pc.and_(pc.invert(blank), _safe_for_arrow(trimmed))
    indices = pc.indices_nonzero(candidate)
    if read_whole and len(indices) == len(lines) - int(blank_mask.sum()):
        # Every non-blank line a candidate: Arrow reads the bytes as they are (it skips
        # blank lines as json.loads's caller does), with no copy of the lines.
        read = _read_json_buffer(pa.py_buffer(body), spec, len(indices))
        if read is not None:
            extras = {name: [indices.take(rows)] for name, rows in read[1].items()}
            return blank_mask, read[0].append_column("_index", indices), extras
    fast, extras = _read_candidates(spec, trimmed.take(indices), indices)
    return blank_mask, fast, extras


def _unknown_counts(
    extras: dict[str, list[pa.Array]], kept: pa.ChunkedArray, lines: int
) -> dict[str, int]:
    """Per unknown field, how many kept (valid) rows carry it; extras are line indices."""
    if not extras:
        return {}
    mask = np.zeros(lines, dtype=bool)
    mask[kept.to_numpy()] = True
    counts: dict[str, int] = {}
    for name in sorted(extras):
        for part in extras[name]:
            n = int(mask[part.to_numpy()].sum())
            if n:
                count_unknown(counts, name, n)
    return counts


def _split_lines(body: bytes, newlines: np.ndarray | None = None) -> pa.Array:
    """The pieces str.split("\\n") gives, each still ending in its LF; zero-copy.
    newlines: the LFs' positions, if already found."""
    if newlines is None:
        newlines = _newlines(body)
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
    spec: DatasetSpec, trimmed: pa.Array, indices: pa.Array
) -> tuple[pa.Table, dict[str, list[pa.Array]]]:
    """Arrow's reading of the candidate lines it takes (spec fields as strings, plus _index),
    chunk by chunk when it refuses them all; per unknown field, the lines carrying it. Lines
    of a refused chunk are left out (the row-level path takes them)."""
    extras: dict[str, list[pa.Array]] = {}
    whole = _read_json(trimmed, spec)
    if whole is not None:
        extras = {name: [indices.take(rows)] for name, rows in whole[1].items()}
        return whole[0].append_column("_index", indices), extras
    tables = []
    for offset in range(0, len(trimmed), RETRY_CHUNK_LINES):
        chunk = _read_json(trimmed.slice(offset, RETRY_CHUNK_LINES), spec)
        if chunk is None:
            continue
        chunk_indices = indices.slice(offset, RETRY_CHUNK_LINES)
        tables.append(chunk[0].append_column("_index", chunk_indices))
        for name, rows in chunk[1].items():
            extras.setdefault(name, []).append(chunk_indices.take(rows))
    empty = _text_schema(spec).empty_table().append_column("_index", pa.array([], pa.uint64()))
    return pa.concat_tables([empty, *tables]), extras


def _read_json(lines: pa.Array, spec: DatasetSpec) -> tuple[pa.Table, dict[str, pa.Array]] | None:
    if len(lines) == 0:
        return _text_schema(spec).empty_table(), {}
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines),
        pa.scalar("\n", pa.large_string()),
    )
    return _read_json_buffer(joined[0].as_buffer(), spec, len(lines))


def _text_schema(spec: DatasetSpec) -> pa.Schema:
    return pa.schema([(f.name, pa.string()) for f in spec.fields])


def _read_json_buffer(
    buffer: pa.Buffer, spec: DatasetSpec, lines: int
) -> tuple[pa.Table, dict[str, pa.Array]] | None:
    """The spec's fields as text, and per unknown field the rows holding a non-null value.

    Integer fields are left to Arrow's inference: producers write them as JSON numbers
    (products' id) or as strings (IoT's readings), and an explicit string type refuses
    numbers. Numbers come back as their canonical text, which the row-level path accepts
    as it accepts the number; a field inferred as anything else (a float, a boolean...)
    refuses the block. Unknown fields are inferred too, so that drift is seen at Arrow's
    speed; one whose type changes between rows makes Arrow refuse, and those lines go row
    by row.
    """
    declared = pa.schema(
        [(f.name, pa.string()) for f in spec.fields if f.athena_type not in INTEGER_RANGES]
    )
    options = pj.ParseOptions(explicit_schema=declared, unexpected_field_behavior="infer")
    try:
        table = pj.read_json(pa.BufferReader(buffer), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a number where a string was declared, a duplicate key, malformed JSON...
    # One row per candidate line, or some line held something other than one object.
    if table.num_rows != lines:
        return None
    columns = []
    for f in spec.fields:
        if f.name not in table.column_names:
            columns.append(pa.nulls(lines, pa.string()))  # in no row (inferred fields only)
            continue
        column = table.column(f.name)
        if column.type in (pa.int64(), pa.null()):
            column = column.cast(pa.string())
        elif column.type != pa.string():
            return None
        columns.append(column)
    known = {f.name for f in spec.fields}
    extras = {
        name: pc.indices_nonzero(pc.is_valid(table.column(i)))
        for i, name in enumerate(table.column_names)
        if name not in known
    }
    return pa.table(columns, names=[f.name for f in spec.fields]), extras


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
    shape = _time_pattern(f)
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


def _time_pattern(f: Field) -> str | None:
    """The regex a canonical value of the field matches; None if Arrow cannot check it."""
    if len(f.path) != 1 or f.pattern is not None:
        return None
    if f.athena_type == "string" or f.athena_type in INTEGER_RANGES:
        return ""
    template = _time_template(f)
    if template is None:
        return None
    return "^" + "".join("[0-9]" if c == "\0" else re.escape(c) for c in template) + "$"


def _from_rows(spec: DatasetSpec, parsed: ParsedFile) -> ParsedTable:
    table = pa.Table.from_pylist(parsed.records, schema=parsed_table_schema(spec))
    return ParsedTable(
        parsed.source_key, table, parsed.rejections, parsed.blank_lines, parsed.unknown_fields
    )
