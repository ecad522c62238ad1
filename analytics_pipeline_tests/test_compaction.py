"""compact_day's numpy dedup keeps exactly the rows of the SQL it replaced, on random input."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_pipeline.datasets import dataset
from analytics_pipeline.datasets.app_events import (
    SIGN_IN_EVENT,
    SIGN_UP_EVENT,
    USERAUTH_SIGN_IN,
    USERAUTH_SIGN_UP,
)
from analytics_pipeline.lake.compaction import compact_day, source_codes
from analytics_pipeline.lake.parquet_encoding import parquet_bytes
from analytics_pipeline.lake.staging import (
    SOURCE_COLUMNS,
    stage_landing_files,
    staged_files,
    staged_schema,
)
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import drop, iot_reading, ndjson

APP_EVENTS = dataset("app_events")
DAY = "2024-05-01"

# A staged row: source key, version, line, event type. Few distinct values, so repeats abound.
staged_row = st.tuples(
    st.sampled_from(["a.ndjson", "b.ndjson", "b.ndjson~x", "é.ndjson", "B.ndjson"]),
    st.sampled_from(["v1", "v2", "V1"]),
    st.integers(min_value=1, max_value=6),
    st.sampled_from([SIGN_UP_EVENT, SIGN_IN_EVENT, USERAUTH_SIGN_UP, USERAUTH_SIGN_IN, "_other"]),
)


def staged_file(rows: list[tuple[str, str, int, str]]) -> pa.Table:
    schema = staged_schema(APP_EVENTS)
    records = []
    for key, version, line, event_type in rows:
        record = {f.name: None for f in APP_EVENTS.fields}
        record.update(event_type=event_type, session_id=f"s{line}")
        record.update(_source_key=key, _source_version=version, _source_line=line)
        records.append(record)
    return pa.Table.from_pylist(records, schema=schema)


def reference(
    staged: pa.Table, columns: list[str], where_in: tuple[str, tuple[str, ...]] | None
) -> list:
    """The SQL compact_day ran before: a window over the source columns, in DuckDB."""
    source = ", ".join(SOURCE_COLUMNS)
    wanted = ", ".join(f"'{v}'" for v in where_in[1]) if where_in else ""
    filtered = f"WHERE {where_in[0]} IN ({wanted})" if where_in else ""
    con = duckdb.connect()
    con.register("staged", staged)
    rows = con.execute(
        f"SELECT {', '.join(columns)}, {source} FROM staged {filtered} "
        f"QUALIFY row_number() OVER (PARTITION BY {source}) = 1 ORDER BY {source}"
    ).fetchall()
    con.close()
    return [row[: len(columns)] for row in rows]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(st.lists(staged_row, max_size=12), max_size=4))
def test_compact_day_matches_the_sql_window(files: list[list[tuple[str, str, int, str]]]):
    # One source record (key, version, line) has one content, in whichever file it is staged.
    content = {row[:3]: row for rows in files for row in reversed(rows)}
    files = [[content[row[:3]] for row in rows] for rows in files]
    with tempfile.TemporaryDirectory() as lake:
        store = LocalLakeStore(lake_dir=lake)
        for i, rows in enumerate(files):
            # Within one staged file a record appears once, as staging writes it.
            unique = list({row[:3]: row for row in rows}.values())
            path = f"staged/app_events/dt={DAY}/batch{i}-0000.parquet"
            store.write_bytes(path, parquet_bytes(staged_file(unique)))
        staged = pa.concat_tables(
            [staged_file(list({r[:3]: r for r in rows}.values())) for rows in files]
            or [staged_schema(APP_EVENTS).empty_table()]
        )
        sources = {row[:3] for rows in files for row in rows}
        for table in APP_EVENTS.tables:
            day = compact_day(store, APP_EVENTS, table, DAY)
            got = [tuple(r.values()) for r in day.table.to_pylist()]
            want = reference(staged, list(table.columns), table.where_in)
            # Duplicated records are identical here, so the rows compare whole, in order.
            assert got == want
            assert day.distinct_records == len(sources)
            assert day.expected_rows == len(want) == day.table.num_rows
            assert day.staged_rows == staged.num_rows
            assert day.duplicates_dropped == staged.num_rows - len(sources)
            assert day.staged_files == len(files)


def test_rows_come_out_in_source_order(tmp_path: Path):
    store = LocalLakeStore(lake_dir=str(tmp_path))
    rows = [
        ("b", "v1", 2, SIGN_IN_EVENT),
        ("a", "v2", 10, USERAUTH_SIGN_IN),
        ("a", "v2", 9, SIGN_IN_EVENT),
    ]
    store.write_bytes(
        f"staged/app_events/dt={DAY}/x-0000.parquet", parquet_bytes(staged_file(rows))
    )
    again = [
        ("a", "v1", 3, SIGN_IN_EVENT),
        ("b", "v1", 2, SIGN_IN_EVENT),
        ("c", "v1", 1, "PageView"),
    ]
    store.write_bytes(
        f"staged/app_events/dt={DAY}/y-0000.parquet", parquet_bytes(staged_file(again))
    )
    sign_ins = next(t for t in APP_EVENTS.tables if t.name == "sign_in_events")
    day = compact_day(store, APP_EVENTS, sign_ins, DAY)
    assert [r["session_id"] for r in day.table.to_pylist()] == ["s3", "s9", "s10", "s2"]
    assert (day.distinct_records, day.duplicates_dropped) == (5, 1)


def test_source_codes_order_records_as_their_sources_sort_even_past_int32_pair_ranks():
    # 46,341 distinct keys x 46,341 distinct versions: the (key, version) pair ranks pass
    # 2**31, where the codes fall back to dense pair ranks to stay inside an int64.
    n = 46_341
    keys = [f"k{(i * 7919) % n:06d}" for i in range(n)]
    versions = [f"v{(i * 104729) % n:06d}" for i in range(n)]
    lines = [(i * 31) % 5 + 1 for i in range(n)]
    staged = pa.table(
        {
            "_source_key": keys,
            "_source_version": versions,
            "_source_line": pa.array(lines, pa.int32()),
        }
    )
    codes = source_codes(staged)
    by_code = sorted(range(n), key=lambda i: codes[i])
    assert by_code == sorted(range(n), key=lambda i: (keys[i], versions[i], lines[i]))
    assert len(set(codes.tolist())) == n


def test_a_file_staged_before_an_optional_field_existed_reads_it_as_null(tmp_path: Path):
    store = LocalLakeStore(lake_dir=str(tmp_path))
    older = staged_file([("a", "v1", 1, SIGN_IN_EVENT)]).drop_columns(["event_timestamp"])
    store.write_bytes(f"staged/app_events/dt={DAY}/old-0000.parquet", parquet_bytes(older))
    store.write_bytes(
        f"staged/app_events/dt={DAY}/new-0000.parquet",
        parquet_bytes(staged_file([("b", "v1", 1, SIGN_IN_EVENT)])),
    )
    sign_ins = next(t for t in APP_EVENTS.tables if t.name == "sign_in_events")
    day = compact_day(store, APP_EVENTS, sign_ins, DAY)
    assert [r["session_id"] for r in day.table.to_pylist()] == ["s1", "s1"]


def test_a_staged_file_without_a_required_field_names_it(tmp_path: Path):
    store = LocalLakeStore(lake_dir=str(tmp_path))
    older = staged_file([("a", "v1", 1, SIGN_IN_EVENT)]).drop_columns(["session_id"])
    path = f"staged/app_events/dt={DAY}/old-0000.parquet"
    store.write_bytes(path, parquet_bytes(older))
    sign_ins = next(t for t in APP_EVENTS.tables if t.name == "sign_in_events")
    with pytest.raises(ValueError, match=f"{path} has no column 'session_id'"):
        compact_day(store, APP_EVENTS, sign_ins, DAY)


def test_a_day_built_from_the_rows_a_run_holds_equals_the_day_read_back(tmp_path: Path):
    """The ingest run compacts the staged files it wrote from memory: the same rows, in the
    same order, as reading them back; and it does not read them (corrupt files still build)."""
    iot = dataset("iot_sensor_data")
    store = LocalLakeStore(lake_dir=str(tmp_path))
    for n, device in enumerate(["1", "2", "3"]):
        readings = [
            iot_reading(deviceid=device, datetime=f"2024-05-0{1 + i % 2} 0{i % 10}:00:00")
            for i in range(600)
        ]
        readings.append(iot_reading(deviceid=device, temperature="hot"))  # quarantined
        drop(tmp_path, "iot_sensor_data", f"gw-{n}.ndjson", ndjson(readings))
    report = stage_landing_files(
        store,
        iot,
        [f"gw-{n}.ndjson" for n in range(3)],
        start=date(2020, 1, 1),
        now=datetime(2024, 6, 1),
        max_file_bytes=1 << 30,
    )
    assert sorted(report.staged_rows_by_dt) == ["2024-05-01", "2024-05-02"]
    assert sorted(report.held) == sorted(report.staged_paths)
    table = iot.tables[0]
    for dt in report.staged_rows_by_dt:
        read_back = compact_day(store, iot, table, dt)
        from_memory = compact_day(store, iot, table, dt, report.held)
        assert read_back.staged_paths == from_memory.staged_paths
        assert from_memory.table.equals(read_back.table)
        assert from_memory.table.num_rows == 900
    for path in report.staged_paths:
        (tmp_path / path).write_bytes(b"not parquet")
    assert compact_day(store, iot, table, "2024-05-01", report.held).table.num_rows == 900
    with pytest.raises(pa.ArrowInvalid):
        compact_day(store, iot, table, "2024-05-01")


def test_a_run_holds_no_more_staged_rows_than_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Past HELD_STAGED_ROWS the staged files are only on disk, and read back from there."""
    monkeypatch.setattr(staged_files, "HELD_STAGED_ROWS", 250)
    iot = dataset("iot_sensor_data")
    store = LocalLakeStore(lake_dir=str(tmp_path))
    readings = [
        iot_reading(datetime=f"2024-05-0{1 + i // 200} 00:00:{i % 60:02d}") for i in range(400)
    ]
    drop(tmp_path, "iot_sensor_data", "gw.ndjson", ndjson(readings))
    report = stage_landing_files(
        store,
        iot,
        ["gw.ndjson"],
        start=date(2020, 1, 1),
        now=datetime(2024, 6, 1),
        max_file_bytes=1 << 30,
    )
    assert len(report.staged_paths) == 2
    assert report.held_rows == 200 and len(report.held) == 1
    for dt in ("2024-05-01", "2024-05-02"):
        day = compact_day(store, iot, iot.tables[0], dt, report.held)
        assert day.table.num_rows == 200
