"""The Arrow fast path gives exactly what the row-level path gives, and uses it only for misfits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import DatasetSpec, dataset
from analytics_pipeline.datasets.spec import Field, TableSpec
from analytics_pipeline.lake.parsing import arrow_lines, arrow_parsing, arrow_validation
from analytics_pipeline.lake.parsing.arrow_parsing import (
    ParsedTable,
    parse_landing_table,
    supports_fast_path,
)
from analytics_pipeline.lake.parsing.records import ParsedFile, parse_landing_file
from analytics_pipeline.lake.staging import stage_landing_files, staged_schema
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import drop, iot_reading, quarantine_lines

START = date(2020, 1, 1)
NOW = datetime(2024, 6, 1, 12)
IOT = dataset("iot_sensor_data")
READING = iot_reading()


@pytest.fixture(autouse=True, scope="module")
def fast_path_for_small_files() -> Iterator[None]:
    # Small examples must take the Arrow path too, and its retry in chunks.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(arrow_parsing, "FAST_PATH_MIN_BYTES", 0)
        mp.setattr(arrow_lines, "RETRY_CHUNK_LINES", 3)
        mp.setattr(arrow_lines, "NEWLINE_SCAN_BYTES", 5)  # LFs found across many pieces
        yield


def fast(data: bytes) -> ParsedTable:
    return parse_landing_table(IOT, "k.ndjson", data, start=START, now=NOW)


def rows(data: bytes) -> ParsedFile:
    return parse_landing_file(IOT, "k.ndjson", data, start=START, now=NOW)


def compact(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


# Values the row-level validator and Arrow's reader or casts disagree about, or nearly do.
TRICKY_VALUES: list[Any] = [
    7, 7.0, 7e0, True, None, [], {}, "", " 7", "7 ", "+7", "-7", "007", "\u0661\u0662",
    "99999", "-32768", "32768", "12345678901234567890", "7.0", "1e3", "null", "n/a",
]  # fmt: skip
TRICKY_TIMES: list[Any] = [
    "2024-05-01 10:00:00", "2024-02-30 10:00:00", "2024-02-29 23:59:59", "2023-02-29 00:00:00",
    "2024-05-01 24:00:00", "2024-05-01 23:60:00", "2024-05-01 23:59:60", "2024-5-1 1:2:3",
    "2024-05-01T10:00:00", "2024-05-01 10:00:00 ", "2019-12-31 23:59:59", "2024-06-02 23:59:59",
    "2024-06-03 00:00:00", "0999-01-01 00:00:00", 1714557600, None,
]  # fmt: skip
RAW_LINES = [
    "",
    " ",
    "\t",
    "\r",
    "null",
    "[]",
    "5",
    '"s"',
    "{",
    "}",
    "{}",
    "nul",
    "{,}",
    compact(READING) + " " + compact(READING),
    compact(READING) + "\r" + compact(READING),
    compact(READING) + "x",
    compact(READING)[:-1] + ',"deviceid":"8"}',  # duplicate key: json.loads keeps the last
    compact(READING)[:-1] + ',"dev\\u0069ceid":"8"}',  # the same, spelt with an escape
    compact(READING)[:-1] + ',"x":NaN}',
    compact(READING)[:-1] + ',"x":1e999}',
    compact(READING)[:-1] + ',"x":' + "[" * 40 + "]" * 40 + "}",
    compact(READING)[:-1] + ',"x":"' + "{" * 600 + '"}',
    compact(READING)[:-1] + ',"x":"\\ud800"}',
    compact(READING)[:-1] + ',"x":"a}b"}',
    compact(READING)[:-1] + ",}",
    compact(READING).replace('"7"', '"\\u0037"'),
    compact(READING).replace(":", ": \r"),
    compact(READING).replace('"21"', '"2\x01"'),
]


@st.composite
def ndjson_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["good", "good", "value", "time", "missing", "raw", "extra"]))
    obj: dict[str, Any] = dict(READING)
    obj["deviceid"] = str(draw(st.integers(-5, 2**31 + 5)))
    if kind == "value":
        obj[draw(st.sampled_from(sorted(READING)))] = draw(st.sampled_from(TRICKY_VALUES))
    elif kind == "time":
        obj["datetime"] = draw(st.sampled_from(TRICKY_TIMES))
    elif kind == "missing":
        del obj[draw(st.sampled_from(sorted(READING)))]
    elif kind == "raw":
        return draw(st.sampled_from(RAW_LINES))
    elif kind == "extra":
        obj[draw(st.text(max_size=3))] = draw(st.one_of(st.text(max_size=5), st.integers()))
    pad = draw(st.sampled_from(["", " ", "\t", "\r"]))
    spaced = draw(st.booleans())
    return pad + (json.dumps(obj) if spaced else compact(obj)) + pad


@st.composite
def ndjson_file(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(ndjson_line(), min_size=1, max_size=12))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8", errors="surrogatepass")


@given(ndjson_file())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fast_path_gives_exactly_the_row_level_records_and_rejections(data: bytes) -> None:
    expected = rows(data)
    got = fast(data)
    assert got.rejections == expected.rejections
    assert got.table.to_pylist() == expected.records
    assert got.blank_lines == expected.blank_lines
    assert got.unknown_fields == expected.unknown_fields


def test_row_level_path_parses_only_the_lines_arrow_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    row_level = arrow_parsing.parse_ndjson_line

    def counted(parsed: ParsedFile, spec: Any, number: int, line: str, **kw: Any) -> None:
        calls.append(number)
        row_level(parsed, spec, number, line, **kw)

    monkeypatch.setattr(arrow_parsing, "parse_ndjson_line", counted)
    lines = [compact(READING)] * 500
    lines[249] = compact({**READING, "temperature": "n/a"})
    got = fast(("\n".join(lines) + "\n").encode())
    assert calls == [250]
    assert got.table.num_rows == 499
    assert [r.line for r in got.rejections] == [250]


def test_file_that_is_not_utf8_is_one_whole_file_rejection_as_row_level() -> None:
    data = (compact(READING) + "\n").encode() * 10 + b"\xff\xfe\n"
    got = fast(data)
    assert got.table.num_rows == 0
    assert got.rejections == rows(data).rejections
    assert got.rejections[0].line is None


def test_fast_path_applies_to_flat_ndjson_with_checkable_types_only() -> None:
    assert supports_fast_path(IOT)
    assert not supports_fast_path(dataset("products"))  # one object per file
    assert not supports_fast_path(dataset("app_events"))  # nested, epoch millis
    assert not supports_fast_path(dataset("web_requests"))  # ISO 8601 timestamps


def test_staging_a_big_file_writes_arrow_rows_in_the_staged_schema(
    lake_dir: Path, store: LocalLakeStore
) -> None:
    lines = [
        compact({**READING, "datetime": f"2024-05-0{1 + i % 2} 10:{i % 60:02d}:00"})
        for i in range(2000)
    ]
    lines[10] = compact({**READING, "humidity": "wet"})
    drop(lake_dir, "iot_sensor_data", "big.ndjson", "\r\n".join(lines) + "\r\n")
    report = stage_landing_files(
        store, IOT, ["big.ndjson"], start=START, now=NOW, max_file_bytes=1 << 24
    )
    assert (report.records, report.staged, report.rejected) == (2000, 1999, 1)
    assert dict(report.staged_rows_by_dt) == {"2024-05-01": 999, "2024-05-02": 1000}
    tables = [pq.read_table(lake_dir / p) for p in report.staged_paths]
    assert all(t.schema.remove_metadata().equals(staged_schema(IOT)) for t in tables)
    lines_staged = sorted(n for t in tables for n in t.column("_source_line").to_pylist())
    assert lines_staged == [n for n in range(1, 2001) if n != 11]
    [rejected] = quarantine_lines(lake_dir, "iot_sensor_data")
    assert rejected["line"] == 11
    assert rejected["reason"] == "wrong type in field humidity: expected smallint, got string 'wet'"


def test_unknown_fields_are_found_in_what_arrow_read() -> None:
    lines = [compact({**READING, "colour": "red", "meta": {"a": 1}})] * 300
    lines += [compact({**READING, "colour": None})] * 100
    lines += [compact({**READING, "temperature": "hot", "colour": "x"})] * 10  # rejected
    got = fast(("\n".join(lines) + "\n").encode())
    assert got.table.num_rows == 400
    assert got.unknown_fields == {"colour": 300, "meta": 300}
    assert got.unknown_fields == rows(("\n".join(lines) + "\n").encode()).unknown_fields


def test_an_unknown_field_whose_type_changes_is_still_counted_exactly() -> None:
    # Arrow cannot infer one type for "colour": those lines go row by row, none is lost.
    lines = [compact({**READING, "colour": 12})] * 200 + [compact({**READING, "colour": "red"})]
    data = ("\n".join(lines) + "\n").encode()
    got = fast(data)
    assert got.table.num_rows == 201
    assert got.unknown_fields == {"colour": 201}
    assert got.table.to_pylist() == rows(data).records


def test_a_known_field_with_a_changed_type_is_quarantined_by_the_fast_path() -> None:
    lines = [compact(READING)] * 300 + [compact({**READING, "datetime": 1714557600})]
    got = fast(("\n".join(lines) + "\n").encode())
    assert got.table.num_rows == 300
    assert [(r.line, r.reason) for r in got.rejections] == [
        (301, "wrong type in field datetime: expected timestamp, got number 1714557600")
    ]


# Integer texts whose canonical form is one byte shorter or the same length, or that only
# Arrow's cast would take (hex, a sign, 19 digits, int64's extremes).
INTEGER_TEXTS = [
    "0", "-0", "00", "07", "-07", "10", "-10", "+10", "0x10", "0X1F", "1_000", "1,000",
    "2147483647", "2147483648", "-2147483648", "-2147483649", "9223372036854775807",
    "-9223372036854775808", "99999999999999999999", "1000000000", "0x3B9ACA00", "-", "",
]  # fmt: skip
TIME_TEXTS = [*(t for t in TRICKY_TIMES if isinstance(t, str)), "2024-05-01 10:00:0a",
              "2024-05-01 10:00:00.5", "2024/05/01 10:00:00", "2024-05-01 10:00", None]  # fmt: skip
# Lines that start with '{' and end with '}' but are not one plain object.
PLAIN_LOOKING = [
    compact(READING) + compact(READING),
    compact(READING) + " " + compact(READING),
    compact(READING) + '\t{"deviceid":"8"}',
    compact(READING)[:-1] + ',"x":"a}b"}',
    compact(READING)[:-1] + ',"x":' + "[" * 40 + "]" * 40 + "}",
    compact(READING)[:-1] + ',"x":"' + "{" * 600 + '"}',
    "{}",
    "{,}",
    "{" + compact(READING),
]


@st.composite
def plain_ndjson_file(draw: st.DrawFn) -> bytes:
    """Files the whole-body checks see first: compact lines, LF only, no blank line."""
    lines = []
    for _ in range(draw(st.integers(1, 10))):
        obj: dict[str, Any] = dict(READING)
        kind = draw(st.sampled_from(["good", "good", "integer", "number", "time", "raw"]))
        if kind == "integer":
            obj[draw(st.sampled_from(["deviceid", "humidity"]))] = draw(
                st.sampled_from(INTEGER_TEXTS)
            )
        elif kind == "number":
            obj["deviceid"] = draw(st.integers(-(2**63), 2**63 - 1))
        elif kind == "time":
            obj["datetime"] = draw(st.sampled_from(TIME_TEXTS))
        elif kind == "raw":
            lines.append(draw(st.sampled_from(PLAIN_LOOKING)))
            continue
        lines.append(compact(obj))
    return ("\n".join(lines) + draw(st.sampled_from(["", "\n"]))).encode()


@given(plain_ndjson_file())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_whole_body_checks_and_vectorised_validation_match_the_row_level_path(
    data: bytes,
) -> None:
    expected = rows(data)
    got = fast(data)
    assert got.rejections == expected.rejections
    assert got.table.to_pylist() == expected.records
    assert got.unknown_fields == expected.unknown_fields


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n",
        b'{"a":1}\n\n{"a":1}\n',  # a blank line
        b'{"a":1}\n {"a":1}\n',  # leading whitespace
        b'{"a":1} \n{"a":1}\n',  # trailing whitespace
        b'{"a":1}\r\n{"a":1}\r\n',  # CR
        b'{"a":1}{"a":2}\n',  # a second value
        b'{"a":1} {"a":2}\n',
        b'{"a":"}x"}\n',  # looks like one: refused, the per-line guards decide
        b"[1]\n",
        b"null\n",
        b'{"a":' + b"[" * 40 + b"]" * 40 + b',"b":"' + b"x" * 600 + b'"}\n',  # deep and long
    ],
)
def test_whole_body_checks_refuse_every_body_that_is_not_plain_objects(body: bytes) -> None:
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    assert arrow_lines._plain_object_lines(body, newlines) is None


@pytest.mark.parametrize(
    ("body", "lines"),
    [
        (b'{"a":1}', 1),
        (b'{"a":1}\n', 1),
        (b'{"a":1}\n{"b":[1,{"c":2}]}', 2),
        (b'{"a":{"b":1}, "c" : [ ]}\n' * 3, 3),
        (b'{"a":"' + b"x" * 600 + b'"}\n', 1),  # long, but not deep
    ],
)
def test_whole_body_checks_count_the_lines_of_plain_objects(body: bytes, lines: int) -> None:
    newlines = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n"))
    assert arrow_lines._plain_object_lines(body, newlines) == lines


def test_integer_texts_are_canonical_exactly_when_they_round_trip() -> None:
    texts = pa.array(["0", "-0", "007", "10", "-10", "9223372036854775807",
                      "-9223372036854775808", "1000000000", None])  # fmt: skip
    numbers = pc.cast(texts, pa.int64())
    got = arrow_validation._canonical_integers(texts, numbers).to_pylist()
    expected = pc.equal(pc.cast(numbers, pa.string()), texts).to_pylist()
    assert [g for g, e in zip(got, expected, strict=True) if e is not None] == [
        e for e in expected if e is not None
    ]
    assert got[:4] == [True, False, False, True]


# --- routing: a value no table takes is refused by Arrow and worded by the row-level path ---

ROUTED = DatasetSpec(
    name="routed_events",
    description="A flat dataset whose tables split its records by kind.",
    layout="ndjson",
    fields=(
        Field("kind", "string", null_literals=("null",)),
        Field("n", "int"),
        Field("datetime", "timestamp", timestamp_format="%Y-%m-%d %H:%M:%S"),
    ),
    event_time_field="datetime",
    tables=(
        TableSpec("firsts", ("kind", "n", "datetime"), where_in=("kind", ("A", "a2"))),
        TableSpec("seconds", ("kind", "n"), where_in=("kind", ("B",))),
    ),
)
KINDS: list[Any] = ["A", "a2", "B", "C", "a", "", "null", None, 7, "PageView"]


@st.composite
def routed_file(draw: st.DrawFn) -> bytes:
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        obj: dict[str, Any] = {"kind": "A", "n": "1", "datetime": "2024-05-01 10:00:00"}
        obj["kind"] = draw(st.sampled_from(KINDS))
        if draw(st.booleans()):
            obj["n"] = draw(st.sampled_from(["2", "x", "-0", 3]))
        if draw(st.integers(0, 5)) == 0:
            del obj[draw(st.sampled_from(sorted(obj)))]
        lines.append(compact(obj))
    return ("\n".join(lines) + "\n").encode()


@given(routed_file())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fast_path_routes_and_words_unrouted_records_as_the_row_level_path(data: bytes) -> None:
    expected = parse_landing_file(ROUTED, "k.ndjson", data, start=START, now=NOW)
    got = parse_landing_table(ROUTED, "k.ndjson", data, start=START, now=NOW)
    assert got.rejections == expected.rejections  # `unrouted` flags included
    assert got.table.to_pylist() == expected.records


def test_an_unrouted_record_is_refused_by_arrow_and_quarantined_as_unrouted() -> None:
    assert supports_fast_path(ROUTED)
    lines = [{"kind": kind, "n": "1", "datetime": "2024-05-01 10:00:00"} for kind in "ABC"]
    got = parse_landing_table(
        ROUTED, "k.ndjson", "\n".join(map(compact, lines)).encode(), start=START, now=NOW
    )
    assert [r["kind"] for r in got.table.to_pylist()] == ["A", "B"]
    (rejection,) = got.rejections
    assert (rejection.line, rejection.reason, rejection.unrouted) == (
        3,
        "kind 'C' is not routed to any table",
        True,
    )
