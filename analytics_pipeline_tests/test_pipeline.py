"""The whole lake, end to end: landing files for every dataset -> tables -> analytics.

One lake is processed once for the module (Dagster runs cost about a second each) and then
taken through the later stages in order: late data for an old day, a backfill of
already-processed days, and a run with nothing new. Each stage snapshots what the tests
read, so a test never depends on which stage ran before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from analytics_pipeline.cli.process import ProcessSummary, process_landing
from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline.defs.analytics import ANALYTICS
from analytics_pipeline.defs.keys import analytics_key, parquet_key, quarantine_key, table_key
from analytics_pipeline.resources.local.catalog import DuckDBCatalog
from analytics_pipeline.resources.local.store import LocalLakeStore
from analytics_pipeline_tests.lake_helpers import drop, ndjson, quarantine_lines, query
from analytics_pipeline_tests.local_lake import fresh_lake

D1, D2, D3 = "2024-03-01", "2024-03-02", "2024-03-03"
DAYS = (D1, D2, D3)
DATA_TABLES = tuple(t.name for spec in DATASETS for t in spec.tables)
# The analytics over these datasets (not those over the movie_rental database, absent here).
ANALYTICS_TABLES = tuple(a.name for a in ANALYTICS if set(a.tables) <= set(DATA_TABLES))
ALL_TABLES = DATA_TABLES + ANALYTICS_TABLES
SIGN_UP, SIGN_IN = "SignUpEvent", "SignInEvent"


# the landing data: a few good records per day and exactly one bad record per dataset


def drop_products(lake: Path) -> None:
    good = [(1, D1, "A"), (2, D1, "A"), (3, D1, "B"), (4, D2, "C"), (5, D3, "A"), (6, D3, "B")]
    for id_, day, product in good:
        drop(
            lake,
            "products",
            f"{id_}.json",
            f'{{"id": {id_}, "date": "{day}", "product": "{product}"}}',
        )
    drop(lake, "products", "7.json", f'{{"id": 7, "date": "{D1}", "product": "Z"}}')


def reading(device: str, when: str, temperature: str, humidity: str, wind: str, rain: str):
    return {
        "deviceid": device, "datetime": when, "temperature": temperature, "humidity": humidity,
        "winddirection": "180", "windintensity": wind, "rainheight": rain,
    }  # fmt: skip


def drop_iot(lake: Path) -> None:
    rows = []
    for day in DAYS:
        rows += [
            reading("1", f"{day} 08:00:00", "20", "50", "3", "1"),
            reading("1", f"{day} 20:00:00", "24", "60", "5", "2"),
            reading("2", f"{day} 12:00:00", "-5", "90", "0", "0"),
        ]
    rows.insert(4, reading("1", f"{D1} 25:00:00", "20", "50", "3", "1"))  # the bad one
    drop(lake, "iot_sensor_data", "station-export.ndjson", ndjson(rows))


def millis(day: str, hhmm: str) -> int:
    at = datetime.fromisoformat(f"{day}T{hhmm}:00+00:00")
    return int(at.timestamp() * 1000)


def event(kind: str, day: str, hhmm: str, session: str, **attributes: str) -> dict[str, Any]:
    return {
        "event_type": kind,
        "event_timestamp": millis(day, hhmm),
        "arrival_timestamp": millis(day, hhmm) + 1500,
        "attributes": attributes,
        "session": {"session_id": session},
        "endpoint": {"EffectiveDate": f"{day}T{hhmm}:00.000Z"},
    }


def drop_app_events(lake: Path) -> None:
    for n, day in enumerate(DAYS):
        events = [
            event(SIGN_UP, day, "09:00", f"s{n}-1", email=f"new{n}@example.com"),
            event(SIGN_IN, day, "10:00", f"s{n}-2", email="alice@example.com", id="u-1",
                  is_test_user="true", user_type="admin"),
            event(SIGN_IN, day, "11:30", f"s{n}-3", email="alice@example.com", id="null",
                  is_test_user="null", user_type="null"),
        ]  # fmt: skip
        if day == D1:
            events.append(event(SIGN_UP, day, "12:00", "s-bad", email="not-an-email"))
        drop(lake, "app_events", f"firehose/2024/03/0{n + 1}/part-{n}.json", ndjson(events))


def request(day: str, session: str, req: str, user: str, reseller: str, product: str | None):
    line = {
        "timestamp": f"{day}T14:00:00Z", "session_id": session, "request_id": req,
        "client_id": "c1", "reseller_id": reseller, "user_id": user, "path": "/cart",
    }  # fmt: skip
    if product is not None:
        line["product_id"] = product
    return line


def drop_web_requests(lake: Path) -> None:
    # D1: client c1 > reseller r1 > users u1 (2 requests, 3 products), u2 (1 request, none);
    #     client c1 > reseller r2 > user u3 (1 request, 1 product).
    d1 = [
        request(D1, "s1", "q1", "u1", "r1", "p1"),
        request(D1, "s1", "q1", "u1", "r1", "p2"),
        request(D1, "s1", "q2", "u1", "r1", "p1"),
        request(D1, "s2", "q3", "u2", "r1", None),
        request(D1, "s3", "q4", "u3", "r2", "p3"),
        {"timestamp": "yesterday", "session_id": "s9", "request_id": "q9", "client_id": "c1",
         "reseller_id": "r1", "user_id": "u1", "path": "/"},
    ]  # fmt: skip
    later = [request(day, f"s-{day}", f"q-{day}", "u1", "r1", "p1") for day in (D2, D3)]
    drop(lake, "web_requests", "app.log", ndjson(d1 + later))


def drop_late_iot(lake: Path) -> None:
    drop(lake, "iot_sensor_data", "late-station-export.ndjson",
         ndjson([reading("1", f"{D1} 23:00:00", "11", "40", "1", "4")]))  # fmt: skip


# snapshots of the lake and instance, taken after each stage


@dataclass(frozen=True)
class Snapshot:
    summary: ProcessSummary
    run_ids: frozenset[str]  # the runs this stage started
    rows: dict[str, list[tuple[Any, ...]]]  # table -> every row, ordered
    columns: dict[str, dict[str, str]]  # table -> column -> DuckDB type
    parquet: dict[tuple[str, str], list[str]]  # (table, dt) -> Parquet files
    locations: dict[str, dict[str, str]]  # table -> dt -> registered location


def snapshot(lake: Path, instance: dg.DagsterInstance, summary: ProcessSummary,
             before: set[str]) -> Snapshot:  # fmt: skip
    store = LocalLakeStore(lake_dir=str(lake))
    parquet: dict[tuple[str, str], list[str]] = {}
    for path in store.list_files("parquet"):
        _, table, dt_part, *_ = path.split("/")
        parquet.setdefault((table, dt_part.removeprefix("dt=")), []).append(path)
    catalog = DuckDBCatalog(lake_dir=str(lake))
    return Snapshot(
        summary=summary,
        run_ids=frozenset(r.run_id for r in instance.get_runs()) - before,
        rows={t: query(lake, f"SELECT * FROM {t} ORDER BY ALL") for t in ALL_TABLES},
        columns={
            t: dict(query(lake, f"SELECT column_name, column_type FROM (DESCRIBE {t})"))
            for t in ALL_TABLES
        },
        parquet=parquet,
        locations={t: catalog.partitions(t) for t in ALL_TABLES},
    )


@dataclass
class Lake:
    dir: Path
    defs: dg.Definitions
    instance: dg.DagsterInstance

    def run_ids(self) -> set[str]:
        return {r.run_id for r in self.instance.get_runs()}

    def process(self) -> Snapshot:
        before = self.run_ids()
        summary = process_landing(self.defs, self.instance)
        return snapshot(self.dir, self.instance, summary, before)

    def rebuild(self, days: tuple[str, ...]) -> Snapshot:
        """A backfill of the days: every Parquet, table and analytics asset, one run per day."""
        keys = [k for t in DATA_TABLES for k in (parquet_key(t), table_key(t))]
        keys += [analytics_key(a) for a in ANALYTICS_TABLES]
        job = self.defs.resolve_implicit_global_asset_job_def()
        before = self.run_ids()
        summary = ProcessSummary()
        for dt in days:
            result = job.execute_in_process(
                partition_key=dt, asset_selection=keys, instance=self.instance,
                raise_on_error=False,
            )  # fmt: skip
            summary.automation_runs += 1
            if not result.success:
                summary.failed_runs.append(result.run_id)
        return snapshot(self.dir, self.instance, summary, before)


@dataclass(frozen=True)
class Stages:
    lake: Lake
    first: Snapshot
    late: Snapshot
    backfill: Snapshot
    again: Snapshot


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    lake_dir = tmp_path_factory.mktemp("pipeline") / "lake"
    settings = fresh_lake(lake_dir)
    # In-memory run and event storage: the same SQL storage code as SQLite on disk, without
    # a file sync per event, which is most of a run's second on a busy machine.
    with dg.DagsterInstance.ephemeral() as instance:
        yield Lake(lake_dir, build_definitions(settings), instance)


@pytest.fixture(scope="module")
def first(lake: Lake) -> Snapshot:
    drop_products(lake.dir)
    drop_iot(lake.dir)
    drop_app_events(lake.dir)
    drop_web_requests(lake.dir)
    return lake.process()


@pytest.fixture(scope="module")
def late(lake: Lake, first: Snapshot) -> Snapshot:
    drop_late_iot(lake.dir)
    return lake.process()


@pytest.fixture(scope="module")
def backfill(lake: Lake, late: Snapshot) -> Snapshot:
    return lake.rebuild(DAYS)


@pytest.fixture(scope="module")
def again(lake: Lake, backfill: Snapshot) -> Snapshot:
    return lake.process()


def rows_of(snap: Snapshot, table: str, dt: str | None = None) -> list[tuple[Any, ...]]:
    """Rows without the trailing dt column, optionally of one day."""
    return [row[:-1] for row in snap.rows[table] if dt is None or row[-1] == dt]


def materializations(lake: Lake, key: dg.AssetKey, run_ids: frozenset[str], dt: str | None = None):
    records = lake.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[dt] if dt else None), limit=100
    ).records
    return [r.asset_materialization for r in records if r.run_id in run_ids]


def metadata_values(materialization: dg.AssetMaterialization) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}


def check_evaluations(lake: Lake, run_ids: frozenset[str]) -> list[Any]:
    return [
        entry.dagster_event.event_specific_data
        for run_id in run_ids
        for entry in lake.instance.all_logs(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]


# first processing: everything that landed reaches the tables


def test_every_run_succeeds(first: Snapshot) -> None:
    assert first.summary.failed_runs == []
    assert first.summary.ingest_runs == len(DATASETS)


def test_landing_is_emptied_into_the_archive(lake: Lake, first: Snapshot) -> None:
    assert not [p for p in (lake.dir / "landing").rglob("*") if p.is_file()]
    archived = sorted(p.relative_to(lake.dir / "archive").as_posix()
                      for p in (lake.dir / "archive").rglob("*") if p.is_file())  # fmt: skip
    assert len(archived) == 7 + 1 + 3 + 1
    assert "app_events/firehose/2024/03/01/part-0.json" in archived


def test_one_parquet_file_per_table_and_day(first: Snapshot) -> None:
    assert set(first.parquet) == {(t, dt) for t in ALL_TABLES for dt in DAYS}
    for (table, dt), files in first.parquet.items():
        assert len(files) == 1, (table, dt, files)
        assert files[0].startswith(f"parquet/{table}/dt={dt}/")
        assert files[0].endswith(".snappy.parquet")


def test_catalog_views_point_at_the_parquet_files(lake: Lake, first: Snapshot) -> None:
    for table in ALL_TABLES:
        assert first.locations[table] == {
            dt: str(lake.dir.resolve() / first.parquet[(table, dt)][0]) for dt in DAYS
        }


def test_products_table_holds_exactly_the_good_records(first: Snapshot) -> None:
    assert first.columns["products"] == {
        "id": "BIGINT", "date": "DATE", "product": "VARCHAR", "dt": "VARCHAR"
    }  # fmt: skip
    assert first.rows["products"] == [
        (1, date(2024, 3, 1), "A", D1),
        (2, date(2024, 3, 1), "A", D1),
        (3, date(2024, 3, 1), "B", D1),
        (4, date(2024, 3, 2), "C", D2),
        (5, date(2024, 3, 3), "A", D3),
        (6, date(2024, 3, 3), "B", D3),
    ]


def test_iot_strings_become_typed_readings(first: Snapshot) -> None:
    assert first.columns["iot_sensor_data"] == {
        "deviceid": "INTEGER", "datetime": "TIMESTAMP", "temperature": "SMALLINT",
        "humidity": "SMALLINT", "winddirection": "SMALLINT", "windintensity": "SMALLINT",
        "rainheight": "SMALLINT", "dt": "VARCHAR",
    }  # fmt: skip
    assert rows_of(first, "iot_sensor_data", D1) == [
        (1, datetime(2024, 3, 1, 8), 20, 50, 180, 3, 1),
        (1, datetime(2024, 3, 1, 20), 24, 60, 180, 5, 2),
        (2, datetime(2024, 3, 1, 12), -5, 90, 180, 0, 0),
    ]
    assert len(first.rows["iot_sensor_data"]) == 9


def test_app_events_split_into_sign_ups_and_sign_ins(first: Snapshot) -> None:
    assert rows_of(first, "sign_up_events", D1) == [
        (SIGN_UP, datetime(2024, 3, 1, 9), "s0-1", "new0@example.com")
    ]
    assert {row[-1] for row in first.rows["sign_up_events"]} == set(DAYS)
    assert all(row[0] == SIGN_IN for row in first.rows["sign_in_events"])
    assert len(first.rows["sign_in_events"]) == 2 * len(DAYS)


def test_sign_in_attributes_are_typed_and_null_literals_are_null(first: Snapshot) -> None:
    assert first.columns["sign_in_events"]["is_test_user"] == "BOOLEAN"
    assert first.columns["sign_in_events"]["datetime"] == "TIMESTAMP"
    assert rows_of(first, "sign_in_events", D2) == [
        (SIGN_IN, datetime(2024, 3, 2, 10), "s1-2", "alice@example.com", "u-1", True, "admin"),
        (SIGN_IN, datetime(2024, 3, 2, 11, 30), "s1-3", "alice@example.com", None, None, None),
    ]


def test_web_requests_table_keeps_lines_without_a_product(first: Snapshot) -> None:
    d1 = rows_of(first, "web_requests", D1)
    assert len(d1) == 5
    assert [r for r in d1 if r[2] == "q3"] == [
        (datetime(2024, 3, 1, 14), "s2", "q3", "c1", "r1", "u2", None, "/cart")
    ]


def test_each_bad_record_is_quarantined_with_its_reason(lake: Lake, first: Snapshot) -> None:
    expected = {
        "products": ("7.json", 1, "'Z' in field product"),
        "iot_sensor_data": ("station-export.ndjson", 5, "invalid timestamp '2024-03-01 25:00:00'"),
        "app_events": ("firehose/2024/03/01/part-0.json", 4, "invalid email 'not-an-email'"),
        "web_requests": ("app.log", 6, "invalid timestamp 'yesterday'"),
    }
    for dataset, (key, line, reason) in expected.items():
        [entry] = quarantine_lines(lake.dir, dataset)
        assert entry["source_key"] == key
        assert entry["line"] == line
        assert reason in entry["reason"]


def test_daily_product_counts(first: Snapshot) -> None:
    assert first.rows["daily_product_counts"] == [
        ("A", 1, D3), ("A", 2, D1), ("B", 1, D1), ("B", 1, D3), ("C", 1, D2)
    ]  # fmt: skip


def test_iot_daily_device_stats_min_avg_max(first: Snapshot) -> None:
    columns = list(first.columns["iot_daily_device_stats"])
    stats = [dict(zip(columns, row, strict=True)) for row in first.rows["iot_daily_device_stats"]]
    device1 = next(s for s in stats if s["dt"] == D1 and s["deviceid"] == 1)
    assert device1 == {
        "deviceid": 1, "readings": 2, "min_temperature": 20, "avg_temperature": 22.0,
        "max_temperature": 24, "min_humidity": 50, "avg_humidity": 55.0, "max_humidity": 60,
        "min_windintensity": 3, "avg_windintensity": 4.0, "max_windintensity": 5,
        "total_rainheight": 3, "dt": D1,
    }  # fmt: skip
    device2 = next(s for s in stats if s["dt"] == D1 and s["deviceid"] == 2)
    assert (device2["min_temperature"], device2["avg_temperature"]) == (-5, -5.0)
    assert len(stats) == 2 * len(DAYS)


def test_analytics_columns_have_the_types_athena_would_give(first: Snapshot) -> None:
    assert first.columns["daily_product_counts"] == {
        "product": "VARCHAR", "product_count": "BIGINT", "dt": "VARCHAR"
    }  # fmt: skip
    iot = first.columns["iot_daily_device_stats"]
    assert (iot["deviceid"], iot["readings"], iot["total_rainheight"]) == (
        "INTEGER",
        "BIGINT",
        "BIGINT",
    )
    assert {iot[f"{agg}_temperature"] for agg in ("min", "max")} == {"SMALLINT"}
    assert iot["avg_temperature"] == "DOUBLE"
    assert set(first.columns["daily_user_events"].values()) == {"VARCHAR", "BIGINT"}
    web = first.columns["web_request_stats"]
    assert (web["unique_sessions"], web["requests"]) == ("BIGINT", "BIGINT")
    assert (web["requests_per_session"], web["products_per_request"]) == ("DOUBLE", "DOUBLE")


def test_daily_user_events(first: Snapshot) -> None:
    assert first.rows["daily_user_events"] == sorted(
        row for day in DAYS for row in [("sign_in", 2, 1, 1, day), ("sign_up", 1, 1, 0, day)]
    )


def test_web_request_stats_at_client_reseller_and_user_level(first: Snapshot) -> None:
    columns = list(first.columns["web_request_stats"])
    assert columns[:4] == ["level", "client_id", "reseller_id", "user_id"]
    d1 = {row[:4]: row[4:-1] for row in first.rows["web_request_stats"] if row[-1] == D1}
    assert d1 == {
        ("client", "c1", None, None): (3, 4, pytest.approx(4 / 3), 1.0),
        ("reseller", "c1", "r1", None): (2, 3, 1.5, 1.0),
        ("reseller", "c1", "r2", None): (1, 1, 1.0, 1.0),
        ("user", "c1", "r1", "u1"): (1, 2, 2.0, 1.5),
        ("user", "c1", "r1", "u2"): (1, 1, 1.0, 0.0),
        ("user", "c1", "r2", "u3"): (1, 1, 1.0, 1.0),
    }


def test_every_asset_check_ran_and_passed(lake: Lake, first: Snapshot) -> None:
    evaluations = check_evaluations(lake, first.run_ids)
    failed = [(e.asset_check_key, e.metadata) for e in evaluations if not e.passed]
    assert failed == []
    all_checks = set(lake.defs.resolve_asset_graph().asset_check_keys)
    assert {e.asset_check_key for e in evaluations} == all_checks


def test_latest_check_execution_of_every_check_succeeded(lake: Lake, first: Snapshot) -> None:
    for check_key in lake.defs.resolve_asset_graph().asset_check_keys:
        [record] = lake.instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=1
        )
        assert record.status.value == "SUCCEEDED", check_key


def test_parquet_materializations_carry_row_count_and_bytes(lake: Lake, first: Snapshot) -> None:
    [latest] = materializations(lake, parquet_key("products"), first.run_ids, D1)[:1]
    meta = metadata_values(latest)
    assert meta["dagster/row_count"] == 3
    assert meta["bytes"] > 0
    assert meta["path"] == first.parquet[("products", D1)][0]


def test_table_materializations_carry_served_row_count(lake: Lake, first: Snapshot) -> None:
    [latest] = materializations(lake, table_key("iot_sensor_data"), first.run_ids, D2)[:1]
    assert metadata_values(latest)["dagster/row_count"] == 3


def test_analytics_materializations_carry_sql_and_row_count(lake: Lake, first: Snapshot) -> None:
    [latest] = materializations(lake, analytics_key("daily_product_counts"), first.run_ids, D1)[:1]
    meta = metadata_values(latest)
    assert meta["dagster/row_count"] == 2
    assert "FROM products" in meta["query"]
    assert meta["engine"] == "duckdb"


def test_quarantine_materializations_count_rejected_records(lake: Lake, first: Snapshot) -> None:
    for spec in DATASETS:
        [event] = materializations(lake, quarantine_key(spec.name), first.run_ids)
        assert metadata_values(event)["rejected_records"] == 1


# late data: a file with an old day's records updates that day and only that day


def test_late_data_runs_succeed(late: Snapshot) -> None:
    assert late.summary.failed_runs == []
    assert late.summary.ingest_runs == 1


def test_late_record_lands_in_its_event_day(first: Snapshot, late: Snapshot) -> None:
    added = set(late.rows["iot_sensor_data"]) - set(first.rows["iot_sensor_data"])
    assert added == {(1, datetime(2024, 3, 1, 23), 11, 40, 180, 1, 4, D1)}
    assert len(late.rows["iot_sensor_data"]) == len(first.rows["iot_sensor_data"]) + 1


def test_late_record_updates_the_old_days_analytics(late: Snapshot) -> None:
    columns = list(late.columns["iot_daily_device_stats"])
    stats = [dict(zip(columns, row, strict=True)) for row in late.rows["iot_daily_device_stats"]]
    device1 = next(s for s in stats if s["dt"] == D1 and s["deviceid"] == 1)
    assert device1["readings"] == 3
    assert (device1["min_temperature"], device1["max_temperature"]) == (11, 24)
    assert device1["avg_temperature"] == pytest.approx(55 / 3)
    assert device1["total_rainheight"] == 7


def test_late_data_rewrites_only_the_touched_day(first: Snapshot, late: Snapshot) -> None:
    changed = {key for key in first.parquet if late.parquet[key] != first.parquet[key]}
    assert changed == {("iot_sensor_data", D1), ("iot_daily_device_stats", D1)}
    # The replaced version is gone once the catalog points at the new one.
    assert len(late.parquet[("iot_sensor_data", D1)]) == 1


def test_late_data_runs_only_the_touched_partition(lake: Lake, late: Snapshot) -> None:
    partitions = {
        lake.instance.get_run_by_id(run_id).tags.get("dagster/partition") for run_id in late.run_ids
    }
    assert partitions == {None, D1}  # None: the ingest run


# backfill: rebuilding processed days from staged data changes nothing


def test_backfill_runs_succeed(backfill: Snapshot) -> None:
    assert backfill.summary.failed_runs == []
    assert len(backfill.run_ids) == len(DAYS)


def test_backfill_keeps_every_parquet_file(late: Snapshot, backfill: Snapshot) -> None:
    assert backfill.parquet == late.parquet


def test_backfill_keeps_every_catalog_location(late: Snapshot, backfill: Snapshot) -> None:
    assert backfill.locations == late.locations
    assert backfill.rows == late.rows


def test_backfill_reports_every_partition_unchanged(lake: Lake, backfill: Snapshot) -> None:
    keys = [parquet_key(t) for t in DATA_TABLES] + [analytics_key(a) for a in ANALYTICS_TABLES]
    for key in keys:
        events = materializations(lake, key, backfill.run_ids)
        assert sorted(e.partition for e in events) == list(DAYS), key
        assert all(metadata_values(e)["unchanged"] is True for e in events), key


def test_backfill_republishes_tables_in_place(lake: Lake, backfill: Snapshot) -> None:
    for table in DATA_TABLES:
        for event in materializations(lake, table_key(table), backfill.run_ids):
            meta = metadata_values(event)
            assert meta["previous_location"] == meta["location"]
            assert meta["versions_removed"] == 0
            assert meta["table_status"] == "unchanged"


def test_backfill_checks_pass(lake: Lake, backfill: Snapshot) -> None:
    evaluations = check_evaluations(lake, backfill.run_ids)
    assert evaluations
    assert [e.asset_check_key for e in evaluations if not e.passed] == []


# idempotency: nothing new, nothing runs


def test_processing_with_nothing_new_starts_no_runs(backfill: Snapshot, again: Snapshot) -> None:
    assert (again.summary.ingest_runs, again.summary.automation_runs) == (0, 0)
    assert again.run_ids == frozenset()
    assert again.parquet == backfill.parquet


# a run that fails: reported once, its file kept in landing for the next attempt


def test_failed_ingest_is_reported_once_and_its_file_stays_in_landing(
    lake_dir: Path, defs: dg.Definitions, instance: dg.DagsterInstance
) -> None:
    drop(lake_dir, "products", "1.json", f'{{"id": 1, "date": "{D1}", "product": "A"}}')
    # A file where staged/products/ should be a directory: every staged write fails.
    (lake_dir / "staged" / "products").write_text("not a directory")
    summary = process_landing(defs, instance)
    assert (summary.ingest_runs, len(summary.failed_runs)) == (1, 1)
    assert "ingest_products" in summary.failed_runs[0]
    assert (lake_dir / "landing" / "products" / "1.json").exists()


def test_a_file_redelivered_while_its_run_stages_it_reaches_the_table_by_the_next_run(
    lake_dir: Path,
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A producer renames a new delivery over a key after the run read it, before it is
    archived: the run stages what it read and leaves the new delivery in landing; the same
    `make process` stages it in a second run. Both deliveries' rows are served, once each."""
    path = drop(lake_dir, "products", "1.json", f'{{"id": 1, "date": "{D1}", "product": "A"}}')
    archive_many = LocalLakeStore.archive_landing_many
    redelivered: list[str] = []

    def redeliver_then_archive(self: LocalLakeStore, dataset: str, items: Any) -> Any:
        if not redelivered:
            fresh = path.with_name(".1.json.tmp")
            fresh.write_text(f'{{"id": 2, "date": "{D1}", "product": "B"}}')
            fresh.replace(path)
            redelivered.append("1.json")
        return archive_many(self, dataset, items)

    monkeypatch.setattr(LocalLakeStore, "archive_landing_many", redeliver_then_archive)

    summary = process_landing(defs, instance)

    assert (summary.ingest_runs, summary.failed_runs) == (2, [])
    assert query(lake_dir, "SELECT id, product FROM products ORDER BY id") == [(1, "A"), (2, "B")]
    assert list((lake_dir / "landing" / "products").iterdir()) == []
    assert '"id": 2' in (lake_dir / "archive" / "products" / "1.json").read_text()
