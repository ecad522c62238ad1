"""One-object files read together in Arrow give exactly what each gives parsed alone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.parsing import arrow_lines, arrow_parsing
from analytics_pipeline.lake.parsing.arrow_parsing import parse_documents, supports_document_batches
from analytics_pipeline.lake.parsing.records import parse_landing_file
from analytics_pipeline.lake.staging import parse_ahead, stage_landing_files, stager
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import drop, landing_files, quarantine_lines

START = date(2020, 1, 1)
NOW = datetime(2024, 6, 1, 12)
PRODUCTS = dataset("products")
GOOD = {"id": 7, "date": "2024-05-01", "product": "A"}


@pytest.fixture(autouse=True, scope="module")
def arrow_for_small_groups() -> Iterator[None]:
    # Small examples must take the Arrow path too, and its retry in chunks.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(arrow_parsing, "FAST_PATH_MIN_BYTES", 0)
        mp.setattr(stager, "FAST_PATH_MIN_BYTES", 0)
        mp.setattr(parse_ahead, "FAST_PATH_MIN_BYTES", 0)
        mp.setattr(arrow_lines, "RETRY_CHUNK_LINES", 3)
        yield


# Values the row-level validator and Arrow's reader or casts disagree about, or nearly do.
TRICKY: list[Any] = [
    7, -7, 0, 2**63 - 1, -(2**63), 2**63, 7.0, 7.5, 1e3, True, None, "7", " 7", "+7", "007",
    "-0", "", "2024-05-01", "2024-02-30", "2024-5-1", "2019-12-31", "2024-06-03", "A", "a",
    "D", [], {}, "\u0661",
]  # fmt: skip
RAW: list[bytes] = [
    b"", b" ", b"\n", b"null", b"[]", b"[{}]", b"{", b"{}", b"5",
    b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),  # a byte-order mark
    json.dumps(GOOD, indent=2).encode(),  # pretty-printed: newlines inside
    json.dumps(GOOD).encode() + b" " + json.dumps(GOOD).encode(),  # two values
    json.dumps(GOOD).encode() + b"\r",
    json.dumps(GOOD).encode()[:-1] + b',"id":8}',  # duplicate key: json.loads keeps the last
    json.dumps(GOOD).encode()[:-1] + b',"x":"\xff"}',  # not UTF-8
    json.dumps(GOOD).encode()[:-1] + b',"x":"a\tb"}',  # a raw control character
    json.dumps(GOOD).encode()[:-1] + b',"x":NaN}',
    json.dumps(GOOD).encode()[:-1] + b',"x":' + b"[" * 40 + b"]" * 40 + b"}",
]  # fmt: skip


@st.composite
def document(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["good", "good", "good", "value", "missing", "raw", "extra"]))
    obj: dict[str, Any] = {**GOOD, "id": draw(st.integers(-5, 2**40))}
    if kind == "value":
        obj[draw(st.sampled_from(sorted(GOOD)))] = draw(st.sampled_from(TRICKY))
    elif kind == "missing":
        del obj[draw(st.sampled_from(sorted(GOOD)))]
    elif kind == "raw":
        return draw(st.sampled_from(RAW))
    elif kind == "extra":
        obj[draw(st.sampled_from(["colour", "meta", "x"]))] = draw(
            st.one_of(st.text(max_size=3), st.integers(), st.none(), st.just({"a": 1}))
        )
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return (pad + json.dumps(obj) + pad).encode()


@given(st.lists(document(), min_size=1, max_size=12))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_documents_read_together_give_what_each_gives_alone(documents: list[bytes]) -> None:
    named = [(f"{i}.json", data) for i, data in enumerate(documents)]
    got = parse_documents(PRODUCTS, named, start=START, now=NOW)

    rows = {r.pop("_document"): r for r in got.rows.to_pylist()}
    assert set(rows).isdisjoint(got.others)
    assert set(rows) | set(got.others) == set(range(len(documents)))
    assert list(rows) == sorted(rows)  # in the files' order
    for i, (key, data) in enumerate(named):
        alone = parse_landing_file(PRODUCTS, key, data, start=START, now=NOW)
        if i in got.others:
            assert got.others[i] == alone
        else:
            assert [rows[i]] == alone.records
            assert alone.rejections == []
            assert got.unknown_fields.get(i, {}) == alone.unknown_fields


def test_usual_documents_are_all_taken_by_arrow() -> None:
    named = [(f"{i}.json", json.dumps({**GOOD, "id": i}).encode()) for i in range(100)]
    named[10] = ("10.json", json.dumps({**GOOD, "product": "Z"}).encode())
    got = parse_documents(PRODUCTS, named, start=START, now=NOW)
    assert list(got.others) == [10]
    assert got.rows.num_rows == 99
    assert got.others[10].rejections[0].reason == "value 'Z' in field product is not one of A, B, C"


def test_only_flat_one_object_datasets_are_read_in_batches() -> None:
    assert supports_document_batches(PRODUCTS)
    assert not supports_document_batches(dataset("iot_sensor_data"))  # NDJSON
    assert not supports_document_batches(dataset("web_requests"))  # ISO 8601 timestamps


def staged_and_quarantined(
    lake_dir: Path, store: LocalLakeStore, documents: list[bytes], *, batched: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, ...]]]:
    for i, data in enumerate(documents):
        drop(lake_dir, "products", f"{i:03d}.json", data)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stager, "supports_document_batches", lambda spec: batched)
        mp.setattr(stager, "DOCUMENT_GROUP_FILES", 7)  # groups end mid-run
        report = stage_landing_files(
            store,
            PRODUCTS,
            landing_files(lake_dir, "products"),
            start=START,
            now=NOW,
            max_file_bytes=200,
        )
    staged = [r for p in report.staged_paths for r in pq.read_table(lake_dir / p).to_pylist()]
    outcomes = [
        (f.key, f.version, f.records, f.staged, f.rejected, f.unknown_fields) for f in report.files
    ]
    rejected = quarantine_lines(lake_dir, "products")
    for path in ("staged", "quarantine", "archive"):
        for file in (lake_dir / path).rglob("*"):
            if file.is_file():
                file.unlink()
    return sorted(staged, key=lambda r: r["_source_key"]), rejected, outcomes


def test_staging_in_groups_places_every_record_as_staging_one_by_one(
    lake_dir: Path, store: LocalLakeStore
) -> None:
    documents = [json.dumps({**GOOD, "id": i, "colour": "red"}).encode() for i in range(30)]
    documents[3] = json.dumps({**GOOD, "date": "2024-02-30"}).encode()
    documents[8] = json.dumps(GOOD, indent=2).encode()
    documents[9] = b"\xff"
    documents[15] = b'{"id": 1, "date": "2024-05-01", "product": "A", "pad": "' + b"x" * 200 + b'"}'
    documents[22] = b""

    batched = staged_and_quarantined(lake_dir, store, documents, batched=True)
    one_by_one = staged_and_quarantined(lake_dir, store, documents, batched=False)

    assert batched == one_by_one
    staged, rejected, _ = batched
    assert len(staged) == 26
    assert {r["source_key"] for r in rejected} == {"003.json", "009.json", "015.json", "022.json"}
