"""parse_landing_file: landing bytes -> typed records + quarantine entries, never a crash."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import DATASETS, DatasetSpec, dataset
from analytics_pipeline.lake.parsing.records import ParsedFile, parse_landing_file
from analytics_pipeline_tests.lake_helpers import iot_reading, web_request

START = date(2020, 1, 1)
NOW = datetime(2024, 6, 1, 12, 0)
LATEST = date(2024, 6, 2)

PRODUCTS = dataset("products")
IOT = dataset("iot_sensor_data")
APP_EVENTS = dataset("app_events")
WEB = dataset("web_requests")
NDJSON_SPECS = [s for s in DATASETS if s.layout == "ndjson"]

PRODUCT = {"id": 1, "date": "2024-05-01", "product": "A"}
READING = iot_reading()
REQUEST = web_request()
VALID = {"products": PRODUCT, "iot_sensor_data": READING, "web_requests": REQUEST}
VALID["app_events"] = {
    "event_type": "SignUpEvent",
    "event_timestamp": 1714557600000,
    "attributes": {"email": "a@example.com"},
    "session": {"session_id": "s1"},
    "endpoint": {"EffectiveDate": "2024-05-01T10:00:00.000Z"},
}

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse(spec: DatasetSpec, data: bytes | str, key: str = "k.json") -> ParsedFile:
    raw = data.encode() if isinstance(data, str) else data
    return parse_landing_file(spec, key, raw, start=START, now=NOW)


def line(obj: object) -> str:
    return json.dumps(obj) + "\n"


def only_rejection(parsed: ParsedFile) -> dict[str, object]:
    assert parsed.records == []
    assert len(parsed.rejections) == 1
    return parsed.rejections[0].as_json()


# --- whole files ---------------------------------------------------------------------------


def test_valid_json_file_is_one_record_on_line_1() -> None:
    parsed = parse(PRODUCTS, json.dumps(PRODUCT))
    assert parsed.rejections == []
    assert parsed.records == [
        {"id": 1, "date": date(2024, 5, 1), "product": "A", "dt": "2024-05-01", "_source_line": 1}
    ]


def test_malformed_json_file_is_rejected_whole_with_line_none() -> None:
    data = '{"id": 1,'
    assert only_rejection(parse(PRODUCTS, data, key="p/1.json")) == {
        "source_key": "p/1.json",
        "line": None,
        "reason": "malformed JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 10 (char 9)",
        "raw": data,
    }


def test_malformed_json_file_raw_is_its_first_kib() -> None:
    data = "[" + "1," * 2000  # never closed
    rejection = only_rejection(parse(PRODUCTS, data))
    assert rejection["line"] is None
    assert rejection["raw"] == data[:1024]


def test_json_file_with_two_objects_is_malformed() -> None:
    first = json.dumps(PRODUCT)
    rejection = only_rejection(parse(PRODUCTS, first + first))
    assert rejection["reason"] == (
        f"malformed JSON: Extra data: line 1 column {len(first) + 1} (char {len(first)})"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ([PRODUCT], "array"),
        ("A", "string"),
        (42, "number"),
        (1.5, "number"),
        (None, "null"),
        (True, "boolean"),
    ],
)
def test_json_value_that_is_not_an_object_is_rejected(value: object, kind: str) -> None:
    rejection = only_rejection(parse(PRODUCTS, json.dumps(value)))
    assert rejection["reason"] == f"expected a JSON object, got {kind}"
    assert rejection["line"] == 1
    assert rejection["raw"] == json.dumps(value)


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.name)
def test_empty_file_is_one_whole_file_rejection(spec: DatasetSpec) -> None:
    assert only_rejection(parse(spec, b"", key="e.json")) == {
        "source_key": "e.json",
        "line": None,
        "reason": "empty file",
        "raw": "",
    }


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.name)
def test_whitespace_only_file_is_one_empty_file_rejection(spec: DatasetSpec) -> None:
    parsed = parse(spec, " \n\r\n\t\n")
    assert only_rejection(parsed) == {
        "source_key": "k.json",
        "line": None,
        "reason": "empty file",
        "raw": " \n\r\n\t\n",
    }
    assert parsed.blank_lines == 0


def test_file_of_only_a_bom_is_empty() -> None:
    assert only_rejection(parse(PRODUCTS, b"\xef\xbb\xbf"))["reason"] == "empty file"


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.name)
def test_non_utf8_file_is_rejected_whole_with_first_kib_as_raw(spec: DatasetSpec) -> None:
    data = (line(VALID[spec.name]) * 40).encode()
    data = data[:1500] + b"\xff" + data[1500:]  # one Latin-1 byte, well past the first KiB
    rejection = only_rejection(parse(spec, data))
    assert rejection["line"] is None
    assert rejection["reason"] == "not valid UTF-8: byte 0xff at offset 1500"
    assert rejection["raw"] == data[:1024].decode()


def test_latin1_file_names_the_first_bad_byte() -> None:
    data = '{"id": 1, "date": "2024-05-01", "product": "Café"}'.encode("latin-1")
    offset = data.index("é".encode("latin-1"))
    rejection = only_rejection(parse(PRODUCTS, data))
    assert rejection["reason"] == f"not valid UTF-8: byte 0xe9 at offset {offset}"
    assert rejection["raw"] == data.decode("utf-8", errors="replace")


def test_utf16_file_is_rejected_as_not_utf8() -> None:
    data = json.dumps(PRODUCT).encode("utf-16")
    assert only_rejection(parse(PRODUCTS, data))["reason"] == (
        "not valid UTF-8: byte 0xff at offset 0"
    )


def test_utf8_bom_is_accepted_in_a_json_file() -> None:
    parsed = parse(PRODUCTS, b"\xef\xbb\xbf" + json.dumps(PRODUCT).encode())
    assert parsed.rejections == []
    assert [r["id"] for r in parsed.records] == [1]


def test_utf8_bom_is_not_part_of_the_first_ndjson_line() -> None:
    bad = '{"deviceid": "x"}'
    parsed = parse(IOT, b"\xef\xbb\xbf" + (bad + "\n" + line(READING)).encode())
    assert [r.raw for r in parsed.rejections] == [bad]
    assert [r["_source_line"] for r in parsed.records] == [2]


# --- NDJSON lines -------------------------------------------------------------------------


def test_malformed_ndjson_line_rejects_that_line_only() -> None:
    data = line(READING) + '{"deviceid": "8",\n' + line(READING)
    parsed = parse(IOT, data)
    assert [r["_source_line"] for r in parsed.records] == [1, 3]
    assert [r.as_json() for r in parsed.rejections] == [
        {
            "source_key": "k.json",
            "line": 2,
            "reason": "malformed JSON at line 2: Expecting property name enclosed in double "
            "quotes: line 1 column 18 (char 17)",
            "raw": '{"deviceid": "8",',
        }
    ]


def test_ndjson_line_that_is_not_an_object_is_rejected_with_its_line() -> None:
    parsed = parse(WEB, line(REQUEST) + "[1, 2]\n" + '"text"\n' + "3\n" + "null\n")
    assert [(r.line, r.reason) for r in parsed.rejections] == [
        (2, "expected a JSON object, got array"),
        (3, "expected a JSON object, got string"),
        (4, "expected a JSON object, got number"),
        (5, "expected a JSON object, got null"),
    ]
    assert len(parsed.records) == 1


def test_rejected_ndjson_line_keeps_its_raw_text_exactly() -> None:
    bad = '  {"deviceid" :"abc",  "x": "é\\u00e9\\t"}  '
    parsed = parse(IOT, line(READING) + bad + "\n")
    assert parsed.rejections[0].raw == bad
    assert parsed.rejections[0].line == 2


def test_crlf_lines_parse_with_no_carriage_return_in_values() -> None:
    rows = [dict(REQUEST, request_id=f"r{i}") for i in range(3)]
    parsed = parse(WEB, "".join(json.dumps(r) + "\r\n" for r in rows))
    assert parsed.rejections == []
    assert [r["request_id"] for r in parsed.records] == ["r0", "r1", "r2"]
    assert all("\r" not in str(v) for r in parsed.records for v in r.values())
    assert parsed.blank_lines == 0


def test_crlf_rejected_line_raw_has_no_carriage_return() -> None:
    parsed = parse(WEB, line(REQUEST).replace("\n", "\r\n") + "oops\r\n")
    assert [(r.line, r.raw) for r in parsed.rejections] == [(2, "oops")]


def test_blank_lines_are_neither_records_nor_rejections_but_are_counted() -> None:
    data = "\n" + line(READING) + "\n   \n\t\r\n" + line(READING)
    parsed = parse(IOT, data)
    assert parsed.rejections == []
    assert [r["_source_line"] for r in parsed.records] == [2, 6]
    assert parsed.blank_lines == 4
    assert parsed.input_records == 2


def test_trailing_newline_is_not_a_blank_line() -> None:
    assert parse(IOT, line(READING)).blank_lines == 0
    assert parse(IOT, line(READING).rstrip("\n")).blank_lines == 0
    assert parse(IOT, line(READING) + "\n").blank_lines == 1


@pytest.mark.parametrize("char", ["\x1c", "\xa0", "\x0b", "\x0c", "\u2028", "\x85"])
def test_line_of_non_json_whitespace_is_rejected_not_dropped(char: str) -> None:
    parsed = parse(IOT, line(READING) + char + "\n" + line(READING))
    assert [(r.line, r.raw, r.reason) for r in parsed.rejections] == [
        (2, char, "malformed JSON at line 2: Expecting value: line 1 column 1 (char 0)")
    ]
    assert parsed.blank_lines == 0


def test_file_of_non_json_whitespace_is_malformed_not_empty() -> None:
    rejection = only_rejection(parse(PRODUCTS, "\xa0"))
    assert rejection["reason"] == "malformed JSON: Expecting value: line 1 column 1 (char 0)"


def test_record_keeps_its_source_line_and_dt() -> None:
    parsed = parse(IOT, "\n" + line(dict(READING, datetime="2023-02-03 04:05:06")))
    assert parsed.records[0]["_source_line"] == 2
    assert parsed.records[0]["dt"] == "2023-02-03"


# --- hostile input --------------------------------------------------------------------------


def test_deeply_nested_json_file_is_malformed_not_a_crash() -> None:
    rejection = only_rejection(parse(PRODUCTS, "[" * 100_000 + "]" * 100_000))
    assert rejection["reason"] == "malformed JSON: nested too deeply"
    assert rejection["raw"] == "[" * 1024


def test_deeply_nested_ndjson_line_is_rejected_alone() -> None:
    parsed = parse(IOT, line(READING) + "[" * 100_000 + "]" * 100_000 + "\n")
    assert [(r.line, r.reason) for r in parsed.rejections] == [
        (2, "malformed JSON at line 2: nested too deeply")
    ]
    assert len(parsed.records) == 1


def test_field_nested_just_under_the_recursion_limit_is_a_wrong_type() -> None:
    # Parsing succeeds at these depths; rendering the value for the reason must not recurse.
    for depth in range(400, 1010):
        text = json.dumps(dict(PRODUCT, id=0)).replace("0", "[" * depth + "]" * depth, 1)
        parsed = parse(PRODUCTS, text)
        assert parsed.records == []
        reason = parsed.rejections[0].reason
        assert reason.startswith("wrong type in field id: expected bigint, got array [[[") or (
            reason == "malformed JSON: nested too deeply"
        ), reason


def test_huge_integer_literal_is_malformed_json() -> None:
    rejection = only_rejection(parse(PRODUCTS, '{"id": ' + "1" + "0" * 5000 + "}"))
    assert rejection["line"] is None
    assert rejection["reason"].startswith("malformed JSON: Exceeds the limit (4300 digits)")


def test_big_integer_out_of_bigint_range_is_shown_truncated() -> None:
    value = 10**300
    rejection = only_rejection(parse(PRODUCTS, json.dumps(dict(PRODUCT, id=value))))
    assert rejection["reason"] == (
        f"value {str(value)[:77]}... in field id is out of range for bigint"
    )


@pytest.mark.parametrize(
    ("literal", "shown"),
    [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf"), ("1e400", "inf")],
)
def test_non_finite_number_is_a_wrong_type(literal: str, shown: str) -> None:
    text = json.dumps(dict(PRODUCT, id=0)).replace("0", literal, 1)
    assert only_rejection(parse(PRODUCTS, text))["reason"] == (
        f"wrong type in field id: expected bigint, got number {shown}"
    )


def test_non_finite_number_in_a_string_field_is_a_wrong_type() -> None:
    parsed = parse(WEB, json.dumps(REQUEST).replace('"/home"', "NaN") + "\n")
    assert (
        parsed.rejections[0].reason == "wrong type in field path: expected string, got number nan"
    )


def test_very_long_string_is_kept_whole_in_the_record() -> None:
    path = "/" + "x" * 1_000_000
    parsed = parse(WEB, line(dict(REQUEST, path=path)))
    assert parsed.records[0]["path"] == path


def test_very_long_bad_value_gives_a_short_reason_and_the_whole_raw_line() -> None:
    text = json.dumps(dict(PRODUCT, product="D" * 1_000_000))
    rejection = only_rejection(parse(PRODUCTS, text))
    assert rejection["reason"] == f"value '{'D' * 76}... in field product is not one of A, B, C"
    assert rejection["raw"] == text


def test_null_byte_inside_a_string_value_is_kept() -> None:
    parsed = parse(WEB, line(dict(REQUEST, path="/a\x00b")))
    assert parsed.records[0]["path"] == "/a\x00b"


def test_raw_null_byte_in_an_ndjson_line_is_malformed_and_preserved() -> None:
    bad = json.dumps(REQUEST) + "\x00"
    parsed = parse(WEB, line(REQUEST) + bad + "\n")
    assert [(r.line, r.raw) for r in parsed.rejections] == [(2, bad)]
    assert parsed.rejections[0].reason.startswith("malformed JSON at line 2: Extra data")


def test_lone_surrogate_escape_in_a_string_is_rejected() -> None:
    text = json.dumps(REQUEST).replace('"/home"', '"/a\\ud800"')
    parsed = parse(WEB, text + "\n")
    assert parsed.rejections[0].reason == (
        "invalid text in field path: unpaired surrogate U+D800 at character 2"
    )
    assert parsed.records == []


def test_surrogate_pair_escape_is_one_character() -> None:
    text = json.dumps(REQUEST).replace('"/home"', '"\\ud83d\\ude00"')
    assert parse(WEB, text).records[0]["path"] == "\U0001f600"


# --- properties ---------------------------------------------------------------------------

# Text near the surrogate block too: json.dumps escapes a lone one, json.loads brings it back.
json_text = st.text(max_size=20) | st.text(
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=3
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | json_text
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_record(draw: st.DrawFn, spec: DatasetSpec) -> str:
    """A valid record with a few fields replaced or removed: exercises every validation path."""
    obj = json.loads(json.dumps(VALID[spec.name]))
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(spec.fields))
        holder = obj
        for part in field.path[:-1]:
            if not isinstance(holder.get(part), dict):
                holder[part] = {}
            holder = holder[part]
        if draw(st.booleans()):
            holder.pop(field.path[-1], None)
        else:
            holder[field.path[-1]] = draw(json_values)
    return json.dumps(obj, allow_nan=True)


def ndjson_line(spec: DatasetSpec) -> st.SearchStrategy[str]:
    return st.one_of(
        mutated_record(spec),
        json_values.map(json.dumps),
        st.sampled_from(["", " ", "\t", "\r", "\x1c", "\xa0", "\ufeff", "{", "null", "[]"]),
        st.text(max_size=30).map(lambda t: t.replace("\n", "")),
    )


@st.composite
def ndjson_file(draw: st.DrawFn, spec: DatasetSpec) -> bytes:
    lines = draw(st.lists(ndjson_line(spec), max_size=8))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    text = end.join(lines) + draw(st.sampled_from(["", end]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode()


def any_input(spec: DatasetSpec) -> st.SearchStrategy[bytes]:
    texts = mutated_record(spec) if spec.layout == "json" else ndjson_file(spec)
    return st.one_of(
        st.binary(max_size=200),
        texts.map(lambda t: t if isinstance(t, bytes) else t.encode()),
    )


def check_invariants(spec: DatasetSpec, data: bytes) -> ParsedFile:
    parsed = parse(spec, data)
    assert len(parsed.records) + len(parsed.rejections) == parsed.input_records
    assert parsed.input_records >= 1  # no input vanishes, not even an empty file
    for rejection in parsed.rejections:
        assert rejection.reason.strip()
        assert rejection.source_key == "k.json"
        rejection.raw.encode("utf-8")  # quarantine lines must be writable as UTF-8
    for record in parsed.records:
        dt = date.fromisoformat(record["dt"])
        assert START <= dt <= (NOW + timedelta(days=1)).date()
        assert set(record) == {f.name for f in spec.fields} | {"dt", "_source_line"}
        for value in record.values():
            if isinstance(value, str):
                value.encode("utf-8")
    return parsed


@pytest.mark.parametrize("spec", DATASETS, ids=lambda s: s.name)
@FUZZ
@given(data=st.data())
def test_any_input_becomes_records_and_reasoned_rejections(spec: DatasetSpec, data) -> None:
    check_invariants(spec, data.draw(any_input(spec)))


@pytest.mark.parametrize("spec", NDJSON_SPECS, ids=lambda s: s.name)
@FUZZ
@given(data=st.data())
def test_every_non_blank_ndjson_line_is_one_record_or_one_rejection(spec: DatasetSpec, data):
    raw = data.draw(ndjson_file(spec))
    parsed = check_invariants(spec, raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        assert [r.line for r in parsed.rejections] == [None]
        return
    lines = [piece.removesuffix("\r") for piece in text.split("\n")]
    if text.endswith("\n"):
        lines.pop()  # the newline that ends the last line does not start another
    non_blank = {n for n, t in enumerate(lines, start=1) if t.strip(" \t\r\n")}
    if not non_blank:
        assert [(r.line, r.reason) for r in parsed.rejections] == [(None, "empty file")]
        assert parsed.records == []
        return
    record_lines = [r["_source_line"] for r in parsed.records]
    rejected = {r.line: r.raw for r in parsed.rejections}
    assert len(non_blank) == len(parsed.records) + len(parsed.rejections)
    assert sorted(record_lines + list(rejected)) == sorted(non_blank)
    assert all(raw_text == lines[n - 1] for n, raw_text in rejected.items())
    assert parsed.blank_lines == len(lines) - len(non_blank)
