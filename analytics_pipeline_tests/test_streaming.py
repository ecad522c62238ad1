"""Big NDJSON files are staged streamed, block by block, exactly as if read whole."""

from __future__ import annotations

import json
import random
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.parsing import arrow_parsing
from analytics_pipeline.lake.reconciliation import reconcile_dataset
from analytics_pipeline.lake.staging import StageReport, stage_landing_files
from analytics_pipeline.lake.staging.stream_reading import OverlongLine, scan_stream, split_blocks
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline.resources.store import LandingObjectGone
from analytics_pipeline_tests.lake_helpers import drop, iot_reading, landing_files

NOW = datetime(2024, 6, 1, 12)
START = date(2020, 1, 1)
BIG = 1 << 30


def lake(tmp_path: Path, name: str) -> tuple[Path, LocalLakeStore]:
    path = tmp_path / name
    store = LocalLakeStore(lake_dir=str(path))
    store.ensure_layout()
    return path, store


def stage(store: LocalLakeStore, name: str, keys: list[str], **kw: Any) -> StageReport:
    kw.setdefault("max_file_bytes", BIG)
    return stage_landing_files(store, dataset(name), keys, start=START, now=NOW, **kw)


def staged_rows(lake_dir: Path, name: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((lake_dir / "staged" / name).rglob("*.parquet")):
        dt = path.parent.name
        rows += [{**r, "dt": dt} for r in pq.read_table(path).to_pylist()]
    return sorted(rows, key=lambda r: (r["_source_key"], r["_source_line"]))


def quarantine_text(lake_dir: Path, name: str) -> dict[str, bytes]:
    base = lake_dir / "quarantine" / name
    return {p.name: p.read_bytes() for p in sorted(base.glob("*.jsonl"))}


def iot_file(lines: int, seed: int) -> bytes:
    """A mixed IoT file: good lines, bad ones, blank ones, drift, CRLF, long lines, a BOM."""
    rnd = random.Random(seed)
    out = []
    for i in range(lines):
        good = iot_reading(deviceid=str(i), datetime=f"2024-05-{1 + i % 5:02d} {i % 24:02d}:00:00")
        kind = rnd.choices(
            ["good", "bad_json", "type", "future", "blank", "drift", "long", "crlf"],
            weights=[60, 3, 3, 2, 3, 3, 2, 4],
        )[0]
        if kind == "bad_json":
            out.append('{"deviceid": "1", "datetime": ' + "x" * rnd.randint(0, 300))
        elif kind == "type":
            out.append(json.dumps({**good, "temperature": rnd.choice(["hot", 7, None, [1]])}))
        elif kind == "future":
            out.append(json.dumps({**good, "datetime": "2030-01-01 00:00:00"}))
        elif kind == "blank":
            out.append(rnd.choice(["", "   ", "\t", "\r"]))
        elif kind == "drift":
            out.append(json.dumps({**good, "colour": rnd.choice(["red", "blue"])}))
        elif kind == "long":
            out.append(json.dumps({**good, "note": "n" * rnd.randint(500, 5000)}))
        elif kind == "crlf":
            out.append(json.dumps(good) + "\r")
        else:
            out.append(json.dumps(good))
    return ("\ufeff" + "\n".join(out)).encode()  # a BOM, and no newline after the last line


@pytest.mark.parametrize(
    ("block_bytes", "fast_min_bytes", "lines"),
    [(97, None, 4000), (4096, 0, 4000), (64 * 1024, None, 20000)],
    ids=["tiny-blocks-row-level", "small-blocks-arrow", "arrow-blocks"],
)
def test_a_streamed_file_stages_exactly_what_the_whole_file_path_stages(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    block_bytes: int,
    fast_min_bytes: int | None,
    lines: int,
) -> None:
    if fast_min_bytes is not None:
        monkeypatch.setattr(arrow_parsing, "FAST_PATH_MIN_BYTES", fast_min_bytes)
    data = iot_file(lines, seed=block_bytes)
    whole_dir, whole_store = lake(tmp_path, "whole")
    streamed_dir, streamed_store = lake(tmp_path, "streamed")
    for lake_dir in (whole_dir, streamed_dir):
        drop(lake_dir, "iot_sensor_data", "gw/big.ndjson", data)

    whole = stage(whole_store, "iot_sensor_data", ["gw/big.ndjson"])
    streamed = stage(
        streamed_store,
        "iot_sensor_data",
        ["gw/big.ndjson"],
        stream_threshold_bytes=1000,
        stream_block_bytes=block_bytes,
    )

    # The streamed file was really cut into many blocks, some holding bad lines at their edges.
    assert len(data) > 50 * block_bytes or block_bytes > 10_000
    assert staged_rows(streamed_dir, "iot_sensor_data") == staged_rows(whole_dir, "iot_sensor_data")
    assert quarantine_text(streamed_dir, "iot_sensor_data") == quarantine_text(
        whole_dir, "iot_sensor_data"
    )
    assert streamed.files == whole.files
    assert streamed.unknown_fields == whole.unknown_fields != {}
    assert dict(streamed.staged_rows_by_dt) == dict(whole.staged_rows_by_dt)
    assert dict(streamed.reasons) == dict(whole.reasons)
    assert landing_files(streamed_dir, "iot_sensor_data") == []
    assert (streamed_dir / "archive" / "iot_sensor_data" / "gw" / "big.ndjson").read_bytes() == data
    for store, threshold in ((whole_store, BIG), (streamed_store, 1000)):
        result = reconcile_dataset(
            store,
            dataset("iot_sensor_data"),
            start=START,
            now=NOW,
            max_file_bytes=BIG,
            stream_threshold_bytes=threshold,
        )
        assert result.passed, result.mismatches
        assert (result.landing_records, result.staged_records, result.quarantined_records) == (
            whole.records,
            whole.staged,
            whole.rejected,
        )


def test_a_streamed_nested_dataset_goes_row_level_block_by_block(tmp_path: Path) -> None:
    event = {
        "event_type": "SignUpEvent",
        "event_timestamp": 1714557600000,
        "attributes": {"email": "a@example.com"},
        "session": {"session_id": "s1"},
        "endpoint": {"EffectiveDate": "2024-05-01T10:00:00.000Z"},
    }
    lines = [json.dumps({**event, "session": {"session_id": f"s{i}"}}) for i in range(500)]
    lines[100] = json.dumps({**event, "attributes": {"email": "not-an-email"}})
    lines[250] = ""
    lines[300] = json.dumps({**event, "event_type": "PageView"})
    data = ("\r\n".join(lines) + "\r\n").encode()
    whole_dir, whole_store = lake(tmp_path, "whole")
    streamed_dir, streamed_store = lake(tmp_path, "streamed")
    for lake_dir in (whole_dir, streamed_dir):
        drop(lake_dir, "app_events", "e.ndjson", data)
    whole = stage(whole_store, "app_events", ["e.ndjson"])
    streamed = stage(
        streamed_store,
        "app_events",
        ["e.ndjson"],
        stream_threshold_bytes=100,
        stream_block_bytes=300,
    )
    assert streamed.files == whole.files
    assert (whole.rejected, whole.unrouted) == (1, 1)
    assert staged_rows(streamed_dir, "app_events") == staged_rows(whole_dir, "app_events")
    assert quarantine_text(streamed_dir, "app_events") == quarantine_text(whole_dir, "app_events")


def test_a_streamed_file_whose_only_quarantine_lines_are_unrouted_writes_them(
    tmp_path: Path,
) -> None:
    event = {
        "event_type": "SignInEvent",
        "attributes": {"email": "a@example.com"},
        "session": {"session_id": "s1"},
        "endpoint": {"EffectiveDate": "2024-05-01T10:00:00.000Z"},
    }
    lines = [json.dumps({**event, "session": {"session_id": f"s{i}"}}) for i in range(200)]
    lines[50] = json.dumps({**event, "event_type": "PageView"})
    lake_dir, store = lake(tmp_path, "streamed")
    drop(lake_dir, "app_events", "e.ndjson", "\n".join(lines) + "\n")
    report = stage(
        store, "app_events", ["e.ndjson"], stream_threshold_bytes=100, stream_block_bytes=300
    )
    assert (report.staged, report.rejected, report.unrouted) == (199, 0, 1)
    [text] = quarantine_text(lake_dir, "app_events").values()
    [line] = [json.loads(q) for q in text.splitlines()]
    assert (line["line"], line["reason"]) == (
        51,
        "event_type 'PageView' is not routed to any table",
    )


@pytest.mark.parametrize(
    "data",
    [
        b"\n".join([json.dumps(iot_reading()).encode()] * 50) + b"\n\xff\xfe\n",
        b"\xef\xbb\xbf" + json.dumps(iot_reading()).encode() + b"\n\xc3",  # cut mid-character
        b"\xef\xbb\xbf" + b" \n\r\n\t\n" * 200,  # blank lines only: an empty file
    ],
    ids=["not-utf8", "truncated-utf8-after-bom", "blank-only"],
)
def test_a_streamed_file_rejected_whole_is_rejected_as_the_whole_file_path_does(
    tmp_path: Path, data: bytes
) -> None:
    whole_dir, whole_store = lake(tmp_path, "whole")
    streamed_dir, streamed_store = lake(tmp_path, "streamed")
    for lake_dir in (whole_dir, streamed_dir):
        drop(lake_dir, "iot_sensor_data", "x.ndjson", data)
    whole = stage(whole_store, "iot_sensor_data", ["x.ndjson"])
    streamed = stage(
        streamed_store,
        "iot_sensor_data",
        ["x.ndjson"],
        stream_threshold_bytes=10,
        stream_block_bytes=7,
    )
    assert streamed.files == whole.files
    assert (streamed.records, streamed.staged, streamed.rejected) == (1, 0, 1)
    assert quarantine_text(streamed_dir, "iot_sensor_data") == quarantine_text(
        whole_dir, "iot_sensor_data"
    )
    result = reconcile_dataset(
        streamed_store,
        dataset("iot_sensor_data"),
        start=START,
        now=NOW,
        max_file_bytes=BIG,
        stream_threshold_bytes=10,
    )
    assert result.passed, result.mismatches


def test_a_line_over_the_line_limit_is_quarantined_unread(tmp_path: Path) -> None:
    lake_dir, store = lake(tmp_path, "lake")
    good = json.dumps(iot_reading())
    huge = json.dumps({**iot_reading(), "note": "n" * 5000})
    drop(lake_dir, "iot_sensor_data", "x.ndjson", "\n".join([good, huge, good, huge]))

    report = stage(
        store,
        "iot_sensor_data",
        ["x.ndjson"],
        stream_threshold_bytes=100,
        stream_block_bytes=256,
        max_line_bytes=1000,
    )

    assert (report.records, report.staged, report.rejected) == (4, 2, 2)
    [quarantine] = quarantine_text(lake_dir, "iot_sensor_data").values()
    rejected = [json.loads(line) for line in quarantine.decode().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejected] == [
        (2, "line 2 is longer than the limit of 1000 bytes"),
        (4, "line 4 is longer than the limit of 1000 bytes"),
    ]
    assert rejected[0]["raw"] == huge[:1024]
    result = reconcile_dataset(
        store,
        dataset("iot_sensor_data"),
        start=START,
        now=NOW,
        max_file_bytes=BIG,
        stream_threshold_bytes=100,
    )
    assert result.passed, result.mismatches


def test_a_file_changed_between_the_two_passes_leaves_nothing_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake_dir, store = lake(tmp_path, "lake")
    data = ("\n".join(json.dumps(iot_reading(deviceid=str(i))) for i in range(300)) + "\n").encode()
    path = drop(lake_dir, "iot_sensor_data", "x.ndjson", data)
    passes = []
    real = LocalLakeStore.iter_landing

    def rewritten(
        self: LocalLakeStore, dataset_name: str, key: str, chunk_bytes: int = 1 << 23, offset=0
    ):
        passes.append(key)
        if len(passes) == 2:
            path.write_bytes(data.replace(b'"7"', b'"8"', 1))  # edited in place, past the head
        return real(self, dataset_name, key, 1000, offset)

    monkeypatch.setattr(LocalLakeStore, "iter_landing", rewritten)
    report = stage(
        store, "iot_sensor_data", ["x.ndjson"], stream_threshold_bytes=100, stream_block_bytes=500
    )

    assert report.files[0].gone
    assert list((lake_dir / "staged").rglob("*.parquet")) == []
    assert landing_files(lake_dir, "iot_sensor_data") == ["x.ndjson"]


def test_a_file_gone_before_it_is_streamed_is_reported_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake_dir, store = lake(tmp_path, "lake")
    drop(lake_dir, "iot_sensor_data", "x.ndjson", json.dumps(iot_reading()) * 20)

    def gone(*_: Any, **__: Any) -> Any:
        raise LandingObjectGone("landing/iot_sensor_data/x.ndjson")

    monkeypatch.setattr(LocalLakeStore, "iter_landing", gone)
    report = stage(store, "iot_sensor_data", ["x.ndjson"], stream_threshold_bytes=100)
    assert report.files[0].gone
    assert report.records == 0


def test_scan_gives_the_md5_a_whole_read_gives() -> None:
    from analytics_pipeline.resources.store import content_version

    data = b"".join(json.dumps(iot_reading()).encode() + b"\n" for _ in range(1000))
    chunks = [data[i : i + 333] for i in range(0, len(data), 333)]
    scan = scan_stream(chunks)
    assert (scan.version, scan.size, scan.utf8_error) == (content_version(data), len(data), None)


# --- the block splitter --------------------------------------------------------------------


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


lines_st = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), min_size=0, max_size=40
)


@given(
    lines=lines_st,
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
    block_bytes=st.integers(1, 120),
)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_split_blocks_never_loses_or_duplicates_a_line(
    lines: list[bytes], final_newline: bool, cuts: list[int], block_bytes: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    blocks = list(split_blocks(chunked(data, cuts), block_bytes, max_line_bytes=1 << 30))
    assert all(isinstance(b, bytes) and b for b in blocks)
    assert b"".join(blocks) == data  # type: ignore[arg-type]
    assert all(b.endswith(b"\n") for b in blocks[:-1])  # type: ignore[union-attr]


@given(
    lines=lines_st,
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
    block_bytes=st.integers(1, 120),
    max_line=st.integers(0, 30),
)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_split_blocks_replaces_exactly_the_overlong_lines(
    lines: list[bytes], final_newline: bool, cuts: list[int], block_bytes: int, max_line: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    expected: list[bytes | tuple[int, bytes]] = (
        [
            (len(line), line[:1024]) if len(line) > max_line else line
            for line in (data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"))
        ]
        if data
        else []
    )
    got: list[bytes | tuple[int, bytes]] = []
    for piece in split_blocks(chunked(data, cuts), block_bytes, max_line):
        if isinstance(piece, OverlongLine):
            got.append((piece.size, piece.preview))
        else:
            got += piece.split(b"\n")[:-1] if piece.endswith(b"\n") else piece.split(b"\n")
    assert got == expected
