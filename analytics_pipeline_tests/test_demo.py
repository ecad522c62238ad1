"""The demo's sample, through the whole lake: every record once, and re-delivery adds nothing.

The pipeline runs twice for the whole module (deliver, then re-deliver the same sample):
each in-process pass takes seconds, so the tests share them and only read the results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from analytics_pipeline.cli.demo import report
from analytics_pipeline.cli.process import ProcessSummary, process_landing
from analytics_pipeline.cli.sample_data import SampleSummary, generate
from analytics_pipeline.cli.samples.movie_rental import CATEGORIES
from analytics_pipeline.datasets import DATASETS
from analytics_pipeline.definitions import build_definitions
from analytics_pipeline_tests.lake_helpers import landing_files, quarantine_lines, query
from analytics_pipeline_tests.local_lake import fresh_lake

END = date(2024, 3, 10)
SAMPLE = {"end_date": END, "days": 1, "scale": 0.1}


@dataclass(frozen=True)
class LakeCounts:
    table_rows: dict[str, int]
    quarantine_lines: dict[str, int]
    landing_files: dict[str, int]


@dataclass(frozen=True)
class Pass:
    sample: SampleSummary
    processed: ProcessSummary
    counts: LakeCounts


def lake_counts(lake_dir: Path, tables: list[str]) -> LakeCounts:
    return LakeCounts(
        table_rows={t: query(lake_dir, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables},
        quarantine_lines={s.name: len(quarantine_lines(lake_dir, s.name)) for s in DATASETS},
        landing_files={s.name: len(landing_files(lake_dir, s.name)) for s in DATASETS},
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dg.Definitions]]:
    lake_dir = tmp_path_factory.mktemp("demo") / "lake"
    yield lake_dir, build_definitions(fresh_lake(lake_dir))


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def deliver_and_process(lake: tuple[Path, dg.Definitions], instance: dg.DagsterInstance) -> Pass:
    lake_dir, defs = lake
    sample = generate(lake_dir, **SAMPLE)
    processed = process_landing(defs, instance)
    return Pass(sample, processed, lake_counts(lake_dir, sorted(sample.tables)))


@pytest.fixture(scope="module")
def first(lake: tuple[Path, dg.Definitions], instance: dg.DagsterInstance) -> Pass:
    return deliver_and_process(lake, instance)


@pytest.fixture(scope="module")
def again(first: Pass, lake: tuple[Path, dg.Definitions], instance: dg.DagsterInstance) -> Pass:
    return deliver_and_process(lake, instance)


def test_no_run_fails(first: Pass) -> None:
    assert first.processed.failed_runs == []
    assert first.processed.ingest_runs == len(DATASETS)


def test_every_good_record_is_one_row_of_its_table(first: Pass) -> None:
    assert first.counts.table_rows == first.sample.tables


def test_every_bad_or_unrouted_record_is_one_quarantine_line(first: Pass) -> None:
    assert first.counts.quarantine_lines == {
        name: d.bad_records + d.unrouted_records for name, d in first.sample.datasets.items()
    }
    assert first.sample.datasets["app_events"].unrouted_records > 0


def test_landing_is_empty_after_processing(first: Pass) -> None:
    assert first.counts.landing_files == {s.name: 0 for s in DATASETS}


def test_redelivering_the_same_sample_changes_no_count(first: Pass, again: Pass) -> None:
    assert again.sample == first.sample
    # The files really went through the lake again, and were recognised as already there.
    assert again.processed.ingest_runs == len(DATASETS)
    assert again.processed.failed_runs == []
    assert again.counts == first.counts


def test_demo_report_passes_on_the_processed_lake(
    first: Pass, lake: tuple[Path, dg.Definitions], capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(lake[0], first.sample, first.processed)
    out = capsys.readouterr().out
    assert "MISMATCH" not in out
    assert "daily_product_counts for 2024-03-10" in out
    assert "client-acme" in out  # the client level of web_request_stats
    revenue = out.split("daily_rental_revenue_by_category for 2024-03-10")[1]
    assert any(name in revenue for name in CATEGORIES)  # rows of categories, not an empty table


def test_demo_report_fails_when_a_table_is_short_of_the_sample(
    first: Pass, lake: tuple[Path, dg.Definitions], capsys: pytest.CaptureFixture[str]
) -> None:
    day = END.isoformat()
    table_days = {t: dict(days) for t, days in first.sample.table_days.items()}
    table_days["products"][day] += 1
    expecting_more = dataclasses.replace(first.sample, table_days=table_days)
    assert not report(lake[0], expecting_more, first.processed)
    assert "products" in next(
        line for line in capsys.readouterr().out.splitlines() if "MISMATCH" in line
    )


def test_demo_report_fails_when_a_run_failed(
    first: Pass, lake: tuple[Path, dg.Definitions]
) -> None:
    failed = dataclasses.replace(first.processed, failed_runs=["abc (ingest_products)"])
    assert not report(lake[0], first.sample, failed)


def test_demo_report_counts_unrouted_app_events_apart(
    first: Pass, lake: tuple[Path, dg.Definitions], capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(lake[0], first.sample, first.processed)
    delivered = first.sample.datasets["app_events"]
    [row] = [line.split() for line in capsys.readouterr().out.splitlines() if "app_events" in line]
    # dataset, all lines, bad, unrouted, this sample, of them unrouted, status
    assert row[2:] == [
        str(delivered.bad_records),
        str(delivered.unrouted_records),
        str(delivered.bad_records + delivered.unrouted_records),
        str(delivered.unrouted_records),
        "ok",
    ]
    more_unrouted = dataclasses.replace(delivered, unrouted_records=delivered.unrouted_records + 1)
    datasets = {**first.sample.datasets, "app_events": more_unrouted}
    assert not report(
        lake[0], dataclasses.replace(first.sample, datasets=datasets), first.processed
    )
