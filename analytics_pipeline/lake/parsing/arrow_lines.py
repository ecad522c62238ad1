"""Which lines of an NDJSON block Arrow's JSON reader reads exactly as json.loads does, and
its reading of them: the guards that keep Arrow's leniency out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from analytics_pipeline.datasets.spec import INTEGER_RANGES, DatasetSpec
from analytics_pipeline.lake.parsing.arrow_validation import (
    parsed_table_schema,
    validate_in_arrow,
)

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


@dataclass
class ArrowLines:
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


def read_lines_in_arrow(
    spec: DatasetSpec, body: bytes, first_line: int, *, start: date, now: datetime
) -> ArrowLines:
    """The block's lines Arrow reads exactly as the row-level path would, and accepts."""
    newlines = _newlines(body)
    lines = split_lines(body, newlines)
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
            return ArrowLines(lines, blank, rows, {})
    valid, fast = validate_in_arrow(spec, fast, first_line, start=start, now=now)
    return ArrowLines(lines, blank, fast if pc.all(valid).as_py() else fast.filter(valid), extras)


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


def split_lines(body: bytes, newlines: np.ndarray | None = None) -> pa.Array:
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
        _not_too_deep(trimmed),
    ]
    out = checks[0]
    for check in checks[1:]:
        out = pc.and_(out, check)
    return out


def _not_too_deep(trimmed: pa.Array) -> pa.Array:
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
