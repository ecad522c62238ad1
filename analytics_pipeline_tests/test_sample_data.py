"""The sample data: every file parses to exactly the good and bad records its summary claims."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from analytics_pipeline.cli import sample_data
from analytics_pipeline.cli.sample_data import SampleSummary, generate
from analytics_pipeline.cli.samples.iot_sensor_data import LATE_BY_DAYS
from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.datasets.app_events import (
    SIGN_IN_EVENT,
    SIGN_UP_EVENT,
    USERAUTH_SIGN_IN,
    USERAUTH_SIGN_UP,
)
from analytics_pipeline.lake.parsing import ParsedFile, parse_landing_file

END = date(2024, 3, 10)
SMALL = {"end_date": END, "days": 3, "scale": 0.1}


def parse_landing(lake_dir: Path, dataset: str) -> dict[str, ParsedFile]:
    spec = next(s for s in DATASETS if s.name == dataset)
    base = lake_dir / "landing" / dataset
    return {
        path.relative_to(base).as_posix(): parse_landing_file(
            spec,
            path.relative_to(base).as_posix(),
            path.read_bytes(),
            start=date(2020, 1, 1),
            now=datetime.combine(END + timedelta(days=1), datetime.min.time()),
        )
        for path in sorted(base.rglob("*"))
        if path.is_file()
    }


def landing_bytes(lake_dir: Path) -> dict[str, bytes]:
    base = lake_dir / "landing"
    return {p.relative_to(base).as_posix(): p.read_bytes() for p in base.rglob("*") if p.is_file()}


@pytest.fixture
def summary(lake_dir: Path) -> SampleSummary:
    return generate(lake_dir, **SMALL)


def test_every_dataset_gets_good_and_bad_records(summary: SampleSummary) -> None:
    assert set(summary.datasets) == {spec.name for spec in DATASETS}
    for name, delivered in summary.datasets.items():
        assert delivered.good_records > 0, name
        assert delivered.bad_records > 0, name


def test_parsed_good_and_bad_records_equal_the_summary(
    lake_dir: Path, summary: SampleSummary
) -> None:
    for name, delivered in summary.datasets.items():
        parsed = parse_landing(lake_dir, name)
        assert len(parsed) == delivered.files, name
        assert sum(len(p.records) for p in parsed.values()) == delivered.good_records, name
        rejections = [r for p in parsed.values() for r in p.rejections]
        assert sum(not r.unrouted for r in rejections) == delivered.bad_records, name
        assert sum(r.unrouted for r in rejections) == delivered.unrouted_records, name


def test_app_events_are_mostly_the_apps_own_with_some_standard_and_unrouted(
    lake_dir: Path, summary: SampleSummary
) -> None:
    parsed = parse_landing(lake_dir, "app_events").values()
    types = Counter(record["event_type"] for p in parsed for record in p.records)
    assert set(types) <= {SIGN_UP_EVENT, SIGN_IN_EVENT, USERAUTH_SIGN_UP, USERAUTH_SIGN_IN}
    assert types[SIGN_UP_EVENT] and types[SIGN_IN_EVENT]
    assert types[USERAUTH_SIGN_UP] + types[USERAUTH_SIGN_IN]
    assert types[SIGN_UP_EVENT] + types[SIGN_IN_EVENT] > sum(types.values()) / 2
    unrouted = [r.reason for p in parsed for r in p.rejections if r.unrouted]
    assert unrouted == ["event_type 'PageView' is not routed to any table"] * len(unrouted)
    assert len(unrouted) == summary.datasets["app_events"].unrouted_records > 0


def test_good_records_per_table_and_day_equal_the_summary(
    lake_dir: Path, summary: SampleSummary
) -> None:
    counted: dict[str, Counter[str]] = {}
    for spec in DATASETS:
        for parsed in parse_landing(lake_dir, spec.name).values():
            for record in parsed.records:
                for table in spec.tables:
                    if table.where_in is None or record[table.where_in[0]] in table.where_in[1]:
                        counted.setdefault(table.name, Counter())[record["dt"]] += 1
    assert {t: dict(days) for t, days in counted.items()} == summary.table_days
    assert summary.tables["sign_up_events"] > 0
    assert summary.tables["sign_in_events"] > 0


def test_each_bad_record_is_a_different_kind(lake_dir: Path, summary: SampleSummary) -> None:
    reasons = [
        rejection.reason.split(":")[0]
        for name in summary.datasets
        for parsed in parse_landing(lake_dir, name).values()
        for rejection in parsed.rejections
        if not rejection.unrouted
    ]
    assert len(reasons) == sum(d.bad_records for d in summary.datasets.values())
    assert len(set(reasons)) == len(reasons), Counter(reasons).most_common(3)


def test_crlf_and_blank_lines_are_present_and_are_not_records(
    lake_dir: Path, summary: SampleSummary
) -> None:
    files = landing_bytes(lake_dir)
    crlf = [key for key, data in files.items() if b"\r\n" in data]
    assert crlf
    parsed = {
        f"{name}/{key}": p
        for name in summary.datasets
        for key, p in parse_landing(lake_dir, name).items()
    }
    assert all(not parsed[key].rejections and parsed[key].records for key in crlf)
    blank = [key for key, p in parsed.items() if p.blank_lines]
    assert blank
    assert all(not parsed[key].rejections for key in blank)


def test_the_empty_and_the_non_utf8_file_are_quarantined_whole(
    lake_dir: Path, summary: SampleSummary
) -> None:
    files = landing_bytes(lake_dir)
    empty = [key for key, data in files.items() if not data]
    assert len(empty) == 1
    undecodable = []
    for key, data in files.items():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            undecodable.append(key)
    assert len(undecodable) == 1
    for key in empty + undecodable:
        dataset, _, name = key.partition("/")
        (rejection,) = parse_landing(lake_dir, dataset)[name].rejections
        assert rejection.line is None


def test_one_late_file_holds_records_days_older_than_its_batch(lake_dir: Path) -> None:
    summary = generate(lake_dir, end_date=END, days=14, scale=0.05)
    late = [(name, key) for name, d in summary.datasets.items() for key in d.late_keys]
    assert len(late) == 1
    name, key = late[0]
    batch_day = date.fromisoformat(key[:10].replace("/", "-"))
    (dt,) = {r["dt"] for r in parse_landing(lake_dir, name)[key].records}
    assert date.fromisoformat(dt) == batch_day - timedelta(days=LATE_BY_DAYS)


def test_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", **SMALL)
    second = generate(tmp_path / "b", **SMALL)
    assert landing_bytes(tmp_path / "a") == landing_bytes(tmp_path / "b")
    assert first.table_days == second.table_days


def test_another_seed_writes_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", **SMALL)
    generate(tmp_path / "b", **SMALL, seed=8)
    assert landing_bytes(tmp_path / "a") != landing_bytes(tmp_path / "b")


def test_overlapping_windows_deliver_identical_files_for_the_same_key(tmp_path: Path) -> None:
    # A demo run today and one tomorrow overlap; a key delivered twice must hold the same
    # bytes, or the lake would hold both versions of its records.
    generate(tmp_path / "today", end_date=END, days=4, scale=0.1)
    generate(tmp_path / "tomorrow", end_date=END + timedelta(days=1), days=4, scale=0.1)
    today, tomorrow = landing_bytes(tmp_path / "today"), landing_bytes(tmp_path / "tomorrow")
    shared = today.keys() & tomorrow.keys()
    assert len(shared) > len(today) / 2
    assert {k: today[k] for k in shared} == {k: tomorrow[k] for k in shared}


def test_cli_writes_the_sample_and_prints_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "cli"
    code = sample_data.main(
        ["--lake-dir", str(lake), "--days", "2", "--end-date", "2024-03-10", "--scale", "0.1"]
    )
    assert code == 0
    out = capsys.readouterr().out
    expected = generate(tmp_path / "api", end_date=END, days=2, scale=0.1)
    assert landing_bytes(lake) == landing_bytes(tmp_path / "api")
    assert "2024-03-09 .. 2024-03-10" in out
    for name, delivered in expected.datasets.items():
        assert any(
            line.split()[:4]
            == [name, str(delivered.files), str(delivered.good_records), str(delivered.bad_records)]
            for line in out.splitlines()
        )
