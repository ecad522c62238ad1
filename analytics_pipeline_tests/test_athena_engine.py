"""The Athena engine's lifecycle (start, poll, succeed, fail, cancel, stop) and its cost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import dagster as dg
import pyarrow as pa
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from analytics_pipeline.lake import athena_cost
from analytics_pipeline.resources.aws import athena_engine
from analytics_pipeline.resources.aws.athena_engine import (
    AthenaEngine,
    AthenaQueryError,
    AthenaQueryTimeout,
    poll_intervals,
    result_set_to_arrow,
)
from analytics_pipeline_tests.lake_helpers import queue_athena_rows

SQL = "SELECT product, count(*) AS n FROM products WHERE dt = '2024-01-02' GROUP BY 1"
QUERY_ID = "0f1e2d3c-aaaa-bbbb-cccc-123456789abc"
MIB = 2**20


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Polling waits, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(athena_engine, "_sleep", waits.append)
    return waits


@pytest.fixture
def engine() -> AthenaEngine:
    return AthenaEngine(
        database="lake",
        workgroup="analytics",
        output_location="s3://results/athena/",
        poll_interval_seconds=0.1,
        max_poll_interval_seconds=0.5,
    )


@pytest.fixture
def stub(engine: AthenaEngine) -> Iterator[Stubber]:
    with Stubber(engine.athena_client()) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expect_start(stub: Stubber, sql: str = SQL) -> None:
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": QUERY_ID},
        {
            "QueryString": sql,
            "WorkGroup": "analytics",
            "QueryExecutionContext": {"Database": "lake"},
            "ResultConfiguration": {"OutputLocation": "s3://results/athena/"},
        },
    )


def expect_state(
    stub: Stubber,
    state: str,
    *,
    reason: str | None = None,
    scanned: int = 0,
    engine_ms: int = 0,
    statement_type: str = "DML",
) -> None:
    status: dict[str, Any] = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    stub.add_response(
        "get_query_execution",
        {
            "QueryExecution": {
                "QueryExecutionId": QUERY_ID,
                "StatementType": statement_type,
                "Status": status,
                "Statistics": {
                    "DataScannedInBytes": scanned,
                    "EngineExecutionTimeInMillis": engine_ms,
                },
            }
        },
        {"QueryExecutionId": QUERY_ID},
    )


def expect_results(stub: Stubber, pages: list[list[list[str | None]]]) -> None:
    columns = [
        {"Name": "product", "Type": "varchar"},
        {"Name": "n", "Type": "bigint"},
    ]
    for i, rows in enumerate(pages):
        response: dict[str, Any] = {
            "ResultSet": {
                "Rows": [
                    {"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                    for row in rows
                ],
                "ResultSetMetadata": {"ColumnInfo": columns},
            }
        }
        params: dict[str, Any] = {"QueryExecutionId": QUERY_ID, "MaxResults": 1000}
        if i + 1 < len(pages):
            response["NextToken"] = f"page{i + 1}"
        if i > 0:
            params["NextToken"] = f"page{i}"
        stub.add_response("get_query_results", response, params)


def expect_stop(stub: Stubber) -> None:
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QUERY_ID})


# success


def test_a_query_is_polled_until_it_succeeds_and_returns_every_page_as_arrow(
    engine: AthenaEngine, stub: Stubber, sleeps: list[float]
):
    expect_start(stub)
    for state in ("QUEUED", "RUNNING", "RUNNING"):
        expect_state(stub, state)
    expect_state(stub, "SUCCEEDED", scanned=3 * MIB, engine_ms=1234)
    expect_results(stub, [[["product", "n"], ["A", "2"]], [["B", "5"], ["C", None]]])

    result = engine.run_query(SQL)

    assert result.table.to_pylist() == [
        {"product": "A", "n": 2},
        {"product": "B", "n": 5},
        {"product": "C", "n": None},
    ]
    assert result.table.schema.field("n").type == pa.int64()
    assert (result.engine, result.executed_sql) == ("athena", SQL)
    assert result.stats["athena_query_id"] == QUERY_ID
    assert result.stats["athena_bytes_scanned"] == 3 * MIB
    assert result.stats["athena_engine_ms"] == 1234


def test_polling_backs_off_between_polls(engine: AthenaEngine, stub: Stubber, sleeps: list[float]):
    expect_start(stub)
    for _ in range(5):
        expect_state(stub, "RUNNING")
    expect_state(stub, "SUCCEEDED")
    expect_results(stub, [[["product", "n"]]])

    engine.run_query(SQL)

    assert sleeps == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_poll_intervals_double_up_to_the_cap():
    intervals = poll_intervals(0.25, 3.0)

    assert [next(intervals) for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


# failure


def test_a_failed_query_raises_athenas_reason_and_the_query_id(
    engine: AthenaEngine, stub: Stubber, sleeps: list[float]
):
    reason = "COLUMN_NOT_FOUND: line 1:8: Column 'prodcut' cannot be resolved"
    expect_start(stub)
    expect_state(stub, "RUNNING")
    expect_state(stub, "FAILED", reason=reason)

    with pytest.raises(AthenaQueryError) as failure:
        engine.run_query(SQL)

    assert reason in str(failure.value)
    assert QUERY_ID in str(failure.value)
    assert failure.value.state == "FAILED"


def test_a_query_cancelled_elsewhere_raises_with_its_reason(
    engine: AthenaEngine, stub: Stubber, sleeps: list[float]
):
    expect_start(stub)
    expect_state(stub, "CANCELLED", reason="Query cancelled by user")

    with pytest.raises(AthenaQueryError, match=f"{QUERY_ID} CANCELLED: Query cancelled by user"):
        engine.run_query(SQL)


# cancellation


@pytest.mark.parametrize(
    "interruption",
    [dg.DagsterExecutionInterruptedError, KeyboardInterrupt],
    ids=lambda e: e.__name__,
)
def test_an_interrupted_run_stops_the_query_and_reraises(
    engine: AthenaEngine,
    stub: Stubber,
    monkeypatch: pytest.MonkeyPatch,
    interruption: type[BaseException],
):
    def terminated(_: float) -> None:
        raise interruption()

    monkeypatch.setattr(athena_engine, "_sleep", terminated)
    expect_start(stub)
    expect_state(stub, "RUNNING")
    expect_stop(stub)

    with pytest.raises(interruption):
        engine.run_query(SQL)
    # The stub's exit asserts StopQueryExecution was called with the query id.


def test_a_dagster_run_termination_is_not_an_exception_subclass():
    # Why the engine catches BaseException: `except Exception` would miss a terminated run.
    assert not issubclass(dg.DagsterExecutionInterruptedError, Exception)


def test_a_query_past_its_timeout_is_stopped(sleeps: list[float]):
    engine = AthenaEngine(
        database="lake",
        workgroup="analytics",
        output_location="s3://results/athena/",
        timeout_seconds=0,
    )
    stub = Stubber(engine.athena_client())
    expect_start(stub)
    expect_state(stub, "RUNNING")
    expect_stop(stub)

    with stub, pytest.raises(AthenaQueryTimeout, match=QUERY_ID):
        engine.run_query(SQL)
    stub.assert_no_pending_responses()


def test_a_failure_to_stop_does_not_hide_the_interruption(
    engine: AthenaEngine, stub: Stubber, monkeypatch: pytest.MonkeyPatch
):
    def terminated(_: float) -> None:
        raise dg.DagsterExecutionInterruptedError()

    monkeypatch.setattr(athena_engine, "_sleep", terminated)
    expect_start(stub)
    expect_state(stub, "RUNNING")
    stub.add_client_error("stop_query_execution", "InvalidRequestException", "already done")

    with pytest.raises(dg.DagsterExecutionInterruptedError):
        engine.run_query(SQL)


# cost


def test_bytes_scanned_become_cost_metadata_at_5_dollars_per_tb(
    engine: AthenaEngine, stub: Stubber, sleeps: list[float]
):
    expect_start(stub)
    expect_state(stub, "SUCCEEDED", scanned=2**40)
    expect_results(stub, [[["product", "n"]]])

    assert engine.run_query(SQL).stats["athena_cost_usd"] == pytest.approx(5.0)


def test_a_small_query_is_charged_athenas_10_mb_minimum(
    engine: AthenaEngine, stub: Stubber, sleeps: list[float]
):
    expect_start(stub)
    expect_state(stub, "SUCCEEDED", scanned=1234)
    expect_results(stub, [[["product", "n"]]])

    stats = engine.run_query(SQL).stats

    assert stats["athena_bytes_scanned"] == 1234
    assert stats["athena_cost_usd"] == pytest.approx(10 * MIB / 2**40 * 5)


@pytest.mark.parametrize(
    ("scanned", "billed"),
    [(0, 10 * MIB), (10 * MIB, 10 * MIB), (10 * MIB + 1, 11 * MIB), (3 * 2**30, 3 * 2**30)],
)
def test_bytes_are_billed_rounded_up_to_the_megabyte_with_a_10_mb_minimum(
    scanned: int, billed: int
):
    assert athena_cost.billed_bytes(scanned) == billed


def test_ddl_and_failed_queries_cost_nothing():
    assert athena_cost.query_cost_usd(5 * MIB, statement_type="DDL") == 0
    assert athena_cost.query_cost_usd(5 * MIB, state="FAILED") == 0


# result types


def test_result_strings_are_typed_by_athenas_column_types():
    columns = [
        {"Name": "d", "Type": "date"},
        {"Name": "ts", "Type": "timestamp"},
        {"Name": "ok", "Type": "boolean"},
        {"Name": "avg", "Type": "double"},
        {"Name": "small", "Type": "smallint"},
        {"Name": "amount", "Type": "decimal", "Precision": 10, "Scale": 2},
        {"Name": "tags", "Type": "array"},
    ]
    rows: list[list[str | None]] = [
        ["2024-01-02", "2024-01-02 03:04:05.678", "true", "1.5", "7", "12.30", "[a, b]"],
        [None, None, None, None, None, None, None],
    ]

    table = result_set_to_arrow(columns, rows)

    assert table.to_pylist()[0] == {
        "d": dt.date(2024, 1, 2),
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 678000),
        "ok": True,
        "avg": 1.5,
        "small": 7,
        "amount": Decimal("12.30"),
        "tags": "[a, b]",
    }
    assert table.to_pylist()[1] == dict.fromkeys(table.column_names)
    assert table.schema.field("small").type == pa.int16()


# against moto (canned results, as TRAPS.md describes)


def test_a_query_against_moto_returns_the_canned_rows():
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="results")
        queue_athena_rows([("product", "varchar"), ("n", "bigint")], [["A", "3"]])
        engine = AthenaEngine(
            database="lake", workgroup="primary", output_location="s3://results/athena/"
        )

        result = engine.run_query(SQL)

    assert result.table.to_pylist() == [{"product": "A", "n": 3}]
    assert result.stats["athena_cost_usd"] == pytest.approx(10 * MIB / 2**40 * 5)


def test_an_output_location_that_is_not_s3_is_refused():
    engine = AthenaEngine(database="lake", workgroup="primary", output_location="/tmp/results")

    with pytest.raises(ValueError, match="s3:// URI"):
        engine.run_query(SQL)
