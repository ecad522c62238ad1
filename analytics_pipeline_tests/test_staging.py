"""Staging: landing files to staged/ by event date, rejects to quarantine/, then archive/."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from analytics_pipeline.datasets import dataset
from analytics_pipeline.lake.staging import StageReport, stage_landing_files
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import (
    drop,
    iot_reading,
    landing_files,
    ndjson,
    quarantine_lines,
)

NOW = datetime(2024, 6, 1, 12)
START = date(2020, 1, 1)
IOT = dataset("iot_sensor_data")
PRODUCTS = dataset("products")


def reading(deviceid: int, when: str, temperature: int = 20) -> dict[str, Any]:
    return iot_reading(deviceid=str(deviceid), datetime=when, temperature=str(temperature))


def stage(
    store: LocalLakeStore, dataset_name: str, keys: list[str], max_file_bytes: int = 1 << 20
) -> StageReport:
    return stage_landing_files(
        store, dataset(dataset_name), keys, start=START, now=NOW, max_file_bytes=max_file_bytes
    )


def staged_days(lake_dir: Path, dataset_name: str) -> dict[str, int]:
    base = lake_dir / "staged" / dataset_name
    return {
        day.name: sum(pq.read_metadata(f).num_rows for f in day.glob("*.parquet"))
        for day in sorted(base.iterdir())
    }


def test_records_are_routed_by_event_date_not_arrival(lake_dir: Path, store: LocalLakeStore):
    rows = [
        reading(1, "2024-05-01 10:00:00"),
        reading(2, "2024-05-01 11:00:00"),
        reading(1, "2023-12-31 23:59:59"),
        reading(1, "2024-05-30 00:00:00"),
    ]
    drop(lake_dir, "iot_sensor_data", "batch.ndjson", ndjson(rows))

    report = stage(store, "iot_sensor_data", ["batch.ndjson"])

    assert staged_days(lake_dir, "iot_sensor_data") == {
        "dt=2023-12-31": 1,
        "dt=2024-05-01": 2,
        "dt=2024-05-30": 1,
    }
    assert dict(report.staged_rows_by_dt) == {"2023-12-31": 1, "2024-05-01": 2, "2024-05-30": 1}


def test_staged_rows_carry_their_source_key_version_and_line(lake_dir: Path, store: LocalLakeStore):
    drop(lake_dir, "iot_sensor_data", "a.ndjson", ndjson([reading(7, "2024-05-01 10:00:00")]))

    report = stage(store, "iot_sensor_data", ["a.ndjson"])

    table = pq.read_table(lake_dir / report.staged_paths[0])
    row = table.to_pylist()[0]
    assert (row["_source_key"], row["_source_line"]) == ("a.ndjson", 1)
    assert row["_source_version"] == report.files[0].version
    assert row["deviceid"] == 7


def test_quarantine_has_one_line_per_reject_in_the_design_format(
    lake_dir: Path, store: LocalLakeStore
):
    content = (
        json.dumps(reading(1, "2024-05-01 10:00:00"))
        + "\n{not json\n"
        + json.dumps(reading(1, "2024-02-30 10:00:00"))
        + "\n"
    )
    drop(lake_dir, "iot_sensor_data", "mixed.ndjson", content)

    report = stage(store, "iot_sensor_data", ["mixed.ndjson"])

    lines = quarantine_lines(lake_dir, "iot_sensor_data")
    assert [set(line) for line in lines] == [{"source_key", "line", "reason", "raw"}] * 2
    assert [(q["source_key"], q["line"], q["raw"]) for q in lines] == [
        ("mixed.ndjson", 2, "{not json"),
        ("mixed.ndjson", 3, json.dumps(reading(1, "2024-02-30 10:00:00"))),
    ]
    assert lines[0]["reason"].startswith("malformed JSON at line 2")
    assert lines[1]["reason"] == "invalid timestamp '2024-02-30 10:00:00' in field datetime"
    assert (report.staged, report.rejected) == (1, 2)


def test_an_unparseable_file_is_quarantined_whole_as_one_line(
    lake_dir: Path, store: LocalLakeStore
):
    drop(lake_dir, "products", "p1.json", "this is not json")

    stage(store, "products", ["p1.json"])

    [line] = quarantine_lines(lake_dir, "products")
    assert (line["source_key"], line["line"], line["raw"]) == ("p1.json", None, "this is not json")
    assert line["reason"].startswith("malformed JSON: ")
    assert not (lake_dir / "staged" / "products").exists()


def test_landing_file_is_moved_to_archive_under_its_original_key(
    lake_dir: Path, store: LocalLakeStore
):
    content = json.dumps({"id": 1, "date": "2024-05-01", "product": "A"})
    drop(lake_dir, "products", "a/b/c.json", content)

    stage(store, "products", ["a/b/c.json"])

    assert (lake_dir / "archive" / "products" / "a" / "b" / "c.json").read_text() == content
    assert landing_files(lake_dir, "products") == []


def test_emptied_landing_subdirectories_are_pruned(lake_dir: Path, store: LocalLakeStore):
    content = json.dumps({"id": 1, "date": "2024-05-01", "product": "A"})
    drop(lake_dir, "products", "a/b/c.json", content)
    drop(lake_dir, "products", "a/keep.json", content.replace('"id": 1', '"id": 2'))

    stage(store, "products", ["a/b/c.json"])

    assert not (lake_dir / "landing" / "products" / "a" / "b").exists()
    assert landing_files(lake_dir, "products") == ["a/keep.json"]
    stage(store, "products", ["a/keep.json"])
    assert not (lake_dir / "landing" / "products" / "a").exists()
    assert (lake_dir / "landing" / "products").is_dir()


def test_a_file_redelivered_while_its_batch_is_staged_is_staged_by_the_next_run(
    lake_dir: Path, store: LocalLakeStore
):
    """A producer delivers the key again (new content, renamed over the name) after the
    batch read it: the batch stages what it read and leaves the new delivery in landing;
    the next batch stages and archives it. Nothing lost, nothing twice."""
    first = {"id": 1, "date": "2024-05-01", "product": "A"}
    second = {"id": 2, "date": "2024-05-01", "product": "B"}
    path = drop(lake_dir, "products", "p.json", json.dumps(first))

    def redeliver(report: StageReport) -> None:
        fresh = path.with_name(".p.json.tmp")
        fresh.write_text(json.dumps(second))
        fresh.replace(path)

    report = stage_landing_files(
        store,
        PRODUCTS,
        ["p.json"],
        start=START,
        now=NOW,
        max_file_bytes=1 << 20,
        before_archive=redeliver,
    )

    assert report.staged == 1
    assert [f.gone for f in report.files] == [True]
    assert landing_files(lake_dir, "products") == ["p.json"]
    assert not (lake_dir / "archive" / "products").exists()

    again = stage(store, "products", ["p.json"])

    assert again.staged == 1
    assert [f.gone for f in again.files] == [False]
    assert landing_files(lake_dir, "products") == []
    assert json.loads((lake_dir / "archive/products/p.json").read_text()) == second
    staged = pq.ParquetDataset(lake_dir / "staged" / "products" / "dt=2024-05-01").read()
    assert sorted(staged.column("id").to_pylist()) == [1, 2]


def test_a_file_gone_before_it_is_read_is_reported_gone_not_an_error(
    lake_dir: Path, store: LocalLakeStore
):
    drop(lake_dir, "products", "here.json", '{"id": 1, "date": "2024-05-01", "product": "A"}')

    report = stage(store, "products", ["here.json", "gone.json"])

    outcomes = {f.key: f for f in report.files}
    assert outcomes["gone.json"].gone
    assert outcomes["gone.json"].records == 0
    assert not outcomes["here.json"].gone
    assert report.staged == 1
    assert quarantine_lines(lake_dir, "products") == []


def test_a_json_file_over_the_size_limit_is_quarantined_whole_and_archived(
    lake_dir: Path, store: LocalLakeStore
):
    content = json.dumps({"id": 1, "date": "2024-05-01", "product": "A", "pad": "x" * 3000})
    drop(lake_dir, "products", "big.json", content)

    report = stage(store, "products", ["big.json"], max_file_bytes=2000)

    lines = quarantine_lines(lake_dir, "products")
    assert len(lines) == 1
    assert lines[0]["line"] is None
    assert lines[0]["reason"] == "file is larger than the limit of 2000 bytes"
    assert lines[0]["raw"] == content[:1024]
    assert report.staged == 0
    assert not (lake_dir / "staged" / "products").exists()
    # Nothing lost: every byte is kept in the archive.
    assert (lake_dir / "archive" / "products" / "big.json").read_text() == content
    assert landing_files(lake_dir, "products") == []


def test_an_ndjson_file_over_the_size_limit_is_streamed_not_quarantined(
    lake_dir: Path, store: LocalLakeStore
):
    content = ndjson([reading(i, "2024-05-01 10:00:00") for i in range(100)])
    drop(lake_dir, "iot_sensor_data", "big.ndjson", content)

    report = stage(store, "iot_sensor_data", ["big.ndjson"], max_file_bytes=2000)

    assert (report.records, report.staged, report.rejected) == (100, 100, 0)
    assert quarantine_lines(lake_dir, "iot_sensor_data") == []
    assert (lake_dir / "archive" / "iot_sensor_data" / "big.ndjson").read_text() == content


def test_a_file_exactly_at_the_size_limit_is_staged(lake_dir: Path, store: LocalLakeStore):
    content = ndjson([reading(1, "2024-05-01 10:00:00")])
    drop(lake_dir, "iot_sensor_data", "edge.ndjson", content)

    report = stage(store, "iot_sensor_data", ["edge.ndjson"], max_file_bytes=len(content))

    assert (report.staged, report.rejected) == (1, 0)


def test_every_record_of_a_mixed_file_ends_in_exactly_one_place(
    lake_dir: Path, store: LocalLakeStore
):
    lines = [
        json.dumps(reading(1, "2024-05-01 10:00:00")),
        "",
        "[1, 2]",
        json.dumps(reading(2, "2024-05-02 10:00:00")),
        "   ",
        json.dumps(reading(3, "2019-12-31 10:00:00")),  # before the partition start
        json.dumps(reading(4, "2024-06-05 10:00:00")),  # too far in the future
        '{"deviceid": "x"',
        json.dumps({**reading(5, "2024-05-03 10:00:00"), "temperature": "hot"}),
        json.dumps(reading(6, "2024-05-03 10:00:00")),
    ]
    drop(lake_dir, "iot_sensor_data", "mixed.ndjson", "\r\n".join(lines) + "\r\n")

    report = stage(store, "iot_sensor_data", ["mixed.ndjson"])

    non_blank = [line for line in lines if line.strip()]
    staged = sum(staged_days(lake_dir, "iot_sensor_data").values())
    quarantined = quarantine_lines(lake_dir, "iot_sensor_data")
    assert staged + len(quarantined) == len(non_blank) == report.records
    assert staged == 3
    staged_lines = set()
    for path in report.staged_paths:
        staged_lines |= set(pq.read_table(lake_dir / path)["_source_line"].to_pylist())
    quarantined_lines = {q["line"] for q in quarantined}
    assert staged_lines.isdisjoint(quarantined_lines)
    assert staged_lines | quarantined_lines == {
        number for number, line in enumerate(lines, start=1) if line.strip()
    }


# --- schema drift: unknown fields are counted, changed types are quarantined ---------------


def app_event(**changes: Any) -> dict[str, Any]:
    return {
        "event_type": "SignInEvent",
        "event_timestamp": 1714557600000,
        "attributes": {"email": "a@example.com"},
        "session": {"session_id": "s1"},
        "endpoint": {"EffectiveDate": "2024-05-01T10:00:00.000Z"},
        **changes,
    }


def test_unknown_fields_are_counted_per_file_and_per_batch(lake_dir: Path, store: LocalLakeStore):
    rows = [
        {**reading(1, "2024-05-01 10:00:00"), "colour": "red"},
        {**reading(2, "2024-05-01 10:00:00"), "colour": 12, "meta": {"extra": 1}},
        {**reading(3, "2024-05-01 10:00:00"), "colour": None},  # null: not carried
        {**reading(4, "2024-05-01 10:00:00"), "colour": "x", "temperature": "hot"},  # rejected
        reading(5, "2024-05-01 10:00:00"),
    ]
    drop(lake_dir, "iot_sensor_data", "a.ndjson", ndjson(rows))
    drop(lake_dir, "iot_sensor_data", "b.ndjson", ndjson([{**rows[4], "colour": "blue"}]))
    drop(lake_dir, "iot_sensor_data", "c.ndjson", ndjson([rows[4]]))

    report = stage(store, "iot_sensor_data", ["a.ndjson", "b.ndjson", "c.ndjson"])

    outcomes = {f.key: f for f in report.files}
    assert outcomes["a.ndjson"].unknown_fields == {"colour": 2, "meta": 1}
    assert outcomes["b.ndjson"].unknown_fields == {"colour": 1}
    assert outcomes["c.ndjson"].unknown_fields == {}
    assert report.unknown_fields == {"colour": 3, "meta": 1}
    # Drift is reported, never a reason to drop a record.
    assert (report.staged, report.rejected) == (6, 1)


def test_a_batch_without_drift_reports_no_unknown_fields(lake_dir: Path, store: LocalLakeStore):
    drop(
        lake_dir, "products", "1.json", json.dumps({"id": 1, "date": "2024-05-01", "product": "A"})
    )
    assert stage(store, "products", ["1.json"]).unknown_fields == {}


def test_unknown_nested_fields_are_named_by_their_path(lake_dir: Path, store: LocalLakeStore):
    rows = [
        app_event(attributes={"email": "a@example.com", "plan": "pro"}, meta={"extra": 1}),
        app_event(session={"session_id": "s2", "device": {"os": "ios"}}),
        app_event(attributes={"email": "b@example.com", "plan": None}),
    ]
    drop(lake_dir, "app_events", "e.ndjson", ndjson(rows))

    report = stage(store, "app_events", ["e.ndjson"])

    assert report.staged == 3
    assert report.unknown_fields == {"attributes.plan": 1, "meta": 1, "session.device": 1}


def test_unknown_field_names_are_capped_per_batch(lake_dir: Path, store: LocalLakeStore):
    from analytics_pipeline.lake.parsing.validation import (
        MAX_UNKNOWN_FIELD_NAMES,
        OTHER_UNKNOWN_FIELDS,
    )

    rows = [
        {**reading(1, "2024-05-01 10:00:00"), f"f{i}": "v"}
        for i in range(MAX_UNKNOWN_FIELD_NAMES + 5)
    ]
    drop(lake_dir, "iot_sensor_data", "many.ndjson", ndjson(rows))

    report = stage(store, "iot_sensor_data", ["many.ndjson"])

    assert len(report.unknown_fields) == MAX_UNKNOWN_FIELD_NAMES + 1
    assert report.unknown_fields[OTHER_UNKNOWN_FIELDS] == 5
    assert sum(report.unknown_fields.values()) == len(rows)


def test_a_known_field_with_a_changed_type_is_quarantined_with_its_reason(
    lake_dir: Path, store: LocalLakeStore
):
    good = reading(1, "2024-05-01 10:00:00")
    rows = [good, {**good, "datetime": 1714557600}, {**good, "deviceid": [7]}]
    drop(lake_dir, "iot_sensor_data", "t.ndjson", ndjson(rows))
    drop(
        lake_dir,
        "products",
        "p.json",
        json.dumps({"id": "abc", "date": "2024-05-01", "product": "A"}),
    )

    report = stage(store, "iot_sensor_data", ["t.ndjson"])
    stage(store, "products", ["p.json"])

    assert (report.staged, report.rejected) == (1, 2)
    assert report.unknown_fields == {}
    assert [(q["line"], q["reason"]) for q in quarantine_lines(lake_dir, "iot_sensor_data")] == [
        (2, "wrong type in field datetime: expected timestamp, got number 1714557600"),
        (3, "wrong type in field deviceid: expected int, got array [7]"),
    ]
    [product] = quarantine_lines(lake_dir, "products")
    assert product["reason"] == "wrong type in field id: expected bigint, got string 'abc'"


def test_a_big_file_is_split_by_day_whether_its_days_come_in_order_or_interleaved(
    lake_dir: Path, store: LocalLakeStore
):
    # Over 16 KiB, so the Arrow path parses them; days in stretches, and days alternating.
    days = ["2024-05-01", "2024-05-02", "2024-05-03"]
    in_order = [reading(i, f"{days[i * 3 // 600]} 10:00:00") for i in range(600)]
    interleaved = [reading(i, f"{days[i % 3]} 10:00:00") for i in range(600)]
    drop(lake_dir, "iot_sensor_data", "in_order.ndjson", ndjson(in_order))
    drop(lake_dir, "iot_sensor_data", "interleaved.ndjson", ndjson(interleaved))

    report = stage(store, "iot_sensor_data", ["in_order.ndjson", "interleaved.ndjson"])

    assert report.staged == 1200
    assert staged_days(lake_dir, "iot_sensor_data") == {f"dt={day}": 400 for day in days}
    for day in days:
        table = pq.read_table(lake_dir / "staged" / "iot_sensor_data" / f"dt={day}")
        for key, rows in (("in_order.ndjson", in_order), ("interleaved.ndjson", interleaved)):
            mine = table.filter(pc.equal(table.column("_source_key"), key))
            lines = mine.column("_source_line").to_pylist()
            assert lines == sorted(lines)
            assert {rows[n - 1]["deviceid"] for n in lines} == {
                str(d) for d in mine.column("deviceid").to_pylist()
            }
            assert all(rows[n - 1]["datetime"].startswith(day) for n in lines)


def test_files_parsed_ahead_carry_the_md5_of_their_whole_bytes(
    lake_dir: Path, store: LocalLakeStore
):
    """Big NDJSON files (parsed in workers), a small one and one with a bad line: each
    file's staged rows carry the md5 of its whole bytes."""
    import hashlib

    big = ndjson([reading(i, "2024-05-01 10:00:00") for i in range(400)])
    assert len(big) > 16 * 1024  # over FAST_PATH_MIN_BYTES: parsed in a worker
    bodies = {
        "big.ndjson": big,
        "big-bad.ndjson": big + "not json\n",
        "small.ndjson": ndjson([reading(1, "2024-05-02 10:00:00")]),
    }
    for key, body in bodies.items():
        drop(lake_dir, "iot_sensor_data", key, body)

    report = stage(store, "iot_sensor_data", sorted(bodies))

    md5 = {key: hashlib.md5(body.encode()).hexdigest() for key, body in bodies.items()}
    assert {f.key: f.version for f in report.files} == md5
    staged = pq.ParquetDataset(lake_dir / "staged" / "iot_sensor_data").read()
    keys, versions = staged["_source_key"].to_pylist(), staged["_source_version"].to_pylist()
    assert set(zip(keys, versions, strict=True)) == set(md5.items())
    assert [line["source_key"] for line in quarantine_lines(lake_dir, "iot_sensor_data")] == [
        "big-bad.ndjson"
    ]


def test_big_files_are_read_ahead_of_their_parses_and_placed_in_order() -> None:
    from analytics_pipeline.lake.parsing.arrow_parsing import FAST_PATH_MIN_BYTES
    from analytics_pipeline.lake.staging import parse_ahead

    read: list[int] = []

    def fetched() -> Any:
        for i in range(8):
            read.append(i)
            yield f"{i}.ndjson", (b"x" * FAST_PATH_MIN_BYTES, "v")

    release = threading.Event()

    def parse(key: str, data: bytes) -> Any:
        if key == "0.ndjson":
            assert release.wait(10)
        return key

    ahead = parse_ahead.parsed_ahead(dataset("iot_sensor_data"), fetched(), parse)
    first: list[Any] = []
    waiting = threading.Thread(target=lambda: first.append(next(ahead)))
    waiting.start()
    held = parse_ahead.PARSE_WORKERS + parse_ahead.READ_AHEAD_FILES
    deadline = time.monotonic() + 10
    while len(read) < held and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    # While the first file's parse is held, the next ones are already read, and no more.
    assert read == list(range(held))
    release.set()
    waiting.join(10)
    assert [first[0][2], *(item[2] for item in ahead)] == [f"{i}.ndjson" for i in range(8)]


def test_the_collector_is_paused_for_the_files_and_back_on_for_the_events(
    lake_dir: Path, store: LocalLakeStore, monkeypatch
):
    """Reading and placing files runs with the cycle collector off (their objects are
    acyclic); before_archive, where the run logs its Dagster events (each leaves cyclic
    garbage), runs with it on, so that garbage never piles up over a big batch."""
    import gc

    from analytics_pipeline.lake.staging import stager

    seen: dict[str, bool] = {}
    place = stager._Stager.place_documents

    def placing(self, *args):  # type: ignore[no-untyped-def]
        seen["placing"] = gc.isenabled()
        return place(self, *args)

    monkeypatch.setattr(stager._Stager, "place_documents", placing)
    for i in range(3):
        drop(lake_dir, "products", f"{i}.json", json.dumps({"id": i, "date": "2024-05-01"}))

    stage_landing_files(
        store,
        PRODUCTS,
        [f"{i}.json" for i in range(3)],
        start=START,
        now=NOW,
        max_file_bytes=1 << 20,
        before_archive=lambda report: seen.setdefault("before_archive", gc.isenabled()),
    )

    assert seen == {"placing": False, "before_archive": True}
    assert gc.isenabled()
